//! The outbound event loop: one thread, one mio `Poll`, driving a sans-IO
//! [`ClientSession`] per outbound connection over non-blocking TCP.
//!
//! WHAT: tasks ([`OutboundTask`]) arrive on a crossbeam channel (the sender rings the
//! loop's `mio::Waker`). Tasks queue per destination key (the route). A task goes to an
//! idle connection of its destination if there is one (connection reuse up to
//! `max_messages_per_connection`, enforced by the session, which sends QUIT), else a new
//! connection is opened if both the global limit (`max_connections`) and the destination's
//! (`max_connections_per_domain`) allow, else it waits in the destination's queue.
//! A connection failure, a connect timeout, or a greeting/EHLO failure moves the task to
//! the next target (next address, next MX); when none is left the task is deferred with
//! `dest_down`, together with every task queued behind it for that destination (they
//! would hit the same wall). A greeting naming our own host name fails the task with 5.4.6
//! "Cannot connect to self". Results go back to the queue runner as [`TaskReport`]s.
//!
//! Edge-triggered rule (see `net/mod.rs`): reads and writes are drained until
//! `WouldBlock`; anything a read produces (the next command) is written in the same pass.
//! The loop never blocks except in `Poll::poll`; DNS was resolved before a task got here.
//!
//! TRUST: everything a remote server sends is parsed by the session (bounded); a peer can
//! only make its own connection fail. A message whose final reply is lost (connection
//! dropped after the dot) is deferred, so it may be delivered twice, never zero times.
//!
//! STANDARDS: RFC 5321 §5.1 (try the next MX on failure), §4.5.3.2 (timeouts, in the
//! session; the connect timeout is ours), §4.5.4.1 (one connection, several messages).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use super::route::{LOOP_STATUS, SELF_CONNECT_TEXT};
use super::task::{OutboundTask, RcptOutcome, Target, TaskReport};
use crate::smtp::client::{ClientSession, Event};
use crate::smtp::reply::Reply;
use crate::stats::{Counter, CounterBlock, Hist, Registry};

/// Token of the waker.
const WAKER_TOKEN: Token = Token(usize::MAX - 1);
/// Bytes read per `read` call.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Stop filling the output buffer above this many unsent bytes.
const OUT_HIGH_WATER_BYTES: usize = 64 * 1024;
/// Longest sleep in `poll`, so a closed task channel or the stop flag is noticed.
const MAX_POLL_WAIT: Duration = Duration::from_millis(200);
/// Most drive rounds per connection per pass (each round reads, handles events, writes).
const MAX_DRIVE_ROUNDS: usize = 64;

/// Limits and timeouts of the outbound loop.
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
}

/// Submits tasks to the outbound thread.
#[derive(Clone)]
pub struct OutboundHandle {
    /// The task queue.
    tx: Sender<OutboundTask>,
    /// Rings the loop.
    waker: Arc<Waker>,
    /// Set by the first submit after the loop last drained the queue; only that submit
    /// rings the waker (one eventfd write per batch of tasks, not one per task).
    wake_pending: Arc<AtomicBool>,
}

impl OutboundHandle {
    /// Hand a task to the loop. Returns it if the loop is gone.
    pub fn submit(&self, task: OutboundTask) -> Result<(), Box<OutboundTask>> {
        self.tx.send(task).map_err(|e| Box::new(e.0))?;
        // AcqRel pairs with the loop's swap(false) before it drains: either the loop's
        // drain sees this task, or this swap sees `false` and rings.
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && let Err(e) = self.waker.wake()
        {
            log::warn!("outbound: cannot wake the loop: {e}");
        }
        Ok(())
    }
}

