//! PROXY protocol end to end: the real `mailroot` binary with `proxy_protocol = true`, and a
//! Python client (`tests/py/proxy_send.py`) that plays the load balancer: it writes a v1
//! header or a v2 header built with `struct.pack`, then speaks SMTP with `smtplib` over the
//! same socket. Checks: the relay decision, connection control, the per-IP limit and the
//! `Received:` header follow the carried address; LOCAL (a balancer's health check) uses
//! the real peer; an untrusted peer, a malformed or truncated header and a header that
//! never completes close the connection without a greeting and are counted; a header
//! split across reads works; implicit TLS after the header works.
//!
//! Loopback only: the trusted balancer is 127.0.0.1, an untrusted one 127.0.0.2.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A server with two sites: `default` (direct, the harness's port) and `lb` on its own
/// port with the PROXY protocol, where only 127.0.0.1 may send headers. Local domain
/// `localhost` goes to Drop/; 127.0.0.0/8 may relay; 198.51.100.0/24 may not connect; at
/// most 2 connections per client address. Returns the server and the `lb` port.
fn proxy_server(site_extra: &str, limits: &[(&str, &str)]) -> (Server, u16) {
    let lb = free_port();
    let mut conf = Conf {
        conn_deny: vec!["198.51.100.0/24".into()],
        // No hold: local mail is delivered to Drop/. Nothing remote is ever sent DATA.
        extra: format!(
            "\n[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n\
             \n[[site]]\nname = \"lb\"\nlisten = [\"127.0.0.1:{lb}\"]\nproxy_protocol = true\n\
             proxy_trusted = [\"127.0.0.1/32\"]\n{site_extra}\n"
        ),
        ..Conf::default()
    }
    .limit("max_connections_per_ip", "2");
    for (k, v) in limits {
        conf = conf.limit(k, v);
    }
    (Server::start(conf), lb)
}

/// Run `proxy_send.py` against `port` with `args`.
fn proxy_send(port: u16, args: &[&str]) -> Value {
    let mut all = vec!["--port".to_string(), port.to_string()];
    all.extend(args.iter().map(|s| (*s).to_string()));
    run_py("proxy_send.py", &all)
}

/// The reply code of `v[key]` (0 when absent).
fn code(v: &Value, key: &str) -> u16 {
    v.get(key).filter(|x| !x.is_null()).map_or(0, |x| code_text(x).0)
}

/// A counter's value from `/metrics` (the line with every label in `labels`).
fn counter(srv: &Server, name: &str, labels: &[&str]) -> u64 {
    let (_, _, body) = srv.admin_get("/metrics");
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The Drop/ file whose content contains `tag`, once it is there.
fn drop_file_with(srv: &Server, tag: &str) -> String {
    let dir = srv.mailroot.join("Drop");
    wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        std::fs::read_dir(&dir).ok()?.filter_map(Result::ok).find_map(|e| {
            let p = e.path();
            let name = p.file_name()?.to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".eml") {
                return None;
            }
            let text = std::fs::read_to_string(&p).ok()?;
            text.contains(tag).then_some(text)
        })
    })
    .unwrap_or_else(|| panic!("no Drop file with {tag}\n{}", srv.log_tail(4000)))
}

/// A message body file tagged `tag`.
fn body(dir: &Path, tag: &str) -> String {
    let p = dir.join(format!("{tag}.eml"));
    std::fs::write(&p, format!("Subject: {tag}\r\n\r\nbody {tag}\r\n")).expect("write body");
    p.display().to_string()
}

/// Our `Received:` field (the first header line and its continuation lines).
fn received(drop: &str) -> String {
    let start = drop.find("Received: ").unwrap_or_else(|| panic!("no Received: {drop}"));
    let rest = &drop[start..];
    let mut end = rest.find("\r\n").unwrap_or(rest.len());
    while rest[end..].starts_with("\r\n ") || rest[end..].starts_with("\r\n\t") {
        end += 2 + rest[end + 2..].find("\r\n").unwrap_or(rest.len() - end - 2);
    }
    rest[..end].to_owned()
}

