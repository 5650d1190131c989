//! The queue runner's inbox: the message types of the two channels it receives.
//!
//! WHAT: [`IncomingBatch`] (committed QueueIds, one batch per group commit, from the inbound
//! workers and the pickup thread), [`TaskReport`] / [`RcptOutcome`] (per-recipient
//! results of one delivery attempt, from the resolver pool, the outbound loop and the
//! local-delivery thread) and [`QueueRequest`] (an operator's action on one message, or a
//! flush, from the admin listener, answered through its [`ActionReply`] callback). Plain
//! data (layer 0: no I/O, no threads), no logic beyond constructors and names.
//!
//! RULE (ARCHITECTURE.md "Channel message types"): channel message types live beside their
//! receiver, in a file named `inbox.rs`; a service that sends to another imports only that
//! receiver's `inbox` module, never the rest of it.
//!
//! TRUST: ids come from our own spool writers; replies inside results come from remote
//! servers and are only carried as text.

use std::sync::Arc;

use crate::deliver::inbox::Task;
use crate::eventlog::event::By;
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

/// An operator's action on the queue (`mailroot queue delete|bounce|hold|release ID`,
/// `POST /api/queue/{id}/{verb}`, `POST /api/flush`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Cross every pending recipient off (`X`) without any report to the sender.
    Delete(QueueId),
    /// Give every pending recipient up now: an NDR to the sender (Badmail for `<>`).
    Bounce(QueueId),
    /// Take the message out of the schedule until it is released (persisted).
    Hold(QueueId),
    /// Put a held message back into the schedule and try it now.
    Release(QueueId),
    /// Retry every waiting recipient now (as `mailroot queue flush`).
    FlushAll,
}

impl QueueAction {
    /// The action for a URL or command verb on message `id`; `None` for another verb.
    #[must_use]
    pub fn from_verb(verb: &str, id: QueueId) -> Option<QueueAction> {
        Some(match verb {
            "delete" => QueueAction::Delete(id),
            "bounce" => QueueAction::Bounce(id),
            "hold" => QueueAction::Hold(id),
            "release" => QueueAction::Release(id),
            _ => return None,
        })
    }

    /// The verb, as in the URL and the command.
    #[must_use]
    pub fn verb(self) -> &'static str {
        match self {
            QueueAction::Delete(_) => "delete",
            QueueAction::Bounce(_) => "bounce",
            QueueAction::Hold(_) => "hold",
            QueueAction::Release(_) => "release",
            QueueAction::FlushAll => "flush",
        }
    }

    /// The message acted on (`None` for a flush).
    #[must_use]
    pub fn id(self) -> Option<QueueId> {
        match self {
            QueueAction::Delete(id)
            | QueueAction::Bounce(id)
            | QueueAction::Hold(id)
            | QueueAction::Release(id) => Some(id),
            QueueAction::FlushAll => None,
        }
    }
}

/// The runner's answer to a [`QueueRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    /// Done; what happened, in words for the operator.
    Done(String),
    /// No message with that id has a pending recipient.
    NotFound,
    /// A delivery attempt for the message is in flight: try again when it ends.
    Busy(String),
    /// It could not be done (e.g. the NDR could not be made durable); nothing changed.
    Failed(String),
}

/// Where the runner sends its answer: called exactly once, on the runner's thread. The
/// sender wires it to a reply channel (the shape stays plain data, like `RemoteSubmit`).
pub type ActionReply = Box<dyn FnOnce(ActionOutcome) + Send>;

/// One operator action with the way back for its answer.
pub struct QueueRequest {
    /// What to do.
    pub action: QueueAction,
    /// Who asked (for the event log).
    pub by: By,
    /// Called once with the outcome.
    pub reply: ActionReply,
}

impl std::fmt::Debug for QueueRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueRequest")
            .field("action", &self.action)
            .field("by", &self.by)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        let id = QueueId(7);
        for verb in ["delete", "bounce", "hold", "release"] {
            let a = QueueAction::from_verb(verb, id).unwrap_or_else(|| panic!("{verb}"));
            assert_eq!((a.verb(), a.id()), (verb, Some(id)));
        }
        assert_eq!(QueueAction::from_verb("flush", id), None);
        assert_eq!(QueueAction::from_verb("", id), None);
        assert_eq!((QueueAction::FlushAll.verb(), QueueAction::FlushAll.id()), ("flush", None));
    }
}
