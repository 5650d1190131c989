//! The queue runner's inbox: the message types of the two channels it receives.
//!
//! WHAT: [`IncomingBatch`] (committed QueueIds, one batch per group commit, from the inbound
//! workers and the pickup thread) and [`TaskReport`] / [`RcptOutcome`] (per-recipient
//! results of one delivery attempt, from the resolver pool, the outbound loop and the
//! local-delivery thread). Plain data (layer 0: no I/O, no threads), no logic beyond a
//! constructor.
//!
//! RULE (ARCHITECTURE.md "Channel message types"): channel message types live beside their
//! receiver, in a file named `inbox.rs`; a service that sends to another imports only that
//! receiver's `inbox` module, never the rest of it.
//!
//! TRUST: ids come from our own spool writers; replies inside results come from remote
//! servers and are only carried as text.

use std::sync::Arc;

use crate::deliver::inbox::Task;
use crate::spool::format::QueueId;

/// Committed QueueIds, one `Vec` per group commit (ids are 8 bytes, copied; the messages
/// stay in the spool).
pub type IncomingBatch = Vec<QueueId>;

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
