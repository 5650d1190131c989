//! The Pickup folder, end to end: files dropped into `Mailroot/Pickup/` of the REAL binary
//! are queued with the right envelope and content and removed; garbage ends in `Badmail/`.
//!
//! Recipients are in `.example` domains (never local, never reachable), so the messages
//! stay in the queue where `mailroot queue list --json` can see them. Every wait is bounded.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Generous bound for the watcher to notice a file (inotify is immediate; the rescan runs
/// every 5 s; CI machines are slow).
const PICKUP_WAIT: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_millis(50);

/// Drop `bytes` into `dir` the careful way: write a dot-file, then rename it in.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let tmp = dir.join(format!(".writing-{name}"));
    fs::write(&tmp, bytes).expect("write pickup temp file");
    let path = dir.join(name);
    fs::rename(&tmp, &path).expect("rename into Pickup");
    path
}

/// Wait until the file is gone and `n` messages are queued; return the queue listing.
fn wait_queued(s: &Server, file: &Path, n: usize) -> Vec<Value> {
    wait_until(PICKUP_WAIT, STEP, || {
        if file.exists() {
            return None;
        }
        let q = s.queue_list();
        (q.len() >= n).then_some(q)
    })
    .unwrap_or_else(|| {
        panic!(
            "{} not picked up (exists: {}); queue: {:?}\n{}",
            file.display(),
            file.exists(),
            s.queue_list(),
            s.log_tail(4000)
        )
    })
}

