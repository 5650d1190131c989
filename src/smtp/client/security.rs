//! STARTTLS and AUTH as the client sees them: why a hop failed the TLS policy or the smart
//! host authentication, and the AUTH command lines.
//!
//! TRUST: the credentials are ours and secret: they are only ever written, base64-encoded,
//! into the command buffer (never into a `SecurityFailure`, an event, an error or `Debug`
//! output); `ClientSession` sends them only once TLS is active. Replies quoted in a
//! failure come from the server, already bounded and sanitised by `reply_parse`.
//!
//! Choices (documented in ARCHITECTURE.md too): every failure here is **temporary**
//! (class 4), as Postfix defers on a TLS policy failure ("TLS is required, but was not
//! offered by host") and, with its default `smtp_sasl_auth_soft_bounce = yes`, on a
//! rejected authentication: both are fixed by an operator (a certificate, a password),
//! so the mail waits for the fix instead of bouncing. Statuses (RFC 3463, RFC 4954 §6):
//! 4.7.4 "security features not supported" (no STARTTLS, STARTTLS refused, no usable
//! mechanism, no TLS layer), 4.7.5 "cryptographic failure" (the handshake failed),
//! 4.7.11 "encryption required for requested authentication mechanism" (credentials
//! kept back on a plaintext connection), 4.7.8 "authentication credentials invalid"
//! (535), 4.7.0 for any other refusal of AUTH.
//!
//! STANDARDS: RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 4616 (PLAIN), the LOGIN
//! mechanism (draft-murchison-sasl-login), RFC 4648 (base64), RFC 3463 / RFC 7672 §8
//! (statuses of TLS failures).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use std::sync::Arc;
use std::time::Instant;

use super::{
    ClientAuth, ClientError, ClientSession, Event, Misbehaviour, PeerExtensions, Stage, State,
    TlsPolicy,
};
use crate::smtp::reply::{EnhancedStatus, Reply};
use crate::smtp::reply_parse::ReplyParser;

/// Why a hop failed the TLS policy or the smart host authentication. The session has sent
/// QUIT (or closed); the job was not started: defer its recipients with `status()` and
/// this text (or, for `plaintext_retry_allowed`, retry the host once without TLS).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityFailure {
    /// The policy requires TLS and the server did not offer STARTTLS (4.7.4).
    TlsNotOffered {
        /// `Encrypt` or `Verify`.
        policy: TlsPolicy,
    },
    /// The policy requires TLS and the driver cannot do TLS on this connection
    /// (`ClientConfig::tls_capable` is false) (4.7.4).
    TlsUnavailable {
        /// `Encrypt` or `Verify`.
        policy: TlsPolicy,
    },
    /// The policy requires TLS and the server refused STARTTLS (4.7.4).
    TlsRefused {
        /// `Encrypt` or `Verify`.
        policy: TlsPolicy,
        /// Its reply.
        reply: Reply,
    },
    /// The driver reported a failed TLS handshake (`tls_failed`) (4.7.5).
    TlsHandshake {
        /// The policy in force (with `May`, the driver may retry the host in plaintext).
        policy: TlsPolicy,
        /// The driver's reason (e.g. the TLS library's error).
        reason: String,
    },
    /// The server offers AUTH on a connection without TLS: credentials are not sent
    /// (4.7.11).
    AuthWithoutTls,
    /// The server offers AUTH, but neither PLAIN nor LOGIN (4.7.4).
    AuthMechanismUnsupported,
    /// The server refused our credentials (4.7.8 for 535, else 4.7.0).
    AuthFailed {
        /// Its reply.
        reply: Reply,
    },
}

impl SecurityFailure {
    /// The RFC 3463 status the recipients are deferred with (always class 4).
    #[must_use]
    pub fn status(&self) -> EnhancedStatus {
        let detail = match self {
            SecurityFailure::TlsNotOffered { .. }
            | SecurityFailure::TlsUnavailable { .. }
            | SecurityFailure::TlsRefused { .. }
            | SecurityFailure::AuthMechanismUnsupported => 4,
            SecurityFailure::TlsHandshake { .. } => 5,
            SecurityFailure::AuthWithoutTls => 11,
            SecurityFailure::AuthFailed { reply } if reply.code == 535 => 8,
            SecurityFailure::AuthFailed { .. } => 0,
        };
        EnhancedStatus { class: 4, subject: 7, detail }
    }

