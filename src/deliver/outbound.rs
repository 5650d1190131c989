//! Outbound delivery as a [`net::Service`](crate::net::Service): the shared I/O core
//! (`net::worker`) moves the bytes, connects, and keeps the timers; this module drives a
//! sans-IO [`ClientSession`] per connection and decides what each connection does next.
//!
//! WHAT: attempts ([`OutboundTask`]) arrive on a crossbeam channel (the sender rings the
//! worker's `mio::Waker`, once per batch). Where each one goes is decided by the pure
//! destination queues ([`DestQueues`], `dest.rs`): an idle connection of its destination
//! (reuse up to `max_messages_per_connection`, enforced by the session, which sends QUIT),
//! a new connection if the global and per-destination limits allow (a
//! [`ConnectRequest`] for the worker: non-blocking connect with `connect_timeout`), or the
//! destination's queue. A refused or timed-out connect, or a greeting/EHLO failure, moves
//! the attempt to the next target (next address, next MX); when none is left the attempt is
//! deferred with `dest_down`, together with every attempt queued behind it for that
//! destination (they would hit the same wall). A greeting naming our own host name fails
//! it with 5.4.6 "Cannot connect to self". Results go back to the queue runner as
//! [`TaskReport`]s, sent once per event-loop pass.
//!
//! Timers: the worker's one timer wheel serves both directions. While connecting it holds
//! the connect timeout; afterwards `idle_timeout_ms` is the session's next protocol
//! deadline (RFC 5321 §4.5.3.2) or, for an idle connection, the end of `idle_keep`; when
//! it fires, `timed_out` lets the session fail the stage (or say QUIT) and the worker
//! closes the connection.
//!
//! TRUST: everything a remote server sends is parsed by the session (bounded); a peer can
//! only make its own connection fail. A message whose final reply is lost (connection
//! dropped after the dot) is deferred, so it may be delivered twice, never zero times.
//! Shutdown drops attempts in flight: their recipients are still pending in the spool.
//!
//! STANDARDS: RFC 5321 §5.1 (try the next MX on failure), §4.5.3.2 (timeouts, in the
//! session; the connect timeout is the worker's), §4.5.4.1 (one connection, several
//! messages).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::Waker;

use super::dest::{DestLimits, DestQueues, Placement};
use super::inbox::{OutboundTask, Target};
use super::outcome::{reply_text, session_outcomes};
use super::tls::{OutboundTls, server_name};
use crate::net::worker::{Worker, WorkerOptions, WorkerPoll};
use crate::net::{
    CloseReason, ConnId, ConnLimits, ConnPermit, ConnectError, ConnectRequest, LimitExceeded, Peer,
    Service, SharedPiece, TlsInfo, TlsStart,
};
use crate::plan::route::{LOOP_STATUS, SELF_CONNECT_TEXT};
use crate::queue::inbox::{RcptOutcome, TaskReport};
use crate::smtp::client::{ClientConfig, ClientSession, Event, TlsPolicy};
use crate::stats::{Counter, CounterBlock, Hist, Registry};

/// Stop producing output above this many unsent bytes (the worker writes it first).
const OUT_HIGH_WATER_BYTES: usize = 64 * 1024;
/// Idle timeout reported when a connection has no deadline at all (never happens while a
/// session is open: every stage has one).
const NO_DEADLINE_MS: u64 = 60 * 60 * 1000;
/// How long the worker waits for connections to finish at shutdown: no transaction is
/// finished then (attempts in flight stay pending in the spool), so this is short.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Limits and timeouts of outbound delivery.
#[derive(Debug, Clone, Copy)]
pub struct OutboundOptions {
    /// Outbound connections open at once (all destinations).
    pub max_connections: usize,
    /// Outbound connections open at once to one destination key.
    pub max_connections_per_dest: usize,
    /// Time allowed for the TCP connect.
    pub connect_timeout: Duration,
    /// How long an idle connection is kept for reuse before QUIT.
    pub idle_keep: Duration,
    /// Worker number (after the inbound workers), for logs.
    pub worker_index: usize,
}

/// Submits attempts to the outbound worker.
#[derive(Clone)]
pub struct OutboundHandle {
    /// The attempt queue.
    tx: Sender<OutboundTask>,
    /// Rings the worker.
    waker: Arc<Waker>,
    /// Set by the first submit after the worker last drained the queue; only that submit
    /// rings the waker (one eventfd write per batch of attempts, not one per attempt).
    wake_pending: Arc<AtomicBool>,
}

