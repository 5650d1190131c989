//! The runner's parked messages: queued messages kept out of memory but for their id.
//!
//! WHAT: the queue runner keeps at most `[delivery] active_limit` messages in the
//! scheduler (envelope, per-recipient state, timers: one to two KiB each). Everything
//! else is *parked* here with only what it needs to come back at the right time:
//! - a message with nothing to do before a known time (`Scheduler::dormant`: waiting for a
//!   retry, its delay notice or its expiry) is parked *until* that time;
//! - one whose destination is dead is parked *blocked on* that domain as well, and comes
//!   back when the domain answers again (`unblock`) or one of it is wanted as the probe
//!   (`pop_blocked`);
//! - a new or recovered message that finds the active set full is parked due *now*, and
//!   comes in first-come first-served as room frees up.
//!
//! Postfix's qmgr does the same with its active queue limit (20,000) and the deferred
//! queue on disk; here the spool already is the disk copy, and a parked message costs
//! about a hundred bytes (this entry and its place in the due order).
//!
//! Layer 0: no I/O, never reads the clock (`now` is passed in).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::spool::format::QueueId;

/// One parked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it comes back, with its place among equal times (`None` = only when its
    /// blocking domain answers, or never).
    due: Option<(Instant, u64)>,
    /// The dead destination it waits for.
    pub blocked_on: Option<Arc<str>>,
    /// Its delay DSN was already asked for.
    pub delay_dsn_sent: bool,
    /// Try it at once when it comes back, whatever its state file says (a new or
    /// recovered message, or one the operator flushed).
    pub retry_now: bool,
    /// The caller's tag (the runner: which queue-length gauge counts it).
    pub tag: u8,
}

/// How a message is parked (the caller's side of an [`Entry`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Park {
    /// When it comes back (`None` = only when `blocked_on` answers, or never).
    pub until: Option<Instant>,
    /// The dead destination it waits for.
    pub blocked_on: Option<Arc<str>>,
    /// Its delay DSN was already asked for.
    pub delay_dsn_sent: bool,
    /// Try it at once when it comes back.
    pub retry_now: bool,
    /// The caller's tag.
    pub tag: u8,
}

/// The parked messages. See the module doc.
#[derive(Debug, Default)]
pub struct Parked {
    /// Every parked message.
    entries: HashMap<QueueId, Entry>,
    /// The ones with a time, in the order they come back.
    order: BTreeSet<(Instant, u64, QueueId)>,
    /// Per dead domain, the messages blocked on it (may hold stale ids: each is checked
    /// against `entries` when used).
    blocked: HashMap<Arc<str>, Vec<QueueId>>,
    /// Source of the places among equal times. Only grows.
    seq: u64,
}

impl Parked {
    /// Nothing parked.
    #[must_use]
    pub fn new() -> Parked {
        Parked::default()
    }

    /// Number of parked messages.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is parked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Is `id` parked?
    #[must_use]
    pub fn contains(&self, id: QueueId) -> bool {
        self.entries.contains_key(&id)
    }

