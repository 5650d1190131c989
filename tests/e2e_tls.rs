//! Inbound TLS end to end, against the real binary, with TLS clients nobody here wrote:
//! Python's smtplib (`starttls()` and `SMTP_SSL`, OpenSSL underneath, `tests/py/
//! tls_client.py`), `openssl s_client -starttls smtp`, lettre (its rustls backend, the
//! test CA given through `TlsParameters`), and rustls as a plain TLS client
//! where the test must control the bytes (one write holding `STARTTLS\r\nRSET\r\n`, an
//! open session across a SIGHUP). Certificates are made here with rcgen: a test CA and a
//! `localhost` leaf, written to temporary PEM files the configuration names.
//!
//! Cases: STARTTLS then a message relayed to a sink with its bytes intact and
//! `with ESMTPS (TLSv1.3:...)` in our `Received:`; EHLO capabilities before and after TLS;
//! the implicit-TLS port (RFC 8314); `require_tls`; `STARTTLS\r\nRSET\r\n` in one write
//! (the RSET is never answered); a garbage ClientHello and a stalled handshake while
//! another client is served (the handshake timeout cuts it; counted); SIGHUP reload while
//! a TLS session is open (it keeps working, new handshakes get the new certificate, a bad
//! file is refused and the certificate kept); AUTH over STARTTLS (not offered before TLS,
//! login over TLS, authenticated relay, `ESMTPSA`, a wrong password 535); lettre over
//! STARTTLS (`Tls::Required`) and implicit TLS (`Tls::Wrapper`) with AUTH, relayed with
//! the bytes intact, and a lettre that does not trust the CA sending nothing.

mod common;
#[path = "common_sink/mod.rs"]
mod common_sink;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Conf, Server, code_text, free_port, run_py, send_signal, wait_until};
use common_sink::Sink;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

/// Bounded waits.
const WAIT: Duration = Duration::from_secs(30);
/// Poll interval.
const STEP: Duration = Duration::from_millis(50);

