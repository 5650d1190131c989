//! Performance counters of the real binary: drive an exact number of messages, recipients
//! (local and relayed), size refusals and relay refusals through the server, then read
//! `GET /metrics` from the admin listener and check every number; the whole body must
//! parse with a strict Prometheus text-format (0.0.4) parser written here.
//! Also `GET /api/stats` (JSON), `GET /api/queue` (the `queue list --json` listing) and
//! `mailroot stats --json`. Every wait is bounded; nothing asserts on speed.

mod common;
mod common_sink;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Conf, Raw, Server, assert_success, dot_stuff, mailroot_with_config, wait_until};
use common_sink::Sink;

/// Messages accepted.
const N: usize = 4;
/// Local recipients per accepted message.
const LOCAL: usize = 2;
/// Relayed recipients per accepted message.
const REMOTE: usize = 1;
/// Transactions refused for size (one at MAIL SIZE=, one during DATA).
const K: usize = 2;
/// RCPTs refused by the relay policy.
const J: usize = 3;
/// `[limits] max_message_size` of the server under test.
const LIMIT: usize = 10_000;

/// A parsed exposition: series (`name{labels}` as written) -> value, and name -> type.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

/// Strict parser of the text format: every line is `# HELP`, `# TYPE` or a sample of a
/// family whose TYPE came first; labels are `name="escaped value"`; values are floats; no
/// series twice; HELP/TYPE at most once per family; body ends with a newline.
fn parse_exposition(body: &str) -> Result<Exposition, String> {
    let mut e = Exposition::default();
    let mut helped = std::collections::HashSet::new();
    if !body.ends_with('\n') {
        return Err("body does not end with a newline".into());
    }
    for (i, line) in body.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').ok_or_else(|| err("HELP without text"))?;
            if !valid_name(name) || !helped.insert(name.to_string()) {
                return Err(err("bad or repeated HELP"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').ok_or_else(|| err("TYPE without type"))?;
            if !valid_name(name)
                || !["counter", "gauge", "summary", "histogram", "untyped"].contains(&ty)
            {
                return Err(err("bad TYPE"));
            }
            if e.types.insert(name.to_string(), ty.to_string()).is_some() {
                return Err(err("repeated TYPE"));
            }
        } else if line.starts_with('#') || line.is_empty() {
            return Err(err("unexpected comment or empty line"));
        } else {
            let (series, value) = line.rsplit_once(' ').ok_or_else(|| err("no value"))?;
            let value: f64 = value.parse().map_err(|_| err("value is not a float"))?;
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, Some(l.strip_suffix('}').ok_or_else(|| err("no }"))?)),
                None => (series, None),
            };
            if !valid_name(name) {
                return Err(err("bad metric name"));
            }
            if let Some(labels) = labels {
                parse_labels(labels).map_err(|m| err(&m))?;
            }
            let family = [
                name,
                name.strip_suffix("_sum").unwrap_or(name),
                name.strip_suffix("_count").unwrap_or(name),
            ]
            .into_iter()
            .find(|f| e.types.contains_key(*f))
            .ok_or_else(|| err("sample before its TYPE"))?;
            if e.types[family] != "summary" && family != name {
                return Err(err("_sum/_count outside a summary"));
            }
            if e.samples.insert(series.to_string(), value).is_some() {
                return Err(err("series repeated"));
            }
        }
    }
    Ok(e)
}

/// `a="x",b="y\"z"`: names valid, values quoted with only `\\`, `\"`, `\n` escapes.
fn parse_labels(s: &str) -> Result<(), String> {
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !valid_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\' | '"' | 'n')) => {}
                    _ => return Err("bad escape".into()),
                },
                Some((j, '"')) => break j,
                Some(_) => {}
                None => return Err("unterminated label value".into()),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(())
}

#[test]
fn parser_rejects_bad_text() {
    let cases: &[(&str, bool)] = &[
        ("# TYPE a counter\na 1\n", true),
        ("# TYPE a counter\na{x=\"1\"} 1\n", true),
        ("a 1\n", false),                                 // no TYPE
        ("# TYPE a counter\na 1", false),                 // no final newline
        ("# TYPE a counter\na one\n", false),             // value
        ("# TYPE a counter\na{x=1} 1\n", false),          // unquoted label
        ("# TYPE a counter\na 1\na 2\n", false),          // repeated series
        ("# TYPE a summary\na_sum 1\na_count 2\n", true), // summary parts
        ("# TYPE a counter\na_sum 1\n", false),           // _sum of a counter
        ("# TYPE 1a counter\n", false),                   // name
    ];
    for (text, ok) in cases {
        assert_eq!(parse_exposition(text).is_ok(), *ok, "{text:?}");
    }
}

