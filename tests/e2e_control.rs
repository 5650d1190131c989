//! Service control of the real binary: the event log (`<mailroot>/Logs/events.log`),
//! pause / resume / drain, configuration reload on SIGHUP and from the admin API, and the
//! `mailroot pause|resume|drain|reload` commands. Clients: Python's smtplib
//! (`tests/py/send.py`) and lettre; the admin API over plain HTTP/1.0. Every wait is
//! bounded; nothing asserts on speed.

mod common;
mod common_sink;

use std::fs;
use std::time::Duration;

use common::*;
use common_sink::Sink;
use lettre::Transport;
use serde_json::Value;

/// How long a delivery may take (generous: CI is slow).
const WAIT: Duration = Duration::from_secs(30);
/// Poll step.
const STEP: Duration = Duration::from_millis(25);
/// The admin token of the servers that have one.
const TOKEN: &str = "s3cret-token";

/// A configuration whose admin listener wants `TOKEN`.
fn with_token(conf: Conf) -> Conf {
    Conf { admin_extra: format!("token = {TOKEN:?}"), ..conf }
}

/// The first reply smtplib gets when it connects (code, text).
fn connect_reply(srv: &Server) -> (u16, String) {
    let report = PySend {
        server: srv,
        from: "probe@client.test".into(),
        to: vec!["r@localhost".into()],
        body: b"Subject: probe\r\n\r\nprobe\r\n".to_vec(),
        mail_opts: vec![],
        source: None,
    }
    .run();
    code_text(&report["connect"])
}

/// smtplib sends one message to `to`; the RCPT reply (code, text).
fn rcpt_reply(srv: &Server, to: &str) -> (u16, String) {
    let report = PySend {
        server: srv,
        from: "alice@client.test".into(),
        to: vec![to.into()],
        body: b"Subject: relay\r\n\r\nhello\r\n".to_vec(),
        mail_opts: vec![],
        source: None,
    }
    .run();
    assert_eq!(code_text(&report["connect"]).0, 220, "{report}");
    code_text(&report["messages"][0]["rcpt"][0])
}

/// One message with lettre; panics unless queued.
fn send(srv: &Server, from: &str, to: &str) {
    let env = lettre::address::Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    let body = format!("Subject: {from}\r\n\r\nhello from {from}\r\n");
    srv.lettre().send_raw(&env, body.as_bytes()).expect("queued");
}

