//! Stopping and starting one site of the real binary at run time (issue 11), distinct
//! from pause: two sites on two loopback ports, two workers (each with its own
//! `SO_REUSEPORT` listener per address). Mail is sent with Python's smtplib
//! (`tests/py/send.py`); the session probes use the harness's raw client; the commands
//! are `mailroot stop|start --site` and the admin API with its bearer token. Every wait
//! is bounded; nothing asserts on speed.
//!
//! Checked: stop b → a connect to b is refused (in every worker: several connects) while
//! site a still takes mail; b's idle session is told 421 and closed, its session in DATA
//! finishes with 250 and is then told 421; what b queued stays queued; the state shows in
//! `GET /api/sites`, `mailroot stats` and the event log (`site.stopped`, `by`); a reload
//! leaves b stopped; start b → b takes mail again; start while another socket holds b's
//! port → a clear error, exit status 1, `site.start_refused`, b stays stopped; once the
//! port is free the start works.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{
    Conf, Raw, Server, code_text, free_port, mailroot_with_config, run_py, send_signal, unique,
};
use serde_json::Value;

/// The admin token.
const TOKEN: &str = "site-ctl-token";

/// Site `default` on the harness port, site `b` on `port_b`; two workers.
fn two_sites(port_b: u16) -> Server {
    Server::start(Conf {
        site_extra: format!("[[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:{port_b}\"]\n"),
        admin_extra: format!("token = {TOKEN:?}"),
        workers: 2,
        ..Conf::default()
    })
}

/// smtplib sends one message to `port`: the (connect, DATA) reply codes.
fn send(srv: &Server, port: u16, from: &str) -> (u16, u16) {
    let path = srv.dir.path().join(format!("body-{}.eml", unique()));
    fs::write(&path, format!("Subject: {from}\r\n\r\nhello\r\n")).expect("write body");
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--from",
        from,
        "--to",
        "r@localhost",
        "--body-file",
        &path.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let r = run_py("send.py", &args);
    let data = &r["messages"][0]["data"];
    (code_text(&r["connect"]).0, if data.is_null() { 0 } else { code_text(data).0 })
}

/// Every one of `n` connects to `port` is refused (the kernel answers: no listener).
fn all_refused(port: u16, n: usize) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    (0..n).all(|_| {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
    })
}