impl OutboundHandle {
    /// Hand an attempt to the worker. Returns it if the worker is gone.
    pub fn submit(&self, task: OutboundTask) -> Result<(), Box<OutboundTask>> {
        self.tx.send(task).map_err(|e| Box::new(e.0))?;
        // AcqRel pairs with the worker's swap(false) before it drains: either the drain
        // sees this attempt, or this swap sees `false` and rings.
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && let Err(e) = self.waker.wake()
        {
            log::warn!("outbound: cannot wake the worker: {e}");
        }
        Ok(())
    }
}

/// The running outbound worker thread.
pub struct OutboundThread {
    /// The thread.
    join: JoinHandle<io::Result<crate::net::worker::WorkerCounters>>,
    /// Its shutdown flag.
    stop: Arc<AtomicBool>,
    /// Its waker.
    waker: Arc<Waker>,
}

impl OutboundThread {
    /// Stop at once (attempts in flight stay pending in the spool) and wait for the thread.
    pub fn stop_and_join(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        match self.join.join() {
            Ok(Ok(c)) => log::debug!(
                "outbound worker exited connects={} connect_failures={} io_errors={}",
                c.connects,
                c.connect_failures,
                c.io_errors
            ),
            Ok(Err(e)) => log::error!("outbound worker: poll failed: {e}"),
            Err(_) => log::error!("outbound worker panicked"),
        }
    }
}

/// Start the outbound worker thread: a `net::Worker` with no listener, driving
/// [`Outbound`]. Reports go to `reports`.
pub fn spawn(
    opts: OutboundOptions,
    tls: OutboundTls,
    reports: Sender<TaskReport>,
) -> io::Result<(OutboundHandle, OutboundThread)> {
    let poll = WorkerPoll::new()?;
    let waker = poll.waker();
    let (tx, rx) = crossbeam_channel::unbounded();
    let wake_pending = Arc::new(AtomicBool::new(false));
    let handle =
        OutboundHandle { tx, waker: Arc::clone(&waker), wake_pending: Arc::clone(&wake_pending) };
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::clone(&stop);
    let join = std::thread::Builder::new().name("outbound".into()).spawn(move || {
        let service = Outbound::new(opts, tls, rx, wake_pending, reports);
        // The limits of `net` count accepted connections; an outbound worker accepts none.
        let limits = ConnLimits::new(0, 0);
        let wopts = WorkerOptions { index: opts.worker_index, shutdown_grace: SHUTDOWN_GRACE };
        Worker::new(poll, Vec::new(), service, limits, worker_stop, wopts)?.run()
    })?;
    Ok((handle, OutboundThread { join, stop, waker }))
}

/// Where a connection is.
enum Phase {
    /// TCP connect in progress (the worker holds the socket and its timeout).
    Connecting,
    /// Connected; the session drives the protocol.
    Open {
        /// The SMTP client (boxed: much larger than the connecting state).
        session: Box<ClientSession>,
        /// `Event::Ready` was seen once (greeting and EHLO succeeded).
        greeted: bool,
        /// Idle (no attempt) since; `None` while an attempt is in flight.
        idle_since: Option<Instant>,
        /// Where STARTTLS is on this connection.
        tls: TlsStep,
    },
}

/// STARTTLS on one connection, as the outbound service drives it.
#[derive(Debug)]
enum TlsStep {
    /// Plaintext (no STARTTLS yet, or none wanted).
    Off,
    /// The session got 220 to STARTTLS (`Event::StartTls`): `tls_start` starts the handshake.
    Wanted,
    /// The handshake runs in `net`; `error` is rustls' reason once it failed.
    Handshake {
        /// Text of the TLS error reported by `Service::tls_error`.
        error: Option<String>,
    },
    /// The handshake completed (`tls_established`).
    On,
}

