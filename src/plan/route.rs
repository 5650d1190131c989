//! Next hop for one recipient domain, and the loop checks that go with it.
//!
//! What: [`route`] decides, per recipient domain, where mail goes next, in this order
//! (first match wins):
//! 1. a local domain or alias domain (`policy::domain::is_local_domain`) ->
//!    [`Route::Local`] (the Drop folder, or the `drop` of a matching `[[domain]]` rule);
//!    then a site's own `local_domains` -> [`Route::Local`] in that site's `drop_folder`;
//! 2. a `[[domain]]` rule with a `smart_host` -> [`Route::SmartHost`]; a rule without one
//!    still sets HELO and port for whatever follows (`policy::domain::domain_rule`: exact
//!    names beat wildcards; among wildcards the longest suffix wins);
//! 3. a `[hosts]` entry for the domain -> [`Route::Hosts`] (no DNS);
//! 4. `[relay] smart_host` -> [`Route::SmartHost`], or with `attempt_direct_first`
//!    [`Route::Mx`] with the smart host as fallback;
//! 5. an address literal (`user@[192.0.2.1]`) -> [`Route::Hosts`] with that address;
//! 6. otherwise [`Route::Mx`].
//!
//! Loop checks: [`is_self`] (a next-hop address is one of our listeners),
//! [`greeting_names_self`] (the remote 220 greeting names our host name), and
//! [`count_received_headers`] against `[relay] max_hop_count`. A loop is reported as
//! "Cannot connect to self" / "routing loop detected", status 5.4.6, never as a plain
//! connection failure.
//!
//! Trust: the recipient domain and the message headers come from a client (possibly
//! hostile); they are only compared and counted. The configuration is trusted.
//!
//! Layer 0: no DNS, no sockets, no clock. Standards: RFC 5321 §5.1 (MX, implicit MX,
//! address literals), §6.3 (loop detection by counting `Received:`), RFC 3463 (5.4.6).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::config::Config;
pub use crate::config::NextHop;
use crate::policy::domain::{domain_rule, is_local_domain, normalize};
use crate::smtp::client::TlsPolicy;

/// Enhanced status code for a loop (RFC 3463 §3.5 "Routing loop detected").
pub const LOOP_STATUS: &str = "5.4.6";
/// Diagnostic text when the next hop is this server.
pub const SELF_CONNECT_TEXT: &str = "Cannot connect to self";
/// Diagnostic text when the message has too many `Received:` fields.
pub const HOP_LOOP_TEXT: &str = "routing loop detected";

/// How to talk to the next hop, from the `[[domain]]` rule (if any) and `[delivery]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopOptions {
    /// Greet with HELO instead of EHLO (`[[domain]] helo`).
    pub helo: bool,
    /// Port for hosts that do not name one (`[[domain]] port`, else `[delivery] port`).
    /// A [`NextHop`] with its own port overrides it: see [`HopOptions::port_for`].
    pub port: u16,
    /// TLS policy (`[[domain]] tls`, else `[delivery] tls`).
    pub tls: TlsPolicy,
    /// Log in with `[relay] smart_host_auth`: only on the route to `[relay] smart_host`
    /// itself (never to MX hosts, a `[[domain]]` smart host, or a mixed MX + smart host
    /// fallback list: credentials go to the host they were configured for).
    pub smart_host_auth: bool,
}

impl HopOptions {
    /// The port to connect to for `hop`: its own, else the rule's or the default.
    #[must_use]
    pub fn port_for(&self, hop: &NextHop) -> u16 {
        hop.port().unwrap_or(self.port)
    }
}

/// Where mail for one recipient domain goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A local domain: write into this Drop folder.
    Local {
        /// `<mailroot>/Drop`, or the `drop` of the matching `[[domain]]` rule.
        drop_dir: PathBuf,
    },
    /// Send to this host (resolved by A/AAAA if a name, never by MX).
    SmartHost {
        /// The smart host.
        hop: NextHop,
        /// HELO and port.
        options: HopOptions,
    },
    /// Connect to these addresses, in order (host table or address literal; no DNS).
    Hosts {
        /// Invariant: not empty.
        addrs: Vec<IpAddr>,
        /// HELO and port.
        options: HopOptions,
    },
    /// Look up MX records of the recipient domain (implicit MX when there are none).
    Mx {
        /// With `attempt_direct_first`: the smart host to use when MX delivery fails.
        fallback: Option<NextHop>,
        /// HELO and port.
        options: HopOptions,
    },
}

/// The address inside an address-literal domain (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
fn address_literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..].parse().ok().map(IpAddr::V6),
        _ => inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Addresses of `host` in the `[hosts]` table (any case, one trailing dot allowed). The
