//! One event loop: a mio `Poll`, this worker's listeners, its connections, its timers.
//!
//! WHAT: `Worker::run` loops: poll (timeout = next due timer tick) → accept / finish
//! connects / drive the connections with events → drive connections that yielded → ask
//! the service which connections have deferred work (`poll_ready`, e.g. commits finished;
//! the waker makes the poll return) → fire timers (idle timeouts, and connect timeouts of
//! sockets still connecting) → open the outbound connections the service asks for
//! (`poll_connect`) → `end_of_pass` (the spool's group commit starts here, so every message
//! finished in this pass shares one fdatasync) → recycle slots.
//!
//! Tokens: `WAKER_TOKEN` = 0; listener `i` = `1 + i`; connection slot `j` =
//! `CONN_TOKEN_BASE + j`.
//!
//! LISTENERS AT RUN TIME: the wiring may send [`ListenerCommand`]s (a site stopped or
//! started) on the worker's command channel and ring its waker; every pass takes them
//! (after the timers). `Close` drops every listener with the tag (connections still in
//! its accept queue are reset by the kernel: the site is closed) and asks the service to
//! say goodbye to that tag's connections (`Service::listener_closed`); `Open` registers
//! listeners the wiring has already bound, in free listener slots first. Each command is
//! answered on its `done` channel once done, so the caller knows every worker acted.
//!
//! SHUTDOWN: when the shared flag is set (and the waker rung) the worker drops its listeners
//! (the kernel stops routing new connections to them), calls `Service::shutdown` once per
//! connection (the service says goodbye to idle sessions and lets in-flight transactions
//! finish), waits up to the grace period for connections to close, closes the rest, waits
//! (bounded) for outstanding commits, and returns its counters.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::conn::{self, Conn, Step};
use super::conn_table::{ConnId, ConnTable};
use super::limits::ConnLimits;
use super::timer::{TICK_MS, TimerWheel};
use super::tls::Tls;
use super::{CloseReason, ConnectError, ConnectRequest, Peer, Service};

/// Token of the worker's waker.
const WAKER_TOKEN: Token = Token(0);

/// First connection token; listener tokens are `1..CONN_TOKEN_BASE`.
const CONN_TOKEN_BASE: usize = 1 << 20;

/// Events fetched per `poll`.
const EVENTS_CAPACITY: usize = 1024;

/// How long to keep waiting for outstanding commits once every connection is closed.
const OUTSTANDING_WAIT_MS: u64 = 10_000;

/// Rounds of `poll_connect` per pass: a request that fails at once may make the service
/// ask for the next address in the same pass; the rest waits for the next pass.
const MAX_CONNECT_ROUNDS: usize = 8;

/// Counters of one worker (summed by the relay at exit; later exported per worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Connections accepted and handed to the service (kept open).
    pub accepted: u64,
    /// Connections refused at accept by the service (limits, access policy).
    pub refused: u64,
    /// Connections closed after an I/O error.
    pub io_errors: u64,
    /// Connections closed by the idle timer.
    pub timeouts: u64,
    /// Connections closed because unconsumed input overflowed.
    pub input_overflows: u64,
    /// Connections force-closed when the shutdown grace period ended.
    pub shutdown_closed: u64,
    /// `accept` failures other than `WouldBlock`/`Interrupted`.
    pub accept_errors: u64,
    /// Outbound connects started.
    pub connects: u64,
    /// Outbound connects that failed (at once, later, or by timeout).
    pub connect_failures: u64,
    /// TLS handshakes completed (both directions).
    pub tls_handshakes: u64,
    /// Connections closed while their TLS handshake was in progress (protocol error,
    /// timeout, peer gone).
    pub tls_handshake_failures: u64,
}

/// A bound listening socket handed to a worker.
#[derive(Debug)]
pub struct Listen {
    /// The socket (from `listener::bind`).
    pub socket: TcpListener,
    /// Caller's tag, given to the service in `Peer::listener_tag` (the relay: site index).
    pub tag: usize,
    /// Implicit TLS (RFC 8314): every accepted connection starts with this server's TLS
    /// handshake (`Peer::implicit_tls` is set).
    pub implicit_tls: Option<Arc<rustls::ServerConfig>>,
}

impl From<(TcpListener, usize)> for Listen {
    /// A plaintext listener.
    fn from((socket, tag): (TcpListener, usize)) -> Listen {
        Listen { socket, tag, implicit_tls: None }
    }
}

