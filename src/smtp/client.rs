//! The outbound SMTP session as a sans-IO state machine: replies in, commands out.
//!
//! `ClientSession` never touches a socket or the clock (quinn-proto style). The caller
//! (`deliver` on a `net` event loop) feeds what the socket read with `handle_input`,
//! reports EOF with `handle_close`, writes whatever `poll_transmit` produces, calls
//! `handle_timeout` at `poll_timeout`, and acts on `poll_event`:
//!
//! ```text
//! new(cfg, now) ── 220 ──▶ EHLO (HELO on 500/502, or when configured) ── 250 ──▶
//!   [STARTTLS ── 220 ──▶ Event::StartTls ── tls_established ──▶ EHLO again ── 250 ──▶]
//!   [AUTH PLAIN (or LOGIN) ── 235 ──▶] Event::Ready
//!   Ready ── send(job) ──▶ MAIL, RCPT..., DATA (one write with PIPELINING, else lock-step)
//!         ── 354 ──▶ content, dot-stuffed, in bounded pieces ── final reply ──▶
//!   (with CHUNKING: MAIL, RCPT... ── replies ──▶ `BDAT <n> LAST` + content ── reply ──▶)
//!         Event::TransactionDone ──▶ (RSET if the transaction failed before content) ──▶
//!         Event::Ready again, or QUIT at `max_messages_per_connection` ──▶ Event::Closed
//! ```
//!
//! After `Event::Closed`, `Event::TimedOut`, or an `Err` from `handle_input` /
//! `handle_close`, `is_closed()` is true and the caller closes the socket. A job in flight
//! at that moment has no `TransactionDone`: its recipients are deferred by the caller (a
//! message whose final reply was lost may be delivered twice, never zero times).
//!
//! Content is not part of `Job`: the caller passes the message bytes (typically a slice of
//! the mmap'd spool segment) to every `poll_transmit`, and the session encodes the next
//! piece of at most `TRANSMIT_CHUNK_BYTES` into the caller's buffer. No copy of the whole
//! message is ever made and nothing here grows with the message size. With
//! `poll_transmit_borrowed` not even the pieces are copied: the session writes only the
//! bytes dot-stuffing inserts and returns the range of the content the caller sends
//! verbatim from its own buffer (`deliver::outbound` on `net`).
//!
//! TRUST: everything the server sends is hostile: replies are bounded and sanitised by
//! `reply_parse`; a malformed, unexpected or unsolicited reply ends the session with a
//! `ClientError` naming the server as at fault; nothing a server sends can panic this
//! module. Job strings come from our spool and are checked once more (no control
//! characters) before they are written as command lines, so a corrupt envelope can never
//! inject a command. Content is always dot-stuffed with bare CR/LF made CRLF (`smtp/stuff.rs`).
//!
//! Choices where the RFCs leave room:
//! - A reply arriving while we are still sending content is a protocol violation; we stop
//!   at once rather than let the server read the rest of our content as commands.
//! - With PIPELINING, DATA is sent even if every RCPT will fail (RFC 2920 §3.1); if the
//!   server still answers 354, we send `.` alone and discard the reply to it.
//! - A 421 reply, to any command or unsolicited, ends the session without QUIT (the server
//!   is closing); recipients still unanswered get that 421.
//! - SMTPUTF8 is required (refusal 5.6.7) when an address is non-ASCII; it is passed on
//!   when the job had it and the server offers it.
//! - After a failed greeting or EHLO/HELO we send QUIT (RFC 5321 §3.1, §4.1.1.10).
//! - With CHUNKING, BDAT goes out only after every RCPT reply is in (no content is sent
//!   when no recipient was accepted); that costs no round trip over DATA, which waits for
//!   354 anyway. The whole message is one `BDAT <n> LAST` chunk; `n` is counted first, so
//!   the next hop stores the same bytes as with DATA (bare CR/LF as CRLF, final CRLF).
//! - RSET follows a transaction that ended before content (MAIL failed, no RCPT accepted,
//!   DATA refused); after a final reply to content the server has already reset.
//!
//! STARTTLS and AUTH (`client/security.rs`): after EHLO, `ClientConfig::tls` decides.
//! STARTTLS is sent when offered, the policy is not `None`, and the driver said it can do
//! TLS (`tls_capable`); on 220 the session emits `Event::StartTls` and waits (reads and
//! writes nothing) for `tls_established` (EHLO again; RFC 3207 §4.2) or `tls_failed`.
//! Any byte after that 220 and before the handshake is a protocol violation (never read
//! as a reply after TLS). `May` goes on in plaintext when STARTTLS is not offered or is
//! refused; `Encrypt`/`Verify` end with `Event::SecurityFailed` (4.7.x, temporary) and
//! QUIT. With `auth`, AUTH PLAIN (else LOGIN) follows the last EHLO, only over TLS; a
//! refusal is `Event::SecurityFailed` (4.7.8) and QUIT, and MAIL is never sent.
//!
//! STANDARDS: RFC 5321 (§3.1 greeting, §4.1.1 commands, §4.1.4 EHLO/HELO fallback,
//! §4.5.2 transparency, §4.5.3.2 timeouts), RFC 2920 (PIPELINING), RFC 1870 (SIZE),
//! RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN parameters), RFC 3463 (codes),
//! RFC 3030 (CHUNKING, BDAT), RFC 3207 (STARTTLS), RFC 4954 (AUTH).