/// Start the outbound thread. It exits when every [`OutboundHandle`] is dropped and no
/// connection is left, or at once when `stop` is set (tasks in flight stay pending in the
/// spool and are retried after restart).
pub fn spawn(
    opts: OutboundOptions,
    reports: Sender<TaskReport>,
    stop: Arc<AtomicBool>,
) -> io::Result<(OutboundHandle, JoinHandle<()>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
    let (tx, rx) = crossbeam_channel::unbounded();
    let wake_pending = Arc::new(AtomicBool::new(false));
    let handle = OutboundHandle { tx, waker, wake_pending: Arc::clone(&wake_pending) };
    let mut lp = Outbound {
        poll,
        opts,
        rx,
        wake_pending,
        reports,
        pending_reports: Vec::new(),
        stop,
        conns: Vec::new(),
        free: Vec::new(),
        dests: HashMap::new(),
        open: 0,
        buf: vec![0; READ_CHUNK_BYTES],
        stats: Registry::global().block(),
    };
    let thread = std::thread::Builder::new().name("outbound".into()).spawn(move || lp.run())?;
    Ok((handle, thread))
}

/// Where a connection is.
enum Phase {
    /// TCP connect in progress.
    Connecting {
        /// Give up (next target) at this time.
        deadline: Instant,
    },
    /// Connected; the session drives the protocol.
    Open {
        /// The SMTP client (boxed: much larger than the connecting state).
        session: Box<ClientSession>,
        /// `Event::Ready` was seen once (greeting and EHLO succeeded).
        greeted: bool,
        /// Idle (no task) since; `None` while a task is in flight.
        idle_since: Option<Instant>,
    },
}

/// One outbound connection.
struct Conn {
    /// The socket (registered READABLE | WRITABLE once).
    stream: TcpStream,
    /// Destination key.
    dest: Arc<str>,
    /// The host we are connected (connecting) to.
    target: Target,
    /// Targets to try after this one if it fails before the session is ready.
    remaining: Vec<Target>,
    /// The task in flight (taken by the first `Ready`, then one per transaction).
    task: Option<OutboundTask>,
    /// Protocol phase.
    phase: Phase,
    /// Output not yet written; `out[out_pos..]` is pending.
    out: Vec<u8>,
    /// Written prefix of `out`.
    out_pos: usize,
    /// Readiness seen and not yet consumed by `WouldBlock` or a short read (the rule of
    /// `net/mod.rs`).
    readable: bool,
    /// An event reported half-close or error: a short read no longer clears `readable`.
    read_closed: bool,
    /// See `readable`.
    writable: bool,
    /// Why the current target failed, once it did (reported if no target is left).
    last_reason: Option<String>,
    /// stats: when the current delivery attempt began (connect, or job start on reuse).
    attempt_start: Instant,
}

/// A destination's queue and connection count.
#[derive(Default)]
struct Dest {
    /// Tasks waiting for a connection, FIFO.
    queue: VecDeque<OutboundTask>,
    /// Connections open (or connecting) to it.
    conns: usize,
}

/// The loop's state.
struct Outbound {
    /// The poll.
    poll: Poll,
    /// Limits.
    opts: OutboundOptions,
    /// Incoming tasks.
    rx: Receiver<OutboundTask>,
    /// See [`OutboundHandle::wake_pending`]; cleared before each drain of `rx`.
    wake_pending: Arc<AtomicBool>,
    /// Results to the runner.
    reports: Sender<TaskReport>,
    /// Results of this loop pass not yet sent (see [`Outbound::send_reports`]).
    pending_reports: Vec<TaskReport>,
    /// Stop at once.
    stop: Arc<AtomicBool>,
    /// Connection slots; the index is the mio token.
    conns: Vec<Option<Conn>>,
    /// Free slots.
    free: Vec<usize>,
    /// Destinations with queued tasks or connections.
    dests: HashMap<Arc<str>, Dest>,
    /// Connections open in total. Invariant: = number of `Some` in `conns`.
    open: usize,
    /// Read scratch buffer.
    buf: Vec<u8>,
    /// stats: this thread's counter block (written only by the outbound thread).
    stats: Arc<CounterBlock>,
}