/// A change to a worker's listeners while it runs (see the module doc).
#[derive(Debug)]
pub enum ListenerCommand {
    /// Close every listener tagged `tag`; its connections get `Service::listener_closed`.
    Close {
        /// The tag (the relay: site index).
        tag: usize,
        /// Answered once done.
        done: Sender<Result<(), String>>,
    },
    /// Start accepting on these listeners (bound by the caller, with `listener::bind`).
    Open {
        /// The listeners.
        listeners: Vec<Listen>,
        /// Answered once registered (`Err`: the text of a registration failure; none of
        /// them is kept then).
        done: Sender<Result<(), String>>,
    },
}

/// Per-worker settings.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Worker number, for logs.
    pub index: usize,
    /// How long in-flight transactions may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

/// The poll and its waker, created first so the waker can be handed to other threads
/// (the spool syncer's `on_commit`, the signal handler) before the service exists.
pub struct WorkerPoll {
    /// This worker's poll.
    poll: Poll,
    /// Wakes `poll` from another thread.
    waker: Arc<Waker>,
}

impl WorkerPoll {
    /// Create a poll and its waker.
    pub fn new() -> io::Result<WorkerPoll> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        Ok(WorkerPoll { poll, waker })
    }

    /// The waker (cheap to clone; `wake()` from any thread).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }
}

/// A listener of this worker.
struct Listener {
    /// The socket (`None` once shutdown began).
    socket: Option<TcpListener>,
    /// Its bound address.
    local: SocketAddr,
    /// Caller's tag (site index).
    tag: usize,
    /// Implicit TLS configuration, if this is an implicit-TLS listener.
    implicit_tls: Option<Arc<rustls::ServerConfig>>,
    /// `accept` hit a resource limit (EMFILE...); retry on the next tick since no new
    /// edge will be reported for connections already queued.
    retry: bool,
}

/// Lifecycle phase of the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepting and serving.
    Running,
    /// Listeners closed; connections finish until the deadline.
    Draining { deadline: Instant },
    /// Every connection closed; waiting for the service's outstanding work until the deadline.
    Finishing { deadline: Instant },
}

/// One event-loop thread's state, generic over the protocol `S`.
pub struct Worker<S: Service> {
    /// Settings.
    opts: WorkerOptions,
    /// Poll + waker.
    poll: WorkerPoll,
    /// Listeners; index `i` has token `1 + i`.
    listeners: Vec<Listener>,
    /// Live connections; slot `j` has token `CONN_TOKEN_BASE + j` and timer key `j`.
    conns: ConnTable<Conn<S::Conn>>,
    /// Idle timers keyed by slot index.
    timers: TimerWheel,
    /// Shared read buffer (`conn::SCRATCH_BYTES`), used by one connection at a time.
    scratch: Vec<u8>,
    /// The protocol.
    service: S,
    /// Connection limits shared with the other workers.
    limits: Arc<ConnLimits>,
    /// Set by the signal handler; the waker is rung after setting it.
    shutdown: Arc<AtomicBool>,
    /// Time zero of the timer wheel's ticks.
    epoch: Instant,
    /// Current tick (read once per pass).
    now_tick: u64,
    /// Connections that yielded with input left (drive again this pass / next pass).
    runnable: Vec<ConnId>,
    /// Scratch list for `poll_ready`.
    ready: Vec<ConnId>,
    /// Scratch list for fired timers.
    fired: Vec<usize>,
    /// Scratch list for `poll_connect`.
    connects: Vec<ConnectRequest<S::Conn>>,
    /// Lifecycle phase.
    phase: Phase,
    /// Counters.
    counters: WorkerCounters,
    /// Listener changes from the wiring (`None`: listeners are fixed).
    commands: Option<Receiver<ListenerCommand>>,
}

