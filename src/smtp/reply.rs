//! SMTP replies as data (RFC 5321 §4.2, enhanced status codes RFC 2034/3463).
//!
//! Every reply text mailroot sends lives in this file; handlers pick a constructor.
//!
//! TRUST: texts that embed peer data (none do today except queue ids and hostnames, which
//! we generate or configure) must never contain CR or LF; `write_to` splits on `'\n'` only.
//!
//! STANDARDS: RFC 5321 §4.2 (reply codes), RFC 2034 §3 (enhanced codes on every 2xx/4xx/5xx
//! reply except the greeting and the HELO/EHLO replies; 3xx has no enhanced class),
//! RFC 3463 (the codes), RFC 1870 (SIZE), RFC 3030 (BDAT), RFC 6531 (SMTPUTF8), RFC 4954
//! (AUTH: 235, 334, 501, 504, 535, 538).

use std::borrow::Cow;
use std::fmt;

/// An RFC 3463 enhanced status code `class.subject.detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// Subject sub-code (RFC 3463 §3).
    pub subject: u16,
    /// Detail sub-code.
    pub detail: u16,
}

/// One SMTP reply: basic code, optional enhanced status and human text.
///
/// Invariant: `code` is in 200..=599 and its first digit equals `status.class` when present.
/// Multi-line replies have `'\n'`-separated lines in `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code (sent on every reply once ENHANCEDSTATUSCODES applies).
    pub status: Option<EnhancedStatus>,
    /// Human readable text; lines separated by `'\n'`.
    pub text: Cow<'static, str>,
}

