//! The runner's admissions and its parked messages (`queue::park`): which queued messages
//! are in memory, in the scheduler, and which wait out of it by id only.
//!
//! WHAT: a message enters the scheduler ([`Runner::arrive`]) when it is committed, found
//! at start-up, or comes back from parking; at most `[delivery] active_limit` are in at
//! once, and one that finds no room is parked due now (first come, first in). After
//! every pass the runner asks the scheduler about each message that just went waiting or
//! held (`Scheduler::take_candidates`, `Scheduler::dormant`): one with nothing to do
//! before a known time leaves memory ([`Runner::park_dormant`]) and comes back then,
//! continuing from its state file (failures, next retry, last error) and from what its
//! parked entry carries (its delay DSN was sent). A dead destination's mail is parked
//! blocked on it: when its backoff ends, one message is brought back as the probe
//! (`Action::Wake`); when it answers, all of it is due (`Action::Revived`).
//!
//! Why: the scheduler's and runner's books cost 1.6-2.3 KiB per queued message
//! (perf/RESULTS.md 2026-12-06 02:18); a parked one costs its entry in `queue::park`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Meta, Runner, shape, shape_slot, unix_ms};
use crate::policy::domain::{is_local_domain, normalize, rcpt_domain};
use crate::queue::park::{Entry, Park};
use crate::queue::schedule::{Prior, PriorRcpt};
use crate::spool::state::{self, RcptState};
use crate::spool::{QueueId, RcptStatus};
use crate::stats::Counter;

/// Where an arriving message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// Just committed: no state file yet (no file lookup on the hot path).
    New,
    /// In the spool at start-up, or put back by an operator action: continue from its
    /// state file (hold, failures), tried at once.
    Recovered,
    /// Back from parking.
    Parked {
        /// Its delay DSN was already asked for.
        delay_dsn_sent: bool,
        /// Tried at once (else at the next retry its state file names).
        retry_now: bool,
    },
}

impl Arrival {
    /// The arrival of a parked entry.
    fn of(e: &Entry) -> Arrival {
        Arrival::Parked { delay_dsn_sent: e.delay_dsn_sent, retry_now: e.retry_now }
    }
}

/// The gauge slot a message counts in, as a parked entry's tag.
fn tag(c: Counter) -> u8 {
    shape_slot(c) as u8
}

/// `next_retry_unix_ms` of a state file as an `Instant` (0 = unknown: `None`, at once).
fn instant_of(unix: u64, now_unix: u64, now: Instant) -> Option<Instant> {
    (unix != 0).then(|| now.checked_add(Duration::from_millis(unix.saturating_sub(now_unix))))?
}

impl Runner {
    /// A message to schedule: its pending recipients go to the scheduler, unless the
    /// active set is full (then it is parked due now) or the operator holds it.
    pub(super) fn arrive(&mut self, id: QueueId, now: Instant, from: Arrival) {
        if self.msgs.contains_key(&id) {
            return;
        }
        if !matches!(from, Arrival::Parked { .. })
            && let Some(e) = self.parked.take(id)
        {
            // Brought back early (released, put back): it arrives now.
            self.shape[usize::from(e.tag)] -= 1; // stats
        }
        let info = match self.spool.message_info(id) {
            Ok(i) => i,
            Err(e) => {
                log::warn!("queue_id={id} cannot load envelope: {e}");
                return;
            }
        };
        // Anything but a new message may have a state file: the operator's hold (then it
        // stays out of the schedule), and its recipients' history.
        let file = if from == Arrival::New {
            state::StateFile::default()
        } else {
            state::read_file(self.spool.queue_dir(), id)
        };
        if let Some(since) = file.held_since_unix_ms {
            if info.rcpt_status.contains(&RcptStatus::Pending) {
                log::info!("queue_id={id} held by the operator: not scheduled");
                self.held.insert(id, since);
            }
            return;
        }
        let env = info.envelope;
        let cfg = Arc::clone(&self.config);
        let rcpts: Vec<(u32, &str)> = env
            .recipients
            .iter()
            .enumerate()
            .filter(|(i, _)| info.rcpt_status.get(*i) == Some(&RcptStatus::Pending))
            .map(|(i, r)| (i as u32, rcpt_domain(&cfg, &r.forward_path)))
            .collect();
        if rcpts.is_empty() {
            return;
        }
        let remote = rcpts
            .iter()
            .any(|(_, d)| !is_local_domain(&cfg.domains, d) && !cfg.is_site_local_domain(d));
        // stats: the gauge it counts in, parked or not (what `shape_of` says of its Meta).
        let counted = shape(!file.rcpts.is_empty(), remote);
        if self.msgs.len() >= self.active_limit && !matches!(from, Arrival::Parked { .. }) {
            let how =
                Park { until: Some(now), retry_now: true, tag: tag(counted), ..Park::default() };
            self.parked.park(id, how);
            self.shape[shape_slot(counted)] += 1; // stats
            return;
        }
        let (delay_dsn_sent, retry_now) = match from {
            Arrival::New | Arrival::Recovered => (false, true),
            Arrival::Parked { delay_dsn_sent, retry_now } => (delay_dsn_sent, retry_now),
        };
        let now_unix = unix_ms();
        let prior = Prior {
            rcpts: file
                .rcpts
                .iter()
                .map(|s| PriorRcpt {
                    rcpt: s.index,
                    failures: s.attempts,
                    last_error: (!s.last_error.is_empty()).then(|| s.last_error.clone()),
                    next_try: if retry_now {
                        None
                    } else {
                        instant_of(s.next_retry_unix_ms, now_unix, now)
                    },
                })
                .collect(),
            delay_dsn_sent: delay_dsn_sent || file.delay_dsn_unix_ms.is_some(),
        };
        let age = Duration::from_millis(now_unix.saturating_sub(env.arrival_unix_ms));
        let arrived = now.checked_sub(age).unwrap_or(now);
        if let Err(e) = self.sched.arrive_with(id, &rcpts, arrived, now, &prior) {
            log::warn!("queue_id={id} scheduler refused: {e}");
            return;
        }
        let delay_dsn_unix_ms = file.delay_dsn_unix_ms;
        let state = file.rcpts.into_iter().map(|s: RcptState| (s.index, s)).collect();
        let meta = Meta { env: Arc::new(env), state, remote, counted, delay_dsn_unix_ms };
        self.shape[shape_slot(counted)] += 1; // stats
        self.msgs.insert(id, meta);
    }

