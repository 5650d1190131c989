//! The client library (`mailroot::client`) end to end against the real binary: send over
//! SMTP (plaintext, and STARTTLS + AUTH with an rcgen certificate) and through the Pickup
//! folder, let the server deliver into Drop/, read it back with the Inbox; Python's
//! `email` package (a MIME reader nobody here wrote) checks what the library built; the
//! two examples (the IIS release notes' samples) are built and run.
//!
//! Cases: subject, UTF-8 text, HTML, three attachments (binary bytes identical), Cc and Bcc
//! (Bcc delivered, in no header); the same over Pickup; STARTTLS with AUTH (our
//! `Received:` says ESMTPSA) and a wrong password refused; send_mail then read_mail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Conf, Rng, Server, run_py, wait_until};
use mailroot::client::{
    Importance, Inbox, Kind, SendError, Session, SmtpServer, Source, Transport,
};
use serde_json::Value;

/// Bounded waits.
const WAIT: Duration = Duration::from_secs(30);
/// Poll interval.
const STEP: Duration = Duration::from_millis(50);

/// A server that delivers local mail (`localhost`) into Drop/ (not held).
fn delivering_server(extra: &str, relay_allow: Vec<String>) -> Server {
    Server::start(Conf {
        extra: format!("\n[delivery]\nretry = [\"1s\"]\n{extra}"),
        relay_allow,
        ..Conf::default()
    })
}

/// Wait until `address` has `n` messages in `drop`.
fn wait_inbox(srv: &Server, address: &str, n: usize) -> Inbox {
    let drop = srv.mailroot.join("Drop");
    wait_until(WAIT, STEP, || {
        let inbox = Inbox::read(&drop, address).ok()?;
        (inbox.len() >= n).then_some(inbox)
    })
    .unwrap_or_else(|| {
        panic!("{address}: fewer than {n} messages in Drop; log:\n{}", srv.log_tail(40))
    })
}

/// The bytes after the `x-sender:`/`x-receiver:` lines of a Drop file.
fn content_of(drop_file: &Path) -> String {
    let raw = String::from_utf8(std::fs::read(drop_file).unwrap()).unwrap();
    raw.split_inclusive("\r\n")
        .skip_while(|l| l.starts_with("x-sender:") || l.starts_with("x-receiver:"))
        .collect()
}

/// Three attachments: random binary bytes, a file, a small text.
struct Files {
    dir: tempfile::TempDir,
    binary: Vec<u8>,
    png: Vec<u8>,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let binary = Rng(0x5eed).bytes(3000);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(Rng(7).bytes(1000));
        std::fs::write(dir.path().join("photo.png"), &png).unwrap();
        Files { dir, binary, png }
    }

    fn png_path(&self) -> PathBuf {
        self.dir.path().join("photo.png")
    }
}

const TEXT: &str = "Hällo Bob,\r\nUTF-8 text: ✓ ünïcødé\r\n";
const HTML: &str = "<p>Hällo <b>Bob</b> ✓</p>";

/// Build the full message of the round-trip tests and send it.
fn send_full(session: &Session, files: &Files) -> Result<mailroot::client::SendReport, SendError> {
    let mut m = session.outbox().add("Grüße from the Outbox", TEXT, Importance::High);
    m.set_html(HTML);
    m.recipients_mut().add("Bob Example", "bob@localhost", Kind::To).unwrap();
    m.recipients_mut().add("Carol", "carol@localhost", Kind::Cc).unwrap();
    m.recipients_mut().add("Dave Hidden", "dave@localhost", Kind::Bcc).unwrap();
    let a = m.attachments_mut();
    a.add_bytes("random.bin", "", files.binary.clone()).unwrap();
    a.add_file(files.png_path()).unwrap();
    a.add_bytes("notes.txt", "text/plain", b"plain notes\r\n".to_vec()).unwrap();
    // The release notes' known issues: read any number of times, source and name readable.
    for _ in 0..2 {
        let png = m.attachments().iter().nth(1).unwrap();
        assert_eq!(png.name(), "photo.png");
        assert_eq!(png.source(), &Source::File(files.png_path()));
        assert_eq!(png.bytes(), files.png);
        assert_eq!(png.content_type(), "image/png");
    }
    m.send()
}

