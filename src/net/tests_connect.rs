//! Outbound connects through the worker over loopback, with a tiny dialing service:
//! connect, refused connect, connect timeout, the next address after a failure, output
//! produced piece by piece (`Service::produce`), shared pieces written with the buffer
//! (`writev`, partial writes across both), and the timer wheel after connecting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::worker::{Worker, WorkerCounters, WorkerOptions, WorkerPoll};
use super::*;

/// What the dialer saw, for the test to assert on.
#[derive(Default, Debug)]
struct Seen {
    /// `(tag, event)` in order: "connected", "failed:<error>", "read:<line>", "closed".
    log: Vec<(u32, String)>,
}

/// One dial: try `addrs` in order; once connected, send `bulk` bytes of `x` then
/// `hello\n` (in 1 KiB pieces through `produce`), record lines read; close on `bye`.
struct Dial {
    tag: u32,
    addrs: Vec<SocketAddr>,
    bulk: usize,
    closing: bool,
    /// Shared bytes to send as pieces (each after a `|` in the buffer) and how far.
    shared: Option<(Arc<[u8]>, usize)>,
}

struct Dialer {
    requests: Vec<ConnectRequest<Dial>>,
    timeout_ms: u64,
    idle_ms: u64,
    seen: Arc<Mutex<Seen>>,
}

impl Dialer {
    fn note(&self, tag: u32, what: String) {
        self.seen.lock().unwrap().log.push((tag, what));
    }
    fn dial(&mut self, mut d: Dial) {
        if d.addrs.is_empty() {
            return self.note(d.tag, "gave up".into());
        }
        let addr = d.addrs.remove(0);
        self.requests.push(ConnectRequest { addr, timeout_ms: self.timeout_ms, state: d });
    }
}

impl Service for Dialer {
    type Conn = Dial;
    fn begin_pass(&mut self, _: Instant, _: SystemTime) {}
    fn accept(
        &mut self,
        _: &Peer,
        _: Result<ConnPermit, LimitExceeded>,
        _: &mut Vec<u8>,
    ) -> Option<Dial> {
        None
    }
    fn read(&mut self, _: ConnId, d: &mut Dial, input: &[u8], _: &mut Vec<u8>) -> usize {
        let mut used = 0;
        while let Some(nl) = input[used..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&input[used..used + nl]).into_owned();
            used += nl + 1;
            d.closing |= line == "bye";
            self.note(d.tag, format!("read:{line}"));
        }
        used
    }
    fn wants_read(&self, _: &Dial) -> bool {
        true
    }
    fn wants_close(&self, d: &Dial) -> bool {
        d.closing
    }
    fn idle_timeout_ms(&self, _: &Dial) -> u64 {
        self.idle_ms
    }
    fn timed_out(&mut self, d: &mut Dial, _: &mut Vec<u8>) {
        self.note(d.tag, "timeout".into());
    }
    fn shutdown(&mut self, d: &mut Dial, _: &mut Vec<u8>) {
        d.closing = true;
    }
    fn closed(&mut self, _: ConnId, d: Dial, _: CloseReason) {
        self.note(d.tag, "closed".into());
    }
    fn poll_ready(&mut self, _: &mut Vec<ConnId>) {}
    fn resume(&mut self, _: ConnId, _: &mut Dial, _: &mut Vec<u8>) {}
    fn end_of_pass(&mut self) {}
    fn has_outstanding(&self) -> bool {
        false
    }
    fn produce(&mut self, d: &mut Dial, out: &mut Vec<u8>) -> Option<SharedPiece> {
        if let Some((bytes, at)) = &mut d.shared {
            if *at == bytes.len() {
                d.shared = None;
                out.extend_from_slice(b"\nhello\n");
                return None;
            }
            let n = piece_len(*at).min(bytes.len() - *at);
            out.push(b'|');
            *at += n;
            return Some(SharedPiece::new(Arc::clone(bytes), *at - n..*at));
        }
        if d.bulk > 0 {
            let n = d.bulk.min(1024);
            out.extend(std::iter::repeat_n(b'x', n));
            d.bulk -= n;
            if d.bulk == 0 {
                out.extend_from_slice(b"\nhello\n");
            }
        }
        None
    }
    fn poll_connect(&mut self, requests: &mut Vec<ConnectRequest<Dial>>) {
        requests.append(&mut self.requests);
    }
    fn connected(&mut self, _: ConnId, d: &mut Dial, out: &mut Vec<u8>) {
        self.note(d.tag, "connected".into());
        if d.bulk == 0 && d.shared.is_none() {
            out.extend_from_slice(b"hello\n");
        }
    }
    fn connect_failed(&mut self, d: Dial, addr: SocketAddr, e: ConnectError) {
        let kind = match &e {
            ConnectError::TimedOut => "timeout".to_owned(),
            ConnectError::Io(e) => format!("{:?}", e.kind()),
            ConnectError::ShuttingDown => "shutdown".to_owned(),
        };
        self.note(d.tag, format!("failed:{addr}:{kind}"));
        self.dial(d);
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: JoinHandle<std::io::Result<WorkerCounters>>,
    seen: Arc<Mutex<Seen>>,
}

