//! `source` mode: N concurrent SMTP sessions sending M messages in total.
//!
//! Each session is one OS thread with a blocking socket. A session connects, reads the 220,
//! sends EHLO, then runs MAIL / RCPT... / DATA transactions (pipelined as one write when
//! `--pipelining` is given and the server advertises PIPELINING, RFC 2920) until it has sent
//! `--per-connection` messages, then QUITs and reconnects. Sessions claim message numbers
//! from one shared atomic counter, so the run sends at most `--messages` transactions; it
//! also stops at `--max-seconds` (no new transaction starts after it, and every socket
//! timeout is capped so that threads finish shortly after).
//!
//! A connect failure or a refused transaction consumes its message number, so a dead or
//! refusing server ends the run quickly instead of spinning.
//!
//! Open loop (`--rate R`): message number `n` is due at `start + n / R` whatever happened
//! before; a session that claims it early sleeps until then, a session that claims it late
//! (every session was busy: the server is not keeping up) sends at once. The `sched` stage
//! measures from the due time to the end-of-data 250, so time spent waiting for a free
//! session counts: coordinated omission cannot hide queueing (Tene, "How NOT to measure
//! latency"). Without `--rate` the sessions run closed loop, as fast as replies come.
//!
//! TLS (`--starttls`, `--implicit-tls`): with STARTTLS a session sends EHLO, STARTTLS,
//! runs the handshake, sends EHLO again (RFC 3207 §4.2: the server forgets the first one)
//! and only then its transactions; with implicit TLS (RFC 8314) it handshakes right after
//! connect and reads the greeting over TLS. The handshake alone is the `tls` stage; the
//! report adds handshakes per second. `--handshake-only` turns every message number into
//! one connection without mail (connect, TLS, EHLO, QUIT), to measure handshakes per
//! second on their own.
//!
//! STANDARDS: RFC 5321 (§3.3 mail transactions, §4.1.1 commands), RFC 2920 (PIPELINING),
//! RFC 3207 (STARTTLS), RFC 8314 (implicit TLS).

mod report;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::{ClientError, Connection, advertises};
use crate::message::{END_OF_DATA, MessageTemplate, recipient};
use crate::relay::Tracker;
use crate::size::SizeDist;
use crate::stats::{Stage, Stats, per_second};
use crate::tls::{ClientTls, Mode, Negotiated};

/// Stack size of each session thread, in bytes (sessions keep little on the stack).
const SESSION_STACK_BYTES: usize = 256 * 1024;
/// Pause after a failed connect before the session tries again.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// Time allowed after `--max-seconds` for in-flight replies before sockets time out.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// What `source` was asked to do.
#[derive(Clone, Debug)]
pub(crate) struct SourceOptions {
    /// Loopback server address (checked by `target::loopback_addr`).
    pub(crate) server: SocketAddr,
    /// Concurrent sessions (threads), >= 1.
    pub(crate) sessions: usize,
    /// Total transactions to attempt, >= 1.
    pub(crate) messages: u64,
    /// Message sizes in bytes, headers included, excluding the final `.` line.
    pub(crate) size: SizeDist,
    /// Open-loop target rate in messages per second (None: closed loop).
    pub(crate) rate: Option<f64>,
    /// Run nonce written into every `X-Loadtest-Id` header.
    pub(crate) run: u64,
    /// Show an indicatif progress bar on stderr (only when it is a terminal).
    pub(crate) progress: bool,
    /// `relay` mode: where to note each message's end-of-data time.
    pub(crate) tracker: Option<Arc<Tracker>>,
    /// Recipients per message, >= 1.
    pub(crate) rcpts: usize,
    /// Send MAIL/RCPT/DATA in one write when the server allows it.
    pub(crate) pipelining: bool,
    /// EHLO argument.
    pub(crate) helo: String,
    /// MAIL FROM address.
    pub(crate) from: String,
    /// First RCPT TO address (see `message::recipient` for the others).
    pub(crate) to: String,
    /// Transactions per connection before QUIT and reconnect, >= 1.
    pub(crate) per_connection: u32,
    /// Wall-clock bound of the whole run.
    pub(crate) max_duration: Duration,
    /// Bound on each connect, read and write.
    pub(crate) io_timeout: Duration,
    /// STARTTLS or implicit TLS, with its client configuration (None: plaintext).
    pub(crate) tls: Option<ClientTls>,
    /// Each message number is one connection without mail (connect, TLS, EHLO, QUIT).
    pub(crate) handshake_only: bool,
}

