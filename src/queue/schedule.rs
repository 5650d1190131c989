//! The delivery scheduler as a pure state machine: which recipients are tried when.
//!
//! What: tracks every message in the queue as *items*, one per (message, destination
//! domain) holding that message's pending recipients for the domain (Postfix qmgr groups
//! recipients by destination the same way). The caller feeds events and the clock:
//! [`Scheduler::arrive`] (a message was spooled), [`Scheduler::result`] (a delivery outcome
//! per recipient), [`Scheduler::flush`] / [`Scheduler::flush_domain`] (retry now), and asks
//! [`Scheduler::next_due`] for the next [`Action`] until it says `None`, then sleeps until
//! [`Scheduler::poll_timeout`] (quinn-proto's `poll_timeout`/`handle_timeout` shape).
//!
//! Timers live in one binary heap keyed by due time (retries, delay notices, expiry, dead
//! destination wake-ups); nothing ever scans the whole queue on a clock tick. Entries made
//! obsolete (a flushed retry, a finished message) stay in the heap and are skipped when
//! popped: each item carries a generation number that every re-queue bumps.
//!
//! Retry schedule (`[delivery] retry`, IIS default 15, 30, 60, then every 240 minutes):
//! after an item's n-th failed attempt it waits `retry[n-1]`, the last interval repeating.
//! A delay DSN is asked for once per message when it is `delay_notify` old and still has
//! recipients that were deferred ([`Action::DelayDsn`]). At `expire` age every recipient
//! not yet final is given up ([`Action::Expire`]; the caller bounces it): items waiting are
//! expired at once, items being tried expire if that attempt defers.
//!
//! Fairness: ready work sits in two FIFO queues, *incoming* (never tried) and *deferred*
//! (retry due or flushed). When both hold work, [`Scheduler::next_due`] alternates between
//! them, as Postfix's qmgr alternates its incoming and deferred queue scans: a backlog of
//! ten thousand due retries delays a new message by at most one pick, and a flood of new
//! mail cannot starve retries either.
//!
//! Concurrency: at most `max_jobs_per_dest` jobs are in flight per destination domain
//! (`[delivery] max_connections_per_domain`); further ready items for it wait in that
//! destination's *blocked* list and the next one goes when a job finishes, so a domain
//! with a deep queue cannot occupy every connection.
//!
//! Dead destinations: when every recipient of an attempt was deferred because the
//! destination could not be reached (`Outcome::Deferred { dest_down: true }`: no
//! connection, 421 greeting), the domain is marked dead for a backoff that doubles from the
//! first retry interval up to the last one. While dead, its due items are *held* without
//! burning attempts; at wake-up a single item is released as a probe. Any contact (even a
//! 4xx to RCPT) revives the domain and releases everything held. Held items still expire.
//!
//! Trust: everything here comes from the queue runner (trusted); a result for a recipient
//! that is not being tried is refused with [`ScheduleError`], never a panic.
//!
//! Layer 0: no I/O, no threads, never reads the clock (`now` is always passed in).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::spool::format::QueueId;

#[path = "schedule_types.rs"]
mod types;
pub use types::{
    Action, Job, Outcome, PendingRcpt, RcptIndex, RcptState, RcptStatus, ScheduleConfig,
    ScheduleError,
};

#[path = "schedule_park.rs"]
mod park;
pub use park::{Dormant, Prior, PriorRcpt};

/// One message in the queue.
#[derive(Debug)]
struct Message {
    /// Every recipient with its domain, ascending by index (final ones included).
    rcpts: Vec<(RcptIndex, Arc<str>)>,
    /// Recipients not yet final. Invariant: > 0 while the message is in the map.
    pending: usize,
    /// Distinct destination domains that still have an item.
    dests: Vec<Arc<str>>,
    /// The delay DSN was asked for (at most once).
    delay_dsn_sent: bool,
    /// The expiry time passed: attempts in flight expire if they defer.
    expired: bool,
    /// Generation of this admission: its delay and expiry timers carry it, so the timers
    /// of an earlier admission (before the runner parked it) are stale.
    generation: u64,
    /// When the delay notice is due (`None` = never).
    delay_at: Option<Instant>,
    /// When the message expires (`None` = never).
    expire_at: Option<Instant>,
}