impl Running {
    fn stop(self) -> WorkerCounters {
        self.stop.store(true, Ordering::Release);
        self.waker.wake().unwrap();
        self.thread.join().unwrap().unwrap()
    }

    /// Wait (bounded) until the log has an entry satisfying `f`.
    fn wait_for(&self, what: &str, f: impl Fn(&(u32, String)) -> bool) -> Vec<(u32, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.seen.lock().unwrap().log.clone();
            if log.iter().any(&f) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {what} in {log:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Length of the shared piece starting at `at`: from 1 byte to well over a socket buffer.
fn piece_len(at: usize) -> usize {
    [1, 7, 4096, 70_000, 300_000][at % 5]
}

/// A listener-less worker that dials `dials` at start.
fn start(dials: Vec<Dial>, timeout_ms: u64, idle_ms: u64) -> Running {
    let wp = WorkerPoll::new().unwrap();
    let waker = wp.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut svc = Dialer { requests: Vec::new(), timeout_ms, idle_ms, seen: Arc::clone(&seen) };
    for d in dials {
        svc.dial(d);
    }
    let opts = WorkerOptions { index: 9, shutdown_grace: Duration::from_millis(200) };
    let limits = ConnLimits::new(0, 0);
    let w = Worker::new(wp, Vec::new(), svc, limits, Arc::clone(&stop), opts).unwrap();
    let thread = std::thread::spawn(move || w.run());
    Running { stop, waker, thread, seen }
}

/// A loopback port with nothing listening.
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap() // closed when `l` drops
}

#[test]
fn connects_and_talks_both_ways() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let w = start(
        vec![Dial {
            tag: 1,
            addrs: vec![l.local_addr().unwrap()],
            bulk: 0,
            closing: false,
            shared: None,
        }],
        5_000,
        60_000,
    );
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "hello\n");
    (&s).write_all(b"one\nbye\n").unwrap();
    let log = w.wait_for("close", |(_, e)| e == "closed");
    let events: Vec<&str> = log.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(events, ["connected", "read:one", "read:bye", "closed"]);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed by the worker");
    let c = w.stop();
    assert_eq!((c.connects, c.connect_failures), (1, 0));
}

#[test]
fn refused_connect_goes_to_the_next_address() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = dead_addr();
    let addrs = vec![dead, l.local_addr().unwrap()];
    let w =
        start(vec![Dial { tag: 2, addrs, bulk: 0, closing: false, shared: None }], 5_000, 60_000);
    let (s, _) = l.accept().unwrap();
    let log = w.wait_for("connected", |(_, e)| e == "connected");
    assert_eq!(log[0], (2, format!("failed:{dead}:ConnectionRefused")), "{log:?}");
    drop(s);
    w.wait_for("close", |(_, e)| e == "closed");
    let c = w.stop();
    assert_eq!((c.connects, c.connect_failures), (2, 1));
}