/// One outbound connection's state (the worker's `Service::Conn`).
pub struct OutConn {
    /// Destination key.
    dest: Arc<str>,
    /// The host we are connected (connecting) to.
    target: Target,
    /// Targets to try after this one if it fails before the session is ready.
    remaining: Vec<Target>,
    /// The attempt in flight (one at a time).
    task: Option<OutboundTask>,
    /// Settings of the session (from the attempt that opened the connection).
    client: Arc<crate::smtp::client::ClientConfig>,
    /// Protocol phase.
    phase: Phase,
    /// Why the current target failed, once it did (reported if no target is left).
    last_reason: Option<String>,
    /// Close once the output is flushed (failure, shutdown).
    closing: bool,
    /// stats: when the current delivery attempt began (connect, or job start on reuse).
    attempt_start: Instant,
    /// The opportunistic (`may`) handshake failed: at close the attempt tries this same
    /// target once more without TLS (the retry's config has `tls: None`, so never twice).
    retry_plaintext: bool,
}

impl OutConn {
    /// Whether the greeting and EHLO succeeded on this connection.
    fn greeted(&self) -> bool {
        matches!(self.phase, Phase::Open { greeted: true, .. })
    }
}

/// The outbound service (see the module docs).
pub struct Outbound {
    /// Limits and timeouts.
    opts: OutboundOptions,
    /// Incoming attempts.
    rx: Receiver<OutboundTask>,
    /// See [`OutboundHandle::wake_pending`]; cleared before each drain of `rx`.
    wake_pending: Arc<AtomicBool>,
    /// Results to the runner.
    reports: Sender<TaskReport>,
    /// Results of this pass not yet sent (sent back to back in `end_of_pass`).
    pending_reports: Vec<TaskReport>,
    /// Destination queues, connection counts and idle connections.
    dests: DestQueues<OutboundTask, ConnId>,
    /// Connects to hand to the worker at its next `poll_connect`.
    connects: Vec<ConnectRequest<OutConn>>,
    /// Attempts given to idle connections, started in `resume`.
    handoff: Vec<(ConnId, OutboundTask)>,
    /// The pass's clock.
    now: Instant,
    /// stats: this thread's counter block (written only by the outbound thread).
    stats: Arc<CounterBlock>,
    /// The rustls client configurations (built once at start-up).
    tls: OutboundTls,
}

impl Outbound {
    /// The service, before any attempt.
    fn new(
        opts: OutboundOptions,
        tls: OutboundTls,
        rx: Receiver<OutboundTask>,
        wake_pending: Arc<AtomicBool>,
        reports: Sender<TaskReport>,
    ) -> Outbound {
        let limits = DestLimits {
            max_connections: opts.max_connections,
            max_per_dest: opts.max_connections_per_dest,
        };
        Outbound {
            opts,
            rx,
            wake_pending,
            reports,
            pending_reports: Vec::new(),
            dests: DestQueues::new(limits),
            connects: Vec::new(),
            handoff: Vec::new(),
            now: Instant::now(),
            stats: Registry::global().block(),
            tls,
        }
    }

