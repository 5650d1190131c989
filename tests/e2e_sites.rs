//! Sites with master properties, end to end: the real `mailroot` binary with two `[[site]]`s
//! on two loopback ports, driven by Python's smtplib (`tests/py/send.py`). Site `default`
//! inherits every master property; site `b` overrides `hostname`, `max_message_size`,
//! `relay_allow` and `local_domains` (and `drop_folder` in the delivery test). Checked:
//! greeting and `Received: by` name each site's host name, one site refuses with 552 what
//! the other accepts, one relays where the other answers 554, each has its own local
//! domains, local mail for site b's own domain lands in its Drop folder, and a SIGHUP that
//! changes site b's `max_message_size` applies to its next session.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{
    Conf, Server, code_text, free_port, run_py, send_signal, split_received, unique, wait_until,
};
use serde_json::Value;

/// Site b's own host name and local domain.
const B_HOST: &str = "b-site.example";
/// Site b's message size limit, bytes.
const B_MAX: u64 = 2_000;

/// A server with site `default` (masters) and site `b` on `port_b` with overrides; `more`
/// is appended to site b's table, `extra` replaces the harness's tail sections.
fn two_sites(port_b: u16, more: &str, extra: Option<&str>) -> Server {
    let mut conf = Conf {
        local_domains: vec!["localhost".into(), "master.example".into()],
        site_extra: format!(
            "[[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:{port_b}\"]\nhostname = \"{B_HOST}\"\n\
             max_message_size = {B_MAX}\nrelay_allow = []\nlocal_domains = [\"{B_HOST}\"]\n{more}\n"
        ),
        ..Conf::default()
    };
    if let Some(e) = extra {
        conf.extra = e.to_owned();
    }
    Server::start(conf)
}

