//! Configuration of outbound delivery: next hops, per-domain rules, the host table, the
//! DNS resolver and the delivery limits, timeouts and retry schedule.
//!
//! What: the value types behind `[relay] smart_host`, `[[domain]]`, `[hosts]`, `[dns]` and
//! `[delivery]`, and the next-hop syntax `"[10.1.2.3]:2525"` / `"mail.example.com:587"`.
//!
//! Trust: written by the operator (see `config/mod.rs`); parsed in `parse_outbound.rs`.
//! Layer 0: addresses are only parsed, never resolved or bound.
//!
//! Standards: an address literal in brackets (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) follows
//! RFC 5321 §4.1.3; as in IIS, a bracketed smart host means "this address, no DNS".
//! Timeouts default to RFC 5321 §4.5.3.2.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

pub use crate::smtp::client::{ClientAuth, TlsPolicy};

/// Where to send mail next when it is not looked up by MX: an address literal (no DNS at
/// all) or a host name resolved by A/AAAA (never by MX, as IIS treats a smart host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// `"[10.1.2.3]"`, `"[10.1.2.3]:2525"`, `"[IPv6:2001:db8::1]:25"` or
    /// `"[2001:db8::1]"`: connect to this address; no DNS.
    Literal {
        /// The address to connect to. Invariant: not unspecified (`0.0.0.0`, `::`).
        ip: IpAddr,
        /// Port; `None` = the rule's or `[delivery] port`.
        port: Option<u16>,
    },
    /// `"mail.example.com"` or `"mail.example.com:587"`: resolve A/AAAA (not MX).
    Name {
        /// Host name. Invariant: a valid domain name, lower case, no trailing dot.
        host: String,
        /// Port; `None` = the rule's or `[delivery] port`.
        port: Option<u16>,
    },
}

impl NextHop {
    /// The explicit port, if the text gave one.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        match self {
            NextHop::Literal { port, .. } | NextHop::Name { port, .. } => *port,
        }
    }

    /// Parse next-hop text. The error is the problem in words (without the key).
    pub fn parse(text: &str) -> Result<NextHop, String> {
        let bad = || {
            format!(
                "invalid next hop {text:?}: expected a host name like \"mail.example.com\" or \
                 \"mail.example.com:587\", or an address in brackets like \"[10.1.2.3]:2525\" \
                 (brackets mean no DNS)"
            )
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(parse_port(p.strip_prefix(':').ok_or_else(bad)?).ok_or_else(bad)?),
            };
            let ip = match inner.get(..5) {
                Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                    IpAddr::V6(inner[5..].parse::<Ipv6Addr>().map_err(|_| bad())?)
                }
                _ => inner.parse::<IpAddr>().map_err(|_| bad())?,
            };
            if ip.is_unspecified() {
                return Err(format!("{text:?} is the unspecified address; name a real host"));
            }
            return Ok(NextHop::Literal { ip, port });
        } else if let Some((h, p)) = text.rsplit_once(':') {
            (h, Some(parse_port(p).ok_or_else(bad)?))
        } else {
            (text, None)
        };
        if host.parse::<Ipv4Addr>().is_ok() {
            return Err(format!(
                "{text:?}: write an IP address in brackets, e.g. \"[{host}]\" (no DNS)"
            ));
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        if !super::values::is_valid_domain(host) {
            return Err(bad());
        }
        Ok(NextHop::Name { host: host.to_ascii_lowercase(), port })
    }
}

/// A port 1..=65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

impl fmt::Display for NextHop {
    /// The text [`NextHop::parse`] reads back: `[10.1.2.3]:2525`, `[2001:db8::1]`, `host:25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = match self {
            NextHop::Literal { ip, port } => {
                write!(f, "[{ip}]")?;
                port
            }
            NextHop::Name { host, port } => {
                f.write_str(host)?;
                port
            }
        };
        match port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// Which recipient domains a `[[domain]]` rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// `"example.com"`: exactly this domain. Invariant: valid, lower case, no trailing dot.
    Exact(String),
    /// `"*.example.com"`: every strict subdomain of `example.com` (not `example.com`
    /// itself, which needs its own rule). Holds the suffix `example.com`; same invariant.
    Wildcard(String),
}