    /// Drain the attempt channel into the destination queues.
    fn take_arrivals(&mut self) {
        self.wake_pending.swap(false, Ordering::AcqRel);
        loop {
            match self.rx.try_recv() {
                Ok(task) => self.place(task),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Reuse, connect or queue one attempt.
    fn place(&mut self, task: OutboundTask) {
        let key = Arc::clone(&task.dest_key);
        match self.dests.place(&key, task) {
            Placement::Reuse(id, task) => self.handoff.push((id, task)),
            Placement::Connect(task) => {
                let mut targets = task.targets.clone();
                let first = targets.remove(0); // invariant: targets not empty
                self.request(task, first, targets);
            }
            Placement::Queued => {}
        }
    }

    /// Ask the worker for a connection to `target` for `task` (its place is counted).
    fn request(&mut self, task: OutboundTask, target: Target, remaining: Vec<Target>) {
        let client = Arc::clone(&task.client);
        self.request_with(task, target, remaining, client);
    }

    /// `request` with the session settings given (a plaintext retry overrides the TLS
    /// policy of the attempt's own settings).
    fn request_with(
        &mut self,
        task: OutboundTask,
        target: Target,
        remaining: Vec<Target>,
        client: Arc<ClientConfig>,
    ) {
        log::debug!(
            "queue_id={} connecting host={} addr={}",
            task.task.id,
            target.name,
            target.addr
        );
        self.stats.inc(Counter::OutboundConnections); // stats: down in `gone`
        self.stats.inc(Counter::OutboundConnectionsTotal);
        let conn = OutConn {
            dest: Arc::clone(&task.dest_key),
            client,
            target: target.clone(),
            remaining,
            task: Some(task),
            phase: Phase::Connecting,
            last_reason: None,
            closing: false,
            attempt_start: self.now,
            retry_plaintext: false,
        };
        let timeout_ms = u64::try_from(self.opts.connect_timeout.as_millis()).unwrap_or(u64::MAX);
        self.connects.push(ConnectRequest { addr: target.addr, timeout_ms, state: conn });
    }

    /// A connection (or connect) ended: count it down; its attempt, if any, moves to the
    /// next target (before the session was ready), or is deferred; queued attempts of its
    /// destination get the freed place.
    fn gone(&mut self, id: Option<ConnId>, mut c: OutConn, reason: String) {
        self.stats.dec(Counter::OutboundConnections); // stats: up in `request`
        self.dests.closed(&c.dest, id);
        if let Some(id) = id {
            // An attempt handed to this connection but not started yet goes back first.
            while let Some(i) = self.handoff.iter().position(|(h, _)| *h == id) {
                let (_, task) = self.handoff.remove(i);
                self.dests.requeue_front(&c.dest, task);
            }
        }
        if let Some(task) = c.task.take() {
            let reason = c.last_reason.take().unwrap_or(reason);
            if c.greeted() {
                let outcome = RcptOutcome::Deferred { reason, dest_down: false };
                self.report(TaskReport::all(&task.task, &outcome));
            } else if c.retry_plaintext {
                log::info!(
                    "queue_id={} TLS handshake with {} failed ({reason}); retrying in plaintext",
                    task.task.id,
                    c.target.name
                );
                let plain = Arc::new(ClientConfig { tls: TlsPolicy::None, ..(*c.client).clone() });
                self.dests.opened(&c.dest);
                self.request_with(task, c.target.clone(), std::mem::take(&mut c.remaining), plain);
            } else if c.remaining.is_empty() {
                self.unreachable(task, &reason);
            } else {
                let next = c.remaining.remove(0);
                log::debug!("queue_id={} next host after: {reason}", task.task.id);
                self.dests.opened(&c.dest);
                self.request(task, next, std::mem::take(&mut c.remaining));
            }
        }
        self.dispatch(&c.dest);
    }

    /// Every target of `task` failed: defer it, and everything queued for its destination
    /// unless another connection to it is still open (they will get their turn).
    fn unreachable(&mut self, task: OutboundTask, reason: &str) {
        log::info!(
            "queue_id={} deferred domain={} reason={reason:?}",
            task.task.id,
            task.task.domain
        );
        let outcome = RcptOutcome::Deferred { reason: reason.to_owned(), dest_down: true };
        self.report(TaskReport::all(&task.task, &outcome));
        for t in self.dests.take_all_if_down(&task.dest_key) {
            self.report(TaskReport::all(&t.task, &outcome));
        }
    }

    /// Start queued attempts of `key` while the limits allow; forget it when unused.
    fn dispatch(&mut self, key: &Arc<str>) {
        while let Some(task) = self.dests.next_to_connect(key) {
            let mut targets = task.targets.clone();
            let first = targets.remove(0);
            self.request(task, first, targets);
        }
        self.dests.forget_if_unused(key);
    }

    /// Queue a report for the runner (sent in `end_of_pass`).
    fn report(&mut self, r: TaskReport) {
        self.pending_reports.push(r);
    }

    /// The session's next output: commands and dot-stuffing bytes into `out` (up to the
    /// high-water mark), and the next verbatim run of the content as a piece of the task's
    /// shared `Arc<[u8]>`, which `net` writes after `out` without copying it (issue 15).
    fn transmit(&self, c: &mut OutConn, out: &mut Vec<u8>) -> Option<SharedPiece> {
        let Phase::Open { session, .. } = &mut c.phase else { return None };
        let content = c.task.as_ref().map(|t| &t.task.content);
        let bytes: &[u8] = content.map_or(&[], |c| c);
        while out.len() < OUT_HIGH_WATER_BYTES && session.wants_write() {
            let before = out.len();
            let run = session.poll_transmit_borrowed(self.now, bytes, out);
            if !run.is_empty() {
                return content.map(|c| SharedPiece::new(Arc::clone(c), run));
            }
            if out.len() == before {
                break;
            }
        }
        None
    }

    /// Start `task` on the ready connection `c`; false if the session cannot take it.
    fn start(&mut self, c: &mut OutConn, task: OutboundTask) -> bool {
        let Phase::Open { session, idle_since, .. } = &mut c.phase else { return false };
        if session.send(task.task.job.clone(), self.now).is_err() {
            self.dests.requeue_front(&c.dest, task);
            return false;
        }
        *idle_since = None;
        c.attempt_start = self.now; // stats
        c.task = Some(task);
        true
    }

    /// The connection failed at the socket or protocol level: report or remember why,
    /// and close it (the worker calls `closed`, which moves the attempt on).
    fn failed(&mut self, c: &mut OutConn, err: &str) {
        let reason = format!("{}: {err}", c.target.name);
        self.stats.inc(Counter::OutboundConnectionErrors); // stats
        if c.greeted() {
            if let Some(t) = c.task.take() {
                let outcome = RcptOutcome::Deferred { reason, dest_down: false };
                self.report(TaskReport::all(&t.task, &outcome));
            }
        } else {
            c.last_reason = Some(reason);
        }
        c.closing = true;
    }

    /// The TLS handshake of `c` failed (`reason`: rustls' error or why it could not run):
    /// count it and tell the session, whose `SecurityFailed` event decides what follows.
    fn tls_failed(&mut self, c: &mut OutConn, reason: &str) {
        let Phase::Open { session, tls, .. } = &mut c.phase else { return };
        *tls = TlsStep::Off;
        self.stats.inc(match c.client.tls {
            TlsPolicy::None | TlsPolicy::May => Counter::OutboundTlsFailuresMay,
            TlsPolicy::Encrypt => Counter::OutboundTlsFailuresEncrypt,
            TlsPolicy::Verify => Counter::OutboundTlsFailuresVerify,
        }); // stats
        session.tls_failed(reason);
        self.handle_events(None, c);
    }

    /// Handle the session's events; `id` is known except on a timer.
    fn handle_events(&mut self, id: Option<ConnId>, c: &mut OutConn) {
        loop {
            let Phase::Open { session, greeted, idle_since, tls } = &mut c.phase else { return };
            let Some(ev) = session.poll_event() else { return };
            let mta = c.target.name.clone();
            match ev {
                Event::Ready => {
                    *greeted = true;
                    c.remaining.clear();
                    if let Some(t) = &c.task {
                        if session.ready_for_next() && session.messages_sent() == 0 {
                            let job = t.task.job.clone();
                            if session.send(job, self.now).is_err() {
                                log::warn!("outbound: session refused a job while ready");
                            }
                        }
                    } else if let Some(task) = self.dests.take_next(&c.dest) {
                        self.start(c, task);
                    } else {
                        *idle_since = Some(self.now);
                        if let Some(id) = id {
                            self.dests.set_idle(&c.dest, id);
                        }
                    }
                }
                Event::JobRefused(r) => {
                    if let Some(t) = c.task.take() {
                        let s = r.status();
                        let outcome = RcptOutcome::Failed {
                            status: format!("{}.{}.{}", s.class, s.subject, s.detail),
                            mta: Some(mta),
                            reply: None,
                            text: r.to_string(),
                        };
                        self.report(TaskReport::all(&t.task, &outcome));
                    }
                }
                Event::TransactionDone { mail_reply, rcpt_results, data_reply } => {
                    let peer_dsn = session.extensions().dsn;
                    let Some(t) = c.task.take() else { continue };
                    let results = session_outcomes(
                        &t.task.rcpt_index,
                        &mail_reply,
                        &rcpt_results,
                        data_reply.as_ref(),
                        &mta,
                        peer_dsn,
                    );
                    // stats: one attempt done; "sent" when any recipient was accepted.
                    let took = self.now.saturating_duration_since(c.attempt_start);
                    self.stats.record(Hist::DeliveryAttempt, took.as_micros() as u64);
                    if results.iter().any(|(_, o)| matches!(o, RcptOutcome::Delivered { .. })) {
                        self.stats.inc(Counter::MessagesSent);
                        self.stats.add(Counter::MessageBytesSent, t.task.content.len() as u64);
                    }
                    log::debug!(
                        "queue_id={} attempt domain={} host={mta} reply={:?}",
                        t.task.id,
                        t.task.domain,
                        data_reply.as_ref().map_or_else(|| reply_text(&mail_reply), reply_text)
                    );
                    self.report(TaskReport { id: t.task.id, domain: t.task.domain, results });
                }
                Event::LoopDetected(_) => {
                    if let Some(t) = c.task.take() {
                        let outcome = RcptOutcome::Failed {
                            status: LOOP_STATUS.to_owned(),
                            mta: Some(mta),
                            reply: None,
                            text: SELF_CONNECT_TEXT.to_owned(),
                        };
                        self.report(TaskReport::all(&t.task, &outcome));
                    }
                }
                Event::GreetingFailed(r) | Event::HelloFailed(r) => {
                    // The session sends QUIT (or is closed); the attempt moves on at close.
                    c.last_reason = Some(format!("{mta}: {}", reply_text(&r)));
                }
                Event::TimedOut { stage } => {
                    let reason = format!("{mta}: timed out waiting for {stage}");
                    if *greeted {
                        if let Some(t) = c.task.take() {
                            let outcome = RcptOutcome::Deferred { reason, dest_down: false };
                            self.report(TaskReport::all(&t.task, &outcome));
                        }
                    } else {
                        c.last_reason = Some(reason);
                    }
                }
                Event::Closed => {}
                // 220 to STARTTLS: `net` asks `tls_start` once the STARTTLS line is flushed.
                Event::StartTls => *tls = TlsStep::Wanted,
                // A TLS policy or AUTH failure moves on like a failed EHLO (next target, or
                // deferred with this as the last error); a failed `may` handshake retries
                // the same host once in plaintext (`gone`).
                Event::SecurityFailed(f) => {
                    c.retry_plaintext = f.plaintext_retry_allowed();
                    c.last_reason = Some(format!("{mta}: {f}"));
                }
            }
        }
    }
}

impl Service for Outbound {
    type Conn = OutConn;

    fn begin_pass(&mut self, now: Instant, _wall_clock: SystemTime) {
        self.now = now;
    }

    fn accept(
        &mut self,
        _peer: &Peer,
        _permit: Result<ConnPermit, LimitExceeded>,
        _out: &mut Vec<u8>,
    ) -> Option<OutConn> {
        None // no listener
    }

    fn read(&mut self, id: ConnId, c: &mut OutConn, input: &[u8], _out: &mut Vec<u8>) -> usize {
        if let Phase::Open { session, .. } = &mut c.phase
            && let Err(e) = session.handle_input(self.now, input)
        {
            self.failed(c, &e.to_string());
        }
        self.handle_events(Some(id), c);
        // Output is made by `produce`, which the worker calls before it writes.
        input.len()
    }

    fn wants_read(&self, c: &OutConn) -> bool {
        matches!(c.phase, Phase::Open { .. })
    }

    fn wants_close(&self, c: &OutConn) -> bool {
        c.closing || matches!(&c.phase, Phase::Open { session, .. } if session.is_closed())
    }

    fn idle_timeout_ms(&self, c: &OutConn) -> u64 {
        let Phase::Open { session, idle_since, .. } = &c.phase else { return NO_DEADLINE_MS };
        let idle = idle_since.map(|t| t + self.opts.idle_keep);
        let due = match (session.poll_timeout(), idle) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return NO_DEADLINE_MS,
        };
        let ms = due.saturating_duration_since(self.now).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX).max(1)
    }

    fn timed_out(&mut self, c: &mut OutConn, out: &mut Vec<u8>) {
        if let Phase::Open { session, idle_since, .. } = &mut c.phase {
            if idle_since.is_some_and(|t| t + self.opts.idle_keep <= self.now) {
                *idle_since = None;
                session.quit(self.now);
            }
            session.handle_timeout(self.now);
        }
        self.handle_events(None, c);
        // The connection closes after this: the goodbye (QUIT) goes out copied.
        if let Some(piece) = self.transmit(c, out) {
            out.extend_from_slice(piece.as_slice());
        }
    }

    fn shutdown(&mut self, c: &mut OutConn, _out: &mut Vec<u8>) {
        // The attempt in flight stays pending in the spool; nobody waits for its report.
        c.task = None;
        c.closing = true;
    }

    fn closed(&mut self, id: ConnId, mut c: OutConn, reason: CloseReason) {
        if let Phase::Open { tls: step @ (TlsStep::Wanted | TlsStep::Handshake { .. }), .. } =
            &mut c.phase
        {
            // Any close between the 220 to STARTTLS and the end of the handshake is its
            // failure (rustls' error when it had one). `Wanted` too: a server that gives up
            // on TLS right after its 220 may close before `net` starts the handshake (the
            // 220 and the FIN read in one pass).
            let error = match step {
                TlsStep::Handshake { error } => error.take(),
                _ => None,
            };
            let text = error.unwrap_or_else(|| format!("connection closed: {reason:?}"));
            self.tls_failed(&mut c, &text);
        }
        let why = match reason {
            CloseReason::Io(kind) => {
                self.stats.inc(Counter::OutboundConnectionErrors); // stats
                format!("{}: connection failed: {}", c.target.name, io::Error::from(kind))
            }
            CloseReason::TimedOut => format!("{}: timed out", c.target.name),
            _ => format!("{}: connection closed", c.target.name),
        };
        self.gone(Some(id), c, why);
    }

    fn poll_ready(&mut self, ready: &mut Vec<ConnId>) {
        self.take_arrivals();
        ready.extend(self.handoff.iter().map(|(id, _)| *id));
    }

    fn resume(&mut self, id: ConnId, c: &mut OutConn, _out: &mut Vec<u8>) {
        let (mine, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.handoff).into_iter().partition(|(h, _)| *h == id);
        self.handoff = rest;
        for (_, task) in mine {
            if c.task.is_some() {
                // Busy after all: the attempt waits for this connection's next turn.
                self.dests.requeue_front(&c.dest, task);
            } else {
                self.start(c, task); // requeues it if the session cannot take it
            }
        }
        // Output is made by `produce`, which the worker calls in the drive that follows.
    }

    fn end_of_pass(&mut self) {
        // Back to back, so the runner wakes once per pass rather than once per report.
        // Ignored if the runner is gone: the spool still has the recipients pending.
        for r in self.pending_reports.drain(..) {
            let _ = self.reports.send(r);
        }
    }

    fn has_outstanding(&self) -> bool {
        false
    }

    fn produce(&mut self, c: &mut OutConn, out: &mut Vec<u8>) -> Option<SharedPiece> {
        self.transmit(c, out)
    }

    fn poll_connect(&mut self, requests: &mut Vec<ConnectRequest<OutConn>>) {
        requests.append(&mut self.connects);
    }

    fn connected(&mut self, _id: ConnId, c: &mut OutConn, _out: &mut Vec<u8>) {
        let session = Box::new(ClientSession::new(Arc::clone(&c.client), self.now));
        c.phase = Phase::Open { session, greeted: false, idle_since: None, tls: TlsStep::Off };
    }

    fn tls_start(&mut self, c: &mut OutConn) -> Option<TlsStart> {
        let Phase::Open { tls, .. } = &mut c.phase else { return None };
        if !matches!(tls, TlsStep::Wanted) {
            return None;
        }
        let Some(name) = server_name(&c.target.name) else {
            self.tls_failed(c, "the host name is not usable as a TLS server name");
            return None;
        };
        *tls = TlsStep::Handshake { error: None };
        let config = self.tls.config(c.client.tls == TlsPolicy::Verify);
        Some(TlsStart::Client(config, name))
    }

    fn tls_established(&mut self, id: ConnId, c: &mut OutConn, info: &TlsInfo, _out: &mut Vec<u8>) {
        let Phase::Open { session, tls, .. } = &mut c.phase else { return };
        log::debug!(
            "outbound: TLS with {} version={} cipher={}",
            c.target.name,
            info.version,
            info.cipher
        );
        *tls = TlsStep::On;
        self.stats.inc(Counter::OutboundTlsConnections); // stats
        session.tls_established(self.now);
        self.handle_events(Some(id), c);
        // Output (EHLO again) is made by `produce`, called before the worker writes.
    }

    fn tls_error(&mut self, c: &mut OutConn, e: &rustls::Error) {
        if let Phase::Open { tls: TlsStep::Handshake { error }, .. } = &mut c.phase {
            *error = Some(e.to_string());
        }
    }

    fn connect_failed(&mut self, c: OutConn, addr: SocketAddr, error: ConnectError) {
        if matches!(error, ConnectError::ShuttingDown) {
            self.stats.dec(Counter::OutboundConnections); // stats: up in `request`
            return;
        }
        log::debug!("outbound: connect {addr} failed: {error}");
        self.stats.inc(Counter::OutboundConnectionErrors); // stats
        let reason = format!("{}: {error}", c.target.name);
        self.gone(None, c, reason);
    }
}
