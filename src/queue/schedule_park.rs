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
    Item, ItemState, Message, RcptIndex, ReadyRef, ScheduleError, Scheduler, TimerKind, later,
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
                if self.candidates.last() != Some(&id) {
                    self.candidates.push(id);
                }
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

    /// After [`Action::Wake`](super::Action::Wake), when the caller has nothing waiting for `domain` either:
    /// forget the destination if nothing here refers to it (else its next item probes).
    pub fn forget_idle_dest(&mut self, domain: &str) {
        if self.dests.get(domain).is_some_and(|d| d.items.is_empty() && d.active == 0) {
            self.dests.remove(domain);
        }
    }

    /// Rebuild the timer heap without its stale entries once they outnumber the live
    /// ones several times over (every message that leaves, delivered or taken out, leaves
    /// its delay and expiry timers behind, hours and days ahead): the heap stays
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Action, Job, Outcome, ScheduleConfig};
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    /// The IIS schedule of the scheduler's own tests, with the delay notice after one hour.
    fn cfg() -> ScheduleConfig {
        ScheduleConfig { delay_notify: Some(HOUR), ..super::super::tests::iis() }
    }

    fn id(n: u64) -> QueueId {
        QueueId(n)
    }

    fn down() -> Outcome {
        Outcome::Deferred { reason: "connection refused".into(), dest_down: true }
    }

    fn defer(reason: &str) -> Outcome {
        Outcome::Deferred { reason: reason.into(), dest_down: false }
    }

    fn job(s: &mut Scheduler, now: Instant) -> Job {
        match s.next_due(now) {
            Some(Action::Deliver(j)) => j,
            other => panic!("expected a job, got {other:?}"),
        }
    }

    fn prior(failures: u32, next_try: Option<Instant>, delay_dsn_sent: bool) -> Prior {
        Prior {
            rcpts: vec![PriorRcpt { rcpt: 0, failures, last_error: Some("451".into()), next_try }],
            delay_dsn_sent,
        }
    }

    #[test]
    fn a_parked_message_comes_back_with_its_failures_and_waits_for_its_retry() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(cfg());
        s.arrive(id(1), &[(0, "a.example")], t0).unwrap();
        assert_eq!(s.dormant(id(1), t0), None, "ready: not dormant");
        let j = job(&mut s, t0);
        assert_eq!(s.dormant(id(1), t0), None, "in flight: not dormant");
        s.result(j.id, 0, defer("451 later"), t0).unwrap();
        assert_eq!(s.take_candidates(), [id(1)]);
        let d = s.dormant(id(1), t0).unwrap();
        let want = Dormant { until: Some(t0 + 15 * MIN), blocked_on: None, delay_dsn_sent: false };
        assert_eq!(d, want);
        s.remove(id(1)).unwrap();
        // Back a minute later with its history: it waits for its retry, then is attempt 2.
        let t1 = t0 + MIN;
        let p = prior(1, Some(t0 + 15 * MIN), false);
        s.arrive_with(id(1), &[(0, "a.example")], t0, t1, &p).unwrap();
        assert_eq!(s.next_due(t1), None);
        assert_eq!(s.dormant(id(1), t1).map(|d| d.until), Some(Some(t0 + 15 * MIN)));
        let t2 = t0 + 15 * MIN;
        let j = job(&mut s, t2);
        assert_eq!(j.attempt, 2, "the failure count came back");
        s.result(j.id, 0, defer("451 again"), t2).unwrap();
        // The second failure waits the second interval (30 min), not the first again.
        assert_eq!(s.dormant(id(1), t2).map(|d| d.until), Some(Some(t2 + 30 * MIN)));
        // A prior without a next try (a restart) is tried at once.
        s.remove(id(1)).unwrap();
        s.arrive_with(id(1), &[(0, "a.example")], t0, t2, &prior(2, None, false)).unwrap();
        assert_eq!(job(&mut s, t2).attempt, 3);
    }

    #[test]
    fn the_delay_notice_and_expiry_bound_the_dormancy_and_are_not_repeated() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(cfg());
        s.arrive(id(1), &[(0, "a.example")], t0).unwrap();
        // Parked at 50 min with a retry at 4 h: it must be back for its notice at 1 h.
        let t1 = t0 + 50 * MIN;
        s.remove(id(1)).unwrap();
        let p = prior(4, Some(t0 + 4 * HOUR), false);
        s.arrive_with(id(1), &[(0, "a.example")], t0, t1, &p).unwrap();
        assert_eq!(s.dormant(id(1), t1).unwrap().until, Some(t0 + HOUR));
        assert_eq!(s.dormant(id(1), t0 + HOUR), None, "the notice is due");
        let Some(Action::DelayDsn { id: m, .. }) = s.next_due(t0 + HOUR) else { panic!() };
        assert_eq!(m, id(1));
        let d = s.dormant(id(1), t0 + HOUR).unwrap();
        assert_eq!((d.until, d.delay_dsn_sent), (Some(t0 + 4 * HOUR), true));
        // Parked again and back: no second notice, however long it stays.
        s.remove(id(1)).unwrap();
        let p = prior(4, Some(t0 + 200 * HOUR), true);
        s.arrive_with(id(1), &[(0, "a.example")], t0, t0 + HOUR, &p).unwrap();
        assert_eq!(s.dormant(id(1), t0 + HOUR).unwrap().until, Some(t0 + 48 * HOUR), "expiry");
        let mut actions = Vec::new();
        while let Some(a) = s.next_due(t0 + 48 * HOUR) {
            actions.push(a);
        }
        assert!(
            matches!(actions.as_slice(), [Action::Expire { message_done: true, .. }]),
            "{actions:?}"
        );
        assert!(s.is_empty());
    }

    #[test]
    fn a_dead_destination_whose_mail_is_parked_still_gets_one_probe_at_a_time() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(cfg());
        for n in 0..10 {
            s.arrive(id(n), &[(0, "dead.example")], t0).unwrap();
        }
        let j = job(&mut s, t0);
        s.result(j.id, 0, down(), t0).unwrap();
        assert!(s.is_dead("dead.example"));
        assert_eq!(s.next_due(t0), None, "the other nine are held");
        // The runner parks everything dormant: the nine wait for the wake-up.
        let mut cands = s.take_candidates();
        cands.sort();
        cands.dedup();
        assert_eq!(cands.len(), 10);
        for m in cands {
            let d = s.dormant(m, t0).unwrap();
            if m == j.id {
                assert_eq!((d.until, d.blocked_on), (Some(t0 + 15 * MIN), None));
            } else {
                let blocked = d.blocked_on.as_deref();
                assert_eq!((d.until, blocked), (Some(t0 + HOUR), Some("dead.example")));
            }
            s.remove(m).unwrap();
        }
        assert!(s.is_empty() && s.is_dead("dead.example"));
        // Wake-up with nothing held: the caller is told, brings one back as the probe.
        let t1 = t0 + 15 * MIN;
        assert_eq!(s.next_due(t1), Some(Action::Wake { domain: "dead.example".into() }));
        s.arrive_with(id(3), &[(0, "dead.example")], t0, t1, &prior(0, None, false)).unwrap();
        let probe = job(&mut s, t1);
        assert_eq!(probe.id, id(3));
        // While it is out, a newcomer is held (one probe at a time), and not dormant.
        s.arrive_with(id(4), &[(0, "dead.example")], t0, t1, &prior(0, None, false)).unwrap();
        assert_eq!(s.next_due(t1), None);
        assert_eq!(s.dormant(id(4), t1), None, "the answer to the probe comes soon");
        // The probe fails: the backoff doubles, and the held newcomer may be parked now.
        s.result(probe.id, 0, down(), t1).unwrap();
        assert!(s.take_candidates().contains(&id(4)));
        assert_eq!(s.dormant(id(4), t1).unwrap().blocked_on.as_deref(), Some("dead.example"));
        s.remove(id(4)).unwrap();
        s.remove(id(3)).unwrap();
        // The next wake-up: without a probe brought back, the next message for it goes
        // as the probe, and only it.
        let t2 = t1 + 30 * MIN;
        assert_eq!(s.next_due(t2), Some(Action::Wake { domain: "dead.example".into() }));
        s.arrive(id(5), &[(0, "dead.example")], t2).unwrap();
        s.arrive(id(6), &[(0, "dead.example")], t2).unwrap();
        let p = job(&mut s, t2);
        assert_eq!(p.id, id(5));
        assert_eq!(s.next_due(t2), None, "one probe at a time");
        s.result(p.id, 0, Outcome::Delivered, t2).unwrap();
        // It got through: the caller hears of it, and the held one goes.
        assert_eq!(s.next_due(t2), Some(Action::Revived { domain: "dead.example".into() }));
        assert_eq!(job(&mut s, t2).id, id(6));
    }

    #[test]
    fn an_idle_dead_destination_is_forgotten_after_its_wake_up() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(cfg());
        s.arrive(id(1), &[(0, "dead.example")], t0).unwrap();
        let j = job(&mut s, t0);
        s.result(j.id, 0, down(), t0).unwrap();
        s.remove(id(1)).unwrap();
        let wake = s.next_due(t0 + 15 * MIN);
        assert_eq!(wake, Some(Action::Wake { domain: "dead.example".into() }));
        s.forget_idle_dest("dead.example");
        assert!(!s.is_dead("dead.example"));
        assert!(s.dests.is_empty());
    }

    #[test]
    fn timers_of_messages_taken_out_do_not_pile_up() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(cfg());
        // 10,000 park-and-return cycles of 100 messages: each admission adds a retry, a
        // delay and an expiry timer; without the rebuild the heap would hold 30,000.
        for round in 0..100u32 {
            for n in 0..100 {
                let now = t0 + MIN * round;
                let p = prior(1, Some(now + HOUR), false);
                s.arrive_with(id(n), &[(0, "a.example")], t0, now, &p).unwrap();
            }
            for n in 0..100 {
                s.remove(id(n)).unwrap();
            }
        }
        assert!(s.timers.len() <= 4 * 64 + 64, "timers kept: {}", s.timers.len());
    }
}

#[cfg(test)]
mod timer_tests {
    use std::time::Instant;

    use super::super::{Action, Outcome, Scheduler};
    use crate::spool::format::QueueId;

    #[test]
    fn delivered_messages_leave_no_timers_behind() {
        // Every admission adds a delay-notice and an expiry timer, hours and days ahead; a
        // message delivered at once made both stale but they stayed in the heap until
        // their time: a relay at thousands of messages a second grew by 128 bytes a
        // message for two days.
        let t0 = Instant::now();
        let mut s = Scheduler::new(super::super::tests::iis());
        for n in 0..100_000u64 {
            s.arrive(QueueId(n), &[(0, "a.example")], t0).unwrap();
            let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!("a job") };
            s.result(j.id, 0, Outcome::Delivered, t0).unwrap();
        }
        assert!(s.is_empty());
        assert!(s.timers.len() <= 1000, "timers kept: {}", s.timers.len());
    }
}
