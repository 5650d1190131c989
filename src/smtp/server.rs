//! The inbound SMTP session as a sans-IO state machine: bytes in, replies out.
//!
//! `ServerSession::feed` takes whatever the socket produced and writes every reply into
//! `out`. Policy and storage are asked through the `Handler` trait (static dispatch); the
//! session never touches sockets, files or the clock. One `match` over `State` decides
//! what input means at each moment: command lines, DATA content, a BDAT chunk, bytes to
//! drop.
//!
//! Lifecycle, as `receive` drives it: `new` -> `greet` -> `feed` on every read (keep the
//! unconsumed tail, re-feed it with the next read) -> on `DataOutcome::Pending`, stop
//! reading until the spool commit is durable, then `commit_done` and `feed` the tail again
//! -> `is_closed()` after a 221/421: flush `out`, close -> `disconnect` once, always (it
//! calls `data_abort` if content was left open). `timeout` and `shutdown` write their 421.
//! AUTH works like the commit: on `AuthOutcome::Pending` from `Handler::auth_check` stop
//! reading until the password is checked, then `auth_done` and `feed` the tail again
//! (`server/auth.rs`).
//! Interest is derived from `wants_read()`, and `in_data()` picks the data timeout.
//!
//! TRUST: all input is hostile. Bounds: a command line is at most
//! `MAX_COMMAND_LINE_BYTES` (longer lines are dropped as they arrive and answered
//! `500 5.5.2`, and nothing of them is executed); DATA and BDAT content is streamed to the
//! handler and never buffered here; content past `max_message_size_bytes` (the one rule:
//! `policy::size::exceeds_size_limit`) is drained and dropped (`552 5.3.4`). Nothing but
//! `<CRLF>.<CRLF>` ends DATA (`data.rs`), and content holding an end-of-data look-alike (a
//! lone dot next to a bare CR or LF, in DATA or BDAT) is refused `554 5.6.0` under every
//! bare line ending policy (SMTP smuggling). The bytes of a BDAT chunk are always consumed
//! as content, even when the BDAT command is refused, so chunk data can never be executed
//! as commands. No input can make this module panic.
//!
//! Choices where the RFCs leave room (see also the transcripts in `tests/transcripts/`):
//! - Command lines end at LF; a preceding CR is removed. A bare-LF command line is
//!   accepted under `BareLineEnding::Normalize` and refused `500 5.5.2` under `Reject`.
//! - Errors: every 4xx/5xx reply to a command line counts (syntax, sequence, over-long
//!   lines, refusals by the handler, EXPN/STARTTLS, AUTH refusals and `535`s), except `452 4.5.3` for
//!   recipients beyond the limit (RFC 5321 §4.5.3.1.10 flow control) and the reply that
//!   ends a message's content. The count is reset whenever a message is accepted. When it
//!   reaches `max_errors` the session answers `421 4.7.0` and closes.
//! - After `max_messages_per_connection` accepted messages, the next MAIL gets
//!   `421 4.7.0 Too many messages for this connection` and the session closes (the client
//!   reconnects; a 452 would leave it looping on the same connection).
//! - Limits set to 0 (`max_message_size_bytes`, `max_messages_per_connection`,
//!   `max_errors`) mean "no limit"; `SIZE 0` is then advertised as RFC 1870 §5 allows.
//!   (The configuration file refuses `max_errors = 0`: the relay always bounds errors.)
//! - `BODY=BINARYMIME` is refused (`504 5.5.4`): we do not advertise BINARYMIME, so relaying
//!   stays possible to any next hop.
//! - A refused DATA (`554 5.5.1` no valid recipients, a `data_start` refusal) keeps the
//!   transaction; the final reply to the content always ends it (success or not).
//! - A failed BDAT chunk (oversize, handler error) ends the transaction after its reply;
//!   later BDATs are answered `503 5.5.1` and their chunks dropped.
//! - HELO/EHLO replies and `354` carry no enhanced status code (RFC 2034 §3: not on the
//!   greeting or the HELO/EHLO replies; RFC 3463 has no class 3); every other reply does.
//!
//! STANDARDS: RFC 5321 (§3.3 transactions, §4.1.1 commands, §4.1.4 order, §4.5.3.1 limits),
//! RFC 2920 (PIPELINING), RFC 3030 (CHUNKING), RFC 1870 (SIZE), RFC 6152 (8BITMIME),
//! RFC 2034 (ENHANCEDSTATUSCODES), RFC 3461 (DSN parameters), RFC 6531 (SMTPUTF8),
//! RFC 4954 (AUTH, in `server/auth.rs`).
//! RFC 3207 (STARTTLS, in `server/starttls.rs`).

