//! The web admin page in a real headless browser: Debian's `chromium` and
//! `chromium-driver` driven by Python `selenium` (`tests/py/admin_page.py`), against the
//! real binary. `.ci/run` installs the three when missing; if they truly cannot be found
//! the test says so and skips.
//!
//! The server relays through a smart host on a dead port (mail stays queued, deferred)
//! and treats `home.test` as local (NDRs land in Drop/). The script loads the page, sees
//! the received counter move after an smtplib message, pauses the site (shown paused, a
//! new connection gets 421) and resumes it, stops it (a new connection is refused) and
//! starts it again, holds then deletes a message, bounces one (a real NDR in
//! Drop/), checks that a hostile envelope is shown as text, that the config shows the
//! token masked, and saves a screenshot as `<target>/admin-page.png`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The admin token of the test.
const TOKEN: &str = "page-t0ken-e2e";

/// A Python interpreter that can import selenium (`python3` may be a pyenv build that
/// does not see Debian's `python3-selenium`, so the system one is tried too).
fn selenium_python() -> Option<String> {
    ["python3", "/usr/bin/python3"].into_iter().map(str::to_owned).find(|py| {
        Command::new(py).args(["-c", "import selenium"]).output().is_ok_and(|o| o.status.success())
    })
}

/// The first of `paths` that exists.
fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Where the screenshot goes: the cargo target directory (`target/` by default).
fn screenshot_path() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("admin-page.png")
}

#[test]
fn admin_page_in_a_real_browser() {
    let (Some(python), Some(chromium), Some(driver)) = (
        selenium_python(),
        first_existing(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
        first_existing(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]),
    ) else {
        eprintln!(
            "SKIPPED admin_page_in_a_real_browser: needs chromium, chromium-driver and python3 \
             selenium (apt-get install chromium chromium-driver python3-selenium; .ci/run does)"
        );
        return;
    };
    let dead = free_port();
    let srv = Server::start(Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{dead}\""),
        extra: "\n[delivery]\nretry = [\"1h\"]\nconnect_timeout = \"2s\"\n\
                [dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n"
            .into(),
        local_domains: vec!["localhost".into(), "home.test".into()],
        admin_extra: format!("token = \"{TOKEN}\""),
        ..Conf::default()
    });
    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let out = Command::new(&python)
        .arg(py_script("admin_page.py"))
        .args(["--url", &format!("http://127.0.0.1:{}/", srv.admin_port)])
        .args(["--smtp-port", &srv.port.to_string()])
        .args(["--token", TOKEN])
        .arg("--drop-dir")
        .arg(srv.mailroot.join("Drop"))
        .arg("--screenshot")
        .arg(&shot)
        .arg("--chromium")
        .arg(&chromium)
        .arg("--chromedriver")
        .arg(&driver)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "admin_page.py failed: {}\nstdout: {}\nstderr: {}\n--- server log ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr),
        srv.log_tail(6000)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", text(&out.stdout)));

    // What the browser did, checked again from the outside.
    let before = seen["received_before"].as_u64().unwrap_or(u64::MAX);
    let after = seen["received_after"].as_u64().unwrap_or(0);
    assert!(after > before, "{seen}");
    let deleted = seen["deleted"].as_str().unwrap_or_else(|| panic!("{seen}"));
    let bounced = seen["bounced"].as_str().unwrap_or_else(|| panic!("{seen}"));
    let queued: Vec<String> =
        srv.queue_list().iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect();
    assert!(!queued.iter().any(|q| q == deleted || q == bounced), "{queued:?}");
    assert_eq!(queued.len(), 1, "only the hostile message is left: {queued:?}");
    let ndr = std::fs::read_to_string(seen["ndr_file"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("NDR file: {e}"));
    assert!(ndr.contains("Final-Recipient: rfc822; gone@dead-two.test"), "{ndr}");
    assert!(ndr.contains("Status: 5.0.0"), "{ndr}");
    let events =
        std::fs::read_to_string(srv.mailroot.join("Logs").join("events.log")).unwrap_or_default();
    for (event, id) in
        [("queue.hold", deleted), ("queue.delete", deleted), ("queue.bounce", bounced)]
    {
        assert!(
            events.lines().any(|l| l.contains(&format!("\"event\":\"{event}\""))
                && l.contains(id)
                && l.contains("\"by\":\"admin-api\"")),
            "no {event} for {id} in the event log:\n{events}"
        );
    }
    // Pause from the page: the site was shown paused, a new connection got 421, and the
    // event log has the pause and the resume, by the admin API.
    assert_eq!(seen["site_paused"], "default", "{seen}");
    assert_eq!(seen["site_resumed"], "default", "{seen}");
    assert_eq!(seen["paused_greeting"], 421, "{seen}");
    // Stop and start from the page: refused while stopped, greeting again after.
    assert_eq!(seen["stopped_connect"], "refused", "{seen}");
    assert_eq!(
        (seen["site_started"].as_str(), seen["started_noop"].as_u64()),
        (Some("default"), Some(250)),
        "{seen}"
    );
    for event in ["site.pause", "site.resume", "site.stopped", "site.started"] {
        assert!(
            events.lines().any(|l| l.contains(&format!("\"event\":\"{event}\""))
                && l.contains("\"by\":\"admin-api\"")),
            "no {event} in the event log:\n{events}"
        );
    }
    let mut c = Raw::connect(srv.addr()).expect("connect after resume");
    assert_eq!(c.read_reply().map(|r| r.code), Some(220), "resumed site greets again");
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "not a screenshot");
    eprintln!("screenshot: {}", shot.display());
}
