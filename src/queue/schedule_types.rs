//! Public types of the scheduler (`queue/schedule.rs`): its configuration, the outcomes
//! it is fed, the actions it hands out, and its error.
//!
//! Layer 0: plain data, no I/O, no clock.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::DeliveryConfig;
use crate::spool::format::QueueId;

/// Position of a recipient in its spool record (what the spool crosses off).
pub type RcptIndex = u32;

/// Timing rules of the scheduler, from `[delivery]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Wait after the 1st, 2nd, ... failed attempt; the last repeats. Invariant: not empty.
    pub retry: Vec<Duration>,
    /// Age at which a delay DSN is asked for; `None` = never.
    pub delay_notify: Option<Duration>,
    /// Age at which pending recipients are given up.
    pub expire: Duration,
    /// First backoff of a dead destination; doubles per failed probe.
    pub dest_backoff_min: Duration,
    /// Longest backoff of a dead destination. Invariant: ≥ `dest_backoff_min`.
    pub dest_backoff_max: Duration,
    /// Most jobs in flight to one destination domain (`[delivery]
    /// max_connections_per_domain`); more ready items for it wait their turn.
    /// Invariant: > 0.
    pub max_jobs_per_dest: usize,
}

impl ScheduleConfig {
    /// The schedule of `[delivery]`: its retry list, delay notice, expiry and per-domain
    /// concurrency; dead destinations back off from the first retry interval to the last.
    #[must_use]
    pub fn from_delivery(d: &DeliveryConfig) -> ScheduleConfig {
        let retry: Vec<Duration> = d.retry_ms.iter().map(|&ms| Duration::from_millis(ms)).collect();
        let first = retry.first().copied().unwrap_or(Duration::from_secs(60));
        let last = retry.last().copied().unwrap_or(first).max(first);
        ScheduleConfig {
            retry,
            delay_notify: (d.delay_notify_ms > 0).then(|| Duration::from_millis(d.delay_notify_ms)),
            expire: Duration::from_millis(d.expire_ms),
            dest_backoff_min: first,
            dest_backoff_max: last,
            max_jobs_per_dest: d.max_connections_per_domain.max(1),
        }
    }

    /// Wait after the `failures`-th failed attempt (1-based).
    #[must_use]
    pub fn retry_after(&self, failures: u32) -> Duration {
        let i = usize::try_from(failures.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry.get(i).or(self.retry.last()).copied().unwrap_or(Duration::MAX)
    }

    /// Backoff of a destination after its `failures`-th consecutive failure (1-based).
    #[must_use]
    pub fn dest_backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(MAX_BACKOFF_DOUBLINGS);
        self.dest_backoff_min.saturating_mul(1 << doublings).min(self.dest_backoff_max)
    }
}

/// Cap on backoff doublings (2^20 × the minimum is far beyond any sensible maximum).
const MAX_BACKOFF_DOUBLINGS: u32 = 20;

/// What happened to one recipient in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the next hop (or written to Drop): done.
    Delivered,
    /// Try again later (4xx, timeout, no connection).
    Deferred {
        /// Why, for `queue list`, the delay DSN and the expiry NDR (e.g. the remote reply).
        reason: String,
        /// The destination itself could not be reached (connection refused or timed out,
        /// 4xx greeting, DNS failure), as opposed to a 4xx for this recipient.
        dest_down: bool,
    },
    /// Permanently failed (5xx, null MX, loop): done; the caller bounces it.
    Failed,
}

/// A delivery attempt to hand to the delivery side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The message.
    pub id: QueueId,
    /// Destination domain (lower case) shared by all `rcpts`.
    pub domain: Arc<str>,
    /// Recipients to try. Invariant: not empty, ascending, all pending.
    pub rcpts: Vec<RcptIndex>,
    /// 1 for the first attempt of this item, then 2, 3, ...
    pub attempt: u32,
}

/// A recipient that is still pending, with its last error (for DSNs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRcpt {
    /// Position in the spool record.
    pub rcpt: RcptIndex,
    /// Its destination domain.
    pub domain: Arc<str>,
    /// Reason of the last deferral, if it was ever tried.
    pub last_error: Option<String>,
}

/// Where a pending recipient stands (for `mailroot queue list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptState {
    /// Due now, waiting for its turn.
    Ready,
    /// Waiting for its retry time (`None` = never, the schedule overflowed).
    Waiting {
        /// When the next attempt is due.
        next_try: Option<Instant>,
    },
    /// Held because its destination is dead.
    Held,
    /// Being delivered now.
    Active,
}

/// One pending recipient as [`Scheduler::status`](super::Scheduler::status) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptStatus {
    /// Position in the spool record.
    pub rcpt: RcptIndex,
    /// Destination domain.
    pub domain: Arc<str>,
    /// Where it stands.
    pub state: RcptState,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Reason of the last deferral.
    pub last_error: Option<String>,
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Try these recipients now; report each with [`Scheduler::result`](super::Scheduler::result).
    Deliver(Job),
    /// Send one delay DSN for these deferred recipients (asked once per message).
    DelayDsn {
        /// The message.
        id: QueueId,
        /// Recipients deferred so far and not yet final.
        rcpts: Vec<PendingRcpt>,
    },
    /// These recipients expired: bounce them (they are final; the scheduler forgot them).
    Expire {
        /// The message.
        id: QueueId,
        /// The recipients given up.
        rcpts: Vec<PendingRcpt>,
        /// True when the message has no pending recipient left.
        message_done: bool,
    },
    /// A dead destination's backoff ended with nothing held for it in memory: the next
    /// item picked for it goes as the probe. A caller that parks messages brings one
    /// waiting for `domain` back to be it (or calls
    /// [`Scheduler::forget_idle_dest`](super::Scheduler::forget_idle_dest)).
    Wake {
        /// The destination.
        domain: Arc<str>,
    },
    /// A dead destination answered again: messages parked until then may come back.
    Revived {
        /// The destination.
        domain: Arc<str>,
    },
}

/// A call the scheduler refuses; the caller is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// `arrive` for a message already queued.
    DuplicateMessage(QueueId),
    /// `arrive` with no recipients or the same recipient index twice.
    BadRecipients(QueueId),
    /// `result` for a message that is not queued.
    UnknownMessage(QueueId),
    /// `result` for a recipient that is not being tried (already reported or not in a job).
    NotInFlight(QueueId, RcptIndex),
    /// `remove` while a delivery attempt for the message is in flight.
    InFlight(QueueId),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::DuplicateMessage(id) => write!(f, "message {id} is already queued"),
            ScheduleError::BadRecipients(id) => {
                write!(f, "message {id}: no recipients, or a recipient index given twice")
            }
            ScheduleError::UnknownMessage(id) => write!(f, "message {id} is not queued"),
            ScheduleError::NotInFlight(id, r) => {
                write!(f, "message {id} recipient {r} is not being delivered")
            }
            ScheduleError::InFlight(id) => {
                write!(f, "message {id} is being delivered now; try again when the attempt ends")
            }
        }
    }
}

impl std::error::Error for ScheduleError {}