/// State shared by all session threads; only atomics and constants.
struct Shared {
    /// The run's options.
    opts: SourceOptions,
    /// Next message number to hand out; a session may send number `n` only if `n < messages`.
    next_message: AtomicU64,
    /// The common start (set by the main thread just before the start barrier opens).
    start: OnceLock<Instant>,
    /// Transactions finished (accepted or not), for the progress bar.
    finished: AtomicU64,
    /// Transactions accepted, for the progress bar.
    accepted: AtomicU64,
}

impl Shared {
    /// The common start instant.
    fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    /// No transaction starts at or after this instant.
    fn deadline(&self) -> Instant {
        self.start() + self.opts.max_duration
    }

    /// When message `seq` is due in open-loop mode.
    fn due(&self, seq: u64) -> Option<Instant> {
        let rate = self.opts.rate?;
        Some(self.start() + Duration::from_secs_f64(seq as f64 / rate))
    }

    /// Claim the next message number, or `None` when the run is over.
    fn claim(&self) -> Option<u64> {
        if Instant::now() >= self.deadline() {
            return None;
        }
        let n = self.next_message.fetch_add(1, Ordering::Relaxed);
        (n < self.opts.messages).then_some(n)
    }

    /// Socket timeout for a connection opened now: `io_timeout`, capped so that nothing
    /// blocks much past the deadline. `None` if the deadline (plus grace) has passed.
    fn socket_timeout(&self) -> Option<Duration> {
        let left = (self.deadline() + DEADLINE_GRACE).checked_duration_since(Instant::now())?;
        let t = left.min(self.opts.io_timeout);
        (!t.is_zero()).then_some(t)
    }
}

/// The result of a finished run.
pub(crate) struct SourceReport {
    /// The options it ran with.
    opts: SourceOptions,
    /// Merged counts and histograms of every session.
    stats: Stats,
    /// Wall time from the common start until the last session finished.
    elapsed: Duration,
    /// Transactions attempted (accepted + failed).
    attempted: u64,
    /// True if the run ended because `--max-seconds` passed.
    hit_deadline: bool,
}

/// Run the load and return the merged report.
pub(crate) fn run(opts: SourceOptions) -> SourceReport {
    let sessions = opts.sessions;
    let barrier = Arc::new(Barrier::new(sessions + 1));
    let shared = Arc::new(Shared {
        next_message: AtomicU64::new(0),
        start: OnceLock::new(),
        finished: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        opts: opts.clone(),
    });
    let mut handles = Vec::with_capacity(sessions);
    let mut spawn_failures = 0u64;
    for id in 0..sessions {
        let shared = Arc::clone(&shared);
        let barrier = Arc::clone(&barrier);
        let spawned = std::thread::Builder::new()
            .name(format!("session-{id}"))
            .stack_size(SESSION_STACK_BYTES)
            .spawn(move || {
                barrier.wait();
                session(id, &shared)
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(_) => spawn_failures += 1,
        }
    }
    // Threads that failed to spawn never reach the barrier; stand in for them.
    for _ in 0..spawn_failures {
        let barrier = Arc::clone(&barrier);
        std::thread::spawn(move || barrier.wait());
    }
    let start = shared.start();
    barrier.wait();
    let done = Arc::new(AtomicBool::new(false));
    // indicatif's stderr target hides itself off a terminal too; checking first also
    // saves the thread.
    let progress = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let (shared, done) = (Arc::clone(&shared), Arc::clone(&done));
        let bar = Progress::new(opts.messages, start, ProgressDrawTarget::stderr());
        std::thread::spawn(move || progress_loop(&shared, &done, bar))
    });
    let mut stats = Stats::new();
    for _ in 0..spawn_failures {
        stats.error("thread spawn failed".to_owned());
    }
    for h in handles {
        match h.join() {
            Ok(s) => stats.merge(&s),
            Err(_) => stats.error("session thread panicked".to_owned()),
        }
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.join();
    }
    let attempted = stats.accepted + stats.failed;
    let hit_deadline = attempted < opts.messages;
    SourceReport { opts, stats, elapsed, attempted, hit_deadline }
}

/// Interval between progress bar updates (the session threads never touch the bar).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Template of the progress bar: bar, finished/total, message, elapsed time.
const PROGRESS_TEMPLATE: &str = "[{bar:30}] {pos}/{len} {msg} {elapsed}";

/// The indicatif progress bar of a run and what its rate is measured from.
struct Progress {
    /// Length = `--messages`, position = transactions finished (accepted or not).
    bar: ProgressBar,
    /// Time and finished count of the previous update, for the current rate.
    last: (Instant, u64),
}

