//! Outbound TLS end to end: the real binary relays by smart host to a real TLS-capable
//! sink nobody here wrote (aiosmtpd with STARTTLS and AUTH, OpenSSL underneath,
//! `tests/py/sink_tls.py`), which records whether each message came over TLS (cipher and
//! version) and who authenticated. Certificates are made here with rcgen: a test CA (given
//! to mailroot by `[delivery] tls_ca_file`) and leaves for `127.0.0.1` (the smart host is
//! the literal `[127.0.0.1]`, so `verify` checks the IP address name), signed by the CA or
//! self-signed.
//!
//! Cases: `may` with a good certificate (TLS used); `may` without STARTTLS (plaintext);
//! `may` against a server whose handshake fails (TLS <= 1.1 only: retried once in
//! plaintext, logged, counted);
//! `encrypt` with a self-signed certificate (arrives); `encrypt` without STARTTLS
//! (deferred, queue list shows the TLS reason); `verify` with a CA-signed certificate
//! (arrives) and a self-signed one (deferred with the verification error); smart host AUTH
//! over TLS (arrives, the sink saw the user) and with a wrong password (deferred, 535).
//! The rest of the policy x sink matrix: `may` with a self-signed certificate (TLS, not
//! checked), `encrypt` with a good one, `verify` without STARTTLS (deferred), `none`
//! against a sink that offers STARTTLS (plaintext); and a smart host that offers AUTH
//! without TLS never gets the credentials (deferred, nothing sent). A 250 KB message with
//! leading dots arrives byte-exact over TLS.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Bounded waits (CI is slow).
const WAIT: Duration = Duration::from_secs(30);
/// Poll interval.
const STEP: Duration = Duration::from_millis(50);

/// A test CA, a leaf it signed and a self-signed leaf, all for `127.0.0.1`, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let dir = tempfile::Builder::new().prefix("mailroot-tlsout-").tempdir().expect("tempdir");
        let w = |name: &str, pem: String| fs::write(dir.path().join(name), pem).expect("write");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "mailroot outbound test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = p.self_signed(&ca_key).expect("CA");
        w("ca.pem", ca.pem());
        let issuer = rcgen::Issuer::new(p, ca_key);
        let leaf_params = || {
            let mut p = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
            p.distinguished_name.push(DnType::CommonName, "sink");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p
        };
        let key = KeyPair::generate().expect("leaf key");
        let mut lp = leaf_params();
        lp.use_authority_key_identifier_extension = true;
        w("good.pem", lp.signed_by(&key, &issuer).expect("leaf").pem());
        w("good.key", key.serialize_pem());
        let key = KeyPair::generate().expect("self key");
        w("self.pem", leaf_params().self_signed(&key).expect("self-signed").pem());
        w("self.key", key.serialize_pem());
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// aiosmtpd (`sink_tls.py`) on a loopback port; killed on drop.
struct TlsSink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsSink {
    /// `cert`: "good", "self" or None (no STARTTLS); `auth`: "user:password".
    fn start(pki: &Pki, cert: Option<&str>, auth: Option<&str>) -> TlsSink {
        TlsSink::start_with(pki, cert, auth, &[])
    }

    /// `start` with more arguments for `sink_tls.py`.
    fn start_with(pki: &Pki, cert: Option<&str>, auth: Option<&str>, more: &[&str]) -> TlsSink {
        let dir = tempfile::Builder::new().prefix("mailroot-tsink-").tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(py_script("sink_tls.py"))
            .args(["--port", &port.to_string(), "--lifetime", "300", "--dir"])
            .arg(dir.path());
        if let Some(c) = cert {
            cmd.arg("--cert").arg(pki.path(&format!("{c}.pem")));
            cmd.arg("--key").arg(pki.path(&format!("{c}.key")));
        }
        if let Some(a) = auth {
            cmd.args(["--auth", a]);
        }
        cmd.args(more);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 sink_tls.py (needs `pip install aiosmtpd`, see .ci/run)");
        let mut sink = TlsSink { child, dir, port };
        if wait_until(WAIT, STEP, || sink.dir.path().join("ready").exists().then_some(())).is_none()
        {
            let _ = sink.child.kill();
            panic!("aiosmtpd TLS sink did not start (is aiosmtpd installed?)");
        }
        sink
    }

    /// Envelopes (with the TLS and AUTH record) of the messages stored so far.
    fn received(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for n in 1.. {
            let base: PathBuf = self.dir.path().join(n.to_string());
            let Ok(env) = fs::read(base.with_extension("json")) else { break };
            out.push(serde_json::from_slice(&env).expect("envelope JSON"));
        }
        out
    }
}

