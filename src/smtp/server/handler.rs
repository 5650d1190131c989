//! What a `ServerSession` shares with its caller: the per-listener `ServerConfig`, the
//! `Handler` hooks through which `receive` (or a test's fake) decides policy and stores
//! content, and the `Transaction` envelope the handler is shown. The session itself, its
//! states and every reply are in `server.rs`.

use super::super::command::{Body, MailParams, Notify, RcptParams, Ret};
use super::super::data::BareLineEnding;
use super::super::path::{ForwardPath, ReversePath};
use super::super::reply::Reply;

/// Per-listener settings of the session. Shared read-only between sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Our host name, for the greeting and the EHLO reply.
    pub hostname: String,
    /// Largest message content accepted, in bytes after dot-unstuffing; 0 = no limit.
    pub max_message_size_bytes: u64,
    /// Most recipients per transaction; more get `452 4.5.3`.
    pub max_recipients: usize,
    /// Messages accepted per connection before MAIL gets `421 4.7.0`; 0 = no limit.
    pub max_messages_per_connection: u32,
    /// Error replies (see module docs) before `421 4.7.0`; 0 = no limit.
    pub max_errors: u32,
    /// Bare CR / bare LF policy for DATA content and command lines.
    pub bare_line_ending: BareLineEnding,
    /// Advertise and accept CHUNKING (BDAT, RFC 3030).
    pub enable_chunking: bool,
    /// Advertise and accept SMTPUTF8 (RFC 6531).
    pub enable_smtputf8: bool,
    /// AUTH is available (users are configured); without it AUTH gets `502 5.5.1`.
    pub enable_auth: bool,
    /// Offer and accept AUTH without TLS (otherwise `538 5.7.11` until TLS is active).
    pub allow_plaintext_auth: bool,
    /// Wrong credentials (`535`) per connection before `421 4.7.0`; 0 = no limit.
    pub max_auth_failures: u32,
    /// Advertise and accept STARTTLS (RFC 3207): the site has a certificate.
    pub starttls: bool,
    /// MAIL before TLS is active gets `530 5.7.0 Must issue a STARTTLS command first`.
    pub require_tls: bool,
}

impl Default for ServerConfig {
    /// The built-in defaults (the same as the embedded configuration's).
    fn default() -> Self {
        ServerConfig {
            hostname: "localhost".to_owned(),
            max_message_size_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            max_messages_per_connection: 20,
            max_errors: 10,
            bare_line_ending: BareLineEnding::Normalize,
            enable_chunking: true,
            enable_smtputf8: true,
            enable_auth: false,
            allow_plaintext_auth: false,
            max_auth_failures: 3,
            starttls: false,
            require_tls: false,
        }
    }
}

/// Policy and storage hooks supplied by `receive` (static dispatch; tests use a fake).
pub trait Handler {
    /// MAIL accepted syntactically; may refuse (452 4.3.1 low disk, 552 size, ...).
    fn mail(&mut self, from: &ReversePath<'_>, params: &MailParams<'_>) -> Result<(), Reply>;
    /// RCPT syntactically valid; may refuse (554 5.7.1 relay denied, 550 ...).
    fn rcpt(&mut self, to: &ForwardPath<'_>, params: &RcptParams<'_>) -> Result<(), Reply>;
    /// Start of message content (DATA 354 about to be sent, or first BDAT). May refuse (451/452).
    fn data_start(&mut self, tx: &Transaction) -> Result<(), Reply>;
    /// Content bytes, already unstuffed/normalised, in order. Err -> session drains to end
    /// and answers it (after calling `data_abort`).
    fn data_chunk(&mut self, bytes: &[u8]) -> Result<(), Reply>;
    /// Content complete. `Pending` means the reply arrives later via `ServerSession::commit_done`.
    fn data_end(&mut self) -> DataOutcome;
    /// The transaction's content is abandoned (oversize, bare LF rejected, error, RSET,
    /// HELO/EHLO, QUIT, too many errors, disconnect mid-DATA). Called at most once per
    /// `data_start`, and never after `data_end`.
    fn data_abort(&mut self);
    /// The transaction was refused for size (MAIL `SIZE=` over the limit, or content that
    /// grew past it): for the "Messages Refused for Size" counter. Called once per refusal.
    fn refused_for_size(&mut self) {}
    /// The content held an end-of-data look-alike (a lone dot next to a bare CR or LF,
    /// `data.rs`) and is refused `554 5.6.0`: for the smuggling counter and log line.
    /// Called once per refused message (after or before `data_abort`, which the content
    /// gets once in any case).
    fn refused_smuggling(&mut self) {}
    /// Verify AUTH credentials (RFC 4954). `Pending`: the answer arrives later through
    /// `ServerSession::auth_done` (password hashing must not run on the event loop); the
    /// session consumes no input meanwhile. `password` must never be logged or kept.
    /// The default refuses everyone.
    fn auth_check(&mut self, authcid: &str, password: &[u8]) -> AuthOutcome {
        let _ = (authcid, password);
        AuthOutcome::Done(false)
    }
}

/// What `Handler::auth_check` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are right (`true`) or wrong (`false`); answer now.
    Done(bool),
    /// The answer comes later through `ServerSession::auth_done`.
    Pending,
}

/// What `Handler::data_end` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// The reply comes later through `ServerSession::commit_done` (group commit).
    Pending,
    /// Reply now with this.
    Done(Reply),
}

/// Envelope of the current transaction, owned (copied from the line buffer once per command).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    /// Canonical `local@domain` of MAIL FROM; empty for the null reverse path `<>`.
    pub reverse_path: String,
    /// Accepted recipients in RCPT order. Never more than `max_recipients`.
    pub recipients: Vec<TxRecipient>,
    /// `BODY=` as given (never `BinaryMime`: refused at MAIL).
    pub body: Option<Body>,
    /// `SMTPUTF8` was given on MAIL.
    pub smtputf8: bool,
    /// DSN `RET=`.
    pub ret: Option<Ret>,
    /// DSN `ENVID=`, xtext-decoded.
    pub envid: Option<String>,
    /// `SIZE=` declared on MAIL (already checked against the limit).
    pub declared_size: Option<u64>,
    /// The HELO/EHLO argument.
    pub helo: String,
    /// The client greeted with EHLO.
    pub esmtp: bool,
    /// The identity proved by AUTH before MAIL (RFC 4954), for the `Received:` header
    /// (`ESMTPA`) and the logs; `None` when the client did not authenticate.
    pub authenticated: Option<String>,
    /// TLS was active when MAIL was given (for `Received: ... with ESMTPS (...)`).
    pub tls: Option<super::TlsInfo>,
}

/// One accepted recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecipient {
    /// Canonical `local@domain`, or `Postmaster` for a bare `<Postmaster>`.
    pub forward_path: String,
    /// DSN `NOTIFY=`.
    pub notify: Option<Notify>,
    /// DSN `ORCPT=` as `addr-type;addr` (addr xtext-decoded).
    pub orcpt: Option<String>,
}