impl<S: Service> Worker<S> {
    /// Build a worker over already bound listeners `(socket, tag)`.
    pub fn new(
        poll: WorkerPoll,
        listeners: Vec<Listen>,
        service: S,
        limits: Arc<ConnLimits>,
        shutdown: Arc<AtomicBool>,
        opts: WorkerOptions,
    ) -> io::Result<Worker<S>> {
        assert!(listeners.len() < CONN_TOKEN_BASE - 1, "too many listeners");
        let mut ls = Vec::with_capacity(listeners.len());
        for (i, Listen { mut socket, tag, implicit_tls }) in listeners.into_iter().enumerate() {
            poll.poll.registry().register(&mut socket, Token(1 + i), Interest::READABLE)?;
            let local = socket.local_addr()?;
            ls.push(Listener { socket: Some(socket), local, tag, implicit_tls, retry: false });
        }
        Ok(Worker {
            opts,
            poll,
            listeners: ls,
            conns: ConnTable::default(),
            timers: TimerWheel::new(0),
            scratch: vec![0; conn::SCRATCH_BYTES],
            service,
            limits,
            shutdown,
            epoch: Instant::now(),
            now_tick: 0,
            runnable: Vec::new(),
            ready: Vec::new(),
            fired: Vec::new(),
            connects: Vec::new(),
            phase: Phase::Running,
            counters: WorkerCounters::default(),
            commands: None,
        })
    }

    /// Take [`ListenerCommand`]s from `commands` (the sender rings this worker's waker).
    #[must_use]
    pub fn with_commands(mut self, commands: Receiver<ListenerCommand>) -> Worker<S> {
        self.commands = Some(commands);
        self
    }

