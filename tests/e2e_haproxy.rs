//! mailroot behind a real HAProxy (the Debian package) in TCP mode, one frontend with
//! `send-proxy-v2` and one with `send-proxy` (v1), both to a `proxy_protocol` site of the
//! real binary. Python's `smtplib` (`tests/py/send.py`) talks to HAProxy from 127.0.0.5 or
//! 127.0.0.6; HAProxy connects to mailroot from 127.0.0.1, the only trusted balancer.
//! Checks: the relay decision follows the client HAProxy saw (`[relay] allow` holds only
//! 127.0.0.5), and the `Received:` header of the delivered message names it.
//!
//! Skipped, with the reason on stderr, when `haproxy` is not installed (`.ci/run` installs
//! it). Loopback only; HAProxy runs in the foreground (`-db`) and is killed by its guard.

mod common;

use std::time::Duration;

use common::*;

/// Start HAProxy with frontends on `v2` (send-proxy-v2) and `v1` (send-proxy), both to
/// 127.0.0.1:`backend`; wait until both accept.
fn start_two_frontends(dir: &std::path::Path, v2: u16, v1: u16, backend: u16) -> Haproxy {
    let cfg = format!(
        "global\n    maxconn 100\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe_v2\n    bind 127.0.0.1:{v2}\n    default_backend be_v2\n\
         backend be_v2\n    server mailroot 127.0.0.1:{backend} send-proxy-v2\n\
         frontend fe_v1\n    bind 127.0.0.1:{v1}\n    default_backend be_v1\n\
         backend be_v1\n    server mailroot 127.0.0.1:{backend} send-proxy\n"
    );
    start_haproxy(dir, &cfg, &[v2, v1])
}

/// Send one message with smtplib through `port` from `source`; the JSON report.
fn send(dir: &std::path::Path, port: u16, source: &str, to: &str, tag: &str) -> serde_json::Value {
    let body = dir.join(format!("{tag}.eml"));
    std::fs::write(&body, format!("Subject: {tag}\r\n\r\nvia haproxy {tag}\r\n")).expect("body");
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--source",
        source,
        "--from",
        "alice@sender.test",
        "--to",
        to,
        "--body-file",
        &body.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    run_py("send.py", &args)
}

/// The Drop/ file containing `tag`.
fn drop_with(srv: &Server, tag: &str) -> String {
    let dir = srv.mailroot.join("Drop");
    wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        std::fs::read_dir(&dir).ok()?.filter_map(Result::ok).find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".eml") {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.contains(tag).then_some(text)
        })
    })
    .unwrap_or_else(|| panic!("no Drop file with {tag}\n{}", srv.log_tail(4000)))
}

#[test]
fn through_haproxy_send_proxy_v1_and_v2() {
    if let Some(reason) = haproxy_missing() {
        eprintln!("{reason}");
        return;
    }
    let (backend, v2, v1) = (free_port(), free_port(), free_port());
    let srv = Server::start(Conf {
        relay_allow: vec!["127.0.0.5/32".into()],
        extra: format!(
            "\n[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n\
             \n[[site]]\nname = \"lb\"\nlisten = [\"127.0.0.1:{backend}\"]\n\
             proxy_protocol = true\nproxy_trusted = [\"127.0.0.1/32\"]\n"
        ),
        ..Conf::default()
    });
    let _haproxy = start_two_frontends(srv.dir.path(), v2, v1, backend);
    let dir = srv.dir.path();

    for (port, version) in [(v2, "v2"), (v1, "v1")] {
        // The client HAProxy saw is 127.0.0.5: may relay, and is named in Received:.
        let tag = format!("haproxy-{version}");
        let r = send(dir, port, "127.0.0.5", "bob@localhost", &tag);
        assert_eq!(code_text(&r["connect"]).0, 220, "{version}: {r}");
        assert_eq!(code_text(&r["messages"][0]["data"]).0, 250, "{version}: {r}");
        let text = drop_with(&srv, &tag);
        let received = text.lines().find(|l| l.starts_with("Received: ")).unwrap_or_default();
        assert!(received.contains("[127.0.0.5]"), "{version}: {received}");

        let r = send(dir, port, "127.0.0.5", "x@remote.example", &format!("{tag}-relay"));
        assert_eq!(code_text(&r["messages"][0]["rcpt"][0]).0, 250, "{version}: {r}");
        // 127.0.0.6 is outside [relay] allow (HAProxy itself, 127.0.0.1, is too).
        let r = send(dir, port, "127.0.0.6", "x@remote.example", &format!("{tag}-denied"));
        assert_eq!(code_text(&r["messages"][0]["rcpt"][0]).0, 554, "{version}: {r}");
    }
}
