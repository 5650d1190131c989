//! The AUTH command inside a `ServerSession` (RFC 4954): when it is allowed, the SASL
//! exchange (`smtp::sasl`), and the verdict that `Handler::auth_check` or `auth_done`
//! brings back.
//!
//! WHAT: `AUTH mechanism [initial]` is accepted only after HELO/EHLO, outside a mail
//! transaction, once per session, when AUTH is configured (`enable_auth`; otherwise
//! `502`), for PLAIN and LOGIN (`504` otherwise), and only over TLS unless
//! `allow_plaintext_auth` (`538 5.7.11`). While the exchange runs, each line is a SASL
//! response (`State::Auth`); the decoded credentials go to `Handler::auth_check`, and while
//! it is pending the session consumes nothing (`State::AuthChecking`). Success: `235 2.7.0`
//! and the identity is kept (`authenticated()`, and in every later `Transaction`). Wrong
//! credentials: `535 5.7.8`, counted as an error, and after `max_auth_failures` of them
//! `421 4.7.0` and close. `*` gets `501 5.0.0`, bad base64 `501 5.5.2`.
//!
//! SECURITY: the password is passed to the handler as a borrowed slice and wiped when the
//! credentials drop (`zeroize`); this module never stores or prints it. A PLAIN authzid
//! other than the authcid (proxy authorization) is refused `535` without asking the
//! handler: we have no authorization rules to allow it.
//!
//! STANDARDS: RFC 4954 §4 (AUTH command, one successful AUTH per session, not during a
//! transaction), §6 (status codes 235, 535 5.7.8, 538 5.7.11), RFC 3207 §4.1 (AUTH only
//! over TLS by default), RFC 4616 (PLAIN).

use std::mem;

use super::{Handler, ServerSession, State};
use crate::smtp::reply::Reply;
use crate::smtp::sasl::{self, Credentials, Mechanism, Step};

use super::handler::AuthOutcome;

impl ServerSession {
    /// The identity a successful AUTH proved on this connection, if any.
    #[must_use]
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// Waiting for `auth_done` (the credentials are being verified).
    #[must_use]
    pub fn awaiting_auth(&self) -> bool {
        matches!(self.state, State::AuthChecking { .. })
    }

    /// The verification asked for by `Handler::auth_check` (`AuthOutcome::Pending`)
    /// finished: `235 2.7.0` when `ok`, else `535 5.7.8` (or `421 4.7.0` and close at
    /// `max_auth_failures`). Ignored unless a verification is pending.
    pub fn auth_done(&mut self, ok: bool, out: &mut Vec<u8>) {
        let before = out.len();
        self.auth_verdict(ok, out);
        self.transcribe(None, 0, &out[before..]);
    }

    /// `auth_done` without the transcript (also called while a step is transcribed).
    fn auth_verdict(&mut self, ok: bool, out: &mut Vec<u8>) {
        match mem::replace(&mut self.state, State::Closed { content_open: false }) {
            State::AuthChecking { hello, authcid } => {
                self.state = State::Ready { hello };
                if ok {
                    self.authenticated = Some(authcid);
                    Reply::auth_succeeded().write_to(out);
                } else {
                    self.auth_failed(out);
                }
            }
            other => self.state = other,
        }
    }

    /// AUTH is advertised in EHLO and may be used now.
    pub(super) fn auth_offered(&self) -> bool {
        self.cfg.enable_auth && (self.tls_active() || self.cfg.allow_plaintext_auth)
    }

    /// `AUTH mechanism [initial-response]`.
    pub(super) fn auth<H: Handler>(
        &mut self,
        mechanism: &str,
        initial: Option<&str>,
        h: &mut H,
        out: &mut Vec<u8>,
    ) {
        let refusal = if !self.cfg.enable_auth {
            Some(Reply::auth_not_available())
        } else {
            match &self.state {
                State::Greeted => Some(Reply::need_helo()),
                State::Ready { .. } if self.authenticated.is_some() => {
                    Some(Reply::already_authenticated())
                }
                State::Ready { .. } => None,
                _ => Some(Reply::auth_in_transaction()),
            }
        };
        if let Some(r) = refusal {
            return self.error(r, h, out);
        }
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return self.error(Reply::auth_mechanism_unknown(), h, out);
        };
        if !self.auth_offered() {
            return self.error(Reply::auth_encryption_required(), h, out);
        }
        // The state is Ready: every other state was refused above.
        self.auth_step(sasl::start(mechanism, initial), h, out);
    }

    /// One line of an AUTH exchange (`State::Auth`).
    pub(super) fn auth_response<H: Handler>(&mut self, line: &[u8], h: &mut H, out: &mut Vec<u8>) {
        let State::Auth { hello, exchange } = mem::replace(&mut self.state, State::Greeted) else {
            unreachable!("auth_response is only called in State::Auth")
        };
        self.state = State::Ready { hello };
        self.auth_step(exchange.respond(line), h, out);
    }

    /// Act on a SASL step; the state is `Ready` on entry.
    fn auth_step<H: Handler>(&mut self, step: Step, h: &mut H, out: &mut Vec<u8>) {
        match step {
            Step::Challenge(exchange, reply) => {
                let State::Ready { hello } = mem::replace(&mut self.state, State::Greeted) else {
                    unreachable!("auth_step is entered in State::Ready")
                };
                self.state = State::Auth { hello, exchange };
                reply.write_to(out);
            }
            Step::Failed(e) => self.error(Reply::from(&e), h, out),
            Step::Done(creds) => self.auth_verify(&creds, h, out),
        }
    }

    /// Ask the handler about complete credentials.
    fn auth_verify<H: Handler>(&mut self, creds: &Credentials, h: &mut H, out: &mut Vec<u8>) {
        if !creds.authzid.is_empty() && creds.authzid != creds.authcid {
            return self.auth_failed(out);
        }
        match h.auth_check(&creds.authcid, &creds.password) {
            AuthOutcome::Done(ok) => {
                self.state = self.checking(creds);
                self.auth_verdict(ok, out);
            }
            AuthOutcome::Pending => self.state = self.checking(creds),
        }
    }

    /// `State::AuthChecking` from `State::Ready`, for `creds`.
    fn checking(&mut self, creds: &Credentials) -> State {
        let State::Ready { hello } = mem::replace(&mut self.state, State::Greeted) else {
            unreachable!("credentials are checked from State::Ready")
        };
        State::AuthChecking { hello, authcid: creds.authcid.clone() }
    }

    /// Wrong credentials: `535`, counted as an error and as an AUTH failure; close with
    /// `421 4.7.0` at `max_auth_failures` (or `max_errors`). No content is open here.
    fn auth_failed(&mut self, out: &mut Vec<u8>) {
        self.auth_failures = self.auth_failures.saturating_add(1);
        let max = self.cfg.max_auth_failures;
        if max != 0 && self.auth_failures >= max {
            Reply::too_many_auth_failures().write_to(out);
            self.state = State::Closed { content_open: false };
            return;
        }
        Reply::auth_failed().write_to(out);
        if self.count_error() {
            Reply::too_many_errors().write_to(out);
            self.state = State::Closed { content_open: false };
        }
    }

    /// Leave an AUTH exchange interrupted by a framing error (over-long or bare-LF line):
    /// back to `Ready`, the exchange forgotten.
    pub(super) fn leave_auth(&mut self) {
        if let State::Auth { .. } = self.state {
            let State::Auth { hello, .. } = mem::replace(&mut self.state, State::Greeted) else {
                unreachable!("matched State::Auth above")
            };
            self.state = State::Ready { hello };
        }
    }
}