    /// Run until shutdown completes. Errors only if `poll` itself fails.
    pub fn run(mut self) -> io::Result<WorkerCounters> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        self.open_connects(); // requests made before the loop started
        loop {
            let timeout = self.poll_timeout(Instant::now());
            match self.poll.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            self.now_tick = self.tick_of(now);
            self.service.begin_pass(now, SystemTime::now());

            for event in events.iter() {
                match event.token() {
                    WAKER_TOKEN => {} // poll_ready and the shutdown flag are checked every pass
                    Token(t) if t < CONN_TOKEN_BASE => self.accept_all(t - 1),
                    Token(t) => {
                        let Some(id) = self.conns.id_at(t - CONN_TOKEN_BASE) else { continue };
                        let Some(c) = self.conns.get_mut(id) else { continue };
                        // Errors and hang-ups surface through the next read/write.
                        let trouble = event.is_error() || event.is_read_closed();
                        c.readable |= event.is_readable() || trouble;
                        c.read_closed |= trouble;
                        c.writable |= event.is_writable() || event.is_write_closed();
                        if c.connecting.is_some() {
                            self.finish_connect(id);
                        } else {
                            self.drive(id);
                        }
                    }
                }
            }
            for id in std::mem::take(&mut self.runnable) {
                self.drive(id);
            }
            self.resume_ready();
            self.fire_timers();
            // After the timers: a connect timeout may ask for the next address at once.
            self.open_connects();
            self.retry_listeners();
            self.take_commands();
            if self.step_shutdown(now) {
                break;
            }
            self.service.end_of_pass();
            self.conns.recycle();
        }
        log::debug!(
            "worker={} exiting accepted={} refused={} io_errors={} timeouts={}",
            self.opts.index,
            self.counters.accepted,
            self.counters.refused,
            self.counters.io_errors,
            self.counters.timeouts
        );
        Ok(self.counters)
    }

    /// Tick number of `t`.
    fn tick_of(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX) / TICK_MS
    }

    /// How long `poll` may sleep.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.runnable.is_empty() {
            return Some(Duration::ZERO);
        }
        let timers = self.timer_timeout(now);
        match self.service.pass_deadline() {
            // mio rounds a timeout up to whole milliseconds, so a held-back commit waits at
            // most its delay plus under a millisecond.
            Some(at) => {
                let d = at.saturating_duration_since(now);
                Some(timers.map_or(d, |t| t.min(d)))
            }
            None => timers,
        }
    }

    /// How long `poll` may sleep for the timer wheel, the listeners and shutdown.
    fn timer_timeout(&self, now: Instant) -> Option<Duration> {
        let now_tick = self.tick_of(now);
        let mut ticks = self.timers.next_due_in(now_tick);
        let must_tick = self.listeners.iter().any(|l| l.retry)
            || self.service.has_outstanding()
            || self.phase != Phase::Running;
        if must_tick {
            ticks = Some(ticks.map_or(1, |t| t.min(1)));
        }
        let due_tick = now_tick + ticks?;
        let due = self.epoch + Duration::from_millis(due_tick.saturating_mul(TICK_MS));
        Some(due.saturating_duration_since(now))
    }

    /// Accept every queued connection on listener `li`.
    fn accept_all(&mut self, li: usize) {
        loop {
            let Some(l) = self.listeners.get_mut(li) else { return };
            let Some(socket) = &l.socket else { return };
            match socket.accept() {
                Ok((stream, remote)) => self.admit(stream, remote, li),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    l.retry = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.counters.accept_errors += 1;
                    if is_resource_exhaustion(&e) {
                        if !l.retry {
                            log::warn!("worker={} accept on {}: {e}", self.opts.index, l.local);
                        }
                        l.retry = true;
                        return;
                    }
                    // ECONNABORTED and friends concern one connection only.
                    log::debug!("worker={} accept on {}: {e}", self.opts.index, l.local);
                }
            }
        }
    }

    /// Hand a new socket to the service; keep it or refuse it.
    fn admit(&mut self, mut stream: mio::net::TcpStream, remote: SocketAddr, li: usize) {
        let l = &self.listeners[li];
        // TCP_NODELAY comes from the listener (see `listener.rs`).
        let local = if l.local.ip().is_unspecified() {
            stream.local_addr().unwrap_or(l.local)
        } else {
            l.local
        };
        let peer =
            Peer { remote, local, listener_tag: l.tag, implicit_tls: l.implicit_tls.is_some() };
        let mut implicit_tls = l.implicit_tls.clone();
        let permit = if self.service.defers_client_ip(&peer) {
            self.limits.try_acquire_total()
        } else {
            self.limits.try_acquire(remote.ip())
        };
        let mut out = Vec::new();
        let Some(state) = self.service.accept(&peer, permit, &mut out) else {
            // Explicit accept back-pressure: a fresh socket's send buffer is empty, so one
            // write takes the short refusal; then close. Not on an implicit-TLS listener:
            // the client expects a TLS record, and a plaintext reply is only garbage there.
            if implicit_tls.is_none() {
                let _ = io::Write::write(&mut stream, &out);
            }
            self.counters.refused += 1;
            return;
        };
        let preface = self.service.awaiting_preface(&state);
        let mut conn = Conn::new(stream, state, out);
        if preface {
            // Read the preface in plaintext first; `conn::drive` starts TLS after it.
            conn.pending_tls = implicit_tls;
            implicit_tls = None;
        }
        let tls = implicit_tls.map(|cfg| Tls::start(super::TlsStart::Server(cfg)));
        let tls_failed = matches!(tls, Some(Err(_)));
        conn.tls = tls.and_then(Result::ok).map(Box::new);
        let id = self.conns.insert(conn);
        let token = Token(CONN_TOKEN_BASE + id.index());
        let registered = match self.conns.get_mut(id) {
            Some(c) => self.poll.poll.registry().register(
                &mut c.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => unreachable!("just inserted"),
        };
        self.counters.accepted += 1;
        match registered {
            Ok(()) if tls_failed => self.close(id, CloseReason::TlsHandshake),
            Ok(()) => self.drive(id),
            Err(e) => self.close(id, CloseReason::Io(e.kind())),
        }
    }

    /// Open the outbound connections the service asks for (non-blocking connect; the
    /// request's timeout arms the slot's timer).
    fn open_connects(&mut self) {
        for _ in 0..MAX_CONNECT_ROUNDS {
            let mut requests = std::mem::take(&mut self.connects);
            self.service.poll_connect(&mut requests);
            if requests.is_empty() {
                self.connects = requests;
                return;
            }
            for req in requests.drain(..) {
                self.connect(req);
            }
            self.connects = requests;
        }
    }

    /// Start one outbound connect.
    fn connect(&mut self, req: ConnectRequest<S::Conn>) {
        let ConnectRequest { addr, timeout_ms, state } = req;
        if self.phase != Phase::Running {
            return self.service.connect_failed(state, addr, ConnectError::ShuttingDown);
        }
        self.counters.connects += 1;
        let stream = match mio::net::TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                self.counters.connect_failures += 1;
                return self.service.connect_failed(state, addr, ConnectError::Io(e));
            }
        };
        // Replies and commands are small writes that must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let id = self.conns.insert(Conn::connecting(stream, state, addr));
        let token = Token(CONN_TOKEN_BASE + id.index());
        let registered = match self.conns.get_mut(id) {
            Some(c) => self.poll.poll.registry().register(
                &mut c.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => unreachable!("just inserted"),
        };
        match registered {
            Ok(()) => {
                // +1: `now_tick` is rounded down, so this never fires early.
                let due = self.now_tick + timeout_ms.div_ceil(TICK_MS) + 1;
                self.timers.schedule(id.index(), due);
            }
            Err(e) => self.connect_failed(id, ConnectError::Io(e)),
        }
    }

    /// An event on a connecting socket: hand it to the service once connected.
    fn finish_connect(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else { return };
        match c.finish_connect() {
            Ok(false) => {}
            Ok(true) => {
                self.service.connected(id, &mut c.state, &mut c.out.buf);
                self.drive(id);
            }
            Err(e) => self.connect_failed(id, ConnectError::Io(e)),
        }
    }

    /// The connect of `id` failed: drop the socket, give the state back to the service.
    fn connect_failed(&mut self, id: ConnId, error: ConnectError) {
        let Some(c) = self.conns.remove(id) else { return };
        self.timers.cancel(id.index());
        self.counters.connect_failures += 1;
        let addr = c.connecting.unwrap_or_else(|| unreachable!("only connecting sockets"));
        self.service.connect_failed(c.state, addr, error);
    }

    /// Run one pass over connection `id` and act on the outcome.
    fn drive(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else { return };
        let was_handshaking = c.tls.as_ref().is_some_and(|t| t.handshaking());
        let step = conn::drive(&mut self.service, id, c, &mut self.scratch);
        let done = c.tls.as_ref().is_some_and(|t| t.established);
        if done && was_handshaking {
            self.counters.tls_handshakes += 1;
        }
        match step {
            Step::Idle => self.arm_timer(id),
            Step::Yield => {
                self.arm_timer(id);
                self.runnable.push(id);
            }
            Step::Close(reason) => self.close(id, reason),
        }
    }

    /// (Re)arm the idle timer of `id` from the service's current timeout.
    fn arm_timer(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else { return };
        let ms = self.service.idle_timeout_ms(&c.state);
        // +1: `now_tick` is rounded down, so this never fires early.
        self.timers.schedule(id.index(), self.now_tick + ms.div_ceil(TICK_MS) + 1);
    }

    /// Close `id`: the socket is closed by drop (which also removes it from epoll).
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(c) = self.conns.remove(id) else { return };
        self.timers.cancel(id.index());
        if c.tls.as_ref().is_some_and(|t| t.handshaking()) {
            self.counters.tls_handshake_failures += 1;
        }
        match reason {
            CloseReason::Io(kind) => {
                self.counters.io_errors += 1;
                log::debug!(
                    "worker={} conn={} closed on I/O error: {kind}",
                    self.opts.index,
                    id.index()
                );
            }
            CloseReason::TimedOut => self.counters.timeouts += 1,
            CloseReason::InputOverflow => self.counters.input_overflows += 1,
            CloseReason::Shutdown => self.counters.shutdown_closed += 1,
            CloseReason::TlsHandshake | CloseReason::Tls => {
                log::debug!("worker={} conn={} closed: {reason:?}", self.opts.index, id.index());
            }
            CloseReason::Done | CloseReason::PeerClosed => {}
        }
        self.service.closed(id, c.state, reason);
    }

    /// Resume connections whose deferred work is ready (e.g. their commit finished).
    fn resume_ready(&mut self) {
        let mut ready = std::mem::take(&mut self.ready);
        self.service.poll_ready(&mut ready);
        for id in ready.drain(..) {
            let Some(c) = self.conns.get_mut(id) else { continue };
            self.service.resume(id, &mut c.state, &mut c.out.buf);
            c.refeed = true;
            self.drive(id);
        }
        self.ready = ready;
    }

    /// Fire due idle timers: goodbye, best-effort flush, close.
    fn fire_timers(&mut self) {
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.expire(self.now_tick, &mut fired);
        for key in fired.drain(..) {
            let Some(id) = self.conns.id_at(key) else { continue };
            let Some(c) = self.conns.get_mut(id) else { continue };
            if c.connecting.is_some() {
                self.connect_failed(id, ConnectError::TimedOut);
                continue;
            }
            self.service.timed_out(&mut c.state, &mut c.out.buf);
            let _ = c.flush();
            self.close(id, CloseReason::TimedOut);
        }
        self.fired = fired;
    }

    /// Retry listeners whose accept hit a resource limit.
    fn retry_listeners(&mut self) {
        for li in 0..self.listeners.len() {
            if self.listeners[li].retry {
                self.accept_all(li);
            }
        }
    }

    /// Act on the listener commands waiting (one `try_recv` per pass when none is).
    fn take_commands(&mut self) {
        let Some(rx) = self.commands.take() else { return };
        for cmd in rx.try_iter() {
            match cmd {
                ListenerCommand::Close { tag, done } => {
                    self.close_listeners(tag);
                    let _ = done.send(Ok(()));
                }
                ListenerCommand::Open { listeners, done } => {
                    let _ = done.send(self.open_listeners(listeners));
                }
            }
        }
        self.commands = Some(rx);
    }

    /// Drop the listeners tagged `tag`; goodbye to their connections.
    fn close_listeners(&mut self, tag: usize) {
        for l in self.listeners.iter_mut().filter(|l| l.tag == tag) {
            if let Some(mut s) = l.socket.take() {
                let _ = self.poll.poll.registry().deregister(&mut s);
            }
            l.retry = false;
        }
        for id in self.conns.ids() {
            let Some(c) = self.conns.get_mut(id) else { continue };
            if c.connecting.is_none()
                && self.service.listener_closed(tag, &mut c.state, &mut c.out.buf)
            {
                self.drive(id);
            }
        }
    }

    /// Register `new` listeners in free slots (or new ones); all or none.
    fn open_listeners(&mut self, new: Vec<Listen>) -> Result<(), String> {
        if self.phase != Phase::Running {
            return Err("the server is shutting down".into());
        }
        let mut placed: Vec<usize> = Vec::with_capacity(new.len());
        for Listen { mut socket, tag, implicit_tls } in new {
            // A slot just filled has its socket: the search never returns it again.
            let free = self.listeners.iter().position(|l| l.socket.is_none());
            let i = free.unwrap_or(self.listeners.len());
            let registered = socket.local_addr().and_then(|local| {
                self.poll.poll.registry().register(
                    &mut socket,
                    Token(1 + i),
                    Interest::READABLE,
                )?;
                Ok(local)
            });
            let local = match registered {
                Ok(local) => local,
                Err(e) => {
                    let text = format!("worker {}: {e}", self.opts.index);
                    self.close_placed(&placed);
                    return Err(text);
                }
            };
            let l = Listener { socket: Some(socket), local, tag, implicit_tls, retry: false };
            if i == self.listeners.len() {
                self.listeners.push(l);
            } else {
                self.listeners[i] = l;
            }
            placed.push(i);
        }
        // Connections may already be queued (edge-triggered: no event would report them).
        for i in placed {
            self.accept_all(i);
        }
        Ok(())
    }

    /// Undo a partly done `open_listeners`.
    fn close_placed(&mut self, placed: &[usize]) {
        for &i in placed {
            if let Some(mut s) = self.listeners[i].socket.take() {
                let _ = self.poll.poll.registry().deregister(&mut s);
            }
        }
    }

    /// Advance the shutdown state machine; true when the worker may exit.
    fn step_shutdown(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Running => {
                if !self.shutdown.load(Ordering::Acquire) {
                    return false;
                }
                for l in &mut self.listeners {
                    if let Some(mut s) = l.socket.take() {
                        let _ = self.poll.poll.registry().deregister(&mut s);
                    }
                    l.retry = false;
                }
                for id in self.conns.ids() {
                    if let Some(c) = self.conns.get_mut(id) {
                        if c.connecting.is_some() {
                            self.connect_failed(id, ConnectError::ShuttingDown);
                            continue;
                        }
                        self.service.shutdown(&mut c.state, &mut c.out.buf);
                        self.drive(id);
                    }
                }
                self.phase = Phase::Draining { deadline: now + self.opts.shutdown_grace };
                false
            }
            Phase::Draining { deadline } => {
                if now >= deadline {
                    for id in self.conns.ids() {
                        self.close(id, CloseReason::Shutdown);
                    }
                }
                if self.conns.is_empty() {
                    let deadline = now + Duration::from_millis(OUTSTANDING_WAIT_MS);
                    self.phase = Phase::Finishing { deadline };
                }
                false
            }
            Phase::Finishing { deadline } => {
                if self.service.has_outstanding() && now < deadline {
                    return false;
                }
                if self.service.has_outstanding() {
                    log::warn!("worker={} exiting with work outstanding", self.opts.index);
                }
                true
            }
        }
    }
}

/// Errors meaning "out of descriptors / memory": the queued connections stay queued.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}