use std::mem;
use std::sync::Arc;

use memchr::memchr;

use super::command::{self, Body, Command, MAX_COMMAND_LINE_BYTES, MailParams, RcptParams};
use super::data::{BareLineEnding, ChunkCounter, DataScanner, LineCheck};
use super::path::{ForwardPath, ReversePath};
use super::reply::{Extensions, Reply};
use super::sasl;
use crate::policy::size::exceeds_size_limit;
use content::{Content, Sink};

mod handler;
mod starttls;
mod transcript;
pub use handler::{AuthOutcome, DataOutcome, Handler, ServerConfig, Transaction, TxRecipient};
pub use starttls::TlsInfo;
pub use transcript::{Entry as TranscriptEntry, Transcript};

/// The client's HELO/EHLO, kept between transactions.
#[derive(Clone, Debug)]
struct Hello {
    /// The argument as given.
    name: String,
    /// EHLO rather than HELO.
    esmtp: bool,
}

impl Transaction {
    /// The greeting this transaction was started under.
    fn into_hello(self) -> Hello {
        Hello { name: self.helo, esmtp: self.esmtp }
    }
}

/// Where the session is. Each variant carries exactly the data valid in it.
#[derive(Debug)]
enum State {
    /// Greeting sent (or about to be); no HELO/EHLO yet.
    Greeted,
    /// HELO/EHLO done, no transaction.
    Ready { hello: Hello },
    /// MAIL accepted (zero or more recipients), content not started.
    Mail { tx: Transaction },
    /// After `354`: input is DATA content until `<CRLF>.<CRLF>`.
    Data { tx: Transaction, content: Content, scanner: DataScanner },
    /// Input is the rest of a BDAT chunk.
    /// `lines` has seen every chunk byte of this message so far.
    Bdat {
        tx: Transaction,
        content: Content,
        lines: LineCheck,
        chunk: ChunkCounter,
        chunk_bytes: u64,
        last: bool,
    },
    /// Between two BDAT chunks of one message (content started, commands accepted).
    BdatIdle { tx: Transaction, content: Content, lines: LineCheck },
    /// The handler is committing the message; no input is consumed until `commit_done`.
    Committing { hello: Hello },
    /// An AUTH exchange (RFC 4954 §4): the next line is a SASL response, not a command.
    Auth { hello: Hello, exchange: sasl::Exchange },
    /// Credentials went to `Handler::auth_check`; no input is consumed until `auth_done`.
    /// `authcid` becomes the session's identity if they were right.
    AuthChecking { hello: Hello, authcid: String },
    /// `220 2.0.0 Ready to start TLS` sent: no input is consumed (the caller discards what
    /// it holds) until `tls_established`, which goes back to `Greeted` (`starttls.rs`).
    StartTls,
    /// Dropping the rest of an over-long command line; `500 5.5.2` when its LF arrives.
    DiscardLine { resume: Box<State> },
    /// Dropping the chunk of a refused BDAT (its reply is already written).
    SkipChunk { remaining: u64, resume: Box<State> },
    /// QUIT or 421 sent: consume nothing more. `content_open`: a message's content was
    /// started and not finished when we closed without a handler at hand (timeout);
    /// `ServerSession::disconnect` then calls `data_abort`.
    Closed { content_open: bool },
}