/// `mailroot <args> --config <srv's file>`: (exit code, stdout, stderr).
fn command(srv: &Server, args: &[&str]) -> (i32, String, String) {
    let out = mailroot_with_config(args, &srv.config_path);
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The state of `site` in `GET /api/sites`.
fn site_state(srv: &Server, site: &str) -> String {
    let (status, _, body) = srv.admin_get("/api/sites");
    assert_eq!(status, 200, "{body}");
    let sites: Value = serde_json::from_str(&body).expect("JSON");
    let s = sites.as_array().expect("array").iter().find(|s| s["name"] == site);
    s.unwrap_or_else(|| panic!("no site {site} in {body}"))["state"].as_str().unwrap().to_owned()
}

/// Rewrite the server's configuration file with `edit` applied to its text.
fn edit_config(srv: &Server, edit: impl Fn(&str) -> String) {
    let text = fs::read_to_string(&srv.config_path).expect("read config");
    fs::write(&srv.config_path, edit(&text)).expect("write config");
}

#[test]
fn start_stop_and_recovery_are_in_the_event_log() {
    let mut srv = Server::start(Conf::default());
    let start = srv.wait_event("service.start", |_| true);
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["sites"], serde_json::json!(["default"]));
    assert_eq!(start["listen"][0], format!("default=127.0.0.1:{}", srv.port));
    assert!(start["config_file"].as_str().unwrap().ends_with("mailroot.toml"), "{start}");
    assert!(start["ts"].as_str().unwrap().ends_with('Z'), "{start}");
    let site = srv.wait_event("site.start", |e| e["site"] == "default");
    assert_eq!(site["listen"][0], format!("127.0.0.1:{}", srv.port));
    let rec = srv.wait_event("spool.recovered", |_| true);
    assert_eq!((rec["messages"].as_u64(), rec["torn_tails"].as_u64()), (Some(0), Some(0)));

    // One queued message (delivery is held), then a crash with garbage after the last
    // record of its segment: recovery reports the message and the torn tail.
    send(&srv, "kept@client.test", "r@localhost");
    srv.kill();
    let seg = fs::read_dir(srv.queue_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "seg")
                && fs::read(p).unwrap().windows(4).any(|w| w == b"MRrc")
        })
        .expect("the message's segment");
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 64..n - 48].copy_from_slice(b"torn tail junk!!");
    fs::write(&seg, &bytes).unwrap();
    srv.restart();
    let rec = srv.wait_event("spool.recovered", |e| e["messages"] == 1);
    assert_eq!(rec["torn_tails"], 1, "{rec}");
    assert!(rec["segments"].as_u64().unwrap() >= 1, "{rec}");
    assert_eq!(srv.queued_senders(), ["kept@client.test"]);

    let st = srv.terminate().expect("exits on SIGTERM");
    assert!(st.success(), "{st}");
    let events = srv.events();
    let stop = events.iter().rev().find(|e| e["event"] == "service.stop").expect("service.stop");
    assert_eq!((stop["reason"].as_str(), stop["by"].as_str()), (Some("SIGTERM"), Some("signal")));
    assert!(events.iter().any(|e| e["event"] == "site.stop" && e["site"] == "default"));
    // Two starts and two recoveries (before and after the crash), one clean stop.
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(
        (count("service.start"), count("spool.recovered"), count("service.stop")),
        (2, 2, 1)
    );
}