impl DomainPattern {
    /// How well `domain` (lower case, no trailing dot) matches: `None` = no match; a larger
    /// value is a better match. Exact beats every wildcard; a longer wildcard beats a
    /// shorter one.
    #[must_use]
    pub fn match_rank(&self, domain: &str) -> Option<usize> {
        match self {
            DomainPattern::Exact(d) => (d == domain).then_some(usize::MAX),
            DomainPattern::Wildcard(suffix) => domain
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
                .then_some(suffix.len()),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// One `[[domain]]` table: how mail for matching recipient domains is handled (IIS
/// "remote domain" / "local domain" properties).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainRule {
    /// Domains covered. Key `name`. Invariant: no two rules have the same pattern.
    pub pattern: DomainPattern,
    /// Anybody may relay to these domains, even from outside `[relay] allow`. Key `relay`.
    pub relay: bool,
    /// Send all mail for these domains to this host instead of MX. Key `smart_host`.
    pub smart_host: Option<NextHop>,
    /// Greet with HELO instead of EHLO (old servers). Key `helo`.
    pub helo: bool,
    /// Outbound port, when `smart_host` names none. Key `port`. Invariant: not 0.
    pub port: Option<u16>,
    /// Drop folder for a local domain matched by this rule, instead of `<mailroot>/Drop`.
    /// Key `drop`. Invariant: not empty.
    pub drop: Option<PathBuf>,
    /// TLS policy toward these domains' next hops (key `tls`: `"none"`, `"may"`,
    /// `"encrypt"`, `"verify"`); `None` = `[delivery] tls`.
    pub tls: Option<TlsPolicy>,
}

/// `[relay] smart_host_auth`: credentials for the `[relay] smart_host` (AUTH PLAIN, else
/// LOGIN, only over TLS). `{ user = "...", password = "..." }` or `{ user = "...",
/// password_file = "/path" }`. `Debug` and `check-config` never show the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartHostAuth {
    /// User and password. Invariant: user not empty, no control characters; password not
    /// empty, no NUL. With `password_file`, the password is empty until
    /// `Config::read_password_files` read it (at load, by the caller).
    pub credentials: ClientAuth,
    /// Where the password is kept (key `password_file`), if not inline. Invariant: not
    /// empty.
    pub password_file: Option<PathBuf>,
}

/// `[hosts]`: a static host table (name -> addresses), for intranets without DNS (IIS let
/// a hosts file or WINS stand in for DNS). Keys: valid domain names, lower case, no
/// trailing dot. Values: at least one address each. Ordered for stable printing.
pub type HostsConfig = BTreeMap<String, Vec<IpAddr>>;

/// `[dns]`: the built-in resolver.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Name servers to ask. Empty = those of `/etc/resolv.conf` (read by the caller).
    /// Key `servers`; `"IP"` means port 53.
    pub servers: Vec<std::net::SocketAddr>,
    /// Time to wait for one answer, in ms. Key `timeout`. Invariant: > 0.
    pub timeout_ms: u64,
    /// Tries per name server before giving up. Key `attempts`. Invariant: > 0.
    pub attempts: u32,
}