impl State {
    /// Content was started (`data_start` succeeded) and neither ended nor aborted, i.e.
    /// the handler still expects `data_end` or `data_abort`.
    fn content_open(&self) -> bool {
        match self {
            State::Data { content, .. }
            | State::Bdat { content, .. }
            | State::BdatIdle { content, .. } => matches!(content.sink, Sink::Handler),
            State::DiscardLine { resume } | State::SkipChunk { resume, .. } => {
                resume.content_open()
            }
            State::Closed { content_open } => *content_open,
            State::Greeted
            | State::Ready { .. }
            | State::Mail { .. }
            | State::Committing { .. }
            | State::Auth { .. }
            | State::AuthChecking { .. }
            | State::StartTls => false,
        }
    }
}

/// One inbound SMTP session (sans-IO). See the module docs.
#[derive(Debug)]
pub struct ServerSession {
    /// Shared settings.
    cfg: Arc<ServerConfig>,
    /// Protocol state.
    state: State,
    /// Error replies since the last accepted message (see module docs).
    errors: u32,
    /// Messages accepted on this connection.
    messages: u32,
    /// TLS is active on the connection (after STARTTLS, or an implicit-TLS listener):
    /// what was negotiated. Set once by `tls_established`, never cleared. When STARTTLS
    /// succeeds, `authenticated` and `auth_failures` are reset too (RFC 3207 §4.2).
    tls: Option<TlsInfo>,
    /// The identity a successful AUTH proved; `Some` at most once per session.
    authenticated: Option<String>,
    /// Wrong credentials given on this connection (`535`s), for `max_auth_failures`.
    auth_failures: u32,
    /// Per-command record for the protocol log; `None` (the default) = not kept.
    transcript: Option<Box<Transcript>>,
}

/// Placeholder left in `state` while a transition takes the old state by value.
const TAKEN: State = State::Closed { content_open: false };

impl ServerSession {
    /// A new session; call `greet` first.
    pub fn new(cfg: Arc<ServerConfig>) -> Self {
        ServerSession {
            cfg,
            state: State::Greeted,
            errors: 0,
            messages: 0,
            tls: None,
            authenticated: None,
            auth_failures: 0,
            transcript: None,
        }
    }

    /// Write the `220 <hostname> ESMTP mailroot` greeting.
    pub fn greet(&mut self, out: &mut Vec<u8>) {
        Reply::greeting(&self.cfg.hostname).write_to(out);
    }