#[test]
fn pause_refuses_new_connections_while_the_queue_delivers() {
    // Delivery goes to a smart host that is down at first.
    let sink_port = free_port();
    let conf = Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{sink_port}\""),
        extra: "\n[delivery]\nretry = [\"1s\"]\nconnect_timeout = \"1s\"\n\n[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n".into(),
        ..with_token(Conf::default())
    };
    let srv = Server::start(conf);
    send(&srv, "queued@client.test", "bob@remote.test");
    // A session opened before the pause may go on after it.
    let mut open = Raw::connect(srv.addr()).expect("connect");
    assert_eq!(open.hello().code, 250);

    let (code, out, err) = command(&srv, &["pause"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("default paused"), "{out}");
    assert_eq!(site_state(&srv, "default"), "paused");
    let (code, text) = connect_reply(&srv);
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.3.2"), "{text}");
    let r = open.send_message(
        "during@client.test",
        &["r@localhost"],
        &dot_stuff(b"Subject: x\r\n\r\nx\r\n"),
    );
    assert_eq!(r.code, 250, "an established session finishes its work: {r}");

    // The queued message is delivered while the site is paused.
    let sink = Sink::start_on(&format!("127.0.0.1:{sink_port}"));
    let (code, _, err) = command(&srv, &["queue", "flush"]);
    assert_eq!(code, 0, "{err}");
    let got = wait_until(WAIT, STEP, || {
        sink.received().into_iter().find(|m| m.mail_from == "queued@client.test")
    });
    assert!(got.is_some(), "not delivered while paused:\n{}", srv.log_tail(4000));
    assert_eq!(connect_reply(&srv).0, 421, "still paused");

    let (code, out, err) = command(&srv, &["resume", "--site", "default"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(site_state(&srv, "default"), "running");
    assert_eq!(connect_reply(&srv).0, 220);
    assert_eq!(rcpt_reply(&srv, "r@localhost").0, 250);

    srv.wait_event("site.pause", |e| e["site"] == "default" && e["by"] == "command");
    let flush = srv.wait_event("queue.flush", |e| e["by"] == "file");
    assert_eq!(flush["target"], Value::Null, "{flush}");
    srv.wait_event("site.resume", |e| e["site"] == "default" && e["by"] == "command");
    let (code, _, err) = command(&srv, &["pause", "--site", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such site: nosuch"), "{err}");
}

#[test]
fn drain_exits_zero_when_the_queue_is_empty() {
    let mut srv = Server::start(with_token(Conf::default()));
    let (code, out, err) = command(&srv, &["drain", "--timeout", "20"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("drained"), "{out}");
    let st = srv.wait_exit(WAIT).expect("the server stops after a drain");
    assert!(st.success(), "{st}");
    let events = srv.events();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for want in ["site.pause", "service.drain", "service.drained", "site.stop", "service.stop"] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    let stop = events.iter().find(|e| e["event"] == "service.stop").unwrap();
    assert_eq!((stop["reason"].as_str(), stop["by"].as_str()), (Some("drained"), Some("command")));
}

#[test]
fn drain_times_out_and_stays_paused_when_mail_is_held() {
    // Delivery is held: the queue cannot empty.
    let mut srv = Server::start(with_token(Conf::default()));
    send(&srv, "held@client.test", "r@localhost");
    let (code, _, err) = command(&srv, &["drain", "--timeout", "1"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("timed out") && err.contains("1 message"), "{err}");
    assert!(srv.is_alive(), "the server keeps running after a drain timeout");
    assert_eq!(site_state(&srv, "default"), "paused");
    let e = srv.wait_event("service.drain_timeout", |_| true);
    assert_eq!(e["queued"], 1, "{e}");
    assert_eq!(connect_reply(&srv).0, 421);
    assert_eq!(command(&srv, &["resume"]).0, 0);
    assert_eq!(connect_reply(&srv).0, 220);
}

#[test]
fn sighup_with_a_broken_file_keeps_the_running_config() {
    let srv = Server::start(Conf::default().limit("max_recipients", "2"));
    let good = fs::read_to_string(&srv.config_path).unwrap();
    // Valid TOML, invalid value: the whole file is refused, even its valid changes.
    edit_config(&srv, |t| {
        t.replace("max_recipients = 2", "max_recipients = 0")
            .replace("relay]\nallow = [\"127.0.0.0/8\"]", "relay]\nallow = []")
    });
    send_signal(srv.pid().unwrap(), libc::SIGHUP);
    let e = srv.wait_event("config.reload_refused", |_| true);
    assert_eq!(e["by"], "signal");
    let error = e["error"].as_str().unwrap();
    assert!(error.contains("limits.max_recipients"), "{error}");
    // The old limits and relay rules still hold.
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<a@client.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<one@remote.test>").code, 250, "relay still allowed");
    assert_eq!(c.cmd("RCPT TO:<two@remote.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<three@remote.test>").code, 452, "limit 2 still applies");
    // A syntax error is refused the same way.
    fs::write(&srv.config_path, "workers = [\n").unwrap();
    send_signal(srv.pid().unwrap(), libc::SIGHUP);
    srv.wait_event("config.reload_refused", |e| e["error"].as_str().unwrap().contains("line 1"));
    fs::write(&srv.config_path, good).unwrap();
    assert!(srv.events().iter().all(|e| e["event"] != "config.reload"), "nothing applied");
}

#[test]
fn sighup_with_a_changed_relay_rule_applies_to_the_next_session() {
    let srv = Server::start(Conf { relay_allow: vec![], ..Conf::default() });
    let (code, text) = rcpt_reply(&srv, "bob@remote.test");
    assert_eq!(code, 554, "relay denied at first: {text}");
    edit_config(&srv, |t| {
        t.replace("relay]\nallow = []", "relay]\nallow = [\"127.0.0.0/8\"]")
            .replace("workers = 2", "workers = 1")
    });
    send_signal(srv.pid().unwrap(), libc::SIGHUP);
    let e = srv.wait_event("config.reload", |_| true);
    assert_eq!(e["by"], "signal");
    let changes = e["changes"].as_array().unwrap();
    let relay = changes.iter().find(|c| c["key"] == "relay.allow").expect("relay.allow change");
    assert_eq!(
        (relay["old"].as_str(), relay["new"].as_str()),
        (Some("[]"), Some("[\"127.0.0.0/8\"]"))
    );
    assert_eq!(e["restart_needed"], serde_json::json!(["workers"]), "{e}");
    assert_eq!(rcpt_reply(&srv, "bob@remote.test").0, 250, "relay allowed after the reload");
    // And back: denied again from the next session on.
    edit_config(&srv, |t| t.replace("relay]\nallow = [\"127.0.0.0/8\"]", "relay]\nallow = []"));
    send_signal(srv.pid().unwrap(), libc::SIGHUP);
    srv.wait_event("config.reload", |e| {
        e["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key"] == "relay.allow" && c["new"] == "[]")
    });
    assert_eq!(rcpt_reply(&srv, "bob@remote.test").0, 554);
}

#[test]
fn admin_posts_without_the_token_are_refused() {
    let mut srv = Server::start(with_token(Conf::default()));
    // (path, token, status)
    let refused: &[(&str, Option<&str>, u16)] = &[
        ("/api/pause", None, 401),
        ("/api/pause", Some("wrong"), 401),
        ("/api/sites/default/pause", None, 401),
        ("/api/reload", Some("s3cret-toke"), 401),
        ("/api/drain?timeout=1", None, 401),
    ];
    for (path, token, status) in refused {
        let (got, body) = srv.admin_post(path, *token);
        assert_eq!(got, *status, "{path}: {body}");
        assert_eq!(site_state(&srv, "default"), "running", "{path} changed something");
    }
    assert!(srv.is_alive());
    srv.wait_event("admin.refused", |e| e["request"] == "POST /api/pause" && e["status"] == 401);
    assert!(
        srv.events().iter().all(|e| e["event"] != "site.pause" && e["event"] != "config.reload")
    );
    let (got, body) = srv.admin_post("/api/sites/default/pause", Some(TOKEN));
    assert_eq!(got, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["changed"], serde_json::json!(["default"]));
    assert_eq!(v["sites"][0]["state"], "paused");
    srv.wait_event("site.pause", |e| e["by"] == "admin-api");
    let (got, body) = srv.admin_post("/api/sites/nosuch/resume", Some(TOKEN));
    assert_eq!(got, 404, "{body}");
    // The recent events, as the web page reads them.
    let (status, _, body) = srv.admin_get("/api/events?limit=2");
    assert_eq!(status, 200);
    let events: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2, "{body}");
    assert_eq!(events[1]["event"], "site.pause", "{body}");
}

#[test]
fn without_a_token_posts_need_the_loopback_opt_in() {
    let srv = Server::start(Conf::default());
    let (got, body) = srv.admin_post("/api/pause", None);
    assert_eq!(got, 403, "{body}");
    assert_eq!(site_state(&srv, "default"), "running");
    let open = Server::start(Conf {
        admin_extra: "allow_unauthenticated_loopback_control = true".into(),
        ..Conf::default()
    });
    let (got, body) = open.admin_post("/api/pause", None);
    assert_eq!(got, 200, "{body}");
    assert_eq!(site_state(&open, "default"), "paused");
}

#[test]
fn reload_command_and_api_report_changes_and_refusals() {
    let srv = Server::start(with_token(Conf::default().limit("max_recipients", "5")));
    edit_config(&srv, |t| t.replace("max_recipients = 5", "max_recipients = 6"));
    let (code, out, err) = command(&srv, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reloaded: 1 change(s)"), "{out}");
    assert!(out.contains("limits.max_recipients: 5 -> 6"), "{out}");
    let e = srv.wait_event("config.reload", |e| e["by"] == "command");
    assert_eq!(e["changes"][0]["key"], "limits.max_recipients");
    // The server refuses a file the command could not have sent (the API answers 422).
    edit_config(&srv, |t| t.replace("max_recipients = 6", "max_recipients = -1"));
    let (got, body) = srv.admin_post("/api/reload", Some(TOKEN));
    assert_eq!(got, 422, "{body}");
    assert!(body.contains("limits.max_recipients"), "{body}");
    srv.wait_event("config.reload_refused", |e| e["by"] == "admin-api");
    // The command validates the file itself first and says why (exit 2, like serve).
    let (code, _, err) = command(&srv, &["reload"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limits.max_recipients"), "{err}");
}

#[test]
fn a_user_added_by_reload_can_authenticate() {
    const PASSWORD: &str = "correct horse battery";
    let mut conf = with_token(Conf::default());
    conf.extra += "\n[auth]\nallow_plaintext_auth = true\n";
    let srv = Server::start(conf);
    let login = format!("carol:{PASSWORD}");
    let auth = |srv: &Server| {
        run_py("auth.py", &["--port".into(), srv.port.to_string(), "--login".into(), login.clone()])
    };
    let before = auth(&srv);
    assert_eq!(before["auth_offered"], false, "{before}");
    let (code, hash, err) = hash_password(&format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{err}");
    edit_config(&srv, |t| {
        format!("{t}\n[[user]]\nname = \"carol\"\npassword_hash = \"{}\"\n", hash.trim())
    });
    let (code, out, err) = command(&srv, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("user[0].password_hash: (none) -> <redacted>"), "{out}");
    assert!(!out.contains(hash.trim()), "the hash is a secret: {out}");
    let after = auth(&srv);
    assert_eq!(after["auth_offered"], true, "{after}");
    assert_eq!(code_text(&after["login"]).0, 235, "{after}");
    let e = srv.wait_event("config.reload", |_| true);
    assert!(!e.to_string().contains(hash.trim()), "hash in the event log: {e}");
}

#[test]
fn drain_waits_for_queued_mail_to_be_delivered() {
    // A message waits for a smart host that is down; the drain ends once it is delivered.
    let sink_port = free_port();
    let conf = Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{sink_port}\""),
        extra: "\n[delivery]\nretry = [\"1s\"]\nconnect_timeout = \"1s\"\n\n[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n".into(),
        ..with_token(Conf::default())
    };
    let mut srv = Server::start(conf);
    send(&srv, "waiting@client.test", "bob@remote.test");
    let config = srv.config_path.clone();
    let drain =
        std::thread::spawn(move || mailroot_with_config(&["drain", "--timeout", "60"], &config));
    srv.wait_event("service.drain", |e| e["timeout_ms"] == 60_000);
    assert!(srv.is_alive(), "no early exit while mail is queued");
    assert_eq!(connect_reply(&srv).0, 421, "paused while draining");
    let sink = Sink::start_on(&format!("127.0.0.1:{sink_port}"));
    let out = drain.join().expect("drain thread");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(sink.received().iter().any(|m| m.mail_from == "waiting@client.test"));
    let st = srv.wait_exit(WAIT).expect("the server stops after the drain");
    assert!(st.success(), "{st}");
}

#[test]
fn a_lowered_connection_limit_applies_from_the_next_accept() {
    let srv = Server::start(with_token(Conf::default().limit("max_connections_per_ip", "10")));
    let mut first = Raw::connect(srv.addr()).expect("connect");
    assert_eq!(first.hello().code, 250);
    edit_config(&srv, |t| t.replace("max_connections_per_ip = 10", "max_connections_per_ip = 1"));
    let (code, out, err) = command(&srv, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("limits.max_connections_per_ip: 10 -> 1"), "{out}");
    assert!(!out.contains("restart"), "{out}");
    // The open session stays; a second one from the same address is refused.
    let (code, text) = connect_reply(&srv);
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.7.0"), "{text}");
    assert_eq!(first.cmd("NOOP").code, 250);
}