impl Progress {
    /// A bar of `total` messages drawn to `target`, counting from `start`.
    fn new(total: u64, start: Instant, target: ProgressDrawTarget) -> Self {
        let style = ProgressStyle::with_template(PROGRESS_TEMPLATE)
            .expect("PROGRESS_TEMPLATE is a valid template")
            .progress_chars("#>-");
        let bar = ProgressBar::with_draw_target(Some(total), target).with_style(style);
        Progress { bar, last: (start, 0) }
    }

    /// Move the bar to `finished` and show `accepted` and the rate since the last update.
    fn update(&mut self, now: Instant, finished: u64, accepted: u64) {
        let (then, before) = self.last;
        let rate = per_second(
            finished.saturating_sub(before),
            now.saturating_duration_since(then).as_secs_f64(),
        );
        self.last = (now, finished);
        self.bar.set_position(finished);
        self.bar.set_message(progress_message(finished, accepted, rate));
    }
}

/// Update the progress bar from the shared counters until `done`, then clear it so the
/// report prints on a clean line.
fn progress_loop(shared: &Shared, done: &AtomicBool, mut progress: Progress) {
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(PROGRESS_EVERY);
        progress.update(
            Instant::now(),
            shared.finished.load(Ordering::Relaxed),
            shared.accepted.load(Ordering::Relaxed),
        );
    }
    progress.bar.finish_and_clear();
}

/// The bar's message: accepted and failed transactions and the current rate.
fn progress_message(finished: u64, accepted: u64, rate: f64) -> String {
    format!("{accepted} accepted, {} failed, {rate:.0} msgs/s", finished - accepted.min(finished))
}

/// One session thread: transactions until the shared counter or the deadline says stop.
fn session(id: usize, shared: &Shared) -> Stats {
    let o = &shared.opts;
    let mut stats = Stats::new();
    let max_size = usize::try_from(o.size.max()).unwrap_or(usize::MAX);
    let template = MessageTemplate::new(id, o.run, max_size, &o.from, &o.to);
    let envelope = Envelope::new(o);
    let mut message = Vec::with_capacity(max_size + 256);
    let mut conn: Option<(Connection, bool)> = None; // (connection, pipelining usable)
    let mut sent_on_conn = 0u32;

    while let Some(seq) = shared.claim() {
        let due = shared.due(seq);
        if let Some(due) = due {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(
                    (due - now).min(shared.deadline().saturating_duration_since(now)),
                );
            }
        }
        if o.handshake_only {
            match open(shared, &mut stats) {
                Ok((mut c, _)) => {
                    quit(&mut c);
                    stats.accepted += 1;
                    shared.accepted.fetch_add(1, Ordering::Relaxed);
                }
                Err(key) => {
                    stats.failed += 1;
                    stats.error(key);
                }
            }
            shared.finished.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if conn.is_none() {
            match open(shared, &mut stats) {
                Ok(opened) => {
                    sent_on_conn = 0;
                    conn = Some(opened);
                }
                Err(key) => {
                    stats.failed += 1;
                    stats.error(key);
                    shared.finished.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(CONNECT_RETRY_PAUSE);
                    continue;
                }
            }
        }
        let Some((c, pipelined)) = conn.as_mut() else { continue };
        template.render(seq, usize::try_from(o.size.pick(seq)).unwrap_or(usize::MAX), &mut message);
        let tracker = o.tracker.as_deref().map(|t| (t, seq));
        let outcome = transaction(c, *pipelined, &envelope, &message, tracker, &mut stats);
        sent_on_conn += 1;
        shared.finished.fetch_add(1, Ordering::Relaxed);
        let keep = match outcome {
            Ok(Outcome::Accepted(done_at)) => {
                if let Some(due) = due {
                    stats.record(Stage::Scheduled, done_at.saturating_duration_since(due));
                }
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                stats.accepted += 1;
                stats.accepted_bytes += (message.len() - END_OF_DATA.len()) as u64;
                true
            }
            Ok(Outcome::Refused { key, closing }) => {
                stats.failed += 1;
                stats.error(key);
                !closing
            }
            Err(e) => {
                stats.failed += 1;
                stats.error(e.key());
                conn = None;
                false
            }
        };
        if !keep || sent_on_conn >= o.per_connection {
            // Refused with 421 or broken: just drop it; otherwise say goodbye.
            if let Some((mut c, _)) = conn.take()
                && keep
            {
                quit(&mut c);
            }
        }
    }
    if let Some((mut c, _)) = conn.take() {
        quit(&mut c);
    }
    stats
}