#[test]
fn relay_and_received_follow_the_carried_address() {
    let (srv, lb) = proxy_server("", &[]);
    let dir = srv.dir.path();

    // v1 carrying 192.0.2.7 (outside [relay] allow): a remote RCPT is refused.
    let v = proxy_send(lb, &["--header", "v1", "--to", "x@remote.example"]);
    assert_eq!(code(&v, "greeting"), 220, "{v}");
    assert_eq!(code_text(&v["rcpt"][0]).0, 554, "{v}");

    // v2 (split across two writes) carrying 127.0.0.9: relays.
    let v = proxy_send(
        lb,
        &["--header", "v2", "--split", "--src", "127.0.0.9:5555", "--to", "x@remote.example"],
    );
    assert_eq!(code(&v, "greeting"), 220, "{v}");
    assert_eq!(code_text(&v["rcpt"][0]).0, 250, "{v}");

    // The delivered local message names the carried client in Received:, for v1 and v2,
    // and for v1 TCP6 with an IPv4-mapped source (a dual-stack balancer) as plain IPv4.
    for (hdr, src, tag) in [
        ("v1", "192.0.2.7:40001", "tag-v1"),
        ("v2", "203.0.113.9:40002", "tag-v2"),
        ("v1-mapped", "192.0.2.8:40003", "tag-mapped"),
    ] {
        let b = body(dir, tag);
        let v = proxy_send(
            lb,
            &["--header", hdr, "--src", src, "--to", "bob@localhost", "--body-file", &b],
        );
        assert_eq!(code(&v, "data"), 250, "{v}");
        let rcv = received(&drop_file_with(&srv, tag));
        let ip = src.split(':').next().unwrap_or_default();
        assert!(rcv.contains(&format!("[{ip}]")), "{hdr}: {rcv}");
        assert!(!rcv.contains("127.0.0.1"), "{hdr}: the balancer is not the client: {rcv}");
    }

    // v2 LOCAL (a health check) and v1 UNKNOWN: the real peer (127.0.0.1) is the client.
    for (hdr, tag) in [("v2-local", "tag-local"), ("v1-unknown", "tag-unknown")] {
        let b = body(dir, tag);
        let v = proxy_send(lb, &["--header", hdr, "--to", "bob@localhost", "--body-file", &b]);
        assert_eq!(code(&v, "data"), 250, "{v}");
        let rcv = received(&drop_file_with(&srv, tag));
        assert!(rcv.contains("[127.0.0.1]"), "{hdr}: {rcv}");
    }
    assert_eq!(counter(&srv, "mailroot_proxy_headers_total", &["site=\"lb\""]), 7);
}

#[test]
fn connection_control_and_per_ip_limit_use_the_carried_address() {
    let (_srv, lb) = proxy_server("", &[]);
    let lb_addr = std::net::SocketAddr::from(([127, 0, 0, 1], lb));
    // [connections] deny 198.51.100.0/24: refused after the header with 554.
    let v = proxy_send(lb, &["--header", "v1", "--src", "198.51.100.5:1000"]);
    assert_eq!(code(&v, "greeting"), 554, "{v}");

    // Per-IP limit 2 counts carried addresses, not the balancer: hold two sessions for
    // 192.0.2.50 and two for 192.0.2.51 open (four from 127.0.0.1), then a third
    // for 192.0.2.50 gets 421.
    let open = |src: &str| {
        let mut c = Raw::connect(lb_addr).expect("connect");
        c.send(format!("PROXY TCP4 {src} 198.51.100.1 1234 25\r\n").as_bytes());
        c
    };
    let mut held = Vec::new();
    for src in ["192.0.2.50", "192.0.2.50", "192.0.2.51", "192.0.2.51"] {
        let mut c = open(src);
        let g = c.read_reply().expect("greeting");
        assert_eq!(g.code, 220, "{src}: {g}");
        held.push(c);
    }
    let mut third = open("192.0.2.50");
    let g = third.read_reply().expect("reply");
    assert_eq!(g.code, 421, "{g}");
    // The same client as IPv4-mapped IPv6 (a dual-stack balancer's TCP6) is the same client.
    let mut mapped = Raw::connect(lb_addr).expect("connect");
    mapped.send(b"PROXY TCP6 ::ffff:192.0.2.50 ::1 1234 25\r\n");
    let g = mapped.read_reply().expect("reply");
    assert_eq!(g.code, 421, "{g}");
    drop(held);
}