/// `[delivery]`: outbound connections, timeouts and the retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Wait after the 1st, 2nd, ... failed attempt, in ms; the last one repeats. Key
    /// `retry`. Invariant: at least one, each > 0.
    pub retry_ms: Vec<u64>,
    /// Age at which a delay DSN is sent (once), in ms; 0 = never. Key `delay_notify`.
    pub delay_notify_ms: u64,
    /// Age at which undelivered recipients are bounced, in ms. Key `expire`.
    /// Invariant: > 0.
    pub expire_ms: u64,
    /// Messages sent over one outbound connection before it is closed (IIS default 20).
    /// Key `max_messages_per_connection`. Invariant: > 0.
    pub max_messages_per_connection: u32,
    /// Outbound connections open at once, all destinations. Key `max_connections`.
    /// Invariant: > 0.
    pub max_connections: usize,
    /// Outbound connections open at once to one destination domain.
    /// Key `max_connections_per_domain`. Invariant: > 0.
    pub max_connections_per_domain: usize,
    /// Messages the queue runner keeps in memory at once (scheduled, in flight, due);
    /// the rest wait parked, by id only (`queue::park`). Key `active_limit`.
    /// Invariant: > 0.
    pub active_limit: usize,
    /// Drop files written at once: the number of local-delivery threads, each blocking
    /// on its own file's `fdatasync` (concurrent syncs share journal commits); the bounce
    /// service starts as many Badmail writers. Key `local_concurrency`. Invariant: > 0.
    pub local_concurrency: usize,
    /// Time allowed for the TCP connection, in ms. Key `connect_timeout`.
    pub connect_timeout_ms: u64,
    /// Wait for the 220 greeting, in ms (RFC 5321 §4.5.3.2.1). Key `greeting_timeout`.
    pub greeting_timeout_ms: u64,
    /// Wait for the reply to MAIL, in ms (§4.5.3.2.2). Key `mail_timeout`.
    pub mail_timeout_ms: u64,
    /// Wait for the reply to each RCPT, in ms (§4.5.3.2.3). Key `rcpt_timeout`.
    pub rcpt_timeout_ms: u64,
    /// Wait for the 354 reply to DATA, in ms (§4.5.3.2.4). Key `data_init_timeout`.
    pub data_init_timeout_ms: u64,
    /// Time allowed for each write of content, in ms (§4.5.3.2.5). Key `data_block_timeout`.
    pub data_block_timeout_ms: u64,
    /// Wait for the reply after the final dot, in ms (§4.5.3.2.6). Key `data_term_timeout`.
    pub data_term_timeout_ms: u64,
    /// Outbound port for MX and host-table delivery, and for next hops without a port.
    /// Key `port`. Invariant: not 0.
    pub port: u16,
    /// Deliver nothing: every message stays in the queue (Postfix `defer_transports` for
    /// all transports; the IIS "pause" of remote delivery). Key `hold`. Default false.
    pub hold: bool,
    /// TLS policy of outbound connections (key `tls`; default `"may"`: STARTTLS when
    /// offered, no certificate check). A `[[domain]] tls` overrides it.
    pub tls: TlsPolicy,
    /// Extra trusted roots (PEM) for `tls = "verify"`, added to the compiled-in
    /// webpki-roots (key `tls_ca_file`; `None`: webpki-roots only).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl DeliveryConfig {
    /// Wait after the `failures`-th failed attempt (1-based; 0 is treated as 1), in ms:
    /// `retry_ms[failures - 1]`, the last entry repeating.
    #[must_use]
    pub fn retry_interval_ms(&self, failures: u32) -> u64 {
        let i = usize::try_from(failures.saturating_sub(1)).unwrap_or(usize::MAX);
        // retry_ms is never empty (invariant), so `last()` is always Some.
        self.retry_ms.get(i).or(self.retry_ms.last()).copied().unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hops() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, Option<NextHop>)] = &[
            ("[10.1.2.3]:2525", Some(NextHop::Literal { ip: v4("10.1.2.3"), port: Some(2525) })),
            ("[10.1.2.3]", Some(NextHop::Literal { ip: v4("10.1.2.3"), port: None })),
            (
                "[IPv6:2001:db8::1]:25",
                Some(NextHop::Literal { ip: v4("2001:db8::1"), port: Some(25) }),
            ),
            ("[2001:db8::1]", Some(NextHop::Literal { ip: v4("2001:db8::1"), port: None })),
            (
                "Mail.Example.com",
                Some(NextHop::Name { host: "mail.example.com".into(), port: None }),
            ),
            (
                "mail.example.com.:587",
                Some(NextHop::Name { host: "mail.example.com".into(), port: Some(587) }),
            ),
            ("relay", Some(NextHop::Name { host: "relay".into(), port: None })),
            ("10.1.2.3", None),
            ("10.1.2.3:25", None),
            ("[0.0.0.0]", None),
            ("[10.1.2.3", None),
            ("[10.1.2.3]25", None),
            ("[10.1.2.3]:0", None),
            ("[10.1.2.3]:65536", None),
            ("[mail.example.com]", None),
            ("mail.example.com:", None),
            ("mail.example.com:+25", None),
            ("mail_example.com", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(NextHop::parse(text).ok(), *want, "{text:?}");
            if let Some(hop) = want {
                assert_eq!(NextHop::parse(&hop.to_string()).as_ref(), Ok(hop), "{text:?}");
            }
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn any_hop() -> impl Strategy<Value = NextHop> {
            let port = proptest::option::of(1u16..);
            let literal = (any::<IpAddr>(), port.clone())
                .prop_filter("not unspecified", |(ip, _)| !ip.is_unspecified())
                .prop_map(|(ip, port)| NextHop::Literal { ip, port });
            let name = ("[a-z][a-z0-9-]{0,10}[a-z0-9]", proptest::collection::vec("[a-z0-9]{1,8}", 0..4), port)
                .prop_map(|(first, rest, port)| {
                    let host = std::iter::once(first).chain(rest).collect::<Vec<_>>().join(".");
                    NextHop::Name { host, port }
                })
                .prop_filter("valid name", |h| matches!(h, NextHop::Name { host, .. } if crate::config::values::is_valid_domain(host)));
            prop_oneof![literal, name]
        }

        proptest! {
            /// parse(print(x)) == x for every next hop.
            #[test]
            fn next_hop_round_trips(hop in any_hop()) {
                prop_assert_eq!(NextHop::parse(&hop.to_string()), Ok(hop));
            }

            /// Arbitrary text never panics the parser.
            #[test]
            fn next_hop_parse_never_panics(text in "\\PC{0,40}") {
                let _ = NextHop::parse(&text);
            }
        }
    }

    #[test]
    fn pattern_ranks() {
        let exact = DomainPattern::Exact("example.com".into());
        let wild = DomainPattern::Wildcard("example.com".into());
        let cases: &[(&DomainPattern, &str, Option<usize>)] = &[
            (&exact, "example.com", Some(usize::MAX)),
            (&exact, "a.example.com", None),
            (&wild, "example.com", None),
            (&wild, "a.example.com", Some(11)),
            (&wild, "b.a.example.com", Some(11)),
            (&wild, "aexample.com", None),
            (&wild, ".example.com", None),
        ];
        for &(p, d, want) in cases {
            assert_eq!(p.match_rank(d), want, "{p} {d}");
        }
    }

    #[test]
    fn retry_intervals() {
        let d = DeliveryConfig {
            retry_ms: vec![1, 2, 3],
            delay_notify_ms: 0,
            expire_ms: 1,
            max_messages_per_connection: 1,
            max_connections: 1,
            max_connections_per_domain: 1,
            active_limit: 1,
            local_concurrency: 1,
            connect_timeout_ms: 1,
            greeting_timeout_ms: 1,
            mail_timeout_ms: 1,
            rcpt_timeout_ms: 1,
            data_init_timeout_ms: 1,
            data_block_timeout_ms: 1,
            data_term_timeout_ms: 1,
            port: 25,
            hold: false,
            tls: TlsPolicy::May,
            tls_ca_file: None,
        };
        let got: Vec<u64> = (0..6).map(|n| d.retry_interval_ms(n)).collect();
        assert_eq!(got, [1, 1, 2, 3, 3, 3]);
    }
}