/// Pre-formatted envelope commands, identical for every transaction of a session.
struct Envelope {
    /// `"MAIL FROM:<from>\r\n"`.
    mail: Vec<u8>,
    /// One "RCPT TO:<to_n>\r\n" per recipient.
    rcpts: Vec<Vec<u8>>,
    /// MAIL, every RCPT and DATA in one buffer, for pipelining.
    pipelined: Vec<u8>,
}

impl Envelope {
    fn new(o: &SourceOptions) -> Self {
        let mail = format!("MAIL FROM:<{}>\r\n", o.from).into_bytes();
        let rcpts: Vec<Vec<u8>> = (0..o.rcpts)
            .map(|n| format!("RCPT TO:<{}>\r\n", recipient(&o.to, n)).into_bytes())
            .collect();
        let mut pipelined = mail.clone();
        for r in &rcpts {
            pipelined.extend_from_slice(r);
        }
        pipelined.extend_from_slice(b"DATA\r\n");
        Envelope { mail, rcpts, pipelined }
    }
}

/// How a transaction that kept the connection usable ended.
enum Outcome {
    /// End-of-data answered 250 at this instant.
    Accepted(Instant),
    /// Some reply refused it; `key` names the stage and code, `closing` means a 421 came.
    Refused { key: String, closing: bool },
}

/// Connect, read the greeting, EHLO (and TLS when asked). Err is the error-table key.
fn open(shared: &Shared, stats: &mut Stats) -> Result<(Connection, bool), String> {
    let o = &shared.opts;
    let timeout = shared.socket_timeout().ok_or_else(|| "deadline".to_owned())?;
    let key = |e: ClientError| e.key();
    let t0 = Instant::now();
    let mut c = match &o.tls {
        Some(tls) if tls.mode == Mode::Implicit => {
            let (c, n) = Connection::connect_implicit_tls(o.server, timeout, tls).map_err(key)?;
            note_handshake(stats, &n);
            c
        }
        _ => Connection::connect(o.server, timeout).map_err(key)?,
    };
    let greeting = c.read_reply(None).map_err(key)?;
    if greeting.code != 220 {
        return Err(format!("greeting {}", greeting.code));
    }
    stats.record(Stage::Connect, t0.elapsed());
    let t1 = Instant::now();
    let mut lines = ehlo(&mut c, &o.helo, "EHLO")?;
    stats.record(Stage::Ehlo, t1.elapsed());
    if let Some(tls) = o.tls.as_ref().filter(|t| t.mode == Mode::StartTls) {
        if !advertises(&lines, "STARTTLS") {
            return Err("STARTTLS not advertised".to_owned());
        }
        c.send(b"STARTTLS\r\n").map_err(key)?;
        let ready = c.read_reply(None).map_err(key)?;
        if ready.code != 220 {
            return Err(format!("STARTTLS {}", ready.code));
        }
        let (upgraded, n) = c.start_tls(tls).map_err(key)?;
        c = upgraded;
        note_handshake(stats, &n);
        lines = ehlo(&mut c, &o.helo, "EHLO after TLS")?;
    }
    stats.connections += 1;
    let server_pipelining = advertises(&lines, "PIPELINING");
    if o.pipelining && !server_pipelining {
        stats.pipelining_refused = true;
    }
    Ok((c, o.pipelining && server_pipelining))
}

/// Send EHLO and read its reply; the reply's lines, or the error key (`stage CODE`).
fn ehlo(c: &mut Connection, helo: &str, stage: &str) -> Result<Vec<String>, String> {
    c.send(format!("EHLO {helo}\r\n").as_bytes()).map_err(|e| e.key())?;
    let mut lines = Vec::new();
    let reply = c.read_reply(Some(&mut lines)).map_err(|e| e.key())?;
    if reply.code != 250 {
        return Err(format!("{stage} {}", reply.code));
    }
    Ok(lines)
}

/// Count one finished handshake.
fn note_handshake(stats: &mut Stats, n: &Negotiated) {
    stats.record(Stage::Handshake, n.elapsed);
    stats.handshakes += 1;
    stats.resumed += u64::from(n.resumed);
    if stats.tls.is_none() {
        stats.tls = Some(n.describe.clone());
    }
}