/// Key of an item: a message and a destination domain.
type ItemKey = (QueueId, Arc<str>);

/// Where an item is. Each state names the one structure that refers to it.
#[derive(Debug)]
enum ItemState {
    /// In the incoming or deferred ready queue.
    Ready,
    /// In the timer heap, retry due at `due` (`None` = beyond what `Instant` holds).
    Waiting {
        /// When the retry timer fires.
        due: Option<Instant>,
    },
    /// In its destination's held list (destination dead).
    Held,
    /// Handed out in a [`Job`]; waiting for results.
    Active {
        /// Recipients of the job not yet reported.
        outstanding: Vec<RcptIndex>,
        /// Every deferral so far in this attempt said `dest_down`, and there was one.
        all_dest_down: Option<bool>,
    },
}

/// Pending recipients of one message for one domain.
#[derive(Debug)]
struct Item {
    /// Pending recipients, ascending. Invariant: not empty while the item exists.
    rcpts: Vec<RcptIndex>,
    /// Failed attempts so far.
    failures: u32,
    /// Last deferral reason.
    last_error: Option<String>,
    /// Where the item is.
    state: ItemState,
    /// Generation: bumped at every (re)queue; references with another value are stale.
    generation: u64,
}

/// One destination domain's health.
#[derive(Debug, Default)]
struct Dest {
    /// Messages with an item for this domain.
    items: HashSet<QueueId>,
    /// Consecutive unreachable attempts; 0 = alive, else dead (items are held) until an
    /// attempt reaches it.
    failures: u32,
    /// End of the current backoff; the probe goes then. Failures reported before it do
    /// not stretch the backoff. `None` when alive.
    dead_until: Option<Instant>,
    /// Items held while dead, with their generation.
    held: VecDeque<(QueueId, u64)>,
    /// Generation of the wake-up timer (stale timers are skipped).
    wake_generation: u64,
    /// Jobs handed out and not finished. Invariant: ≤ `max_jobs_per_dest`.
    active: usize,
    /// Ready items waiting for a free slot (`active` at the limit), FIFO.
    blocked: VecDeque<ReadyRef>,
    /// The backoff ended with nothing held here: the next item picked goes as the probe.
    probe_next: bool,
}

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerKind {
    /// An item's retry is due.
    Retry(QueueId, Arc<str>, u64),
    /// A message reaches `delay_notify` age (with the message's generation).
    DelayNotify(QueueId, u64),
    /// A message reaches `expire` age (with the message's generation).
    Expire(QueueId, u64),
    /// A dead destination's backoff ends.
    DestWake(Arc<str>, u64),
}

/// A heap entry, ordered by due time then insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Timer {
    /// When it is due.
    at: Instant,
    /// Insertion number: equal times fire in insertion order.
    seq: u64,
    /// What to do.
    kind: TimerKind,
}

impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A ready-queue entry.
#[derive(Debug, Clone)]
struct ReadyRef {
    /// The item.
    key: ItemKey,
    /// Its generation when queued.
    generation: u64,
    /// Flushed by the operator: try even if the destination is dead.
    forced: bool,
}

/// The scheduler. See the module doc.
#[derive(Debug)]
pub struct Scheduler {
    /// Timing rules.
    cfg: ScheduleConfig,
    /// Queued messages.
    messages: HashMap<QueueId, Message>,
    /// Items, one per (message, domain) with pending recipients.
    items: HashMap<ItemKey, Item>,
    /// Destinations that have items or are dead.
    dests: HashMap<Arc<str>, Dest>,
    /// All timers, earliest first.
    timers: BinaryHeap<Reverse<Timer>>,
    /// Ready items never tried, FIFO.
    incoming: VecDeque<ReadyRef>,
    /// Ready items due for a retry (or flushed), FIFO.
    deferred: VecDeque<ReadyRef>,
    /// Notices produced by timers, handed out before jobs.
    actions: VecDeque<Action>,
    /// Source of timer sequence numbers and item generations. Only grows.
    counter: u64,
    /// Which ready queue goes first on the next pick when both have work.
    incoming_next: bool,
    /// Messages that may have become dormant (an item went waiting or held) since the
    /// last [`Scheduler::take_candidates`].
    candidates: Vec<QueueId>,
}

