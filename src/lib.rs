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
//! Layers (arrows point down only; the full table is in ARCHITECTURE.md "Layers"):
//! `main/cli -> relay -> services {receive, pickup::watch, queue::{runner, bounce},
//! deliver, admin} -> mechanisms {net, spool, dns::resolver, local} -> pure`.
//! Layer 0 (`smtp`, `spool::format`, `config`, `policy`, `plan`, `dsn`, `dns::{wire,
//! cache, conf, hosts}`, `queue::schedule`, `pickup::parse`, `stats::{names, render}`,
//! `deliver::{dest, outcome}`, the channel types `queue::inbox` and `deliver::inbox`)
//! does no I/O and never reads the clock. A service imports no other service, except that
//! service's `inbox` module (channel message types live beside their receiver:
//! `queue::inbox`, `deliver::inbox`). Counters (`stats`) are per-thread
//! blocks merged on read by the `admin` listener thread (`GET /metrics`, `/api/stats`,
//! `/api/queue`).

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