/// A test CA and a `localhost` leaf it signed, as PEM files in `dir`.
struct Pki {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    ca_issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let dir = tempfile::Builder::new().prefix("mailroot-tls-").tempdir().expect("tempdir");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "mailroot test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let ca = p.self_signed(&key).expect("CA");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        let ca_der = ca.der().clone();
        let ca_issuer = rcgen::Issuer::new(p, key);
        let pki = Pki { dir, ca_der, ca_issuer };
        pki.issue("leaf one");
        pki
    }

    /// Write a new `localhost` leaf (chain.pem, key.pem); returns its DER.
    fn issue(&self, cn: &str) -> CertificateDer<'static> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let leaf = p.signed_by(&key, &self.ca_issuer).expect("leaf");
        std::fs::write(self.path("chain.pem"), leaf.pem()).expect("write chain.pem");
        std::fs::write(self.path("key.pem"), key.serialize_pem()).expect("write key.pem");
        leaf.der().clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[tls]` table naming these files.
    fn tls_table(&self) -> String {
        format!(
            "\n[tls]\ncert = {:?}\nkey = {:?}\nhandshake_timeout = \"1s\"\n",
            self.path("chain.pem").display().to_string(),
            self.path("key.pem").display().to_string()
        )
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("CA");
        Arc::new(
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth(),
        )
    }
}

/// A server with TLS from `pki`, an implicit-TLS port, `site_extra` in its site.
fn tls_server(pki: &Pki, site_extra: &str, relay_extra: String, hold: bool) -> (Server, u16) {
    let implicit = free_port();
    let mut extra = pki.tls_table();
    extra += if hold { "\n[delivery]\nhold = true\n" } else { "\n[delivery]\nretry = [\"1s\"]\n" };
    let srv = Server::start(Conf {
        site_extra: format!("implicit_tls_listen = [\"127.0.0.1:{implicit}\"]\n{site_extra}"),
        relay_extra,
        extra,
        ..Conf::default()
    });
    (srv, implicit)
}

/// Run `tls_client.py` against `port`.
fn py(pki: &Pki, port: u16, mode: &str, more: &[String]) -> Value {
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--cafile".to_owned(),
        pki.path("ca.pem").display().to_string(),
        "--mode".to_owned(),
        mode.to_owned(),
    ];
    args.extend_from_slice(more);
    let out = run_py("tls_client.py", &args);
    assert!(out["error"].is_null(), "{out}");
    out
}

fn exts(v: &Value) -> Vec<String> {
    v.as_array().expect("list").iter().map(|e| e.as_str().unwrap_or("").to_owned()).collect()
}

/// A message through `tls_client.py`: the arguments for it.
fn message_args(dir: &Path, from: &str, to: &str, body: &[u8]) -> Vec<String> {
    let path = dir.join(format!("body-{}.eml", common::unique()));
    std::fs::write(&path, body).expect("write body");
    vec![
        "--from".into(),
        from.into(),
        "--to".into(),
        to.into(),
        "--body-file".into(),
        path.display().to_string(),
    ]
}

#[test]
fn python_starttls_relays_a_message_intact() {
    let pki = Pki::new();
    let sink = Sink::start("127.0.0.1");
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let (srv, _) = tls_server(&pki, "", relay, false);
    let body =
        b"Subject: over TLS\r\nX-Bytes: \xc3\xa9t\xc3\xa9\r\n\r\n.leading dot\r\nline two\r\n";
    let args = message_args(srv.dir.path(), "a@client.test", "rcpt@remote.test", body);
    let out = py(&pki, srv.port, "starttls", &args);
    let before = exts(&out["ehlo_before"]);
    let after = exts(&out["ehlo"]);
    assert!(before.contains(&"starttls".to_owned()), "{out}");
    assert!(!after.contains(&"starttls".to_owned()), "STARTTLS offered inside TLS: {out}");
    assert_eq!(code_text(&out["starttls"]), (220, "2.0.0 Ready to start TLS".into()), "{out}");
    assert_eq!(out["version"], "TLSv1.3", "{out}");
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    let got = wait_until(WAIT, STEP, || sink.received().into_iter().next())
        .unwrap_or_else(|| panic!("nothing relayed; log:\n{}", srv.log_tail(40)));
    assert!(got.data.ends_with(body), "bytes changed: {:?}", String::from_utf8_lossy(&got.data));
    let head = String::from_utf8_lossy(&got.data[..got.data.len() - body.len()]).into_owned();
    assert!(head.contains("with ESMTPS (TLSv1.3:TLS13_"), "{head}");
    assert_eq!(got.rcpts, vec!["rcpt@remote.test".to_owned()]);
}

/// The deployment shape of AUTH (RFC 4954 with RFC 3207): not offered in plaintext,
/// offered after STARTTLS; smtplib logs in over TLS and relays from an address that may
/// not relay on its own; our `Received:` says `ESMTPSA`.
#[test]
fn auth_over_starttls_relays_for_an_authenticated_client() {
    let pki = Pki::new();
    let sink = Sink::start("127.0.0.1");
    let (code, hash, err) = common::hash_password("tls pass\n");
    assert_eq!(code, 0, "hash-password: {err}");
    let hash = hash.trim().to_owned();
    let implicit = free_port();
    let mut extra = pki.tls_table();
    extra += "\n[delivery]\nretry = [\"1s\"]\n";
    extra += &format!("\n[[user]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n");
    let srv = Server::start(Conf {
        site_extra: format!("implicit_tls_listen = [\"127.0.0.1:{implicit}\"]\n"),
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port()),
        relay_allow: vec!["10.255.255.0/24".into()], // loopback may not relay on its own
        extra,
        ..Conf::default()
    });
    let body = b"Subject: authenticated over TLS\r\n\r\nhello\r\n";
    let mut args = message_args(srv.dir.path(), "alice@client.test", "rcpt@remote.test", body);
    args.extend(["--login".to_owned(), "alice:tls pass".to_owned()]);
    let out = py(&pki, srv.port, "starttls", &args);
    assert!(!exts(&out["ehlo_before"]).contains(&"auth".to_owned()), "AUTH in plaintext: {out}");
    assert!(exts(&out["ehlo"]).contains(&"auth".to_owned()), "no AUTH over TLS: {out}");
    assert_eq!(code_text(&out["login"]).0, 235, "{out}");
    assert_eq!(code_text(&out["rcpt"]).0, 250, "authenticated relay refused: {out}");
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    let got = wait_until(WAIT, STEP, || sink.received().into_iter().next())
        .unwrap_or_else(|| panic!("nothing relayed; log:\n{}", srv.log_tail(40)));
    let head = String::from_utf8_lossy(&got.data[..got.data.len() - body.len()]).into_owned();
    assert!(head.contains("with ESMTPSA (TLSv1.3:TLS13_"), "{head}");
    // The same client without AUTH may not relay.
    let args = message_args(srv.dir.path(), "bob@client.test", "rcpt@remote.test", body);
    let out = py(&pki, srv.port, "starttls", &args);
    assert_eq!(code_text(&out["rcpt"]).0, 554, "unauthenticated relay allowed: {out}");
    // A wrong password over TLS: 535.
    let mut args = message_args(srv.dir.path(), "eve@client.test", "rcpt@remote.test", body);
    args.extend(["--login".to_owned(), "alice:wrong".to_owned()]);
    let out = py(&pki, srv.port, "starttls", &args);
    assert_eq!(code_text(&out["login"]).0, 535, "{out}");
}

#[test]
fn python_smtps_on_the_implicit_tls_port() {
    let pki = Pki::new();
    let (srv, implicit) = tls_server(&pki, "", String::new(), true);
    let args = message_args(
        srv.dir.path(),
        "smtps@client.test",
        "user@localhost",
        b"Subject: x\r\n\r\nhi\r\n",
    );
    let out = py(&pki, implicit, "smtps", &args);
    assert_eq!(code_text(&out["connect"]).0, 220, "{out}");
    assert!(!exts(&out["ehlo"]).contains(&"starttls".to_owned()), "{out}");
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
    assert_eq!(code_text(&out["quit"]).0, 221, "{out}");
    assert!(srv.queued_senders().contains(&"smtps@client.test".to_owned()));
}

#[test]
fn require_tls_refuses_mail_before_starttls() {
    let pki = Pki::new();
    let (srv, _) = tls_server(&pki, "require_tls = true\n", String::new(), true);
    let mut args = message_args(srv.dir.path(), "late@client.test", "user@localhost", b"x\r\n");
    args.push("--mail-before-tls".into());
    let out = py(&pki, srv.port, "starttls", &args);
    assert_eq!(
        code_text(&out["mail_before_tls"]),
        (530, "5.7.0 Must issue a STARTTLS command first".into()),
        "{out}"
    );
    assert_eq!(code_text(&out["mail"]).0, 250, "accepted over TLS: {out}");
    assert_eq!(code_text(&out["data"]).0, 250, "{out}");
}

/// Read one reply (all its lines) from a plaintext reader.
fn reply<R: BufRead>(r: &mut R) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("read reply");
        assert!(!l.is_empty(), "connection closed; got {lines:?}");
        let last = l.as_bytes().get(3) == Some(&b' ');
        lines.push(l.trim_end().to_owned());
        if last {
            return lines;
        }
    }
}

type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// Connect, EHLO, STARTTLS (with `after` in the same write), handshake: the TLS stream.
fn starttls(pki: &Pki, port: u16, after: &[u8]) -> Tls {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    assert!(reply(&mut r)[0].starts_with("220 "));
    (&s).write_all(b"EHLO raw.test\r\n").expect("send");
    assert!(reply(&mut r).iter().any(|l| l.ends_with("STARTTLS")));
    (&s).write_all(&[b"STARTTLS\r\n".as_slice(), after].concat()).expect("send");
    assert_eq!(reply(&mut r), vec!["220 2.0.0 Ready to start TLS".to_owned()]);
    assert!(r.buffer().is_empty(), "plaintext after 220: {:?}", r.buffer());
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(pki.client_config(), name).expect("client");
    BufReader::new(rustls::StreamOwned::new(conn, s))
}

fn tls_cmd(t: &mut Tls, line: &str) -> Vec<String> {
    t.get_mut().write_all(format!("{line}\r\n").as_bytes()).expect("send over TLS");
    t.get_mut().flush().expect("flush");
    reply(t)
}

/// The leaf certificate the server showed on this session.
fn peer_leaf(t: &Tls) -> CertificateDer<'static> {
    t.get_ref().conn.peer_certificates().expect("handshake done")[0].clone().into_owned()
}

#[test]
fn starttls_and_rset_in_one_write_never_answers_the_rset() {
    let pki = Pki::new();
    let (srv, _) = tls_server(&pki, "", String::new(), true);
    let mut t = starttls(&pki, srv.port, b"RSET\r\n");
    // The first reply inside TLS is EHLO's (multi-line), never the RSET's `250 2.0.0 Ok`.
    let ehlo = tls_cmd(&mut t, "EHLO raw.test");
    assert!(ehlo[0].starts_with("250-"), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert_eq!(tls_cmd(&mut t, "NOOP"), vec!["250 2.0.0 Ok".to_owned()]);
    assert_eq!(tls_cmd(&mut t, "QUIT"), vec!["221 2.0.0 Bye".to_owned()]);
}

#[test]
fn openssl_s_client_starttls() {
    let pki = Pki::new();
    let (srv, _) = tls_server(&pki, "", String::new(), true);
    let mut child = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-connect"])
        .arg(format!("127.0.0.1:{}", srv.port))
        .args(["-servername", "localhost", "-verify_return_error", "-brief", "-ign_eof"])
        .arg("-CAfile")
        .arg(pki.path("ca.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (the `openssl` Debian package; .ci/run installs it)");
    child.stdin.take().expect("stdin").write_all(b"EHLO openssl.test\r\nQUIT\r\n").expect("send");
    let out = wait_until(WAIT, STEP, || child.try_wait().ok().flatten());
    if out.is_none() {
        let _ = child.kill();
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read");
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
    assert!(stderr.contains("Verification: OK"), "{stderr}");
    assert!(stderr.contains("TLSv1.3"), "{stderr}");
    assert!(stdout.contains("250-PIPELINING") && !stdout.contains("STARTTLS"), "{stdout}");
    assert!(stdout.contains("221 2.0.0 Bye"), "{stdout}\n{stderr}");
}

/// The value of the per-site counter `name` on `srv`'s admin listener.
fn counter(srv: &Server, name: &str) -> u64 {
    let (_, _, body) = srv.admin_get("/metrics");
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn garbage_hello_and_stalled_handshake_do_not_stop_others() {
    let pki = Pki::new();
    let (srv, implicit) = tls_server(&pki, "", String::new(), true);
    let t = Instant::now();
    let mut garbage = TcpStream::connect(("127.0.0.1", implicit)).expect("connect");
    garbage.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    garbage.write_all(b"EHLO not-tls.example\r\n\r\n\r\n").expect("send");
    let mut stalled = TcpStream::connect(("127.0.0.1", implicit)).expect("connect");
    stalled.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stalled.write_all(b"\x16\x03\x01").expect("half a record header, then nothing");
    // Another client is served meanwhile, on both ports.
    let out = py(&pki, implicit, "smtps", &[]);
    assert_eq!(code_text(&out["quit"]).0, 221, "{out}");
    let out = py(&pki, srv.port, "starttls", &[]);
    assert_eq!(code_text(&out["quit"]).0, 221, "{out}");
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("220"), "{rest:?}");
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    let waited = t.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(10), "{waited:?}");
    let counted = wait_until(WAIT, STEP, || {
        (counter(&srv, "mailroot_inbound_tls_handshake_failures_total") >= 2).then_some(())
    });
    assert!(counted.is_some(), "{}", srv.admin_get("/metrics").2);
    assert!(counter(&srv, "mailroot_inbound_tls_handshakes_total") >= 2);
}

/// A ClientHello trickled one byte every 250 ms on the implicit-TLS port: `handshake_timeout`
/// (1 s here) is a deadline from the connection's start, so the server closes long before
/// the 105 bytes (26 s) are out, though every byte arrives well within 1 s of the last.
#[test]
fn trickled_handshake_is_cut_by_the_handshake_deadline() {
    let pki = Pki::new();
    let (_srv, implicit) = tls_server(&pki, "", String::new(), true);
    let mut c = TcpStream::connect(("127.0.0.1", implicit)).expect("connect");
    c.set_read_timeout(Some(Duration::from_millis(250))).expect("timeout");
    // A handshake record header announcing 512 bytes, then its body, byte by byte.
    let record: Vec<u8> = [0x16, 0x03, 0x01, 0x02, 0x00].into_iter().chain([0x01; 100]).collect();
    let mut cut = false;
    for b in &record {
        if c.write_all(std::slice::from_ref(b)).is_err() {
            cut = true;
            break;
        }
        match c.read(&mut [0u8; 64]) {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(_) => {} // an alert: the close follows
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "a trickled handshake was never cut");
}

#[test]
fn unusable_certificate_files_are_configuration_errors() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let cases = [
        ("missing.pem", "key.pem", "missing.pem"),
        ("chain.pem", "missing.key", "missing.key"),
        ("ca.pem", "key.pem", "does not match"),
    ];
    for (cert, key, words) in cases {
        let text = format!(
            "mailroot = {:?}\n[tls]\ncert = {:?}\nkey = {:?}\n",
            dir.join("mr").display().to_string(),
            dir.join(cert).display().to_string(),
            dir.join(key).display().to_string()
        );
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).expect("write config");
        for cmd in ["check-config", "serve"] {
            let out = Command::new(env!("CARGO_BIN_EXE_mailroot"))
                .args([cmd, "--config"])
                .arg(&path)
                .output()
                .expect("run mailroot");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {cert} {key}: {err}");
            assert!(err.contains("`tls.cert`") && err.contains(words), "{cmd}: {err}");
        }
    }
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let pki = Pki::new();
    let (srv, _) = tls_server(&pki, "", String::new(), true);
    let mut open = starttls(&pki, srv.port, b"");
    assert!(tls_cmd(&mut open, "EHLO raw.test")[0].starts_with("250-"));
    let first = peer_leaf(&open);
    let second = pki.issue("leaf two");
    assert_ne!(first, second);
    let pid = srv.pid().expect("running");
    send_signal(pid, libc::SIGHUP);
    let reloaded = wait_until(WAIT, STEP, || {
        srv.log_tail(4000).contains("tls certificate reloaded").then_some(())
    });
    assert!(reloaded.is_some(), "{}", srv.log_tail(4000));
    // The open session goes on with the certificate it negotiated.
    assert_eq!(tls_cmd(&mut open, "NOOP"), vec!["250 2.0.0 Ok".to_owned()]);
    assert_eq!(tls_cmd(&mut open, "MAIL FROM:<kept@client.test>")[0], "250 2.1.0 Ok");
    // New handshakes get the new certificate.
    let mut fresh = starttls(&pki, srv.port, b"");
    assert!(tls_cmd(&mut fresh, "EHLO raw.test")[0].starts_with("250-"));
    assert_eq!(peer_leaf(&fresh), second);
    let chain = pki.path("chain.pem").display().to_string();
    let e = srv.wait_event("tls.cert_reload", |e| e["cert"] == chain.as_str());
    assert_eq!(e["by"], "signal");
    // A bad key file is refused: logged, the certificate kept.
    std::fs::write(pki.path("key.pem"), "-----BEGIN PRIVATE KEY-----\nnope\n").expect("write");
    send_signal(pid, libc::SIGHUP);
    let refused =
        wait_until(WAIT, STEP, || srv.log_tail(4000).contains("tls reload refused").then_some(()));
    assert!(refused.is_some(), "{}", srv.log_tail(4000));
    let e = srv.wait_event("tls.cert_reload_refused", |_| true);
    assert!(e["error"].as_str().unwrap().contains("key.pem"), "{e}");
    // The configuration check reads the same files: the reload is refused as a whole.
    srv.wait_event("config.reload_refused", |e| e["error"].as_str().unwrap().contains("tls.cert"));
    let mut after_bad = starttls(&pki, srv.port, b"");
    assert!(tls_cmd(&mut after_bad, "EHLO raw.test")[0].starts_with("250-"));
    assert_eq!(peer_leaf(&after_bad), second);
    assert_eq!(tls_cmd(&mut open, "QUIT"), vec!["221 2.0.0 Bye".to_owned()]);
}

/// lettre's TLS parameters for name `localhost`, trusting `ca` only (no built-in roots).
fn lettre_tls(ca: Option<&[u8]>) -> lettre::transport::smtp::client::TlsParameters {
    use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
    let mut b =
        TlsParameters::builder("localhost".to_owned()).certificate_store(CertificateStore::None);
    if let Some(pem) = ca {
        b = b.add_root_certificate(Certificate::from_pem(pem).expect("CA PEM"));
    }
    b.build_rustls().expect("lettre TLS parameters")
}

#[test]
fn lettre_starttls_and_implicit_tls_with_auth() {
    use lettre::Transport;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::Tls;
    let pki = Pki::new();
    let sink = Sink::start("127.0.0.1");
    let (code, hash, err) = common::hash_password("lettre pass\n");
    assert_eq!(code, 0, "hash-password: {err}");
    let implicit = free_port();
    let mut extra = pki.tls_table();
    extra += "\n[delivery]\nretry = [\"1s\"]\n";
    extra += &format!("\n[[user]]\nname = \"alice\"\npassword_hash = \"{}\"\n", hash.trim());
    let srv = Server::start(Conf {
        site_extra: format!("implicit_tls_listen = [\"127.0.0.1:{implicit}\"]\n"),
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port()),
        relay_allow: vec!["10.255.255.0/24".into()], // only AUTH lets loopback relay
        extra,
        ..Conf::default()
    });
    let ca = std::fs::read(pki.path("ca.pem")).expect("ca.pem");
    let envelope = lettre::address::Envelope::new(
        Some("alice@client.test".parse().expect("from")),
        vec!["far@remote.test".parse().expect("to")],
    )
    .expect("envelope");
    let mailer = |port: u16, tls: Tls| {
        lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(port)
            .tls(tls)
            .timeout(Some(common::IO_TIMEOUT))
            .credentials(Credentials::new("alice".into(), "lettre pass".into()))
            .build()
    };
    let cases = [
        ("starttls", srv.port, Tls::Required(lettre_tls(Some(&ca)))),
        ("implicit", implicit, Tls::Wrapper(lettre_tls(Some(&ca)))),
    ];
    let mut bodies = Vec::new();
    for (tag, port, tls) in cases {
        // lettre ends the content with CRLF itself before the final dot.
        let body = format!("Subject: lettre {tag}\r\n\r\n.dot first\r\n\u{e9}");
        let r = mailer(port, tls).send_raw(&envelope, body.as_bytes());
        let r = r.unwrap_or_else(|e| panic!("lettre {tag}: {e}\n{}", srv.log_tail(40)));
        assert_eq!(u16::from(r.code()), 250, "{tag}");
        bodies.push(format!("{body}\r\n").into_bytes());
    }
    // A lettre that does not trust the test CA: the handshake fails, nothing is queued.
    let untrusting = mailer(srv.port, Tls::Required(lettre_tls(None)));
    let e = untrusting.send_raw(&envelope, b"Subject: no\r\n\r\nno\r\n").expect_err("sent");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    let got = wait_until(WAIT, STEP, || {
        let got = sink.received();
        (got.len() >= 2).then_some(got)
    })
    .unwrap_or_else(|| panic!("not relayed; log:\n{}", srv.log_tail(40)));
    assert_eq!(got.len(), 2, "the untrusting client's message must not exist");
    for body in &bodies {
        let m = got.iter().find(|m| m.data.ends_with(body)).unwrap_or_else(|| {
            let seen: Vec<_> = got.iter().map(|m| String::from_utf8_lossy(&m.data)).collect();
            panic!("{:?} not relayed intact: {seen:?}", String::from_utf8_lossy(body))
        });
        let head = String::from_utf8_lossy(&m.data[..m.data.len() - body.len()]).into_owned();
        assert!(head.contains("with ESMTPSA (TLSv1.3:TLS13_"), "{head}");
    }
}
