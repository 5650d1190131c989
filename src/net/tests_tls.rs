//! TLS through the worker over loopback, with rustls clients and rcgen certificates:
//! implicit TLS + echo, a STARTTLS-style upgrade whose pipelined plaintext is discarded,
//! a garbage ClientHello that closes only its own connection, and a client that stalls
//! mid-handshake cut by the connection's timer while another client is served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::worker::{Listen, Worker, WorkerCounters, WorkerOptions, WorkerPoll};
use super::*;

/// Handshake timeout of the test service.
const HANDSHAKE_MS: u64 = 300;

/// A CA and a `localhost` certificate it signed.
pub(super) struct Pki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

pub(super) fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf =
        CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    Pki {
        ca: ca.der().clone(),
        chain: vec![leaf.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

pub(super) fn server_config(p: &Pki) -> Arc<rustls::ServerConfig> {
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(p.chain.clone(), p.key.clone_key())
        .unwrap();
    Arc::new(cfg)
}

pub(super) fn client_config(p: &Pki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca.clone()).unwrap();
    Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// Line echo. `starttls` -> "ready", then TLS (nothing more is read in plaintext);
/// established -> "tls <version>" (after STARTTLS) or "hello-tls" (implicit); `quit` ->
/// "bye" and close. Idle timeout: `HANDSHAKE_MS` while handshaking, else 60 s.
struct TlsEcho {
    config: Arc<rustls::ServerConfig>,
}

struct EchoConn {
    _permit: ConnPermit,
    starttls: bool,
    handshaking: bool,
    closing: bool,
}

impl Service for TlsEcho {
    type Conn = EchoConn;
    fn begin_pass(&mut self, _: Instant, _: SystemTime) {}
    fn accept(
        &mut self,
        peer: &Peer,
        permit: Result<ConnPermit, LimitExceeded>,
        out: &mut Vec<u8>,
    ) -> Option<EchoConn> {
        if !peer.implicit_tls {
            out.extend_from_slice(b"hello\n");
        }
        Some(EchoConn {
            _permit: permit.ok()?,
            starttls: false,
            handshaking: peer.implicit_tls,
            closing: false,
        })
    }
    fn read(&mut self, _: ConnId, c: &mut EchoConn, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut used = 0;
        while let Some(nl) = input[used..].iter().position(|&b| b == b'\n') {
            if !self.wants_read(c) {
                break;
            }
            let line = &input[used..used + nl];
            used += nl + 1;
            match line {
                b"quit" => {
                    out.extend_from_slice(b"bye\n");
                    c.closing = true;
                }
                b"starttls" => {
                    out.extend_from_slice(b"ready\n");
                    c.starttls = true;
                }
                _ => {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                }
            }
        }
        used
    }
    fn wants_read(&self, c: &EchoConn) -> bool {
        !c.closing && !c.starttls && !c.handshaking
    }
    fn wants_close(&self, c: &EchoConn) -> bool {
        c.closing
    }
    fn idle_timeout_ms(&self, c: &EchoConn) -> u64 {
        if c.handshaking || c.starttls { HANDSHAKE_MS } else { 60_000 }
    }
    fn timed_out(&mut self, _: &mut EchoConn, _: &mut Vec<u8>) {}
    fn shutdown(&mut self, c: &mut EchoConn, _: &mut Vec<u8>) {
        c.closing = true;
    }
    fn closed(&mut self, _: ConnId, _: EchoConn, _: CloseReason) {}
    fn poll_ready(&mut self, _: &mut Vec<ConnId>) {}
    fn resume(&mut self, _: ConnId, _: &mut EchoConn, _: &mut Vec<u8>) {}
    fn end_of_pass(&mut self) {}
    fn has_outstanding(&self) -> bool {
        false
    }
    fn tls_start(&mut self, c: &mut EchoConn) -> Option<TlsStart> {
        if c.starttls && !c.handshaking {
            c.handshaking = true;
            return Some(TlsStart::Server(Arc::clone(&self.config)));
        }
        None
    }
    fn tls_established(&mut self, _: ConnId, c: &mut EchoConn, info: &TlsInfo, out: &mut Vec<u8>) {
        if c.starttls {
            out.extend_from_slice(format!("tls {}\n", info.version).as_bytes());
        } else {
            out.extend_from_slice(b"hello-tls\n");
        }
        c.starttls = false;
        c.handshaking = false;
    }
}

struct Running {
    plain: SocketAddr,
    implicit: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: JoinHandle<std::io::Result<WorkerCounters>>,
}

impl Running {
    fn stop(self) -> WorkerCounters {
        self.stop.store(true, Ordering::Release);
        self.waker.wake().unwrap();
        self.thread.join().unwrap().unwrap()
    }
}

fn start(p: &Pki) -> Running {
    let config = server_config(p);
    let plain = listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let implicit = listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (plain_addr, implicit_addr) = (plain.local_addr().unwrap(), implicit.local_addr().unwrap());
    let wp = WorkerPoll::new().unwrap();
    let waker = wp.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = WorkerOptions { index: 0, shutdown_grace: Duration::from_millis(500) };
    let listeners = vec![
        Listen::from((plain, 0)),
        Listen { socket: implicit, tag: 1, implicit_tls: Some(Arc::clone(&config)) },
    ];
    let svc = TlsEcho { config };
    let w =
        Worker::new(wp, listeners, svc, ConnLimits::new(0, 0), Arc::clone(&stop), opts).unwrap();
    let thread = std::thread::spawn(move || w.run());
    Running { plain: plain_addr, implicit: implicit_addr, stop, waker, thread }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_over(p: &Pki, sock: TcpStream) -> BufReader<TlsStream> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client_config(p), name).unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, sock))
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn line<R: BufRead>(r: &mut R) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

