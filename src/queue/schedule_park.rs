//! What the scheduler offers a caller that keeps only its active messages in memory
//! (the queue runner's parking, `queue/park.rs`): admission with what a message carried
//! from before ([`Prior`]), the test for a message that has nothing to do until a known
//! time ([`Scheduler::dormant`]), the list of messages worth that test
//! ([`Scheduler::take_candidates`]), and the single probe of a dead destination whose
//! waiting messages were parked ([`Action::Wake`](super::Action::Wake),
//! [`Scheduler::forget_idle_dest`]).
//!
//! Layer 0, part of `queue::schedule`: no I/O, never reads the clock.

use std::sync::Arc;
use std::time::Instant;

use super::{
    Item, ItemState, Message, RcptIndex, ReadyRef, ScheduleError, Scheduler, TimerKind,
    later,
};
use crate::spool::format::QueueId;

/// One recipient's history from an earlier admission (the runner's state file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorRcpt {
    /// Position in the spool record.
    pub rcpt: RcptIndex,
    /// Failed attempts so far.
    pub failures: u32,
    /// Reason of the last deferral.
    pub last_error: Option<String>,
    /// When its next attempt is due; `None` or a past time = now.
    pub next_try: Option<Instant>,
}

/// What a message carried from before it was parked (or from before a restart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prior {
    /// Recipients that were tried before (the others start fresh).
    pub rcpts: Vec<PriorRcpt>,
    /// Its delay DSN was already asked for.
    pub delay_dsn_sent: bool,
}

/// A message with nothing to do until `until`, or until `blocked_on` answers again: the
/// caller may take it out of the scheduler and bring it back then with its [`Prior`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dormant {
    /// The earliest of its retries, its delay notice and its expiry (`None` = never).
    pub until: Option<Instant>,
    /// A dead destination it waits for (one of them, if several).
    pub blocked_on: Option<Arc<str>>,
    /// Its delay DSN was already asked for (carry it in the [`Prior`]).
    pub delay_dsn_sent: bool,
}

