//! End-to-end SMTP behaviour of the real `mailroot` binary, driven by clients nobody on the
//! team wrote (`lettre`, Python `smtplib`) and, where exact wire bytes matter, a raw socket.
//!
//! Covers: byte-exact queueing (a prepended `Received:` field + the content exactly as sent
//! after dot-unstuffing), multiple recipients, RFC 2920 pipelining, relay denial, the
//! connection allow/deny lists, SMTP smuggling, `check-config`. Limits live in `e2e_limits.rs`.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{
    Conf, PySend, Raw, Server, assert_stored_exactly, check_config_file, code_text, dot_stuff,
    json_strings, run_py,
};
use lettre::Transport;
use lettre::address::Envelope;

/// Content that exercises transparency: leading dots, a lone dot line, long and empty lines.
fn tricky_content(tag: &str) -> Vec<u8> {
    let mut c = format!(
        "From: Sender <sender@client.test>\r\nTo: rcpt@localhost\r\nSubject: {tag}\r\n\
         Message-ID: <{tag}@client.test>\r\n\r\n"
    )
    .into_bytes();
    c.extend_from_slice(b".leading dot\r\n..two dots\r\n.\r\n. \r\n...\r\n");
    c.extend_from_slice(b"trailing spaces   \r\n\ttab first\r\n\r\n\r\n");
    c.extend_from_slice(&[b'x'; 998]);
    c.extend_from_slice(b"\r\nFrom the start of a line\r\n.\r\n\r\nend");
    c
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope::new(
        Some(from.parse().expect("from address")),
        to.iter().map(|t| t.parse().expect("to address")).collect(),
    )
    .expect("envelope")
}

fn recipients(m: &mailroot::spool::QueuedMessage) -> Vec<String> {
    m.envelope.recipients.iter().map(|r| r.forward_path.clone()).collect()
}

#[test]
fn lettre_messages_are_queued_byte_exact() {
    // This one runs with the built-in default segment size; the others use 1 MiB segments.
    let mut srv = Server::start(Conf { segment_size: None, ..Conf::default() });
    let mailer = srv.lettre();
    // lettre dot-stuffs and always writes "\r\n.\r\n" after the content, so the server
    // stores content + CRLF whether or not the content ended with CRLF.
    let mut plain = tricky_content("lettre-no-final-crlf");
    let mut with_crlf = tricky_content("lettre-final-crlf");
    with_crlf.extend_from_slice(b"\r\n");
    let mut utf8 = tricky_content("lettre-8bit");
    utf8.extend_from_slice("\r\nGrüße aus Köln ✓\r\n".as_bytes());
    let cases = [
        ("l1@client.test", plain.clone()),
        ("l2@client.test", with_crlf.clone()),
        ("l3@client.test", utf8.clone()),
    ];
    for (from, body) in &cases {
        let r = mailer.send_raw(&envelope(from, &["rcpt@localhost"]), body);
        let r = r.unwrap_or_else(|e| panic!("lettre send from {from}: {e}"));
        assert_eq!(u16::from(r.code()), 250);
    }
    let senders: HashSet<String> = srv.queued_senders().into_iter().collect();
    for (from, _) in &cases {
        assert!(senders.contains(*from), "{from} missing from queue list {senders:?}");
    }
    let status = srv.terminate().expect("server exits after SIGTERM");
    assert!(status.success(), "SIGTERM exit status {status}");
    let stored = common::read_spool(&srv.queue_dir());
    assert_eq!(stored.len(), 3, "exactly the three messages are queued");
    plain.extend_from_slice(b"\r\n");
    let mut with_crlf2 = with_crlf;
    with_crlf2.extend_from_slice(b"\r\n");
    utf8.extend_from_slice(b"\r\n");
    for (from, expect) in
        [("l1@client.test", plain), ("l2@client.test", with_crlf2), ("l3@client.test", utf8)]
    {
        let (m, bytes) = stored
            .iter()
            .find(|(m, _)| m.envelope.reverse_path == from)
            .unwrap_or_else(|| panic!("{from} not in spool"));
        assert_eq!(recipients(m), ["rcpt@localhost"]);
        assert_eq!(m.message_bytes, bytes.len() as u64, "message_bytes matches the bytes read");
        assert_stored_exactly(bytes, &expect);
    }
}

