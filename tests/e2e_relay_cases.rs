//! The open-relay test list end to end (issue 12, "Relay and injection cases"): the real
//! binary, driven by Python's `smtplib` (`tests/py/relay_probe.py`, which sends each
//! `RCPT TO:` argument byte for byte with `docmd`).
//!
//! Configuration: `example.com` is the local domain, only `127.0.0.5` may relay, and the
//! test's outsider connects from `127.0.0.1` (which is also the server's own address, so
//! `user@[127.0.0.1]` is "our own address in a literal"). One test per category of the
//! classic relay-test lists (abuse.net's set, Postfix's `allow_percent_hack`,
//! `swap_bangpath`, `resolve_dequoted_address`): every trick is refused with the code and
//! enhanced status the client sees (`554 5.7.1` relay denied, `501 5.1.3` / `501 5.5.4`
//! bad syntax), the session goes on (NOOP 250), and what is accepted is genuinely local mail
//! that lands in `Drop/` while the smart host (a real sink) never sees a connection. The
//! positive controls (a relay client, an authenticated outsider) show the refusals are not
//! "refuse everything". The policy's unit tests (`src/policy/relay_cases_tests.rs`) hold
//! the full list; these check each category through the real server.

mod common;
mod common_sink;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use common::{Conf, Server, code_text, hash_password, run_py, wait_until};
use common_sink::Sink;
use serde_json::Value;

/// The relay client's address (`[relay] allow`).
const RELAY_CLIENT: &str = "127.0.0.5";
/// The outsider's address (not in `[relay] allow`).
const OUTSIDER: &str = "127.0.0.1";
/// The test user's password.
const PASSWORD: &str = "relay pass";
/// Bounded waits.
const WAIT: Duration = Duration::from_secs(30);
/// Poll step.
const STEP: Duration = Duration::from_millis(50);

/// What a case expects: 250, or a refusal with this code and enhanced status.
#[derive(Clone, Copy, Debug)]
enum Want {
    Ok,
    Refused(u16, &'static str),
}
use Want::{Ok as Accepted, Refused};

const DENIED: Want = Refused(554, "5.7.1");
const SYNTAX: Want = Refused(501, "5.1.3");
const ARGS: Want = Refused(501, "5.5.4");

/// A server where `example.com` is local and only `RELAY_CLIENT` may relay; user `relay`
/// may log in over plaintext; mail is delivered (Drop for local, `sink` for remote).
fn server(sink: &Sink) -> Server {
    let (code, hash, err) = hash_password(&format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "hash-password: {err}");
    let mut conf = Conf {
        relay_allow: vec![format!("{RELAY_CLIENT}/32")],
        local_domains: vec!["example.com".into()],
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port()),
        extra: "\n[delivery]\nretry = [\"1s\"]\n".into(),
        ..Conf::default()
    }
    .limit("max_errors", "1000");
    conf.extra += &format!(
        "\n[auth]\nallow_plaintext_auth = true\n\n[[user]]\nname = \"relay\"\npassword_hash = \"{}\"\n",
        hash.trim()
    );
    Server::start(conf)
}