/// One MAIL / RCPT... / DATA / content transaction.
fn transaction(
    c: &mut Connection,
    pipelined: bool,
    env: &Envelope,
    message: &[u8],
    tracker: Option<(&Tracker, u64)>,
    stats: &mut Stats,
) -> Result<Outcome, ClientError> {
    let t0 = Instant::now();
    let mut refusal: Option<(String, u16)> = None;
    let note = |stage: &str, code: u16, refusal: &mut Option<(String, u16)>| {
        if refusal.is_none() {
            *refusal = Some((format!("{stage} {code}"), code));
        }
    };
    let data = if pipelined {
        c.send(&env.pipelined)?;
        let mail = c.read_reply(None)?;
        if !mail.is_positive() {
            note("MAIL", mail.code, &mut refusal);
        }
        for _ in &env.rcpts {
            let r = c.read_reply(None)?;
            if !r.is_positive() {
                note("RCPT", r.code, &mut refusal);
            }
        }
        c.read_reply(None)?
    } else {
        let mut rcpt_ok = 0usize;
        c.send(&env.mail)?;
        let mail = c.read_reply(None)?;
        if !mail.is_positive() {
            return finish_refused(c, format!("MAIL {}", mail.code), mail.code);
        }
        for r in &env.rcpts {
            c.send(r)?;
            let reply = c.read_reply(None)?;
            if reply.is_positive() {
                rcpt_ok += 1;
            } else {
                note("RCPT", reply.code, &mut refusal);
                if reply.code == 421 {
                    break;
                }
            }
        }
        if rcpt_ok == 0 {
            let (key, code) = refusal.unwrap_or_else(|| ("RCPT none".to_owned(), 0));
            return finish_refused(c, key, code);
        }
        c.send(b"DATA\r\n")?;
        c.read_reply(None)?
    };
    if data.code != 354 {
        let (key, code) = refusal.unwrap_or_else(|| (format!("DATA {}", data.code), data.code));
        let closing = code == 421 || data.code == 421;
        return finish_refused(c, key, if closing { 421 } else { code });
    }
    c.send(message)?;
    let t_eod = Instant::now();
    if let Some((t, seq)) = tracker {
        t.sent(seq, t_eod);
    }
    let end = c.read_reply(None)?;
    if end.code != 250 {
        return Ok(Outcome::Refused { key: format!("EOD {}", end.code), closing: end.code == 421 });
    }
    let now = Instant::now();
    stats.record(Stage::EndOfData, now - t_eod);
    stats.record(Stage::Transaction, now - t0);
    if let Some((key, _)) = refusal {
        // Accepted for some recipients only: count the refused recipient too.
        stats.error(key);
    }
    Ok(Outcome::Accepted(now))
}

/// After a refusal: RSET unless the server is closing (421), and report it.
fn finish_refused(c: &mut Connection, key: String, code: u16) -> Result<Outcome, ClientError> {
    if code == 421 {
        return Ok(Outcome::Refused { key, closing: true });
    }
    c.send(b"RSET\r\n")?;
    let r = c.read_reply(None)?;
    Ok(Outcome::Refused { key, closing: r.code == 421 })
}

/// Polite QUIT; errors do not matter any more.
fn quit(c: &mut Connection) {
    if c.send(b"QUIT\r\n").is_ok() {
        let _ = c.read_reply(None);
    }
}

impl SourceReport {
    /// The merged counts of every session.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Messages accepted (end-of-data 250).
    pub(crate) fn accepted(&self) -> u64 {
        self.stats.accepted
    }

    /// Exit status: 0 if at least one message was accepted, else 1.
    pub(crate) fn exit_code(&self) -> i32 {
        if self.stats.accepted > 0 { 0 } else { 1 }
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_message_counts_failures_and_rounds_rate() {
        assert_eq!(progress_message(50, 48, 1234.4), "48 accepted, 2 failed, 1234 msgs/s");
        assert_eq!(progress_message(0, 0, 0.0), "0 accepted, 0 failed, 0 msgs/s");
        // A racy read may see `accepted` ahead of `finished`: no underflow.
        assert_eq!(progress_message(3, 4, 1.0), "4 accepted, 0 failed, 1 msgs/s");
    }

    #[test]
    fn progress_bar_tracks_counters_and_rate() {
        let start = Instant::now();
        let mut p = Progress::new(1000, start, ProgressDrawTarget::hidden());
        assert_eq!(p.bar.length(), Some(1000));
        assert_eq!(p.bar.position(), 0);

        p.update(start + Duration::from_secs(1), 500, 490);
        assert_eq!(p.bar.position(), 500);
        assert_eq!(p.bar.message(), "490 accepted, 10 failed, 500 msgs/s");

        // The rate is over the last interval only: 100 more in 0.5 s.
        p.update(start + Duration::from_millis(1500), 600, 590);
        assert_eq!(p.bar.position(), 600);
        assert_eq!(p.bar.message(), "590 accepted, 10 failed, 200 msgs/s");

        p.bar.finish_and_clear();
        assert!(p.bar.is_finished());
    }
}