impl Reply {
    /// Build a reply from its parts. `text` lines are separated by `'\n'`.
    pub fn new(code: u16, status: (u8, u16, u16), text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            status: Some(EnhancedStatus { class: status.0, subject: status.1, detail: status.2 }),
            text: text.into(),
        }
    }

    /// Serialise as one or more `code[-| ]status text\r\n` lines.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut lines = self.text.split('\n').peekable();
        if lines.peek().is_none() {
            lines = "".split('\n').peekable();
        }
        while let Some(line) = lines.next() {
            let sep = if lines.peek().is_some() { '-' } else { ' ' };
            let _ = fmt::Write::write_fmt(&mut FmtVec(out), format_args!("{}{}", self.code, sep));
            if let Some(s) = self.status {
                let _ = fmt::Write::write_fmt(
                    &mut FmtVec(out),
                    format_args!("{}.{}.{} ", s.class, s.subject, s.detail),
                );
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

/// The ESMTP extensions advertised in the EHLO reply (RFC 5321 §4.1.1.1).
///
/// PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN and HELP are always advertised;
/// the others follow the configuration flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extensions {
    /// Value of `SIZE` (RFC 1870); 0 means "no fixed limit".
    pub max_message_size_bytes: u64,
    /// Advertise SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// Advertise CHUNKING (RFC 3030).
    pub chunking: bool,
    /// Advertise `AUTH PLAIN LOGIN` (RFC 4954; only when AUTH may be used now).
    pub auth: bool,
    /// Advertise STARTTLS (RFC 3207): a certificate is configured and TLS is not active.
    pub starttls: bool,
}

/// Shorthand for a reply with a static text.
const fn fixed(code: u16, class: u8, subject: u16, detail: u16, text: &'static str) -> Reply {
    Reply {
        code,
        status: Some(EnhancedStatus { class, subject, detail }),
        text: Cow::Borrowed(text),
    }
}

/// Canned replies. Grouped by code; each says when it is sent.
impl Reply {
    // ---- greeting, HELO/EHLO (no enhanced status: RFC 2034 §3) -------------------------

    /// `220 <hostname> ESMTP mailroot`: the connection greeting.
    pub fn greeting(hostname: &str) -> Reply {
        Reply { code: 220, status: None, text: format!("{hostname} ESMTP mailroot").into() }
    }

    /// `250 <hostname>`: reply to HELO.
    pub fn helo(hostname: &str) -> Reply {
        Reply { code: 250, status: None, text: hostname.to_owned().into() }
    }

    /// Multi-line `250` reply to EHLO listing the extensions (no enhanced status).
    pub fn ehlo(hostname: &str, ext: &Extensions) -> Reply {
        use fmt::Write as _;
        let mut text = String::with_capacity(128);
        let _ =
            write!(text, "{hostname}\nPIPELINING\nSIZE {}\n8BITMIME", ext.max_message_size_bytes);
        if ext.starttls {
            text.push_str("\nSTARTTLS");
        }
        text.push_str("\nENHANCEDSTATUSCODES");
        if ext.smtputf8 {
            text.push_str("\nSMTPUTF8");
        }
        if ext.chunking {
            text.push_str("\nCHUNKING");
        }
        if ext.auth {
            text.push_str("\nAUTH ");
            text.push_str(super::sasl::OFFERED_MECHANISMS);
        }
        text.push_str("\nDSN\nHELP");
        Reply { code: 250, status: None, text: text.into() }
    }

    // ---- 2xx / 3xx ---------------------------------------------------------------------

    /// `250 2.0.0 Ok`: NOOP, RSET and other plain successes.
    pub fn ok() -> Reply {
        fixed(250, 2, 0, 0, "Ok")
    }

    /// `250 2.1.0 Ok`: MAIL accepted.
    pub fn sender_ok() -> Reply {
        fixed(250, 2, 1, 0, "Ok")
    }

    /// `250 2.1.5 Ok`: RCPT accepted.
    pub fn recipient_ok() -> Reply {
        fixed(250, 2, 1, 5, "Ok")
    }

    /// `250 2.0.0 Ok: queued as <id>`: the message is on stable storage.
    pub fn queued(id: &str) -> Reply {
        Reply::new(250, (2, 0, 0), format!("Ok: queued as {id}"))
    }

    /// `250 2.0.0 <n> octets received`: a non-LAST BDAT chunk was accepted (RFC 3030 §2).
    pub fn chunk_received(octets: u64) -> Reply {
        Reply::new(250, (2, 0, 0), format!("{octets} octets received"))
    }

    /// `252 2.5.0`: VRFY is not answered truthfully (RFC 5321 §3.5.3, §7.3).
    pub fn cannot_verify() -> Reply {
        fixed(252, 2, 5, 0, "Cannot VRFY user, but will accept message and attempt delivery")
    }

    /// `214 2.0.0`: HELP; lists the commands we implement.
    pub fn help(chunking: bool) -> Reply {
        if chunking {
            fixed(214, 2, 0, 0, "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP")
        } else {
            fixed(214, 2, 0, 0, "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")
        }
    }

    /// `221 2.0.0 Bye`: reply to QUIT; the connection closes after it.
    pub fn closing() -> Reply {
        fixed(221, 2, 0, 0, "Bye")
    }

    /// `235 2.7.0`: AUTH succeeded (RFC 4954 §6).
    pub fn auth_succeeded() -> Reply {
        fixed(235, 2, 7, 0, "Authentication successful")
    }

    /// `334 <base64>`: a SASL challenge (RFC 4954 §4; 3xx has no enhanced status class).
    /// `text` is base64 (or empty), never peer data.
    pub fn challenge(text: &'static str) -> Reply {
        Reply { code: 334, status: None, text: Cow::Borrowed(text) }
    }

    /// `220 2.0.0 Ready to start TLS`: reply to STARTTLS (RFC 3207 §4); the TLS handshake
    /// follows and nothing after the command line is read in plaintext.
    pub fn ready_to_start_tls() -> Reply {
        fixed(220, 2, 0, 0, "Ready to start TLS")
    }

    /// `354`: go ahead with the message content (3xx has no enhanced status class).
    pub fn start_data() -> Reply {
        Reply { code: 354, status: None, text: Cow::Borrowed("End data with <CR><LF>.<CR><LF>") }
    }

    // ---- 421 (the connection closes after these) ---------------------------------------

    /// `421 4.7.0`: the client made too many errors.
    pub fn too_many_errors() -> Reply {
        fixed(421, 4, 7, 0, "Too many errors, closing connection")
    }

    /// `421 4.7.0`: `max_messages_per_connection` reached; sent in answer to MAIL.
    pub fn too_many_messages() -> Reply {
        fixed(421, 4, 7, 0, "Too many messages for this connection")
    }

    /// `421 4.7.0`: connection limit (total or per client address) reached.
    pub fn too_many_connections() -> Reply {
        fixed(421, 4, 7, 0, "Too many connections, try again later")
    }

    /// `421 4.7.0`: `max_auth_failures` wrong credentials on this connection.
    pub fn too_many_auth_failures() -> Reply {
        fixed(421, 4, 7, 0, "Too many authentication failures, closing connection")
    }

    /// `421 4.4.2`: idle timeout.
    pub fn timeout() -> Reply {
        fixed(421, 4, 4, 2, "Timeout, closing connection")
    }

    /// `421 4.3.2`: the server is shutting down.
    pub fn shutting_down() -> Reply {
        fixed(421, 4, 3, 2, "Service shutting down, try again later")
    }

    /// `421 4.3.2`: the site is paused by its operator (new connections only).
    pub fn service_paused() -> Reply {
        fixed(421, 4, 3, 2, "Service paused, try again later")
    }

    // ---- other 4xx -----------------------------------------------------------------------

    /// `451 4.3.0`: local error (e.g. the spool commit failed).
    pub fn local_error() -> Reply {
        fixed(451, 4, 3, 0, "Local error in processing, try again later")
    }

    /// `452 4.3.1`: insufficient system storage (low disk).
    pub fn insufficient_storage() -> Reply {
        fixed(452, 4, 3, 1, "Insufficient system storage")
    }

    /// `452 4.5.3`: more recipients than `max_recipients` (RFC 5321 §4.5.3.1.10).
    pub fn too_many_recipients() -> Reply {
        fixed(452, 4, 5, 3, "Too many recipients")
    }

    // ---- 5xx found by the session (parse errors: `command.rs` `From<&SyntaxError>`) --

    /// `500 5.5.2`: command line longer than `MAX_COMMAND_LINE_BYTES`.
    pub fn line_too_long() -> Reply {
        fixed(500, 5, 5, 2, "Line too long")
    }

    /// `500 5.5.2`: a command line ended with a bare LF and the policy is `Reject`.
    pub fn bare_lf_in_command() -> Reply {
        fixed(500, 5, 5, 2, "Command line must end with <CR><LF>")
    }

    /// `555 5.5.4`: unknown or malformed MAIL/RCPT parameter (RFC 5321 §4.1.1.11).
    pub fn bad_parameter(why: impl Into<Cow<'static, str>>) -> Reply {
        let why = why.into();
        Reply::new(555, (5, 5, 4), format!("Unsupported parameter: {why}"))
    }

    /// `504 5.5.4`: unknown AUTH mechanism or other unimplemented command parameter.
    pub fn parameter_not_implemented(why: impl Into<Cow<'static, str>>) -> Reply {
        let why = why.into();
        Reply::new(504, (5, 5, 4), format!("Command parameter not implemented: {why}"))
    }

    // ---- 5xx sequence / not implemented --------------------------------------------------

    /// `502 5.5.1`: command recognised but not implemented (e.g. BDAT without CHUNKING).
    pub fn not_implemented() -> Reply {
        fixed(502, 5, 5, 1, "Command not implemented")
    }

    /// `502 5.5.1`: EXPN is not offered (RFC 5321 §3.5.3, §7.3).
    pub fn expn_not_available() -> Reply {
        fixed(502, 5, 5, 1, "EXPN not available")
    }

    /// `454 4.7.0`: STARTTLS when it is not offered (no certificate for this site; RFC
    /// 3207 §4: "TLS not available due to temporary reason").
    pub fn tls_not_available() -> Reply {
        fixed(454, 4, 7, 0, "TLS not available")
    }

    /// `502 5.5.1`: AUTH is not offered (yet).
    pub fn auth_not_available() -> Reply {
        fixed(502, 5, 5, 1, "AUTH not available")
    }

    /// `503 5.5.1`: a second AUTH after a successful one (RFC 4954 §4).
    pub fn already_authenticated() -> Reply {
        fixed(503, 5, 5, 1, "Already authenticated")
    }

    /// `503 5.5.1`: AUTH inside a mail transaction (RFC 4954 §4).
    pub fn auth_in_transaction() -> Reply {
        fixed(503, 5, 5, 1, "AUTH not permitted during a mail transaction")
    }

    /// `504 5.5.4`: an AUTH mechanism we do not implement (RFC 4954 §4).
    pub fn auth_mechanism_unknown() -> Reply {
        fixed(504, 5, 5, 4, "Unrecognized authentication type")
    }

    /// `501 5.0.0`: the client cancelled the AUTH exchange with `*` (RFC 4954 §4).
    pub fn auth_aborted() -> Reply {
        fixed(501, 5, 0, 0, "Authentication aborted")
    }

    /// `501 5.5.2`: an AUTH response that is not base64 or breaks the mechanism's syntax.
    pub fn auth_bad_response() -> Reply {
        fixed(501, 5, 5, 2, "Invalid authentication response")
    }

    /// `503 5.5.1`: a command out of sequence, generic.
    pub fn bad_sequence() -> Reply {
        fixed(503, 5, 5, 1, "Bad sequence of commands")
    }

    /// `503 5.5.1`: STARTTLS while TLS is already active (RFC 3207 §4.2).
    pub fn tls_already_active() -> Reply {
        fixed(503, 5, 5, 1, "TLS already active")
    }

    /// `503 5.5.1`: STARTTLS inside a mail transaction (after MAIL, before its end).
    pub fn starttls_in_transaction() -> Reply {
        fixed(503, 5, 5, 1, "STARTTLS not allowed inside a mail transaction")
    }

    /// `503 5.5.1`: MAIL before HELO/EHLO.
    pub fn need_helo() -> Reply {
        fixed(503, 5, 5, 1, "Send HELO/EHLO first")
    }

    /// `503 5.5.1`: RCPT/DATA/BDAT without a MAIL transaction.
    pub fn need_mail() -> Reply {
        fixed(503, 5, 5, 1, "Need MAIL command")
    }

    /// `503 5.5.1`: MAIL inside a transaction.
    pub fn nested_mail() -> Reply {
        fixed(503, 5, 5, 1, "Sender already specified")
    }

    /// `503 5.5.1`: DATA after BDAT, RCPT after BDAT, or DATA with BODY=BINARYMIME.
    pub fn data_bdat_mixed() -> Reply {
        fixed(503, 5, 5, 1, "DATA and BDAT cannot be mixed; RCPT not allowed after BDAT")
    }

    // ---- 5xx policy / content -------------------------------------------------------------

    /// `530 5.7.0`: MAIL before STARTTLS on a site with `require_tls` (RFC 3207 §4).
    pub fn tls_required() -> Reply {
        fixed(530, 5, 7, 0, "Must issue a STARTTLS command first")
    }

    /// `550 5.1.1`: no such local mailbox.
    pub fn mailbox_unavailable() -> Reply {
        fixed(550, 5, 1, 1, "Mailbox unavailable")
    }

    /// `552 5.3.4`: message larger than `max_message_size_bytes` (declared or actual).
    pub fn message_too_big() -> Reply {
        fixed(552, 5, 3, 4, "Message size exceeds fixed maximum message size")
    }

    /// `553 5.6.7`: non-ASCII address in a transaction without SMTPUTF8 (RFC 6531 §3.2).
    pub fn smtputf8_required() -> Reply {
        fixed(553, 5, 6, 7, "Non-ASCII address requires SMTPUTF8")
    }

    /// `554 5.5.1`: DATA/BDAT with no accepted recipient.
    pub fn no_valid_recipients() -> Reply {
        fixed(554, 5, 5, 1, "No valid recipients")
    }

    /// `554 5.6.0`: the content had a bare CR or LF and the policy is `Reject`.
    pub fn bare_lf_rejected() -> Reply {
        fixed(554, 5, 6, 0, "Message contains bare CR or LF; lines must end with <CR><LF>")
    }

    /// `554 5.6.0`: the content held an end-of-data look-alike (a line that is a single dot
    /// with a bare CR or bare LF next to it): SMTP smuggling, refused under every policy.
    pub fn smuggling_refused() -> Reply {
        fixed(554, 5, 6, 0, "Bare CR or LF next to a lone dot looks like end of data; refused")
    }

    /// `535 5.7.8`: wrong user name or password (RFC 4954 §6).
    pub fn auth_failed() -> Reply {
        fixed(535, 5, 7, 8, "Authentication credentials invalid")
    }

    /// `538 5.7.11`: AUTH PLAIN/LOGIN without TLS while plaintext AUTH is not allowed
    /// (RFC 4954 §6).
    pub fn auth_encryption_required() -> Reply {
        fixed(538, 5, 7, 11, "Encryption required for requested authentication mechanism")
    }

    /// `554 5.7.1`: relaying refused.
    pub fn relay_denied() -> Reply {
        fixed(554, 5, 7, 1, "Relay access denied")
    }

    /// `554 5.7.1`: the client address is not allowed to connect.
    pub fn connection_refused() -> Reply {
        fixed(554, 5, 7, 1, "Connection refused")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write_to(&mut v);
        f.write_str(String::from_utf8_lossy(&v).trim_end())
    }
}

/// Adapter so `write!` can append to a `Vec<u8>` without allocating a `String`.
struct FmtVec<'a>(&'a mut Vec<u8>);

