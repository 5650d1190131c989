//! The delivery threads' inbox: what the queue runner hands to delivery, and the handle it
//! hands it with.
//!
//! WHAT: plain data (layer 0: no I/O, no threads). A [`Task`] is one scheduler job (one message, one destination domain,
//! some of its recipients) with everything the delivery side needs, so that no delivery
//! thread touches the spool: the envelope strings and the message content, copied once out
//! of the spool by the runner (`Arc<[u8]>`, shared, never copied again; the copy is the
//! price of crossing threads while compaction may move the record). A remote task is
//! submitted as a [`ResolveRequest`] through a [`RemoteSubmit`] handle (to the resolver
//! pool, or straight on to the outbound loop as an [`OutboundTask`] when the route needs
//! no DNS); a local one goes to the local-delivery thread as a [`LocalRequest`].
//!
//! RULE (ARCHITECTURE.md "Channel message types"): channel message types live beside their
//! receiver, in `inbox.rs`; the queue runner imports this module of `deliver` and nothing
//! else of it (the submit handle is wired by `relay.rs`). Results come back as
//! `queue::inbox::TaskReport`.
//!
//! TRUST: built by the runner from the spool (trusted).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::plan::route::Route;
use crate::smtp::client;
use crate::spool::format::QueueId;

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct Task {
    /// The message.
    pub id: QueueId,
    /// Destination domain (lower case), as the scheduler grouped it.
    pub domain: Arc<str>,
    /// Spool recipient index of each `job.recipients[i]`. Invariant: same length.
    pub rcpt_index: Vec<u32>,
    /// The envelope to send (reverse path already masqueraded).
    pub job: client::Job,
    /// The message content as spooled.
    pub content: Arc<[u8]>,
}

/// One connection target: a host name (for logs and NDRs) and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The MX / smart host name, or `[ip]` for a literal.
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
}

/// A task ready for the outbound event loop: where to connect, in order.
#[derive(Debug, Clone)]
pub struct OutboundTask {
    /// The attempt.
    pub task: Task,
    /// Connection reuse and per-destination limits apply per key (the route, e.g.
    /// `mx:example.com` or `smart:[10.0.0.1]:25`).
    pub dest_key: Arc<str>,
    /// Targets to try in order (MX preference, then addresses). Invariant: not empty.
    pub targets: Vec<Target>,
    /// Settings of the connection (HELO name, EHLO/HELO, timeouts, reuse limit).
    pub client: Arc<client::ClientConfig>,
}

/// A task and its (remote) route, for the resolver pool.
#[derive(Debug)]
pub struct ResolveRequest {
    /// The attempt.
    pub task: Task,
    /// Where it goes (never `Route::Local`).
    pub route: Route,
}

/// A task for the Drop folder, for the local-delivery thread.
#[derive(Debug)]
pub struct LocalRequest {
    /// The attempt (its job holds the recipients and the reverse path).
    pub task: Task,
    /// The folder.
    pub drop_dir: PathBuf,
}

/// How the queue runner submits a remote task: wired by `relay.rs` to
/// `deliver::resolve::Router::submit` (routes that need no DNS become an `OutboundTask` on
/// the caller's thread, the others go to the resolver pool). Gives the request back when
/// delivery is shutting down. A callback like the spool's `on_commit`, so the runner names
/// no type of `deliver` but this module's.
pub type RemoteSubmit = Box<dyn Fn(ResolveRequest) -> Result<(), Box<ResolveRequest>> + Send>;
