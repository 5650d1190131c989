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
//!                    │                        NDRs into the spool, Badmail)
//!          ┌─────────┴──────────┐
//!          ▼                    ▼
//!   local-delivery (Drop/)   resolver pool (DNS) ──▶ outbound event loop (mio,
//!                                                   smtp::client::ClientSession)
//! ```
//!
//! Layers (arrows point down only):
//! `main/cli -> relay -> receive -> {net, spool} -> {smtp, spool::format, config}`.
//! Layer 0 (`smtp`, `spool::format`, `config`, `receive::policy`, `deliver::route`,
//! `deliver::bounce`, `queue::schedule`, `stats::names`, `stats::render`) does no I/O and
//! never reads the clock. Counters (`stats`) are per-thread blocks merged on read by the
//! `admin` listener thread (`GET /metrics`, `/api/stats`, `/api/queue`).

pub mod admin;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod dns;
pub mod dsn;
pub mod local;
pub mod net;
pub mod pickup;
pub mod plan;
pub mod policy;
pub mod queue;
pub mod receive;
pub mod relay;
pub mod smtp;
pub mod spool;
pub mod stats;