fn body(len: usize) -> Vec<u8> {
    let mut b = b"Subject: stats\r\n\r\n".to_vec();
    while b.len() < len {
        b.extend_from_slice(&[b'z'; 70]);
        b.extend_from_slice(b"\r\n");
    }
    b
}

#[test]
fn counters_match_the_traffic() {
    let mut conf = Conf::default().limit("max_message_size", &LIMIT.to_string());
    conf.relay_allow = vec!["127.0.0.1/32".into()]; // 127.0.0.2 may not relay
    let srv = Server::start(conf);
    let mut sent_bytes = 0usize;

    // N accepted messages, LOCAL + REMOTE recipients each, on one connection.
    let mut c = Raw::connect(srv.addr()).unwrap();
    c.hello();
    for i in 0..N {
        let to = ["a@localhost", "b@localhost", "x@remote.example"];
        assert_eq!(to.len(), LOCAL + REMOTE);
        let r = c.send_message(&format!("s{i}@client.test"), &to, &dot_stuff(&body(500)));
        assert_eq!(r.code, 250, "message {i}: {r}");
    }
    // K size refusals: MAIL SIZE= over the limit, then content over the limit.
    let r = c.cmd(&format!("MAIL FROM:<big@client.test> SIZE={}", LIMIT + 1));
    assert_eq!(r.code, 552, "{r}");
    let r = c.send_message("big@client.test", &["a@localhost"], &dot_stuff(&body(LIMIT + 500)));
    assert_eq!(r.code, 552, "{r}");
    assert_eq!(c.cmd("QUIT").code, 221);
    sent_bytes += 1; // at least something was sent on this connection

    // J relay refusals from a client that may not relay.
    let mut d = Raw::connect_from(Ipv4Addr::new(127, 0, 0, 2), srv.addr()).unwrap();
    d.hello();
    assert_eq!(d.cmd("MAIL FROM:<r@client.test>").code, 250);
    for j in 0..J {
        let r = d.cmd(&format!("RCPT TO:<r{j}@remote.example>"));
        assert_eq!(r.code, 554, "{r}");
    }
    assert_eq!(d.cmd("QUIT").code, 221);
    assert!(c.wait_closed(Duration::from_secs(5)) && d.wait_closed(Duration::from_secs(5)));

    let message_bytes: u64 = srv.scan().iter().map(|m| m.message_bytes).sum();
    let site = "{site=\"default\"}";
    let want: Vec<(String, f64)> = vec![
        (format!("mailroot_messages_received_total{site}"), N as f64),
        ("mailroot_messages_accepted_total".into(), N as f64),
        ("mailroot_recipients_local_total".into(), (N * LOCAL) as f64),
        ("mailroot_recipients_remote_total".into(), (N * REMOTE) as f64),
        (format!("mailroot_messages_refused_for_size_total{site}"), K as f64),
        (format!("mailroot_recipients_refused_total{site}"), J as f64),
        (format!("mailroot_message_received_bytes_total{site}"), message_bytes as f64),
        (format!("mailroot_inbound_connections{site}"), 0.0),
        ("mailroot_commit_latency_seconds_count".into(), N as f64),
        ("mailroot_messages_sent_total".into(), 0.0),
        ("mailroot_ndrs_generated_total".into(), 0.0),
    ];
    // The connection gauge drops when the server has seen both closes: wait for it.
    let metrics = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let (status, head, body) = srv.admin_get("/metrics");
        assert_eq!(status, 200, "{head}");
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        let e = parse_exposition(&body).unwrap_or_else(|m| panic!("{m}\n{body}"));
        want.iter().all(|(k, v)| e.samples.get(k) == Some(v)).then_some(e)
    });
    let Some(e) = metrics else {
        let (_, _, body) = srv.admin_get("/metrics");
        panic!("counters never matched {want:?}\n{body}");
    };
    // Connections: ours plus the harness's readiness probes.
    assert!(e.samples[&format!("mailroot_inbound_connections_total{site}")] >= 2.0);
    assert!(e.samples[&format!("mailroot_received_bytes_total{site}")] >= sent_bytes as f64);
    assert!(e.samples[&format!("mailroot_sent_bytes_total{site}")] > 0.0);
    assert_eq!(e.types["mailroot_commit_latency_seconds"], "summary");
    assert!(message_bytes > (N * 500) as u64);

    // /api/stats: same numbers, with the derived IIS ratios.
    let (status, _, json) = srv.admin_get("/api/stats");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let find = |iis: &str| {
        v["counters"].as_array().unwrap().iter().find(|c| c["iis"] == iis).unwrap()["value"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(find("Messages Received Total"), N as u64);
    assert_eq!(find("Messages Refused for Size"), K as u64);
    let derived = |iis: &str| {
        v["derived"].as_array().unwrap().iter().find(|c| c["iis"] == iis).unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    let pct_local = 100.0 * LOCAL as f64 / (LOCAL + REMOTE) as f64;
    assert!((derived("% Recipients Local") - pct_local).abs() < 1e-9);
    assert!((derived("Avg Recipients per Message") - (LOCAL + REMOTE) as f64).abs() < 1e-9);

    // /api/queue: the `queue list --json` listing of the N held messages.
    let (status, _, json) = srv.admin_get("/api/queue");
    assert_eq!(status, 200);
    let q: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(q.as_array().unwrap().len(), N, "{q}");
    let (status, _, _) = srv.admin_get("/nope");
    assert_eq!(status, 404);

    // `mailroot stats --json` reads the same counters through the admin listener.
    let out = mailroot_with_config(&["stats", "--json"], &srv.config_path);
    assert_success(&out, "stats --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["counters"][0]["value"], N as u64);
    let out = mailroot_with_config(&["stats"], &srv.config_path);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.lines().next().unwrap_or("").contains("/s"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Messages Received Total") && l.contains(&N.to_string())),
        "{table}"
    );
    // --watch: two reads one second apart, the second with per-second rates; bounded.
    let out = mailroot_with_config(&["stats", "--watch", "1", "--count", "2"], &srv.config_path);
    assert_success(&out, "stats --watch");
    let text = String::from_utf8_lossy(&out.stdout);
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with("Counter ")).collect();
    assert_eq!(heads.len(), 2, "{text}");
    assert!(!heads[0].contains("/s") && heads[1].contains("/s"), "{text}");
}

/// `mailroot stats` with the admin listener disabled is a usage error naming the key.
#[test]
fn stats_without_admin_listener_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "[admin]\nlisten = \"\"\n").unwrap();
    let out = mailroot_with_config(&["stats"], &cfg);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.listen"));
    // A non-loopback listener without a token does not even parse.
    std::fs::write(&cfg, "[admin]\nlisten = \"0.0.0.0:8025\"\n").unwrap();
    let out = mailroot_with_config(&["check-config"], &cfg);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.listen"));
}

