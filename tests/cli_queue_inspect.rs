//! Queue inspection against a running server whose only route is dead: `mailroot queue show`
//! (envelope, DSN parameters, per-recipient delivery state, headers), the `--domain` /
//! `--state` filters of `queue list`, and `queue shape` (CLI and `GET /api/queue/shape`).
//!
//! The messages stay queued because the smart host is a loopback port nobody listens on:
//! the first attempt is refused, the recipients are deferred for an hour (so the state file
//! holds attempts, next retry and the last error), and nothing leaves the machine.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// A server relaying everything to a dead smart host, retrying only after an hour.
fn dead_route_server() -> Server {
    let dead = free_port();
    Server::start(Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{dead}\""),
        extra: "\n[delivery]\nretry = [\"1h\"]\nconnect_timeout = \"2s\"\n\
                [dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n"
            .into(),
        ..Conf::default()
    })
}

/// One message over `Raw` with the given MAIL and RCPT parameters; returns its queue id.
fn send(srv: &Server, mail: &str, rcpts: &[&str], subject: &str) -> String {
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    assert_eq!(c.cmd(&format!("MAIL FROM:{mail}")).code, 250);
    for r in rcpts {
        assert_eq!(c.cmd(&format!("RCPT TO:{r}")).code, 250, "{r}");
    }
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(format!("Subject: {subject}\r\nX-Folded: one\r\n two\r\n\r\nbody\r\n.\r\n").as_bytes());
    let r = c.read_reply().expect("reply to DATA");
    assert_eq!(r.code, 250, "{r}");
    let _ = c.cmd("QUIT");
    r.text().split_whitespace().last().unwrap_or_default().to_owned()
}

/// `mailroot queue ARGS --config FILE`; panics unless it exits 0; stdout as text.
fn queue(srv: &Server, args: &[&str]) -> String {
    let mut all = vec!["queue"];
    all.extend_from_slice(args);
    let out = mailroot_with_config(&all, &srv.config_path);
    assert_success(&out, &all.join(" "));
    text(&out.stdout)
}

/// Wait until every pending recipient of the queue was deferred once (state files written).
fn wait_deferred(srv: &Server, n_rcpts: usize) {
    let ok = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let list = srv.queue_list();
        let deferred = list
            .iter()
            .flat_map(|m| m["recipients"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["attempts"].as_u64().unwrap_or(0) >= 1)
            .count();
        (deferred == n_rcpts).then_some(())
    });
    assert!(ok.is_some(), "not deferred: {:?}\n{}", srv.queue_list(), srv.log_tail(4000));
}

#[test]
fn show_list_filters_and_shape() {
    let srv = dead_route_server();
    let a = send(
        &srv,
        "<alice@sender.test> RET=HDRS ENVID=env-1",
        &["<b@dead.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@dead.example", "<c@Dead.Example>"],
        "first",
    );
    let c = send(&srv, "<>", &["<e@other.example>"], "third");
    wait_deferred(&srv, 3);
    // Sent to a destination already known down: the scheduler may hold it back until the
    // destination's retry time without an attempt of its own (so no state file).
    let b = send(&srv, "<alice@sender.test>", &["<d@dead.example>"], "second");

    // show: envelope, DSN parameters, per-recipient state, headers.
    let v: Value = serde_json::from_str(&queue(&srv, &["show", &a, "--json"]))
        .unwrap_or_else(|e| panic!("show --json: {e}"));
    assert_eq!(v["id"], a.as_str());
    assert_eq!(v["sender"], "alice@sender.test");
    assert_eq!(v["state"], "queued");
    assert_eq!(v["site"], "default");
    assert!(v["client_addr"].as_str().unwrap_or("").starts_with("127.0.0.1:"), "{v}");
    assert_eq!(v["helo"], "client.test");
    assert_eq!(v["dsn"]["envid"], "env-1");
    assert_eq!(v["dsn"]["ret"], "HDRS");
    let r0 = &v["recipients"][0];
    assert_eq!(r0["address"], "b@dead.example");
    assert_eq!(r0["status"], "pending");
    assert_eq!(r0["notify"], serde_json::json!(["FAILURE", "DELAY"]));
    assert_eq!(r0["orcpt"], "rfc822;b@dead.example");
    assert_eq!(r0["attempts"], 1);
    assert!(r0["next_retry"].as_str().is_some_and(|s| s.ends_with('Z')), "{r0}");
    assert!(r0["last_error"].as_str().is_some_and(|s| !s.is_empty()), "{r0}");
    assert!(v["recipients"][1].get("notify").is_none(), "{v}");
    let headers: Vec<(String, String)> = v["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("headers: {v}"))
        .iter()
        .map(|h| {
            (h["name"].as_str().unwrap_or("").into(), h["value"].as_str().unwrap_or("").into())
        })
        .collect();
    assert_eq!(headers[0].0, "Received", "our trace field first: {headers:?}");
    assert!(headers.contains(&("Subject".into(), "first".into())), "{headers:?}");
    assert!(headers.contains(&("X-Folded".into(), "one two".into())), "{headers:?}");

    let txt = queue(&srv, &["show", &a]);
    assert!(txt.contains("dsn:         envid=env-1 ret=HDRS body=7BIT"), "{txt}");
    assert!(txt.contains("b@dead.example  pending  notify=FAILURE,DELAY"), "{txt}");
    assert!(txt.contains("    last error: "), "{txt}");
    assert!(txt.contains("  Subject: first"), "{txt}");

    // Unknown id: exit 1 with a message; not an id: exit 2.
    let out = mailroot_with_config(&["queue", "show", "00000000FFFFFFFF"], &srv.config_path);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not in the queue"), "{}", text(&out.stderr));
    let out = mailroot_with_config(&["queue", "show", "nope"], &srv.config_path);
    assert_eq!(out.status.code(), Some(2));

    // list filters.
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        parse_queue_json(queue(&srv, &all).as_bytes())
            .iter()
            .map(|m| m["id"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(ids(&[]), [a.clone(), c.clone(), b.clone()]);
    assert_eq!(ids(&["--domain", "DEAD.example"]), [a.clone(), b.clone()]);
    assert_eq!(ids(&["--domain", "other.example"]), vec![c.clone()]);
    let b_tried = srv
        .queue_list()
        .iter()
        .any(|m| m["id"] == b.as_str() && m["recipients"][0]["attempts"].as_u64().unwrap_or(0) > 0);
    let mut deferred = vec![a.clone(), c.clone()];
    if b_tried {
        deferred.push(b.clone());
    }
    assert_eq!(ids(&["--state", "deferred"]), deferred);
    assert_eq!(ids(&["--state", "queued"]), [a.clone(), c.clone(), b.clone()]);
    assert_eq!(ids(&["--state", "completed"]), Vec::<String>::new());
    assert_eq!(ids(&["--domain", "nowhere.example", "--state", "queued"]), Vec::<String>::new());
    let table = queue(&srv, &["list", "--domain", "other.example"]);
    assert!(table.contains(&c) && !table.contains(&a), "{table}");
    let out = mailroot_with_config(&["queue", "list", "--state", "frozen"], &srv.config_path);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("frozen"), "{}", text(&out.stderr));

    // shape: 3 recipients for dead.example, 1 for other.example, all under 5 minutes old.
    let v: Value = serde_json::from_str(&queue(&srv, &["shape", "--json"]))
        .unwrap_or_else(|e| panic!("shape --json: {e}"));
    assert_eq!(v["total"]["total"], 4, "{v}");
    assert_eq!(v["total"]["counts"], serde_json::json!([4, 0, 0, 0, 0, 0, 0]));
    assert_eq!(v["domains"][0]["domain"], "dead.example");
    assert_eq!(v["domains"][0]["counts"][0], 3);
    assert_eq!(v["domains"][1]["domain"], "other.example");
    assert_eq!(v["domains"][1]["total"], 1);
    let table = queue(&srv, &["shape"]);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0][..3], ["DOMAIN", "TOTAL", "0-5"], "{table}");
    assert_eq!(lines[0].last(), Some(&"160+"), "{table}");
    assert_eq!(lines[1][..3], ["TOTAL", "4", "4"], "{table}");
    assert_eq!(lines[2][..3], ["dead.example", "3", "3"], "{table}");
    assert_eq!(lines[3][..3], ["other.example", "1", "1"], "{table}");

    // The admin API serves the same table.
    let (status, _, body) = srv.admin_get("/api/queue/shape");
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(api["total"], v["total"]);
    assert_eq!(api["domains"], v["domains"]);
}

