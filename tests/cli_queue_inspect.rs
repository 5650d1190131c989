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