/// The earlier of two optional times (`None` = never).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Scheduler {
    /// Like [`Scheduler::arrive_aged`], continuing from `prior`: each item starts with the
    /// most failures and the latest next try among its recipients there; an item whose
    /// next try is still ahead waits for it, one with failures goes to the deferred ready
    /// queue, the rest to the incoming one. No delay notice is asked for again when
    /// `prior.delay_dsn_sent`.
    pub fn arrive_with(
        &mut self,
        id: QueueId,
        rcpts: &[(RcptIndex, &str)],
        arrived: Instant,
        now: Instant,
        prior: &Prior,
    ) -> Result<(), ScheduleError> {
        if self.messages.contains_key(&id) {
            return Err(ScheduleError::DuplicateMessage(id));
        }
        let mut list: Vec<(RcptIndex, Arc<str>)> = Vec::with_capacity(rcpts.len());
        for &(i, d) in rcpts {
            let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
            // Share one Arc per domain within the message.
            let arc = match list.iter().find(|(_, a)| **a == *d) {
                Some((_, a)) => Arc::clone(a),
                None => self
                    .dests
                    .get_key_value(d.as_str())
                    .map_or_else(|| Arc::from(d), |(k, _)| Arc::clone(k)),
            };
            list.push((i, arc));
        }
        list.sort_by_key(|&(i, _)| i);
        if list.is_empty() || list.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(ScheduleError::BadRecipients(id));
        }
        let mut dests: Vec<Arc<str>> = Vec::new();
        for (_, d) in &list {
            if !dests.contains(d) {
                dests.push(Arc::clone(d));
            }
        }
        for d in &dests {
            let rcpts: Vec<RcptIndex> =
                list.iter().filter(|(_, x)| x == d).map(|&(i, _)| i).collect();
            let mut failures = 0;
            let mut last_error = None;
            let mut next_try = None;
            for p in prior.rcpts.iter().filter(|p| rcpts.contains(&p.rcpt)) {
                if p.failures >= failures {
                    failures = p.failures;
                    last_error.clone_from(&p.last_error);
                }
                next_try = next_try.max(p.next_try);
            }
            let generation = self.bump();
            let waiting = next_try.filter(|&t| t > now);
            let state = match waiting {
                Some(t) => ItemState::Waiting { due: Some(t) },
                None => ItemState::Ready,
            };
            let item = Item { rcpts, failures, last_error, state, generation };
            self.items.insert((id, Arc::clone(d)), item);
            self.dests.entry(Arc::clone(d)).or_default().items.insert(id);
            let key = (id, Arc::clone(d));
            if waiting.is_some() {
                self.add_timer(waiting, TimerKind::Retry(id, Arc::clone(d), generation));
            } else if failures > 0 {
                self.deferred.push_back(ReadyRef { key, generation, forced: false });
            } else {
                self.incoming.push_back(ReadyRef { key, generation, forced: false });
            }
        }
        let pending = list.len();
        let generation = self.bump();
        let delay_at = self.cfg.delay_notify.and_then(|dn| later(arrived, dn));
        let expire_at = later(arrived, self.cfg.expire).map(|t| t.max(now));
        self.messages.insert(
            id,
            Message {
                rcpts: list,
                pending,
                dests,
                delay_dsn_sent: prior.delay_dsn_sent,
                expired: false,
                generation,
                delay_at,
                expire_at,
            },
        );
        if !prior.delay_dsn_sent {
            self.add_timer(delay_at, TimerKind::DelayNotify(id, generation));
        }
        self.add_timer(expire_at, TimerKind::Expire(id, generation));
        Ok(())
    }

    /// Messages whose items went waiting or held since the last call (each at most a few
    /// times; ask [`Scheduler::dormant`] about each).
    pub fn take_candidates(&mut self) -> Vec<QueueId> {
        std::mem::take(&mut self.candidates)
    }

    /// Has message `id` nothing to do before a known time? True when every item waits
    /// for a retry still ahead or is held by a destination whose backoff ends after
    /// `now`, and neither its delay notice nor its expiry is due. `None` otherwise (or if
    /// it is not queued).
    #[must_use]
    pub fn dormant(&self, id: QueueId, now: Instant) -> Option<Dormant> {
        let msg = self.messages.get(&id)?;
        if msg.expired || msg.expire_at.is_some_and(|t| t <= now) {
            return None;
        }
        let mut until = msg.expire_at;
        if !msg.delay_dsn_sent {
            if msg.delay_at.is_some_and(|t| t <= now) {
                return None;
            }
            until = earliest(until, msg.delay_at);
        }
        let mut blocked_on = None;
        for d in &msg.dests {
            let item = self.items.get(&(id, Arc::clone(d)))?;
            match item.state {
                ItemState::Waiting { due: Some(t) } if t > now => until = earliest(until, Some(t)),
                ItemState::Waiting { due: None } => {}
                ItemState::Held => {
                    let dest = self.dests.get(d)?;
                    if dest.probe_next || dest.dead_until.is_none_or(|t| t <= now) {
                        return None; // its probe is out or next: the answer comes soon
                    }
                    blocked_on.get_or_insert_with(|| Arc::clone(d));
                }
                _ => return None,
            }
        }
        Some(Dormant { until, blocked_on, delay_dsn_sent: msg.delay_dsn_sent })
    }

    /// Should a ready item for the dead `domain` go (as its probe)? Forced items always
    /// go; otherwise only the one after a wake-up with nothing held.
    pub(super) fn take_probe(&mut self, domain: &Arc<str>, forced: bool) -> bool {
        let Some(dest) = self.dests.get_mut(domain) else { return true };
        let go = forced || dest.probe_next;
        if go {
            dest.probe_next = false;
        }
        go
    }

    /// Retry the item of `id` for `domain` now, even if the destination is dead (the
    /// probe a caller brought back for [`Action::Wake`](super::Action::Wake)). False if
    /// there is none.
    pub fn flush_item(&mut self, id: QueueId, domain: &str) -> bool {
        let Some((d, _)) = self.dests.get_key_value(domain) else { return false };
        let key = (id, Arc::clone(d));
        if !self.items.contains_key(&key) {
            return false;
        }
        self.make_ready(key, true);
        true
    }

    /// After [`Action::Wake`](super::Action::Wake), when the caller has nothing waiting for `domain` either:
    /// forget the destination if nothing here refers to it (else its next item probes).
    pub fn forget_idle_dest(&mut self, domain: &str) {
        if self.dests.get(domain).is_some_and(|d| d.items.is_empty() && d.active == 0) {
            self.dests.remove(domain);
        }
    }

    /// Rebuild the timer heap without its stale entries once they outnumber the live
    /// ones several times over (messages taken out leave theirs behind): the heap stays
    /// proportional to what is in memory, at an amortised O(1) per entry.
    pub(super) fn drop_stale_timers(&mut self) {
        let live_bound = 3 * self.messages.len() + self.items.len() + self.dests.len();
        if self.timers.len() <= 64 || self.timers.len() <= 4 * live_bound {
            return;
        }
        let timers = std::mem::take(&mut self.timers);
        let kept: Vec<_> = timers.into_iter().filter(|t| self.timer_is_live(&t.0.kind)).collect();
        self.timers = kept.into();
    }
}