    /// Consume as much input as possible, writing replies to `out`. Returns bytes consumed.
    /// Unconsumed bytes (a partial command line) must be re-fed by the caller with more input.
    /// An over-long command line is consumed and discarded (500 5.5.2 once the LF arrives),
    /// so the caller never buffers more than `MAX_COMMAND_LINE_BYTES`.
    /// While a commit is pending (after `DataOutcome::Pending`) it consumes nothing.
    #[must_use]
    pub fn feed<H: Handler>(&mut self, input: &[u8], h: &mut H, out: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            let (before, line) = (out.len(), self.reads_command_line());
            let n = self.step(&input[pos..], h, out);
            if n == 0 {
                break;
            }
            if self.transcript.is_some() {
                let consumed = &input[pos..pos + n];
                self.transcribe(line.then_some(consumed), n, &out[before..]);
            }
            pos += n;
        }
        pos
    }

    /// The commit for the pending message finished: writes `250 2.0.0 Ok: queued as <id>`
    /// or the error reply. Ignored unless a commit is pending.
    pub fn commit_done(&mut self, result: Result<&str, Reply>, out: &mut Vec<u8>) {
        let before = out.len();
        self.commit_reply(result, out);
        self.transcribe(None, 0, &out[before..]);
    }

    /// `commit_done` without the transcript.
    fn commit_reply(&mut self, result: Result<&str, Reply>, out: &mut Vec<u8>) {
        match mem::replace(&mut self.state, TAKEN) {
            State::Committing { hello } => {
                match result {
                    Ok(id) => {
                        self.message_accepted();
                        Reply::queued(id).write_to(out);
                    }
                    Err(r) => r.write_to(out),
                }
                self.state = State::Ready { hello };
            }
            other => self.state = other,
        }
    }

    /// After QUIT/221 or a 421: the caller flushes `out`, then closes.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed { .. })
    }

    /// Reading message content (DATA or a BDAT chunk): use the data timeout.
    #[must_use]
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::Data { .. } | State::Bdat { .. } | State::SkipChunk { .. })
    }

    /// Waiting for `commit_done`.
    #[must_use]
    pub fn awaiting_commit(&self) -> bool {
        matches!(self.state, State::Committing { .. })
    }

    /// The session will consume input if given some (not closed, not awaiting a commit or
    /// an AUTH verification, not waiting for the TLS handshake).
    #[must_use]
    pub fn wants_read(&self) -> bool {
        !self.is_closed()
            && !self.awaiting_commit()
            && !self.awaiting_auth()
            && !self.tls_requested()
    }

    /// Idle timeout: `421 4.4.2` and close (silently during the TLS handshake: the client
    /// expects TLS records, not a plaintext reply). Call `disconnect` afterwards as usual.
    pub fn timeout(&mut self, out: &mut Vec<u8>) {
        let before = out.len();
        if self.tls_requested() {
            self.state = State::Closed { content_open: false };
        } else if !self.is_closed() {
            Reply::timeout().write_to(out);
            self.state = State::Closed { content_open: self.state.content_open() };
        }
        self.transcribe(None, 0, &out[before..]);
    }

    /// Server shutdown: `421 4.3.2` and close, but only between messages (not while content
    /// is open or a commit is pending: the caller tries again later).
    pub fn shutdown(&mut self, out: &mut Vec<u8>) {
        if !self.is_closed() && !self.awaiting_commit() && !self.state.content_open() {
            let before = out.len();
            Reply::shutting_down().write_to(out);
            self.state = State::Closed { content_open: false };
            self.transcribe(None, 0, &out[before..]);
        }
    }

    /// The connection is gone (or about to be closed): abandon any open content
    /// (`data_abort`). Call once before dropping the session.
    pub fn disconnect<H: Handler>(&mut self, h: &mut H) {
        if self.state.content_open() {
            h.data_abort();
        }
        self.state = State::Closed { content_open: false };
        self.transcribe(None, 0, &[]); // a command cut short is logged as it stands
    }

    // ---- input framing -------------------------------------------------------------------

    /// Consume one unit of input (a line, or content bytes); 0 = need more input.
    fn step<H: Handler>(&mut self, input: &[u8], h: &mut H, out: &mut Vec<u8>) -> usize {
        let max_bytes = self.cfg.max_message_size_bytes;
        let reject_bare = self.cfg.bare_line_ending == BareLineEnding::Reject;
        match &mut self.state {
            State::Closed { .. }
            | State::Committing { .. }
            | State::AuthChecking { .. }
            | State::StartTls => 0,
            State::Data { content, scanner, .. } => {
                let (n, finished) =
                    scanner.scan(input, &mut |bytes: &[u8]| content.accept(bytes, max_bytes, h));
                // SECURITY: an end-of-data look-alike is refused under either policy
                // (normalising it would store a lone-dot line the client never sent).
                if scanner.saw_end_of_data_lookalike() {
                    content.refuse_smuggling(h);
                } else if reject_bare && scanner.saw_bare_line_ending() {
                    content.fail(Reply::bare_lf_rejected(), h);
                }
                if finished {
                    let State::Data { tx, content, .. } = mem::replace(&mut self.state, TAKEN)
                    else {
                        unreachable!("matched State::Data above")
                    };
                    self.end_content(tx, content, h, out);
                }
                n
            }
            State::Bdat { content, lines, chunk, .. } => {
                let part = chunk.take(input);
                // Checked before the bytes reach the handler: a refused part is never stored.
                lines.feed(part);
                if lines.saw_end_of_data_lookalike() {
                    content.refuse_smuggling(h);
                } else if reject_bare && lines.saw_bare_line_ending() {
                    content.fail(Reply::bare_lf_rejected(), h);
                }
                content.accept(part, max_bytes, h);
                let n = part.len();
                if chunk.is_done() {
                    self.end_chunk(h, out);
                }
                n
            }
            State::SkipChunk { remaining, .. } => {
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.resume();
                }
                n
            }
            State::DiscardLine { .. } => match memchr(b'\n', input) {
                Some(k) => {
                    self.resume();
                    self.error(Reply::line_too_long(), h, out);
                    k + 1
                }
                None => input.len(),
            },
            State::Greeted
            | State::Ready { .. }
            | State::Mail { .. }
            | State::BdatIdle { .. }
            | State::Auth { .. } => self.command_line(input, h, out),
        }
    }

    /// Leave `DiscardLine`/`SkipChunk` for the state they interrupted.
    fn resume(&mut self) {
        match mem::replace(&mut self.state, TAKEN) {
            State::DiscardLine { resume } | State::SkipChunk { resume, .. } => self.state = *resume,
            other => self.state = other,
        }
    }

    /// Frame and run one command line from the start of `input`.
    fn command_line<H: Handler>(&mut self, input: &[u8], h: &mut H, out: &mut Vec<u8>) -> usize {
        let limit = input.len().min(MAX_COMMAND_LINE_BYTES);
        if let Some(k) = memchr(b'\n', &input[..limit]) {
            match input[..k].strip_suffix(b"\r") {
                Some(line) => self.command(line, h, out),
                None if self.cfg.bare_line_ending == BareLineEnding::Reject => {
                    self.error(Reply::bare_lf_in_command(), h, out);
                }
                None => self.command(&input[..k], h, out),
            }
            return k + 1;
        }
        if input.len() < MAX_COMMAND_LINE_BYTES {
            return 0; // partial line: the caller keeps it and feeds more
        }
        // Over-long: no LF within the limit. Nothing of this line is ever executed.
        match memchr(b'\n', &input[limit..]) {
            Some(k) => {
                self.error(Reply::line_too_long(), h, out);
                limit + k + 1
            }
            None => {
                let resume = Box::new(mem::replace(&mut self.state, TAKEN));
                self.state = State::DiscardLine { resume };
                input.len()
            }
        }
    }

    // ---- replies and bookkeeping -----------------------------------------------------------

    /// Write an error reply to a command line and count it; close at `max_errors`.
    /// An error in the middle of an AUTH exchange (an over-long or bare-LF line) ends it.
    fn error<H: Handler>(&mut self, reply: Reply, h: &mut H, out: &mut Vec<u8>) {
        self.leave_auth();
        reply.write_to(out);
        if self.count_error() {
            self.close(Reply::too_many_errors(), h, out);
        }
    }

    /// Count one error reply; true when `max_errors` is reached (the caller closes).
    fn count_error(&mut self) -> bool {
        self.errors = self.errors.saturating_add(1);
        self.cfg.max_errors != 0 && self.errors >= self.cfg.max_errors
    }

    /// Write a final reply (221 or 421), abandon open content, and close.
    fn close<H: Handler>(&mut self, reply: Reply, h: &mut H, out: &mut Vec<u8>) {
        if self.state.content_open() {
            h.data_abort();
        }
        reply.write_to(out);
        self.state = State::Closed { content_open: false };
    }

    /// A message got its 250.
    fn message_accepted(&mut self) {
        self.messages = self.messages.saturating_add(1);
        self.errors = 0;
    }

    /// End of a message's content (DATA end marker or BDAT LAST): reply or start a commit.
    fn end_content<H: Handler>(
        &mut self,
        tx: Transaction,
        content: Content,
        h: &mut H,
        out: &mut Vec<u8>,
    ) {
        let hello = tx.into_hello();
        if let Some(reply) = content.sink.into_refusal() {
            reply.write_to(out);
            self.state = State::Ready { hello };
            return;
        }
        match h.data_end() {
            DataOutcome::Done(reply) => {
                if reply.is_positive() {
                    self.message_accepted();
                }
                reply.write_to(out);
                self.state = State::Ready { hello };
            }
            DataOutcome::Pending => self.state = State::Committing { hello },
        }
    }

    /// The current BDAT chunk is complete.
    fn end_chunk<H: Handler>(&mut self, h: &mut H, out: &mut Vec<u8>) {
        let State::Bdat { tx, mut content, mut lines, chunk_bytes, last, .. } =
            mem::replace(&mut self.state, TAKEN)
        else {
            unreachable!("end_chunk is only called in State::Bdat")
        };
        if last {
            // `BDAT 0 LAST` never reaches `step`: finish the line check here too.
            lines.finish();
            if lines.saw_end_of_data_lookalike() {
                content.refuse_smuggling(h);
            }
            return self.end_content(tx, content, h, out);
        }
        if let Sink::Handler = content.sink {
            Reply::chunk_received(chunk_bytes).write_to(out);
            self.state = State::BdatIdle { tx, content, lines };
        } else if let Some(reply) = content.sink.into_refusal() {
            // The message failed: answer now and end the transaction (RFC 3030 §2:
            // the client should send RSET; later BDATs get 503 and are dropped).
            reply.write_to(out);
            self.state = State::Ready { hello: tx.into_hello() };
        }
    }

    // ---- commands ------------------------------------------------------------------------

    /// Parse and run one command line (without its line ending).
    fn command<H: Handler>(&mut self, line: &[u8], h: &mut H, out: &mut Vec<u8>) {
        if let State::Auth { .. } = self.state {
            return self.auth_response(line, h, out);
        }
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => return self.error(Reply::from(&e), h, out),
        };
        match cmd {
            Command::Helo { domain } => self.hello(domain, false, h, out),
            Command::Ehlo { domain } => self.hello(domain, true, h, out),
            Command::Mail { from, params } => self.mail(&from, &params, h, out),
            Command::Rcpt { to, params } => self.rcpt(&to, &params, h, out),
            Command::Data => self.data(h, out),
            Command::Bdat { chunk_bytes, last } => self.bdat(chunk_bytes, last, h, out),
            Command::Rset => {
                self.reset(h);
                Reply::ok().write_to(out);
            }
            Command::Noop => Reply::ok().write_to(out),
            Command::Quit => self.close(Reply::closing(), h, out),
            Command::Vrfy { .. } => Reply::cannot_verify().write_to(out),
            Command::Expn { .. } => self.error(Reply::expn_not_available(), h, out),
            Command::Help { .. } => Reply::help(self.cfg.enable_chunking).write_to(out),
            // SECURITY: see `starttls.rs` (nothing after this line is consumed in plaintext).
            Command::StartTls => self.starttls(h, out),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial, h, out),
        }
    }

    /// Abandon the transaction (and its content, if started), keeping the greeting.
    fn reset<H: Handler>(&mut self, h: &mut H) {
        if self.state.content_open() {
            h.data_abort();
        }
        self.state = match mem::replace(&mut self.state, TAKEN) {
            State::Mail { tx } | State::BdatIdle { tx, .. } => {
                State::Ready { hello: tx.into_hello() }
            }
            other => other,
        };
    }

    /// HELO/EHLO: (re)start the session; any transaction is abandoned (RFC 5321 §4.1.4).
    fn hello<H: Handler>(&mut self, domain: &str, esmtp: bool, h: &mut H, out: &mut Vec<u8>) {
        if self.state.content_open() {
            h.data_abort();
        }
        self.state = State::Ready { hello: Hello { name: domain.to_owned(), esmtp } };
        let cfg = &self.cfg;
        if esmtp {
            let ext = Extensions {
                max_message_size_bytes: cfg.max_message_size_bytes,
                smtputf8: cfg.enable_smtputf8,
                chunking: cfg.enable_chunking,
                auth: self.auth_offered(),
                starttls: self.starttls_offered(),
            };
            Reply::ehlo(&cfg.hostname, &ext).write_to(out);
        } else {
            Reply::helo(&cfg.hostname).write_to(out);
        }
    }

    /// MAIL FROM.
    fn mail<H: Handler>(
        &mut self,
        from: &ReversePath<'_>,
        params: &MailParams<'_>,
        h: &mut H,
        out: &mut Vec<u8>,
    ) {
        let cfg = Arc::clone(&self.cfg);
        let refusal = match &self.state {
            State::Greeted => Some(Reply::need_helo()),
            State::Mail { .. } | State::BdatIdle { .. } => Some(Reply::nested_mail()),
            _ => None,
        };
        if let Some(r) = refusal.or_else(|| self.tls_required_refusal()) {
            return self.error(r, h, out);
        }
        if cfg.max_messages_per_connection != 0 && self.messages >= cfg.max_messages_per_connection
        {
            return self.close(Reply::too_many_messages(), h, out);
        }
        let too_big = |size: u64| exceeds_size_limit(size, cfg.max_message_size_bytes);
        let refusal = if params.size.is_some_and(too_big) {
            h.refused_for_size();
            Some(Reply::message_too_big())
        } else if params.smtputf8 && !cfg.enable_smtputf8 {
            Some(Reply::bad_parameter("SMTPUTF8"))
        } else if params.body == Some(Body::BinaryMime) {
            Some(Reply::parameter_not_implemented("BODY=BINARYMIME"))
        } else if from.mailbox().is_some_and(|m| !m.is_ascii()) && !params.smtputf8 {
            Some(Reply::smtputf8_required())
        } else {
            h.mail(from, params).err()
        };
        if let Some(r) = refusal {
            return self.error(r, h, out);
        }
        let State::Ready { hello } = mem::replace(&mut self.state, TAKEN) else {
            unreachable!("MAIL is refused above in every state but Ready")
        };
        let tx = Transaction {
            reverse_path: from.mailbox().map(ToString::to_string).unwrap_or_default(),
            recipients: Vec::new(),
            body: params.body,
            smtputf8: params.smtputf8,
            ret: params.ret,
            envid: params.envid.as_deref().map(str::to_owned),
            declared_size: params.size,
            helo: hello.name,
            esmtp: hello.esmtp,
            authenticated: self.authenticated.clone(),
            tls: self.tls.clone(),
        };
        self.state = State::Mail { tx };
        Reply::sender_ok().write_to(out);
    }

    /// RCPT TO.
    fn rcpt<H: Handler>(
        &mut self,
        to: &ForwardPath<'_>,
        params: &RcptParams<'_>,
        h: &mut H,
        out: &mut Vec<u8>,
    ) {
        let (count, smtputf8) = match &self.state {
            State::Mail { tx } => (tx.recipients.len(), tx.smtputf8),
            State::BdatIdle { .. } => return self.error(Reply::data_bdat_mixed(), h, out),
            _ => return self.error(Reply::need_mail(), h, out),
        };
        if count >= self.cfg.max_recipients {
            // Not counted as an error: RFC 5321 §4.5.3.1.10 flow control.
            return Reply::too_many_recipients().write_to(out);
        }
        let refusal = if to.mailbox().is_some_and(|m| !m.is_ascii()) && !smtputf8 {
            Some(Reply::smtputf8_required())
        } else {
            h.rcpt(to, params).err()
        };
        if let Some(r) = refusal {
            return self.error(r, h, out);
        }
        if let State::Mail { tx } = &mut self.state {
            tx.recipients.push(TxRecipient {
                forward_path: match to {
                    ForwardPath::Postmaster => "Postmaster".to_owned(),
                    ForwardPath::Mailbox(m) => m.to_string(),
                },
                notify: params.notify,
                orcpt: params.orcpt.as_ref().map(|o| format!("{};{}", o.addr_type, o.addr)),
            });
        }
        Reply::recipient_ok().write_to(out);
    }

    /// Why content cannot start now (DATA or the first BDAT), if it cannot.
    fn content_refusal(&self) -> Option<Reply> {
        match &self.state {
            State::Mail { tx } if tx.recipients.is_empty() => Some(Reply::no_valid_recipients()),
            State::Mail { .. } => None,
            State::BdatIdle { .. } => Some(Reply::data_bdat_mixed()),
            _ => Some(Reply::need_mail()),
        }
    }

    /// DATA.
    fn data<H: Handler>(&mut self, h: &mut H, out: &mut Vec<u8>) {
        let refusal = match (self.content_refusal(), &self.state) {
            (Some(r), _) => Some(r),
            (None, State::Mail { tx }) => h.data_start(tx).err(),
            (None, _) => unreachable!("content_refusal is None only in State::Mail"),
        };
        if let Some(r) = refusal {
            return self.error(r, h, out);
        }
        let State::Mail { tx } = mem::replace(&mut self.state, TAKEN) else {
            unreachable!("checked above")
        };
        let scanner = DataScanner::new(self.cfg.bare_line_ending);
        self.state = State::Data { tx, content: Content::new(), scanner };
        Reply::start_data().write_to(out);
    }

    /// BDAT n [LAST]. The chunk is consumed as content whatever the reply.
    fn bdat<H: Handler>(&mut self, chunk_bytes: u64, last: bool, h: &mut H, out: &mut Vec<u8>) {
        let refusal = if !self.cfg.enable_chunking {
            Some(Reply::not_implemented())
        } else {
            match (&self.state, self.content_refusal()) {
                (State::BdatIdle { .. }, _) => None,
                (_, Some(r)) => Some(r),
                (State::Mail { tx }, None) => h.data_start(tx).err(),
                (_, None) => unreachable!("content_refusal is None only in State::Mail"),
            }
        };
        if let Some(r) = refusal {
            self.error(r, h, out);
            if chunk_bytes > 0 && !self.is_closed() {
                let resume = Box::new(mem::replace(&mut self.state, TAKEN));
                self.state = State::SkipChunk { remaining: chunk_bytes, resume };
            }
            return;
        }
        let (tx, mut content, lines) = match mem::replace(&mut self.state, TAKEN) {
            State::Mail { tx } => (tx, Content::new(), LineCheck::new()),
            State::BdatIdle { tx, content, lines } => (tx, content, lines),
            _ => unreachable!("refused above in every other state"),
        };
        let max = self.cfg.max_message_size_bytes;
        if exceeds_size_limit(content.received_bytes.saturating_add(chunk_bytes), max) {
            if matches!(content.sink, Sink::Handler) {
                h.refused_for_size();
            }
            content.fail(Reply::message_too_big(), h); // known now; drain the chunk
        }
        let chunk = ChunkCounter::new(chunk_bytes);
        self.state = State::Bdat { tx, content, lines, chunk, chunk_bytes, last };
        if chunk_bytes == 0 {
            self.end_chunk(h, out);
        }
    }
}

mod auth;
mod content;

#[cfg(test)]
mod tests;