/// One smtplib session to `port`: a message of `size` bytes (announced with SIZE=) to `to`.
fn send(srv: &Server, port: u16, to: &str, size: usize) -> Value {
    let mut body = format!("Subject: s{}\r\n\r\n", unique()).into_bytes();
    while body.len() < size {
        body.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    let path = srv.dir.path().join(format!("body-{}.eml", unique()));
    fs::write(&path, &body).expect("write body");
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--from",
        "sender@client.test",
        "--to",
        to,
        "--body-file",
        &path.display().to_string(),
        "--mail-opt",
        &format!("SIZE={}", body.len()),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    run_py("send.py", &args)
}

/// (MAIL code, first RCPT code, DATA code or 0).
fn codes(rep: &Value) -> (u16, u16, u16) {
    let m = &rep["messages"][0];
    let rcpt = m["rcpt"].get(0).map_or(0, |r| code_text(r).0);
    let data = if m["data"].is_null() { 0 } else { code_text(&m["data"]).0 };
    (code_text(&m["mail"]).0, rcpt, data)
}

#[test]
fn two_sites_each_with_its_own_properties() {
    let port_b = free_port();
    let mut srv = two_sites(port_b, "", None);
    let port_a = srv.port;

    // Greeting: each site's host name.
    let a = send(&srv, port_a, "x@localhost", 100);
    let b = send(&srv, port_b, &format!("x@{B_HOST}"), 100);
    assert!(code_text(&a["connect"]).1.contains(&srv.hostname), "{a}");
    assert!(code_text(&b["connect"]).1.contains(B_HOST), "{b}");
    assert!(!code_text(&b["connect"]).1.contains(&srv.hostname), "{b}");
    assert!(code_text(&b["ehlo"]).1.contains(B_HOST), "{b}");
    assert_eq!(codes(&a), (250, 250, 250), "{a}");
    assert_eq!(codes(&b), (250, 250, 250), "{b}");

    // Size: 5 000 bytes pass the master's 10 MiB and not site b's 2 000 (552 at MAIL SIZE=).
    let a_big = send(&srv, port_a, "big@localhost", 5_000);
    assert_eq!(codes(&a_big), (250, 250, 250), "{a_big}");
    let b_big = send(&srv, port_b, &format!("big@{B_HOST}"), 5_000);
    let (code, text) = code_text(&b_big["messages"][0]["mail"]);
    assert_eq!(code, 552, "{b_big}");
    assert!(text.contains("5.3.4"), "{text}");

    // Relay: the master allows loopback, site b nobody (554 5.7.1 at RCPT).
    let a_relay = send(&srv, port_a, "r@remote.example", 100);
    assert_eq!(codes(&a_relay), (250, 250, 250), "{a_relay}");
    let b_relay = send(&srv, port_b, "r@remote.example", 100);
    let (code, text) = code_text(&b_relay["messages"][0]["rcpt"][0]);
    assert_eq!(code, 554, "{b_relay}");
    assert!(text.contains("5.7.1"), "{text}");

    // Local domains: master.example is local to the master site only; site b's own domain
    // is local to it only (so site a, which may relay, takes it as relayed mail).
    let b_master = send(&srv, port_b, "x@master.example", 100);
    assert_eq!(code_text(&b_master["messages"][0]["rcpt"][0]).0, 554, "{b_master}");
    let a_master = send(&srv, port_a, "x@master.example", 100);
    assert_eq!(codes(&a_master), (250, 250, 250), "{a_master}");

    // Received: by names the site that took the message.
    let all = srv.stop_and_read_all();
    let by = |rcpt: &str| -> String {
        let (_, bytes) = all
            .iter()
            .find(|(m, _)| m.envelope.recipients.iter().any(|r| r.forward_path == rcpt))
            .unwrap_or_else(|| panic!("{rcpt} not queued"));
        String::from_utf8_lossy(split_received(bytes).0).into_owned()
    };
    let rb = by(&format!("x@{B_HOST}"));
    assert!(rb.contains(&format!("by {B_HOST}")), "{rb}");
    let ra = by("x@localhost");
    assert!(ra.contains(&format!("by {}", srv.hostname)), "{ra}");
    // The envelopes record the site.
    let site_of = |rcpt: &str| {
        all.iter()
            .find(|(m, _)| m.envelope.recipients.iter().any(|r| r.forward_path == rcpt))
            .map(|(m, _)| m.envelope.site.clone())
    };
    assert_eq!(site_of(&format!("x@{B_HOST}")).as_deref(), Some("b"));
    assert_eq!(site_of("x@localhost").as_deref(), Some("default"));
}

/// Drop files in `dir` (none when it does not exist).
fn drop_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn site_own_domain_is_dropped_in_its_drop_folder() {
    let port_b = free_port();
    let scratch = tempfile::tempdir().expect("tempdir");
    let b_drop = scratch.path().join("b-drop");
    let more = format!("drop_folder = {:?}", b_drop.display().to_string());
    // No `[delivery] hold`: the runner delivers local mail at once.
    let srv = two_sites(port_b, &more, Some(""));
    let b = send(&srv, port_b, &format!("y@{B_HOST}"), 100);
    assert_eq!(codes(&b), (250, 250, 250), "{b}");
    let a = send(&srv, srv.port, "y@localhost", 100);
    assert_eq!(codes(&a), (250, 250, 250), "{a}");
    let master_drop = srv.mailroot.join("Drop");
    let found = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        let (bf, mf) = (drop_files(&b_drop), drop_files(&master_drop));
        (bf.len() == 1 && mf.len() == 1).then_some((bf, mf))
    });
    let (bf, mf) = found.unwrap_or_else(|| {
        panic!(
            "drops: b={:?} master={:?}\n{}",
            drop_files(&b_drop),
            drop_files(&master_drop),
            srv.log_tail(4000)
        )
    });
    assert!(bf[0].contains(&format!("y@{B_HOST}")), "{}", bf[0]);
    assert!(mf[0].contains("y@localhost"), "{}", mf[0]);
}

#[test]
fn reload_changes_one_sites_override_for_its_next_session() {
    let port_b = free_port();
    let srv = two_sites(port_b, "", None);
    let before = send(&srv, port_b, &format!("z@{B_HOST}"), 5_000);
    assert_eq!(code_text(&before["messages"][0]["mail"]).0, 552, "{before}");

    let text = fs::read_to_string(&srv.config_path).expect("read config");
    let changed =
        text.replace(&format!("max_message_size = {B_MAX}\n"), "max_message_size = 9000\n");
    assert_ne!(changed, text, "site b's limit not found in\n{text}");
    fs::write(&srv.config_path, changed).expect("write config");
    send_signal(srv.pid().expect("pid"), libc::SIGHUP);
    let e = srv.wait_event("config.reload", |_| true);
    let changes = e["changes"].as_array().expect("changes");
    assert!(changes.iter().any(|c| c["key"] == "site[1].max_message_size"), "{e}");
    assert_eq!(e["restart_needed"], serde_json::json!([]), "{e}");

    let after = send(&srv, port_b, &format!("z@{B_HOST}"), 5_000);
    assert_eq!(codes(&after), (250, 250, 250), "{after}");
    // The master site is untouched: still its own (larger) limit, and b's new one is not
    // a master value (12 000 bytes pass a, fail b).
    let a = send(&srv, srv.port, "z@localhost", 12_000);
    assert_eq!(codes(&a), (250, 250, 250), "{a}");
    let b = send(&srv, port_b, &format!("z@{B_HOST}"), 12_000);
    assert_eq!(code_text(&b["messages"][0]["mail"]).0, 552, "{b}");
}
