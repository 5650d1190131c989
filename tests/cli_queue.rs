//! `mailroot queue list` run as a real process over a spool written with the spool API,
//! and `mailroot queue delete|bounce|hold|release` against a running server (real
//! binary, a real SMTP sink as the next hop, Python's smtplib as the client).

mod common;
mod common_sink;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mailroot::spool::{Envelope, EnvelopeRecipient, RcptStatus, Spool, SpoolOptions};

use common::*;
use common_sink::Sink;

fn envelope(sender: &str, rcpts: &[&str], arrival_unix_ms: u64) -> Envelope {
    Envelope {
        reverse_path: sender.to_owned(),
        recipients: rcpts
            .iter()
            .map(|r| EnvelopeRecipient { forward_path: (*r).to_owned(), notify: 0, orcpt: None })
            .collect(),
        body: 0,
        smtputf8: false,
        ret: 0,
        envid: None,
        client_addr: "127.0.0.1".to_owned(),
        helo: "client.example".to_owned(),
        arrival_unix_ms,
        site: "default".to_owned(),
    }
}

/// Write a config file pointing at `root` and return its path as a string.
fn config_for(root: &Path) -> String {
    let path = root.join("mailroot.toml");
    let mailroot = root.join("mailroot");
    let text = format!("mailroot = {:?}\n", mailroot.to_str().unwrap_or_else(|| panic!("utf-8")));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path.to_str().unwrap_or_else(|| panic!("utf-8")).to_owned()
}

#[test]
fn lists_spooled_messages() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = config_for(tmp.path());

    // No Queue/ yet: an empty queue, not an error.
    let out = mailroot(&["queue", "list", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"Mail queue is empty\n");

    let queue = tmp.path().join("mailroot").join("Queue");
    let (spool, _) = Spool::open(&queue, SpoolOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut writer = spool.writer(0, Box::new(|| {})).unwrap_or_else(|e| panic!("{e}"));
    let mut ids = Vec::new();
    for (env, body) in [
        (envelope("alice@example.com", &["bob@example.net"], 1_700_000_000_123), "Hi\r\n"),
        (envelope("", &["x@a.example", "y@b.example"], 1_700_000_001_000), "Bounce\r\n"),
    ] {
        let mut rec = writer.begin(&env).unwrap_or_else(|e| panic!("{e}"));
        writer.append(&mut rec, body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        ids.push(writer.finish(rec).unwrap_or_else(|e| panic!("{e}")).id);
    }
    writer.wait_idle();
    spool.cross_off(ids[1], 0, RcptStatus::Delivered).unwrap_or_else(|e| panic!("{e}"));

    let out = mailroot(&["queue", "list", "--json", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let want = serde_json::json!([
        {"id": ids[0].to_string(), "size": 4, "arrival_unix_ms": 1_700_000_000_123u64,
         "arrival": "2023-11-14T22:13:20.123Z", "state": "queued", "sender": "alice@example.com",
         "recipients": [{"address": "bob@example.net", "status": "pending"}]},
        {"id": ids[1].to_string(), "size": 8, "arrival_unix_ms": 1_700_000_001_000u64,
         "arrival": "2023-11-14T22:13:21.000Z", "state": "partially delivered", "sender": "",
         "recipients": [{"address": "x@a.example", "status": "delivered"},
                        {"address": "y@b.example", "status": "pending"}]},
    ]);
    assert_eq!(got, want);

    let out = mailroot(&["queue", "list", "--config", &config]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("ID  "), "{table}");
    assert!(lines[1].starts_with(&ids[0].to_string()), "{table}");
    assert!(lines[2].contains("partially delivered  <>"), "{table}");
    assert!(lines[2].ends_with("x@a.example (delivered), y@b.example"), "{table}");
    assert_eq!(lines[3], "-- 2 messages, 12 bytes");
}

#[test]
fn bad_config_exits_2() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, "[spool]\nsegment_size = \"tiny\"\n").unwrap_or_else(|e| panic!("{e}"));
    let out = mailroot(&["queue", "list", "--config", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("mailroot: config error at `spool.segment_size`: "), "{stderr}");
}

/// The admin token of the action tests.
const TOKEN: &str = "queue-actions-t0ken";
/// How long a delivery may take (generous: CI is slow; never a speed assertion).
const WAIT: Duration = Duration::from_secs(30);
/// Poll step.
const STEP: Duration = Duration::from_millis(25);

/// A relay whose smart host is `127.0.0.1:port`, retrying only after an hour, with the
/// admin token set; `home.test` and `localhost` are local (NDRs land in Drop/).
fn relay_conf(port: u16) -> Conf {
    Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{port}\""),
        extra: "\n[delivery]\nretry = [\"1h\"]\nconnect_timeout = \"2s\"\n\
                [dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n"
            .into(),
        local_domains: vec!["localhost".into(), "home.test".into()],
        admin_extra: format!("token = \"{TOKEN}\""),
        ..Conf::default()
    }
}

/// Send one message with Python's smtplib; panics unless it was accepted.
fn send(srv: &Server, from: &str, to: &str, subject: &str) {
    let body = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@cli.test>\r\n\r\n\
         Hello.\r\n"
    );
    let report = PySend {
        server: srv,
        from: from.into(),
        to: vec![to.into()],
        body: body.into_bytes(),
        mail_opts: vec![],
        source: None,
    }
    .run();
    assert!(report.to_string().contains("250"), "not accepted: {report}");
}

