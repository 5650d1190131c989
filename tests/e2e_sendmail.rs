//! The client commands end to end: `mailroot send` (SMTP and Pickup), `mailroot inbox`
//! (`--json`, `--show`, `--delete`, newest first, filtered by address) and the sendmail
//! interface as cron, PHP's `mail()` and mail(1) call it: `mailroot sendmail -t -i` fed a
//! message on stdin, `-f` with recipients as arguments, the lone-dot rule with and without
//! `-i`, the `sendmail` name through a symlink (argv[0]), and sendmail's exit codes for a
//! bad address (65), no recipient (64), an unusable configuration (78) and an unwritable
//! Pickup folder (75).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, Conf, Server, assert_success, text, wait_until};
use mailroot::client::Inbox;
use serde_json::Value;

/// Bounded waits.
const WAIT: Duration = Duration::from_secs(30);
/// Poll interval.
const STEP: Duration = Duration::from_millis(50);

fn delivering_server() -> Server {
    Server::start(Conf { extra: "\n[delivery]\nretry = [\"1s\"]\n".into(), ..Conf::default() })
}

/// Run `program args` with `stdin` and extra environment.
fn run(program: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("RUST_LOG").env_remove("MAILROOT_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    // A refusal (bad option) may exit before reading stdin: EPIPE is then expected.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// `mailroot <args>` with `stdin`.
fn mailroot(args: &[&str], stdin: &[u8]) -> Output {
    run(Path::new(BIN), args, stdin, &[])
}

fn wait_inbox(srv: &Server, address: &str, n: usize) -> Inbox {
    let drop = srv.mailroot.join("Drop");
    wait_until(WAIT, STEP, || {
        let inbox = Inbox::read(&drop, address).ok()?;
        (inbox.len() >= n).then_some(inbox)
    })
    .unwrap_or_else(|| panic!("{address}: fewer than {n} messages; log:\n{}", srv.log_tail(40)))
}

fn json(out: &Output) -> Value {
    assert_success(out, "inbox --json");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn send_and_inbox_commands() {
    let srv = delivering_server();
    let cfg = srv.config_path.to_str().unwrap();
    let server = format!("127.0.0.1:{}", srv.port);
    let first = mailroot(
        &[
            "send",
            "-c",
            cfg,
            "--server",
            &server,
            "--from",
            "alice@localhost",
            "--name",
            "Alice",
            "--to",
            "bob@localhost",
            "--subject",
            "first",
        ],
        "one\nover SMTP\n".as_bytes(),
    );
    assert_success(&first, "send --server");
    assert!(text(&first.stdout).starts_with("250"), "{}", text(&first.stdout));
    wait_inbox(&srv, "bob@localhost", 1);

    let dir = tempfile::tempdir().unwrap();
    let att = dir.path().join("data.bin");
    std::fs::write(&att, [0u8, 1, 2, 255, 254, 13, 10, 46]).unwrap();
    let second = mailroot(
        &[
            "send",
            "-c",
            cfg,
            "--pickup",
            "--from",
            "carol@localhost",
            "--to",
            "bob@localhost",
            "--bcc",
            "dave@localhost",
            "--subject",
            "second",
            "--attach",
            att.to_str().unwrap(),
            "--importance",
            "high",
        ],
        "two\n".as_bytes(),
    );
    assert_success(&second, "send --pickup");
    wait_inbox(&srv, "bob@localhost", 2);
    wait_inbox(&srv, "dave@localhost", 1);

    // Newest first; only bob's messages; Bcc invisible.
    let all = json(&mailroot(&["inbox", "-c", cfg, "--address", "bob@localhost", "--json"], b""));
    let subjects: Vec<_> =
        all.as_array().unwrap().iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["second", "first"], "{all:#}");
    let newest = &all[0];
    assert_eq!(newest["index"], 1);
    assert_eq!(newest["from"]["address"], "carol@localhost");
    assert_eq!(newest["text"], "two\r\n");
    assert_eq!(newest["attachments"][0]["name"], "data.bin");
    assert_eq!(newest["attachments"][0]["size"], 8);
    assert!(newest["time_sent"].as_str().unwrap().ends_with('Z'), "{newest}");
    assert_eq!(newest["to"][0]["address"], "bob@localhost");
    assert!(!newest.to_string().contains("dave"), "{newest}");
    assert_eq!(all[1]["from"]["name"], "Alice");
    assert_eq!(all[1]["text"], "one\r\nover SMTP\r\n");
    let none =
        json(&mailroot(&["inbox", "-c", cfg, "--address", "nobody@localhost", "--json"], b""));
    assert_eq!(none, Value::Array(vec![]));

    let shown = mailroot(&["inbox", "-c", cfg, "--address", "bob@localhost", "--show", "2"], b"");
    assert_success(&shown, "inbox --show");
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("From: Alice <alice@localhost>\n") && shown.contains("Subject: first\n"),
        "{shown}"
    );
    let table = text(&mailroot(&["inbox", "-c", cfg, "--address", "bob@localhost"], b"").stdout);
    assert!(
        table.starts_with("2 message(s)\n") && table.contains("second  [1 attachment(s)]"),
        "{table}"
    );

    // Delete the older one; the newer stays.
    let del = mailroot(&["inbox", "-c", cfg, "--address", "bob@localhost", "--delete", "2"], b"");
    assert_success(&del, "inbox --delete");
    let left = json(&mailroot(&["inbox", "-c", cfg, "--address", "bob@localhost", "--json"], b""));
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["subject"], "second");
    let bad = mailroot(&["inbox", "-c", cfg, "--address", "bob@localhost", "--delete", "5"], b"");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    // Usage errors: exit 2.
    let bad =
        mailroot(&["send", "-c", cfg, "--from", "not an address", "--to", "b@localhost"], b"x");
    assert_eq!(bad.status.code(), Some(2));
}

