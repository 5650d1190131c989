//! STARTTLS in the session (RFC 3207), sans-IO: the session says when TLS should start
//! and is told when it is up; the handshake itself is `net`'s (rustls).
//!
//! Lifecycle: `STARTTLS` (offered: `ServerConfig::starttls` and TLS not yet active; outside
//! a mail transaction) -> `220 2.0.0 Ready to start TLS` and `State::StartTls`: `feed`
//! consumes nothing more, `wants_read()` is false, `tls_requested()` is true -> the caller
//! discards every byte it still holds, runs the handshake, and calls `tls_established`
//! -> `State::Greeted`: everything learnt before is forgotten (RFC 3207 §4.2), the client
//! must send EHLO again, whose reply no longer offers STARTTLS. On an implicit-TLS
//! listener (RFC 8314) the caller calls `tls_established` before `greet`.
//!
//! SECURITY (RFC 3207 §4.2, CVE-2011-0411, Postfix `starttls_cmd`: "there must not be any
//! pending plaintext"): `feed` returns right after the STARTTLS line's LF and consumes
//! nothing until `tls_established`, so a command pipelined after STARTTLS in the same
//! packet is never executed by the session; the caller must throw those bytes away before
//! the handshake (`net/conn.rs` does, at the line marked SECURITY). Transcripts:
//! `tests/transcripts/starttls*.txt`.
//!
//! Choices: STARTTLS not offered -> `454 4.7.0 TLS not available` (RFC 3207 §4: "TLS not
//! available due to temporary reason"); TLS already active -> `503 5.5.1 TLS already
//! active` (§4.2: the client MUST NOT start TLS twice); inside a transaction -> `503 5.5.1`;
//! with `require_tls`, MAIL before TLS -> `530 5.7.0 Must issue a STARTTLS command first`
//! (§4). Each of these counts as an error (`max_errors`).

use super::{Handler, Reply, ServerSession, State};

/// What TLS negotiated, as the session keeps it (for the `Received:` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version name, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl ServerSession {
    /// True from the `220 2.0.0 Ready to start TLS` reply until `tls_established`: the
    /// caller starts the TLS handshake; meanwhile `feed` consumes nothing.
    #[must_use]
    pub fn tls_requested(&self) -> bool {
        matches!(self.state, State::StartTls)
    }

    /// TLS is up. After STARTTLS the session is back to its post-greeting state (EHLO must
    /// come again); on an implicit-TLS listener call this before `greet`. Ignored if TLS is
    /// already active or the session is closed.
    pub fn tls_established(&mut self, info: TlsInfo) {
        if self.tls.is_some() || self.is_closed() {
            return;
        }
        if self.tls_requested() {
            self.state = State::Greeted;
            // RFC 3207 §4.2: forget what the client said before TLS, identity included.
            // A plaintext AUTH before STARTTLS must be proved again over TLS.
            self.authenticated = None;
            self.auth_failures = 0;
        }
        self.tls = Some(info);
    }

    /// TLS is active on this connection.
    #[must_use]
    pub fn tls_active(&self) -> bool {
        self.tls.is_some()
    }

    /// What TLS negotiated, once active.
    #[must_use]
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// EHLO lists STARTTLS: a certificate is configured and TLS is not active yet.
    pub(super) fn starttls_offered(&self) -> bool {
        self.cfg.starttls && !self.tls_active()
    }

    /// `require_tls` and no TLS yet: the reply to MAIL.
    pub(super) fn tls_required_refusal(&self) -> Option<Reply> {
        (self.cfg.require_tls && !self.tls_active()).then(Reply::tls_required)
    }

    /// The STARTTLS command.
    pub(super) fn starttls<H: Handler>(&mut self, h: &mut H, out: &mut Vec<u8>) {
        let refusal = if self.tls_active() {
            Some(Reply::tls_already_active())
        } else if !self.cfg.starttls {
            Some(Reply::tls_not_available())
        } else {
            match self.state {
                State::Greeted | State::Ready { .. } => None,
                _ => Some(Reply::starttls_in_transaction()),
            }
        };
        if let Some(r) = refusal {
            return self.error(r, h, out);
        }
        Reply::ready_to_start_tls().write_to(out);
        self.state = State::StartTls;
    }
}