/// Wait until the queue lists a message to `rcpt` whose recipient was tried (deferred) at
/// least once; its queue id.
fn wait_deferred(srv: &Server, rcpt: &str) -> String {
    wait_until(WAIT, STEP, || {
        srv.queue_list().into_iter().find_map(|m| {
            let r = m["recipients"].as_array()?.iter().find(|r| r["address"] == rcpt)?.clone();
            (r["attempts"].as_u64()? >= 1).then(|| m["id"].as_str().map(str::to_owned))?
        })
    })
    .unwrap_or_else(|| {
        panic!("{rcpt} never deferred: {:?}\n{}", srv.queue_list(), srv.log_tail(4000))
    })
}

/// The queue listing entry of `id`, if queued.
fn listed(srv: &Server, id: &str) -> Option<serde_json::Value> {
    srv.queue_list().into_iter().find(|m| m["id"] == id)
}

/// `mailroot queue <verb> <id> --config <server's config>`: (exit code, stdout, stderr).
fn action(srv: &Server, verb: &str, id: &str) -> (i32, String, String) {
    let out = mailroot_with_config(&["queue", verb, id], &srv.config_path);
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Wait until the event log holds a `queue.<verb>` event for `id` by a command with
/// result `ok`.
fn wait_event(srv: &Server, verb: &str, id: &str) {
    let path = srv.mailroot.join("Logs").join("events.log");
    let found = wait_until(WAIT, STEP, || {
        let text = std::fs::read_to_string(&path).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| {
                e["event"] == format!("queue.{verb}")
                    && e["target"] == id
                    && e["by"] == "command"
                    && e["result"] == "ok"
            })
            .then_some(())
    });
    assert!(
        found.is_some(),
        "no queue.{verb} event for {id}:\n{}",
        std::fs::read_to_string(&path).unwrap_or_default()
    );
}