    /// A failed opportunistic (`May`) handshake: the driver may try the same host once
    /// more with `TlsPolicy::None` (and say so in the log).
    #[must_use]
    pub fn plaintext_retry_allowed(&self) -> bool {
        matches!(self, SecurityFailure::TlsHandshake { policy: TlsPolicy::May, .. })
    }
}

/// A reply on one line (`454 4.7.0 text / more`).
fn one_line(r: &Reply) -> String {
    r.to_string().split("\r\n").collect::<Vec<_>>().join(" / ")
}

impl fmt::Display for SecurityFailure {
    /// Never contains a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecurityFailure::TlsNotOffered { policy } => write!(
                f,
                "TLS is required (tls = \"{policy}\") but the server did not offer STARTTLS"
            ),
            SecurityFailure::TlsUnavailable { policy } => write!(
                f,
                "TLS is required (tls = \"{policy}\") but outbound TLS is not available on \
                 this connection"
            ),
            SecurityFailure::TlsRefused { policy, reply } => write!(
                f,
                "TLS is required (tls = \"{policy}\") but the server refused STARTTLS: {}",
                one_line(reply)
            ),
            SecurityFailure::TlsHandshake { policy, reason } => {
                write!(f, "TLS handshake failed (tls = \"{policy}\"): {reason}")
            }
            SecurityFailure::AuthWithoutTls => f.write_str(
                "smart host authentication needs TLS: credentials are never sent in plaintext",
            ),
            SecurityFailure::AuthMechanismUnsupported => {
                f.write_str("the server offers AUTH, but neither PLAIN nor LOGIN")
            }
            SecurityFailure::AuthFailed { reply } => {
                write!(f, "smart host authentication failed: {}", one_line(reply))
            }
        }
    }
}

/// Where an AUTH exchange is (which reply is due).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AuthStep {
    /// `AUTH LOGIN` sent: a 334 asks for the user name.
    LoginUser,
    /// The user name sent: a 334 asks for the password.
    LoginPassword,
    /// Everything sent (`AUTH PLAIN <response>` or the LOGIN password): 235 is due.
    Done,
}