#[test]
fn smtplib_messages_are_queued_byte_exact() {
    let mut srv = Server::start(Conf::default());
    let mut body = tricky_content("smtplib");
    body.extend_from_slice(b"\r\n"); // smtplib appends CRLF only when missing
    let rep = PySend {
        server: &srv,
        from: "py{i}@client.test".into(),
        to: vec!["rcpt@localhost".into()],
        body: body.clone(),
        mail_opts: vec![],
        source: None,
    }
    .run();
    assert!(rep["error"].is_null(), "smtplib error: {rep}");
    assert_eq!(code_text(&rep["connect"]).0, 220);
    let msgs = rep["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 1);
    let (code, text) = code_text(&msgs[0]["data"]);
    assert_eq!(code, 250, "end of data: {text}");
    let stored = srv.stop_and_read_all();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.envelope.reverse_path, "py0@client.test");
    assert_stored_exactly(&stored[0].1, &body);
}

#[test]
fn several_messages_on_one_smtplib_connection() {
    let mut srv = Server::start(Conf::default());
    let body = b"Subject: many\r\n\r\n.dot\r\nbody\r\n".to_vec();
    let body_path = srv.dir.path().join("many.eml");
    std::fs::write(&body_path, &body).expect("write body");
    let five = run_py(
        "send.py",
        &[
            "--port".into(),
            srv.port.to_string(),
            "--from".into(),
            "five{i}@client.test".into(),
            "--to".into(),
            "rcpt@localhost".into(),
            "--body-file".into(),
            body_path.display().to_string(),
            "--count".into(),
            "5".into(),
        ],
    );
    assert!(five["error"].is_null(), "smtplib error: {five}");
    let msgs = five["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 5);
    for m in msgs {
        assert_eq!(code_text(&m["data"]).0, 250, "{m}");
    }
    let stored = srv.stop_and_read_all();
    let mut senders: Vec<&str> =
        stored.iter().map(|(m, _)| m.envelope.reverse_path.as_str()).collect();
    senders.sort_unstable();
    let want: Vec<String> = (0..5).map(|i| format!("five{i}@client.test")).collect();
    assert_eq!(senders, want);
    for (_, bytes) in &stored {
        assert_stored_exactly(bytes, &body);
    }
}

#[test]
fn multiple_recipients_are_kept_in_order() {
    let mut srv = Server::start(Conf::default());
    let to = ["alice@localhost", "bob@localhost", "carol@LOCALHOST", "dave@example.com"];
    let body = b"Subject: multi\r\n\r\nhello all\r\n";
    srv.lettre()
        .send_raw(&envelope("multi@client.test", &to), body)
        .unwrap_or_else(|e| panic!("lettre multi-rcpt send: {e}"));
    // Live scan through the library while the server runs.
    let live = srv.scan();
    assert_eq!(live.len(), 1);
    let got = recipients(&live[0]);
    assert_eq!(got.len(), 4, "recipients: {got:?}");
    for (g, want) in got.iter().zip(to) {
        assert!(g.eq_ignore_ascii_case(want), "recipient {g} != {want} (order must be kept)");
    }
    // And the CLI lists all of them.
    let mut strings = HashSet::new();
    for m in srv.queue_list() {
        json_strings(&m, &mut strings);
    }
    for want in ["alice@localhost", "bob@localhost", "dave@example.com"] {
        assert!(strings.contains(want), "{want} not in queue list JSON {strings:?}");
    }
    let stored = srv.stop_and_read_all();
    let mut expect = body.to_vec();
    expect.extend_from_slice(b"\r\n");
    assert_stored_exactly(&stored[0].1, &expect);
}

#[test]
fn pipelined_commands_get_ordered_replies() {
    let mut srv = Server::start(Conf::default());
    let body1 = b"Subject: pipe1\r\n\r\n.starts with dot\r\nMAIL FROM:<in@body>\r\n".to_vec();
    let body2 = b"Subject: pipe2\r\n\r\nsecond\r\n".to_vec();
    let p1 = srv.dir.path().join("b1");
    let p2 = srv.dir.path().join("b2");
    std::fs::write(&p1, &body1).expect("write");
    std::fs::write(&p2, &body2).expect("write");
    let rep = run_py(
        "pipeline.py",
        &[
            "--port".into(),
            srv.port.to_string(),
            "--body1".into(),
            p1.display().to_string(),
            "--body2".into(),
            p2.display().to_string(),
        ],
    );
    let ehlo: Vec<String> = rep["ehlo"]
        .as_array()
        .expect("ehlo")
        .iter()
        .skip(1)
        .map(|v| v.as_str().unwrap_or("").to_ascii_uppercase())
        .collect();
    assert!(ehlo.iter().any(|l| l == "PIPELINING"), "PIPELINING not advertised: {ehlo:?}");
    let codes: Vec<Vec<u16>> = rep["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p.as_array().expect("phase").iter().map(|r| code_text(r).0).collect())
        .collect();
    assert_eq!(codes.len(), 3, "{rep}");
    assert_eq!(codes[0].len(), 5, "phase 1 replies: {rep}");
    assert_eq!(&codes[0][..2], [250, 250], "phase 1: {rep}");
    assert!((500..600).contains(&codes[0][2]), "bad RCPT syntax must get 5xx: {rep}");
    assert_eq!(&codes[0][3..], [250, 354], "phase 1: {rep}");
    assert_eq!(codes[1], [250, 250, 250, 354], "phase 2: {rep}");
    assert_eq!(codes[2], [250, 221], "phase 3: {rep}");

    let stored = srv.stop_and_read_all();
    assert_eq!(stored.len(), 2);
    let one = stored.iter().find(|(m, _)| m.envelope.reverse_path == "pipe1@client.test");
    let (m1, b1) = one.expect("pipe1 queued");
    assert_eq!(recipients(m1), ["a@localhost", "b@localhost"]);
    assert_stored_exactly(b1, &body1);
    let two = stored.iter().find(|(m, _)| m.envelope.reverse_path == "pipe2@client.test");
    let (m2, b2) = two.expect("pipe2 queued");
    assert_eq!(recipients(m2), ["c@localhost"]);
    assert_stored_exactly(b2, &body2);
}

fn py_send(srv: &Server, from: &str, to: &[&str], source: Option<Ipv4Addr>) -> serde_json::Value {
    PySend {
        server: srv,
        from: from.into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        body: b"Subject: t\r\n\r\nx\r\n".to_vec(),
        mail_opts: vec![],
        source,
    }
    .run()
}

fn rcpt_codes(rep: &serde_json::Value) -> Vec<(u16, String)> {
    rep["messages"][0]["rcpt"].as_array().expect("rcpt replies").iter().map(code_text).collect()
}

#[test]
fn relay_is_denied_when_allow_list_is_empty() {
    let conf = Conf { relay_allow: vec![], ..Conf::default() };
    let srv = Server::start(conf);
    let rep = py_send(&srv, "r@client.test", &["far@example.com", "near@localhost"], None);
    assert!(rep["error"].is_null(), "{rep}");
    let rc = rcpt_codes(&rep);
    assert_eq!(rc[0].0, 554, "remote rcpt: {rc:?}");
    assert!(rc[0].1.contains("5.7.1"), "remote rcpt needs 5.7.1: {rc:?}");
    assert_eq!(rc[1].0, 250, "local rcpt still accepted: {rc:?}");
    assert_eq!(code_text(&rep["messages"][0]["data"]).0, 250, "{rep}");
    let q = srv.scan();
    assert_eq!(q.len(), 1);
    assert_eq!(recipients(&q[0]), ["near@localhost"], "denied recipient must not be queued");
}

#[test]
fn relay_only_for_clients_in_allow_list() {
    let conf = Conf { relay_allow: vec!["127.0.0.2/32".into()], ..Conf::default() };
    let srv = Server::start(conf);
    let denied = py_send(&srv, "d@client.test", &["far@example.com"], Some(Ipv4Addr::LOCALHOST));
    let rc = rcpt_codes(&denied);
    assert_eq!(rc[0].0, 554, "127.0.0.1 may not relay: {denied}");
    assert!(rc[0].1.contains("5.7.1"), "{denied}");
    // Relay tricks from a non-relay client ('%' hack, source route, quoted '@', bang path).
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<t@client.test>").code, 250);
    for trick in [
        "far%example.com@localhost",
        "@localhost:far@example.com",
        "\"far@example.com\"@localhost",
        "example.com!far@localhost",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{trick}>"));
        assert!(r.code >= 500, "relay trick <{trick}> must be refused: {r}");
    }
    assert_eq!(c.cmd("RCPT TO:<near@localhost>").code, 250, "plain local rcpt still ok");
    assert_eq!(c.cmd("RSET").code, 250);
    drop(c);
    let allowed =
        py_send(&srv, "a@client.test", &["far@example.com"], Some(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(rcpt_codes(&allowed)[0].0, 250, "127.0.0.2 may relay: {allowed}");
    assert_eq!(code_text(&allowed["messages"][0]["data"]).0, 250, "{allowed}");
    let q = srv.scan();
    assert_eq!(q.len(), 1, "only the allowed relay message is queued");
    assert_eq!(q[0].envelope.reverse_path, "a@client.test");
}

#[test]
fn connection_deny_list_refuses_at_connect() {
    let conf = Conf { conn_deny: vec!["127.0.0.1/32".into()], ..Conf::default() };
    let srv = Server::start(conf);
    let denied = py_send(&srv, "x@client.test", &["r@localhost"], Some(Ipv4Addr::LOCALHOST));
    let (code, text) = code_text(&denied["connect"]);
    assert_eq!(code, 554, "denied client greeting: {text}");
    assert!(denied["messages"].as_array().is_none_or(Vec::is_empty), "{denied}");
    let ok = py_send(&srv, "y@client.test", &["r@localhost"], Some(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(code_text(&ok["connect"]).0, 220, "{ok}");
    assert_eq!(code_text(&ok["messages"][0]["data"]).0, 250, "{ok}");
    // Raw check: the denied connection is closed after the 554.
    let mut raw = Raw::connect(srv.addr()).expect("connect");
    let g = raw.read_reply().expect("554 greeting");
    assert_eq!(g.code, 554, "{g}");
    assert!(raw.wait_closed(Duration::from_secs(5)), "denied connection not closed");
    let q = srv.scan();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].envelope.reverse_path, "y@client.test");
}

#[test]
fn connection_allow_list_refuses_everyone_else() {
    let conf = Conf { conn_allow: vec!["127.0.0.3/32".into()], ..Conf::default() };
    let srv = Server::start(conf);
    let no = py_send(&srv, "x@client.test", &["r@localhost"], Some(Ipv4Addr::LOCALHOST));
    assert_eq!(code_text(&no["connect"]).0, 554, "{no}");
    let yes = py_send(&srv, "y@client.test", &["r@localhost"], Some(Ipv4Addr::new(127, 0, 0, 3)));
    assert_eq!(code_text(&yes["connect"]).0, 220, "{yes}");
    assert_eq!(code_text(&yes["messages"][0]["data"]).0, 250, "{yes}");
}

/// Each body hides a second transaction behind a line ending that is NOT `<CRLF>.<CRLF>`.
const SMUGGLE_ENDINGS: [&[u8]; 6] =
    [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\r\n.\r\r\n"];

fn smuggle_session(srv: &Server) -> Vec<u16> {
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let mut codes = Vec::new();
    for (i, ending) in SMUGGLE_ENDINGS.iter().enumerate() {
        assert_eq!(c.cmd(&format!("MAIL FROM:<legit{i}@client.test>")).code, 250);
        assert_eq!(c.cmd("RCPT TO:<legit@localhost>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        let mut body = format!("Subject: smuggle {i}\r\n\r\nhello").into_bytes();
        body.extend_from_slice(ending);
        body.extend_from_slice(
            b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\n\
              smuggled\r\n",
        );
        body.extend_from_slice(b".\r\n");
        c.send(&body);
        codes.push(c.read_reply().expect("end-of-data reply").code);
    }
    // If anything had been taken as a command, extra replies would be waiting before 221.
    c.send(b"QUIT\r\n");
    let q = c.read_reply().expect("QUIT reply");
    assert_eq!(q.code, 221, "QUIT must be the next reply (smuggled commands answered?): {q}");
    assert!(c.read_reply().is_none(), "nothing after 221");
    codes
}

#[test]
fn smuggling_normalize_policy_refuses_each_and_stores_nothing() {
    let srv = Server::start(Conf::default());
    let codes = smuggle_session(&srv);
    // Every ending above is an end-of-data look-alike (a lone dot next to a bare CR/LF):
    // refused 554 5.6.0 under the default policy too, one reply per DATA, session goes on.
    assert!(codes.iter().all(|&c| c == 554), "look-alikes must be refused: {codes:?}");
    assert!(srv.scan().is_empty(), "nothing stored");
}

#[test]
fn smuggling_reject_policy_stores_nothing() {
    let conf = Conf { bare_line_ending: "reject".into(), ..Conf::default() };
    let srv = Server::start(conf);
    let codes = smuggle_session(&srv);
    // Every ending above contains a bare CR or LF next to a lone dot: 554 5.6.0 each.
    assert!(codes.iter().all(|&c| c == 554), "bare line endings must be rejected: {codes:?}");
    assert!(srv.scan().is_empty(), "nothing stored under the reject policy");
}

#[test]
fn raw_client_dot_stuffing_round_trips() {
    let mut srv = Server::start(Conf::default());
    let content = b"Subject: raw\r\n\r\n.\r\n..\r\n.x\r\nend\r\n".to_vec();
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let r = c.send_message("raw@client.test", &["r@localhost"], &dot_stuff(&content));
    assert_eq!(r.code, 250, "{r}");
    assert!(r.text().contains("2.0.0"), "enhanced status on 250: {r}");
    let stored = srv.stop_and_read_all();
    assert_eq!(stored.len(), 1);
    assert_stored_exactly(&stored[0].1, &content);
}

fn check_config(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = check_config_file(dir.path(), "bad.toml", text);
    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
    msg += &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), msg)
}

#[test]
fn check_config_unknown_key_exits_2_naming_it() {
    let (code, msg) = check_config("[limits]\nmax_recipientz = 5\n");
    assert_eq!(code, 2, "exit status; output: {msg}");
    assert!(msg.contains("max_recipientz"), "must name the key: {msg}");
}

#[test]
fn check_config_bad_value_exits_2_naming_it() {
    let (code, msg) = check_config("[limits]\nmax_connections = 0\n");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("max_connections"), "must name the key: {msg}");
    let (code, msg) = check_config("[limits]\nmax_message_size = \"lots\"\n");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("max_message_size"), "must name the key: {msg}");
    let (code, msg) = check_config("[relay]\nallow = [\"not-a-net\"]\n");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("allow"), "must name the key: {msg}");
}

#[test]
fn check_config_accepts_a_good_file() {
    let (code, msg) = check_config(
        "hostname = \"mx.test\"\n[limits]\nmax_message_size = \"10MiB\"\n\
         command_timeout = \"30s\"\nmax_recipients = 3\n[domains]\nlocal = [\"localhost\"]\n",
    );
    assert_eq!(code, 0, "{msg}");
}

#[test]
fn bdat_chunks_are_stored_verbatim() {
    let mut srv = Server::start(Conf::default());
    let mut c = Raw::connect(srv.addr()).expect("connect");
    let ehlo = c.hello();
    assert!(ehlo.lines.iter().any(|l| l.eq_ignore_ascii_case("CHUNKING")), "{ehlo}");
    assert_eq!(c.cmd("MAIL FROM:<bdat@client.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r@localhost>").code, 250);
    // RFC 3030: chunk bytes are never scanned; a lone "." line and a dot-stuffed-looking
    // line are content, and nothing is unstuffed.
    let part1: &[u8] = b"Subject: bdat\r\n\r\n.\r\n..not unstuffed\r\n";
    let part2: &[u8] = b"QUIT\r\nlast line\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes());
    c.send(part1);
    let r = c.read_reply().expect("reply to first chunk");
    assert_eq!(r.code, 250, "{r}");
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    c.send(part2);
    let r = c.read_reply().expect("reply to last chunk");
    assert_eq!(r.code, 250, "{r}");
    assert_eq!(c.cmd("QUIT").code, 221);
    let stored = srv.stop_and_read_all();
    assert_eq!(stored.len(), 1);
    assert_stored_exactly(&stored[0].1, &[part1, part2].concat());
}

#[test]
fn sigterm_lets_data_in_flight_finish_and_says_421_to_idle_sessions() {
    let mut srv = Server::start(Conf::default());
    let mut idle = Raw::connect(srv.addr()).expect("connect");
    idle.hello();
    let mut busy = Raw::connect(srv.addr()).expect("connect");
    busy.hello();
    assert_eq!(busy.cmd("MAIL FROM:<inflight@client.test>").code, 250);
    assert_eq!(busy.cmd("RCPT TO:<r@localhost>").code, 250);
    assert_eq!(busy.cmd("DATA").code, 354);
    let content = b"Subject: in flight\r\n\r\nfirst half\r\n".to_vec();
    busy.send(&content);
    common::send_signal(srv.pid().expect("running"), libc::SIGTERM);
    let r = idle.read_reply().expect("idle session hears about the shutdown");
    assert_eq!(r.code, 421, "{r}");
    assert!(r.text().contains("4.3.2"), "{r}");
    assert!(idle.wait_closed(Duration::from_secs(5)));
    // The message in DATA may finish within shutdown_grace (2 s in these tests).
    busy.send(b"second half\r\n.\r\n");
    let r = busy.read_reply().expect("end-of-data reply during shutdown");
    assert_eq!(r.code, 250, "{r}");
    // No second signal (that would mean "exit now"): the process exits on its own.
    let status = srv.wait_exit(Duration::from_secs(10)).expect("server exits after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let stored = common::read_spool(&srv.queue_dir());
    assert_eq!(stored.len(), 1);
    let mut want = content;
    want.extend_from_slice(b"second half\r\n");
    assert_stored_exactly(&stored[0].1, &want);
}