/// A reply as one line of text: `550 5.1.1 text` (multi-line replies joined with " / ").
pub fn reply_text(r: &Reply) -> String {
    let mut v = Vec::new();
    r.write_to(&mut v);
    let s = String::from_utf8_lossy(&v);
    s.trim_end().split("\r\n").collect::<Vec<_>>().join(" / ")
}

/// The enhanced status of a reply, or a default from its class.
fn status_of(r: &Reply) -> String {
    match r.status {
        Some(s) => format!("{}.{}.{}", s.class, s.subject, s.detail),
        None => format!("{}.0.0", r.code / 100),
    }
}

/// The outcome for one recipient from the reply that decided it.
fn outcome_from_reply(r: &Reply, mta: &str, peer_dsn: bool) -> RcptOutcome {
    if r.is_positive() {
        RcptOutcome::Delivered { mta: mta.to_owned(), dsn_passed_on: peer_dsn }
    } else if r.is_permanent() {
        RcptOutcome::Failed {
            status: status_of(r),
            mta: Some(mta.to_owned()),
            reply: Some(reply_text(r)),
            text: String::new(),
        }
    } else {
        RcptOutcome::Deferred { reason: format!("{mta}: {}", reply_text(r)), dest_down: false }
    }
}

impl Outbound {
    /// The loop.
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        let mut disconnected = false;
        loop {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let now = Instant::now();
            let wait = self
                .next_deadline()
                .map_or(MAX_POLL_WAIT, |d| d.saturating_duration_since(now).min(MAX_POLL_WAIT));
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("outbound: poll failed: {e}");
                break;
            }
            let now = Instant::now();
            for ev in &events {
                if ev.token() == WAKER_TOKEN {
                    continue;
                }
                let slot = ev.token().0;
                if let Some(Some(c)) = self.conns.get_mut(slot) {
                    let trouble = ev.is_read_closed() || ev.is_error();
                    c.readable |= ev.is_readable() || trouble;
                    c.read_closed |= trouble;
                    c.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
                }
                self.drive(slot, now);
            }
            self.wake_pending.swap(false, Ordering::AcqRel);
            loop {
                match self.rx.try_recv() {
                    Ok(t) => self.enqueue(t, now),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            self.handle_timeouts(now);
            self.send_reports();
            if disconnected && self.open == 0 && self.dests.values().all(|d| d.queue.is_empty()) {
                break;
            }
        }
        log::info!("outbound loop exiting connections={}", self.open);
    }