/// `AUTH PLAIN <base64(NUL user NUL password)>` (RFC 4616, initial response RFC 4954 §4).
fn write_auth_plain(out: &mut Vec<u8>, auth: &ClientAuth) {
    let mut msg = Vec::with_capacity(auth.user.len() + auth.password.len() + 2);
    msg.push(0);
    msg.extend_from_slice(auth.user.as_bytes());
    msg.push(0);
    msg.extend_from_slice(auth.password.as_bytes());
    out.extend_from_slice(b"AUTH PLAIN ");
    out.extend_from_slice(BASE64.encode(&msg).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One base64 line answering a LOGIN prompt.
fn write_auth_line(out: &mut Vec<u8>, secret: &str) {
    out.extend_from_slice(BASE64.encode(secret.as_bytes()).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// STARTTLS and AUTH in the session (the rest of `ClientSession` is in `client.rs`).
impl ClientSession {
    /// The driver finished the TLS handshake asked for by `Event::StartTls`: EHLO goes
    /// again (RFC 3207 §4.2: what the server said before TLS is forgotten), then AUTH if
    /// configured. Ignored unless the session is waiting for the handshake.
    pub fn tls_established(&mut self, now: Instant) {
        if !matches!(self.state, State::Handshake) {
            return;
        }
        self.tls_active = true;
        self.ext = PeerExtensions::default();
        self.parser = ReplyParser::new();
        self.send_hello(true, now);
    }

    /// The TLS handshake asked for by `Event::StartTls` failed (`reason`: the TLS layer's
    /// error, for the log and the deferral text): the session closes (nothing can be
    /// said in plaintext any more) with `Event::SecurityFailed` (`TlsHandshake`). With
    /// policy `May` the driver may retry the host without TLS. Ignored unless the session
    /// is waiting for the handshake.
    pub fn tls_failed(&mut self, reason: &str) {
        if !matches!(self.state, State::Handshake) {
            return;
        }
        self.close();
        let failure = SecurityFailure::TlsHandshake { policy: self.cfg.tls, reason: reason.into() };
        self.events.push_back(Event::SecurityFailed(failure));
    }

    // ---- after EHLO ------------------------------------------------------------------------

    /// EHLO/HELO succeeded: STARTTLS as the policy allows, then AUTH, then ready.
    pub(super) fn after_hello(&mut self, now: Instant) {
        let policy = self.cfg.tls;
        if !self.tls_active && policy != TlsPolicy::None {
            if self.ext.starttls && self.cfg.tls_capable {
                self.cmds.extend_from_slice(b"STARTTLS\r\n");
                self.state = State::StartTls;
                return self.arm(Stage::StartTls, now);
            }
            if policy.requires_tls() {
                let failure = if self.ext.starttls {
                    SecurityFailure::TlsUnavailable { policy }
                } else {
                    SecurityFailure::TlsNotOffered { policy }
                };
                return self.security_failed(failure, false, now);
            }
            // `May`: plaintext, exactly as without a policy.
        }
        self.start_auth(now);
    }

    /// The reply to STARTTLS.
    pub(super) fn on_starttls(&mut self, reply: Reply, now: Instant) -> Result<(), ClientError> {
        let code = reply.code;
        if code == 220 {
            self.state = State::Handshake;
            self.events.push_back(Event::StartTls);
            self.arm(Stage::TlsHandshake, now);
        } else if code / 100 == 2 {
            return Err(self.misbehaved(Stage::StartTls, Misbehaviour::UnexpectedCode(code)));
        } else if self.cfg.tls.requires_tls() {
            let failure = SecurityFailure::TlsRefused { policy: self.cfg.tls, reply };
            self.security_failed(failure, code == 421, now);
        } else if code == 421 {
            self.close_with_event();
        } else {
            // `May`: refused (e.g. 454), so the plaintext session goes on as it was
            // (RFC 3207 §4: the EHLO extensions stay valid).
            self.start_auth(now);
        }
        Ok(())
    }

    /// After the (last) EHLO: AUTH when configured and offered, else ready. The server
    /// not offering AUTH at all is not a failure (Postfix does the same): the mail goes
    /// unauthenticated and the server's replies decide.
    fn start_auth(&mut self, now: Instant) {
        let cfg = Arc::clone(&self.cfg);
        let Some(auth) = cfg.auth.as_ref().filter(|_| self.ext.auth) else {
            return self.become_ready();
        };
        if !self.tls_active {
            // SECURITY: credentials never cross a plaintext connection.
            return self.security_failed(SecurityFailure::AuthWithoutTls, false, now);
        }
        let step = if self.ext.auth_plain {
            write_auth_plain(&mut self.cmds, auth);
            AuthStep::Done
        } else if self.ext.auth_login {
            self.cmds.extend_from_slice(b"AUTH LOGIN\r\n");
            AuthStep::LoginUser
        } else {
            return self.security_failed(SecurityFailure::AuthMechanismUnsupported, false, now);
        };
        self.state = State::Auth(step);
        self.arm(Stage::Auth, now);
    }

    /// A reply in the AUTH exchange: 334 (LOGIN prompts), 235, or a refusal.
    pub(super) fn on_auth(
        &mut self,
        step: AuthStep,
        reply: Reply,
        now: Instant,
    ) -> Result<(), ClientError> {
        let code = reply.code;
        let next = match (step, code) {
            (AuthStep::Done, 235) => {
                self.become_ready();
                return Ok(());
            }
            (AuthStep::LoginUser, 334) => {
                let user = self.cfg.auth.as_ref().map_or("", |a| &a.user);
                write_auth_line(&mut self.cmds, user);
                AuthStep::LoginPassword
            }
            (AuthStep::LoginPassword, 334) => {
                let password = self.cfg.auth.as_ref().map_or("", |a| &a.password);
                write_auth_line(&mut self.cmds, password);
                AuthStep::Done
            }
            (_, 400..=599) => {
                let failure = SecurityFailure::AuthFailed { reply };
                self.security_failed(failure, code == 421, now);
                return Ok(());
            }
            _ => return Err(self.misbehaved(Stage::Auth, Misbehaviour::UnexpectedCode(code))),
        };
        self.state = State::Auth(next);
        self.arm(Stage::Auth, now);
        Ok(())
    }

    /// The hop failed the TLS policy or AUTH: report it, then QUIT (or close on 421).
    fn security_failed(&mut self, failure: SecurityFailure, closing: bool, now: Instant) {
        self.events.push_back(Event::SecurityFailed(failure));
        if closing { self.close_with_event() } else { self.send_quit(now) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> ClientAuth {
        ClientAuth { user: "relay".into(), password: "s3cret".into() }
    }

    #[test]
    fn auth_lines() {
        let mut v = Vec::new();
        write_auth_plain(&mut v, &auth());
        assert_eq!(v, b"AUTH PLAIN AHJlbGF5AHMzY3JldA==\r\n");
        v.clear();
        write_auth_line(&mut v, "relay");
        assert_eq!(v, b"cmVsYXk=\r\n");
    }

    #[test]
    fn statuses_and_texts_never_hold_the_password() {
        let r = |code, st| Reply::new(code, st, "no");
        let cases: &[(SecurityFailure, &str)] = &[
            (SecurityFailure::TlsNotOffered { policy: TlsPolicy::Encrypt }, "4.7.4"),
            (SecurityFailure::TlsUnavailable { policy: TlsPolicy::Verify }, "4.7.4"),
            (
                SecurityFailure::TlsRefused {
                    policy: TlsPolicy::Encrypt,
                    reply: r(454, (4, 7, 0)),
                },
                "4.7.4",
            ),
            (
                SecurityFailure::TlsHandshake { policy: TlsPolicy::May, reason: "bad".into() },
                "4.7.5",
            ),
            (SecurityFailure::AuthWithoutTls, "4.7.11"),
            (SecurityFailure::AuthMechanismUnsupported, "4.7.4"),
            (SecurityFailure::AuthFailed { reply: r(535, (5, 7, 8)) }, "4.7.8"),
            (SecurityFailure::AuthFailed { reply: r(454, (4, 7, 0)) }, "4.7.0"),
        ];
        for (f, want) in cases {
            let s = f.status();
            assert_eq!(format!("{}.{}.{}", s.class, s.subject, s.detail), *want, "{f:?}");
            let text = format!("{f} {f:?}");
            assert!(!text.contains("s3cret") && !text.contains("AHJlbGF5"), "{text}");
        }
        assert!(
            SecurityFailure::TlsHandshake { policy: TlsPolicy::May, reason: String::new() }
                .plaintext_retry_allowed()
        );
        assert!(
            !SecurityFailure::TlsHandshake { policy: TlsPolicy::Encrypt, reason: String::new() }
                .plaintext_retry_allowed()
        );
    }

    #[test]
    fn debug_redacts_the_password() {
        let cfg = super::super::ClientConfig { auth: Some(auth()), ..Default::default() };
        let text = format!("{cfg:?} {:?}", auth());
        assert!(text.contains("relay") && text.contains("<redacted>"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn policy_words() {
        for p in TlsPolicy::ALL {
            assert_eq!(TlsPolicy::from_word(p.as_str()), Some(p));
            assert_eq!(TlsPolicy::from_word(&p.as_str().to_uppercase()), Some(p));
        }
        assert_eq!(TlsPolicy::from_word("dane"), None);
        assert_eq!(TlsPolicy::default(), TlsPolicy::May);
        assert!(TlsPolicy::Verify.requires_tls() && !TlsPolicy::May.requires_tls());
    }
}
