//! `sink` mode: a minimal SMTP server that accepts every message and discards it.
//!
//! One thread per connection, blocking sockets. It answers 250 to everything it knows
//! (EHLO advertises PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES), reads DATA to the
//! `<CRLF>.<CRLF>` line, and counts connections, messages, recipients and bytes. Replies are
//! buffered and flushed only when no more pipelined input is already buffered, so a
//! pipelined client gets its replies in one write (RFC 2920 §3.2). It stops after
//! `--max-seconds`, after `--messages` messages, or on SIGINT/SIGTERM, and prints a summary.
//!
//! Like a realistic receiver it can refuse a share of recipients: `--tempfail-pct` answers
//! `451 4.2.0`, `--permfail-pct` answers `550 5.1.1`. Which RCPT fails is a pure function of
//! `--seed` and the RCPT's number in the run (0, 1, 2, ... over all connections), so the
//! shares are exact in expectation and reproducible. A transaction whose every recipient
//! was refused gets `554 5.5.1` to DATA (RFC 5321 §3.3).
//!
//! With `--tls-cert`/`--tls-key` it offers STARTTLS (RFC 3207) before TLS: after its
//! `220 2.0.0 Ready to start TLS` it runs the handshake (rustls, ring, as mailroot) and
//! serves the rest of the session over TLS, forgetting the earlier EHLO. A client that
//! sent more bytes behind STARTTLS (the CVE-2011-0411 class) is disconnected. It counts
//! sessions that went TLS and failed handshakes, so a `relay` run shows whether the
//! server delivered over TLS.
//!
//! In `relay` mode the sink also reads each message's `X-Loadtest-Id` header and notes its
//! arrival time in the shared `Tracker`.
//!
//! SECURITY: listens on loopback only (see `target.rs`). Input lines are bounded; the peer
//! cannot make a connection buffer more than `MAX_LINE_BYTES`. Content is never stored.
//!
//! STANDARDS: RFC 5321 (server side, minimal), RFC 2920.

use std::fmt::Write as _;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::message::{ID_HEADER, parse_id};
use crate::relay::Tracker;
use crate::size::mix64;
use crate::stats::{json_escape, json_f64, per_second};
use crate::tls::{self, Stream};

/// Longest line read at once, in bytes; longer DATA lines are read in pieces, longer
/// command lines are answered 500.
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// Idle timeout per read, as RFC 5321 §4.5.3.2 suggests for servers (5 minutes).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the main thread checks for the stop conditions.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Stack size of each connection thread, in bytes.
const CONN_STACK_BYTES: usize = 128 * 1024;
/// Read buffer per connection, in bytes.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// SIZE advertised in EHLO, in bytes.
const ADVERTISED_SIZE_BYTES: u64 = 100 * 1024 * 1024;

/// What `sink` was asked to do.
#[derive(Clone, Debug)]
pub(crate) struct SinkOptions {
    /// Loopback address to listen on.
    pub(crate) listen: SocketAddr,
    /// Stop after this long.
    pub(crate) max_duration: Duration,
    /// Stop once this many messages arrived (None: no limit).
    pub(crate) messages: Option<u64>,
    /// Connections served at once; more are answered 421 and closed.
    pub(crate) max_connections: usize,
    /// Share of recipients answered 451, in basis points (1/100 of a percent).
    pub(crate) tempfail_bp: u32,
    /// Share of recipients answered 550, in basis points.
    pub(crate) permfail_bp: u32,
    /// Seed of the fail choice.
    pub(crate) seed: u64,
    /// `relay` mode: where to note each message's arrival.
    pub(crate) tracker: Option<Arc<Tracker>>,
    /// Offer STARTTLS with this configuration (None: plaintext only).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

/// A sink's answer to one RCPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 250.
    Accept,
    /// 451 (temporary).
    TempFail,
    /// 550 (permanent).
    PermFail,
}

