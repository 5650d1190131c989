//! Access and relay decisions as pure functions of (config, client address, envelope).
//!
//! What: who may connect (`[connections]`, IIS "Connection control") and who may relay to
//! non-local domains (`[relay]`, IIS "Relay restrictions", and `[[domain]] relay = true`).
//! [`check_rcpt`] combines them with "is this domain local?" ([`super::domain`]) for RCPT
//! TO and refuses relay tricks and source routes (`smtp::path` reports both). Asked by
//! `receive::inbound` (accept, RCPT); the one home of "may this client relay to it?".
//!
//! Trust: the client address comes from the kernel (`accept`), so it is trusted; the
//! domain comes from the peer's RCPT TO and is only compared, never interpreted further.
//! IPv4-mapped IPv6 client addresses (`::ffff:192.0.2.1`, seen on dual-stack listeners)
//! are matched as the IPv4 address they carry, so IPv4 rules apply to them.
//!
//! Layer 0: no I/O, no clock.

use std::net::IpAddr;

use super::domain::{domain_relay_allowed, is_local_domain};
use crate::config::{Config, ConnectionsConfig, RelayConfig};
use crate::smtp::path::ForwardPath;
use crate::smtp::reply::Reply;

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

/// May a client at `client` give this RCPT TO? (RFC 5321 §3.6 relaying, §4.5.1 Postmaster.)
///
/// - bare `<Postmaster>`: always accepted (RFC 5321 §4.5.1 requires it);
/// - a local part with a relay trick (`user%host@us`, `host!user@us`, `"user@host"@us`):
///   refused for everybody, whatever the domain. These are how open relays used to be
///   laundered through MTAs that re-interpret the local part; legitimate mail does not
///   need them, and refusing them for local domains too means no later hop (Drop folder
///   consumer, smart host) ever sees one;
/// - a source route (`<@hop:user@dom>`) whose final domain is not local: refused for
///   everybody (the route is ignored, RFC 5321 §4.1.1.3 / App. C, so accepting it would
///   relay where the sender asked for something else);
/// - a local domain: accepted;
/// - any other domain: accepted only when the client may relay (`relay.allow`), or it
///   authenticated (`authenticated`, SMTP AUTH) and `[auth] relay_authenticated` is on
///   (IIS "allow all computers which successfully authenticate to relay"), or a
///   `[[domain]]` rule with `relay = true` covers the domain.
///
/// Every refusal is `554 5.7.1 Relay access denied`.
pub fn check_rcpt(
    cfg: &Config,
    client: IpAddr,
    authenticated: bool,
    to: &ForwardPath<'_>,
) -> Result<(), Reply> {
    let ForwardPath::Mailbox(mailbox) = to else { return Ok(()) };
    if mailbox.has_relay_trick() {
        return Err(Reply::relay_denied());
    }
    let local = is_local_domain(&cfg.domains, &mailbox.domain_str());
    if local {
        return Ok(());
    }
    // Issue 3: a `[[domain]] relay = true` rule opens relaying to that domain for every
    // client (IIS "allow incoming mail to be relayed to this domain").
    let open_domain = domain_relay_allowed(cfg, &mailbox.domain_str());
    let may_relay =
        relay_allowed(&cfg.relay, client) || (authenticated && cfg.auth.relay_authenticated);
    if mailbox.had_source_route || !(open_domain || may_relay) {
        return Err(Reply::relay_denied());
    }
    Ok(())
}

