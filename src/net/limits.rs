//! Connection limits shared by every worker: a total count and a per-client-IP count.
//!
//! WHAT: `ConnLimits::try_acquire` is called once per accepted socket and returns a
//! `ConnPermit` (released on drop) or which limit was hit. The worker always hands the
//! result to its `Service`, which writes the refusal (421 4.7.0) and the worker closes: the
//! kernel backlog never fills up silently (explicit accept back-pressure).
//!
//! LOCKS: the total is one `AtomicUsize`. The per-IP counts are the one lock in the
//! inbound path: `IP_SHARDS` `parking_lot::Mutex<HashMap<IpAddr, u32>>`, the shard chosen by
//! a hash of the address. It is taken twice per connection (accept and close), never per
//! command or per byte, and held only for one hash-map update, so contention between
//! workers stays negligible even at tens of thousands of connections per second.
//!
//! TRUST: the peer address comes from the kernel (`accept`), not from the client. One
//! exception, decided by the service: on a listener whose client address arrives in a
//! preface (the PROXY protocol header of a trusted load balancer), the worker takes a
//! permit counted in the total only ([`ConnLimits::try_acquire_total`]) and the service
//! counts the carried client address once it knows it ([`ConnPermit::count_ip`]); the
//! balancer's own address is never counted per IP (it carries every client).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Number of per-IP shards (power of two).
const IP_SHARDS: usize = 16;

/// Which limit refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// `max_connections` connections are already open (all workers together).
    Total,
    /// This client address already has `max_connections_per_ip` connections open.
    PerIp,
}

/// Connection counters shared by all workers.
#[derive(Debug)]
pub struct ConnLimits {
    /// Upper bound on open connections; 0 = unlimited. Changed by a reload
    /// ([`ConnLimits::set_limits`]); connections already open above a lowered bound stay.
    max_total: AtomicUsize,
    /// Upper bound per client IP; 0 = unlimited (reloadable like `max_total`).
    max_per_ip: AtomicUsize,
    /// Open connections (permits alive). Invariant: equals the number of live permits.
    total: AtomicUsize,
    /// Open connections per client IP; an entry exists only while its count is > 0.
    per_ip: Box<[Mutex<HashMap<IpAddr, u32>>]>,
}

/// Proof that a connection was counted; dropping it un-counts the connection.
#[derive(Debug)]
pub struct ConnPermit {
    /// The limits this permit was taken from.
    limits: Arc<ConnLimits>,
    /// The client address counted per IP; `None` until `count_ip` (a permit taken with
    /// `try_acquire_total`).
    ip: Option<IpAddr>,
}

