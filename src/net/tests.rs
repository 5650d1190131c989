//! Worker loop over loopback with a tiny line-echo service.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::worker::{Worker, WorkerCounters, WorkerOptions, WorkerPoll};
use super::*;

/// Echoes lines. `quit` -> "bye" and close; `defer` -> stops reading until the next pass,
/// then "resumed"; `later` -> the same, but only once `LATER` has passed, with no I/O in
/// between (the worker must wake for `pass_deadline`); idle -> "timeout"; shutdown ->
/// "shutdown" and close.
struct Echo {
    timeout_ms: u64,
    deferred: VecDeque<ConnId>,
    later: Option<(ConnId, Instant)>,
}

/// How long `later` waits.
const LATER: Duration = Duration::from_millis(30);

struct EchoConn {
    _permit: ConnPermit,
    /// The listener's tag.
    tag: usize,
    closing: bool,
    deferred: bool,
}

impl Service for Echo {
    type Conn = EchoConn;
    fn begin_pass(&mut self, _: Instant, _: SystemTime) {}
    fn accept(
        &mut self,
        peer: &Peer,
        permit: Result<ConnPermit, LimitExceeded>,
        out: &mut Vec<u8>,
    ) -> Option<EchoConn> {
        match permit {
            Ok(p) => {
                out.extend_from_slice(b"hello\n");
                let tag = peer.listener_tag;
                Some(EchoConn { _permit: p, tag, closing: false, deferred: false })
            }
            Err(_) => {
                out.extend_from_slice(b"full\n");
                None
            }
        }
    }
    fn read(&mut self, id: ConnId, c: &mut EchoConn, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut used = 0;
        while let Some(nl) = input[used..].iter().position(|&b| b == b'\n') {
            if c.closing || c.deferred {
                break;
            }
            let line = &input[used..used + nl];
            used += nl + 1;
            match line {
                b"quit" => {
                    out.extend_from_slice(b"bye\n");
                    c.closing = true;
                }
                b"defer" => {
                    c.deferred = true;
                    self.deferred.push_back(id);
                }
                b"later" => {
                    c.deferred = true;
                    self.later = Some((id, Instant::now() + LATER));
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
        !c.closing && !c.deferred
    }
    fn wants_close(&self, c: &EchoConn) -> bool {
        c.closing
    }
    fn idle_timeout_ms(&self, _: &EchoConn) -> u64 {
        self.timeout_ms
    }
    fn timed_out(&mut self, _: &mut EchoConn, out: &mut Vec<u8>) {
        out.extend_from_slice(b"timeout\n");
    }
    fn shutdown(&mut self, c: &mut EchoConn, out: &mut Vec<u8>) {
        out.extend_from_slice(b"shutdown\n");
        c.closing = true;
    }
    fn listener_closed(&mut self, tag: usize, c: &mut EchoConn, out: &mut Vec<u8>) -> bool {
        if c.tag != tag {
            return false;
        }
        out.extend_from_slice(b"stopped\n");
        c.closing = true;
        true
    }
    fn closed(&mut self, _: ConnId, _: EchoConn, _: CloseReason) {}
    fn poll_ready(&mut self, ready: &mut Vec<ConnId>) {
        ready.extend(self.deferred.drain(..));
        if let Some((id, at)) = self.later
            && Instant::now() >= at
        {
            ready.push(id);
            self.later = None;
        }
    }
    fn pass_deadline(&self) -> Option<Instant> {
        self.later.map(|(_, at)| at)
    }
    fn resume(&mut self, _: ConnId, c: &mut EchoConn, out: &mut Vec<u8>) {
        c.deferred = false;
        out.extend_from_slice(b"resumed\n");
    }
    fn end_of_pass(&mut self) {}
    fn has_outstanding(&self) -> bool {
        false
    }
}

struct Running {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: JoinHandle<std::io::Result<WorkerCounters>>,
    limits: Arc<ConnLimits>,
}

impl Running {
    fn stop(self) -> WorkerCounters {
        self.stop.store(true, Ordering::Release);
        self.waker.wake().unwrap();
        self.thread.join().unwrap().unwrap()
    }
}

fn start(max_conns: usize, timeout_ms: u64) -> Running {
    let l = listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    let wp = WorkerPoll::new().unwrap();
    let waker = wp.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let limits = ConnLimits::new(max_conns, 0);
    let opts = WorkerOptions { index: 0, shutdown_grace: Duration::from_millis(500) };
    let svc = Echo { timeout_ms, deferred: VecDeque::new(), later: None };
    let w = Worker::new(wp, vec![(l, 7).into()], svc, Arc::clone(&limits), Arc::clone(&stop), opts)
        .unwrap();
    let thread = std::thread::spawn(move || w.run());
    Running { addr, stop, waker, thread, limits }
}

fn connect(addr: std::net::SocketAddr) -> (BufReader<TcpStream>, TcpStream) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (BufReader::new(s.try_clone().unwrap()), s)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

#[test]
fn echo_pipelined_split_and_quit() {
    let w = start(0, 60_000);
    let (mut r, mut s) = connect(w.addr);
    assert_eq!(line(&mut r), "hello\n");
    s.write_all(b"one\ntw").unwrap();
    assert_eq!(line(&mut r), "one\n");
    s.write_all(b"o\nthree\nquit\n").unwrap();
    assert_eq!(line(&mut r), "two\n");
    assert_eq!(line(&mut r), "three\n");
    assert_eq!(line(&mut r), "bye\n");
    assert_eq!(line(&mut r), "", "closed after bye");
    let c = w.stop();
    assert_eq!(c.accepted, 1);
}

#[test]
fn large_pipelined_input_is_drained() {
    let w = start(0, 60_000);
    let (mut r, mut s) = connect(w.addr);
    assert_eq!(line(&mut r), "hello\n");
    let n = 50_000;
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..n {
            buf.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        buf.extend_from_slice(b"quit\n");
        s.write_all(&buf).unwrap();
        s
    });
    for i in 0..n {
        assert_eq!(line(&mut r), format!("line {i}\n"));
    }
    assert_eq!(line(&mut r), "bye\n");
    drop(writer.join().unwrap());
    w.stop();
}

#[test]
fn deferred_work_holds_input_then_resumes() {
    let w = start(0, 60_000);
    let (mut r, mut s) = connect(w.addr);
    assert_eq!(line(&mut r), "hello\n");
    s.write_all(b"defer\nafter\nquit\n").unwrap();
    assert_eq!(line(&mut r), "resumed\n");
    assert_eq!(line(&mut r), "after\n");
    assert_eq!(line(&mut r), "bye\n");
    w.stop();
}

#[test]
fn pass_deadline_wakes_the_loop_without_io() {
    // Nothing else would wake the worker for 60 s (the idle timeout): the resume must come
    // from the service's pass deadline.
    let w = start(0, 60_000);
    let (mut r, mut s) = connect(w.addr);
    assert_eq!(line(&mut r), "hello\n");
    let t = Instant::now();
    s.write_all(b"later\n").unwrap();
    assert_eq!(line(&mut r), "resumed\n");
    assert!(t.elapsed() >= LATER, "resumed before the deadline");
    s.write_all(b"quit\n").unwrap();
    assert_eq!(line(&mut r), "bye\n");
    w.stop();
}

#[test]
fn max_connections_refuses_with_service_bytes() {
    let w = start(1, 60_000);
    let (mut r1, _s1) = connect(w.addr);
    assert_eq!(line(&mut r1), "hello\n");
    let (mut r2, _s2) = connect(w.addr);
    assert_eq!(line(&mut r2), "full\n");
    assert_eq!(line(&mut r2), "");
    assert_eq!(w.limits.total(), 1);
    let c = w.stop();
    assert_eq!((c.accepted, c.refused), (1, 1));
}

#[test]
fn idle_timeout_says_goodbye_and_closes() {
    let w = start(0, 200);
    let (mut r, _s) = connect(w.addr);
    assert_eq!(line(&mut r), "hello\n");
    let t = std::time::Instant::now();
    assert_eq!(line(&mut r), "timeout\n");
    assert_eq!(line(&mut r), "");
    assert!(t.elapsed() >= Duration::from_millis(200));
    let limits = Arc::clone(&w.limits);
    let c = w.stop();
    assert_eq!(c.timeouts, 1);
    assert_eq!(limits.total(), 0, "permit released on timeout");
}

#[test]
fn shutdown_tells_open_connections_and_stops_listening() {
    let w = start(0, 60_000);
    let addr = w.addr;
    let (mut r, _s) = connect(addr);
    assert_eq!(line(&mut r), "hello\n");
    let limits = Arc::clone(&w.limits);
    w.stop();
    assert_eq!(line(&mut r), "shutdown\n");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(limits.total(), 0, "permits released");
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}

/// A `Close` command drops the tagged listeners (connects refused) and says goodbye to
/// their connections only; `Open` registers new listeners that accept at once.
#[test]
fn listener_commands_close_and_open() {
    use super::worker::ListenerCommand;
    let (a, b) = (
        listener::bind("127.0.0.1:0".parse().unwrap()).unwrap(),
        listener::bind("127.0.0.1:0".parse().unwrap()).unwrap(),
    );
    let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let wp = WorkerPoll::new().unwrap();
    let waker = wp.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = WorkerOptions { index: 0, shutdown_grace: Duration::from_millis(500) };
    let svc = Echo { timeout_ms: 60_000, deferred: VecDeque::new(), later: None };
    let (commands, rx) = crossbeam_channel::unbounded();
    let w = Worker::new(
        wp,
        vec![(a, 1).into(), (b, 2).into()],
        svc,
        ConnLimits::new(0, 0),
        Arc::clone(&stop),
        opts,
    )
    .unwrap()
    .with_commands(rx);
    let thread = std::thread::spawn(move || w.run());
    let ask = |cmd: &dyn Fn(crossbeam_channel::Sender<Result<(), String>>) -> ListenerCommand| {
        let (done, answer) = crossbeam_channel::bounded(1);
        commands.send(cmd(done)).unwrap();
        waker.wake().unwrap();
        answer.recv_timeout(Duration::from_secs(10)).unwrap()
    };
    let (mut ra, mut sa) = connect(addr_a);
    let (mut rb, _sb) = connect(addr_b);
    assert_eq!((line(&mut ra), line(&mut rb)), ("hello\n".into(), "hello\n".into()));

    ask(&|done| ListenerCommand::Close { tag: 2, done }).unwrap();
    assert_eq!(line(&mut rb), "stopped\n");
    assert_eq!(line(&mut rb), "", "closed after the goodbye");
    let refused = TcpStream::connect(addr_b).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // Tag 1 is untouched: its connection and listener still work.
    sa.write_all(b"ping\n").unwrap();
    assert_eq!(line(&mut ra), "ping\n");
    assert_eq!(line(&mut connect(addr_a).0), "hello\n");

    let again = listener::bind(addr_b).unwrap();
    let opened: std::cell::Cell<Option<mio::net::TcpListener>> = std::cell::Cell::new(Some(again));
    ask(&|done| ListenerCommand::Open {
        listeners: vec![(opened.take().unwrap(), 2).into()],
        done,
    })
    .unwrap();
    assert_eq!(line(&mut connect(addr_b).0), "hello\n");

    stop.store(true, Ordering::Release);
    waker.wake().unwrap();
    thread.join().unwrap().unwrap();
}