/// Everything `send_full` sent, read back for bob, carol and dave; and Python's view.
fn check_full(srv: &Server, files: &Files) {
    let inbox = wait_inbox(srv, "bob@localhost", 1);
    assert_eq!(inbox.len(), 1);
    assert!(inbox.skipped().is_empty(), "{:?}", inbox.skipped());
    let m = inbox.first().unwrap();
    assert_eq!(m.subject(), Some("Grüße from the Outbox"));
    assert_eq!(m.text().map(|t| t.replace("\r\n", "\n")), Some(TEXT.replace("\r\n", "\n")));
    assert_eq!(m.html(), Some(HTML));
    let sender = m.sender().unwrap();
    assert_eq!(
        (sender.name.as_str(), sender.address.as_str()),
        ("Alice Sender", "alice@localhost")
    );
    let to: Vec<_> = m.to().iter().map(|p| p.address.as_str()).collect();
    let cc: Vec<_> = m.cc().iter().map(|p| p.address.as_str()).collect();
    assert_eq!((to, cc), (vec!["bob@localhost"], vec!["carol@localhost"]));
    assert!(m.recipients().all(|p| p.address != "dave@localhost"));
    assert!(m.time_sent().is_some() && m.time_received().is_some());
    let att: Vec<_> =
        m.attachments().iter().map(|a| (a.name.as_str(), a.content_type.as_str())).collect();
    assert_eq!(
        att,
        [
            ("random.bin", "application/octet-stream"),
            ("photo.png", "image/png"),
            ("notes.txt", "text/plain")
        ]
    );
    assert_eq!(m.attachments()[0].bytes, files.binary, "binary attachment changed");
    assert_eq!(m.attachments()[1].bytes, files.png, "file attachment changed");
    assert_eq!(m.attachments()[2].bytes, b"plain notes\r\n");
    // One Drop file for the three local recipients; Bcc is delivered but in no header.
    assert_eq!(m.receivers(), ["bob@localhost", "carol@localhost", "dave@localhost"]);
    for who in ["carol@localhost", "dave@localhost"] {
        assert_eq!(wait_inbox(srv, who, 1).len(), 1, "{who}");
    }
    let content = content_of(m.path());
    assert!(!content.contains("dave@localhost") && !content.contains("Dave Hidden"), "{content}");
    assert!(!content.to_ascii_lowercase().contains("\nbcc:"), "{content}");
    assert!(content.contains("\r\nImportance: high\r\n") && content.contains("\r\nX-Priority: 1"));

    // Python's email package reads the same message the same way, without defects.
    let py = run_py("parse_mime.py", &[m.path().display().to_string()]);
    assert_eq!(py["defects"], Value::Array(vec![]), "{py}");
    assert_eq!(py["subject"], "Grüße from the Outbox");
    assert_eq!(py["from"], "Alice Sender <alice@localhost>");
    assert_eq!(py["bcc"], false);
    assert!(!py["header_names"].as_array().unwrap().iter().any(|h| h == "bcc"), "{py}");
    assert_eq!(py["importance"], "high");
    assert_eq!(
        py["text"].as_str().map(|t| t.replace("\r\n", "\n")),
        Some(TEXT.replace("\r\n", "\n"))
    );
    assert_eq!(py["html"].as_str().map(str::trim_end), Some(HTML));
    let atts = py["attachments"].as_array().unwrap();
    let names: Vec<_> = atts.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["random.bin", "photo.png", "notes.txt"]);
    assert_eq!(atts[0]["hex"].as_str().unwrap(), hex(&files.binary));
    assert_eq!(atts[1]["hex"].as_str().unwrap(), hex(&files.png));
    assert_eq!(atts[1]["type"], "image/png");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn library_over_smtp_round_trip() {
    let srv = delivering_server("", vec!["127.0.0.0/8".into()]);
    let files = Files::new();
    let session = Session::logon(
        "Alice Sender",
        "alice@localhost",
        Transport::Smtp(SmtpServer::new("127.0.0.1", srv.port)),
    )
    .unwrap();
    let report = send_full(&session, &files).unwrap();
    assert_eq!(report.accepted, ["bob@localhost", "carol@localhost", "dave@localhost"]);
    assert!(report.reply.as_deref().unwrap_or("").starts_with("250"), "{report:?}");
    check_full(&srv, &files);
    // A refused recipient is an error naming it (relay to a remote domain is denied).
    let srv2 = delivering_server("", vec!["10.255.255.0/24".into()]);
    let s2 = Session::logon(
        "",
        "alice@localhost",
        Transport::Smtp(SmtpServer::new("127.0.0.1", srv2.port)),
    )
    .unwrap();
    let mut m = s2.outbox().add("x", "y", Importance::Normal);
    m.recipients_mut().add("", "someone@remote.example", Kind::To).unwrap();
    match m.send() {
        Err(SendError::Rejected { refused, accepted }) => {
            assert!(accepted.is_empty());
            assert_eq!(refused[0].0, "someone@remote.example");
            assert!(refused[0].1.starts_with('5'), "{refused:?}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn library_through_the_pickup_folder_round_trip() {
    let srv = delivering_server("", vec!["127.0.0.0/8".into()]);
    let files = Files::new();
    let session =
        Session::logon_mailroot("Alice Sender", "alice@localhost", &srv.mailroot).unwrap();
    let report = send_full(&session, &files).unwrap();
    let file = report.file.expect("pickup file");
    assert!(file.starts_with(srv.mailroot.join("Pickup")), "{}", file.display());
    check_full(&srv, &files);
    assert!(!file.exists(), "the server took the Pickup file");
    // The Inbox of the session itself (alice) is empty: she sent, she did not receive.
    assert_eq!(session.inbox().unwrap().len(), 0);
}

/// A test CA and a `localhost` leaf (rcgen), as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "mailroot client test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let issuer = rcgen::Issuer::new(p, ca_key);
        let mut l = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        l.distinguished_name.push(DnType::CommonName, "localhost");
        l.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let leaf = l.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("chain.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tls_table(&self) -> String {
        format!(
            "\n[tls]\ncert = {:?}\nkey = {:?}\n",
            self.path("chain.pem").display().to_string(),
            self.path("key.pem").display().to_string()
        )
    }
}

#[test]
fn library_over_starttls_with_auth() {
    let pki = Pki::new();
    let (code, hash, err) = common::hash_password("client pass\n");
    assert_eq!(code, 0, "hash-password: {err}");
    let user = format!("\n[[user]]\nname = \"alice\"\npassword_hash = \"{}\"\n", hash.trim());
    let srv = delivering_server(&(pki.tls_table() + &user), vec!["10.255.255.0/24".into()]);
    let server = SmtpServer::new("localhost", srv.port)
        .starttls(Some(&pki.path("ca.pem")))
        .auth("alice", "client pass");
    let session = Session::logon("Alice", "alice@localhost", Transport::Smtp(server)).unwrap();
    let mut m = session.outbox().add("over TLS", "secret text\r\n", Importance::Low);
    m.recipients_mut().add("Bob", "bob@localhost", Kind::To).unwrap();
    m.send().unwrap();
    let inbox = wait_inbox(&srv, "bob@localhost", 1);
    let content = content_of(inbox.first().unwrap().path());
    assert!(content.contains("with ESMTPSA (TLSv1."), "{content}");
    assert!(content.contains("Importance: low\r\nX-Priority: 5 (Lowest)"), "{content}");

    // The same through `mailroot send --starttls --user` (password from a file).
    let pw = pki.path("password");
    std::fs::write(&pw, "client pass\n").unwrap();
    let mut child = Command::new(common::BIN)
        .args(["send", "--server", &format!("localhost:{}", srv.port), "--starttls", "--ca-file"])
        .arg(pki.path("ca.pem"))
        .args(["--user", "alice", "--password-file"])
        .arg(&pw)
        .args(["--from", "alice@localhost", "--to", "bob@localhost", "--subject", "cli over TLS"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"from the command\n").unwrap();
    let out = child.wait_with_output().unwrap();
    common::assert_success(&out, "mailroot send --starttls --user");
    let inbox = wait_inbox(&srv, "bob@localhost", 2);
    assert_eq!(inbox.first().unwrap().subject(), Some("cli over TLS"));
    assert!(content_of(inbox.first().unwrap().path()).contains("with ESMTPSA (TLSv1."));

    // A wrong password: refused, nothing sent.
    let bad = SmtpServer::new("localhost", srv.port)
        .starttls(Some(&pki.path("ca.pem")))
        .auth("alice", "wrong");
    let session = Session::logon("", "alice@localhost", Transport::Smtp(bad)).unwrap();
    let mut m = session.outbox().add("x", "y", Importance::Normal);
    m.recipients_mut().add("", "bob@localhost", Kind::To).unwrap();
    let e = m.send().unwrap_err();
    assert!(matches!(e, SendError::Security(_)), "{e:?}");
    assert!(e.to_string().contains("535"), "{e}");
    // Without the private CA the certificate is not trusted: the handshake fails.
    let untrusted = SmtpServer::new("localhost", srv.port).starttls(None);
    let session = Session::logon("", "alice@localhost", Transport::Smtp(untrusted)).unwrap();
    let mut m = session.outbox().add("x", "y", Importance::Normal);
    m.recipients_mut().add("", "bob@localhost", Kind::To).unwrap();
    let e = m.send().unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(Inbox::read(&srv.mailroot.join("Drop"), "bob@localhost").unwrap().len(), 2);
}

/// An example binary, built now with the cargo running the tests (a no-op when it is up
/// to date; `cargo test --test e2e_client` alone does not build examples), beside the
/// `mailroot` binary under test.
fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--example", "send_mail", "--example", "read_mail"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
        common::assert_success(&out, "cargo build --examples");
    });
    let path = Path::new(common::BIN).parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} not built", path.display());
    path
}

#[test]
fn examples_send_then_read() {
    let srv = delivering_server("", vec!["127.0.0.0/8".into()]);
    let empty = Command::new(example("read_mail"))
        .arg(&srv.mailroot)
        .arg("eve@localhost")
        .output()
        .unwrap();
    common::assert_success(&empty, "read_mail (empty)");
    assert_eq!(String::from_utf8_lossy(&empty.stdout), "Count: 0\n");
    // Over SMTP, then through Pickup (a directory argument).
    let target = format!("127.0.0.1:{}", srv.port);
    for (i, t) in [target.as_str(), srv.mailroot.to_str().unwrap()].into_iter().enumerate() {
        let out =
            Command::new(example("send_mail")).arg(t).arg("someone@localhost").output().unwrap();
        common::assert_success(&out, "send_mail");
        wait_inbox(&srv, "someone@localhost", i + 1);
    }
    let out = Command::new(example("read_mail"))
        .arg(&srv.mailroot)
        .arg("someone@localhost")
        .output()
        .unwrap();
    common::assert_success(&out, "read_mail");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Count: 2\nSubject: Subject\nSender: Friendly Name\nText: Message Text\n"
    );
}
