//! Prefaces through the worker over loopback (the mechanism behind the PROXY protocol,
//! with a toy preface line here: net knows no PROXY): nothing is written before the
//! preface, the bytes after it in the same packet reach the service (plaintext) or rustls
//! (implicit TLS: the ClientHello sent in the same write as the preface), and the per-IP
//! limit counts the address the service learnt, not the TCP peer.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::ServerName;

use super::tests_tls::{client_config, pki, server_config};
use super::worker::{Listen, Worker, WorkerOptions, WorkerPoll};
use super::*;

/// Echo service whose connections start with `PRE <ip>\n`: then `hello <ip>\n` (plaintext)
/// or, after the TLS handshake, `hello-tls <ip>\n`; a second connection naming an address
/// over the per-IP limit gets `limit\n` and is closed.
struct PrefaceEcho;

struct Conn {
    permit: ConnPermit,
    awaiting: bool,
    implicit: bool,
    handshaking: bool,
    ip: String,
    closing: bool,
}

impl Service for PrefaceEcho {
    type Conn = Conn;
    fn begin_pass(&mut self, _: Instant, _: SystemTime) {}
    fn accept(
        &mut self,
        peer: &Peer,
        permit: Result<ConnPermit, LimitExceeded>,
        _out: &mut Vec<u8>,
    ) -> Option<Conn> {
        let permit = permit.ok()?;
        assert_eq!(permit.ip(), None, "the TCP peer is not counted per IP");
        Some(Conn {
            permit,
            awaiting: true,
            implicit: peer.implicit_tls,
            handshaking: false,
            ip: String::new(),
            closing: false,
        })
    }
    fn read(&mut self, _: ConnId, c: &mut Conn, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut used = 0;
        if c.awaiting {
            let Some(nl) = input.iter().position(|&b| b == b'\n') else { return 0 };
            let ip = String::from_utf8_lossy(&input[4..nl]).into_owned();
            c.awaiting = false;
            used = nl + 1;
            let parsed: IpAddr = ip.parse().unwrap();
            if c.permit.count_ip(parsed).is_err() {
                out.extend_from_slice(b"limit\n");
                c.closing = true;
                return input.len();
            }
            c.ip = ip;
            if c.implicit {
                c.handshaking = true;
                return used; // the rest is TLS: the worker hands it to rustls
            }
            out.extend_from_slice(format!("hello {}\n", c.ip).as_bytes());
        }
        while let Some(nl) = input[used..].iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&input[used..=used + nl]);
            used += nl + 1;
        }
        used
    }
    fn wants_read(&self, c: &Conn) -> bool {
        !c.closing && !c.handshaking
    }
    fn wants_close(&self, c: &Conn) -> bool {
        c.closing
    }
    fn idle_timeout_ms(&self, _: &Conn) -> u64 {
        5_000
    }
    fn timed_out(&mut self, _: &mut Conn, _: &mut Vec<u8>) {}
    fn shutdown(&mut self, c: &mut Conn, _: &mut Vec<u8>) {
        c.closing = true;
    }
    fn closed(&mut self, _: ConnId, _: Conn, _: CloseReason) {}
    fn poll_ready(&mut self, _: &mut Vec<ConnId>) {}
    fn resume(&mut self, _: ConnId, _: &mut Conn, _: &mut Vec<u8>) {}
    fn end_of_pass(&mut self) {}
    fn has_outstanding(&self) -> bool {
        false
    }
    fn defers_client_ip(&self, _: &Peer) -> bool {
        true
    }
    fn awaiting_preface(&self, c: &Conn) -> bool {
        c.awaiting
    }
    fn tls_established(&mut self, _: ConnId, c: &mut Conn, _: &TlsInfo, out: &mut Vec<u8>) {
        c.handshaking = false;
        out.extend_from_slice(format!("hello-tls {}\n", c.ip).as_bytes());
    }
}

/// Run a worker with a plaintext and an implicit-TLS listener, per-IP limit 1; run `f`
/// with their addresses, then stop it.
fn with_worker(p: &super::tests_tls::Pki, f: impl FnOnce(SocketAddr, SocketAddr)) {
    let plain = listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let implicit = listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (pa, ia) = (plain.local_addr().unwrap(), implicit.local_addr().unwrap());
    let wp = WorkerPoll::new().unwrap();
    let waker = wp.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = WorkerOptions { index: 0, shutdown_grace: Duration::from_millis(200) };
    let listeners = vec![
        Listen::from((plain, 0)),
        Listen { socket: implicit, tag: 1, implicit_tls: Some(server_config(p)) },
    ];
    let limits = ConnLimits::new(0, 1);
    let w = Worker::new(wp, listeners, PrefaceEcho, limits, Arc::clone(&stop), opts).unwrap();
    let thread = std::thread::spawn(move || w.run());
    f(pa, ia);
    stop.store(true, Ordering::Release);
    waker.wake().unwrap();
    thread.join().unwrap().unwrap();
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

#[test]
fn plaintext_preface_then_pipelined_input() {
    with_worker(&pki(), |plain, _| {
        let s = tcp(plain);
        (&s).write_all(b"PRE 10.0.0.2\nfirst\n").unwrap();
        let mut r = BufReader::new(s);
        assert_eq!(line(&mut r), "hello 10.0.0.2\n", "nothing before the preface");
        assert_eq!(line(&mut r), "first\n", "input after the preface in the same read");
    });
}

#[test]
fn implicit_tls_client_hello_in_the_preface_packet() {
    let p = pki();
    with_worker(&p, |_, implicit| {
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = rustls::ClientConnection::new(client_config(&p), name).unwrap();
        let mut first = b"PRE 10.0.0.1\n".to_vec();
        conn.write_tls(&mut first).unwrap(); // the ClientHello, after the preface, one write
        let s = tcp(implicit);
        (&s).write_all(&first).unwrap();
        let mut r = BufReader::new(rustls::StreamOwned::new(conn, s));
        assert_eq!(line(&mut r), "hello-tls 10.0.0.1\n");
        r.get_mut().write_all(b"inside\n").unwrap();
        assert_eq!(line(&mut r), "inside\n");
    });
}

#[test]
fn per_ip_limit_counts_the_learnt_address() {
    with_worker(&pki(), |plain, _| {
        // Three connections from 127.0.0.1 (limit 1 per IP): the TCP peer is not counted.
        let a = tcp(plain);
        (&a).write_all(b"PRE 10.0.0.3\n").unwrap();
        let mut ra = BufReader::new(a);
        assert_eq!(line(&mut ra), "hello 10.0.0.3\n");
        let b = tcp(plain);
        (&b).write_all(b"PRE 10.0.0.3\n").unwrap();
        assert_eq!(line(&mut BufReader::new(b)), "limit\n");
        let c = tcp(plain);
        (&c).write_all(b"PRE 10.0.0.4\n").unwrap();
        assert_eq!(line(&mut BufReader::new(c)), "hello 10.0.0.4\n");
    });
}