/// Finished `.eml` files in Drop/.
fn drop_files(srv: &Server) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(srv.mailroot.join("Drop"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.extension().is_some_and(|e| e == "eml")
            && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    v
}

#[test]
fn hold_survives_a_restart_and_release_delivers() {
    let sink = Sink::start("127.0.0.1");
    sink.script("held@dest.test", &[451]);
    let mut srv = Server::start(relay_conf(sink.port()));
    send(&srv, "alice@home.test", "held@dest.test", "hold");
    let id = wait_deferred(&srv, "held@dest.test");
    assert_eq!(sink.rcpt_seen(), 1);

    let (code, out, err) = action(&srv, "hold", &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("held"), "{out}");
    assert_eq!(listed(&srv, &id).map(|m| m["held"].clone()), Some(serde_json::json!(true)));
    wait_event(&srv, "hold", &id);
    let (status, _, body) = srv.admin_get(&format!("/api/queue/{id}"));
    assert_eq!(status, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(detail["held"], true, "{detail}");
    assert_eq!(detail["site"], "default", "{detail}");
    assert_eq!(detail["recipients"][0]["attempts"], 1, "{detail}");
    // Holding again is harmless.
    let (code, out, _) = action(&srv, "hold", &id);
    assert_eq!((code, out.contains("already held")), (0, true), "{out}");

    // kill -9 and start again: still held, and a flush of everything does not try it.
    srv.restart();
    let m = listed(&srv, &id).unwrap_or_else(|| panic!("lost over the restart"));
    assert_eq!(m["held"], true, "{m}");
    assert!(m["held_since"].as_str().is_some_and(|t| t.ends_with('Z')), "{m}");
    let (status, body) = admin_post(srv.admin_port, "/api/flush", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sink.rcpt_seen(), 1, "a held message was tried");
    let table = text(&mailroot_with_config(&["queue", "list"], &srv.config_path).stdout);
    assert!(table.contains("(held)"), "{table}");

    // Release: back into the schedule and tried now (the retry was an hour away).
    let (code, out, err) = action(&srv, "release", &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("released"), "{out}");
    wait_event(&srv, "release", &id);
    let got = wait_until(WAIT, STEP, || {
        let r = sink.received();
        (!r.is_empty()).then_some(r)
    })
    .unwrap_or_else(|| panic!("not delivered after release\n{}", srv.log_tail(4000)));
    assert_eq!(got[0].rcpts, ["held@dest.test"]);
    assert!(wait_until(WAIT, STEP, || listed(&srv, &id).is_none().then_some(())).is_some());
    // Released and gone: nothing left to release.
    let (code, _, err) = action(&srv, "release", &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no queued message"), "{err}");
}

#[test]
fn bounce_sends_a_real_ndr_and_delete_removes() {
    // A dead next hop: every attempt is deferred (connection refused). Two domains, so
    // that the second message is tried too (a dead domain holds its other mail).
    let dead = free_port();
    let srv = Server::start(relay_conf(dead));
    send(&srv, "alice@home.test", "gone@dest.test", "bounced");
    send(&srv, "carol@home.test", "never@other.test", "deleted");
    let bounced = wait_deferred(&srv, "gone@dest.test");
    let deleted = wait_deferred(&srv, "never@other.test");
    assert!(drop_files(&srv).is_empty());

    // bounce: a real NDR to the (local) sender, in Drop/.
    let (code, out, err) = action(&srv, "bounce", &bounced);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("NDR to alice@home.test"), "{out}");
    let files = wait_until(WAIT, STEP, || {
        let f = drop_files(&srv);
        (!f.is_empty()).then_some(f)
    })
    .unwrap_or_else(|| panic!("no NDR in Drop/\n{}", srv.log_tail(4000)));
    assert_eq!(files.len(), 1);
    let ndr = std::fs::read_to_string(&files[0]).unwrap_or_else(|e| panic!("{e}"));
    for want in [
        "x-receiver: alice@home.test",
        "report-type=delivery-status",
        "Final-Recipient: rfc822; gone@dest.test",
        "Action: failed",
        "Status: 5.0.0",
        "returned to the sender by the postmaster",
        "Subject: bounced",
    ] {
        assert!(ndr.contains(want), "NDR lacks {want:?}:\n{ndr}");
    }
    assert!(listed(&srv, &bounced).is_none(), "bounced message still queued");
    wait_event(&srv, "bounce", &bounced);

    // delete: gone from the queue, and nobody is told.
    let (code, out, err) = action(&srv, "delete", &deleted);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("deleted"), "{out}");
    assert!(listed(&srv, &deleted).is_none(), "deleted message still queued");
    wait_event(&srv, "delete", &deleted);
    assert!(srv.queue_list().is_empty(), "{:?}", srv.queue_list());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(drop_files(&srv).len(), 1, "delete sent a report");

    // Unknown ids and bad ids.
    let (code, _, err) = action(&srv, "hold", &deleted);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no queued message"), "{err}");
    let (code, _, err) = action(&srv, "delete", "not-an-id");
    assert_eq!(code, 2, "{err}");
}

#[test]
fn admin_posts_need_the_token() {
    let srv = Server::start(relay_conf(free_port()));
    let path = "/api/queue/0000000100000000/hold";
    // (token sent, status)
    let cases: &[(Option<&str>, u16)] = &[
        (None, 401),
        (Some("wrong"), 401),
        (Some("queue-actions-t0ke"), 401),
        (Some(TOKEN), 404), // accepted; no such message
    ];
    for &(token, want) in cases {
        let (status, body) = admin_post(srv.admin_port, path, token);
        assert_eq!(status, want, "{token:?}: {body}");
    }
    for path in ["/api/flush", "/api/queue/0000000100000000/delete"] {
        assert_eq!(admin_post(srv.admin_port, path, None).0, 401, "{path}");
    }
    // The GETs beside them: the page (with its CSP), the masked config, message details.
    let (status, head, body) = srv.admin_get("/");
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(body.contains("<script src=\"/admin.js\""), "{body}");
    let (status, _, body) = srv.admin_get("/api/config");
    assert_eq!(status, 200);
    assert!(!body.contains(TOKEN) && body.contains("\"token\":\"********\""), "{body}");
    assert_eq!(srv.admin_get("/api/queue/0000000100000000").0, 404);
    assert_eq!(srv.admin_get("/api/queue/nonsense").0, 400);
    // Without [admin] token in the config, no POST is accepted at all (403), and the
    // command says why.
    let open = Server::start(Conf { admin_extra: String::new(), ..relay_conf(free_port()) });
    assert_eq!(admin_post(open.admin_port, "/api/flush", Some(TOKEN)).0, 403);
    let (code, _, err) = action(&open, "hold", "0000000100000000");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("403") && err.contains("[admin] token"), "{err}");
    // ... unless the config allows it on loopback.
    let allowed = Server::start(Conf {
        admin_extra: "allow_unauthenticated_loopback_control = true".into(),
        ..relay_conf(free_port())
    });
    let (status, body) = admin_post(allowed.admin_port, "/api/flush", None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn without_a_server_actions_work_on_the_spool_under_its_lock() {
    let mut srv = Server::start(relay_conf(free_port()));
    send(&srv, "alice@home.test", "gone@dest.test", "offline");
    let id = wait_deferred(&srv, "gone@dest.test");
    srv.terminate();

    // Nothing answers on the admin address: the command takes Queue/lock itself.
    let (code, out, err) = action(&srv, "hold", &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("held"), "{out}");
    assert_eq!(listed(&srv, &id).map(|m| m["held"].clone()), Some(serde_json::json!(true)));
    // A bounce needs the server's queue runner (it writes and sends the NDR).
    let (code, _, err) = action(&srv, "bounce", &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("needs the running server"), "{err}");
    let (code, out, err) = action(&srv, "release", &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tried when the server starts"), "{out}");
    assert!(listed(&srv, &id).is_some_and(|m| m.get("held").is_none()));
    let (code, out, err) = action(&srv, "delete", &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(listed(&srv, &id).is_none(), "{:?}", srv.queue_list());
    let (code, _, err) = action(&srv, "delete", &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no queued message"), "{err}");
    // The event log has them, by the command.
    wait_event(&srv, "hold", &id);
    wait_event(&srv, "release", &id);
    wait_event(&srv, "delete", &id);

    // A running server whose admin listener is off holds the lock: nothing is touched.
    let locked =
        Server::start(Conf { admin_extra: "enabled = false".into(), ..relay_conf(free_port()) });
    send(&locked, "alice@home.test", "gone@dest.test", "locked");
    let id = wait_deferred(&locked, "gone@dest.test");
    let (code, _, err) = action(&locked, "delete", &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the server is running"), "{err}");
    assert!(listed(&locked, &id).is_some());
}

#[test]
fn a_message_in_flight_is_refused_until_its_attempt_ends() {
    let sink = Sink::start("127.0.0.1");
    // The sink holds its answer to the final dot: the attempt stays in flight meanwhile.
    sink.set_data_delay(Duration::from_secs(8));
    let srv = Server::start(relay_conf(sink.port()));
    send(&srv, "alice@home.test", "slow@dest.test", "in-flight");
    assert!(wait_until(WAIT, STEP, || (sink.rcpt_seen() >= 1).then_some(())).is_some());
    let id = srv.queue_list()[0]["id"].as_str().map(str::to_owned).unwrap_or_default();
    let (code, _, err) = action(&srv, "hold", &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("being delivered now") && err.contains("409"), "{err}");
    // The attempt ends (delivered): nothing left to act on.
    assert!(wait_until(WAIT, STEP, || listed(&srv, &id).is_none().then_some(())).is_some());
    assert_eq!(sink.received().len(), 1);
}