/// Run `relay_probe.py` from `source` with these RCPT arguments (and extra flags).
fn probe(srv: &Server, source: &str, rcpts: &[&str], extra: &[&str]) -> Value {
    let mut args =
        vec!["--port".to_owned(), srv.port.to_string(), "--source".into(), source.into()];
    for r in rcpts {
        args.push(format!("--rcpt={r}"));
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = run_py("relay_probe.py", &args);
    assert_eq!(code_text(&out["ehlo"]).0, 250, "{out}");
    assert_eq!(code_text(&out["mail"]).0, 250, "{out}");
    assert_eq!(code_text(&out["noop"]).0, 250, "the session goes on after refusals: {out}");
    assert_eq!(code_text(&out["quit"]).0, 221, "{out}");
    out
}

/// Probe `cases` from the outsider and check every reply.
fn check(srv: &Server, cases: &[(&str, Want)], extra: &[&str]) -> Value {
    let rcpts: Vec<&str> = cases.iter().map(|(r, _)| *r).collect();
    let out = probe(srv, OUTSIDER, &rcpts, extra);
    let replies = out["rcpt"].as_array().expect("rcpt replies");
    assert_eq!(replies.len(), cases.len(), "{out}");
    for ((rcpt, want), reply) in cases.iter().zip(replies) {
        let (code, text) = code_text(reply);
        match want {
            Accepted => assert_eq!(code, 250, "RCPT TO:{rcpt} -> {code} {text}"),
            Refused(c, status) => {
                assert_eq!(code, *c, "RCPT TO:{rcpt} -> {code} {text}");
                assert!(text.starts_with(status), "RCPT TO:{rcpt} -> {code} {text}");
            }
        }
    }
    out
}

/// Files in `Drop/` (sorted), read whole.
fn drop_files(srv: &Server) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(srv.mailroot.join("Drop"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .map(|p| {
                    let b = fs::read(&p).unwrap_or_default();
                    (p, b)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The `x-receiver:` values of a Drop file.
fn receivers(file: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(file)
        .split("\r\n")
        .take_while(|l| l.starts_with("x-"))
        .filter_map(|l| l.strip_prefix("x-receiver: ").map(str::to_owned))
        .collect()
}

/// Nothing reached the smart host and the queue is empty: nothing was relayed.
fn assert_nothing_relayed(srv: &Server, sink: &Sink) {
    let drained = wait_until(WAIT, STEP, || srv.queue_list().is_empty().then_some(()));
    assert!(drained.is_some(), "queue not drained: {:?}", srv.queue_list());
    assert_eq!(sink.connections(), 0, "the smart host was contacted: {:?}", sink.received());
}

#[test]
fn percent_hack_is_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<user%evil.org@example.com>", DENIED),
            ("<user%evil.org%other.net@example.com>", DENIED),
            ("<\"user%evil.org\"@example.com>", DENIED),
            ("<user%evil.org@[127.0.0.1]>", DENIED),
            ("<user%evil.org>", SYNTAX),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

#[test]
fn bang_paths_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<evil.org!user@example.com>", DENIED),
            ("<evil.org!other.net!user@example.com>", DENIED),
            ("<evil.org!user>", SYNTAX),
            ("<\"evil.org!user\"@example.com>", DENIED),
            ("<evil.org!user@[127.0.0.1]>", DENIED),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

#[test]
fn quoted_local_parts_with_at_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<\"user@evil.org\"@example.com>", DENIED),
            ("<\"user\\@evil.org\"@example.com>", DENIED),
            ("<\"user@evil.org\"@[127.0.0.1]>", DENIED),
            ("<\"user@evil.org\">", SYNTAX),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

#[test]
fn source_routes_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<@example.com:user@evil.org>", DENIED),
            ("<@example.com,@x:user@evil.org>", DENIED),
            ("<@example.com,@example.com:user@evil.org>", DENIED),
            ("<@[127.0.0.1]:user@evil.org>", SYNTAX),
            ("<@example.com user@evil.org>", SYNTAX),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

/// Our own address in a literal is not a local domain: refused like any relay.
#[test]
fn ip_literals_and_our_own_address_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<user@[1.2.3.4]>", DENIED),
            ("<user@[IPv6:::1]>", DENIED),
            ("<user@[127.0.0.1]>", DENIED),
            ("<user@[127.000.000.001]>", DENIED),
            ("<user@[IPv6:::ffff:127.0.0.1]>", DENIED),
            ("<Postmaster@[127.0.0.1]>", DENIED),
            ("<user@[x-local:example.com]>", DENIED),
            ("<user@[example.com]>", SYNTAX),
            ("<user@[2130706433]>", SYNTAX),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

/// Upper case is local (and delivered to Drop); a trailing dot is refused as syntax, so
/// neither `example.com.` nor `evil.org.` can go anywhere.
#[test]
fn upper_case_is_local_and_trailing_dots_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    let body = srv.dir.path().join("body.eml");
    fs::write(&body, b"Subject: case\r\n\r\nhello\r\n").expect("write body");
    let out = check(
        &srv,
        &[
            ("<user@EXAMPLE.COM>", Accepted),
            ("<user@example.com.>", SYNTAX),
            ("<user@evil.org.>", SYNTAX),
            ("<user@EVIL.ORG>", DENIED),
        ],
        &[&format!("--data-file={}", body.display())],
    );
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    let files = wait_until(WAIT, STEP, || Some(drop_files(&srv)).filter(|f| !f.is_empty()))
        .expect("a Drop file");
    assert_eq!(files.len(), 1);
    assert_eq!(receivers(&files[0].1), ["user@EXAMPLE.COM"]);
    assert_nothing_relayed(&srv, &sink);
}

#[test]
fn empty_labels_and_odd_characters_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<user@example..com>", SYNTAX),
            ("<user@.example.com>", SYNTAX),
            ("<user@>", SYNTAX),
            ("<user@exa_mple.com>", SYNTAX),
            ("<user@-example.com>", SYNTAX),
            ("<user@exa%mple.com>", SYNTAX),
            ("<user@example.com(comment)>", SYNTAX),
            ("<user@ex\\ample.com>", SYNTAX),
        ],
        &[],
    );
    // U-labels need SMTPUTF8; with it, a look-alike of the local domain is not local.
    check(
        &srv,
        &[("<user@example\u{3002}com>", DENIED), ("<user@\u{435}xample.com>", DENIED)],
        &["--smtputf8"],
    );
    assert_nothing_relayed(&srv, &sink);
}

