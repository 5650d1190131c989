//! What crosses between the delivery threads: a delivery attempt ([`Task`]) going out from
//! the queue runner, and its per-recipient results ([`TaskReport`]) coming back.
//!
//! WHAT: plain data. A task is one scheduler job (one message, one destination domain, some
//! of its recipients) with everything the delivery side needs, so that no delivery thread
//! touches the spool: the envelope strings and the message content, copied once out of the
//! spool by the runner (`Arc<[u8]>`, shared, never copied again; the copy is the price of
//! crossing threads while compaction may move the record).
//!
//! TRUST: built by the runner from the spool (trusted); replies inside results come from
//! remote servers and are only carried as text.

use std::net::SocketAddr;
use std::sync::Arc;

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

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Accepted by the next hop (or written to Drop).
    Delivered {
        /// The host that took it (`[ip]` or name), or `Drop` for local delivery.
        mta: String,
        /// The next hop offered DSN, so NOTIFY went along with the recipient and a success
        /// report is its job from now on (RFC 3461 §6.2.2.1: we would say "relayed").
        dsn_passed_on: bool,
    },
    /// Try again later.
    Deferred {
        /// Why, for the queue listing, the delay DSN and the expiry NDR.
        reason: String,
        /// The destination could not be reached at all (connection, greeting, DNS).
        dest_down: bool,
    },
    /// Permanent failure: bounce.
    Failed {
        /// RFC 3463 status, e.g. `5.1.1`.
        status: String,
        /// The remote host, if one answered.
        mta: Option<String>,
        /// The remote reply (exact), or `None` when `text` is our own reason.
        reply: Option<String>,
        /// Our reason in words, when there is no remote reply.
        text: String,
    },
}

/// Results of one task: one outcome per recipient of the task.
#[derive(Debug, Clone)]
pub struct TaskReport {
    /// The message.
    pub id: QueueId,
    /// The destination domain of the task.
    pub domain: Arc<str>,
    /// `(spool recipient index, outcome)`, one per task recipient.
    pub results: Vec<(u32, RcptOutcome)>,
}

impl TaskReport {
    /// Every recipient of `task` gets `outcome`.
    #[must_use]
    pub fn all(task: &Task, outcome: &RcptOutcome) -> TaskReport {
        TaskReport {
            id: task.id,
            domain: Arc::clone(&task.domain),
            results: task.rcpt_index.iter().map(|&i| (i, outcome.clone())).collect(),
        }
    }
}
