//! Scale-out: two mailroot nodes (the real binary, each with its own Mailroot folder, port,
//! admin port and token) behind a real HAProxy in TCP mode (`balance roundrobin`,
//! `send-proxy-v2`, `option smtpchk` health checks, which arrive as PROXY v2 `LOCAL`), both
//! relaying to one sink (`tests/common_sink`). Python's `smtplib` (`tests/py/lb_send.py`)
//! sends from 127.0.0.3, one connection per message; HAProxy reaches the nodes from
//! 127.0.0.1, the only trusted balancer, and `[relay] allow` holds only 127.0.0.3, so a
//! relayed message at all proves the client address crossed the balancer.
//!
//! 1. 20 messages: both nodes take mail (the recipe's aggregate view,
//!    `deploy/metrics_sum.py`, reads both nodes' `/metrics`; each node's `Received:` names
//!    127.0.0.3).
//! 2. 40 more, and after the first few `mailroot drain` of node A: A answers `421` to new
//!    connections, HAProxy's check marks it down, the sender retries a `421` as an MTA
//!    would, node A exits 0 once its queue is empty; every message that got 250 reaches the
//!    sink exactly once (by Message-ID), and everything sent after A stopped went to B.
//!
//! A second test drives the recipe script, `deploy/scaleout.sh`, as an operator would.
//!
//! Skipped, with the reason, when `haproxy` is not installed. Loopback only; bounded: 60
//! messages, at most 50 tries each, every wait has a limit.

mod common;
#[path = "common_sink/mod.rs"]
mod common_sink;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use common_sink::Sink;

/// The client's address as HAProxy sees it (never HAProxy's own 127.0.0.1).
const CLIENT: &str = "127.0.0.3";

/// One node: a `proxy_protocol` site `lb` on its own port beside the default site (which
/// only serves the harness's readiness probe), relaying to the sink; drain needs its token.
fn node(lb_port: u16, sink: &Sink, token: &str) -> Server {
    Server::start(Conf {
        relay_allow: vec![format!("{CLIENT}/32")],
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"\n", sink.port()),
        extra: format!(
            "\n[[site]]\nname = \"lb\"\nlisten = [\"127.0.0.1:{lb_port}\"]\n\
             proxy_protocol = true\nproxy_trusted = [\"127.0.0.1/32\"]\n"
        ),
        admin_extra: format!("token = \"{token}\"\n"),
        ..Conf::default()
    })
}

/// HAProxy in front of the two `lb` listeners. No `on-marked-down shutdown-sessions`:
/// a drained node finishes its open sessions, and cutting one after its 250 was written
/// would make the sender retry a message already queued (a duplicate).
fn balancer_cfg(front: u16, a: u16, b: u16) -> String {
    format!(
        "global\n    maxconn 200\n\
         log stderr format raw local0 info\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 2s\n    timeout client 30s\n    \
         timeout server 30s\n    timeout check 2s\n    retries 3\n    option redispatch\n\
         frontend smtp\n    bind 127.0.0.1:{front}\n    default_backend nodes\n\
         backend nodes\n    balance roundrobin\n    option smtpchk EHLO haproxy.check\n    \
         default-server send-proxy-v2 check inter 200ms fall 1 rise 2\n    \
         server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b}\n"
    )
}

/// One line of `lb_send.py`.
#[derive(Debug)]
struct Sent {
    i: u64,
    code: u64,
    attempts: u64,
    line: String,
}

/// Run `lb_send.py` for messages `first..first+count`; `on_line` sees each result as it
/// arrives (the script prints one JSON line per message).
fn send_through(
    front: u16,
    first: u64,
    count: u64,
    delay: &str,
    mut on_line: impl FnMut(&Sent),
) -> Vec<Sent> {
    let mut child = Command::new("python3")
        .arg(py_script("lb_send.py"))
        .args(["--port", &front.to_string(), "--source", CLIENT])
        .args(["--first", &first.to_string(), "--count", &count.to_string()])
        .args(["--delay", delay])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3 lb_send.py");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut sent = Vec::new();
    for line in out.lines() {
        let line = line.expect("read lb_send.py");
        let v: serde_json::Value = serde_json::from_str(&line).expect("lb_send.py JSON");
        let s = Sent {
            i: v["i"].as_u64().expect("i"),
            code: v["code"].as_u64().expect("code"),
            attempts: v["attempts"].as_u64().expect("attempts"),
            line,
        };
        on_line(&s);
        sent.push(s);
    }
    assert!(child.wait().expect("wait lb_send.py").success(), "lb_send.py failed");
    sent
}