/// Recipient addresses of one `queue list --json` entry.
fn recipients_of(m: &Value) -> Vec<String> {
    m["recipients"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["address"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The only stored message, after stopping the server (SIGTERM: it must exit 0 with the
/// pickup thread running).
fn only_stored(s: &mut Server) -> (mailroot::spool::QueuedMessage, Vec<u8>) {
    let status = s.terminate().expect("server was running and exited");
    assert!(status.success(), "exit status after SIGTERM: {status}\n{}", s.log_tail(4000));
    let mut all = read_spool(&s.queue_dir());
    assert_eq!(all.len(), 1, "exactly one message queued");
    all.remove(0)
}

#[test]
fn x_sender_file_is_queued_with_its_envelope_and_removed() {
    let mut s = Server::start(Conf::default());
    let content = b"Subject: iis style\r\nFrom: someone@else.example\r\n\r\nHello.\r\n";
    let mut file = b"x-sender: alice@a.example\r\nx-receiver: bob@b.example\r\n\
                     x-receiver: carol@c.example\r\n"
        .to_vec();
    file.extend_from_slice(content);
    let path = drop_file(&s.mailroot.join("Pickup"), "iis.eml", &file);
    let q = wait_queued(&s, &path, 1);
    assert_eq!(q.len(), 1);
    assert_eq!(sender_of(&q[0]).as_deref(), Some("alice@a.example"));
    assert_eq!(recipients_of(&q[0]), ["bob@b.example", "carol@c.example"]);

    let (msg, stored) = only_stored(&mut s);
    assert_eq!(msg.envelope.site, "pickup");
    assert_eq!(msg.envelope.client_addr, "pickup");
    assert_stored_exactly(&stored, content);
    let (received, _) = split_received(&stored);
    let received = String::from_utf8_lossy(received);
    assert!(received.contains(&s.hostname), "{received}");
    assert!(received.contains(&msg.id.to_string()), "{received}");
}

#[test]
fn header_only_file_gets_envelope_from_from_to_cc_bcc_and_loses_bcc() {
    let mut s = Server::start(Conf::default());
    // Bare LF line ends, as a Unix script writes them; folded Cc with a group and comments.
    let file = "From: \"Alice A.\" <alice@a.example>\n\
                To: Bob <bob@b.example>, carol@c.example (Carol)\n\
                Cc: team: dave@d.example,\n  Eve <eve@e.example>;\n\
                Bcc: secret@s.example\n\
                Subject: header envelope\n\
                \n\
                Body line.\n";
    let path = drop_file(&s.mailroot.join("Pickup"), "headers.eml", file.as_bytes());
    let q = wait_queued(&s, &path, 1);
    assert_eq!(sender_of(&q[0]).as_deref(), Some("alice@a.example"));
    assert_eq!(
        recipients_of(&q[0]),
        ["bob@b.example", "carol@c.example", "dave@d.example", "eve@e.example", "secret@s.example"]
    );
    let (_, stored) = only_stored(&mut s);
    let want = "From: \"Alice A.\" <alice@a.example>\r\n\
                To: Bob <bob@b.example>, carol@c.example (Carol)\r\n\
                Cc: team: dave@d.example,\r\n  Eve <eve@e.example>;\r\n\
                Subject: header envelope\r\n\
                \r\n\
                Body line.\r\n";
    assert_stored_exactly(&stored, want.as_bytes());
    let text = String::from_utf8_lossy(&stored).to_ascii_lowercase();
    assert!(!text.contains("bcc:") && !text.contains("secret@"), "{text}");
    assert!(!text.contains("x-sender") && !text.contains("x-receiver"), "{text}");
}

#[test]
fn dotnet_smtpclient_file_works_as_is() {
    let mut s = Server::start(Conf::default());
    // What System.Net.Mail.SmtpClient writes with SpecifiedPickupDirectory (the Bcc
    // recipient appears only as an X-Receiver line).
    let message = "MIME-Version: 1.0\r\n\
                   From: app@a.example\r\n\
                   To: user@b.example\r\n\
                   Date: 28 Nov 2026 15:40:02 +0000\r\n\
                   Subject: Report\r\n\
                   Content-Type: text/plain; charset=us-ascii\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\
                   \r\n\
                   Nightly report=20attached.\r\n";
    let file = format!(
        "X-Sender: app@a.example\r\nX-Receiver: user@b.example\r\n\
         X-Receiver: audit@c.example\r\n{message}"
    );
    let path = drop_file(&s.mailroot.join("Pickup"), "dotnet.eml", file.as_bytes());
    let q = wait_queued(&s, &path, 1);
    assert_eq!(sender_of(&q[0]).as_deref(), Some("app@a.example"));
    assert_eq!(recipients_of(&q[0]), ["user@b.example", "audit@c.example"]);
    let (_, stored) = only_stored(&mut s);
    assert_stored_exactly(&stored, message.as_bytes());
}

#[test]
fn malformed_file_goes_to_badmail_and_leaves_pickup() {
    let s = Server::start(Conf::default());
    let pickup = s.mailroot.join("Pickup");
    let badmail = s.mailroot.join("Badmail");
    let cases: &[(&str, &[u8], &str)] = &[
        ("norcpt.eml", b"From: a@a.example\r\nSubject: nobody\r\n\r\nx\r\n", "no recipients"),
        ("binary.dat", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "NUL byte"),
        ("prose.txt", b"Dear Bob,\r\n\r\nthis is not a message.\r\n", "not a header field"),
    ];
    for (name, bytes, _) in cases {
        // Written in place (no rename): IN_CLOSE_WRITE.
        fs::write(pickup.join(name), bytes).expect("write pickup file");
    }
    for (name, bytes, reason) in cases {
        let bad = badmail.join(format!("{name}.BAD"));
        let bdr = badmail.join(format!("{name}.BDR"));
        let done = wait_until(PICKUP_WAIT, STEP, || {
            (bad.exists() && bdr.exists() && !pickup.join(name).exists()).then_some(())
        });
        assert!(done.is_some(), "{name} not moved to Badmail\n{}", s.log_tail(4000));
        assert_eq!(fs::read(&bad).expect("read .BAD"), *bytes, "{name}: .BAD is the file as is");
        let text = fs::read_to_string(&bdr).expect("read .BDR");
        assert!(text.contains("Reason: ") && text.contains(reason), "{name}: {text}");
        assert!(text.contains(&format!("Source: {name}")), "{name}: {text}");
    }
    assert!(s.queue_list().is_empty(), "nothing queued");
}

#[test]
fn files_present_at_start_are_picked_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailroot = dir.path().join("mailroot");
    let pickup = mailroot.join("Pickup");
    fs::create_dir_all(&pickup).expect("create Pickup");
    let mut paths = Vec::new();
    let mut senders = HashSet::new();
    for i in 0..3 {
        let sender = format!("early{i}@a.example");
        let file = format!(
            "x-sender: {sender}\r\nx-receiver: r{i}@b.example\r\nSubject: {i}\r\n\r\nbody {i}\r\n"
        );
        let p = pickup.join(format!("early{i}.eml"));
        fs::write(&p, file).expect("write");
        paths.push(p);
        senders.insert(sender);
    }
    let s = Server::start(Conf { mailroot: Some(mailroot), ..Conf::default() });
    let q = wait_until(PICKUP_WAIT, STEP, || {
        let q = s.queue_list();
        (q.len() == 3 && paths.iter().all(|p| !p.exists())).then_some(q)
    })
    .unwrap_or_else(|| panic!("files not picked up at start\n{}", s.log_tail(4000)));
    let got: HashSet<String> = q.iter().filter_map(sender_of).collect();
    assert_eq!(got, senders);
}
