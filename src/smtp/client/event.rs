//! What a `ClientSession` reports: events, per-recipient results, refusals, errors.
//!
//! STANDARDS: RFC 3463 (the statuses of `Refusal`).

use std::fmt;

use super::SecurityFailure;
use crate::smtp::reply::{EnhancedStatus, Reply};
use crate::smtp::reply_parse::ReplyError;

/// The server's answer for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RcptResult {
    /// Index into `Job::recipients`.
    pub index: usize,
    /// The reply to its RCPT; the MAIL reply if MAIL failed; the 421 if the server
    /// closed before answering.
    pub reply: Reply,
}

impl RcptResult {
    /// The reply that decided this recipient: its RCPT reply if that failed, else the
    /// transaction's `data_reply`.
    #[must_use]
    pub fn outcome<'a>(&'a self, data_reply: Option<&'a Reply>) -> &'a Reply {
        if self.reply.is_positive() { data_reply.unwrap_or(&self.reply) } else { &self.reply }
    }
}

/// What the session is waiting for; names the timeout that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The 220 greeting.
    Greeting,
    /// The reply to EHLO/HELO.
    Hello,
    /// Nothing (ready for a job, or closed).
    Idle,
    /// The reply to MAIL.
    Mail,
    /// A reply to RCPT.
    Rcpt,
    /// The reply to DATA.
    DataInit,
    /// The caller's socket taking the content.
    DataBlock,
    /// The reply after the end of data (or to `BDAT <n> LAST`).
    DataTerm,
    /// The reply to RSET.
    Rset,
    /// The reply to QUIT.
    Quit,
    /// The reply to STARTTLS.
    StartTls,
    /// The driver's TLS handshake (`Event::StartTls` until `tls_established`/`tls_failed`).
    TlsHandshake,
    /// A reply in the AUTH exchange.
    Auth,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Greeting => "greeting",
            Stage::Hello => "hello",
            Stage::Idle => "idle",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::DataInit => "data-init",
            Stage::DataBlock => "data-block",
            Stage::DataTerm => "data-term",
            Stage::Rset => "rset",
            Stage::Quit => "quit",
            Stage::StartTls => "starttls",
            Stage::TlsHandshake => "tls-handshake",
            Stage::Auth => "auth",
        })
    }
}

/// Why a job was refused before MAIL was sent (the next hop cannot take it). Every
/// recipient fails with `status()`; nothing was sent, the session stays ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The declared size exceeds the server's SIZE (5.3.4).
    MessageTooBig {
        /// `Job::size`.
        size: u64,
        /// The server's SIZE.
        limit: u64,
    },
    /// 8-bit content and no 8BITMIME (5.6.3; no downconversion).
    EightBitUnsupported,
    /// A non-ASCII address and no SMTPUTF8 (5.6.7; no downconversion).
    Smtputf8Unsupported,
    /// An envelope string holds a control character (a corrupt job; 5.1.3).
    InvalidEnvelope,
}

impl Refusal {
    /// The RFC 3463 status for the NDR.
    #[must_use]
    pub fn status(&self) -> EnhancedStatus {
        let (subject, detail) = match self {
            Refusal::MessageTooBig { .. } => (3, 4),
            Refusal::EightBitUnsupported => (6, 3),
            Refusal::Smtputf8Unsupported => (6, 7),
            Refusal::InvalidEnvelope => (1, 3),
        };
        EnhancedStatus { class: 5, subject, detail }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MessageTooBig { size, limit } => {
                write!(f, "message size {size} exceeds the remote limit of {limit} bytes")
            }
            Refusal::EightBitUnsupported => {
                f.write_str("remote host does not accept 8-bit content")
            }
            Refusal::Smtputf8Unsupported => {
                f.write_str("remote host does not accept UTF-8 addresses (SMTPUTF8)")
            }
            Refusal::InvalidEnvelope => f.write_str("envelope contains control characters"),
        }
    }
}

/// What happened; drained with `poll_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Ready for a job (`send`) or `quit`. Poll events after every `handle_input`: a
    /// later reply in the same input can close the session (`ready_for_next()` decides).
    Ready,
    /// The greeting was 4xx/5xx: try the next MX. QUIT is sent unless it was 421.
    GreetingFailed(Reply),
    /// EHLO and HELO both failed (or the HELO fallback did not apply): try the next MX.
    HelloFailed(Reply),
    /// The greeting or EHLO reply names one of `own_hostnames`: "Cannot connect to self"
    /// (5.4.6). QUIT is sent.
    LoopDetected(Reply),
    /// The job was refused before MAIL; see `Refusal`. `Ready` follows.
    JobRefused(Refusal),
    /// A transaction ended. `rcpt_results` has one entry per job recipient, in order.
    /// `data_reply` is the reply that decided the accepted recipients (DATA's refusal or
    /// the final reply to the content); `None` when no recipient was accepted.
    TransactionDone {
        /// The reply to MAIL.
        mail_reply: Reply,
        /// One per recipient; see `RcptResult::outcome`.
        rcpt_results: Vec<RcptResult>,
        /// See above.
        data_reply: Option<Reply>,
    },
    /// No reply (or no write progress) in time; the session is closed.
    TimedOut {
        /// What we were waiting for.
        stage: Stage,
    },
    /// The session ended normally (QUIT answered, or a 421 from the server).
    Closed,
    /// The server answered 220 to STARTTLS: run the TLS handshake on this connection now
    /// (whatever the server sent after the 220 in plaintext was refused as a protocol
    /// violation), then call `tls_established` or `tls_failed`. The session writes and
    /// reads nothing until then.
    StartTls,
    /// The hop failed the TLS policy or the smart host authentication (see
    /// `SecurityFailure`): QUIT is sent (or the session is closed); defer the job with
    /// the failure's status and text.
    SecurityFailed(SecurityFailure),
}

/// How the server broke the protocol.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Its bytes are not a well-formed reply.
    Malformed(ReplyError),
    /// A reply code that makes no sense here (e.g. 354 to MAIL, 250 to DATA).
    UnexpectedCode(u16),
    /// A reply while none was due (e.g. while we send content).
    Unsolicited(u16),
    /// Bytes after the 220 to STARTTLS, before TLS (RFC 3207 §5: plaintext that must not
    /// be read as replies once TLS is up; the CVE-2011-0411 class of injection).
    PlaintextAfterStartTls,
}

/// Why a session failed. The session is closed after any of these.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The server broke the protocol (peer at fault).
    PeerMisbehaved {
        /// What we were waiting for.
        stage: Stage,
        /// What it did.
        why: Misbehaviour,
    },
    /// The server closed the connection while a reply was due (peer or network at fault).
    ConnectionClosed {
        /// What we were waiting for.
        stage: Stage,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::PeerMisbehaved { stage, why: Misbehaviour::Malformed(e) } => {
                write!(f, "malformed reply at {stage}: {e}")
            }
            ClientError::PeerMisbehaved { stage, why: Misbehaviour::UnexpectedCode(c) } => {
                write!(f, "unexpected reply code {c} at {stage}")
            }
            ClientError::PeerMisbehaved { stage, why: Misbehaviour::Unsolicited(c) } => {
                write!(f, "unsolicited reply {c} at {stage}")
            }
            ClientError::PeerMisbehaved { stage, why: Misbehaviour::PlaintextAfterStartTls } => {
                write!(f, "plaintext after the STARTTLS reply at {stage}")
            }
            ClientError::ConnectionClosed { stage } => {
                write!(f, "connection closed by the server at {stage}")
            }
        }
    }
}

impl std::error::Error for ClientError {}