/// Message-ID number -> the `Received:` fields of every copy the sink got.
fn sink_copies(sink: &Sink) -> BTreeMap<u64, Vec<String>> {
    let mut m: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in sink.received() {
        let text = String::from_utf8_lossy(&r.data).into_owned();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: <scale-"))
            .and_then(|rest| rest.split('@').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no scale Message-ID in {text}"));
        // The `Received:` field with its folded continuation lines.
        let mut received = String::new();
        for l in text.lines().take_while(|l| !l.is_empty()) {
            if l.starts_with("Received:") || (!received.is_empty() && l.starts_with([' ', '\t'])) {
                received.push_str(l);
                received.push('\n');
            } else if !received.is_empty() {
                break;
            }
        }
        m.entry(id).or_default().push(received);
    }
    m
}

/// The `received` column of one node in `metrics_sum.py --json` output.
fn received_of(report: &serde_json::Value, node: &str) -> u64 {
    let row = report["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["node"] == node))
        .unwrap_or_else(|| panic!("no node {node} in {report}"));
    row["received"].as_u64().unwrap_or_else(|| panic!("node {node} down: {report}"))
}

#[test]
fn two_nodes_behind_haproxy_one_drained_nothing_lost() {
    if let Some(reason) = haproxy_missing() {
        eprintln!("{reason}");
        return;
    }
    let sink = Sink::start("127.0.0.1");
    let (lb_a, lb_b, front) = (free_port(), free_port(), free_port());
    let mut a = node(lb_a, &sink, "token-a");
    let b = node(lb_b, &sink, "token-b");
    let _haproxy = start_haproxy(a.dir.path(), &balancer_cfg(front, lb_a, lb_b), &[front]);
    // Both servers up in HAProxy's view (rise 2 × 200 ms) before the first message.
    std::thread::sleep(Duration::from_millis(800));

    // 1. Round robin: both nodes take mail; the aggregate view sums them.
    let first = send_through(front, 0, 20, "0", |_| {});
    for s in &first {
        assert_eq!(s.code, 250, "{}", s.line);
    }
    let targets = [
        format!("a=http://127.0.0.1:{}/metrics", a.admin_port),
        format!("b=http://127.0.0.1:{}/metrics", b.admin_port),
    ];
    let mut args = vec!["--json".to_owned()];
    args.extend(targets.iter().cloned());
    let out = Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/metrics_sum.py"))
        .args(&args)
        .output()
        .expect("run deploy/metrics_sum.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let (ra, rb) = (received_of(&report, "a"), received_of(&report, "b"));
    assert!(ra > 0 && rb > 0, "both nodes take mail: {report}");
    assert_eq!(ra + rb, 20, "{report}");
    assert_eq!(report["total"]["received"], 20, "{report}");

    // 2. Drain node A while 40 more messages go through the balancer. The sink now holds
    // each reply to the final dot, so A still has mail queued when its drain starts: the
    // drain waits for it while A answers new connections 421 until HAProxy marks it down.
    sink.set_data_delay(Duration::from_millis(500));
    let mut drain: Option<std::thread::JoinHandle<_>> = None;
    // The first message whose result came after the drain had answered (A stopping).
    let mut sent_after_drained = None;
    let config_a = a.config_path.clone();
    let second = send_through(front, 20, 40, "0.05", |s| {
        if s.i == 24 && drain.is_none() {
            let cfg = config_a.clone();
            drain = Some(std::thread::spawn(move || {
                mailroot_with_config(&["drain", "--timeout", "60"], &cfg)
            }));
        }
        if sent_after_drained.is_none() && drain.as_ref().is_some_and(|d| d.is_finished()) {
            sent_after_drained = Some(s.i + 1);
        }
    });
    let drain = drain.expect("drain started").join().expect("drain thread");
    assert_success(&drain, "mailroot drain of node A");
    let status = a.wait_exit(Duration::from_secs(30)).expect("node A exits after its drain");
    assert!(status.success(), "node A exit status {status}");
    a.wait_event("service.stop", |e| e["reason"] == "drained");

    for s in &second {
        assert_eq!(s.code, 250, "every message is taken in the end: {}", s.line);
    }
    let retried: u64 = second.iter().map(|s| s.attempts - 1).sum();
    eprintln!("retries during the drain (421 or a refused connect): {retried}");
    for s in second.iter().filter(|s| s.attempts > 1) {
        eprintln!("retried: {}", s.line);
    }
    // What HAProxy saw: A goes down on its check (421 while paused) or on a refused connect.
    let haproxy_log = std::fs::read_to_string(a.dir.path().join("haproxy.log")).unwrap_or_default();
    for l in haproxy_log.lines().filter(|l| l.starts_with("Server ")) {
        eprintln!("haproxy: {l}");
    }

    // Every message reaches the sink exactly once; each copy names the real client.
    let copies = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let m = sink_copies(&sink);
        (m.values().map(Vec::len).sum::<usize>() >= 60).then_some(m)
    })
    .unwrap_or_else(|| panic!("sink got {:?}", sink_copies(&sink).keys().collect::<Vec<_>>()));
    assert_eq!(copies.len(), 60, "{:?}", copies.keys().collect::<Vec<_>>());
    let (mut via_a, mut via_b) = (Vec::new(), Vec::new());
    for (id, recv) in &copies {
        assert_eq!(recv.len(), 1, "message {id} delivered {} times: {recv:?}", recv.len());
        let r = &recv[0];
        assert!(r.contains(&format!("[{CLIENT}]")), "message {id}: {r}");
        if r.contains(&a.hostname) {
            via_a.push(*id);
        } else {
            assert!(r.contains(&b.hostname), "message {id} by neither node: {r}");
            via_b.push(*id);
        }
    }
    assert!(via_a.iter().any(|&i| i < 20) && via_b.iter().any(|&i| i < 20), "{via_a:?}");
    // Once A's drain had answered, B took everything (the others keep accepting).
    eprintln!("via A: {via_a:?}; drained before message {sent_after_drained:?}");
    if let Some(from) = sent_after_drained {
        assert!(via_a.iter().all(|&i| i < from), "A took mail after its drain: {via_a:?}");
        assert!((from..60).all(|i| via_b.contains(&i)), "{via_b:?}");
    }

    // Node B is still serving directly after A left.
    let after = send_through(front, 60, 1, "0", |_| {});
    assert_eq!(after[0].code, 250, "{}", after[0].line);
    assert_eq!(after[0].attempts, 1, "A is out of the rotation: {}", after[0].line);
}

/// A `BASE_PORT` for `deploy/scaleout.sh` whose ports (HAProxy, two nodes, their admin
/// listeners, the sink, the stats page) all bind now, below the ephemeral range that
/// `free_port` hands out.
fn recipe_base() -> u16 {
    let mut rng = Rng(u64::from(std::process::id()) | 1);
    for _ in 0..200 {
        let base = 15_000 + u16::try_from(rng.below(10_000)).expect("fits");
        let ports = [0, 1, 2, 98, 99, 101, 102].map(|o| base + o);
        if ports.iter().all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range for the recipe");
}

/// `deploy/scaleout.sh CMD...` with the test's binary, folder and ports; (success, output).
fn recipe(dir: &std::path::Path, base: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/scaleout.sh"))
        .args(args)
        .env("MAILROOT_BIN", BIN)
        .env("SCALEOUT_DIR", dir)
        .env("BASE_PORT", base.to_string())
        .env("SINK", "aiosmtpd")
        .env("TIMEOUT", "60")
        .output()
        .expect("run deploy/scaleout.sh");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Stops whatever the recipe started, even when the test fails half-way.
struct RecipeDown<'a>(&'a std::path::Path, u16);

impl Drop for RecipeDown<'_> {
    fn drop(&mut self) {
        let _ = recipe(self.0, self.1, &["down"]);
    }
}

/// The recipe script as an operator runs it: `up 2`, mail through its HAProxy, `status`
/// (the aggregate view), `drain 1` (runtime API + `mailroot drain`: exit status 0), `down`.
#[test]
fn the_recipe_script_runs_two_nodes_and_drains_one() {
    if let Some(reason) = haproxy_missing() {
        eprintln!("{reason}");
        return;
    }
    let tmp = tempfile::Builder::new().prefix("mailroot-recipe-").tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let base = recipe_base();
    let _down = RecipeDown(&dir, base);
    let (ok, out) = recipe(&dir, base, &["up", "2"]);
    assert!(ok, "up: {out}");
    assert!(out.contains(&format!("haproxy: smtp 127.0.0.1:{base}")), "{out}");
    let yml = std::fs::read_to_string(dir.join("prometheus.yml")).expect("prometheus.yml");
    assert!(yml.contains(&format!("\"127.0.0.1:{}\"", base + 102)), "{yml}");
    assert!(yml.contains("node: \"node2\""), "{yml}");

    // HAProxy starts with both nodes UP; ten messages through it, a retrying sender.
    let sent = send_through(base, 100, 10, "0", |_| {});
    assert!(sent.iter().all(|s| s.code == 250), "{sent:?}");
    let status = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let (ok, out) = recipe(&dir, base, &["status"]);
        let total = out.lines().find(|l| l.starts_with("total"))?.split_whitespace().nth(2)?;
        (ok && total == "10").then_some(out) // column 2: sent (relayed to the sink)
    })
    .unwrap_or_else(|| {
        panic!("status never showed 10 sent: {}", recipe(&dir, base, &["status"]).1)
    });
    assert!(status.contains("node1") && status.contains("node2"), "{status}");

    eprintln!("{status}");
    let (ok, out) = recipe(&dir, base, &["drain", "1"]);
    eprintln!("{out}");
    assert!(ok, "drain: {out}");
    assert!(out.contains("state drain: ok"), "HAProxy's runtime API: {out}");
    assert!(out.contains("exit status 0"), "{out}");
    // Node 2 alone takes the next message.
    let after = send_through(base, 110, 1, "0", |_| {});
    assert_eq!(after[0].code, 250, "{}", after[0].line);
    let (ok, out) = recipe(&dir, base, &["down"]);
    assert!(ok, "down: {out}");
}
