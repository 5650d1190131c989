//! Destination queues of outbound delivery: where a delivery attempt goes when it arrives,
//! and what starts when a connection frees up.
//!
//! WHAT: per destination key (the route, e.g. `mx:example.com`), a FIFO of attempts
//! waiting for a connection, the number of connections open or connecting, and the idle
//! connections kept for reuse. An arriving attempt takes an idle connection of its
//! destination ([`Placement::Reuse`]), else a new connection if both the global limit
//! (`max_connections`) and the destination's (`max_per_dest`) allow
//! ([`Placement::Connect`]), else it waits ([`Placement::Queued`]). A connection that is
//! ready for the next attempt takes the oldest waiting one ([`DestQueues::take_next`]) or
//! becomes idle; a closed connection lets the oldest waiting attempts connect
//! ([`DestQueues::next_to_connect`]).
//!
//! Pure (layer 0): no sockets, no clock, no threads. Generic over the attempt `T` and the
//! connection handle `K` (the outbound service uses `OutboundTask` and `net::ConnId`), so
//! it is unit-tested with plain numbers.
//!
//! TRUST: keys and handles come from our own router and event loop, never from the network.
//!
//! STANDARDS: RFC 5321 §4.5.4.1 (one connection, several messages; a client should not
//! open many connections to one destination).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Connection limits of outbound delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestLimits {
    /// Connections open or connecting at once, all destinations together.
    pub max_connections: usize,
    /// Connections open or connecting at once to one destination key.
    pub max_per_dest: usize,
}

/// Where an arriving attempt went.
#[derive(Debug, PartialEq, Eq)]
pub enum Placement<T, K> {
    /// Run it on this idle connection (no longer idle).
    Reuse(K, T),
    /// Open a new connection for it (already counted against the limits).
    Connect(T),
    /// It waits in its destination's queue.
    Queued,
}

/// One destination.
#[derive(Debug)]
struct Dest<T, K> {
    /// Attempts waiting for a connection, oldest first.
    queue: VecDeque<T>,
    /// Connections open or connecting. Invariant: `idle.len() <= conns`.
    conns: usize,
    /// Open connections with nothing to do, kept for reuse, oldest first.
    idle: Vec<K>,
}

impl<T, K> Default for Dest<T, K> {
    fn default() -> Self {
        Dest { queue: VecDeque::new(), conns: 0, idle: Vec::new() }
    }
}

/// Every destination's queue and connections (see the module docs).
#[derive(Debug)]
pub struct DestQueues<T, K> {
    /// The limits.
    limits: DestLimits,
    /// Destinations with waiting attempts or connections; others are forgotten.
    dests: HashMap<Arc<str>, Dest<T, K>>,
    /// Connections open or connecting in total. Invariant: the sum of `Dest::conns`.
    open: usize,
}

impl<T, K: PartialEq + Copy> DestQueues<T, K> {
    /// No destination, no connection.
    #[must_use]
    pub fn new(limits: DestLimits) -> Self {
        DestQueues { limits, dests: HashMap::new(), open: 0 }
    }