impl fmt::Write for FmtVec<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises() {
        let cases: &[(Reply, &str)] = &[
            (Reply::new(250, (2, 0, 0), "Ok"), "250 2.0.0 Ok\r\n"),
            (Reply::new(250, (2, 0, 0), "a\nb"), "250-2.0.0 a\r\n250 2.0.0 b\r\n"),
            (Reply { code: 220, status: None, text: "host ESMTP".into() }, "220 host ESMTP\r\n"),
        ];
        for (r, want) in cases {
            let mut v = Vec::new();
            r.write_to(&mut v);
            assert_eq!(String::from_utf8(v).unwrap(), *want);
        }
    }
    #[test]
    fn canned_replies_keep_the_invariant() {
        let ext = Extensions {
            max_message_size_bytes: 10,
            smtputf8: true,
            chunking: true,
            auth: true,
            starttls: true,
        };
        let all = [
            Reply::greeting("h"),
            Reply::helo("h"),
            Reply::ehlo("h", &ext),
            Reply::ok(),
            Reply::sender_ok(),
            Reply::recipient_ok(),
            Reply::queued("0000000000000001"),
            Reply::chunk_received(3),
            Reply::cannot_verify(),
            Reply::help(true),
            Reply::help(false),
            Reply::closing(),
            Reply::start_data(),
            Reply::too_many_errors(),
            Reply::too_many_messages(),
            Reply::too_many_connections(),
            Reply::timeout(),
            Reply::shutting_down(),
            Reply::local_error(),
            Reply::insufficient_storage(),
            Reply::too_many_recipients(),
            Reply::line_too_long(),
            Reply::bare_lf_in_command(),
            Reply::bad_parameter("x"),
            Reply::parameter_not_implemented("x"),
            Reply::not_implemented(),
            Reply::expn_not_available(),
            Reply::ready_to_start_tls(),
            Reply::tls_not_available(),
            Reply::tls_already_active(),
            Reply::starttls_in_transaction(),
            Reply::tls_required(),
            Reply::auth_not_available(),
            Reply::bad_sequence(),
            Reply::need_helo(),
            Reply::need_mail(),
            Reply::nested_mail(),
            Reply::data_bdat_mixed(),
            Reply::mailbox_unavailable(),
            Reply::message_too_big(),
            Reply::smtputf8_required(),
            Reply::no_valid_recipients(),
            Reply::bare_lf_rejected(),
            Reply::smuggling_refused(),
            Reply::relay_denied(),
            Reply::connection_refused(),
            Reply::auth_succeeded(),
            Reply::challenge("VXNlcm5hbWU6"),
            Reply::too_many_auth_failures(),
            Reply::already_authenticated(),
            Reply::auth_in_transaction(),
            Reply::auth_mechanism_unknown(),
            Reply::auth_aborted(),
            Reply::auth_bad_response(),
            Reply::auth_failed(),
            Reply::auth_encryption_required(),
        ];
        for r in &all {
            assert!((200..600).contains(&r.code), "{r}");
            assert!(!r.text.contains('\r'), "{r}");
            if let Some(s) = r.status {
                assert_eq!(u16::from(s.class), r.code / 100, "{r}");
            }
        }
    }

    #[test]
    fn ehlo_lists_extensions_without_status() {
        let mut v = Vec::new();
        let ext = Extensions {
            max_message_size_bytes: 100,
            smtputf8: false,
            chunking: true,
            auth: false,
            starttls: true,
        };
        Reply::ehlo("mx.example", &ext).write_to(&mut v);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100\r\n250-8BITMIME\r\n\
             250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n\
             250 HELP\r\n"
        );
    }
}
