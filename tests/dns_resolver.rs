//! The resolver against a real DNS server on loopback (`common_dns`): MX order, implicit MX,
//! null MX, NXDOMAIN, SERVFAIL, timeouts, TCP fallback on truncation, CNAMEs, spoofed
//! datagrams, server failover, the cache and the host table.

mod common_dns;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common_dns::{DnsServer, NEGATIVE_TTL_SECS, Zone, ip};
use mailroot::dns::{DnsError, MxHost, MxResolution, Resolver, ResolverConfig, TemporaryReason};

const ZONE: &str = "
example.com        300  MX     20 mx2.example.com
example.com        300  MX     10 mx1.example.com
mx1.example.com         A      127.0.0.1
mx1.example.com         AAAA   ::1
mx2.example.com         A      127.0.0.2
equal.example           MX     10 a.equal.example
equal.example           MX     10 b.equal.example
a.equal.example         A      127.0.1.1
b.equal.example         A      127.0.1.2
implicit.example        A      127.0.2.1
implicit.example        AAAA   ::2
";

/// The zone used by most tests.
fn zone() -> Zone {
    Zone::parse(ZONE)
        .with("nomail.example        MX   0 .")
        .with("partial.example       MX   10 ghost.partial.example")
        .with("partial.example       MX   20 mx.partial.example")
        .with("mx.partial.example    A    127.0.3.1")
        .with("nohosts.example       MX   10 ghost.nohosts.example")
        .with("alias.example         CNAME example.com")
        .with("www.alias.example     CNAME mx2.example.com")
        .with("broken.example        SERVFAIL")
        .with("refused.example       REFUSED")
        .with("slow.example          TIMEOUT")
        .with("big.example           TRUNCATE")
        .with("big.example           MX   10 mx1.example.com")
        .with("spoofed.example       SPOOF")
        .with("spoofed.example       A    127.0.4.1")
        .with("slowmx.example        MX   10 slow.example")
        .with("old.example           NOEDNS")
        .with("old.example           MX   10 mx2.example.com")
}

/// Per-query wait for tests that expect answers, in ms: generous, the machine may be busy.
const ANSWER_TIMEOUT_MS: u64 = 1_000;
/// Per-query wait for tests that expect timeouts, in ms.
const SHORT_TIMEOUT_MS: u64 = 300;

fn resolver_with(servers: Vec<SocketAddr>, timeout_ms: u64) -> Resolver {
    Resolver::new(ResolverConfig { servers, timeout_ms, attempts: 2, ..Default::default() })
}

fn resolver(servers: Vec<SocketAddr>) -> Resolver {
    resolver_with(servers, ANSWER_TIMEOUT_MS)
}

fn host(name: &str, preference: u16, addrs: &[&str]) -> MxHost {
    MxHost { name: name.to_string(), preference, addrs: addrs.iter().map(|a| ip(a)).collect() }
}

#[test]
fn mx_in_preference_order_with_addresses() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    let got = r.resolve_mx("Example.COM.", Instant::now()).unwrap();
    assert_eq!(
        got,
        MxResolution::Hosts(vec![
            host("mx1.example.com", 10, &["127.0.0.1", "::1"]),
            host("mx2.example.com", 20, &["127.0.0.2"]),
        ])
    );
    assert_eq!(server.tcp_queries(), 0);
    // One MX query, then A and AAAA for each of the two exchanges.
    assert_eq!(r.queries_total(), 5);
    assert_eq!(server.udp_queries(), 5);
}

#[test]
fn equal_preferences_come_in_random_order() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    let now = Instant::now();
    let mut firsts = HashSet::new();
    for _ in 0..64 {
        let MxResolution::Hosts(hosts) = r.resolve_mx("equal.example", now).unwrap() else {
            panic!("expected hosts")
        };
        assert_eq!(hosts.len(), 2);
        firsts.insert(hosts[0].name.clone());
    }
    assert_eq!(firsts.len(), 2, "both equal-preference hosts come first sometimes: {firsts:?}");
    // All but the first resolution came from the cache.
    assert_eq!(r.queries_total(), 5);
}

