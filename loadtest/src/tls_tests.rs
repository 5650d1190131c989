//! `source` with TLS against the in-process `sink` with STARTTLS, over loopback: the two
//! TLS sides of the tool checked against each other (certificates made here by rcgen).
//! Bounded: a few sessions, a few messages, short timeouts.

use std::path::PathBuf;
use std::time::Duration;

use crate::sink::{self, SinkOptions};
use crate::size::SizeDist;
use crate::source::{self, SourceOptions};
use crate::tls::{ClientTls, Mode, Trust, server_config};

/// A self-signed `localhost` certificate and its key, as PEM files.
struct Cert {
    dir: tempfile::TempDir,
}

impl Cert {
    fn new() -> Cert {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("cert params");
        let cert = params.self_signed(&key).expect("self-signed");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key");
        Cert { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// A sink on a free loopback port, offering STARTTLS with `cert` when given.
fn sink(cert: Option<&Cert>) -> sink::RunningSink {
    let tls = cert.map(|c| server_config(&c.cert(), &c.key()).expect("server config"));
    sink::start(&SinkOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        max_duration: Duration::from_secs(60),
        messages: None,
        max_connections: 100,
        tempfail_bp: 0,
        permfail_bp: 0,
        seed: 1,
        tracker: None,
        tls,
    })
    .expect("sink")
}

/// 3 sessions x 5 per connection x 30 messages to `sink`, with `tls`.
fn source_to(
    sink: &sink::RunningSink,
    tls: Option<ClientTls>,
    handshake_only: bool,
) -> SourceOptions {
    SourceOptions {
        server: sink.addr(),
        sessions: 3,
        messages: 30,
        size: SizeDist::parse("2k").expect("size"),
        rate: None,
        run: 7,
        progress: false,
        tracker: None,
        rcpts: 1,
        pipelining: true,
        helo: "tls-test.example".to_owned(),
        from: "a@example.com".to_owned(),
        to: "b@example.net".to_owned(),
        per_connection: 5,
        max_duration: Duration::from_secs(30),
        io_timeout: Duration::from_secs(10),
        tls,
        handshake_only,
    }
}

fn starttls(trust: Trust) -> Option<ClientTls> {
    Some(ClientTls::new(Mode::StartTls, trust, "localhost", false).expect("client TLS"))
}

#[test]
fn starttls_source_into_starttls_sink() {
    let cert = Cert::new();
    let sink = sink(Some(&cert));
    let report = source::run(source_to(&sink, starttls(Trust::CaFile(cert.cert())), false));
    let s = report.stats();
    assert_eq!(s.accepted, 30, "{}", report.to_text());
    assert!(s.errors.is_empty(), "{}", report.to_text());
    // Every connection went TLS (at least 30 / 5 of them), none resumed.
    assert!(s.connections >= 6, "{}", report.to_text());
    assert_eq!(s.handshakes, s.connections);
    assert_eq!(s.resumed, 0);
    // TLS 1.3 with X25519 (rustls' ring provider would pick P-384 first).
    let negotiated = s.tls.as_deref().unwrap_or_default();
    assert!(negotiated.starts_with("TLSv1_3 ") && negotiated.ends_with(" X25519"), "{negotiated}");
    let [messages, connections, tls_sessions, failures] = sink.report("test").counts();
    assert_eq!(messages, 30);
    assert_eq!(tls_sessions, connections);
    assert_eq!(failures, 0);
    assert!(report.to_text().contains("handshakes/s"), "{}", report.to_text());
    assert!(report.to_json().contains("\"tls\":{\"mode\":\"STARTTLS\",\"verified\":true"));
}

#[test]
fn an_untrusted_certificate_fails_every_handshake_unless_insecure() {
    let (cert, other) = (Cert::new(), Cert::new());
    let sink = sink(Some(&cert));
    let report = source::run(source_to(&sink, starttls(Trust::CaFile(other.cert())), false));
    let s = report.stats();
    assert_eq!(s.accepted, 0);
    assert_eq!(s.handshakes, 0);
    let keys: Vec<&String> = s.errors.keys().collect();
    assert!(keys.iter().all(|k| k.starts_with("tls: invalid peer certificate")), "{keys:?}");
    assert_eq!(sink.report("test").counts()[2], 0, "no session went TLS");
    // The same certificate with --tls-insecure: accepted.
    let report = source::run(source_to(&sink, starttls(Trust::Insecure), false));
    assert_eq!(report.stats().accepted, 30, "{}", report.to_text());
}

#[test]
fn starttls_against_a_plaintext_server_is_an_error() {
    let cert = Cert::new();
    let sink = sink(None);
    let report = source::run(source_to(&sink, starttls(Trust::CaFile(cert.cert())), false));
    assert_eq!(report.stats().accepted, 0);
    assert_eq!(report.stats().errors.get("STARTTLS not advertised"), Some(&30));
}

#[test]
fn handshake_only_sends_no_mail() {
    let cert = Cert::new();
    let sink = sink(Some(&cert));
    let report = source::run(source_to(&sink, starttls(Trust::CaFile(cert.cert())), true));
    let s = report.stats();
    assert_eq!(s.accepted, 30, "sessions completed: {}", report.to_text());
    assert_eq!(s.handshakes, 30);
    let [messages, connections, tls_sessions, _] = sink.report("test").counts();
    assert_eq!((messages, connections, tls_sessions), (0, 30, 30));
    assert!(report.to_text().contains("sessions/s"), "{}", report.to_text());
}

#[test]
fn resumption_when_allowed() {
    let cert = Cert::new();
    let sink = sink(Some(&cert));
    let tls = ClientTls::new(Mode::StartTls, Trust::CaFile(cert.cert()), "localhost", true)
        .expect("client TLS");
    let report = source::run(source_to(&sink, Some(tls), true));
    let s = report.stats();
    assert_eq!(s.handshakes, 30);
    // The first handshakes of the sessions are full; later ones resume (rustls' cache).
    assert!(s.resumed > 0 && s.resumed < 30, "{}", s.resumed);
}