use std::collections::VecDeque;
use std::fmt;
use std::io::Write as _;
use std::mem;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use super::reply::Reply;
use super::reply_parse::ReplyParser;

mod config;
mod event;
mod ext;
mod job;
mod security;

use super::stuff::DotStuffer;
pub use config::{ClientAuth, ClientConfig, Timeouts, TlsPolicy};
pub use event::{ClientError, Event, Misbehaviour, RcptResult, Refusal, Stage};
pub use ext::PeerExtensions;
pub use job::{Job, JobRecipient};
use job::{needs_smtputf8, write_mail, write_rcpt};
use security::AuthStep;
pub use security::SecurityFailure;

/// `poll_transmit` stops adding content once the output buffer holds this many bytes.
pub const TRANSMIT_CHUNK_BYTES: usize = 64 * 1024;

/// `poll_transmit_borrowed` hands out verbatim runs of at most this many bytes (+1, a
/// CRLF on the bound). Not a buffer: the run is written from the caller's copy.
pub const MAX_BORROWED_RUN_BYTES: usize = 256 * 1024;

/// `poll_transmit_borrowed` copies runs shorter than this into the output buffer (content
/// with a bare line ending or a leading dot on every line would otherwise cost a write
/// per line).
pub const MIN_BORROWED_RUN_BYTES: usize = 4 * 1024;

/// One transaction in flight.
#[derive(Debug)]
struct Tx {
    /// The envelope.
    job: Job,
    /// Commands of the MAIL, RCPT..., DATA group queued so far (no DATA with BDAT).
    /// Invariant: `answered() ≤ sent ≤ recipients + 2`; with PIPELINING all are queued
    /// at once.
    sent: usize,
    /// The reply to MAIL, once it came.
    mail_reply: Option<Reply>,
    /// Replies to RCPT so far, in order.
    rcpt_results: Vec<RcptResult>,
    /// Recipients accepted (RCPT 2xx after a MAIL 2xx).
    accepted: usize,
}

impl Tx {
    /// Replies of the group received so far (the DATA reply ends the group).
    fn answered(&self) -> usize {
        usize::from(self.mail_reply.is_some()) + self.rcpt_results.len()
    }

    /// The reply due next.
    fn expecting(&self) -> Stage {
        match self.answered() {
            0 => Stage::Mail,
            n if n <= self.job.recipients.len() => Stage::Rcpt,
            _ => Stage::DataInit,
        }
    }

    /// MAIL was accepted.
    fn mail_ok(&self) -> bool {
        self.mail_reply.as_ref().is_some_and(Reply::is_positive)
    }
}

/// Where the session is. Each variant carries exactly the data valid in it.
#[derive(Debug)]
enum State {
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO (`esmtp`) or HELO sent.
    Hello { esmtp: bool },
    /// STARTTLS sent.
    StartTls,
    /// 220 to STARTTLS came: the driver runs the TLS handshake. Nothing is read or
    /// written until `tls_established` / `tls_failed`.
    Handshake,
    /// In the AUTH exchange (credentials only ever queued when TLS is active).
    Auth(AuthStep),
    /// Idle; `send` or `quit` may be called.
    Ready,
    /// MAIL/RCPT/DATA replies due.
    Envelope(Box<Tx>),
    /// After 354 (or, with BDAT, after the last RCPT reply): content goes out through
    /// `poll_transmit`.
    Content { tx: Box<Tx>, stuffer: DotStuffer },
    /// End of data sent; `discard`: it was a lone `.` after an unwanted 354.
    DataEnd { tx: Box<Tx>, discard: bool },
    /// RSET sent.
    Rset,
    /// QUIT sent.
    Quit,
    /// Over; input is ignored.
    Closed,
}

