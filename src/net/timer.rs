//! Hashed timer wheel for idle timeouts.
//!
//! WHAT: at most one timer per key (a connection slot index); `schedule`, `cancel` and
//! firing are O(1) per timer: each wheel slot heads an intrusive doubly linked list
//! threaded through a node array indexed by key, so no allocation happens after the node
//! array has grown to the connection table's high-water mark.
//!
//! TIME: the wheel is pure. It counts abstract ticks (`TICK_MS` each); the worker turns
//! `Instant`s into ticks. A timer for tick `t` lands in slot `t % WHEEL_SLOTS`; entries due
//! in a later rotation stay in their slot until their tick comes round again
//! (idle timeouts are minutes, a rotation is `WHEEL_SLOTS * TICK_MS` = 102.4 s, so each
//! entry is looked at a handful of times before it fires).
//!
//! TRUST: keys come from the worker's connection table, never from the network.

/// Length of one tick in milliseconds. Idle timeouts fire at most one tick late.
pub const TICK_MS: u64 = 100;

/// Number of slots in the wheel (a power of two so `%` is a mask).
const WHEEL_SLOTS: usize = 1024;

/// How many ticks ahead `next_due_in` looks for an occupied slot before giving up and
/// reporting this many ticks (the worker then wakes once, finds nothing due, and re-asks).
pub const MAX_SCAN_TICKS: u64 = 50;

/// "No node" marker in the intrusive lists.
const NIL: u32 = u32::MAX;

/// One timer; `nodes[key]`.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Previous node in the same slot list, or `NIL` when this node is the head.
    prev: u32,
    /// Next node in the same slot list, or `NIL`.
    next: u32,
    /// Tick at which the timer fires; meaningful only while `armed`.
    deadline: u64,
    /// Whether the node is linked into `heads[deadline % WHEEL_SLOTS]`.
    armed: bool,
}

const IDLE_NODE: Node = Node { prev: NIL, next: NIL, deadline: 0, armed: false };

/// A hashed timer wheel keyed by small integers (connection slot indices).
#[derive(Debug)]
pub struct TimerWheel {
    /// Head of each slot's list (`NIL` when empty).
    heads: Vec<u32>,
    /// Node per key; grows on demand. Invariant: a node is `armed` iff it is linked.
    nodes: Vec<Node>,
    /// Every tick before `current` has been expired; deadlines earlier than it are
    /// clamped to it on `schedule`.
    current: u64,
    /// Number of armed nodes.
    len: usize,
}

impl TimerWheel {
    /// An empty wheel whose first unexpired tick is `start_tick`.
    pub fn new(start_tick: u64) -> TimerWheel {
        TimerWheel { heads: vec![NIL; WHEEL_SLOTS], nodes: Vec::new(), current: start_tick, len: 0 }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick at which `key` fires, if armed.
    pub fn deadline(&self, key: usize) -> Option<u64> {
        self.nodes.get(key).filter(|n| n.armed).map(|n| n.deadline)
    }

    /// Arm (or re-arm) the timer for `key` to fire at `deadline_tick`. O(1).
    pub fn schedule(&mut self, key: usize, deadline_tick: u64) {
        assert!(key < NIL as usize, "timer key {key} out of range");
        if key >= self.nodes.len() {
            self.nodes.resize(key + 1, IDLE_NODE);
        }
        let deadline = deadline_tick.max(self.current);
        if self.nodes[key].armed {
            if self.nodes[key].deadline == deadline {
                return;
            }
            self.unlink(key);
        }
        let slot = slot_of(deadline);
        let head = self.heads[slot];
        self.nodes[key] = Node { prev: NIL, next: head, deadline, armed: true };
        if head != NIL {
            self.nodes[head as usize].prev = key as u32;
        }
        self.heads[slot] = key as u32;
        self.len += 1;
    }

    /// Disarm the timer for `key` if armed. O(1).
    pub fn cancel(&mut self, key: usize) {
        if self.nodes.get(key).is_some_and(|n| n.armed) {
            self.unlink(key);
        }
    }

    /// Fire every timer due at or before `now_tick`: their keys are appended to `fired`
    /// (and disarmed). Walks at most one full rotation however long the worker slept.
    pub fn expire(&mut self, now_tick: u64, fired: &mut Vec<usize>) {
        if now_tick < self.current {
            return;
        }
        let span = (now_tick - self.current + 1).min(WHEEL_SLOTS as u64);
        for t in 0..span {
            let slot = slot_of(self.current + t);
            let mut cursor = self.heads[slot];
            while cursor != NIL {
                let key = cursor as usize;
                cursor = self.nodes[key].next;
                if self.nodes[key].deadline <= now_tick {
                    self.unlink(key);
                    fired.push(key);
                }
            }
        }
        self.current = now_tick + 1;
    }

    /// Ticks from `now_tick` until the next occupied slot (0 = something may be due now),
    /// or `None` when no timer is armed. Looks at most `MAX_SCAN_TICKS` ahead.
    pub fn next_due_in(&self, now_tick: u64) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let from = self.current.max(now_tick);
        if self.current <= now_tick && self.heads[slot_of(now_tick)] != NIL {
            return Some(0);
        }
        for ahead in 0..MAX_SCAN_TICKS {
            if self.heads[slot_of(from + ahead)] != NIL {
                return Some(from + ahead - now_tick);
            }
        }
        Some(from + MAX_SCAN_TICKS - now_tick)
    }