fn send(r: &mut BufReader<TlsStream>, text: &str) {
    r.get_mut().write_all(text.as_bytes()).unwrap();
    r.get_mut().flush().unwrap();
}

#[test]
fn implicit_tls_handshake_and_echo() {
    let p = pki();
    let w = start(&p);
    let mut r = tls_over(&p, tcp(w.implicit));
    send(&mut r, "one\ntwo\n"); // pipelined with the handshake's end
    assert_eq!(line(&mut r), "hello-tls\n");
    assert_eq!(line(&mut r), "one\n");
    assert_eq!(line(&mut r), "two\n");
    // 200 KiB of lines in one write: drained through rustls, echoed through its limits.
    let lines: String = (0..4000).map(|i| format!("line {i:045}\n")).collect();
    send(&mut r, &format!("{lines}quit\n"));
    for i in 0..4000 {
        assert_eq!(line(&mut r), format!("line {i:045}\n"));
    }
    assert_eq!(line(&mut r), "bye\n");
    let c = w.stop();
    assert_eq!((c.tls_handshakes, c.tls_handshake_failures), (1, 0));
}

#[test]
fn starttls_upgrade_discards_pipelined_plaintext() {
    let p = pki();
    let w = start(&p);
    let s = tcp(w.plain);
    let mut plain = BufReader::new(s.try_clone().unwrap());
    assert_eq!(line(&mut plain), "hello\n");
    // The injected line rides in the same packet as the upgrade request.
    (&s).write_all(b"starttls\ninjected\n").unwrap();
    assert_eq!(line(&mut plain), "ready\n");
    assert!(plain.buffer().is_empty(), "nothing after ready in plaintext");
    let mut r = tls_over(&p, s);
    send(&mut r, "after\nquit\n");
    assert_eq!(line(&mut r), "tls TLSv1_3\n");
    assert_eq!(line(&mut r), "after\n", "the injected line was never executed");
    assert_eq!(line(&mut r), "bye\n");
    let c = w.stop();
    assert_eq!((c.tls_handshakes, c.tls_handshake_failures), (1, 0));
}

#[test]
fn garbage_client_hello_closes_only_that_connection() {
    let p = pki();
    let w = start(&p);
    let mut bad = tcp(w.implicit);
    bad.write_all(b"EHLO not-tls.example\r\n\x16\x03\x01\x00\x02\x01\x00").unwrap();
    let mut rest = Vec::new();
    // The server answers with an alert (or nothing) and closes.
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.len() < 64, "no application data: {rest:?}");
    let mut good = tls_over(&p, tcp(w.implicit));
    send(&mut good, "ok\nquit\n");
    assert_eq!(line(&mut good), "hello-tls\n");
    assert_eq!(line(&mut good), "ok\n");
    assert_eq!(line(&mut good), "bye\n");
    let c = w.stop();
    assert_eq!((c.tls_handshakes, c.tls_handshake_failures), (1, 1));
}

#[test]
fn stalled_handshake_is_cut_by_the_timer() {
    let p = pki();
    let w = start(&p);
    let t = Instant::now();
    // Half a ClientHello record header, then nothing.
    let mut stalled = tcp(w.implicit);
    stalled.write_all(b"\x16\x03\x01").unwrap();
    let mut good = tls_over(&p, tcp(w.implicit));
    send(&mut good, "served\n");
    assert_eq!(line(&mut good), "hello-tls\n");
    assert_eq!(line(&mut good), "served\n");
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    let waited = t.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(waited >= Duration::from_millis(HANDSHAKE_MS), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    send(&mut good, "still\n");
    assert_eq!(line(&mut good), "still\n", "the other client is still served");
    let c = w.stop();
    assert_eq!((c.timeouts, c.tls_handshake_failures), (1, 1));
}