/// The answer to RCPT number `n` of the run: the first `tempfail_bp` of every 10,000 hash
/// values fail temporarily, the next `permfail_bp` permanently.
pub(crate) fn verdict(seed: u64, n: u64, tempfail_bp: u32, permfail_bp: u32) -> Verdict {
    let r = mix64(seed ^ mix64(n)) % 10_000;
    if r < u64::from(tempfail_bp) {
        Verdict::TempFail
    } else if r < u64::from(tempfail_bp) + u64::from(permfail_bp) {
        Verdict::PermFail
    } else {
        Verdict::Accept
    }
}

/// Counters shared by all connection threads (relaxed atomics: only totals matter).
struct Counters {
    /// Instant the sink started listening.
    start: Instant,
    /// Connections accepted (including refused ones).
    connections: AtomicU64,
    /// Connections currently being served.
    active: AtomicUsize,
    /// Messages whose end-of-data was answered 250.
    messages: AtomicU64,
    /// RCPT commands answered 250.
    rcpts: AtomicU64,
    /// RCPT commands seen (the number each verdict is keyed on).
    rcpt_seq: AtomicU64,
    /// RCPT commands answered 451.
    tempfailed: AtomicU64,
    /// RCPT commands answered 550.
    permfailed: AtomicU64,
    /// Content bytes of those messages, as received (dot-stuffed, before the final `.`).
    bytes: AtomicU64,
    /// Nanoseconds since `start` of the first message's end (0: none yet).
    first_message_ns: AtomicU64,
    /// Nanoseconds since `start` of the latest message's end.
    last_message_ns: AtomicU64,
    /// Sessions whose STARTTLS handshake finished.
    tls_sessions: AtomicU64,
    /// STARTTLS handshakes that failed (or a client that pipelined behind STARTTLS).
    tls_failures: AtomicU64,
}

/// Fixed replies of the sink.
mod replies {
    pub(super) const GREETING: &[u8] =
        b"220 sink.loadtest.invalid ESMTP mailroot-loadtest sink\r\n";
    pub(super) const OK: &[u8] = b"250 2.0.0 Ok\r\n";
    pub(super) const HELO: &[u8] = b"250 sink.loadtest.invalid\r\n";
    pub(super) const START_DATA: &[u8] = b"354 End data with <CR><LF>.<CR><LF>\r\n";
    pub(super) const BYE: &[u8] = b"221 2.0.0 Bye\r\n";
    pub(super) const VRFY: &[u8] = b"252 2.5.0 Cannot VRFY user\r\n";
    pub(super) const UNKNOWN: &[u8] = b"502 5.5.2 Command not implemented\r\n";
    pub(super) const TOO_LONG: &[u8] = b"500 5.5.2 Line too long\r\n";
    pub(super) const BUSY: &[u8] = b"421 4.7.0 Too many connections\r\n";
    pub(super) const TEMPFAIL: &[u8] = b"451 4.2.0 Mailbox temporarily unavailable (loadtest)\r\n";
    pub(super) const PERMFAIL: &[u8] = b"550 5.1.1 Mailbox unavailable (loadtest)\r\n";
    pub(super) const NO_RCPTS: &[u8] = b"554 5.5.1 No valid recipients\r\n";
    pub(super) const TLS_READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
    pub(super) const TLS_ACTIVE: &[u8] = b"503 5.5.1 TLS already active\r\n";
}

/// A sink listening and serving in background threads.
pub(crate) struct RunningSink {
    /// Its options.
    opts: SinkOptions,
    /// Its counters.
    counters: Arc<Counters>,
}

impl RunningSink {
    /// The address it listens on.
    #[cfg(test)]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.opts.listen
    }

    /// The summary as of now.
    pub(crate) fn report(&self, stopped_by: &'static str) -> SinkReport {
        SinkReport::from_counters(&self.opts, &self.counters, stopped_by)
    }
}