    /// Remove an armed node from its slot list.
    fn unlink(&mut self, key: usize) {
        let Node { prev, next, deadline, .. } = self.nodes[key];
        if prev == NIL {
            self.heads[slot_of(deadline)] = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[key] = IDLE_NODE;
        self.len -= 1;
    }
}

/// Slot of a tick.
fn slot_of(tick: u64) -> usize {
    // Truncation is the point: the slot is the tick modulo the wheel size.
    (tick as usize) & (WHEEL_SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire(w: &mut TimerWheel, now: u64) -> Vec<usize> {
        let mut v = Vec::new();
        w.expire(now, &mut v);
        v.sort_unstable();
        v
    }

    #[test]
    fn fires_at_deadline_not_before() {
        // (key, deadline, tick at which we expect it)
        let cases: &[(usize, u64)] =
            &[(0, 1), (1, 5), (2, 5), (3, 1023), (4, 1024), (5, 1025), (6, 5000), (7, 0)];
        let mut w = TimerWheel::new(0);
        for &(k, d) in cases {
            w.schedule(k, d);
        }
        assert_eq!(w.len(), cases.len());
        let mut seen = Vec::new();
        for now in 0..=6000 {
            for k in fire(&mut w, now) {
                let want = cases.iter().find(|c| c.0 == k).unwrap().1;
                assert_eq!(now, want, "key {k}");
                seen.push(k);
            }
        }
        assert_eq!(seen.len(), cases.len());
        assert!(w.is_empty());
    }

    #[test]
    fn cancel_and_reschedule_are_o1_and_exact() {
        let mut w = TimerWheel::new(10);
        w.schedule(3, 20);
        w.schedule(4, 20);
        w.schedule(5, 20);
        w.cancel(4); // middle of the list
        w.cancel(4); // idempotent
        w.schedule(5, 30); // head moves elsewhere
        assert_eq!(w.deadline(3), Some(20));
        assert_eq!(w.deadline(4), None);
        assert_eq!(w.deadline(5), Some(30));
        assert_eq!(fire(&mut w, 25), vec![3]);
        assert_eq!(fire(&mut w, 30), vec![5]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadline_fires_on_next_expire() {
        let mut w = TimerWheel::new(100);
        w.schedule(1, 3);
        assert_eq!(w.deadline(1), Some(100));
        assert_eq!(fire(&mut w, 100), vec![1]);
    }

    #[test]
    fn long_sleep_fires_everything_due() {
        let mut w = TimerWheel::new(0);
        for k in 0..3000 {
            w.schedule(k, k as u64 * 7);
        }
        let fired = fire(&mut w, 100_000);
        assert_eq!(fired.len(), 3000);
        assert!(w.is_empty());
    }

    #[test]
    fn next_due_in() {
        let mut w = TimerWheel::new(0);
        assert_eq!(w.next_due_in(0), None);
        w.schedule(0, 7);
        assert_eq!(w.next_due_in(0), Some(7));
        assert_eq!(w.next_due_in(7), Some(0));
        w.cancel(0);
        w.schedule(0, 10_000);
        assert_eq!(w.next_due_in(0), Some(MAX_SCAN_TICKS));
    }
}
