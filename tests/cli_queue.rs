//! `mailroot queue list` run as a real process over a spool written with the spool API.

mod common_cli;

use std::path::Path;

use mailroot::spool::{Envelope, EnvelopeRecipient, RcptStatus, Spool, SpoolOptions};

use common_cli::mailroot;

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