/// What follows a finished transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// Ready for the next job.
    Ready,
    /// RSET first.
    Rset,
    /// The server sent 421: closed.
    Close,
}

/// One outbound SMTP session (sans-IO). See the module docs. `Debug` shows the number
/// of queued command bytes, never the bytes (they may hold AUTH credentials).
pub struct ClientSession {
    /// Settings, shared.
    cfg: Arc<ClientConfig>,
    /// Protocol state.
    state: State,
    /// Reply framing; holds at most one partial reply line.
    parser: ReplyParser,
    /// What the server offered in its EHLO reply (all off after HELO).
    ext: PeerExtensions,
    /// Command lines queued for the next `poll_transmit`. Invariant: only whole lines,
    /// never content; small (one pipelined group at most).
    cmds: Vec<u8>,
    /// Events not yet taken by `poll_event`.
    events: VecDeque<Event>,
    /// When the current wait times out, and what it waits for; `None` when idle/closed.
    deadline: Option<(Instant, Stage)>,
    /// Transactions started on this connection.
    messages: u32,
    /// TLS is up (set only by `tls_established`; never cleared on this connection).
    tls_active: bool,
}

impl fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("cfg", &self.cfg)
            .field("state", &self.state)
            .field("ext", &self.ext)
            .field("cmds_bytes", &self.cmds.len())
            .field("events", &self.events)
            .field("deadline", &self.deadline)
            .field("messages", &self.messages)
            .field("tls_active", &self.tls_active)
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session on a freshly connected socket; the greeting timeout starts at `now`.
    pub fn new(cfg: impl Into<Arc<ClientConfig>>, now: Instant) -> Self {
        let mut s = ClientSession {
            cfg: cfg.into(),
            state: State::Greeting,
            parser: ReplyParser::new(),
            ext: PeerExtensions::default(),
            cmds: Vec::with_capacity(256),
            events: VecDeque::new(),
            deadline: None,
            messages: 0,
            tls_active: false,
        };
        s.arm(Stage::Greeting, now);
        s
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Idle and able to take a job with `send`.
    #[must_use]
    pub fn ready_for_next(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// The session is over: close the socket (there is nothing more to write).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Keep reading: a reply is due, or the server may announce 421 or close while idle.
    /// False during the TLS handshake (the TLS layer reads then, not the session).
    #[must_use]
    pub fn wants_read(&self) -> bool {
        !matches!(self.state, State::Closed | State::Handshake)
    }

    /// TLS is active on this connection (`tls_established` was called).
    #[must_use]
    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// `poll_transmit` has something to give.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        !self.cmds.is_empty() || matches!(self.state, State::Content { .. })
    }

    /// When `handle_timeout` must be called next, if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.map(|(t, _)| t)
    }

    /// What the session is waiting for.
    #[must_use]
    pub fn stage(&self) -> Stage {
        match &self.state {
            State::Greeting => Stage::Greeting,
            State::Hello { .. } => Stage::Hello,
            State::StartTls => Stage::StartTls,
            State::Handshake => Stage::TlsHandshake,
            State::Auth(_) => Stage::Auth,
            State::Ready | State::Closed => Stage::Idle,
            State::Envelope(tx) => tx.expecting(),
            State::Content { .. } => Stage::DataBlock,
            State::DataEnd { .. } => Stage::DataTerm,
            State::Rset => Stage::Rset,
            State::Quit => Stage::Quit,
        }
    }

    /// The server's extensions (valid once `Event::Ready` was seen).
    #[must_use]
    pub fn extensions(&self) -> &PeerExtensions {
        &self.ext
    }

    /// Transactions started on this connection.
    #[must_use]
    pub fn messages_sent(&self) -> u32 {
        self.messages
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- caller actions ---------------------------------------------------------------------

    /// Start a transaction for `job`. Gives the job back if the session is not
    /// `ready_for_next()` or the job has no recipient (caller bugs). A job the server
    /// cannot take gives `Event::JobRefused` (then `Event::Ready`) and sends nothing.
    pub fn send(&mut self, job: Job, now: Instant) -> Result<(), Job> {
        if !self.ready_for_next() || job.recipients.is_empty() {
            return Err(job);
        }
        if let Some(r) = self.refusal(&job) {
            self.events.push_back(Event::JobRefused(r));
            self.events.push_back(Event::Ready);
            return Ok(());
        }
        self.messages = self.messages.saturating_add(1);
        write_mail(&mut self.cmds, &self.ext, &job);
        let mut sent = 1;
        if self.ext.pipelining {
            for r in &job.recipients {
                write_rcpt(&mut self.cmds, &self.ext, r);
            }
            sent += job.recipients.len();
            if !self.bdat() {
                self.cmds.extend_from_slice(b"DATA\r\n");
                sent += 1;
            }
        }
        let tx = Tx { job, sent, mail_reply: None, rcpt_results: Vec::new(), accepted: 0 };
        self.state = State::Envelope(Box::new(tx));
        self.arm(Stage::Mail, now);
        Ok(())
    }

    /// End the session: QUIT when idle; in any other state the session is abandoned at
    /// once (the caller closes the socket; a job in flight is deferred).
    pub fn quit(&mut self, now: Instant) {
        match self.state {
            State::Ready => self.send_quit(now),
            State::Quit | State::Closed => {}
            _ => self.close(),
        }
    }

    /// Append what is to be written to `out`: queued commands, then (while sending a
    /// message) the next piece of `content`, dot-stuffed, until `out` holds
    /// `TRANSMIT_CHUNK_BYTES`. `content` is the current job's message, the same bytes on
    /// every call (ignored when no content is due; pass `&[]`). Returns bytes appended.
    /// Every byte appended counts as written for the data-block timeout.
    ///
    /// # Panics
    /// If `content` changes length while it is being sent (a caller bug).
    pub fn poll_transmit(&mut self, now: Instant, content: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&self.cmds);
        self.cmds.clear();
        let (progress, done) = match &mut self.state {
            State::Content { stuffer, .. } => {
                let n = stuffer.fill(content, out, TRANSMIT_CHUNK_BYTES);
                (n > 0, stuffer.is_done())
            }
            _ => (false, false),
        };
        self.after_transmit(now, done, progress);
        out.len() - start
    }

    /// After content went out: the data-block timeout restarts on progress; once the end
    /// marker is out, the final reply is awaited.
    fn after_transmit(&mut self, now: Instant, done: bool, progress: bool) {
        if done {
            if let State::Content { tx, .. } = mem::replace(&mut self.state, State::Closed) {
                self.state = State::DataEnd { tx, discard: false };
            }
            self.arm(Stage::DataTerm, now);
        } else if progress {
            self.arm(Stage::DataBlock, now);
        }
    }

    /// `poll_transmit` without copying the content's verbatim runs: appends queued
    /// commands and the bytes dot-stuffing inserts (and short runs, copied) to `out`, and
    /// returns the range of `content` to be written right after `out`'s bytes (empty:
    /// nothing to add). The caller writes that range from its own shared copy of the
    /// content (`deliver::outbound`: the `Arc<[u8]>` a `net::SharedPiece` points into) and
    /// calls again once it is written. The wire is byte for byte `poll_transmit`'s, and
    /// both may be called on the same session.
    ///
    /// # Panics
    /// As `poll_transmit`.
    pub fn poll_transmit_borrowed(
        &mut self,
        now: Instant,
        content: &[u8],
        out: &mut Vec<u8>,
    ) -> Range<usize> {
        out.extend_from_slice(&self.cmds);
        self.cmds.clear();
        let mut run = 0..0;
        let content_start = out.len();
        let (progress, done) = match &mut self.state {
            State::Content { stuffer, .. } => {
                while out.len() < TRANSMIT_CHUNK_BYTES && !stuffer.is_done() {
                    let r = stuffer.next_run(content, out, MAX_BORROWED_RUN_BYTES);
                    if r.len() >= MIN_BORROWED_RUN_BYTES {
                        run = r;
                        break;
                    }
                    out.extend_from_slice(&content[r]); // short: cheaper than a syscall
                }
                (out.len() > content_start || !run.is_empty(), stuffer.is_done())
            }
            _ => (false, false),
        };
        self.after_transmit(now, done, progress);
        run
    }

    /// Bytes read from the socket, any amount, split anywhere. Ignored once closed.
    pub fn handle_input(&mut self, now: Instant, mut input: &[u8]) -> Result<(), ClientError> {
        while !input.is_empty() && !self.is_closed() {
            let stage = self.stage();
            if stage == Stage::TlsHandshake {
                // SECURITY (RFC 3207 §5, CVE-2011-0411 class): bytes after the 220 to
                // STARTTLS came in plaintext and must never be read as replies once TLS
                // is up. A server (or a man in the middle) that sends them is refused.
                return Err(self.misbehaved(stage, Misbehaviour::PlaintextAfterStartTls));
            }
            let (n, reply) = match self.parser.parse(input) {
                Ok(r) => r,
                Err(e) => return Err(self.misbehaved(stage, Misbehaviour::Malformed(e))),
            };
            input = &input[n..];
            if let Some(reply) = reply {
                self.on_reply(reply, now)?;
            }
        }
        Ok(())
    }

    /// The server closed the connection (EOF). Normal after QUIT or while idle
    /// (`Event::Closed`); an error while a reply is due.
    pub fn handle_close(&mut self) -> Result<(), ClientError> {
        let clean = self.parser.is_idle();
        match self.state {
            State::Closed => Ok(()),
            State::Quit => {
                self.close_with_event();
                Ok(())
            }
            State::Ready if clean => {
                self.close_with_event();
                Ok(())
            }
            _ => {
                let stage = self.stage();
                self.close();
                Err(ClientError::ConnectionClosed { stage })
            }
        }
    }

    /// Call at (or after) `poll_timeout()`: if the deadline passed, the session closes
    /// with `Event::TimedOut`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((t, stage)) = self.deadline
            && now >= t
        {
            self.close();
            self.events.push_back(Event::TimedOut { stage });
        }
    }

    // ---- replies ------------------------------------------------------------------------------

    /// One complete reply from the server.
    fn on_reply(&mut self, reply: Reply, now: Instant) -> Result<(), ClientError> {
        let stage = self.stage();
        let code = reply.code;
        let go_ahead = (stage == Stage::DataInit && code == 354) || (stage == Stage::Auth);
        if code / 100 == 3 && !go_ahead && stage != Stage::Quit {
            return Err(self.misbehaved(stage, Misbehaviour::UnexpectedCode(code)));
        }
        if stage == Stage::DataInit && code / 100 == 2 {
            return Err(self.misbehaved(stage, Misbehaviour::UnexpectedCode(code)));
        }
        match mem::replace(&mut self.state, State::Closed) {
            State::Greeting => self.on_greeting(reply, now),
            State::Hello { esmtp } => self.on_hello(esmtp, reply, now),
            State::StartTls => return self.on_starttls(reply, now),
            State::Auth(step) => return self.on_auth(step, reply, now),
            State::Handshake => {
                return Err(self.misbehaved(stage, Misbehaviour::PlaintextAfterStartTls));
            }
            State::Ready if code == 421 => self.close_with_event(),
            State::Ready => return Err(self.misbehaved(stage, Misbehaviour::Unsolicited(code))),
            State::Envelope(tx) => self.on_envelope(tx, reply, now),
            State::Content { .. } => {
                return Err(self.misbehaved(stage, Misbehaviour::Unsolicited(code)));
            }
            State::DataEnd { tx, discard } => {
                let after = if code == 421 {
                    After::Close
                } else if discard {
                    After::Rset
                } else {
                    After::Ready
                };
                self.finish(*tx, if discard { None } else { Some(reply) }, after, now);
            }
            State::Rset if reply.is_positive() => self.become_ready(),
            State::Rset if code == 421 => self.close_with_event(),
            State::Rset => self.send_quit(now),
            State::Quit => self.close_with_event(),
            State::Closed => {}
        }
        Ok(())
    }

    /// The 220 greeting (or a refusal).
    fn on_greeting(&mut self, reply: Reply, now: Instant) {
        if !reply.is_positive() {
            let closing = reply.code == 421;
            self.events.push_back(Event::GreetingFailed(reply));
            return if closing { self.close_with_event() } else { self.send_quit(now) };
        }
        if self.names_us(&reply) {
            self.events.push_back(Event::LoopDetected(reply));
            return self.send_quit(now);
        }
        self.send_hello(!self.cfg.use_helo, now);
    }

    /// The reply to EHLO (`esmtp`) or HELO.
    fn on_hello(&mut self, esmtp: bool, reply: Reply, now: Instant) {
        if reply.is_positive() {
            if self.names_us(&reply) {
                self.events.push_back(Event::LoopDetected(reply));
                return self.send_quit(now);
            }
            self.ext =
                if esmtp { PeerExtensions::from_ehlo(&reply) } else { PeerExtensions::default() };
            return self.after_hello(now);
        }
        if esmtp && matches!(reply.code, 500 | 502) {
            return self.send_hello(false, now); // RFC 5321 §4.1.4: fall back to HELO
        }
        let closing = reply.code == 421;
        self.events.push_back(Event::HelloFailed(reply));
        if closing { self.close_with_event() } else { self.send_quit(now) }
    }

    /// A reply to MAIL, RCPT or DATA.
    fn on_envelope(&mut self, mut tx: Box<Tx>, reply: Reply, now: Instant) {
        let n = tx.job.recipients.len();
        let idx = tx.answered();
        if reply.code == 421 {
            return self.abort(*tx, reply, now);
        }
        if idx > n {
            // DATA.
            if reply.code != 354 {
                let data_reply = (tx.accepted > 0).then_some(reply);
                return self.finish(*tx, data_reply, After::Rset, now);
            }
            if tx.accepted > 0 {
                self.state = State::Content { tx, stuffer: DotStuffer::new() };
                return self.arm(Stage::DataBlock, now);
            }
            // RFC 2920 §3.1: 354 although no recipient was accepted; send no content.
            self.cmds.extend_from_slice(b".\r\n");
            self.state = State::DataEnd { tx, discard: true };
            return self.arm(Stage::DataTerm, now);
        }
        if idx == 0 {
            tx.mail_reply = Some(reply);
        } else {
            if reply.is_positive() && tx.mail_ok() {
                tx.accepted += 1;
            }
            tx.rcpt_results.push(RcptResult { index: idx - 1, reply });
        }
        if tx.sent == idx + 1 {
            // Lock-step: everything queued is answered; queue the next command.
            if !tx.mail_ok() || (idx == n && tx.accepted == 0) {
                return self.finish(*tx, None, After::Rset, now);
            }
            match tx.job.recipients.get(idx) {
                Some(r) => write_rcpt(&mut self.cmds, &self.ext, r),
                None if self.bdat() => {
                    // BDAT and the content go out together in `poll_transmit`.
                    self.state = State::Content { tx, stuffer: DotStuffer::bdat() };
                    return self.arm(Stage::DataBlock, now);
                }
                None => self.cmds.extend_from_slice(b"DATA\r\n"),
            }
            tx.sent += 1;
        }
        let next = tx.expecting();
        self.state = State::Envelope(tx);
        self.arm(next, now);
    }

    /// The server sent 421 in the middle of a transaction: unanswered recipients get it.
    fn abort(&mut self, mut tx: Tx, reply: Reply, now: Instant) {
        if tx.mail_reply.is_none() {
            tx.mail_reply = Some(reply.clone());
        }
        for index in tx.rcpt_results.len()..tx.job.recipients.len() {
            tx.rcpt_results.push(RcptResult { index, reply: reply.clone() });
        }
        let data_reply = (tx.accepted > 0).then_some(reply);
        self.finish(tx, data_reply, After::Close, now);
    }

    /// Report a finished transaction and move on.
    fn finish(&mut self, tx: Tx, data_reply: Option<Reply>, after: After, now: Instant) {
        let Tx { job, mail_reply, mut rcpt_results, .. } = tx;
        // Invariant: `finish` runs only after the MAIL reply was stored.
        let mail_reply = mail_reply.unwrap_or_else(|| unreachable!("finish before MAIL reply"));
        if !mail_reply.is_positive() {
            rcpt_results = (0..job.recipients.len())
                .map(|index| RcptResult { index, reply: mail_reply.clone() })
                .collect();
        }
        self.events.push_back(Event::TransactionDone { mail_reply, rcpt_results, data_reply });
        let limit = self.cfg.max_messages_per_connection;
        match after {
            After::Close => self.close_with_event(),
            _ if limit != 0 && self.messages >= limit => self.send_quit(now),
            After::Rset => {
                self.cmds.extend_from_slice(b"RSET\r\n");
                self.state = State::Rset;
                self.arm(Stage::Rset, now);
            }
            After::Ready => self.become_ready(),
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    /// Send content with BDAT (the server offers CHUNKING and the configuration allows it).
    fn bdat(&self) -> bool {
        self.ext.chunking && self.cfg.use_bdat
    }

    /// Why the server cannot take `job`, if it cannot.
    fn refusal(&self, job: &Job) -> Option<Refusal> {
        let strings = std::iter::once(job.reverse_path.as_str())
            .chain(job.envid.as_deref())
            .chain(job.recipients.iter().map(|r| r.forward_path.as_str()))
            .chain(job.recipients.iter().filter_map(|r| r.orcpt.as_deref()));
        // SECURITY: these strings become command lines; a CR or LF would inject commands.
        if strings.clone().any(|s| s.chars().any(char::is_control)) {
            return Some(Refusal::InvalidEnvelope);
        }
        if let Some(limit) = self.ext.size_limit()
            && job.size > limit
        {
            return Some(Refusal::MessageTooBig { size: job.size, limit });
        }
        if job.body_8bit && !self.ext.eight_bit_mime {
            return Some(Refusal::EightBitUnsupported);
        }
        if needs_smtputf8(job) && !self.ext.smtputf8 {
            return Some(Refusal::Smtputf8Unsupported);
        }
        None
    }

    /// The first word of the reply's first line is one of our own names.
    fn names_us(&self, reply: &Reply) -> bool {
        let name = reply.text.split([' ', '\n']).next().unwrap_or("");
        let name = name.strip_suffix('.').unwrap_or(name);
        !name.is_empty()
            && self
                .cfg
                .own_hostnames
                .iter()
                .any(|h| h.strip_suffix('.').unwrap_or(h).eq_ignore_ascii_case(name))
    }

    /// Queue EHLO (`esmtp`) or HELO.
    fn send_hello(&mut self, esmtp: bool, now: Instant) {
        let verb = if esmtp { "EHLO" } else { "HELO" };
        let _ = write!(self.cmds, "{verb} {}\r\n", self.cfg.helo_name);
        self.state = State::Hello { esmtp };
        self.arm(Stage::Hello, now);
    }

    /// Queue QUIT.
    fn send_quit(&mut self, now: Instant) {
        self.cmds.extend_from_slice(b"QUIT\r\n");
        self.state = State::Quit;
        self.arm(Stage::Quit, now);
    }

    /// Idle and ready for a job.
    fn become_ready(&mut self) {
        self.state = State::Ready;
        self.deadline = None;
        self.events.push_back(Event::Ready);
    }

    /// Closed, no event (the caller learns it from an error or a timeout event). Queued
    /// commands are dropped: nothing is written after the session ends.
    fn close(&mut self) {
        self.cmds.clear();
        self.state = State::Closed;
        self.deadline = None;
    }

    /// Closed normally.
    fn close_with_event(&mut self) {
        self.close();
        self.events.push_back(Event::Closed);
    }

    /// Close because the server broke the protocol.
    fn misbehaved(&mut self, stage: Stage, why: Misbehaviour) -> ClientError {
        self.close();
        ClientError::PeerMisbehaved { stage, why }
    }

    /// Start the timeout for `stage` at `now`.
    fn arm(&mut self, stage: Stage, now: Instant) {
        let t = &self.cfg.timeouts;
        let d = match stage {
            Stage::Greeting => t.greeting,
            Stage::Hello
            | Stage::Rset
            | Stage::Quit
            | Stage::StartTls
            | Stage::TlsHandshake
            | Stage::Auth => t.command,
            Stage::Mail => t.mail,
            Stage::Rcpt => t.rcpt,
            Stage::DataInit => t.data_init,
            Stage::DataBlock => t.data_block,
            Stage::DataTerm => t.data_term,
            Stage::Idle => {
                self.deadline = None;
                return;
            }
        };
        self.deadline = Some((now + d, stage));
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tls;

/// The tests' clock origin (here, after `#[cfg(test)]`, where the architecture check
/// allows reading the clock).
#[cfg(test)]
fn test_epoch() -> Instant {
    Instant::now()
}