/// Run the sink until a stop condition; returns the summary.
pub(crate) fn run(opts: &SinkOptions) -> io::Result<SinkReport> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let sink = start(opts)?;
    let counters = &sink.counters;
    let deadline = counters.start + opts.max_duration;
    let stopped_by = loop {
        if stop.load(Ordering::Relaxed) {
            break "signal";
        }
        if Instant::now() >= deadline {
            break "max-seconds";
        }
        if opts.messages.is_some_and(|m| counters.messages.load(Ordering::Relaxed) >= m) {
            break "messages";
        }
        std::thread::sleep(STOP_POLL);
    };
    Ok(sink.report(stopped_by))
}

/// Bind and start serving in background threads (they end with the process).
pub(crate) fn start(opts: &SinkOptions) -> io::Result<RunningSink> {
    let listener = TcpListener::bind(opts.listen)?;
    // Port 0 (tests): report the port the kernel chose.
    let opts = &SinkOptions { listen: listener.local_addr()?, ..opts.clone() };
    let counters = Arc::new(Counters {
        start: Instant::now(),
        connections: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        messages: AtomicU64::new(0),
        rcpts: AtomicU64::new(0),
        rcpt_seq: AtomicU64::new(0),
        tempfailed: AtomicU64::new(0),
        permfailed: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        first_message_ns: AtomicU64::new(0),
        last_message_ns: AtomicU64::new(0),
        tls_sessions: AtomicU64::new(0),
        tls_failures: AtomicU64::new(0),
    });
    {
        let counters = Arc::clone(&counters);
        let opts = Arc::new(opts.clone());
        // The acceptor blocks in accept(); the process exits from main when done.
        std::thread::Builder::new()
            .name("acceptor".to_owned())
            .spawn(move || accept_loop(&listener, &counters, &opts))?;
    }
    Ok(RunningSink { opts: opts.clone(), counters })
}

