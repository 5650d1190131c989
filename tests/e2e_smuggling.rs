//! SMTP smuggling end to end (issue: an end-of-data look-alike must never reach the next hop
//! as a lone-dot line). A real client (Python's `smtplib`, `tests/py/smuggle.py`) sends
//! content with bare CR / bare LF byte for byte into the real binary, which relays by smart
//! host to a real sink (`aiosmtpd`, `tests/py/sink_aiosmtpd.py`), through DATA, BDAT and the
//! Pickup folder, on the default configuration (`bare_line_ending = "normalize"`).
//!
//! For every look-alike (`\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r.\r`, and their mixes with
//! ordinary bare LFs) hiding a second transaction: `554 5.6.0`, no reply to the smuggled
//! commands, no second message, nothing at the sink with a lone-dot line or the smuggled
//! text; the refusals are counted per site and logged with the client address. Ordinary
//! bare-LF messages still relay, normalised to CRLF.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Conf, Server, code_text, free_port, py_script, run_py, split_received, wait_until};
use serde_json::{Value, json};

/// How long the sink and the queue get to settle.
const WAIT: Duration = Duration::from_secs(30);
/// Poll interval.
const STEP: Duration = Duration::from_millis(50);

/// The four sequences of the issue, each a look-alike.
const LOOKALIKES: [&[u8]; 4] = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r.\r"];

/// What an attacker hides after the look-alike.
const SMUGGLED: &[u8] = b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@remote.test>\r\n\
    DATA\r\nFrom: ceo@bank.test\r\nSubject: smuggled\r\n\r\nsmuggled text\r\n";