#[test]
fn implicit_mx_uses_the_domains_own_addresses() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    assert_eq!(
        r.resolve_mx("implicit.example", Instant::now()),
        Ok(MxResolution::Hosts(vec![host("implicit.example", 0, &["127.0.2.1", "::2"])]))
    );
}

#[test]
fn null_mx_is_its_own_outcome() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    assert_eq!(r.resolve_mx("nomail.example", Instant::now()), Ok(MxResolution::NullMx));
}

#[test]
fn permanent_and_temporary_errors() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    let now = Instant::now();
    // (domain, expected error)
    let cases = [
        ("doesnotexist.example", DnsError::NoSuchDomain { name: "doesnotexist.example".into() }),
        ("nohosts.example", DnsError::NoMailHosts { domain: "nohosts.example".into() }),
        (
            "broken.example",
            DnsError::Temporary {
                name: "broken.example".into(),
                reason: TemporaryReason::ServerFailure(mailroot::dns::Rcode::ServFail),
            },
        ),
        (
            "refused.example",
            DnsError::Temporary {
                name: "refused.example".into(),
                reason: TemporaryReason::ServerFailure(mailroot::dns::Rcode::Refused),
            },
        ),
    ];
    for (domain, expected) in cases {
        let got = r.resolve_mx(domain, now);
        assert_eq!(got.as_ref(), Err(&expected), "{domain}");
        assert_eq!(expected.is_permanent(), !matches!(expected, DnsError::Temporary { .. }));
    }
    assert_eq!(
        r.resolve_host("doesnotexist.example", now),
        Err(DnsError::NoSuchDomain { name: "doesnotexist.example".into() })
    );
    // A host that exists with no address: empty, not an error.
    assert_eq!(r.resolve_host("nomail.example", now), Ok(vec![]));
}

#[test]
fn mx_host_without_address_is_skipped() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    assert_eq!(
        r.resolve_mx("partial.example", Instant::now()),
        Ok(MxResolution::Hosts(vec![host("mx.partial.example", 20, &["127.0.3.1"])]))
    );
}

#[test]
fn timeout_is_temporary_and_bounded() {
    let server = DnsServer::start(zone());
    let r = resolver_with(vec![server.addr], SHORT_TIMEOUT_MS);
    let start = Instant::now();
    let got = r.resolve_mx("slow.example", start);
    let elapsed = start.elapsed();
    assert_eq!(
        got,
        Err(DnsError::Temporary { name: "slow.example".into(), reason: TemporaryReason::Timeout })
    );
    // 2 attempts x 1 server x SHORT_TIMEOUT_MS, with slack for a loaded machine.
    assert!(elapsed >= Duration::from_millis(2 * SHORT_TIMEOUT_MS - 50), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(server.udp_queries(), 2, "one try per attempt");
    // An MX whose only host times out: the deferral is reported, not "no mail hosts".
    let got = r.resolve_mx("slowmx.example", Instant::now());
    assert!(
        matches!(got, Err(DnsError::Temporary { ref name, .. }) if name == "slow.example"),
        "{got:?}"
    );
}

#[test]
fn truncated_udp_answer_is_retried_over_tcp() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    assert_eq!(
        r.resolve_mx("big.example", Instant::now()),
        Ok(MxResolution::Hosts(vec![host("mx1.example.com", 10, &["127.0.0.1", "::1"])]))
    );
    assert_eq!(server.tcp_queries(), 1, "the MX query went over TCP after TC=1");
}

#[test]
fn formerr_to_edns_is_retried_without_it() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    assert_eq!(
        r.resolve_mx("old.example", Instant::now()),
        Ok(MxResolution::Hosts(vec![host("mx2.example.com", 10, &["127.0.0.2"])]))
    );
    // MX with EDNS (FORMERR), MX without, then A and AAAA of mx2.
    assert_eq!(server.udp_queries(), 4);
}

#[test]
fn cname_chains_are_followed() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    let now = Instant::now();
    let MxResolution::Hosts(hosts) = r.resolve_mx("alias.example", now).unwrap() else {
        panic!("expected hosts")
    };
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["mx1.example.com", "mx2.example.com"]);
    assert_eq!(r.resolve_host("www.alias.example", now), Ok(vec![ip("127.0.0.2")]));
}

