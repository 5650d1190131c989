//! The W3C extended protocol log: one line per SMTP command and its reply, per site, in
//! the files IIS SMTP wrote (`exYYMMDD.log`).
//!
//! `format` (layer 0) is the line and header format and its escaping. The rest is a
//! mechanism: the `protocol-log` thread that owns the files (`writer`), and each event
//! loop's side of it (`sink`): lines are formatted on the worker into one buffer per site
//! and handed over once per event-loop pass through a bounded channel with `try_send`, so
//! the SMTP path never waits for the disk; when the channel is full the lines are dropped
//! and counted.
pub mod format;
pub mod sink;
pub mod writer;

pub use sink::{LogBatch, LogSink, SinkParts};
pub use writer::{ProtoLogControl, ProtoLogOptions, SiteLogOptions, spawn};