/// aiosmtpd on a loopback port; killed on drop. `lifetime` bounds it if the test dies.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sink {
    fn start() -> Sink {
        let dir = tempfile::Builder::new().prefix("mailroot-sink-").tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new("python3")
            .arg(py_script("sink_aiosmtpd.py"))
            .args(["--port", &port.to_string(), "--lifetime", "300", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 sink_aiosmtpd.py (needs `pip install aiosmtpd`, see .ci/run)");
        let mut sink = Sink { child, dir, port };
        let ready = wait_until(WAIT, STEP, || sink.dir.path().join("ready").exists().then_some(()));
        if ready.is_none() {
            let _ = sink.child.kill();
            panic!("aiosmtpd sink did not start (is aiosmtpd installed? .ci/run installs it)");
        }
        sink
    }

    /// Messages stored so far: (envelope JSON, content), in arrival order.
    fn received(&self) -> Vec<(Value, Vec<u8>)> {
        let mut out = Vec::new();
        for n in 1.. {
            let base: PathBuf = self.dir.path().join(n.to_string());
            let Ok(content) = fs::read(base.with_extension("eml")) else { break };
            let env = fs::read(base.with_extension("json")).expect("envelope beside content");
            out.push((serde_json::from_slice(&env).expect("envelope JSON"), content));
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relaying server on the default policy: everything for `remote.test` goes to `sink`.
fn relay_to(sink: &Sink) -> Server {
    Server::start(Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port),
        extra: "\n[delivery]\nretry = [\"1s\"]\n".into(),
        ..Conf::default()
    })
}

/// One message for `smuggle.py`.
fn case(mode: &str, tag: &str, content: &[u8]) -> Value {
    let hex: String = content.iter().map(|b| format!("{b:02x}")).collect();
    json!({"mode": mode, "from": format!("{tag}@client.test"), "to": ["rcpt@remote.test"],
           "content": hex})
}

/// Run `smuggle.py` with `cases`; returns the reply codes to each content, and asserts the
/// session answered nothing it should not have (the NOOP gets its own 250, QUIT its 221).
fn drive(srv: &Server, cases: &[Value]) -> Vec<(u16, String)> {
    let path = srv.dir.path().join(format!("cases-{}.json", common::unique()));
    fs::write(&path, serde_json::to_vec(cases).expect("cases JSON")).expect("write cases");
    let out = run_py(
        "smuggle.py",
        &["--port".into(), srv.port.to_string(), "--cases".into(), path.display().to_string()],
    );
    let noop = code_text(&out["noop"]);
    assert_eq!(noop.0, 250, "the NOOP's own reply comes next (smuggled commands answered?): {out}");
    assert!(noop.1.contains("2.0.0"), "{out}");
    assert_eq!(code_text(&out["quit"]).0, 221, "{out}");
    let replies = out["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), cases.len(), "{out}");
    replies.iter().map(code_text).collect()
}

/// Smuggling bodies: each look-alike alone, after ordinary bare LFs, and followed by more.
fn smuggling_bodies() -> Vec<(String, Vec<u8>)> {
    let mut bodies = Vec::new();
    for (i, seq) in LOOKALIKES.iter().enumerate() {
        let plain = [b"Subject: smuggle\r\n\r\nhello".as_slice(), seq, SMUGGLED].concat();
        bodies.push((format!("alone{i}"), plain));
        let mixed =
            [b"Subject: mix\nX-Bare: lf\n\nline one\nline two\r\nthree".as_slice(), seq, SMUGGLED]
                .concat();
        bodies.push((format!("mixed{i}"), mixed));
        let twice = [b"Subject: twice\r\n\r\na".as_slice(), seq, b"b\n", seq, SMUGGLED].concat();
        bodies.push((format!("twice{i}"), twice));
    }
    bodies
}

/// Ordinary bare line endings (no look-alike) and what the next hop must store.
fn ordinary_bodies() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    vec![
        (
            "barelf".into(),
            b"Subject: bare\nX-A: b\n\nline one\nline two\n..two dots\n.x\nend\r\n".to_vec(),
            b"Subject: bare\r\nX-A: b\r\n\r\nline one\r\nline two\r\n..two dots\r\n.x\r\nend\r\n"
                .to_vec(),
        ),
        (
            "barecr".into(),
            b"Subject: cr\r\n\r\none\rtwo\r\n".to_vec(),
            b"Subject: cr\r\n\r\none\r\ntwo\r\n".to_vec(),
        ),
    ]
}

/// No line of `content` is a single dot, and nothing smuggled is in it.
fn assert_clean(content: &[u8]) {
    let text = String::from_utf8_lossy(content);
    for line in text.split(['\r', '\n']) {
        assert_ne!(line, ".", "a lone-dot line reached the next hop: {text:?}");
    }
    assert!(!text.contains("attacker.test") && !text.contains("smuggled"), "{text:?}");
}

/// The counter for refused smuggling attempts, from the admin listener.
fn smuggling_counter(srv: &Server) -> u64 {
    let (status, _, body) = srv.admin_get("/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find(|l| l.starts_with("mailroot_smuggling_refused_total{site=\"default\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no smuggling counter for site default in\n{body}"))
}

/// Wait until the sink has `n` messages and the queue is empty; return the messages.
fn wait_delivered(srv: &Server, sink: &Sink, n: usize) -> Vec<(Value, Vec<u8>)> {
    let done = wait_until(WAIT, STEP, || {
        (sink.received().len() >= n && srv.queue_list().is_empty()).then_some(())
    });
    assert!(done.is_some(), "sink has {} of {n}\n{}", sink.received().len(), srv.log_tail(4000));
    // Anything extra (a second, smuggled message) would arrive with the same delivery pass.
    std::thread::sleep(Duration::from_millis(300));
    sink.received()
}

/// Check the sink's messages against the ordinary bodies, in any order.
fn assert_ordinary_relayed(got: &[(Value, Vec<u8>)], mode: &str) {
    let ordinary = ordinary_bodies();
    assert_eq!(got.len(), ordinary.len(), "only the ordinary messages reach the sink");
    for (tag, _, want) in &ordinary {
        let from = format!("{tag}-{mode}@client.test");
        let (env, content) = got
            .iter()
            .find(|(e, _)| e["mail_from"] == from.as_str())
            .unwrap_or_else(|| panic!("{from} not relayed: {got:?}"));
        assert_eq!(env["rcpt_tos"], json!(["rcpt@remote.test"]));
        let (received, body) = split_received(content);
        assert!(received.starts_with(b"Received: "), "our trace header first");
        assert_eq!(String::from_utf8_lossy(body), String::from_utf8_lossy(want), "{from}");
    }
    for (_, content) in got {
        assert_clean(content);
    }
}

fn run_mode(mode: &str) {
    let sink = Sink::start();
    let srv = relay_to(&sink);
    let bad = smuggling_bodies();
    let mut cases: Vec<Value> =
        bad.iter().map(|(tag, body)| case(mode, &format!("{tag}-{mode}"), body)).collect();
    for (tag, body, _) in ordinary_bodies() {
        cases.push(case(mode, &format!("{tag}-{mode}"), &body));
    }
    let replies = drive(&srv, &cases);
    for ((tag, _), (code, text)) in bad.iter().zip(&replies) {
        assert_eq!(*code, 554, "{tag}: {text}");
        assert!(text.starts_with("5.6.0"), "{tag}: {text}");
    }
    for (code, text) in &replies[bad.len()..] {
        assert_eq!(*code, 250, "ordinary bare line endings are normalised and accepted: {text}");
    }
    let got = wait_delivered(&srv, &sink, ordinary_bodies().len());
    assert_ordinary_relayed(&got, mode);
    assert_eq!(smuggling_counter(&srv), bad.len() as u64, "every refusal counted");
    let log = srv.log_tail(200_000);
    let logged = log.lines().filter(|l| l.contains("SMTP smuggling")).collect::<Vec<_>>();
    assert_eq!(logged.len(), bad.len(), "one log line per refusal:\n{log}");
    assert!(logged.iter().all(|l| l.contains("client=127.0.0.1:")), "{logged:?}");
}

#[test]
fn data_lookalikes_are_refused_and_ordinary_bare_lf_relays() {
    run_mode("data");
}

#[test]
fn bdat_lookalikes_are_refused_and_ordinary_bare_lf_relays() {
    run_mode("bdat");
}

/// Write a Pickup file atomically (temp name, then rename).
fn drop_pickup(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, bytes).expect("write pickup file");
    fs::rename(&tmp, dir.join(name)).expect("rename into Pickup");
}

#[test]
fn pickup_lookalikes_go_to_badmail_and_ordinary_files_relay() {
    let sink = Sink::start();
    let srv = relay_to(&sink);
    let pickup = srv.mailroot.join("Pickup");
    let badmail = srv.mailroot.join("Badmail");
    let envelope = "x-sender: app@client.test\nx-receiver: rcpt@remote.test\n";
    let mut bad_names = Vec::new();
    for (i, seq) in LOOKALIKES.iter().enumerate() {
        let name = format!("smuggle{i}.eml");
        let file = [envelope.as_bytes(), b"Subject: p\n\nhello", seq, SMUGGLED].concat();
        drop_pickup(&pickup, &name, &file);
        bad_names.push((name, file));
    }
    let good = b"x-sender: app@client.test\nx-receiver: rcpt@remote.test\nSubject: unix\n\n\
        written on Unix\n.leading dot\nend\n";
    drop_pickup(&pickup, "unix.eml", good);
    for (name, file) in &bad_names {
        let (bad, bdr) = (badmail.join(format!("{name}.BAD")), badmail.join(format!("{name}.BDR")));
        let moved = wait_until(WAIT, STEP, || {
            (bad.exists() && bdr.exists() && !pickup.join(name).exists()).then_some(())
        });
        assert!(moved.is_some(), "{name} not in Badmail\n{}", srv.log_tail(4000));
        assert_eq!(&fs::read(&bad).expect(".BAD"), file, "{name}: kept as it was");
        let reason = fs::read_to_string(&bdr).expect(".BDR");
        assert!(reason.contains("end-of-data look-alike"), "{name}: {reason}");
    }
    let got = wait_delivered(&srv, &sink, 1);
    assert_eq!(got.len(), 1, "only the ordinary file reaches the sink");
    let (_, body) = split_received(&got[0].1);
    assert_eq!(
        String::from_utf8_lossy(body),
        "Subject: unix\r\n\r\nwritten on Unix\r\n.leading dot\r\nend\r\n"
    );
    assert_clean(&got[0].1);
}