    /// Bring parked messages due at `now` back while there is room.
    pub(super) fn admit_due(&mut self, now: Instant) {
        while self.msgs.len() < self.active_limit {
            let Some((id, e)) = self.parked.pop_due(now) else { return };
            self.shape[usize::from(e.tag)] -= 1; // stats
            self.arrive(id, now, Arrival::of(&e));
        }
    }

    /// When a parked message is next due, if there is room for it.
    pub(super) fn parked_due(&self) -> Option<Instant> {
        (self.msgs.len() < self.active_limit).then(|| self.parked.next_due()).flatten()
    }

    /// Park every message that went waiting or held and has nothing to do before a
    /// known time (its state file already holds its recipients' history).
    pub(super) fn park_dormant(&mut self, now: Instant) {
        for id in self.sched.take_candidates() {
            if !self.msgs.contains_key(&id) {
                continue;
            }
            let Some(d) = self.sched.dormant(id, now) else { continue };
            if self.sched.remove(id).is_err() {
                continue;
            }
            let Some(m) = self.msgs.remove(&id) else { continue };
            let how = Park {
                until: d.until,
                blocked_on: d.blocked_on,
                delay_dsn_sent: d.delay_dsn_sent,
                retry_now: false,
                tag: tag(m.counted),
            };
            log::debug!("queue_id={id} parked until={:?}", how.until.map(|t| t - now));
            self.parked.park(id, how);
        }
    }

    /// A dead destination's backoff ended with nothing held for it in memory: bring back
    /// one message parked for it as the probe, or forget the destination.
    pub(super) fn on_wake(&mut self, domain: &Arc<str>, now: Instant) {
        let Some((id, e)) = self.parked.pop_blocked(domain) else {
            self.sched.forget_idle_dest(domain);
            return;
        };
        self.shape[usize::from(e.tag)] -= 1; // stats
        // Ready at once; the scheduler lets the first item picked for the domain go as
        // its probe (this one, or one whose retry fell due at the same time).
        self.arrive(id, now, Arrival::Parked { delay_dsn_sent: e.delay_dsn_sent, retry_now: true });
    }

    /// A dead destination answered: its parked mail is due now.
    pub(super) fn on_revived(&mut self, domain: &str, now: Instant) {
        let n = self.parked.unblock(domain, now);
        if n > 0 {
            log::info!("domain={domain} answers again: {n} parked message(s) due now");
        }
    }

    /// `mailroot queue flush --domain D` for parked mail: every parked message with a
    /// pending recipient in `domain` is due now and tried at once (each envelope is read
    /// from the spool: an operator's command, not a hot path). Returns how many.
    pub(super) fn flush_parked_domain(&mut self, domain: &str, now: Instant) -> usize {
        let domain = normalize(domain);
        let ids: Vec<QueueId> = self.parked.ids().collect();
        let cfg = Arc::clone(&self.config);
        let mut n = 0;
        for id in ids {
            let Ok(info) = self.spool.message_info(id) else { continue };
            let hit = info.envelope.recipients.iter().enumerate().any(|(i, r)| {
                info.rcpt_status.get(i) == Some(&RcptStatus::Pending)
                    && normalize(rcpt_domain(&cfg, &r.forward_path)) == domain
            });
            if hit && self.parked.make_due(id, now, true) {
                n += 1;
            }
        }
        n
    }
}