#[cfg(test)]
#[path = "relay_cases_tests.rs"]
mod relay_cases_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcpt() {
        let sys = crate::config::SystemDefaults { hostname: "mx.example".into(), cores: 1 };
        let cfg = Config::embedded_default(&sys); // relay: loopback; local: localhost
        // (client, RCPT TO argument, accepted?)
        let cases: &[(&str, &str, bool)] = &[
            ("192.0.2.1", "<Postmaster>", true),
            ("192.0.2.1", "<postmaster@localhost>", true),
            ("192.0.2.1", "<b@localhost>", true),
            ("192.0.2.1", "<b@LOCALHOST>", true),
            ("192.0.2.1", "<b@example.org>", false),
            ("127.0.0.1", "<b@example.org>", true),
            ("::1", "<b@example.org>", true),
            ("::ffff:127.0.0.1", "<b@example.org>", true),
            ("127.0.0.1", "<b@[192.0.2.9]>", true),
            ("192.0.2.1", "<b@[127.0.0.1]>", false),
            ("192.0.2.1", "<b%example.org@localhost>", false),
            ("127.0.0.1", "<b%example.org@localhost>", false),
            ("192.0.2.1", "<example.org!b@localhost>", false),
            ("192.0.2.1", "<\"b@example.org\"@localhost>", false),
            ("192.0.2.1", "<@example.org:b@localhost>", true),
            ("192.0.2.1", "<@localhost:b@example.org>", false),
            ("127.0.0.1", "<@localhost:b@example.org>", false),
        ];
        for &(client, arg, want) in cases {
            let (to, rest) =
                crate::smtp::path::parse_forward_path(arg).unwrap_or_else(|e| panic!("{arg}: {e}"));
            assert!(rest.is_empty(), "{arg}");
            let got = check_rcpt(&cfg, client.parse().unwrap(), false, &to);
            assert_eq!(got.is_ok(), want, "{client} {arg} -> {got:?}");
            if let Err(r) = got {
                assert_eq!(r, Reply::relay_denied());
            }
        }
    }

    /// Issue 3: `[[domain]] relay = true` lets anybody relay to the domain it covers.
    #[test]
    fn rcpt_domain_relay_rule() {
        let sys = crate::config::SystemDefaults { hostname: "mx.example".into(), cores: 1 };
        let text = "[[domain]]\nname = \"*.partner.example\"\nrelay = true\n\
                    [[domain]]\nname = \"no.partner.example\"\nrelay = false";
        let cfg = Config::from_toml_str(text, &sys).unwrap();
        // (client, RCPT TO argument, accepted?)
        let cases: &[(&str, &str, bool)] = &[
            ("192.0.2.1", "<b@a.partner.example>", true),
            ("192.0.2.1", "<b@A.Partner.Example>", true),
            ("192.0.2.1", "<b@no.partner.example>", false),
            ("192.0.2.1", "<b@partner.example>", false),
            ("192.0.2.1", "<@x.example:b@a.partner.example>", false),
            ("192.0.2.1", "<b%x.example@a.partner.example>", false),
            ("127.0.0.1", "<b@no.partner.example>", true),
        ];
        for &(client, arg, want) in cases {
            let (to, _) = crate::smtp::path::parse_forward_path(arg).unwrap();
            let got = check_rcpt(&cfg, client.parse().unwrap(), false, &to);
            assert_eq!(got.is_ok(), want, "{client} {arg} -> {got:?}");
        }
    }

    /// Issue 14: an authenticated client may relay (unless `relay_authenticated = false`);
    /// the same address unauthenticated may not.
    #[test]
    fn rcpt_authenticated() {
        let sys = crate::config::SystemDefaults { hostname: "mx.example".into(), cores: 1 };
        let on = Config::embedded_default(&sys);
        let mut off = on.clone();
        off.auth.relay_authenticated = false;
        // (config, authenticated, RCPT TO, accepted?) from 192.0.2.1 (not in relay.allow)
        let cases: &[(&Config, bool, &str, bool)] = &[
            (&on, false, "<b@example.org>", false),
            (&on, true, "<b@example.org>", true),
            (&off, true, "<b@example.org>", false),
            (&on, true, "<b@localhost>", true),
            (&on, true, "<b%example.org@localhost>", false),
            (&on, true, "<@localhost:b@example.org>", false),
        ];
        for &(cfg, auth, arg, want) in cases {
            let (to, _) = crate::smtp::path::parse_forward_path(arg).unwrap();
            let got = check_rcpt(cfg, "192.0.2.1".parse().unwrap(), auth, &to);
            assert_eq!(got.is_ok(), want, "{auth} {arg} -> {got:?}");
        }
    }

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
            let sys = crate::config::SystemDefaults { hostname: "mx.example".into(), cores: 1 };
            let cfg = RelayConfig { allow: nets(allow), ..Config::embedded_default(&sys).relay };
            assert_eq!(relay_allowed(&cfg, ip(client)), want, "{allow:?} {client}");
        }
    }
}