/// `mailroot <args> --config <srv's file>`: (exit code, stdout, stderr).
fn command(srv: &Server, args: &[&str]) -> (i32, String, String) {
    let out = mailroot_with_config(args, &srv.config_path);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Site `name` in `GET /api/sites`.
fn site(srv: &Server, name: &str) -> Value {
    let (status, _, body) = srv.admin_get("/api/sites");
    assert_eq!(status, 200, "{body}");
    let sites: Value = serde_json::from_str(&body).expect("JSON");
    let s = sites.as_array().expect("array").iter().find(|s| s["name"] == name).cloned();
    s.unwrap_or_else(|| panic!("no site {name} in {body}"))
}

#[test]
fn stop_closes_one_sites_listeners_and_start_binds_them_again() {
    let port_b = free_port();
    let srv = two_sites(port_b);
    assert_eq!(send(&srv, port_b, "before@b.test"), (220, 250));

    // An idle session and one in the middle of DATA on site b.
    let b_addr = SocketAddr::from(([127, 0, 0, 1], port_b));
    let mut idle = Raw::connect(b_addr).expect("connect b");
    idle.hello();
    let mut busy = Raw::connect(b_addr).expect("connect b");
    busy.hello();
    assert_eq!(busy.cmd("MAIL FROM:<busy@b.test>").code, 250);
    assert_eq!(busy.cmd("RCPT TO:<r@localhost>").code, 250);
    assert_eq!(busy.cmd("DATA").code, 354);
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");

    let (code, out, err) = command(&srv, &["stop", "--site", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("b stopped")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("default running")), "{out}");

    // Closed in every worker: no connect gets through; site a still takes mail.
    assert!(all_refused(port_b, 8), "a connect to stopped site b got through");
    assert_eq!(send(&srv, srv.port, "during@a.test"), (220, 250));
    // The idle session was told 421 and closed; the one in DATA finishes its message.
    let bye = idle.read_reply().expect("421 to the idle session");
    assert_eq!((bye.code, bye.text().starts_with("4.3.2")), (421, true), "{bye}");
    assert!(idle.wait_closed(Duration::from_secs(10)));
    busy.send(b"second half\r\n.\r\n");
    let done = busy.read_reply().expect("reply to the end of data");
    assert_eq!(done.code, 250, "{done}");
    assert_eq!(busy.read_reply().map(|r| r.code), Some(421));
    assert!(busy.wait_closed(Duration::from_secs(10)));
    // The queue is untouched (delivery is held in the harness).
    let mut queued = srv.queued_senders();
    queued.sort();
    assert_eq!(queued, ["before@b.test", "busy@b.test", "during@a.test"]);

    // The state, where an operator looks.
    assert_eq!(site(&srv, "b")["state"], "stopped");
    assert_eq!(site(&srv, "default")["state"], "running");
    let (code, stats, err) = command(&srv, &["stats"]);
    assert_eq!(code, 0, "{err}");
    let row = |prefix: &str| stats.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    let site_b = row("Site b ").unwrap_or_else(|| panic!("no site b row:\n{stats}"));
    assert!(site_b.contains("stopped") && site_b.contains(&b_addr.to_string()), "{site_b}");
    // Counters are labelled by site: b took 2 messages, default 1 (the first rows after
    // "Messages Received Total" are its per-site rows).
    let received: Vec<&str> =
        stats.lines().skip_while(|l| !l.starts_with("Messages Received Total")).take(3).collect();
    assert!(received[0].trim_end().ends_with(" 3"), "{received:?}");
    assert!(
        received.iter().any(|l| l.starts_with("  site b ") && l.trim_end().ends_with(" 2")),
        "{received:?}"
    );
    let (_, _, metrics) = srv.admin_get("/metrics");
    for line in [
        "mailroot_messages_received_total{site=\"b\"} 2",
        "mailroot_messages_received_total{site=\"default\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line} in\n{metrics}");
    }
    let ev = srv.wait_event("site.stopped", |e| e["site"] == "b");
    assert_eq!(ev["by"], "command", "{ev}");

    // A reload (with a change) leaves the site stopped.
    let text = fs::read_to_string(&srv.config_path).expect("read config");
    let edited =
        text.replace("max_messages_per_connection = 1000", "max_messages_per_connection = 999");
    assert_ne!(text, edited, "the edit must change something");
    fs::write(&srv.config_path, edited).expect("write config");
    send_signal(srv.pid().expect("running"), libc::SIGHUP);
    srv.wait_event("config.reload", |_| true);
    assert_eq!(site(&srv, "b")["state"], "stopped");
    assert!(all_refused(port_b, 4), "a reload re-opened stopped site b");

    // Start through the admin API (token required): b takes mail again.
    let (status, body) = srv.admin_post("/api/sites/b/start", None);
    assert_eq!(status, 401, "{body}");
    assert!(all_refused(port_b, 2), "refused start changed something");
    let (status, body) = srv.admin_post("/api/sites/b/start", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(site(&srv, "b")["state"], "running");
    for i in 0..4 {
        assert_eq!(send(&srv, port_b, &format!("after{i}@b.test")), (220, 250));
    }
    let ev = srv.wait_event("site.started", |e| e["site"] == "b");
    assert_eq!(
        (ev["by"].as_str(), ev["listen"][0].as_str()),
        (Some("admin-api"), Some(&*b_addr.to_string()))
    );
}

#[test]
fn start_fails_clearly_while_the_port_is_taken() {
    let port_b = free_port();
    let srv = two_sites(port_b);
    let (code, out, err) = command(&srv, &["stop", "--site", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    // Someone else takes b's port meanwhile (a plain listener, no SO_REUSEPORT).
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port_b)).expect("take b's port");

    let (code, out, err) = command(&srv, &["start", "--site", "b"]);
    assert_eq!(code, 1, "stdout: {out} stderr: {err}");
    assert!(err.contains("site b stays stopped") && err.contains("in use"), "{err}");
    assert_eq!(site(&srv, "b")["state"], "stopped");
    let ev = srv.wait_event("site.start_refused", |e| e["site"] == "b");
    assert_eq!(ev["by"], "command", "{ev}");
    // Unknown site: exit 1, nothing changes.
    let (code, _, err) = command(&srv, &["start", "--site", "nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such site"), "{err}");

    drop(squatter);
    let (code, out, err) = command(&srv, &["start", "--site", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("b running")), "{out}");
    assert_eq!(send(&srv, port_b, "back@b.test"), (220, 250));
}