impl Drop for TlsSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay sending everything to `sink` by smart host with TLS policy `policy`.
fn relay_to(sink: &TlsSink, pki: &Pki, policy: &str, auth: Option<&str>) -> Server {
    let mut relay_extra = format!("smart_host = \"[127.0.0.1]:{}\"\n", sink.port);
    if let Some(a) = auth {
        let (user, password) = a.split_once(':').expect("user:password");
        relay_extra +=
            &format!("smart_host_auth = {{ user = \"{user}\", password = \"{password}\" }}\n");
    }
    Server::start(Conf {
        relay_extra,
        extra: format!(
            "\n[delivery]\nretry = [\"1h\"]\nconnect_timeout = \"2s\"\ntls = \"{policy}\"\n\
             tls_ca_file = {:?}\n",
            pki.path("ca.pem").display().to_string()
        ),
        ..Conf::default()
    })
}

/// Send one message; panics unless it is queued.
fn send(srv: &Server, tag: &str) {
    let content = format!(
        "From: <alice@sender.test>\r\nTo: <bob@remote.test>\r\nSubject: {tag}\r\n\
         Message-ID: <{tag}@tls-out.test>\r\n\r\nHello {tag}.\r\n"
    );
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let r =
        c.send_message("alice@sender.test", &["bob@remote.test"], &dot_stuff(content.as_bytes()));
    assert_eq!(r.code, 250, "not queued: {r}");
    let _ = c.cmd("QUIT");
}

/// Wait for the sink's first message.
fn arrived(srv: &Server, sink: &TlsSink) -> Value {
    wait_until(WAIT, STEP, || sink.received().into_iter().next())
        .unwrap_or_else(|| panic!("nothing arrived\n{}", srv.log_tail(4000)))
}

/// Wait for the first recipient's first failed attempt; its `last_error`.
fn deferred(srv: &Server) -> String {
    let r = wait_until(WAIT, STEP, || {
        let list = srv.queue_list();
        let r = list.first()?.get("recipients")?.get(0)?.clone();
        (r.get("attempts").and_then(Value::as_u64) >= Some(1)).then_some(r)
    })
    .unwrap_or_else(|| panic!("no attempt listed: {:?}\n{}", srv.queue_list(), srv.log_tail(4000)));
    assert_eq!(r["status"], "pending", "{r}");
    r["last_error"].as_str().unwrap_or_default().to_owned()
}

fn assert_tls(env: &Value) {
    assert!(env["tls"].as_str().is_some_and(|c| !c.is_empty()), "sink saw no TLS: {env}");
    assert_eq!(env["rcpt_tos"][0], "bob@remote.test", "{env}");
}

#[test]
fn may_with_a_good_certificate_uses_tls() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), None);
    let srv = relay_to(&sink, &pki, "may", None);
    send(&srv, "may-good");
    let env = arrived(&srv, &sink);
    assert_tls(&env);
    assert!(env["tls_version"].as_str().is_some_and(|v| v.starts_with("TLSv1.")), "{env}");
    let (_, _, body) = srv.admin_get("/metrics");
    assert!(body.contains("mailroot_outbound_tls_connections_total 1"), "{body}");
}

/// A message far larger than rustls' buffers goes out over TLS in shared pieces (copied
/// into rustls by `net`, issue 15) and arrives byte-exact, leading dots and all.
#[test]
fn a_large_message_over_tls_arrives_byte_exact() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), None);
    let srv = relay_to(&sink, &pki, "encrypt", None);
    let mut content = b"From: <alice@sender.test>\r\nTo: <bob@remote.test>\r\n\r\n".to_vec();
    for i in 0..6000 {
        let dot = if i % 500 == 0 { "." } else { "" };
        content.extend_from_slice(format!("{dot}line {i:05} la de da de da de da\r\n").as_bytes());
    }
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let r = c.send_message("alice@sender.test", &["bob@remote.test"], &dot_stuff(&content));
    assert_eq!(r.code, 250, "not queued: {r}");
    let env = arrived(&srv, &sink);
    assert_tls(&env);
    let eml = fs::read(sink.dir.path().join("1.eml")).expect("stored message");
    assert!(eml.ends_with(&content), "{} bytes stored for {} sent", eml.len(), content.len());
}

#[test]
fn may_without_starttls_goes_in_plaintext() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, None, None);
    let srv = relay_to(&sink, &pki, "may", None);
    send(&srv, "may-plain");
    let env = arrived(&srv, &sink);
    assert!(env["tls"].is_null(), "{env}");
}