#[test]
fn double_at_and_unbalanced_brackets_are_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<user@example.com@evil.org>", SYNTAX),
            ("<user@evil.org@example.com>", SYNTAX),
            ("<user@example.com", SYNTAX),
            ("user@example.com>", SYNTAX),
            ("user@evil.org", SYNTAX),
            ("<<user@evil.org>>", SYNTAX),
            ("<user@example.com>>", ARGS),
            ("<user@example.com><user@evil.org>", ARGS),
            ("<user@[1.2.3.4>", SYNTAX),
            ("<user@1.2.3.4]>", SYNTAX),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

#[test]
fn local_domain_as_a_suffix_or_prefix_is_refused() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    check(
        &srv,
        &[
            ("<user@example.com.evil.org>", DENIED),
            ("<user@evilexample.com>", DENIED),
            ("<user@sub.example.com>", DENIED),
            ("<user@example.com-evil.org>", DENIED),
        ],
        &[],
    );
    assert_nothing_relayed(&srv, &sink);
}

/// Relaying works where configured: from the relay client's address, and for an
/// authenticated outsider; the same outsider unauthenticated is refused. Local-part tricks
/// stay refused even for them. The relayed message reaches the smart host.
#[test]
fn relay_is_allowed_for_the_relay_client_and_after_auth() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    let body = srv.dir.path().join("body.eml");
    fs::write(&body, b"Subject: relay\r\n\r\nhello\r\n").expect("write body");
    let data = format!("--data-file={}", body.display());
    let rcpts = ["<a@remote.test>", "<b@[127.0.0.9]>", "<c%evil.org@example.com>"];
    let from_relay = probe(&srv, RELAY_CLIENT, &rcpts, &[&data]);
    let login = format!("--login=relay:{PASSWORD}");
    let authed = probe(&srv, OUTSIDER, &rcpts, &[&login, &data]);
    assert_eq!(code_text(&authed["login"]).0, 235, "{authed}");
    for out in [&from_relay, &authed] {
        let codes: Vec<u16> =
            out["rcpt"].as_array().expect("rcpt").iter().map(|r| code_text(r).0).collect();
        assert_eq!(codes, [250, 250, 554], "{out}");
        assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    }
    let outsider = probe(&srv, OUTSIDER, &rcpts, &[]);
    let codes: Vec<u16> =
        outsider["rcpt"].as_array().expect("rcpt").iter().map(|r| code_text(r).0).collect();
    assert_eq!(codes, [554, 554, 554], "{outsider}");
    // Delivered per destination domain: four deliveries, each recipient twice.
    let all = |r: &[common_sink::Received]| -> Vec<String> {
        let mut v: Vec<String> = r.iter().flat_map(|m| m.rcpts.clone()).collect();
        v.sort();
        v
    };
    let got = wait_until(WAIT, STEP, || Some(all(&sink.received())).filter(|r| r.len() >= 4))
        .expect("both relayed messages at the smart host");
    assert_eq!(got, ["a@remote.test", "a@remote.test", "b@[127.0.0.9]", "b@[127.0.0.9]"]);
}