/// `queue shape` over a spool written with known arrival times (the spool API, as
/// tests/cli_queue.rs does): the age buckets come from the arrival time.
#[test]
fn shape_buckets_by_age_of_known_contents() {
    use mailroot::spool::{Envelope, EnvelopeRecipient, RcptStatus, Spool, SpoolOptions};
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let config = root.join("mailroot.toml");
    let mailroot = root.join("mailroot");
    std::fs::write(&config, format!("mailroot = {:?}\n", mailroot.display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    const MIN: u64 = 60_000;
    let (spool, _) = Spool::open(&mailroot.join("Queue"), SpoolOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut writer = spool.writer(0, Box::new(|| {})).unwrap_or_else(|e| panic!("{e}"));
    // (age in minutes, recipients)
    let msgs: [(u64, &[&str]); 4] = [
        (7, &["a@slow.example", "b@slow.example"]),
        (30, &["c@slow.example"]),
        (200, &["d@stuck.example", "e@slow.example"]),
        (1, &["f@fresh.example"]),
    ];
    let mut ids = Vec::new();
    for (age, rcpts) in msgs {
        let env = Envelope {
            reverse_path: "s@x.example".into(),
            recipients: rcpts
                .iter()
                .map(|r| EnvelopeRecipient { forward_path: (*r).into(), notify: 0, orcpt: None })
                .collect(),
            arrival_unix_ms: now_ms - age * MIN,
            site: "default".into(),
            ..Envelope::default()
        };
        let mut rec = writer.begin(&env).unwrap_or_else(|e| panic!("{e}"));
        writer.append(&mut rec, b"Subject: s\r\n\r\nx\r\n").unwrap_or_else(|e| panic!("{e}"));
        ids.push(writer.finish(rec).unwrap_or_else(|e| panic!("{e}")).id);
    }
    writer.wait_idle();
    // Delivered recipients are not queued any more: b@slow.example leaves the table.
    spool.cross_off(ids[0], 1, RcptStatus::Delivered).unwrap_or_else(|e| panic!("{e}"));
    drop(spool);

    let out = mailroot_with_config(&["queue", "shape", "--json"], &config);
    assert_success(&out, "queue shape --json");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["total"]["counts"], serde_json::json!([1, 1, 0, 1, 0, 0, 2]), "{v}");
    let rows: Vec<(String, Value)> = v["domains"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| (r["domain"].as_str().unwrap_or("").to_owned(), r["counts"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("slow.example".to_owned(), serde_json::json!([0, 1, 0, 1, 0, 0, 1])),
            ("fresh.example".to_owned(), serde_json::json!([1, 0, 0, 0, 0, 0, 0])),
            ("stuck.example".to_owned(), serde_json::json!([0, 0, 0, 0, 0, 0, 1])),
        ]
    );
}