impl ConnPermit {
    /// The client address this permit counts per IP (`None`: not counted per IP yet).
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// Count this connection per IP for `ip` now (a permit from `try_acquire_total`, whose
    /// client address was learnt later); a permit already counted for another address
    /// moves to `ip`. On `Err` the permit is unchanged (still counted in the total).
    pub fn count_ip(&mut self, ip: IpAddr) -> Result<(), LimitExceeded> {
        if self.ip == Some(ip) {
            return Ok(());
        }
        self.limits.add_ip(ip)?;
        if let Some(old) = self.ip.replace(ip) {
            self.limits.release_ip(old);
        }
        Ok(())
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.limits.release_ip(ip);
        }
        self.limits.total.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnLimits {
    /// New shared limits (0 = unlimited for either).
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_total: AtomicUsize::new(max_total),
            max_per_ip: AtomicUsize::new(max_per_ip),
            total: AtomicUsize::new(0),
            per_ip: (0..IP_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// New bounds (a configuration reload); they apply from the next accept.
    pub fn set_limits(&self, max_total: usize, max_per_ip: usize) {
        self.max_total.store(max_total, Ordering::Relaxed);
        self.max_per_ip.store(max_per_ip, Ordering::Relaxed);
    }

    /// Open connections right now (all workers).
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Count a new connection from `ip`, or say which limit it would exceed.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, LimitExceeded> {
        let mut permit = self.try_acquire_total()?;
        permit.count_ip(ip)?; // on Err the permit drops and un-counts the total
        Ok(permit)
    }

    /// Count a new connection in the total only; its client address is counted later
    /// with [`ConnPermit::count_ip`] (see the module's TRUST note).
    pub fn try_acquire_total(self: &Arc<Self>) -> Result<ConnPermit, LimitExceeded> {
        let prev = self.total.fetch_add(1, Ordering::Relaxed);
        let max_total = self.max_total.load(Ordering::Relaxed);
        if max_total != 0 && prev >= max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(LimitExceeded::Total);
        }
        Ok(ConnPermit { limits: Arc::clone(self), ip: None })
    }

    /// One more connection from `ip`, unless it has `max_per_ip` already.
    fn add_ip(&self, ip: IpAddr) -> Result<(), LimitExceeded> {
        let mut shard = self.shard(ip).lock();
        let count = shard.entry(ip).or_insert(0);
        let max_per_ip = self.max_per_ip.load(Ordering::Relaxed);
        if max_per_ip != 0 && *count as usize >= max_per_ip {
            if *count == 0 {
                shard.remove(&ip);
            }
            return Err(LimitExceeded::PerIp);
        }
        *count += 1;
        Ok(())
    }

    /// One connection fewer from `ip`.
    fn release_ip(&self, ip: IpAddr) {
        let mut shard = self.shard(ip).lock();
        if let Some(count) = shard.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                shard.remove(&ip);
            }
        }
    }

    /// The shard holding `ip`'s count.
    fn shard(&self, ip: IpAddr) -> &Mutex<HashMap<IpAddr, u32>> {
        // Fibonacci hashing of the address bits; any spread is fine, this is not a defence
        // against chosen addresses (a shard only serialises two map updates per connection).
        let bits: u64 = match ip {
            IpAddr::V4(a) => u64::from(a.to_bits()),
            IpAddr::V6(a) => {
                let b = a.to_bits();
                (b as u64) ^ ((b >> 64) as u64)
            }
        };
        let h = bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        &self.per_ip[h as usize % IP_SHARDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_ip() {
        let l = ConnLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        let p1 = l.try_acquire(a).unwrap();
        let p2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), LimitExceeded::PerIp);
        let p3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).unwrap_err(), LimitExceeded::Total);
        assert_eq!(l.total(), 3);
        drop(p1);
        assert_eq!(l.total(), 2);
        let p4 = l.try_acquire(a).unwrap();
        assert_eq!(p4.ip(), Some(a));
        drop((p2, p3, p4));
        assert_eq!(l.total(), 0);
        assert!(l.per_ip.iter().all(|s| s.lock().is_empty()), "no leaked entries");
    }

    #[test]
    fn counted_later() {
        let l = ConnLimits::new(3, 1);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut p1 = l.try_acquire_total().unwrap();
        let mut p2 = l.try_acquire_total().unwrap();
        assert_eq!((l.total(), p1.ip()), (2, None));
        p1.count_ip(a).unwrap();
        assert_eq!(p2.count_ip(a), Err(LimitExceeded::PerIp));
        assert_eq!(p2.ip(), None, "unchanged on Err");
        p2.count_ip(b).unwrap();
        // Moving a permit to another address frees the old one.
        p1.count_ip(b).unwrap_err();
        drop(p2);
        p1.count_ip(b).unwrap();
        assert_eq!(l.try_acquire(a).map(|p| p.ip()), Ok(Some(a)));
        drop(p1);
        assert_eq!(l.total(), 0);
        assert!(l.per_ip.iter().all(|s| s.lock().is_empty()), "no leaked entries");
    }

    #[test]
    fn zero_means_unlimited() {
        let l = ConnLimits::new(0, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let permits: Vec<_> = (0..100).map(|_| l.try_acquire(ip).unwrap()).collect();
        assert_eq!(l.total(), 100);
        drop(permits);
        assert_eq!(l.total(), 0);
    }
}
