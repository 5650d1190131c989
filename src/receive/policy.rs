//! Relay and access decisions as pure functions of (config, client address, envelope).
//!
//! What: who may connect (`[connections]`, IIS "Connection control"), who may relay to
//! non-local domains (`[relay]`, IIS "Relay restrictions"), and which domains are local
//! (`[domains]`). `check_rcpt`, which combines them for RCPT TO, is added by the lead on
//! top of `smtp::path`.
//!
//! Trust: the client address comes from the kernel (`accept`), so it is trusted; the
//! domain comes from the peer's RCPT TO and is only compared, never interpreted further.
//! IPv4-mapped IPv6 client addresses (`::ffff:192.0.2.1`, seen on dual-stack listeners)
//! are matched as the IPv4 address they carry, so IPv4 rules apply to them.
//!
//! Layer 0: no I/O, no clock.

use std::net::IpAddr;

use crate::config::{ConnectionsConfig, DomainsConfig, RelayConfig};

/// True if `ip` is inside any network of `nets`.
fn listed(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|net| net.contains(&ip))
}

/// May a client at `ip` connect? `deny` wins over `allow`; an empty `allow` admits everyone
/// not denied.
#[must_use]
pub fn connection_allowed(cfg: &ConnectionsConfig, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    !listed(&cfg.deny, ip) && (cfg.allow.is_empty() || listed(&cfg.allow, ip))
}

/// May a client at `ip` relay mail to non-local domains? Only when inside `relay.allow`;
/// an empty list means nobody may relay.
#[must_use]
pub fn relay_allowed(cfg: &RelayConfig, ip: IpAddr) -> bool {
    listed(&cfg.allow, ip.to_canonical())
}

/// Is `domain` one of the local domains? ASCII case-insensitive; one trailing dot of
/// `domain` is ignored (`Example.COM.` matches `example.com`). Config domains are stored
/// lower-case without a trailing dot (see `DomainsConfig`).
#[must_use]
pub fn is_local_domain(cfg: &DomainsConfig, domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    cfg.local.iter().any(|local| local.eq_ignore_ascii_case(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn connections() {
        // (allow, deny, client, allowed?)
        let cases: &[(&[&str], &[&str], &str, bool)] = &[
            (&[], &[], "192.0.2.1", true),
            (&[], &[], "2001:db8::1", true),
            (&[], &["192.0.2.0/24"], "192.0.2.1", false),
            (&[], &["192.0.2.0/24"], "192.0.3.1", true),
            (&["10.0.0.0/8"], &[], "10.9.9.9", true),
            (&["10.0.0.0/8"], &[], "11.0.0.1", false),
            (&["10.0.0.0/8"], &["10.1.0.0/16"], "10.1.2.3", false),
            (&["10.0.0.0/8"], &["10.1.0.0/16"], "10.2.2.3", true),
            (&["10.0.0.1/32"], &["10.0.0.1/32"], "10.0.0.1", false),
            (&["2001:db8::/32"], &[], "2001:db8:1::5", true),
            (&["2001:db8::/32"], &[], "2001:db9::5", false),
            (&["2001:db8::/32"], &[], "10.0.0.1", false),
            (&["10.0.0.0/8"], &[], "::ffff:10.0.0.1", true),
            (&[], &["10.0.0.0/8"], "::ffff:10.0.0.1", false),
            (&["0.0.0.0/0"], &[], "2001:db8::1", false),
            (&["0.0.0.0/0", "::/0"], &[], "2001:db8::1", true),
        ];
        for &(allow, deny, client, want) in cases {
            let cfg = ConnectionsConfig { allow: nets(allow), deny: nets(deny) };
            assert_eq!(connection_allowed(&cfg, ip(client)), want, "{allow:?} {deny:?} {client}");
        }
    }

    #[test]
    fn relay() {
        // (allow, client, may relay?)
        let cases: &[(&[&str], &str, bool)] = &[
            (&["127.0.0.0/8", "::1/128"], "127.0.0.1", true),
            (&["127.0.0.0/8", "::1/128"], "127.5.6.7", true),
            (&["127.0.0.0/8", "::1/128"], "::1", true),
            (&["127.0.0.0/8", "::1/128"], "::ffff:127.0.0.1", true),
            (&["127.0.0.0/8", "::1/128"], "192.0.2.1", false),
            (&["127.0.0.0/8", "::1/128"], "::2", false),
            (&[], "127.0.0.1", false),
            (&["192.0.2.7/32"], "192.0.2.7", true),
            (&["192.0.2.7/32"], "192.0.2.8", false),
        ];
        for &(allow, client, want) in cases {
            let cfg = RelayConfig { allow: nets(allow) };
            assert_eq!(relay_allowed(&cfg, ip(client)), want, "{allow:?} {client}");
        }
    }

    #[test]
    fn local_domains() {
        let cfg = DomainsConfig { local: vec!["localhost".into(), "example.com".into()] };
        // (domain, local?)
        let cases: &[(&str, bool)] = &[
            ("example.com", true),
            ("EXAMPLE.com", true),
            ("example.com.", true),
            ("localhost", true),
            ("LocalHost.", true),
            ("example.com..", false),
            ("sub.example.com", false),
            ("example.co", false),
            ("xexample.com", false),
            ("", false),
            (".", false),
            ("[127.0.0.1]", false),
        ];
        for &(domain, want) in cases {
            assert_eq!(is_local_domain(&cfg, domain), want, "{domain:?}");
        }
        assert!(!is_local_domain(&DomainsConfig { local: Vec::new() }, "localhost"));
    }
}
