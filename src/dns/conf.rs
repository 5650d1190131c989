//! Resolver configuration: the servers to ask, per-query timeout, attempts, and the host
//! table; and a pure parser for `/etc/resolv.conf` text.
//!
//! Layer 0: text in, values out. Reading the file is the resolver's job
//! (`ResolverConfig::read_system`).
//!
//! TRUST: resolv.conf is the administrator's file; bad lines are skipped, never fatal, as
//! glibc does. Values are clamped to glibc's limits.
//!
//! STANDARDS: resolv.conf(5) as glibc reads it: `nameserver` (at most [`MAX_SERVERS`]),
//! `options timeout:n attempts:n`; `search`/`domain`/`ndots` are ignored because mail
//! domains are absolute names (RFC 5321 §5.1 does no search-list expansion).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The DNS port (RFC 1035 §4.2).
pub const DNS_PORT: u16 = 53;
/// Per-query, per-server wait when nothing says otherwise, in ms (glibc `RES_TIMEOUT`).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Longest per-query wait accepted from resolv.conf, in ms (glibc `RES_MAXRETRANS`).
pub const MAX_TIMEOUT_MS: u64 = 30_000;
/// Rounds over the server list when nothing says otherwise (glibc `RES_DFLRETRY`).
pub const DEFAULT_ATTEMPTS: u32 = 2;
/// Most rounds accepted from resolv.conf (glibc `RES_MAXRETRY`).
pub const MAX_ATTEMPTS: u32 = 5;
/// Most `nameserver` lines used from resolv.conf (glibc `MAXNS`).
pub const MAX_SERVERS: usize = 3;

/// How the resolver reaches DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Recursive servers, asked in order; each round tries every one. Empty: every query
    /// fails temporarily (only the host table answers).
    pub servers: Vec<SocketAddr>,
    /// How long to wait for one server's answer to one query, in ms (the same again for a
    /// TCP retry after truncation). 0 is treated as 1.
    pub timeout_ms: u64,
    /// Rounds over `servers` before a query fails temporarily. 0 is treated as 1.
    pub attempts: u32,
    /// The `[hosts]` table: name -> addresses, consulted before DNS.
    pub hosts: HashMap<String, Vec<IpAddr>>,
}

impl Default for ResolverConfig {
    /// glibc's behaviour with no resolv.conf: a server on 127.0.0.1, 5 s, 2 attempts.
    fn default() -> Self {
        ResolverConfig {
            servers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT)],
            timeout_ms: DEFAULT_TIMEOUT_MS,
            attempts: DEFAULT_ATTEMPTS,
            hosts: HashMap::new(),
        }
    }
}

impl ResolverConfig {
    /// Parses `/etc/resolv.conf` text. Unknown keywords and malformed values are skipped;
    /// with no usable `nameserver`, the default server (127.0.0.1:53) is kept.
    pub fn from_resolv_conf(text: &str) -> Self {
        let mut config = ResolverConfig { servers: Vec::new(), ..ResolverConfig::default() };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                        continue;
                    };
                    if config.servers.len() < MAX_SERVERS {
                        config.servers.push(SocketAddr::new(ip, DNS_PORT));
                    }
                }
                Some("options") => {
                    for option in words {
                        let (key, value) = option.split_once(':').unwrap_or((option, ""));
                        let Ok(n) = value.parse::<u32>() else { continue };
                        match key {
                            "timeout" => {
                                config.timeout_ms =
                                    (u64::from(n) * 1_000).clamp(1_000, MAX_TIMEOUT_MS)
                            }
                            "attempts" => config.attempts = n.clamp(1, MAX_ATTEMPTS),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if config.servers.is_empty() {
            config.servers = ResolverConfig::default().servers;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn resolv_conf_table() {
        // (text, servers, timeout_ms, attempts)
        let cases: Vec<(&str, Vec<SocketAddr>, u64, u32)> = vec![
            ("", vec![sa("127.0.0.1:53")], 5_000, 2),
            ("nameserver 10.0.0.1\n", vec![sa("10.0.0.1:53")], 5_000, 2),
            (
                "# comment\nsearch corp.example\nnameserver 10.0.0.1\nnameserver ::1\n",
                vec![sa("10.0.0.1:53"), sa("[::1]:53")],
                5_000,
                2,
            ),
            (
                "nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\n",
                vec![sa("1.1.1.1:53"), sa("2.2.2.2:53"), sa("3.3.3.3:53")],
                5_000,
                2,
            ),
            ("nameserver 10.0.0.1 # trailing\n", vec![sa("10.0.0.1:53")], 5_000, 2),
            ("nameserver bogus\nnameserver\n", vec![sa("127.0.0.1:53")], 5_000, 2),
            ("  nameserver\t192.0.2.53  \n", vec![sa("192.0.2.53:53")], 5_000, 2),
            ("options timeout:1 attempts:3 rotate ndots:2\n", vec![sa("127.0.0.1:53")], 1_000, 3),
            ("options timeout:0 attempts:0\n", vec![sa("127.0.0.1:53")], 1_000, 1),
            ("options timeout:99 attempts:99\n", vec![sa("127.0.0.1:53")], 30_000, 5),
            ("options timeout:x attempts:-1 edns0\n", vec![sa("127.0.0.1:53")], 5_000, 2),
            ("; semicolon comment\noptions attempts:4\n", vec![sa("127.0.0.1:53")], 5_000, 4),
        ];
        for (text, servers, timeout_ms, attempts) in cases {
            let c = ResolverConfig::from_resolv_conf(text);
            assert_eq!(
                (c.servers, c.timeout_ms, c.attempts),
                (servers, timeout_ms, attempts),
                "{text:?}"
            );
            assert!(c.hosts.is_empty());
        }
    }
}