#[test]
fn spoofed_datagram_with_wrong_id_is_ignored() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    assert_eq!(r.resolve_host("spoofed.example", Instant::now()), Ok(vec![ip("127.0.4.1")]));
}

#[test]
fn next_server_is_tried_after_failures() {
    let good = DnsServer::start(zone());
    let failing = DnsServer::start(Zone::parse("mx2.example.com SERVFAIL"));
    // A port with nothing behind it: connected UDP gets ICMP "port unreachable".
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // A socket that never answers: the query times out.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = resolver(vec![closed, silent.local_addr().unwrap(), failing.addr, good.addr]);
    let got = r.resolve_host("mx2.example.com", Instant::now());
    assert_eq!(got, Ok(vec![ip("127.0.0.2")]));
    assert_eq!(failing.udp_queries(), 2, "A and AAAA each got SERVFAIL there first");
}

#[test]
fn cache_answers_until_the_ttl_runs_out() {
    let server = DnsServer::start(zone());
    let r = resolver(vec![server.addr]);
    let t0 = Instant::now();
    let first = r.resolve_mx("example.com", t0).unwrap();
    let asked = server.udp_queries();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    // (seconds after t0, queries expected to have been sent by then)
    let cases = [
        (0, asked),
        // Every record is still fresh (the AAAA NODATA of mx2 lasts NEGATIVE_TTL_SECS).
        (u64::from(NEGATIVE_TTL_SECS) - 1, asked),
        // Only mx2's negative AAAA answer has expired.
        (u64::from(NEGATIVE_TTL_SECS), asked + 1),
        // Re-cached at t0+60 for another NEGATIVE_TTL_SECS.
        (2 * u64::from(NEGATIVE_TTL_SECS) - 1, asked + 1),
        // The 300 s records have expired: everything is asked again.
        (300, asked + 1 + asked),
    ];
    for (secs, queries) in cases {
        assert_eq!(r.resolve_mx("example.com", at(secs)).unwrap(), first, "t0+{secs}s");
        assert_eq!(server.udp_queries(), queries, "t0+{secs}s");
    }

    // Negative answers are cached for the SOA's negative TTL.
    let before = server.udp_queries();
    for secs in [0, u64::from(NEGATIVE_TTL_SECS) - 1] {
        let got = r.resolve_mx("gone.example", t0 + Duration::from_secs(secs));
        assert!(matches!(got, Err(DnsError::NoSuchDomain { .. })));
    }
    assert_eq!(server.udp_queries(), before + 1);
    let _ = r.resolve_mx("gone.example", t0 + Duration::from_secs(u64::from(NEGATIVE_TTL_SECS)));
    assert_eq!(server.udp_queries(), before + 2);

    // Temporary failures are not cached.
    let before = server.udp_queries();
    let _ = r.resolve_mx("broken.example", t0);
    let _ = r.resolve_mx("broken.example", t0);
    assert_eq!(server.udp_queries(), before + 4, "2 attempts each time");
}

#[test]
fn host_table_is_consulted_before_dns() {
    let server = DnsServer::start(zone());
    let config = ResolverConfig {
        servers: vec![server.addr],
        timeout_ms: ANSWER_TIMEOUT_MS,
        attempts: 1,
        hosts: [("example.com".to_string(), vec![ip("10.1.2.3")])].into(),
    };
    let r = Resolver::new(config);
    let now = Instant::now();
    assert_eq!(
        r.resolve_mx("example.com", now),
        Ok(MxResolution::Hosts(vec![host("example.com", 0, &["10.1.2.3"])]))
    );
    assert_eq!(r.resolve_host("EXAMPLE.com.", now), Ok(vec![ip("10.1.2.3")]));
    assert_eq!(server.udp_queries(), 0);
    assert_eq!(r.queries_total(), 0);
}

#[test]
fn resolver_is_shared_across_threads() {
    let server = DnsServer::start(zone());
    let r = std::sync::Arc::new(resolver(vec![server.addr]));
    let now = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.resolve_mx("example.com", now))
        })
        .collect();
    for h in handles {
        let MxResolution::Hosts(hosts) = h.join().unwrap().unwrap() else { panic!() };
        assert_eq!(hosts.len(), 2);
    }
}