/// `now + d`, or `None` if that is beyond what `Instant` can hold (= never).
fn later(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

impl Scheduler {
    /// An empty scheduler.
    #[must_use]
    pub fn new(cfg: ScheduleConfig) -> Scheduler {
        Scheduler {
            cfg,
            messages: HashMap::new(),
            items: HashMap::new(),
            dests: HashMap::new(),
            timers: BinaryHeap::new(),
            incoming: VecDeque::new(),
            deferred: VecDeque::new(),
            actions: VecDeque::new(),
            counter: 0,
            incoming_next: true,
            candidates: Vec::new(),
        }
    }

    /// Number of messages queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Is message `id` queued (some recipient not final)?
    #[must_use]
    pub fn contains(&self, id: QueueId) -> bool {
        self.messages.contains_key(&id)
    }

    /// Per-recipient state of message `id` for `mailroot queue list`: pending recipients
    /// only, ascending by index; `None` if the message is not queued.
    #[must_use]
    pub fn status(&self, id: QueueId) -> Option<Vec<RcptStatus>> {
        let msg = self.messages.get(&id)?;
        let mut out = Vec::new();
        for (rcpt, domain) in &msg.rcpts {
            let Some(item) = self.items.get(&(id, Arc::clone(domain))) else { continue };
            if !item.rcpts.contains(rcpt) {
                continue;
            }
            let state = match &item.state {
                ItemState::Ready => RcptState::Ready,
                ItemState::Waiting { due } => RcptState::Waiting { next_try: *due },
                ItemState::Held => RcptState::Held,
                ItemState::Active { .. } => RcptState::Active,
            };
            out.push(RcptStatus {
                rcpt: *rcpt,
                domain: Arc::clone(domain),
                state,
                attempts: item.failures,
                last_error: item.last_error.clone(),
            });
        }
        Some(out)
    }

    /// Is `domain` treated as dead (its items held until a probe gets through)?
    #[must_use]
    pub fn is_dead(&self, domain: &str) -> bool {
        self.dests.get(domain).is_some_and(|d| d.failures > 0)
    }

    /// The next counter value.
    fn bump(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Add a timer (none if `at` is `None`, i.e. never).
    fn add_timer(&mut self, at: Option<Instant>, kind: TimerKind) {
        if let Some(at) = at {
            let seq = self.bump();
            self.timers.push(Reverse(Timer { at, seq, kind }));
        }
    }

    /// A message was spooled at `now`: queue its recipients, given as (index, domain).
    pub fn arrive(
        &mut self,
        id: QueueId,
        rcpts: &[(RcptIndex, &str)],
        now: Instant,
    ) -> Result<(), ScheduleError> {
        self.arrive_aged(id, rcpts, now, now)
    }

    /// Like [`Scheduler::arrive`] for a message spooled earlier, at `arrived` (recovery at
    /// start-up): its delay notice and expiry count from `arrived`.
    pub fn arrive_aged(
        &mut self,
        id: QueueId,
        rcpts: &[(RcptIndex, &str)],
        arrived: Instant,
        now: Instant,
    ) -> Result<(), ScheduleError> {
        self.arrive_with(id, rcpts, arrived, now, &Prior::default())
    }

    /// When the scheduler next needs [`Scheduler::next_due`] to be called, if ever.
    /// Call `next_due` until it returns `None` first; ready work is not a timer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse(t)) = self.timers.peek() {
            if self.timer_is_live(&t.kind) {
                return Some(t.at);
            }
            self.timers.pop();
        }
        None
    }

    /// Would this timer still do something?
    fn timer_is_live(&self, kind: &TimerKind) -> bool {
        match kind {
            TimerKind::Retry(id, d, g) => self.items.get(&(*id, Arc::clone(d))).is_some_and(|it| {
                matches!(it.state, ItemState::Waiting { .. }) && it.generation == *g
            }),
            TimerKind::DelayNotify(id, g) | TimerKind::Expire(id, g) => {
                self.messages.get(id).is_some_and(|m| m.generation == *g)
            }
            TimerKind::DestWake(d, g) => self.dests.get(d).is_some_and(|x| x.wake_generation == *g),
        }
    }

    /// The next thing to do at `now`, or `None` when nothing is due.
    pub fn next_due(&mut self, now: Instant) -> Option<Action> {
        self.fire_timers(now);
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        self.pick_ready().map(Action::Deliver)
    }

    /// Run every timer due at `now`.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse(t)) = self.timers.peek() {
            if t.at > now {
                break;
            }
            let Some(Reverse(t)) = self.timers.pop() else { break };
            if !self.timer_is_live(&t.kind) {
                continue;
            }
            match t.kind {
                TimerKind::Retry(id, d, _) => self.make_ready((id, d), false),
                TimerKind::DelayNotify(id, _) => self.delay_notice(id),
                TimerKind::Expire(id, _) => self.expire(id),
                TimerKind::DestWake(d, _) => self.wake(&d),
            }
        }
    }

    /// Move an item (not active) to the deferred ready queue.
    fn make_ready(&mut self, key: ItemKey, forced: bool) {
        let generation = self.bump();
        let Some(item) = self.items.get_mut(&key) else { return };
        if matches!(item.state, ItemState::Active { .. }) {
            return;
        }
        item.state = ItemState::Ready;
        item.generation = generation;
        self.deferred.push_back(ReadyRef { key, generation, forced });
    }

    /// Delay-notify time of message `id`: ask for one DSN listing deferred recipients.
    fn delay_notice(&mut self, id: QueueId) {
        let Some(msg) = self.messages.get(&id) else { return };
        if msg.delay_dsn_sent {
            return;
        }
        let mut rcpts = Vec::new();
        for d in &msg.dests {
            let Some(item) = self.items.get(&(id, Arc::clone(d))) else { continue };
            if item.failures == 0 {
                continue;
            }
            rcpts.extend(item.rcpts.iter().map(|&rcpt| PendingRcpt {
                rcpt,
                domain: Arc::clone(d),
                last_error: item.last_error.clone(),
            }));
        }
        if let Some(msg) = self.messages.get_mut(&id) {
            msg.delay_dsn_sent = true;
        }
        if !rcpts.is_empty() {
            self.actions.push_back(Action::DelayDsn { id, rcpts });
        }
    }

    /// Expiry time of message `id`: give up every item not being tried now.
    fn expire(&mut self, id: QueueId) {
        let Some(msg) = self.messages.get_mut(&id) else { return };
        msg.expired = true;
        let dests = msg.dests.clone();
        let mut gone = Vec::new();
        for d in dests {
            let key = (id, d);
            let active =
                self.items.get(&key).is_some_and(|it| matches!(it.state, ItemState::Active { .. }));
            if !active && let Some(item) = self.remove_item(&key) {
                gone.extend(item.rcpts.iter().map(|&rcpt| PendingRcpt {
                    rcpt,
                    domain: Arc::clone(&key.1),
                    last_error: item.last_error.clone(),
                }));
            }
        }
        self.push_expire(id, gone);
    }

    /// Queue an `Expire` action for `rcpts` of `id` and forget them.
    fn push_expire(&mut self, id: QueueId, rcpts: Vec<PendingRcpt>) {
        if rcpts.is_empty() {
            return;
        }
        let message_done = self.finish_rcpts(id, rcpts.len());
        self.actions.push_back(Action::Expire { id, rcpts, message_done });
    }

    /// `n` recipients of `id` became final; forget the message when none is left.
    /// Returns true when the message is done.
    fn finish_rcpts(&mut self, id: QueueId, n: usize) -> bool {
        let Some(msg) = self.messages.get_mut(&id) else { return true };
        msg.pending = msg.pending.saturating_sub(n);
        if msg.pending == 0 {
            self.messages.remove(&id);
            // Its delay and expiry timers (hours, days ahead) are stale now.
            self.drop_stale_timers();
            return true;
        }
        false
    }

    /// Drop an item from the maps (stale references elsewhere are skipped later).
    fn remove_item(&mut self, key: &ItemKey) -> Option<Item> {
        let item = self.items.remove(key)?;
        if let Some(msg) = self.messages.get_mut(&key.0) {
            msg.dests.retain(|d| *d != key.1);
        }
        if let Some(dest) = self.dests.get_mut(&key.1) {
            dest.items.remove(&key.0);
            if dest.items.is_empty() && dest.failures == 0 {
                self.dests.remove(&key.1);
            }
        }
        Some(item)
    }

    /// A dead destination's backoff ended: release one held item as a probe, or revive
    /// the destination if nothing is held.
    fn wake(&mut self, domain: &Arc<str>) {
        loop {
            let Some(dest) = self.dests.get_mut(domain) else { return };
            let Some((id, g)) = dest.held.pop_front() else {
                // Nothing held here (the runner parked it, or nothing was queued): the next
                // item picked for it is the probe; the runner may bring one back for that.
                dest.probe_next = true;
                self.actions.push_back(Action::Wake { domain: Arc::clone(domain) });
                return;
            };
            let key = (id, Arc::clone(domain));
            if self.is_held(&key, g) {
                self.make_ready(key, true);
                return;
            }
        }
    }

    /// A destination answered: it is alive again; release everything held. Returns the
    /// number of items released. `announce`: tell the caller ([`Action::Revived`]) if it
    /// was dead (not when the caller asked for it, as `flush_domain` does).
    fn revive(&mut self, domain: &Arc<str>, announce: bool) -> usize {
        let Some(dest) = self.dests.get_mut(domain) else { return 0 };
        if announce && dest.failures > 0 {
            self.actions.push_back(Action::Revived { domain: Arc::clone(domain) });
        }
        dest.failures = 0;
        dest.dead_until = None;
        dest.probe_next = false;
        dest.wake_generation += 1;
        let held: Vec<(QueueId, u64)> = dest.held.drain(..).collect();
        let empty = dest.items.is_empty();
        let mut released = 0;
        for (id, g) in held {
            let key = (id, Arc::clone(domain));
            if self.is_held(&key, g) {
                self.make_ready(key, false);
                released += 1;
            }
        }
        if empty {
            self.dests.remove(domain);
        }
        released
    }

    /// Is the item at `key` held with generation `g` (a held-list entry still valid)?
    fn is_held(&self, key: &ItemKey, g: u64) -> bool {
        self.items
            .get(key)
            .is_some_and(|it| matches!(it.state, ItemState::Held) && it.generation == g)
    }

    /// Take the next ready item, alternating between incoming and deferred.
    fn pick_ready(&mut self) -> Option<Job> {
        loop {
            let from_incoming = match (self.incoming.is_empty(), self.deferred.is_empty()) {
                (true, true) => return None,
                (false, true) => true,
                (true, false) => false,
                (false, false) => self.incoming_next,
            };
            let r =
                if from_incoming { self.incoming.pop_front() } else { self.deferred.pop_front() }?;
            let live = self.items.get(&r.key).is_some_and(|it| {
                matches!(it.state, ItemState::Ready) && it.generation == r.generation
            });
            if !live {
                continue;
            }
            self.incoming_next = !from_incoming;
            if self.is_dead(&r.key.1) && !self.take_probe(&r.key.1, r.forced) {
                self.hold(r.key);
                continue;
            }
            let limit = self.cfg.max_jobs_per_dest;
            let dest = self.dests.entry(Arc::clone(&r.key.1)).or_default();
            if dest.active >= limit {
                dest.blocked.push_back(r);
                continue;
            }
            dest.active += 1;
            let Some(item) = self.items.get_mut(&r.key) else { continue };
            item.state = ItemState::Active { outstanding: item.rcpts.clone(), all_dest_down: None };
            let job = Job {
                id: r.key.0,
                domain: Arc::clone(&r.key.1),
                rcpts: item.rcpts.clone(),
                attempt: item.failures + 1,
            };
            return Some(job);
        }
    }

    /// A job to `domain` finished: free its slot and let the first blocked item (if any)
    /// go next, ahead of the deferred queue (it was ready before everything there).
    fn free_slot(&mut self, domain: &Arc<str>) {
        let Some(dest) = self.dests.get_mut(domain) else { return };
        dest.active = dest.active.saturating_sub(1);
        while let Some(r) = dest.blocked.pop_front() {
            let live = self.items.get(&r.key).is_some_and(|it| {
                matches!(it.state, ItemState::Ready) && it.generation == r.generation
            });
            if live {
                self.deferred.push_front(r);
                return;
            }
        }
    }

    /// Park an item on its dead destination.
    fn hold(&mut self, key: ItemKey) {
        let generation = self.bump();
        let Some(item) = self.items.get_mut(&key) else { return };
        item.state = ItemState::Held;
        item.generation = generation;
        self.dests.entry(Arc::clone(&key.1)).or_default().held.push_back((key.0, generation));
        self.candidates.push(key.0);
    }

    /// Report the outcome of one recipient of a job. Returns true when the message is
    /// done (no pending recipient left) and was forgotten.
    pub fn result(
        &mut self,
        id: QueueId,
        rcpt: RcptIndex,
        outcome: Outcome,
        now: Instant,
    ) -> Result<bool, ScheduleError> {
        let msg = self.messages.get(&id).ok_or(ScheduleError::UnknownMessage(id))?;
        let domain = match msg.rcpts.binary_search_by_key(&rcpt, |&(i, _)| i) {
            Ok(pos) => Arc::clone(&msg.rcpts[pos].1),
            Err(_) => return Err(ScheduleError::NotInFlight(id, rcpt)),
        };
        let key = (id, domain);
        let item = self.items.get_mut(&key).ok_or(ScheduleError::NotInFlight(id, rcpt))?;
        let ItemState::Active { outstanding, all_dest_down } = &mut item.state else {
            return Err(ScheduleError::NotInFlight(id, rcpt));
        };
        let pos = outstanding
            .iter()
            .position(|&r| r == rcpt)
            .ok_or(ScheduleError::NotInFlight(id, rcpt))?;
        outstanding.swap_remove(pos);
        let finished = outstanding.is_empty();
        let mut done_now = 0;
        match outcome {
            Outcome::Delivered | Outcome::Failed => {
                item.rcpts.retain(|&r| r != rcpt);
                done_now = 1;
                *all_dest_down = Some(false);
            }
            Outcome::Deferred { reason, dest_down } => {
                item.last_error = Some(reason);
                *all_dest_down = Some(all_dest_down.unwrap_or(true) && dest_down);
            }
        }
        let dest_down = *all_dest_down == Some(true);
        let mut message_done = done_now > 0 && self.finish_rcpts(id, done_now);
        if finished {
            message_done |= self.finish_job(key, dest_down, now);
        }
        Ok(message_done)
    }

    /// Every recipient of an item's job has reported: update the destination's health and
    /// re-queue, expire or drop the item. Returns true when the message is done.
    fn finish_job(&mut self, key: ItemKey, dest_down: bool, now: Instant) -> bool {
        self.free_slot(&key.1);
        if dest_down {
            self.dest_failed(&key.1, now);
        } else if self.dests.get(&key.1).is_some_and(|d| d.failures > 0) {
            self.revive(&key.1, true);
        }
        let empty = self.items.get(&key).is_none_or(|it| it.rcpts.is_empty());
        if empty {
            self.remove_item(&key);
            return !self.messages.contains_key(&key.0);
        }
        let expired = self.messages.get(&key.0).is_none_or(|m| m.expired);
        if expired {
            let Some(item) = self.remove_item(&key) else { return false };
            let rcpts: Vec<PendingRcpt> = item
                .rcpts
                .iter()
                .map(|&rcpt| PendingRcpt {
                    rcpt,
                    domain: Arc::clone(&key.1),
                    last_error: item.last_error.clone(),
                })
                .collect();
            let before = self.actions.len();
            self.push_expire(key.0, rcpts);
            return matches!(
                self.actions.get(before),
                Some(Action::Expire { message_done: true, .. })
            );
        }
        let generation = self.bump();
        let Some(item) = self.items.get_mut(&key) else { return false };
        item.failures += 1;
        let due = later(now, self.cfg.retry_after(item.failures));
        item.state = ItemState::Waiting { due };
        item.generation = generation;
        self.candidates.push(key.0);
        self.add_timer(due, TimerKind::Retry(key.0, key.1, generation));
        false
    }

    /// An attempt found `domain` unreachable: mark it dead (once per backoff period).
    fn dest_failed(&mut self, domain: &Arc<str>, now: Instant) {
        let cfg_backoff = |f| self.cfg.dest_backoff(f);
        let dest = self.dests.entry(Arc::clone(domain)).or_default();
        if dest.dead_until.is_some_and(|t| t > now) {
            return; // already dead: parallel attempts do not stretch the backoff
        }
        dest.failures += 1;
        let backoff = cfg_backoff(dest.failures);
        dest.dead_until = Some(later(now, backoff).unwrap_or(now));
        dest.wake_generation += 1;
        let (at, g) = (dest.dead_until, dest.wake_generation);
        // What it holds can wait for the wake-up out of memory now.
        self.candidates.extend(dest.held.iter().map(|&(id, _)| id));
        self.add_timer(at, TimerKind::DestWake(Arc::clone(domain), g));
    }

    /// Take message `id` out of the schedule (the operator held, deleted or bounced it):
    /// its recipients, ascending, with their domains. Refused while a delivery attempt
    /// for it is in flight (its results must come back first).
    pub fn remove(&mut self, id: QueueId) -> Result<Vec<(RcptIndex, Arc<str>)>, ScheduleError> {
        let msg = self.messages.get(&id).ok_or(ScheduleError::UnknownMessage(id))?;
        let keys: Vec<ItemKey> = msg.dests.iter().map(|d| (id, Arc::clone(d))).collect();
        if keys.iter().any(|k| {
            matches!(self.items.get(k), Some(Item { state: ItemState::Active { .. }, .. }))
        }) {
            return Err(ScheduleError::InFlight(id));
        }
        let mut out = Vec::new();
        for key in keys {
            if let Some(item) = self.remove_item(&key) {
                out.extend(item.rcpts.iter().map(|&r| (r, Arc::clone(&key.1))));
            }
        }
        self.messages.remove(&id);
        self.drop_stale_timers();
        out.sort_by_key(|&(r, _)| r);
        Ok(out)
    }

    /// Retry every waiting or held recipient of message `id` now, even to a dead
    /// destination. Returns false if the message is not queued.
    pub fn flush(&mut self, id: QueueId) -> bool {
        let Some(msg) = self.messages.get(&id) else { return false };
        for d in msg.dests.clone() {
            self.make_ready((id, d), true);
        }
        true
    }

    /// Retry everything queued for `domain` now, and forget that it was dead. Returns the
    /// number of messages re-queued (waiting or held before).
    pub fn flush_domain(&mut self, domain: &str) -> usize {
        let domain = domain.strip_suffix('.').unwrap_or(domain).to_ascii_lowercase();
        let Some((d, _)) = self.dests.get_key_value(domain.as_str()) else { return 0 };
        let d = Arc::clone(d);
        let mut n = self.revive(&d, false);
        let ids: Vec<QueueId> =
            self.dests.get(&d).map(|x| x.items.iter().copied().collect()).unwrap_or_default();
        for id in ids {
            let key = (id, Arc::clone(&d));
            if self.items.get(&key).is_some_and(|it| matches!(it.state, ItemState::Waiting { .. }))
            {
                self.make_ready(key, false);
                n += 1;
            }
        }
        n
    }

    /// Retry every waiting recipient now (`mailroot queue flush` without arguments).
    pub fn flush_all(&mut self) -> usize {
        let domains: Vec<Arc<str>> = self.dests.keys().cloned().collect();
        domains.iter().map(|d| self.flush_domain(d)).sum()
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