    /// Earliest deadline of any connection.
    fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().filter_map(|c| self.deadline_of(c)).min()
    }

    /// When `c` needs attention without I/O.
    fn deadline_of(&self, c: &Conn) -> Option<Instant> {
        match &c.phase {
            Phase::Connecting { deadline } => Some(*deadline),
            Phase::Open { session, idle_since, .. } => {
                let idle = idle_since.map(|t| t + self.opts.idle_keep);
                match (session.poll_timeout(), idle) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// A task arrived: give it to an idle connection, a new one, or queue it.
    fn enqueue(&mut self, task: OutboundTask, now: Instant) {
        let key = Arc::clone(&task.dest_key);
        // An idle connection of this destination?
        let idle = self.conns.iter().position(|c| {
            c.as_ref().is_some_and(|c| {
                c.dest == key
                    && c.task.is_none()
                    && matches!(&c.phase, Phase::Open { session, .. } if session.ready_for_next())
            })
        });
        if let Some(slot) = idle {
            self.start_on(slot, task, now);
            self.drive(slot, now);
            return;
        }
        let dest = self.dests.entry(Arc::clone(&key)).or_default();
        if dest.conns < self.opts.max_connections_per_dest && self.open < self.opts.max_connections
        {
            let mut targets = task.targets.clone();
            let first = targets.remove(0);
            self.connect(task, first, targets, now);
        } else {
            dest.queue.push_back(task);
        }
    }

    /// Start `task` on the idle connection `slot`.
    fn start_on(&mut self, slot: usize, task: OutboundTask, now: Instant) {
        let Some(Some(c)) = self.conns.get_mut(slot) else { return };
        let Phase::Open { session, idle_since, .. } = &mut c.phase else { return };
        *idle_since = None;
        c.attempt_start = now; // stats
        if let Err(job) = session.send(task.task.job.clone(), now) {
            // Not ready after all (a caller bug): put it back in the queue.
            let _ = job;
            self.dests.entry(Arc::clone(&c.dest)).or_default().queue.push_front(task);
            return;
        }
        c.task = Some(task);
    }

    /// Open a connection to `target` for `task`; on immediate failure try `rest`.
    fn connect(&mut self, task: OutboundTask, target: Target, rest: Vec<Target>, now: Instant) {
        let mut target = target;
        let mut rest = rest;
        loop {
            match TcpStream::connect(target.addr) {
                Ok(mut stream) => {
                    let slot = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(slot),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("outbound: register failed: {e}");
                        self.free.push(slot);
                    } else {
                        log::debug!(
                            "queue_id={} connecting host={} addr={}",
                            task.task.id,
                            target.name,
                            target.addr
                        );
                        self.dests.entry(Arc::clone(&task.dest_key)).or_default().conns += 1;
                        self.open += 1;
                        self.stats.inc(Counter::OutboundConnections); // stats: down in `close`
                        self.stats.inc(Counter::OutboundConnectionsTotal);
                        self.conns[slot] = Some(Conn {
                            stream,
                            dest: Arc::clone(&task.dest_key),
                            target,
                            remaining: rest,
                            task: Some(task),
                            phase: Phase::Connecting { deadline: now + self.opts.connect_timeout },
                            out: Vec::new(),
                            out_pos: 0,
                            readable: false,
                            read_closed: false,
                            writable: false,
                            last_reason: None,
                            attempt_start: now,
                        });
                        return;
                    }
                }
                Err(e) => {
                    log::debug!("outbound: connect {} failed: {e}", target.addr);
                    self.stats.inc(Counter::OutboundConnectionErrors); // stats
                }
            }
            if rest.is_empty() {
                let reason = format!("{}: connection failed", target.name);
                self.dest_unreachable(task, &reason, now);
                return;
            }
            target = rest.remove(0);
        }
    }

    /// Every target of `task` failed: defer it and everything queued for its destination
    /// (unless another connection to it is still open: they will get their turn).
    fn dest_unreachable(&mut self, task: OutboundTask, reason: &str, now: Instant) {
        log::info!(
            "queue_id={} deferred domain={} reason={reason:?}",
            task.task.id,
            task.task.domain
        );
        let outcome = RcptOutcome::Deferred { reason: reason.to_owned(), dest_down: true };
        let key = Arc::clone(&task.dest_key);
        self.report(TaskReport::all(&task.task, &outcome));
        let drained: Vec<OutboundTask> = match self.dests.get_mut(&key) {
            Some(d) if d.conns == 0 => d.queue.drain(..).collect(),
            _ => Vec::new(),
        };
        for t in drained {
            self.report(TaskReport::all(&t.task, &outcome));
        }
        self.dispatch(&key, now);
        self.forget_dest_if_unused(&key);
    }

    /// Queue a report for the runner; [`Outbound::send_reports`] sends them at the end of
    /// the loop pass.
    fn report(&mut self, r: TaskReport) {
        self.pending_reports.push(r);
    }

    /// Send the pass's reports back to back, so the runner wakes once per pass rather than
    /// once per report (a futex wake and a context switch each). Ignored if the runner is
    /// gone: the spool still has the recipients pending.
    fn send_reports(&mut self) {
        for r in self.pending_reports.drain(..) {
            let _ = self.reports.send(r);
        }
    }

    /// Start queued tasks of `key` while the limits allow.
    fn dispatch(&mut self, key: &Arc<str>, now: Instant) {
        loop {
            let Some(d) = self.dests.get_mut(key) else { return };
            if d.queue.is_empty()
                || d.conns >= self.opts.max_connections_per_dest
                || self.open >= self.opts.max_connections
            {
                return;
            }
            let Some(task) = d.queue.pop_front() else { return };
            let mut targets = task.targets.clone();
            let first = targets.remove(0);
            self.connect(task, first, targets, now);
        }
    }

    /// Drop a destination entry with nothing queued and no connection.
    fn forget_dest_if_unused(&mut self, key: &Arc<str>) {
        if self.dests.get(key).is_some_and(|d| d.conns == 0 && d.queue.is_empty()) {
            self.dests.remove(key);
        }
    }

    /// Deadlines: connect timeouts, session timeouts, idle connections.
    fn handle_timeouts(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let due = match &self.conns[slot] {
                Some(c) => self.deadline_of(c).is_some_and(|d| d <= now),
                None => false,
            };
            if !due {
                continue;
            }
            let Some(c) = self.conns[slot].as_mut() else { continue };
            match &mut c.phase {
                Phase::Connecting { .. } => {
                    let reason = format!("{}: connection timed out", c.target.name);
                    self.fail_before_ready(slot, &reason, now);
                    continue;
                }
                Phase::Open { session, idle_since, .. } => {
                    if idle_since.is_some_and(|t| t + self.opts.idle_keep <= now) {
                        *idle_since = None;
                        session.quit(now);
                    }
                    session.handle_timeout(now);
                }
            }
            self.drive(slot, now);
        }
    }

    /// Make progress on connection `slot`: finish connecting, read, handle events, write.
    fn drive(&mut self, slot: usize, now: Instant) {
        for _ in 0..MAX_DRIVE_ROUNDS {
            let Some(Some(c)) = self.conns.get_mut(slot) else { return };
            if let Phase::Connecting { .. } = c.phase {
                if !(c.writable || c.readable) {
                    return;
                }
                match c.stream.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => {
                        let reason = format!("{}: connection failed: {e}", c.target.name);
                        return self.fail_before_ready(slot, &reason, now);
                    }
                }
                match c.stream.peer_addr() {
                    Ok(_) => {
                        let session = Box::new(ClientSession::new(c.task_client(), now));
                        c.phase = Phase::Open { session, greeted: false, idle_since: None };
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        c.writable = false;
                        c.readable = false;
                        return;
                    }
                    Err(e) => {
                        let reason = format!("{}: connection failed: {e}", c.target.name);
                        return self.fail_before_ready(slot, &reason, now);
                    }
                }
            }
            let mut progress = false;
            // Read until WouldBlock or a short read.
            let mut eof = false;
            let mut input_err = None;
            if c.readable {
                loop {
                    match c.stream.read(&mut self.buf) {
                        Ok(0) => {
                            eof = true;
                            c.readable = false;
                            break;
                        }
                        Ok(n) => {
                            progress = true;
                            if n < self.buf.len() && !c.read_closed {
                                // Short read: drained; the next arrival is a new edge.
                                c.readable = false;
                            }
                            if let Phase::Open { session, .. } = &mut c.phase
                                && let Err(e) = session.handle_input(now, &self.buf[..n])
                            {
                                input_err = Some(e.to_string());
                                break;
                            }
                            if !c.readable {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            c.readable = false;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            input_err = Some(e.to_string());
                            c.readable = false;
                            break;
                        }
                    }
                }
            }
            if eof
                && input_err.is_none()
                && let Phase::Open { session, .. } = &mut c.phase
                && let Err(e) = session.handle_close()
            {
                input_err = Some(e.to_string());
            }
            if let Some(err) = input_err {
                return self.session_failed(slot, &err, now);
            }
            // Events.
            progress |= self.handle_events(slot, now);
            let Some(Some(c)) = self.conns.get_mut(slot) else { return };
            // Write until WouldBlock.
            if let Phase::Open { session, .. } = &mut c.phase {
                if c.out_pos == c.out.len() {
                    c.out.clear();
                    c.out_pos = 0;
                }
                while c.out.len() - c.out_pos < OUT_HIGH_WATER_BYTES && session.wants_write() {
                    let content: &[u8] = c.task.as_ref().map_or(&[], |t| &t.task.content);
                    if session.poll_transmit(now, content, &mut c.out) == 0 {
                        break;
                    }
                }
            }
            while c.writable && c.out_pos < c.out.len() {
                match c.stream.write(&c.out[c.out_pos..]) {
                    Ok(n) => {
                        c.out_pos += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return self.session_failed(slot, &e.to_string(), now),
                }
            }
            let closed = match &c.phase {
                Phase::Open { session, .. } => session.is_closed(),
                Phase::Connecting { .. } => false,
            };
            if closed && (c.out_pos == c.out.len() || eof) {
                return self.close(slot, now);
            }
            if !progress {
                return;
            }
        }
    }

    /// Handle the session's events. Returns true if anything happened.
    fn handle_events(&mut self, slot: usize, now: Instant) -> bool {
        let mut any = false;
        loop {
            let Some(Some(c)) = self.conns.get_mut(slot) else { return any };
            let Phase::Open { session, greeted, idle_since } = &mut c.phase else { return any };
            let Some(ev) = session.poll_event() else { return any };
            any = true;
            let mta = c.target.name.clone();
            match ev {
                Event::Ready => {
                    *greeted = true;
                    c.remaining.clear();
                    if let Some(t) = &c.task {
                        if session.ready_for_next() && session.messages_sent() == 0 {
                            let job = t.task.job.clone();
                            if session.send(job, now).is_err() {
                                log::warn!("outbound: session refused a job while ready");
                            }
                        }
                    } else {
                        let next = self.dests.get_mut(&c.dest).and_then(|d| d.queue.pop_front());
                        match next {
                            Some(task) => {
                                let _ = session.send(task.task.job.clone(), now);
                                c.task = Some(task);
                                c.attempt_start = now; // stats
                            }
                            None => *idle_since = Some(now),
                        }
                    }
                }
                Event::JobRefused(r) => {
                    if let Some(t) = c.task.take() {
                        let outcome = RcptOutcome::Failed {
                            status: {
                                let s = r.status();
                                format!("{}.{}.{}", s.class, s.subject, s.detail)
                            },
                            mta: Some(mta),
                            reply: None,
                            text: r.to_string(),
                        };
                        self.report(TaskReport::all(&t.task, &outcome));
                    }
                }
                Event::TransactionDone { mail_reply, rcpt_results, data_reply } => {
                    let peer_dsn = session.extensions().dsn;
                    if let Some(t) = c.task.take() {
                        let mut results = Vec::with_capacity(t.task.rcpt_index.len());
                        for (i, &idx) in t.task.rcpt_index.iter().enumerate() {
                            let reply = rcpt_results
                                .iter()
                                .find(|r| r.index == i)
                                .map_or(&mail_reply, |r| r.outcome(data_reply.as_ref()));
                            results.push((idx, outcome_from_reply(reply, &mta, peer_dsn)));
                        }
                        // stats: one attempt done; "sent" when any recipient was accepted.
                        let s = &self.stats;
                        let took = now.saturating_duration_since(c.attempt_start);
                        s.record(Hist::DeliveryAttempt, took.as_micros() as u64);
                        if results.iter().any(|(_, o)| matches!(o, RcptOutcome::Delivered { .. })) {
                            s.inc(Counter::MessagesSent);
                            s.add(Counter::MessageBytesSent, t.task.content.len() as u64);
                        }
                        log::debug!(
                            "queue_id={} attempt domain={} host={mta} reply={:?}",
                            t.task.id,
                            t.task.domain,
                            data_reply.as_ref().map_or_else(|| reply_text(&mail_reply), reply_text)
                        );
                        self.report(TaskReport { id: t.task.id, domain: t.task.domain, results });
                    }
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
                    let reason = format!("{mta}: {}", reply_text(&r));
                    // The session sends QUIT (or is closed); the task moves on at close.
                    c.remaining_reason(reason);
                }
                Event::TimedOut { stage } => {
                    let reason = format!("{mta}: timed out waiting for {stage}");
                    if *greeted {
                        if let Some(t) = c.task.take() {
                            let outcome = RcptOutcome::Deferred { reason, dest_down: false };
                            self.report(TaskReport::all(&t.task, &outcome));
                        }
                    } else {
                        c.remaining_reason(reason);
                    }
                }
                Event::Closed => {}
            }
        }
    }

    /// The connection failed at the socket or protocol level.
    fn session_failed(&mut self, slot: usize, err: &str, now: Instant) {
        let Some(Some(c)) = self.conns.get_mut(slot) else { return };
        let greeted = matches!(c.phase, Phase::Open { greeted: true, .. });
        let reason = format!("{}: {err}", c.target.name);
        if greeted {
            self.stats.inc(Counter::OutboundConnectionErrors); // stats
            if let Some(t) = c.task.take() {
                let outcome = RcptOutcome::Deferred { reason, dest_down: false };
                self.report(TaskReport::all(&t.task, &outcome));
            }
            self.close(slot, now);
        } else {
            self.fail_before_ready(slot, &reason, now);
        }
    }

    /// The connection failed before the session was ready: try the next target.
    fn fail_before_ready(&mut self, slot: usize, reason: &str, now: Instant) {
        self.stats.inc(Counter::OutboundConnectionErrors); // stats
        if let Some(Some(c)) = self.conns.get_mut(slot) {
            c.remaining_reason(reason.to_owned());
        }
        self.close(slot, now);
    }

    /// Close connection `slot`; a task still on it moves to the next target (before the
    /// session was ready) or is deferred.
    fn close(&mut self, slot: usize, now: Instant) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        let _ = self.poll.registry().deregister(&mut c.stream);
        drop(c.stream);
        self.free.push(slot);
        self.open -= 1;
        self.stats.dec(Counter::OutboundConnections); // stats: up in `connect`
        if let Some(d) = self.dests.get_mut(&c.dest) {
            d.conns -= 1;
        }
        let greeted = matches!(c.phase, Phase::Open { greeted: true, .. });
        if let Some(task) = c.task.take() {
            let reason = c
                .last_reason
                .take()
                .unwrap_or_else(|| format!("{}: connection closed", c.target.name));
            if greeted {
                let outcome = RcptOutcome::Deferred { reason, dest_down: false };
                self.report(TaskReport::all(&task.task, &outcome));
            } else if c.remaining.is_empty() {
                self.dest_unreachable(task, &reason, now);
            } else {
                let mut rest = std::mem::take(&mut c.remaining);
                let next = rest.remove(0);
                log::debug!("queue_id={} next host after: {reason}", task.task.id);
                self.connect(task, next, rest, now);
            }
        }
        let key = Arc::clone(&c.dest);
        self.dispatch(&key, now);
        self.forget_dest_if_unused(&key);
    }
}

impl Conn {
    /// The client settings of the connection (from its first task).
    fn task_client(&self) -> Arc<crate::smtp::client::ClientConfig> {
        self.task.as_ref().map(|t| Arc::clone(&t.client)).unwrap_or_default()
    }

    /// Remember why the current target failed (used when the connection closes).
    fn remaining_reason(&mut self, reason: String) {
        self.last_reason = Some(reason);
    }
}