/// Delivery counters: M messages relayed to a smart host (a sink), each also for a local
/// recipient (a Drop file): sent, drops, delivered, outbound connections, attempt and
/// queue-time histograms, and the queue gauges back at zero.
#[test]
fn delivery_counters_match() {
    const M: usize = 3;
    let sink = Sink::start("127.0.0.1");
    let conf = Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port()),
        extra: "\n[delivery]\nretry = [\"1s\"]\nconnect_timeout = \"2s\"\n\
                [dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n"
            .into(),
        ..Conf::default()
    };
    let srv = Server::start(conf);
    let mut c = Raw::connect(srv.addr()).unwrap();
    c.hello();
    for i in 0..M {
        let r = c.send_message(
            &format!("d{i}@sender.test"),
            &["bob@dest.test", "carol@localhost"],
            &dot_stuff(&body(300)),
        );
        assert_eq!(r.code, 250, "{r}");
    }
    let _ = c.cmd("QUIT");
    let want: Vec<(&str, f64)> = vec![
        ("mailroot_messages_sent_total", M as f64),
        ("mailroot_directory_drops_total", M as f64),
        ("mailroot_messages_delivered_total", M as f64),
        ("mailroot_delivery_attempt_seconds_count", M as f64),
        ("mailroot_queue_time_seconds_count", (2 * M) as f64),
        ("mailroot_outbound_connections", 0.0),
        ("mailroot_outbound_connection_errors_total", 0.0),
        ("mailroot_queue_local_messages", 0.0),
        ("mailroot_queue_remote_messages", 0.0),
        ("mailroot_queue_retry_messages", 0.0),
        ("mailroot_message_delivery_retries_total", 0.0),
        ("mailroot_recipients_local_total", M as f64),
        ("mailroot_recipients_remote_total", M as f64),
    ];
    let got = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let (_, _, body) = srv.admin_get("/metrics");
        let e = parse_exposition(&body).unwrap_or_else(|m| panic!("{m}\n{body}"));
        want.iter().all(|(k, v)| e.samples.get(*k) == Some(v)).then_some(e)
    });
    let Some(e) = got else {
        let (_, _, body) = srv.admin_get("/metrics");
        panic!("delivery counters never matched {want:?}\n{body}\n{}", srv.log_tail(4000));
    };
    assert!(e.samples["mailroot_outbound_connections_total"] >= 1.0);
    assert!(e.samples["mailroot_message_sent_bytes_total"] >= (M * 300) as f64);
    assert_eq!(sink.received().len(), M);
}