#[test]
fn connect_timeout_fires_on_the_timer_wheel() {
    // A listener whose accept queue is full drops new SYNs: the connect hangs.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<_> = (0..4)
        .filter_map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
            s.set_nonblocking(true).ok()?;
            let _ = s.connect(&addr.into());
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let w = start(
        vec![Dial { tag: 3, addrs: vec![addr], bulk: 0, closing: false, shared: None }],
        300,
        60_000,
    );
    let log = w.wait_for("timeout", |(_, e)| e.starts_with("failed:"));
    assert_eq!(log[0], (3, format!("failed:{addr}:timeout")), "{log:?}");
    assert!(t.elapsed() >= Duration::from_millis(300), "not before the timeout");
    w.wait_for("give up", |(_, e)| e == "gave up");
    drop(fillers);
    let c = w.stop();
    assert_eq!((c.connects, c.connect_failures), (1, 1));
}

#[test]
fn large_output_is_produced_as_the_socket_drains() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let bulk = 4 * 1024 * 1024; // far more than the socket buffers hold
    let w = start(
        vec![Dial {
            tag: 4,
            addrs: vec![l.local_addr().unwrap()],
            bulk,
            closing: false,
            shared: None,
        }],
        5_000,
        60_000,
    );
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let the socket buffers fill
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).unwrap();
    assert_eq!(line.len(), bulk + 1, "every byte arrived");
    assert!(line[..bulk].iter().all(|&b| b == b'x'));
    hello_then_bye(&mut r, &s, w);
}

/// The end of a bulk dial: its `hello` line arrives after the bulk, then our `bye` makes
/// the service close the connection.
fn hello_then_bye(r: &mut BufReader<std::net::TcpStream>, s: &std::net::TcpStream, w: Running) {
    let mut hello = String::new();
    r.read_line(&mut hello).unwrap();
    assert_eq!(hello, "hello\n");
    (&*s).write_all(b"bye\n").unwrap();
    w.wait_for("close", |(_, e)| e == "closed");
    w.stop();
}

#[test]
fn a_connected_socket_gets_idle_timeouts_from_the_same_wheel() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let w = start(
        vec![Dial {
            tag: 5,
            addrs: vec![l.local_addr().unwrap()],
            bulk: 0,
            closing: false,
            shared: None,
        }],
        5_000,
        200,
    );
    let (_s, _) = l.accept().unwrap();
    let log = w.wait_for("idle timeout", |(_, e)| e == "closed");
    let events: Vec<&str> = log.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(events, ["connected", "timeout", "closed"]);
    let c = w.stop();
    assert_eq!(c.timeouts, 1);
}

#[test]
fn shared_pieces_go_out_after_the_buffer_in_order() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let bytes: Arc<[u8]> = (0..3 * 1024 * 1024).map(|i| b'a' + (i % 23) as u8).collect();
    let mut want = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = piece_len(at).min(bytes.len() - at);
        want.push(b'|');
        want.extend_from_slice(&bytes[at..at + n]);
        at += n;
    }
    want.push(b'\n');
    let dial = Dial {
        tag: 6,
        addrs: vec![l.local_addr().unwrap()],
        bulk: 0,
        closing: false,
        shared: Some((Arc::clone(&bytes), 0)),
    };
    let w = start(vec![dial], 5_000, 60_000);
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // full socket: partial writev, WouldBlock
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut got = Vec::new();
    r.read_until(b'\n', &mut got).unwrap();
    assert!(got == want, "{} bytes, want {}", got.len(), want.len());
    hello_then_bye(&mut r, &s, w);
}