#[test]
fn may_retries_a_failed_handshake_once_in_plaintext() {
    let pki = Pki::new();
    let sink = TlsSink::start_with(&pki, Some("good"), None, &["--tls-max-1-1"]);
    let srv = relay_to(&sink, &pki, "may", None);
    send(&srv, "may-retry");
    let env = arrived(&srv, &sink);
    assert!(env["tls"].is_null(), "{env}");
    let log = srv.log_tail(8000);
    assert!(log.contains("TLS handshake with [127.0.0.1] failed ("), "{log}");
    assert!(log.contains("retrying in plaintext"), "{log}");
    let (_, _, body) = srv.admin_get("/metrics");
    assert!(body.contains("mailroot_outbound_tls_failures_total{policy=\"may\"} 1"), "{body}");
}

#[test]
fn encrypt_accepts_a_self_signed_certificate() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("self"), None);
    let srv = relay_to(&sink, &pki, "encrypt", None);
    send(&srv, "encrypt-self");
    assert_tls(&arrived(&srv, &sink));
}

#[test]
fn encrypt_without_starttls_is_deferred_with_the_tls_reason() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, None, None);
    let srv = relay_to(&sink, &pki, "encrypt", None);
    send(&srv, "encrypt-none");
    let err = deferred(&srv);
    assert!(err.contains("did not offer STARTTLS"), "{err}");
    assert!(sink.received().is_empty());
}

#[test]
fn verify_accepts_a_certificate_from_the_configured_ca() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), None);
    let srv = relay_to(&sink, &pki, "verify", None);
    send(&srv, "verify-good");
    assert_tls(&arrived(&srv, &sink));
}

#[test]
fn verify_defers_a_self_signed_certificate_with_the_verification_error() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("self"), None);
    let srv = relay_to(&sink, &pki, "verify", None);
    send(&srv, "verify-self");
    let err = deferred(&srv);
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(sink.received().is_empty());
    let (_, _, body) = srv.admin_get("/metrics");
    assert!(body.contains("mailroot_outbound_tls_failures_total{policy=\"verify\"} 1"), "{body}");
}

#[test]
fn smart_host_auth_over_tls() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), Some("relay:s3cret"));
    let srv = relay_to(&sink, &pki, "may", Some("relay:s3cret"));
    send(&srv, "auth-good");
    let env = arrived(&srv, &sink);
    assert_tls(&env);
    assert_eq!(env["auth"], "relay", "{env}");
}

#[test]
fn smart_host_auth_with_a_wrong_password_is_deferred_with_535() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), Some("relay:s3cret"));
    let srv = relay_to(&sink, &pki, "may", Some("relay:wrong"));
    send(&srv, "auth-bad");
    let err = deferred(&srv);
    assert!(err.contains("535"), "{err}");
    assert!(sink.received().is_empty());
}

#[test]
fn may_with_a_self_signed_certificate_uses_tls_unchecked() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("self"), None);
    let srv = relay_to(&sink, &pki, "may", None);
    send(&srv, "may-self");
    assert_tls(&arrived(&srv, &sink));
}

#[test]
fn encrypt_with_a_good_certificate_uses_tls() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), None);
    let srv = relay_to(&sink, &pki, "encrypt", None);
    send(&srv, "encrypt-good");
    assert_tls(&arrived(&srv, &sink));
}

#[test]
fn verify_without_starttls_is_deferred_with_the_tls_reason() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, None, None);
    let srv = relay_to(&sink, &pki, "verify", None);
    send(&srv, "verify-none");
    let err = deferred(&srv);
    assert!(err.contains("tls = \"verify\"") && err.contains("did not offer STARTTLS"), "{err}");
    assert!(sink.received().is_empty());
}

#[test]
fn none_does_not_use_an_offered_starttls() {
    let pki = Pki::new();
    let sink = TlsSink::start(&pki, Some("good"), None);
    let srv = relay_to(&sink, &pki, "none", None);
    send(&srv, "none-good");
    let env = arrived(&srv, &sink);
    assert!(env["tls"].is_null(), "tls = none used TLS: {env}");
}

#[test]
fn smart_host_auth_is_never_sent_without_tls() {
    let pki = Pki::new();
    // AUTH offered (and required) in plaintext; no STARTTLS at all.
    let sink = TlsSink::start_with(&pki, None, Some("relay:s3cret"), &["--auth-plaintext"]);
    let srv = relay_to(&sink, &pki, "may", Some("relay:s3cret"));
    send(&srv, "auth-plain");
    let err = deferred(&srv);
    assert!(err.contains("credentials are never sent in plaintext"), "{err}");
    assert!(sink.received().is_empty());
}