fn accept_loop(listener: &TcpListener, counters: &Arc<Counters>, opts: &Arc<SinkOptions>) {
    let max_connections = opts.max_connections;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        if counters.active.load(Ordering::Relaxed) >= max_connections {
            let _ = stream.write_all(replies::BUSY);
            continue;
        }
        counters.active.fetch_add(1, Ordering::Relaxed);
        let c = Arc::clone(counters);
        let o = Arc::clone(opts);
        let spawned = std::thread::Builder::new().stack_size(CONN_STACK_BYTES).spawn(move || {
            let _ = serve(stream, &c, &o);
            c.active.fetch_sub(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            counters.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Serve one connection until QUIT, EOF or an error.
fn serve(stream: TcpStream, counters: &Counters, opts: &SinkOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, Stream::Plain(stream));
    let mut out: Vec<u8> = replies::GREETING.to_vec();
    let mut line = Vec::with_capacity(1024);
    // Recipients accepted in the current transaction.
    let mut rcpt_ok = 0u32;
    loop {
        if reader.buffer().is_empty() && !out.is_empty() {
            flush(&mut reader, &mut out)?;
        }
        line.clear();
        let n = (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            // Over-long command line: discard the rest of it, then complain.
            skip_line(&mut reader)?;
            out.extend_from_slice(replies::TOO_LONG);
            continue;
        }
        let verb: [u8; 4] = match line.get(..4) {
            Some(v) => [v[0], v[1], v[2], v[3]].map(|b| b.to_ascii_uppercase()),
            None => [0; 4],
        };
        match &verb {
            b"EHLO" => {
                let starttls = opts.tls.is_some() && !reader.get_ref().is_tls();
                let _ = write!(
                    out,
                    "250-sink.loadtest.invalid\r\n250-PIPELINING\r\n250-SIZE {ADVERTISED_SIZE_BYTES}\r\n\
                     250-8BITMIME\r\n{}250 ENHANCEDSTATUSCODES\r\n",
                    if starttls { "250-STARTTLS\r\n" } else { "" }
                );
            }
            b"STAR" if is_starttls(&line) && reader.get_ref().is_tls() => {
                out.extend_from_slice(replies::TLS_ACTIVE);
            }
            b"STAR" if is_starttls(&line) && opts.tls.is_some() => {
                out.extend_from_slice(replies::TLS_READY);
                flush(&mut reader, &mut out)?;
                rcpt_ok = 0;
                reader = start_tls(reader, opts, counters)?;
            }
            b"HELO" => out.extend_from_slice(replies::HELO),
            b"MAIL" | b"RSET" => {
                rcpt_ok = 0;
                out.extend_from_slice(replies::OK);
            }
            b"NOOP" => out.extend_from_slice(replies::OK),
            b"RCPT" => {
                let n = counters.rcpt_seq.fetch_add(1, Ordering::Relaxed);
                match verdict(opts.seed, n, opts.tempfail_bp, opts.permfail_bp) {
                    Verdict::Accept => {
                        rcpt_ok += 1;
                        counters.rcpts.fetch_add(1, Ordering::Relaxed);
                        out.extend_from_slice(replies::OK);
                    }
                    Verdict::TempFail => {
                        counters.tempfailed.fetch_add(1, Ordering::Relaxed);
                        out.extend_from_slice(replies::TEMPFAIL);
                    }
                    Verdict::PermFail => {
                        counters.permfailed.fetch_add(1, Ordering::Relaxed);
                        out.extend_from_slice(replies::PERMFAIL);
                    }
                }
            }
            b"DATA" if rcpt_ok == 0 => out.extend_from_slice(replies::NO_RCPTS),
            b"VRFY" => out.extend_from_slice(replies::VRFY),
            b"DATA" => {
                out.extend_from_slice(replies::START_DATA);
                flush(&mut reader, &mut out)?;
                rcpt_ok = 0;
                let (bytes, id) = read_data(&mut reader, &mut line)?;
                if let (Some(t), Some((run, seq))) = (&opts.tracker, id) {
                    t.arrived(run, seq, Instant::now());
                }
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                counters.messages.fetch_add(1, Ordering::Relaxed);
                let ns = u64::try_from(counters.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let _ = counters.first_message_ns.compare_exchange(
                    0,
                    ns,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                counters.last_message_ns.fetch_max(ns, Ordering::Relaxed);
                out.extend_from_slice(replies::OK);
            }
            b"QUIT" => {
                out.extend_from_slice(replies::BYE);
                flush(&mut reader, &mut out)?;
                return Ok(());
            }
            _ => out.extend_from_slice(replies::UNKNOWN),
        }
    }
}

/// Write and clear the pending replies.
fn flush(reader: &mut BufReader<Stream>, out: &mut Vec<u8>) -> io::Result<()> {
    let stream = reader.get_mut();
    stream.write_all(out)?;
    stream.flush()?;
    out.clear();
    Ok(())
}

/// True if the command line is exactly `STARTTLS` (any case, CRLF or LF).
fn is_starttls(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.eq_ignore_ascii_case(b"STARTTLS")
}

/// After the 220 to STARTTLS: the handshake, and a reader over the TLS stream. Bytes the
/// client sent behind STARTTLS end the session (they must not be read as if over TLS).
fn start_tls(
    reader: BufReader<Stream>,
    opts: &SinkOptions,
    counters: &Counters,
) -> io::Result<BufReader<Stream>> {
    let fail = |e: io::Error| {
        counters.tls_failures.fetch_add(1, Ordering::Relaxed);
        e
    };
    if !reader.buffer().is_empty() {
        return Err(fail(io::Error::new(io::ErrorKind::InvalidData, "data after STARTTLS")));
    }
    let (Some(config), Stream::Plain(tcp)) = (&opts.tls, reader.into_inner()) else {
        return Err(io::Error::other("STARTTLS without a configuration or inside TLS"));
    };
    let stream = tls::accept(config, tcp).map_err(fail)?;
    counters.tls_sessions.fetch_add(1, Ordering::Relaxed);
    Ok(BufReader::with_capacity(READ_BUFFER_BYTES, stream))
}

/// Discard input up to and including the next LF.
fn skip_line(reader: &mut BufReader<Stream>) -> io::Result<()> {
    let mut scratch = Vec::new();
    loop {
        scratch.clear();
        let n = reader.take(MAX_LINE_BYTES).read_until(b'\n', &mut scratch)?;
        if n == 0 || scratch.ends_with(b"\n") {
            return Ok(());
        }
    }
}

/// Read message content up to the `.` line; returns the content bytes (excluding it) and
/// the value of the first `X-Loadtest-Id` header in the header section, if any.
fn read_data(
    reader: &mut BufReader<Stream>,
    line: &mut Vec<u8>,
) -> io::Result<(u64, Option<(u64, u64)>)> {
    let mut bytes = 0u64;
    let mut at_line_start = true;
    let mut in_headers = true;
    let mut id = None;
    loop {
        line.clear();
        let n = reader.take(MAX_LINE_BYTES).read_until(b'\n', line)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if at_line_start && (line == b".\r\n" || line == b".\n") {
            return Ok((bytes, id));
        }
        if in_headers && at_line_start {
            if line == b"\r\n" || line == b"\n" {
                in_headers = false;
            } else if id.is_none() {
                id = header_id(line);
            }
        }
        bytes += n as u64;
        at_line_start = line.ends_with(b"\n");
    }
}

/// If `line` is an `X-Loadtest-Id` header, its `(run, seq)`.
fn header_id(line: &[u8]) -> Option<(u64, u64)> {
    let name = line.get(..ID_HEADER.len())?;
    if !name.eq_ignore_ascii_case(ID_HEADER.as_bytes()) || line.get(ID_HEADER.len()) != Some(&b':')
    {
        return None;
    }
    parse_id(&line[ID_HEADER.len() + 1..])
}

/// The sink's final counts.
pub(crate) struct SinkReport {
    /// Listen address.
    listen: SocketAddr,
    /// Why it stopped: "signal", "max-seconds" or "messages".
    stopped_by: &'static str,
    /// Seconds from listening to stopping.
    elapsed_s: f64,
    /// Connections accepted.
    connections: u64,
    /// Messages received.
    messages: u64,
    /// Recipients accepted.
    rcpts: u64,
    /// Recipients answered 451.
    tempfailed: u64,
    /// Recipients answered 550.
    permfailed: u64,
    /// Content bytes received.
    bytes: u64,
    /// Seconds between the first and the last message's end (0 with < 2 messages).
    active_s: f64,
    /// STARTTLS offered.
    tls_offered: bool,
    /// Sessions that went TLS.
    tls_sessions: u64,
    /// Failed STARTTLS handshakes.
    tls_failures: u64,
}

impl SinkReport {
    fn from_counters(opts: &SinkOptions, c: &Counters, stopped_by: &'static str) -> Self {
        let first = c.first_message_ns.load(Ordering::Relaxed);
        let last = c.last_message_ns.load(Ordering::Relaxed);
        SinkReport {
            listen: opts.listen,
            stopped_by,
            elapsed_s: c.start.elapsed().as_secs_f64(),
            connections: c.connections.load(Ordering::Relaxed),
            messages: c.messages.load(Ordering::Relaxed),
            rcpts: c.rcpts.load(Ordering::Relaxed),
            tempfailed: c.tempfailed.load(Ordering::Relaxed),
            permfailed: c.permfailed.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            active_s: last.saturating_sub(first) as f64 / 1e9,
            tls_offered: opts.tls.is_some(),
            tls_sessions: c.tls_sessions.load(Ordering::Relaxed),
            tls_failures: c.tls_failures.load(Ordering::Relaxed),
        }
    }

    /// The address it listened on.
    pub(crate) fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Messages, connections, sessions that went TLS and failed handshakes.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> [u64; 4] {
        [self.messages, self.connections, self.tls_sessions, self.tls_failures]
    }

    /// Messages per second between the first and the last message.
    fn active_rate(&self) -> f64 {
        // n messages span n-1 intervals.
        per_second(self.messages.saturating_sub(1), self.active_s)
    }

    /// Human-readable summary.
    pub(crate) fn to_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "mailroot-loadtest sink {}: stopped by {} after {:.3} s",
            self.listen, self.stopped_by, self.elapsed_s
        );
        let _ = writeln!(
            t,
            "messages: {}, recipients: {} accepted, {} tempfailed (451), {} permfailed (550), \
             bytes: {}, connections: {}",
            self.messages,
            self.rcpts,
            self.tempfailed,
            self.permfailed,
            self.bytes,
            self.connections
        );
        let _ = writeln!(
            t,
            "rate (first to last message, {:.3} s): {:.1} msgs/s, {:.0} bytes/s",
            self.active_s,
            self.active_rate(),
            per_second(self.bytes, self.active_s)
        );
        if self.tls_offered {
            let _ = writeln!(
                t,
                "tls: STARTTLS offered; {} of {} connections went TLS, {} failed handshakes",
                self.tls_sessions, self.connections, self.tls_failures
            );
        }
        t
    }

    /// One JSON object on one line.
    pub(crate) fn to_json(&self) -> String {
        format!(
            "{{\"mode\":\"sink\",\"listen\":\"{}\",\"stopped_by\":\"{}\",\"elapsed_s\":{},\
             \"connections\":{},\"messages\":{},\"rcpts\":{},\"tempfailed\":{},\"permfailed\":{},\
             \"bytes\":{},\"active_s\":{},\"msgs_per_s\":{},\"bytes_per_s\":{},\
             \"tls_offered\":{},\"tls_sessions\":{},\"tls_failures\":{}}}",
            json_escape(&self.listen.to_string()),
            self.stopped_by,
            json_f64(self.elapsed_s),
            self.connections,
            self.messages,
            self.rcpts,
            self.tempfailed,
            self.permfailed,
            self.bytes,
            json_f64(self.active_s),
            json_f64(self.active_rate()),
            json_f64(per_second(self.bytes, self.active_s)),
            self.tls_offered,
            self.tls_sessions,
            self.tls_failures
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_bare_starttls_starts_tls() {
        assert!(is_starttls(b"STARTTLS\r\n"));
        assert!(is_starttls(b"starttls\n"));
        assert!(!is_starttls(b"STARTTLS now\r\n"));
        assert!(!is_starttls(b"STARTTL\r\n"));
    }

    use super::*;

    #[test]
    fn fail_shares_are_seeded_and_close_to_asked() {
        let n = 200_000u64;
        let count =
            |seed: u64, v: Verdict| (0..n).filter(|&i| verdict(seed, i, 500, 100) == v).count();
        let temp = count(7, Verdict::TempFail);
        let perm = count(7, Verdict::PermFail);
        assert!((9_400..10_600).contains(&temp), "{temp}");
        assert!((1_700..2_300).contains(&perm), "{perm}");
        // Deterministic for a seed, different across seeds.
        let pick = |seed| (0..1000).map(|i| verdict(seed, i, 500, 100)).collect::<Vec<_>>();
        assert_eq!(pick(7), pick(7));
        assert_ne!(pick(7), pick(8));
        assert!((0..n).all(|i| verdict(1, i, 0, 0) == Verdict::Accept));
        assert!((0..n).all(|i| verdict(1, i, 10_000, 0) == Verdict::TempFail));
    }

    #[test]
    fn id_header_is_found_case_insensitively() {
        assert_eq!(header_id(b"X-Loadtest-Id: 00ff.00000000000000000042\r\n"), Some((255, 42)));
        assert_eq!(header_id(b"x-loadtest-id:1.2\r\n"), Some((1, 2)));
        assert_eq!(header_id(b"X-Loadtest-Idx: 1.2\r\n"), None);
        assert_eq!(header_id(b"Subject: 1.2\r\n"), None);
    }
}
