//! The delivery threads' inbox: what the queue runner hands to delivery, and the handle it
//! hands it with.
//!
//! WHAT: plain data. A [`Task`] is one scheduler job (one message, one destination domain,
//! some of its recipients) with everything the delivery side needs, so that no delivery
//! thread touches the spool: the envelope strings and the message content, copied once out
//! of the spool by the runner (`Arc<[u8]>`, shared, never copied again; the copy is the
//! price of crossing threads while compaction may move the record). A remote task goes
//! through the [`Router`] as a [`ResolveRequest`] (to the resolver pool, or straight on to
//! the outbound loop as an [`OutboundTask`] when the route needs no DNS); a local one goes
//! to the local-delivery thread as a [`LocalRequest`].
//!
//! RULE (ARCHITECTURE.md "Channel message types"): channel message types live beside their
//! receiver, in `inbox.rs`; the queue runner imports this module of `deliver` and nothing
//! else of it. Results come back as `queue::inbox::TaskReport`.
//!
//! TRUST: built by the runner from the spool (trusted).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::resolve::Shared;
use crate::plan::route::{NextHop, Route};
use crate::smtp::client;
use crate::spool::QueueId;

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

/// Where the queue runner sends remote tasks: routes that need no DNS (an address-literal
/// smart host, host-table addresses) are turned into targets right away on the caller's
/// thread (no blocking, no extra thread hop); the others go to the pool.
pub struct Router {
    /// Shared with the pool threads.
    pub(super) shared: Arc<Shared>,
    /// The pool's queue.
    pub(super) pool: Sender<ResolveRequest>,
}

impl Router {
    /// Route `req` now if it needs no DNS, else queue it for the pool. Gives the request
    /// back if the pool is gone (shutting down).
    pub fn submit(&self, req: ResolveRequest) -> Result<(), Box<ResolveRequest>> {
        let no_dns = match &req.route {
            Route::SmartHost { hop, .. } => matches!(hop, NextHop::Literal { .. }),
            Route::Hosts { .. } => true,
            Route::Local { .. } | Route::Mx { .. } => false,
        };
        if no_dns {
            self.shared.handle(req);
            return Ok(());
        }
        self.pool.send(req).map_err(|e| Box::new(e.0))
    }
}