#[test]
fn untrusted_malformed_and_truncated_headers_close_without_greeting() {
    let (srv, lb) = proxy_server("", &[]);
    // From 127.0.0.2: not in proxy_trusted, whatever it sends.
    let v = proxy_send(lb, &["--source", "127.0.0.2", "--header", "v1"]);
    assert!(v["closed"].as_bool().unwrap_or(false), "{v}");
    assert!(v["greeting"].is_null(), "{v}");
    for hdr in ["garbage", "v1-truncated", "v2-truncated"] {
        let v = proxy_send(lb, &["--header", hdr]);
        assert!(v["closed"].as_bool().unwrap_or(false), "{hdr}: {v}");
        assert!(v["greeting"].is_null(), "{hdr}: {v}");
    }
    let rejected = |reason: &str| {
        let r = format!("reason=\"{reason}\"");
        counter(&srv, "mailroot_proxy_rejected_total", &["site=\"lb\"", &r])
    };
    assert_eq!(rejected("untrusted"), 1);
    assert_eq!(rejected("malformed"), 3);
    let log = srv.log_tail(20_000);
    assert!(log.contains("peer=127.0.0.2:") && log.contains("not in proxy_trusted"), "{log}");
    assert!(log.contains("v2 header: length 4 too short"), "{log}");
}

#[test]
fn a_header_that_never_completes_times_out() {
    let (srv, lb) = proxy_server("", &[("command_timeout", "\"1s\"")]);
    let v = proxy_send(lb, &["--header", "partial"]);
    assert!(v["closed"].as_bool().unwrap_or(false), "{v}");
    assert_eq!(
        counter(&srv, "mailroot_proxy_rejected_total", &["site=\"lb\"", "reason=\"timeout\""]),
        1,
        "{}",
        srv.log_tail(4000)
    );
}

#[test]
fn implicit_tls_after_the_header() {
    let tls_port = free_port();
    let cert = rcgen::generate_simple_self_signed(vec!["mx.test".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cp, kp) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cp, cert.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&kp, cert.signing_key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
    let (srv, _) = proxy_server(
        &format!(
            "implicit_tls_listen = [\"127.0.0.1:{tls_port}\"]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cp.display().to_string(),
            kp.display().to_string()
        ),
        &[],
    );
    let b = body(srv.dir.path(), "tag-tls");
    for split in [false, true] {
        let mut args = vec!["--header", "v2", "--tls", "--src", "203.0.113.77:1"];
        args.extend(["--to", "bob@localhost", "--body-file", &b]);
        if split {
            args.push("--split");
        }
        let v = proxy_send(tls_port, &args);
        assert_eq!(code(&v, "greeting"), 220, "split={split}: {v}");
        assert_eq!(code(&v, "data"), 250, "split={split}: {v}");
    }
    let rcv = received(&drop_file_with(&srv, "tag-tls"));
    assert!(rcv.contains("[203.0.113.77]") && rcv.contains("ESMTPS"), "{rcv}");
    // A carried address [connections] denies: closed without a plaintext 554 or handshake.
    let v = proxy_send(tls_port, &["--header", "v1", "--tls", "--src", "198.51.100.5:1"]);
    assert!(v["closed"].as_bool().unwrap_or(false), "{v}");
    // Without a header the TLS ClientHello itself is a malformed header.
    let v = proxy_send(tls_port, &["--header", "none", "--tls"]);
    assert!(v["closed"].as_bool().unwrap_or(false), "{v}");
}

#[test]
fn proxy_keys_are_checked_and_printed() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let site = "[[site]]\nname = \"lb\"\nlisten = [\"127.0.0.1:2600\"]\n";
    let cases = [
        ("proxy_protocol = true\n", "site[0].proxy_trusted", "required"),
        ("proxy_trusted = [\"10.0.0.0/8\"]\n", "site[0].proxy_trusted", "no effect"),
        (
            "proxy_protocol = true\nproxy_trusted = [\"10.0.0.1/8\"]\n",
            "site[0].proxy_trusted[0]",
            "host bits",
        ),
    ];
    for (i, (keys, key, words)) in cases.iter().enumerate() {
        let out = check_config_file(tmp.path(), &format!("bad{i}.toml"), &format!("{site}{keys}"));
        assert_eq!(out.status.code(), Some(2), "{keys}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("`{key}`")) && err.contains(words), "{keys}: {err}");
    }
    let out = check_config_file(
        tmp.path(),
        "good.toml",
        &format!("{site}proxy_protocol = true\nproxy_trusted = [\"10.0.0.0/29\", \"::1\"]\n"),
    );
    assert_success(&out, "check-config");
    let printed = text(&out.stdout);
    assert!(printed.contains("proxy_protocol = true"), "{printed}");
    assert!(printed.contains("proxy_trusted = [\"10.0.0.0/29\", \"::1/128\"]"), "{printed}");
}