    /// Connections open or connecting in total.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open
    }

    /// Attempts waiting, all destinations together.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.dests.values().map(|d| d.queue.len()).sum()
    }

    /// An attempt for `dest` arrived: reuse, connect or queue it.
    pub fn place(&mut self, dest: &Arc<str>, task: T) -> Placement<T, K> {
        let open = self.open;
        let limits = self.limits;
        let d = self.dests.entry(Arc::clone(dest)).or_default();
        if !d.idle.is_empty() {
            return Placement::Reuse(d.idle.remove(0), task);
        }
        if d.queue.is_empty() && d.conns < limits.max_per_dest && open < limits.max_connections {
            d.conns += 1;
            self.open += 1;
            return Placement::Connect(task);
        }
        d.queue.push_back(task);
        Placement::Queued
    }

    /// Put an attempt back at the head of its queue (it could not start where it was sent).
    pub fn requeue_front(&mut self, dest: &Arc<str>, task: T) {
        self.dests.entry(Arc::clone(dest)).or_default().queue.push_front(task);
    }

    /// A connection to `dest` is opened for an attempt that already held a place (the
    /// next address after a failure): counted, whatever the limits say.
    pub fn opened(&mut self, dest: &Arc<str>) {
        self.dests.entry(Arc::clone(dest)).or_default().conns += 1;
        self.open += 1;
    }

    /// A connection (or connect) to `dest` is gone; `conn` is its handle if it had one.
    pub fn closed(&mut self, dest: &Arc<str>, conn: Option<K>) {
        let Some(d) = self.dests.get_mut(dest) else { return };
        if let Some(k) = conn {
            d.idle.retain(|&i| i != k);
        }
        if d.conns > 0 {
            d.conns -= 1;
            self.open -= 1;
        }
    }

    /// A connection of `dest` is ready for another attempt: the oldest waiting one, if any.
    pub fn take_next(&mut self, dest: &Arc<str>) -> Option<T> {
        self.dests.get_mut(dest)?.queue.pop_front()
    }

    /// A connection of `dest` has nothing to do: keep it for reuse.
    pub fn set_idle(&mut self, dest: &Arc<str>, conn: K) {
        let d = self.dests.entry(Arc::clone(dest)).or_default();
        if !d.idle.contains(&conn) {
            d.idle.push(conn);
        }
    }

    /// The next waiting attempt of `dest` that may open a connection now (counted), if
    /// the limits allow. Call until `None` after a connection closed.
    pub fn next_to_connect(&mut self, dest: &Arc<str>) -> Option<T> {
        let open = self.open;
        let d = self.dests.get_mut(dest)?;
        if d.queue.is_empty()
            || d.conns >= self.limits.max_per_dest
            || open >= self.limits.max_connections
        {
            return None;
        }
        let task = d.queue.pop_front()?;
        d.conns += 1;
        self.open += 1;
        Some(task)
    }

    /// Every address of `dest` failed: if no other connection to it is open, the attempts
    /// waiting for it would hit the same wall; take them all (to be deferred together).
    pub fn take_all_if_down(&mut self, dest: &Arc<str>) -> Vec<T> {
        match self.dests.get_mut(dest) {
            Some(d) if d.conns == 0 => d.queue.drain(..).collect(),
            _ => Vec::new(),
        }
    }

    /// Forget `dest` if it has nothing waiting and no connection.
    pub fn forget_if_unused(&mut self, dest: &Arc<str>) {
        if self.dests.get(dest).is_some_and(|d| d.conns == 0 && d.queue.is_empty()) {
            self.dests.remove(dest);
        }
    }

    /// Destinations known (waiting attempts or connections).
    #[must_use]
    pub fn destinations(&self) -> usize {
        self.dests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn q(max_connections: usize, max_per_dest: usize) -> DestQueues<u32, u32> {
        DestQueues::new(DestLimits { max_connections, max_per_dest })
    }

    #[test]
    fn placement_follows_the_limits() {
        let (a, b) = (key("mx:a"), key("mx:b"));
        let mut d = q(3, 2);
        // (dest, task, expected placement)
        let steps: &[(&Arc<str>, u32, Placement<u32, u32>)] = &[
            (&a, 1, Placement::Connect(1)),
            (&a, 2, Placement::Connect(2)),
            (&a, 3, Placement::Queued), // per-destination limit
            (&b, 4, Placement::Connect(4)),
            (&b, 5, Placement::Queued), // global limit
        ];
        for (dest, task, want) in steps {
            assert_eq!(&d.place(dest, *task), want, "task {task}");
        }
        assert_eq!((d.open(), d.queued(), d.destinations()), (3, 2, 2));
    }

    #[test]
    fn a_closed_connection_lets_the_oldest_waiting_attempt_connect() {
        let a = key("mx:a");
        let mut d = q(10, 1);
        assert_eq!(d.place(&a, 1), Placement::Connect(1));
        assert_eq!(d.place(&a, 2), Placement::Queued);
        assert_eq!(d.place(&a, 3), Placement::Queued);
        assert_eq!(d.next_to_connect(&a), None, "still at the destination limit");
        d.closed(&a, Some(7));
        assert_eq!(d.next_to_connect(&a), Some(2));
        assert_eq!(d.next_to_connect(&a), None);
        assert_eq!((d.open(), d.queued()), (1, 1));
    }

    #[test]
    fn ready_connections_take_queued_work_then_go_idle_and_are_reused() {
        let a = key("smart:[10.0.0.1]:25");
        let mut d = q(10, 1);
        assert_eq!(d.place(&a, 1), Placement::Connect(1));
        assert_eq!(d.place(&a, 2), Placement::Queued);
        // Connection 7 finished task 1: it takes task 2, then has nothing to do.
        assert_eq!(d.take_next(&a), Some(2));
        assert_eq!(d.take_next(&a), None);
        d.set_idle(&a, 7);
        d.set_idle(&a, 7); // idempotent
        assert_eq!(d.place(&a, 3), Placement::Reuse(7, 3));
        assert_eq!(d.place(&a, 4), Placement::Queued, "no second idle connection");
        assert_eq!(d.open(), 1);
    }

    #[test]
    fn an_idle_connection_that_closes_is_not_reused() {
        let a = key("mx:a");
        let mut d = q(10, 2);
        assert_eq!(d.place(&a, 1), Placement::Connect(1));
        d.set_idle(&a, 7);
        d.closed(&a, Some(7));
        assert_eq!(d.place(&a, 2), Placement::Connect(2));
        d.closed(&a, None);
        d.forget_if_unused(&a);
        assert_eq!((d.open(), d.destinations()), (0, 0));
    }

    #[test]
    fn a_dead_destination_hands_back_its_waiting_attempts_once_no_connection_is_left() {
        let a = key("mx:a");
        let mut d = q(10, 2);
        assert_eq!(d.place(&a, 1), Placement::Connect(1));
        assert_eq!(d.place(&a, 2), Placement::Connect(2));
        assert_eq!(d.place(&a, 3), Placement::Queued);
        d.closed(&a, None); // task 1's last address failed
        assert_eq!(d.take_all_if_down(&a), Vec::<u32>::new(), "connection 2 still open");
        d.closed(&a, None);
        assert_eq!(d.take_all_if_down(&a), vec![3]);
        d.forget_if_unused(&a);
        assert_eq!(d.destinations(), 0);
    }

    #[test]
    fn next_address_keeps_its_place_and_requeue_goes_first() {
        let a = key("mx:a");
        let mut d = q(1, 1);
        assert_eq!(d.place(&a, 1), Placement::Connect(1));
        d.closed(&a, None); // first address refused...
        d.opened(&a); // ...the next one is tried for the same attempt
        assert_eq!(d.open(), 1);
        assert_eq!(d.place(&a, 2), Placement::Queued);
        d.requeue_front(&a, 9);
        d.closed(&a, None);
        assert_eq!(d.next_to_connect(&a), Some(9));
    }

    #[test]
    fn closing_unknown_destinations_is_harmless() {
        let mut d = q(1, 1);
        d.closed(&key("mx:nowhere"), Some(1));
        assert_eq!(d.take_next(&key("mx:nowhere")), None);
        assert_eq!(d.next_to_connect(&key("mx:nowhere")), None);
        assert_eq!(d.open(), 0);
    }
}
