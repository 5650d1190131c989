//! mailroot: a high-throughput SMTP relay, a modern re-creation of the IIS SMTP Service.
//!
//! ```text
//!  client ──TCP──▶ inbound event loop k      (one mio Poll per worker, SO_REUSEPORT listener)
//!                    │ smtp::server::ServerSession (sans-IO) decides every reply
//!                    │ DATA is dot-unstuffed while it streams into the spool
//!                    ▼
//!                 spool (Queue/)              append record, then group commit:
//!                    │                        one msync/fdatasync covers every message
//!                    │                        finished in the window; 250 only after it
//!                    ▼
//!                 crossbeam channel ──▶ queue runner (queue::runner: scheduler, cross-off,
//!                    │                        channels; queue::bounce: NDRs into the spool,
//!                    │                        Badmail; plan: the pure delivery planner)
//!          ┌─────────┴──────────┐
//!          ▼                    ▼
//!   local-delivery (Drop/)   resolver pool (DNS) ──▶ outbound net::Worker (the same
//!                                                   I/O core as inbound, connects instead
//!                                                   of accepts; smtp::client::ClientSession)
//! ```
//!
//! Counters (`stats`) are per-thread blocks merged on read by the `admin` listener thread
//! (`GET /metrics`, `/api/stats`, `/api/queue`). Service control (`control`: pause flags
//! read at accept, reloadable snapshots) is driven through the admin listener's POSTs,
//! SIGHUP and the `mailroot pause|resume|drain|reload` commands; every service event goes
//! to the event log (`eventlog`, `<mailroot>/Logs/events.log`).
//!
//! Programs send and read mail through [`client`] (Active Messaging style: SMTP through
//! the same `smtp::client::ClientSession`, or the Pickup folder; the Inbox reads Drop/);
//! it starts no relay thread and imports no relay service.
//!
//! The layers below are `src/LAYERS.md`, the one layer table (`ARCHITECTURE.md` quotes it,
//! `tests/architecture.rs` enforces it).
//!
#![doc = include_str!("LAYERS.md")]

pub mod admin;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod deliver;
pub mod dns;
pub mod dsn;
pub mod eventlog;
pub mod local;
pub mod net;
pub mod pickup;
pub mod plan;
pub mod policy;
pub mod protolog;
pub mod proxy_protocol;
pub mod queue;
pub mod receive;
pub mod relay;
pub mod retention;
pub mod smtp;
pub mod spool;
pub mod stats;