/// resolver consults this before DNS for smart hosts and MX targets too.
#[must_use]
pub fn host_table_lookup<'c>(cfg: &'c Config, host: &str) -> Option<&'c [IpAddr]> {
    cfg.hosts.get(&normalize(host)).map(Vec::as_slice)
}

/// Decide the next hop for mail to `rcpt_domain` (the part after `@`, any case). See the
/// module doc for the order.
#[must_use]
pub fn route(cfg: &Config, rcpt_domain: &str) -> Route {
    let domain = normalize(rcpt_domain);
    let rule = domain_rule(cfg, &domain);
    if is_local_domain(&cfg.domains, &domain) {
        let drop_dir = rule.and_then(|r| r.drop.clone()).unwrap_or_else(|| cfg.drop_dir());
        return Route::Local { drop_dir };
    }
    // A site's own local domain (`[[site]] local_domains`): its Drop folder.
    if let Some(drop_dir) = cfg.site_drop_dir(&domain) {
        return Route::Local { drop_dir };
    }
    let mut options = HopOptions {
        helo: rule.is_some_and(|r| r.helo),
        port: rule.and_then(|r| r.port).unwrap_or(cfg.delivery.port),
        tls: rule.and_then(|r| r.tls).unwrap_or(cfg.delivery.tls),
        smart_host_auth: false,
    };
    if let Some(hop) = rule.and_then(|r| r.smart_host.clone()) {
        return Route::SmartHost { hop, options };
    }
    if let Some(addrs) = cfg.hosts.get(&domain) {
        return Route::Hosts { addrs: addrs.clone(), options };
    }
    if let Some(smart) = &cfg.relay.smart_host {
        if cfg.relay.attempt_direct_first {
            return Route::Mx { fallback: Some(smart.clone()), options };
        }
        options.smart_host_auth = cfg.relay.smart_host_auth.is_some();
        return Route::SmartHost { hop: smart.clone(), options };
    }
    if let Some(ip) = address_literal(&domain) {
        return Route::Hosts { addrs: vec![ip], options };
    }
    Route::Mx { fallback: None, options }
}

/// Is connecting to `addr` connecting to ourselves? True when some listen address has the
/// same port and either the same IP, or is a wildcard (`0.0.0.0`, `::`) and `addr` is a
/// loopback address or one of `interface_ips` (the caller's list of local interface
/// addresses; may be empty). IPv4-mapped IPv6 addresses compare as IPv4.
#[must_use]
pub fn is_self(addr: SocketAddr, listen_addrs: &[SocketAddr], interface_ips: &[IpAddr]) -> bool {
    let ip = addr.ip().to_canonical();
    let ours = ip.is_loopback() || interface_ips.iter().any(|i| i.to_canonical() == ip);
    listen_addrs.iter().any(|l| {
        let lip = l.ip().to_canonical();
        l.port() == addr.port() && (lip == ip || (lip.is_unspecified() && ours))
    })
}

/// Does the text of a remote 220 greeting name `our_hostname` as its first word? (RFC
/// 5321 §4.3.1: the greeting starts with the server's domain.) Pass the greeting text
/// without the code, e.g. `"mx.example.com ESMTP ready"`.
#[must_use]
pub fn greeting_names_self(greeting_text: &str, our_hostname: &str) -> bool {
    let first = greeting_text.split_ascii_whitespace().next().unwrap_or("");
    let first = first.strip_suffix('.').unwrap_or(first);
    !first.is_empty() && first.eq_ignore_ascii_case(our_hostname)
}

/// Number of `Received:` header fields in `header_bytes` (a message from its start; the
/// header ends at the first empty line, RFC 5322 §2.1). A field starts at the beginning of
/// a line, not a continuation line; the name is matched case-insensitively, with optional
/// white space before the colon (RFC 5322 §4.5 obsolete syntax).
#[must_use]
pub fn count_received_headers(header_bytes: &[u8]) -> usize {
    const NAME: &[u8] = b"received";
    let mut count = 0;
    for line in header_bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(head) = line.get(..NAME.len()) else { continue };
        if head.eq_ignore_ascii_case(NAME) {
            let rest = &line[NAME.len()..];
            let rest = rest.trim_ascii_start();
            if rest.first() == Some(&b':') {
                count += 1;
            }
        }
    }
    count
}