    /// The parked ids, in no order.
    pub fn ids(&self) -> impl Iterator<Item = QueueId> + '_ {
        self.entries.keys().copied()
    }

    /// Park `id` (again, if it already is: the new terms replace the old).
    pub fn park(&mut self, id: QueueId, how: Park) {
        self.take(id);
        self.seq += 1;
        let due = how.until.map(|t| (t, self.seq));
        if let Some((t, s)) = due {
            self.order.insert((t, s, id));
        }
        if let Some(d) = &how.blocked_on {
            let list = self.blocked.entry(Arc::clone(d)).or_default();
            list.push(id);
            if list.len() >= 64 && list.len().is_power_of_two() {
                let entries = &self.entries;
                list.retain(|i| {
                    *i == id || entries.get(i).is_some_and(|e| e.blocked_on.as_ref() == Some(d))
                });
                list.sort_unstable();
                list.dedup();
            }
        }
        let Park { blocked_on, delay_dsn_sent, retry_now, tag, .. } = how;
        self.entries.insert(id, Entry { due, blocked_on, delay_dsn_sent, retry_now, tag });
    }

    /// Unpark `id`: its entry, or `None` if it is not parked.
    pub fn take(&mut self, id: QueueId) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        if let Some((t, s)) = e.due {
            self.order.remove(&(t, s, id));
        }
        Some(e)
    }

    /// When the next parked message is due (`None` = none has a time).
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.order.first().map(|&(t, _, _)| t)
    }

    /// Unpark the first message due at `now`, if any (earliest time first, then the
    /// order they were parked in).
    pub fn pop_due(&mut self, now: Instant) -> Option<(QueueId, Entry)> {
        let &(t, _, id) = self.order.first()?;
        if t > now {
            return None;
        }
        self.take(id).map(|e| (id, e))
    }

    /// Unpark one message blocked on `domain` (to be its probe), if any.
    pub fn pop_blocked(&mut self, domain: &str) -> Option<(QueueId, Entry)> {
        let list = self.blocked.get_mut(domain)?;
        while let Some(id) = list.pop() {
            if self.entries.get(&id).is_some_and(|e| e.blocked_on.as_deref() == Some(domain)) {
                return self.take(id).map(|e| (id, e));
            }
        }
        self.blocked.remove(domain);
        None
    }

    /// `domain` answers again: everything blocked on it is due `now`. Returns how many.
    pub fn unblock(&mut self, domain: &str, now: Instant) -> usize {
        let Some(list) = self.blocked.remove(domain) else { return 0 };
        let mut n = 0;
        for id in list {
            let blocked =
                self.entries.get(&id).is_some_and(|e| e.blocked_on.as_deref() == Some(domain));
            if blocked && self.make_due(id, now, false) {
                n += 1;
            }
        }
        n
    }

    /// Make `id` due `now`, no longer blocked; `retry_now` also sets its flag (the
    /// operator flushed it). False if it is not parked.
    pub fn make_due(&mut self, id: QueueId, now: Instant, retry_now: bool) -> bool {
        let Some(e) = self.take(id) else { return false };
        let how = Park {
            until: Some(now),
            blocked_on: None,
            delay_dsn_sent: e.delay_dsn_sent,
            retry_now: e.retry_now || retry_now,
            tag: e.tag,
        };
        self.park(id, how);
        true
    }

    /// Make every parked message due `now` and tried at once (`mailroot queue flush`).
    /// Returns how many.
    pub fn make_all_due(&mut self, now: Instant) -> usize {
        let ids: Vec<QueueId> = self.ids().collect();
        self.blocked.clear();
        ids.iter().filter(|&&id| self.make_due(id, now, true)).count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(n: u64) -> QueueId {
        QueueId(n)
    }

    fn at(until: Instant) -> Park {
        Park { until: Some(until), ..Park::default() }
    }

    #[test]
    fn messages_come_back_in_time_order_then_parking_order() {
        let t0 = Instant::now();
        let mut p = Parked::new();
        p.park(id(1), at(t0 + Duration::from_secs(20)));
        p.park(id(2), at(t0 + Duration::from_secs(10)));
        p.park(id(3), at(t0 + Duration::from_secs(10)));
        p.park(id(4), Park { until: None, ..Park::default() });
        assert_eq!((p.len(), p.next_due()), (4, Some(t0 + Duration::from_secs(10))));
        assert_eq!(p.pop_due(t0 + Duration::from_secs(9)), None);
        let t = t0 + Duration::from_secs(30);
        let got: Vec<u64> = std::iter::from_fn(|| p.pop_due(t)).map(|(i, _)| i.0).collect();
        assert_eq!(got, [2, 3, 1]);
        assert!(p.contains(id(4)) && p.next_due().is_none(), "no time: never due by itself");
    }

    #[test]
    fn parking_again_replaces_the_terms_and_take_forgets() {
        let t0 = Instant::now();
        let mut p = Parked::new();
        p.park(id(1), at(t0));
        p.park(id(1), Park { tag: 2, ..at(t0 + Duration::from_secs(60)) });
        assert_eq!(p.len(), 1);
        assert_eq!(p.pop_due(t0), None, "the old time is gone");
        let e = p.take(id(1)).unwrap();
        assert_eq!(e.tag, 2);
        assert!(p.is_empty() && p.next_due().is_none() && p.take(id(1)).is_none());
    }

    #[test]
    fn a_domain_that_answers_unblocks_its_messages_and_one_can_be_its_probe() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        let dead: Arc<str> = Arc::from("dead.example");
        let mut p = Parked::new();
        for n in 1..=3 {
            p.park(id(n), Park { blocked_on: Some(Arc::clone(&dead)), ..at(far) });
        }
        p.park(id(9), at(far));
        let (probe, e) = p.pop_blocked("dead.example").unwrap();
        assert_eq!(e.blocked_on.as_deref(), Some("dead.example"));
        assert!(!p.contains(probe));
        // One of them was taken for another reason: it is not unblocked.
        let gone = if probe == id(1) { id(2) } else { id(1) };
        p.take(gone);
        assert_eq!(p.unblock("dead.example", t0), 1);
        let (back, e) = p.pop_due(t0).unwrap();
        assert!(e.blocked_on.is_none() && !e.retry_now && back != probe && back != gone);
        assert_eq!(p.pop_due(t0), None, "id 9 still waits for its own time");
        assert_eq!(p.pop_blocked("dead.example"), None);
        assert_eq!(p.unblock("other.example", t0), 0);
    }

    #[test]
    fn flush_makes_everything_due_and_tried_at_once() {
        let t0 = Instant::now();
        let mut p = Parked::new();
        let dead: Arc<str> = Arc::from("dead.example");
        p.park(id(1), Park { blocked_on: Some(dead), delay_dsn_sent: true, ..Park::default() });
        p.park(id(2), at(t0 + Duration::from_secs(3600)));
        assert_eq!(p.make_all_due(t0), 2);
        let mut got: Vec<(u64, Entry)> =
            std::iter::from_fn(|| p.pop_due(t0)).map(|(i, e)| (i.0, e)).collect();
        got.sort_by_key(|(i, _)| *i);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, e)| e.retry_now && e.blocked_on.is_none()));
        assert!(got[0].1.delay_dsn_sent, "what it carried stays");
        assert!(!p.make_due(id(1), t0, true), "no longer parked");
    }

    #[test]
    fn blocked_lists_do_not_grow_with_re_parking() {
        let t0 = Instant::now();
        let dead: Arc<str> = Arc::from("dead.example");
        let mut p = Parked::new();
        for _ in 0..1000 {
            for n in 0..10 {
                p.park(id(n), Park { blocked_on: Some(Arc::clone(&dead)), ..at(t0) });
            }
        }
        let list = &p.blocked["dead.example"];
        assert!(list.len() <= 2 * 64, "blocked list: {}", list.len());
        assert_eq!(p.unblock("dead.example", t0), 10);
    }
}