/// PHP's `mail()` runs `sendmail -t -i` and writes the message to stdin: recipients from
/// the headers (Bcc too, then removed), a lone `.` line is just text.
#[test]
fn sendmail_t_i_like_php_mail() {
    let srv = delivering_server();
    let cfg = srv.config_path.to_str().unwrap();
    let msg = b"To: Bob <bob@localhost>\nCc: carol@localhost\nBcc: dave@localhost\n\
                Subject: from PHP\n\nline one\n.\nline after the dot\n";
    // The message comes from a file, as `sendmail -t -i < message.txt`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.txt");
    std::fs::write(&file, msg).unwrap();
    let out = Command::new(BIN)
        .args(["sendmail", "-C", cfg, "-t", "-i"])
        .env_remove("RUST_LOG")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert_success(&out, "sendmail -t -i < file");
    for who in ["bob@localhost", "carol@localhost", "dave@localhost"] {
        wait_inbox(&srv, who, 1);
    }
    let inbox = wait_inbox(&srv, "bob@localhost", 1);
    let m = inbox.first().unwrap();
    assert_eq!(m.subject(), Some("from PHP"));
    assert_eq!(m.text(), Some("line one\r\n.\r\nline after the dot\r\n"));
    let raw = String::from_utf8(std::fs::read(m.path()).unwrap()).unwrap();
    let content = raw.split_once("Received:").unwrap().1;
    assert!(!content.contains("dave") && !content.contains("Bcc"), "{raw}");
    assert!(content.contains("\r\nDate: ") && content.contains("\r\nMessage-ID: <"), "{raw}");
}

/// cron and mail(1): recipients as arguments, `-f` the envelope sender; without `-i` a
/// lone `.` ends the message; the `sendmail` name through a symlink (argv[0]) with the
/// configuration from `MAILROOT_CONFIG`.
#[test]
fn sendmail_f_recipients_and_the_argv0_symlink() {
    let srv = delivering_server();
    let cfg = srv.config_path.to_str().unwrap();
    let out = mailroot(
        &["sendmail", "-C", cfg, "-f", "cron@example.com", "-FCronDaemon", "-oem", "bob"],
        b"Subject: cron job\n\nbefore the dot\n.\nnot sent\n",
    );
    assert_success(&out, "sendmail -f rcpt");
    let inbox = wait_inbox(&srv, "bob@localhost", 1);
    let m = inbox.first().unwrap();
    assert_eq!(m.envelope_sender(), "cron@example.com");
    assert_eq!(m.text(), Some("before the dot\r\n"));
    assert_eq!(m.sender().map(|p| p.name.as_str()), Some("CronDaemon"));

    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = run(
        &link,
        &["-oi", "carol@localhost"],
        b"Subject: via the symlink\n\nhello from mail(1)\n",
        &[("MAILROOT_CONFIG", srv.config_path.as_path())],
    );
    assert_success(&out, "sendmail via symlink");
    let m = wait_inbox(&srv, "carol@localhost", 1);
    assert_eq!(m.first().unwrap().subject(), Some("via the symlink"));
}

/// sysexits: 65 bad address, 64 no recipient or bad option, 78 unusable configuration,
/// 75 Pickup folder not writable (nothing written anywhere).
#[test]
fn sendmail_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mailroot");
    std::fs::create_dir_all(root.join("Pickup")).unwrap();
    let cfg = dir.path().join("ok.toml");
    std::fs::write(&cfg, format!("mailroot = {:?}\n", root.display().to_string())).unwrap();
    let cfg = cfg.to_str().unwrap();
    let cases: &[(&[&str], &[u8], i32)] = &[
        (&["-C", cfg, "bad@@address"], b"x\n", 65),
        (&["-C", cfg, "-t"], b"To: not an address@@x\n\nx\n", 65),
        (&["-C", cfg], b"Subject: nobody\n\nx\n", 64),
        (&["-C", cfg, "-t"], b"Subject: nobody\n\nx\n", 64),
        (&["-C", cfg, "-bs"], b"", 64),
        (&["-C", "/nonexistent/mailroot.toml", "a@localhost"], b"x\n", 78),
    ];
    for (args, input, code) in cases {
        let mut argv = vec!["sendmail"];
        argv.extend_from_slice(args);
        let out = mailroot(&argv, input);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).starts_with("sendmail: ") || *code == 78,
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(root.join("Pickup")).unwrap().count(), 0);
    // A Pickup "folder" that is a file (root may write anywhere, so not a mode bit).
    let bad_root = dir.path().join("broken");
    std::fs::create_dir_all(&bad_root).unwrap();
    std::fs::write(bad_root.join("Pickup"), b"not a folder").unwrap();
    let bad_cfg = dir.path().join("bad.toml");
    std::fs::write(&bad_cfg, format!("mailroot = {:?}\n", bad_root.display().to_string())).unwrap();
    let out = mailroot(&["sendmail", "-C", bad_cfg.to_str().unwrap(), "a@localhost"], b"x\n");
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Pickup"), "{}", text(&out.stderr));
}