/// True if `header_bytes` carries more `Received:` fields than `max_hop_count`: bounce at
/// once with [`LOOP_STATUS`] and [`HOP_LOOP_TEXT`].
#[must_use]
pub fn too_many_hops(header_bytes: &[u8], max_hop_count: u32) -> bool {
    count_received_headers(header_bytes) > usize::try_from(max_hop_count).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemDefaults;

    fn cfg(extra: &str) -> Config {
        let sys = SystemDefaults { hostname: "mx.example.org".into(), cores: 1 };
        let base = r#"
            [domains]
            local = ["example.org", "b.example.org"]
            aliases = ["alias.example"]
            [[domain]]
            name = "b.example.org"
            drop = "/drop-b"
            [[domain]]
            name = "*.corp.example"
            smart_host = "[10.1.2.3]:2525"
            relay = true
            [[domain]]
            name = "*.eu.corp.example"
            smart_host = "eu-gw.corp.example"
            helo = true
            port = 26
            [[domain]]
            name = "open.corp.example"
            helo = true
            [[domain]]
            name = "closed.corp.example"
            relay = false
            [hosts]
            "intranet.example" = ["10.9.9.9", "10.9.9.10"]
            "open.corp.example" = ["10.0.0.7"]
        "#;
        Config::from_toml_str(&format!("mailroot = \"/m\"\n{extra}\n{base}"), &sys)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn opts(helo: bool, port: u16) -> HopOptions {
        HopOptions { helo, port, tls: TlsPolicy::May, smart_host_auth: false }
    }

    fn hop(s: &str) -> NextHop {
        NextHop::parse(s).unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// A site's own local domains go to its Drop folder (or the master's); master local
    /// domains stay in the master Drop; a domain local to no one is remote.
    #[test]
    fn site_local_domains_route_to_the_site_drop_folder() {
        let c = cfg("[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
                     local_domains = [\"a.example\"]\ndrop_folder = \"/drop-a\"\n\
                     [[site]]\nname = \"c\"\nlisten = [\"127.0.0.1:26\"]\n\
                     local_domains = [\"c.example\"]\n");
        let local = |p: &str| Route::Local { drop_dir: PathBuf::from(p) };
        assert_eq!(route(&c, "A.Example."), local("/drop-a"));
        assert_eq!(route(&c, "c.example"), local("/m/Drop"));
        assert_eq!(route(&c, "example.org"), local("/m/Drop"));
        assert!(matches!(route(&c, "d.example"), Route::Mx { .. }));
        assert!(c.is_site_local_domain("C.example.") && !c.is_site_local_domain("example.org"));
    }

    #[test]
    fn routes_without_smart_host() {
        let c = cfg("");
        let local = |p: &str| Route::Local { drop_dir: PathBuf::from(p) };
        let mx = Route::Mx { fallback: None, options: opts(false, 25) };
        let cases: Vec<(&str, Route)> = vec![
            ("example.org", local("/m/Drop")),
            ("EXAMPLE.org.", local("/m/Drop")),
            ("alias.example", local("/m/Drop")),
            ("b.example.org", local("/drop-b")),
            (
                "x.corp.example",
                Route::SmartHost { hop: hop("[10.1.2.3]:2525"), options: opts(false, 25) },
            ),
            (
                "a.eu.corp.example",
                Route::SmartHost { hop: hop("eu-gw.corp.example"), options: opts(true, 26) },
            ),
            (
                "open.corp.example",
                Route::Hosts { addrs: ips(&["10.0.0.7"]), options: opts(true, 25) },
            ),
            (
                "intranet.example",
                Route::Hosts { addrs: ips(&["10.9.9.9", "10.9.9.10"]), options: opts(false, 25) },
            ),
            ("corp.example", mx.clone()),
            ("[192.0.2.1]", Route::Hosts { addrs: ips(&["192.0.2.1"]), options: opts(false, 25) }),
            (
                "[IPv6:2001:db8::1]",
                Route::Hosts { addrs: ips(&["2001:db8::1"]), options: opts(false, 25) },
            ),
            ("gmail.com", mx),
        ];
        for (domain, want) in cases {
            assert_eq!(route(&c, domain), want, "{domain}");
        }
    }

    #[test]
    fn routes_with_global_smart_host() {
        let smart = cfg("[relay]\nsmart_host = \"smart.example:587\"");
        let direct = cfg("[relay]\nsmart_host = \"smart.example\"\nattempt_direct_first = true");
        let cases: Vec<(&Config, &str, Route)> = vec![
            (
                &smart,
                "gmail.com",
                Route::SmartHost { hop: hop("smart.example:587"), options: opts(false, 25) },
            ),
            (
                &smart,
                "[192.0.2.1]",
                Route::SmartHost { hop: hop("smart.example:587"), options: opts(false, 25) },
            ),
            (
                &smart,
                "intranet.example",
                Route::Hosts { addrs: ips(&["10.9.9.9", "10.9.9.10"]), options: opts(false, 25) },
            ),
            (
                &smart,
                "x.corp.example",
                Route::SmartHost { hop: hop("[10.1.2.3]:2525"), options: opts(false, 25) },
            ),
            (&smart, "example.org", Route::Local { drop_dir: PathBuf::from("/m/Drop") }),
            (
                &direct,
                "gmail.com",
                Route::Mx { fallback: Some(hop("smart.example")), options: opts(false, 25) },
            ),
        ];
        for (c, domain, want) in cases {
            assert_eq!(route(c, domain), want, "{domain}");
        }
    }

    #[test]
    fn tls_policy_and_smart_host_auth() {
        let c = cfg("[relay]\nsmart_host = \"smart.example:587\"\n\
             smart_host_auth = { user = \"u\", password = \"p\" }\n\
             [delivery]\ntls = \"encrypt\"\n\
             [[domain]]\nname = \"bank.example\"\ntls = \"verify\"\n\
             [[domain]]\nname = \"old.example\"\ntls = \"none\"");
        let options = |d: &str| match route(&c, d) {
            Route::SmartHost { options, .. }
            | Route::Hosts { options, .. }
            | Route::Mx { options, .. } => options,
            Route::Local { .. } => panic!("{d} is local"),
        };
        // (domain, policy, log in with smart_host_auth)
        let cases = [
            ("gmail.com", TlsPolicy::Encrypt, true),
            ("bank.example", TlsPolicy::Verify, true),
            ("old.example", TlsPolicy::None, true),
            // A [[domain]] smart host or the host table never gets the credentials.
            ("x.corp.example", TlsPolicy::Encrypt, false),
            ("intranet.example", TlsPolicy::Encrypt, false),
        ];
        for (d, tls, auth) in cases {
            let o = options(d);
            assert_eq!((o.tls, o.smart_host_auth), (tls, auth), "{d}");
        }
        // Default: may; with attempt_direct_first the mixed MX + smart host list gets none.
        let direct = cfg("[relay]\nsmart_host = \"s.example\"\nattempt_direct_first = true\n\
             smart_host_auth = { user = \"u\", password = \"p\" }");
        let Route::Mx { options, .. } = route(&direct, "gmail.com") else { panic!() };
        assert_eq!((options.tls, options.smart_host_auth), (TlsPolicy::May, false));
    }

    #[test]
    fn port_of_hop() {
        let o = opts(false, 2525);
        assert_eq!(o.port_for(&hop("a.example")), 2525);
        assert_eq!(o.port_for(&hop("a.example:26")), 26);
        assert_eq!(
            host_table_lookup(&cfg(""), "Intranet.Example."),
            Some(&ips(&["10.9.9.9", "10.9.9.10"])[..])
        );
    }

    #[test]
    fn self_detection() {
        let listen: Vec<SocketAddr> = ["127.0.0.1:2525", "0.0.0.0:25", "[::1]:587"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ifaces = ips(&["192.0.2.10"]);
        // (address we would connect to, is it us?)
        let cases: &[(&str, bool)] = &[
            ("127.0.0.1:2525", true),
            ("127.0.0.1:2526", false),
            ("127.0.0.2:25", true),
            ("192.0.2.10:25", true),
            ("192.0.2.11:25", false),
            ("192.0.2.10:2525", false),
            ("[::1]:587", true),
            ("[::ffff:127.0.0.1]:2525", true),
            ("[::ffff:192.0.2.10]:25", true),
            ("[2001:db8::1]:587", false),
        ];
        for &(addr, want) in cases {
            assert_eq!(is_self(addr.parse().unwrap(), &listen, &ifaces), want, "{addr}");
        }
    }

    #[test]
    fn greeting_self() {
        let cases: &[(&str, bool)] = &[
            ("mx.example.org ESMTP mailroot", true),
            ("MX.Example.Org. ready", true),
            ("mx.example.org", true),
            ("mx2.example.org ESMTP", false),
            ("", false),
            ("  mx.example.org hi", true),
        ];
        for &(text, want) in cases {
            assert_eq!(greeting_names_self(text, "mx.example.org"), want, "{text:?}");
        }
    }

    #[test]
    fn received_counts() {
        let cases: &[(&[u8], usize)] = &[
            (b"", 0),
            (b"Received: a\r\n\r\nReceived: body\r\n", 1),
            (b"Received: a\r\nRECEIVED: b\r\nreceived : c\r\nX: y\r\n\r\n", 3),
            (b"Received: a\r\n  Received: folded\r\nX-Received: no\r\n\r\n", 1),
            (b"Received: a\nReceived: bare LF\n\nReceived: body\n", 2),
            (b"Received-SPF: pass\r\nReceivedx: no\r\nReceived\r\n\r\n", 0),
            (b"Subject: x\r\n\r\n", 0),
        ];
        for &(hdr, want) in cases {
            assert_eq!(count_received_headers(hdr), want, "{:?}", String::from_utf8_lossy(hdr));
        }
        let many: Vec<u8> = b"Received: x\r\n".repeat(51);
        assert!(too_many_hops(&many, 50));
        assert!(!too_many_hops(&many[..many.len() - 13], 50));
    }
}
