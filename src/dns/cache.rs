//! The resolver's TTL cache: positive answers (MX records, addresses, NODATA) and negative
//! ones (NXDOMAIN), bounded in size, expired against a `now` the caller passes in.
//!
//! Layer 0: no clock is read here (tests drive a fake clock), no I/O, no locking (the
//! resolver wraps it in a mutex held only for a lookup or an insert).
//!
//! TRUST: values come from decoded responses already checked by `wire`; TTLs are clamped
//! here so no server can pin an entry for long.
//!
//! STANDARDS: RFC 1035 §3.2.1 (TTL 0: use once, do not cache), RFC 2181 §8, RFC 2308 §5
//! (negative caching, at most a few hours).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::wire::{MxRecord, QueryType};

/// The longest a positive answer is kept, in seconds (one day), whatever its TTL says.
pub const MAX_POSITIVE_TTL_SECS: u32 = 86_400;
/// The longest a negative answer (NXDOMAIN, NODATA) is kept, in seconds (RFC 2308 §5
/// suggests one to three hours; a relay wants a fixed DNS record noticed sooner).
pub const MAX_NEGATIVE_TTL_SECS: u32 = 3_600;
/// How long a negative answer without an SOA (so without a negative TTL) is kept, in seconds.
pub const DEFAULT_NEGATIVE_TTL_SECS: u32 = 60;
/// Default bound on the number of cached (name, type) entries.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// A cached answer for one (name, type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cached {
    /// MX records of the name, in wire order (empty: the name exists but has no MX).
    Mx(Vec<MxRecord>),
    /// Addresses of the name (empty: the name exists but has none of this type).
    Addrs(Vec<IpAddr>),
    /// The name does not exist (NXDOMAIN).
    NxDomain,
}

impl Cached {
    fn is_negative(&self) -> bool {
        match self {
            Cached::Mx(v) => v.is_empty(),
            Cached::Addrs(v) => v.is_empty(),
            Cached::NxDomain => true,
        }
    }
}

/// A bounded map from (normalized name, type) to an answer and its expiry instant.
#[derive(Debug)]
pub struct Cache {
    /// Invariant: `entries.len() <= max_entries`; keys are normalized (`wire::normalize_name`).
    entries: HashMap<(String, QueryType), (Instant, Cached)>,
    /// Invariant: at least 1.
    max_entries: usize,
}

impl Cache {
    /// An empty cache holding at most `max_entries` answers (at least one).
    pub fn new(max_entries: usize) -> Self {
        Cache { entries: HashMap::new(), max_entries: max_entries.max(1) }
    }

    /// The number of entries held (expired ones included until they are purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The answer for (`name`, `qtype`) if one is cached and not expired at `now`.
    /// `name` must be normalized.
    pub fn lookup(&self, name: &str, qtype: QueryType, now: Instant) -> Option<&Cached> {
        match self.entries.get(&(name.to_string(), qtype)) {
            Some((expires, value)) if now < *expires => Some(value),
            _ => None,
        }
    }

    /// Stores an answer received at `now`. `ttl_secs` is the TTL from the response (`None`
    /// for a negative answer without SOA); it is clamped to the positive or negative maximum,
    /// and a TTL of 0 means "do not cache". `name` must be normalized.
    pub fn insert(
        &mut self,
        name: &str,
        qtype: QueryType,
        value: Cached,
        ttl_secs: Option<u32>,
        now: Instant,
    ) {
        let ttl = if value.is_negative() {
            ttl_secs.unwrap_or(DEFAULT_NEGATIVE_TTL_SECS).min(MAX_NEGATIVE_TTL_SECS)
        } else {
            ttl_secs.unwrap_or(0).min(MAX_POSITIVE_TTL_SECS)
        };
        let key = (name.to_string(), qtype);
        if ttl == 0 {
            self.entries.remove(&key);
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.make_room(now);
        }
        let expires = now + Duration::from_secs(u64::from(ttl));
        self.entries.insert(key, (expires, value));
    }

    /// Drops expired entries; if none were, drops the one expiring soonest. O(n), and run
    /// only when the cache is full.
    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, (expires, _)| now < *expires);
        if self.entries.len() < self.max_entries {
            return;
        }
        let soonest =
            self.entries.iter().min_by_key(|(_, (expires, _))| *expires).map(|(k, _)| k.clone());
        if let Some(key) = soonest {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(exchange: &str) -> Cached {
        Cached::Mx(vec![MxRecord { preference: 10, exchange: exchange.to_string() }])
    }

    #[test]
    fn expiry_on_a_fake_clock() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        // (value, ttl from response, last second still cached)
        let cases: Vec<(Cached, Option<u32>, Option<u64>)> = vec![
            (mx("mx.example"), Some(300), Some(299)),
            (mx("mx.example"), Some(0), None),
            (mx("mx.example"), None, None),
            (mx("mx.example"), Some(u32::MAX), Some(u64::from(MAX_POSITIVE_TTL_SECS) - 1)),
            (Cached::NxDomain, Some(120), Some(119)),
            (Cached::NxDomain, None, Some(u64::from(DEFAULT_NEGATIVE_TTL_SECS) - 1)),
            (Cached::NxDomain, Some(999_999), Some(u64::from(MAX_NEGATIVE_TTL_SECS) - 1)),
            (Cached::Addrs(vec![]), Some(10), Some(9)),
            (Cached::Addrs(vec!["192.0.2.1".parse().unwrap()]), Some(5), Some(4)),
        ];
        for (value, ttl, last) in cases {
            let mut cache = Cache::new(16);
            cache.insert("example.com", QueryType::Mx, value.clone(), ttl, t0);
            match last {
                None => assert_eq!(cache.lookup("example.com", QueryType::Mx, t0), None),
                Some(last) => {
                    assert_eq!(cache.lookup("example.com", QueryType::Mx, at(last)), Some(&value));
                    assert_eq!(cache.lookup("example.com", QueryType::Mx, at(last + 1)), None);
                }
            }
            assert_eq!(cache.lookup("example.com", QueryType::A, t0), None, "type is in the key");
        }
    }

    #[test]
    fn bounded_size_evicts_expired_then_soonest() {
        let t0 = Instant::now();
        let mut cache = Cache::new(3);
        cache.insert("a", QueryType::A, Cached::NxDomain, Some(10), t0);
        cache.insert("b", QueryType::A, Cached::NxDomain, Some(100), t0);
        cache.insert("c", QueryType::A, Cached::NxDomain, Some(50), t0);
        // Full, nothing expired: "a" expires soonest and goes.
        cache.insert("d", QueryType::A, Cached::NxDomain, Some(100), t0);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.lookup("a", QueryType::A, t0), None);
        assert!(cache.lookup("c", QueryType::A, t0).is_some());
        // At t0+60 "c" has expired: it is purged to make room.
        let later = t0 + Duration::from_secs(60);
        cache.insert("e", QueryType::A, Cached::NxDomain, Some(100), later);
        assert_eq!(cache.len(), 3);
        for name in ["b", "d", "e"] {
            assert!(cache.lookup(name, QueryType::A, later).is_some(), "{name}");
        }
        // Replacing an existing key never evicts.
        cache.insert("b", QueryType::A, Cached::NxDomain, Some(5), later);
        assert_eq!(cache.len(), 3);
        assert!(cache.lookup("d", QueryType::A, later).is_some());
    }
}