/// What the outsider gets accepted is local mail, delivered to Drop under its canonical
/// local address, in the same transaction as refused tricks; nothing is relayed.
#[test]
fn accepted_tricky_local_mail_is_delivered_locally_never_relayed() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    let body = srv.dir.path().join("body.eml");
    fs::write(&body, b"Subject: local\r\n\r\nhello\r\n").expect("write body");
    let out = check(
        &srv,
        &[
            ("<@evil.org:user@example.com>", Accepted),
            ("<@evil.org,@other.net:second@example.com>", Accepted),
            ("<\"john doe\"@example.com>", Accepted),
            ("<\"quoted\"@Example.Com>", Accepted),
            ("<Postmaster>", Accepted),
            ("<user%evil.org@example.com>", DENIED),
            ("<@example.com:user@evil.org>", DENIED),
            ("<user@[127.0.0.1]>", DENIED),
        ],
        &[&format!("--data-file={}", body.display())],
    );
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    let files = wait_until(WAIT, STEP, || Some(drop_files(&srv)).filter(|f| !f.is_empty()))
        .expect("a Drop file");
    assert_eq!(files.len(), 1, "one Drop file for one message");
    assert_eq!(
        receivers(&files[0].1),
        [
            "user@example.com",
            "second@example.com",
            "\"john doe\"@example.com",
            "quoted@Example.Com",
            "Postmaster"
        ]
    );
    assert_nothing_relayed(&srv, &sink);
}

/// Our own address in a literal, from a relay client: accepted as a relay request and
/// routed to that address, which is our own listener; delivery answers "Cannot connect to
/// self" (5.4.6) to the local sender instead of looping or reporting a plain connection
/// failure (the IIS release notes' imprecise NDR). No smart host here: the literal is the
/// route.
#[test]
fn our_own_address_literal_from_a_relay_client_bounces_cannot_connect_to_self() {
    let mut srv = Server::start(Conf {
        relay_allow: vec![format!("{RELAY_CLIENT}/32")],
        local_domains: vec!["example.com".into()],
        ..Conf::default()
    });
    // Now that the port is known, deliver to it (the literal names no port).
    srv.conf.extra = format!("\n[delivery]\nretry = [\"1s\"]\nport = {}\n", srv.port);
    srv.restart();
    let body = srv.dir.path().join("body.eml");
    fs::write(&body, b"Subject: to-self\r\n\r\nhello\r\n").expect("write body");
    let data = format!("--data-file={}", body.display());
    let out =
        probe(&srv, RELAY_CLIENT, &["<user@[127.0.0.1]>"], &["--from=sender@example.com", &data]);
    assert_eq!(code_text(&out["rcpt"][0]).0, 250, "{out}");
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    let ndr = wait_until(WAIT, STEP, || {
        drop_files(&srv).into_iter().find(|(_, b)| receivers(b) == ["sender@example.com"])
    })
    .expect("an NDR for the sender in Drop");
    let text = String::from_utf8_lossy(&ndr.1);
    assert!(text.contains("Cannot connect to self"), "{text}");
    assert!(text.contains("Status: 5.4.6"), "{text}");
    assert!(!text.to_lowercase().contains("connection to host"), "{text}");
    let drained = wait_until(WAIT, STEP, || srv.queue_list().is_empty().then_some(()));
    assert!(drained.is_some(), "queue not drained: {:?}", srv.queue_list());
}
