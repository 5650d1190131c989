//! smtp::command: one SMTP command line -> [`Command`] (RFC 5321 §4.1.1 and extensions).
//!
//! WHAT: [`parse`] turns one command line (without its CRLF) into a [`Command`] that
//! borrows from the line. Ordinary ASCII commands allocate nothing; only xtext values
//! with `+HH` escapes and quoted local parts with `\` escapes are copied (`Cow::Owned`).
//! Errors are [`SyntaxError`]s that carry the grammar hint shown to the client; the one
//! mapping to replies is `impl From<&SyntaxError> for Reply` in this file. The parameter
//! types and their value codecs (xtext, NOTIFY, ORCPT, SIZE) live in [`super::params`].
//!
//! TRUST: the line comes from the network and is untrusted. No input can make this
//! module panic: slicing goes through `get`, numbers use checked arithmetic, and nothing
//! unwraps peer data. Control bytes (NUL, all other C0 including TAB, and DEL) anywhere in
//! the line are refused before anything else looks at it; the arguments must be UTF-8.
//!
//! STANDARDS:
//! - RFC 5321 §4.1.1 verbs (HELO EHLO MAIL RCPT DATA RSET VRFY EXPN HELP NOOP QUIT),
//!   §4.1.2 paths (see [`super::path`]), §4.1.4 (verbs case-insensitive), §4.5.3.1.4
//!   command line length.
//! - RFC 1870 SIZE, RFC 6152 BODY=8BITMIME, RFC 3030 BDAT and BODY=BINARYMIME, RFC 6531
//!   SMTPUTF8, RFC 3461 DSN (RET, ENVID, NOTIFY, ORCPT with xtext §4), RFC 4954 AUTH verb
//!   and the MAIL `AUTH=` parameter (§5: accepted and ignored), RFC 3207 STARTTLS.
//!
//! LENIENCY (what real clients send, accepted on purpose): verbs in any case, more than
//! one space between tokens, a space after `FROM:`/`TO:` (`MAIL FROM: <a@b>`), trailing
//! spaces, `_` and one trailing dot in HELO/EHLO names, lower-case hex in xtext.
//! Not accepted: a path without angle brackets (`MAIL FROM:a@b`), TAB or other control
//! characters, a space before the colon (`MAIL FROM :<a@b>`).
//!
//! ERRORS: non-UTF-8 arguments get 501 5.6.7 (see the mapping table on
//! `impl From<&SyntaxError> for Reply`); well-formed UTF-8 paths without SMTPUTF8 are the
//! session's to refuse (553 5.6.7).

use std::fmt;

use super::path::{self, ForwardPath, PathError, ReversePath};
use super::reply::Reply;

pub use super::params::{Body, MailParams, Notify, Orcpt, RcptParams, Ret};
use super::params::{
    parse_decimal, parse_notify, parse_orcpt, parse_size_saturating, xtext_decode,
};

/// Longest command line we accept, in bytes including the CRLF.
///
/// RFC 5321 §4.5.3.1.4 sets 512 octets for the base protocol, and §4.5.3.1 lets each
/// extension add to it: RFC 1870 SIZE (+26), RFC 3461 DSN (RET/ENVID on MAIL up to 100
/// xtext chars, NOTIFY/ORCPT on RCPT with a 500-char ORCPT), RFC 6531 UTF-8 paths, RFC 4954
/// AUTH= and AUTH initial responses. 2048 covers every combination with room to spare
/// while still bounding the session's line buffer.
pub const MAX_COMMAND_LINE_BYTES: usize = 2048;

/// Longest ENVID value in xtext characters (RFC 3461 §4.4).
pub const MAX_ENVID_CHARS: usize = 100;
/// Longest ORCPT value after the `;`, in xtext characters (RFC 3461 §4.2: 500).
pub const MAX_ORCPT_CHARS: usize = 500;
/// Most digits accepted in SIZE= or a BDAT chunk size (u64 has 20 decimal digits).
pub const MAX_SIZE_DIGITS: usize = 20;
/// Longest SASL mechanism name (RFC 4422 §3.1: 1 to 20 characters).
pub const MAX_SASL_MECH_CHARS: usize = 20;
/// Longest unknown parameter keyword echoed back in a reply.
const MAX_ECHOED_KEYWORD_CHARS: usize = 32;

/// Grammar hints sent to the client with a 5xx reply.
pub mod syntax {
    /// HELO.
    pub const HELO: &str = "HELO hostname";
    /// EHLO.
    pub const EHLO: &str = "EHLO hostname";
    /// MAIL.
    pub const MAIL: &str = "MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME|BINARYMIME] \
                            [SMTPUTF8] [RET=FULL|HDRS] [ENVID=xtext] [AUTH=xtext]";
    /// RCPT.
    pub const RCPT: &str =
        "RCPT TO:<address> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=type;xtext]";
    /// DATA.
    pub const DATA: &str = "DATA";
    /// BDAT.
    pub const BDAT: &str = "BDAT size [LAST]";
    /// RSET.
    pub const RSET: &str = "RSET";
    /// NOOP.
    pub const NOOP: &str = "NOOP [string]";
    /// QUIT.
    pub const QUIT: &str = "QUIT";
    /// VRFY.
    pub const VRFY: &str = "VRFY address";
    /// EXPN.
    pub const EXPN: &str = "EXPN list";
    /// HELP.
    pub const HELP: &str = "HELP [topic]";
    /// STARTTLS.
    pub const STARTTLS: &str = "STARTTLS";
    /// AUTH.
    pub const AUTH: &str = "AUTH mechanism [initial-response]";
}

/// One parsed command, borrowing from the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO domain` (RFC 5321 §4.1.1.1).
    Helo {
        /// Client's claimed name or address literal, as written.
        domain: &'a str,
    },
    /// `EHLO domain` (RFC 5321 §4.1.1.1).
    Ehlo {
        /// Client's claimed name or address literal, as written.
        domain: &'a str,
    },
    /// `MAIL FROM:<reverse-path> [params]` (RFC 5321 §4.1.1.2).
    Mail {
        /// The sender, or `<>`.
        from: ReversePath<'a>,
        /// ESMTP parameters.
        params: MailParams<'a>,
    },
    /// `RCPT TO:<forward-path> [params]` (RFC 5321 §4.1.1.3).
    Rcpt {
        /// The recipient, or bare `<Postmaster>`.
        to: ForwardPath<'a>,
        /// ESMTP parameters.
        params: RcptParams<'a>,
    },
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `BDAT size [LAST]` (RFC 3030 §2).
    Bdat {
        /// Octets of message content that follow this line.
        chunk_bytes: u64,
        /// `LAST` was given: this is the final chunk.
        last: bool,
    },
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `NOOP [string]` (RFC 5321 §4.1.1.9); the argument is ignored.
    Noop,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `VRFY string` (RFC 5321 §4.1.1.6).
    Vrfy {
        /// The argument, trimmed, non-empty.
        arg: &'a str,
    },
    /// `EXPN string` (RFC 5321 §4.1.1.7).
    Expn {
        /// The argument, trimmed, non-empty.
        arg: &'a str,
    },
    /// `HELP [topic]` (RFC 5321 §4.1.1.8).
    Help {
        /// The topic, trimmed, if any.
        topic: Option<&'a str>,
    },
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4). Only syntax is checked here.
    Auth {
        /// SASL mechanism name as written (1-20 of `A-Z a-z 0-9 - _`).
        mechanism: &'a str,
        /// Base64 initial response, or `=` for an empty one.
        initial: Option<&'a str>,
    },
}

/// Why a command line was refused. The peer is at fault in every case. `syntax` fields
/// hold the grammar hint shown to the client (a constant from [`syntax`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyntaxError {
    /// The line is empty or only spaces.
    EmptyLine,
    /// The line (plus CRLF) is longer than [`MAX_COMMAND_LINE_BYTES`].
    LineTooLong,
    /// The line contains NUL, another C0 control character (TAB included) or DEL.
    InvalidCharacter,
    /// The verb is not one we know.
    UnknownCommand,
    /// A known verb with missing, extra or malformed arguments (e.g. `EHLO` alone,
    /// `DATA x`, `MAIL TO:`, `BDAT abc`).
    InvalidArguments {
        /// Grammar hint.
        syntax: &'static str,
    },
    /// The arguments are not valid UTF-8 (8-bit junk in a path or parameter).
    InvalidUtf8 {
        /// Grammar hint.
        syntax: &'static str,
    },
    /// The MAIL FROM reverse path is malformed (including a missing `<>`).
    BadReversePath {
        /// What is wrong with it.
        reason: PathError,
    },
    /// The RCPT TO forward path is malformed (including a missing `<>` and `<>` itself).
    BadForwardPath {
        /// What is wrong with it.
        reason: PathError,
    },
    /// A MAIL/RCPT parameter keyword we do not support.
    UnknownParameter {
        /// The keyword as sent (validated esmtp-keyword, at most 32 characters).
        keyword: String,
        /// Grammar hint.
        syntax: &'static str,
    },
    /// A supported parameter with a malformed or missing value (`SIZE=abc`, `BODY=9BIT`,
    /// `NOTIFY=NEVER,DELAY`, `SMTPUTF8=yes`), or a malformed parameter keyword.
    InvalidParameterValue {
        /// Canonical parameter name.
        param: &'static str,
        /// Grammar hint.
        syntax: &'static str,
    },
    /// A parameter given twice.
    DuplicateParameter {
        /// Canonical parameter name.
        param: &'static str,
        /// Grammar hint.
        syntax: &'static str,
    },
}

impl SyntaxError {
    /// The grammar hint for this error, if it concerns a known verb.
    #[must_use]
    pub fn syntax(&self) -> Option<&'static str> {
        match self {
            SyntaxError::EmptyLine
            | SyntaxError::LineTooLong
            | SyntaxError::InvalidCharacter
            | SyntaxError::UnknownCommand => None,
            SyntaxError::BadReversePath { .. } => Some(syntax::MAIL),
            SyntaxError::BadForwardPath { .. } => Some(syntax::RCPT),
            SyntaxError::InvalidArguments { syntax }
            | SyntaxError::InvalidUtf8 { syntax }
            | SyntaxError::UnknownParameter { syntax, .. }
            | SyntaxError::InvalidParameterValue { syntax, .. }
            | SyntaxError::DuplicateParameter { syntax, .. } => Some(syntax),
        }
    }
}

impl fmt::Display for SyntaxError {
    /// The human text of the reply (without code), ending in the grammar hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxError::EmptyLine => f.write_str("Syntax error, empty command")?,
            SyntaxError::LineTooLong => f.write_str("Line too long")?,
            SyntaxError::InvalidCharacter => f.write_str("Syntax error, invalid character")?,
            SyntaxError::UnknownCommand => f.write_str("Command unrecognized")?,
            SyntaxError::InvalidArguments { .. } => f.write_str("Syntax error in arguments")?,
            SyntaxError::InvalidUtf8 { .. } => f.write_str("Invalid UTF-8 in arguments")?,
            SyntaxError::BadReversePath { reason } => {
                write!(f, "Bad sender address syntax: {reason}")?;
            }
            SyntaxError::BadForwardPath { reason } => {
                write!(f, "Bad recipient address syntax: {reason}")?;
            }
            SyntaxError::UnknownParameter { keyword, .. } => {
                write!(f, "Unsupported parameter {keyword}")?;
            }
            SyntaxError::InvalidParameterValue { param, .. } => {
                write!(f, "Invalid {param} parameter")?;
            }
            SyntaxError::DuplicateParameter { param, .. } => {
                write!(f, "Duplicate {param} parameter")?;
            }
        }
        if let Some(s) = self.syntax() {
            write!(f, ". Syntax: {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SyntaxError {}

impl From<&SyntaxError> for Reply {
    /// The one place a syntax error becomes a reply. Table:
    ///
    /// | error                   | reply     |
    /// |-------------------------|-----------|
    /// | EmptyLine               | 500 5.5.2 |
    /// | LineTooLong             | 500 5.5.2 |
    /// | InvalidCharacter        | 500 5.5.2 |
    /// | UnknownCommand          | 500 5.5.1 |
    /// | InvalidArguments        | 501 5.5.4 |
    /// | InvalidUtf8             | 501 5.6.7 |
    /// | BadReversePath          | 501 5.1.7 |
    /// | BadForwardPath          | 501 5.1.3 |
    /// | UnknownParameter        | 555 5.5.4 |
    /// | InvalidParameterValue   | 501 5.5.4 |
    /// | DuplicateParameter      | 501 5.5.4 |
    ///
    /// InvalidUtf8 is 501 (a syntax error in the arguments) with 5.6.7 (RFC 6531 §3.7.4
    /// "non-ASCII address problem"); 553 5.6.7 is left for the session to refuse
    /// well-formed UTF-8 paths sent without SMTPUTF8.
    fn from(e: &SyntaxError) -> Reply {
        let (code, status) = match e {
            SyntaxError::EmptyLine | SyntaxError::LineTooLong | SyntaxError::InvalidCharacter => {
                (500, (5, 5, 2))
            }
            SyntaxError::UnknownCommand => (500, (5, 5, 1)),
            SyntaxError::InvalidUtf8 { .. } => (501, (5, 6, 7)),
            SyntaxError::BadReversePath { .. } => (501, (5, 1, 7)),
            SyntaxError::BadForwardPath { .. } => (501, (5, 1, 3)),
            SyntaxError::UnknownParameter { .. } => (555, (5, 5, 4)),
            SyntaxError::InvalidArguments { .. }
            | SyntaxError::InvalidParameterValue { .. }
            | SyntaxError::DuplicateParameter { .. } => (501, (5, 5, 4)),
        };
        Reply::new(code, status, e.to_string())
    }
}

/// Parse one command line. `line` is the line WITHOUT the trailing CRLF.
pub fn parse(line: &[u8]) -> Result<Command<'_>, SyntaxError> {
    if line.len().saturating_add(2) > MAX_COMMAND_LINE_BYTES {
        return Err(SyntaxError::LineTooLong);
    }
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(SyntaxError::InvalidCharacter);
    }
    let line = trim_spaces(line);
    if line.is_empty() {
        return Err(SyntaxError::EmptyLine);
    }
    let (verb, args) = match memchr::memchr(b' ', line) {
        Some(sp) => (line.get(..sp).unwrap_or(line), line.get(sp + 1..).unwrap_or(&[])),
        None => (line, &[][..]),
    };
    let verb = Verb::from_bytes(verb).ok_or(SyntaxError::UnknownCommand)?;
    let syn = verb.syntax();
    let args = std::str::from_utf8(trim_spaces(args))
        .map_err(|_| SyntaxError::InvalidUtf8 { syntax: syn })?;
    let bad = SyntaxError::InvalidArguments { syntax: syn };
    match verb {
        Verb::Helo | Verb::Ehlo => {
            if args.is_empty() || path::parse_helo_domain(args).is_err() {
                return Err(bad);
            }
            Ok(if verb == Verb::Helo {
                Command::Helo { domain: args }
            } else {
                Command::Ehlo { domain: args }
            })
        }
        Verb::Mail => parse_mail(args),
        Verb::Rcpt => parse_rcpt(args),
        Verb::Data | Verb::Rset | Verb::Quit | Verb::StartTls => {
            if !args.is_empty() {
                return Err(bad);
            }
            Ok(match verb {
                Verb::Data => Command::Data,
                Verb::Rset => Command::Rset,
                Verb::Quit => Command::Quit,
                _ => Command::StartTls,
            })
        }
        Verb::Noop => Ok(Command::Noop),
        Verb::Vrfy | Verb::Expn => {
            if args.is_empty() {
                return Err(bad);
            }
            Ok(if verb == Verb::Vrfy {
                Command::Vrfy { arg: args }
            } else {
                Command::Expn { arg: args }
            })
        }
        Verb::Help => Ok(Command::Help { topic: (!args.is_empty()).then_some(args) }),
        Verb::Bdat => {
            let mut it = args.split(' ').filter(|t| !t.is_empty());
            let chunk_bytes = it.next().and_then(parse_decimal).ok_or_else(|| bad.clone())?;
            let last = match it.next() {
                None => false,
                Some(t) if t.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(bad),
            };
            if it.next().is_some() {
                return Err(bad);
            }
            Ok(Command::Bdat { chunk_bytes, last })
        }
        Verb::Auth => {
            let mut it = args.split(' ').filter(|t| !t.is_empty());
            let mechanism = it.next().filter(|m| is_sasl_mech(m)).ok_or_else(|| bad.clone())?;
            let initial = it.next();
            if initial.is_some_and(|i| !is_initial_response(i)) || it.next().is_some() {
                return Err(bad);
            }
            Ok(Command::Auth { mechanism, initial })
        }
    }
}

/// The verbs we know, for dispatch inside [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
}

impl Verb {
    /// Table of verbs (case-insensitive, RFC 5321 §4.1.4).
    const TABLE: [(&'static [u8], Verb); 14] = [
        (b"MAIL", Verb::Mail),
        (b"RCPT", Verb::Rcpt),
        (b"DATA", Verb::Data),
        (b"BDAT", Verb::Bdat),
        (b"EHLO", Verb::Ehlo),
        (b"HELO", Verb::Helo),
        (b"RSET", Verb::Rset),
        (b"NOOP", Verb::Noop),
        (b"QUIT", Verb::Quit),
        (b"VRFY", Verb::Vrfy),
        (b"EXPN", Verb::Expn),
        (b"HELP", Verb::Help),
        (b"AUTH", Verb::Auth),
        (b"STARTTLS", Verb::StartTls),
    ];

    fn from_bytes(v: &[u8]) -> Option<Verb> {
        Verb::TABLE.iter().find(|(name, _)| name.eq_ignore_ascii_case(v)).map(|&(_, verb)| verb)
    }

    fn syntax(self) -> &'static str {
        match self {
            Verb::Helo => syntax::HELO,
            Verb::Ehlo => syntax::EHLO,
            Verb::Mail => syntax::MAIL,
            Verb::Rcpt => syntax::RCPT,
            Verb::Data => syntax::DATA,
            Verb::Bdat => syntax::BDAT,
            Verb::Rset => syntax::RSET,
            Verb::Noop => syntax::NOOP,
            Verb::Quit => syntax::QUIT,
            Verb::Vrfy => syntax::VRFY,
            Verb::Expn => syntax::EXPN,
            Verb::Help => syntax::HELP,
            Verb::StartTls => syntax::STARTTLS,
            Verb::Auth => syntax::AUTH,
        }
    }
}

/// `args` must start with `prefix` (case-insensitive, e.g. `FROM:`); returns what follows,
/// with spaces after the colon skipped (lenient: `MAIL FROM: <a@b>`).
fn strip_keyword<'a>(args: &'a str, prefix: &str) -> Option<&'a str> {
    let head = args.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    Some(args.get(prefix.len()..)?.trim_start_matches(' '))
}

/// After the closing `>`: either nothing, or spaces then parameters.
fn params_after_path<'a>(rest: &'a str, syn: &'static str) -> Result<&'a str, SyntaxError> {
    if rest.is_empty() || rest.starts_with(' ') {
        Ok(rest)
    } else {
        Err(SyntaxError::InvalidArguments { syntax: syn })
    }
}

fn parse_mail(args: &str) -> Result<Command<'_>, SyntaxError> {
    let syn = syntax::MAIL;
    let path = strip_keyword(args, "FROM:").ok_or(SyntaxError::InvalidArguments { syntax: syn })?;
    let (from, rest) =
        path::parse_reverse_path(path).map_err(|reason| SyntaxError::BadReversePath { reason })?;
    let rest = params_after_path(rest, syn)?;
    let mut p = MailParams::default();
    let mut seen_smtputf8 = false;
    let mut seen_auth = false;
    for (keyword, value) in esmtp_params(rest, syn) {
        let (keyword, value) = (keyword?, value);
        let invalid = |param| SyntaxError::InvalidParameterValue { param, syntax: syn };
        let dup = |param| SyntaxError::DuplicateParameter { param, syntax: syn };
        if keyword.eq_ignore_ascii_case("SIZE") {
            if p.size.is_some() {
                return Err(dup("SIZE"));
            }
            p.size = Some(value.and_then(parse_size_saturating).ok_or(invalid("SIZE"))?);
        } else if keyword.eq_ignore_ascii_case("BODY") {
            if p.body.is_some() {
                return Err(dup("BODY"));
            }
            let v = value.unwrap_or("");
            p.body = Some(if v.eq_ignore_ascii_case("7BIT") {
                Body::SevenBit
            } else if v.eq_ignore_ascii_case("8BITMIME") {
                Body::EightBitMime
            } else if v.eq_ignore_ascii_case("BINARYMIME") {
                Body::BinaryMime
            } else {
                return Err(invalid("BODY"));
            });
        } else if keyword.eq_ignore_ascii_case("SMTPUTF8") {
            if seen_smtputf8 {
                return Err(dup("SMTPUTF8"));
            }
            if value.is_some() {
                return Err(invalid("SMTPUTF8"));
            }
            seen_smtputf8 = true;
            p.smtputf8 = true;
        } else if keyword.eq_ignore_ascii_case("RET") {
            if p.ret.is_some() {
                return Err(dup("RET"));
            }
            let v = value.unwrap_or("");
            p.ret = Some(if v.eq_ignore_ascii_case("FULL") {
                Ret::Full
            } else if v.eq_ignore_ascii_case("HDRS") {
                Ret::Hdrs
            } else {
                return Err(invalid("RET"));
            });
        } else if keyword.eq_ignore_ascii_case("ENVID") {
            if p.envid.is_some() {
                return Err(dup("ENVID"));
            }
            let envid = value
                .filter(|v| v.len() <= MAX_ENVID_CHARS)
                .and_then(xtext_decode)
                .filter(|d| !d.is_empty() && d.bytes().all(|b| (0x20..0x7f).contains(&b)))
                .ok_or(invalid("ENVID"))?;
            p.envid = Some(envid);
        } else if keyword.eq_ignore_ascii_case("AUTH") {
            // RFC 4954 §5: AUTH=<mailbox> as xtext, or AUTH=<>. Accepted and ignored:
            // we do not trust an identity asserted by an unauthenticated client.
            if seen_auth {
                return Err(dup("AUTH"));
            }
            if value.and_then(xtext_decode).is_none() {
                return Err(invalid("AUTH"));
            }
            seen_auth = true;
        } else {
            return Err(unknown_param(keyword, syn));
        }
    }
    Ok(Command::Mail { from, params: p })
}

fn parse_rcpt(args: &str) -> Result<Command<'_>, SyntaxError> {
    let syn = syntax::RCPT;
    let path = strip_keyword(args, "TO:").ok_or(SyntaxError::InvalidArguments { syntax: syn })?;
    let (to, rest) =
        path::parse_forward_path(path).map_err(|reason| SyntaxError::BadForwardPath { reason })?;
    let rest = params_after_path(rest, syn)?;
    let mut p = RcptParams::default();
    for (keyword, value) in esmtp_params(rest, syn) {
        let keyword = keyword?;
        let invalid = |param| SyntaxError::InvalidParameterValue { param, syntax: syn };
        let dup = |param| SyntaxError::DuplicateParameter { param, syntax: syn };
        if keyword.eq_ignore_ascii_case("NOTIFY") {
            if p.notify.is_some() {
                return Err(dup("NOTIFY"));
            }
            p.notify = Some(value.and_then(parse_notify).ok_or(invalid("NOTIFY"))?);
        } else if keyword.eq_ignore_ascii_case("ORCPT") {
            if p.orcpt.is_some() {
                return Err(dup("ORCPT"));
            }
            p.orcpt = Some(value.and_then(parse_orcpt).ok_or(invalid("ORCPT"))?);
        } else {
            return Err(unknown_param(keyword, syn));
        }
    }
    Ok(Command::Rcpt { to, params: p })
}

fn unknown_param(keyword: &str, syn: &'static str) -> SyntaxError {
    // The keyword passed `is_esmtp_keyword`, so it is ASCII and safe to echo.
    let end = keyword.len().min(MAX_ECHOED_KEYWORD_CHARS);
    SyntaxError::UnknownParameter {
        keyword: keyword.get(..end).unwrap_or("").to_owned(),
        syntax: syn,
    }
}

/// Space-separated `esmtp-keyword ["=" esmtp-value]` (RFC 5321 §4.1.2). Yields the
/// keyword (or an error if it is malformed) and the value (`None` without `=`).
fn esmtp_params<'a>(
    rest: &'a str,
    syn: &'static str,
) -> impl Iterator<Item = (Result<&'a str, SyntaxError>, Option<&'a str>)> {
    rest.split(' ').filter(|t| !t.is_empty()).map(move |tok| {
        let (k, v) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok, None),
        };
        // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 §3.3).
        let value_ok = v.is_none_or(|v| !v.is_empty() && !v.contains('='));
        let k = if is_esmtp_keyword(k) && value_ok {
            Ok(k)
        } else {
            Err(SyntaxError::InvalidArguments { syntax: syn })
        };
        (k, v)
    })
}

/// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
fn is_esmtp_keyword(k: &str) -> bool {
    let b = k.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// SASL mechanism name: 1-20 of `A-Z 0-9 - _` (RFC 4422 §3.1); lower case tolerated.
fn is_sasl_mech(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= MAX_SASL_MECH_CHARS
        && m.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Initial response: base64 (RFC 4648 alphabet with padding) or a single `=` (empty).
fn is_initial_response(s: &str) -> bool {
    s == "="
        || (!s.is_empty()
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='))
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |p| p + 1);
    b.get(start..end).unwrap_or(&[])
}

impl fmt::Display for Command<'_> {
    /// The canonical command line without CRLF; `parse` of it gives back an equal command
    /// (except that a Mailbox's `had_source_route` is not printed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Helo { domain } => write!(f, "HELO {domain}"),
            Command::Ehlo { domain } => write!(f, "EHLO {domain}"),
            Command::Mail { from, params } => write!(f, "MAIL FROM:{from}{params}"),
            Command::Rcpt { to, params } => write!(f, "RCPT TO:{to}{params}"),
            Command::Data => f.write_str("DATA"),
            Command::Bdat { chunk_bytes, last } => {
                write!(f, "BDAT {chunk_bytes}{}", if *last { " LAST" } else { "" })
            }
            Command::Rset => f.write_str("RSET"),
            Command::Noop => f.write_str("NOOP"),
            Command::Quit => f.write_str("QUIT"),
            Command::Vrfy { arg } => write!(f, "VRFY {arg}"),
            Command::Expn { arg } => write!(f, "EXPN {arg}"),
            Command::Help { topic: None } => f.write_str("HELP"),
            Command::Help { topic: Some(t) } => write!(f, "HELP {t}"),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth { mechanism, initial: None } => write!(f, "AUTH {mechanism}"),
            Command::Auth { mechanism, initial: Some(i) } => write!(f, "AUTH {mechanism} {i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::path::{Domain, Mailbox};
    use std::borrow::Cow;

    /// Expected outcome: the canonical re-printed line, or the reply code and status.
    enum Want {
        Ok(&'static str),
        Err(u16, &'static str),
    }
    use Want::{Err as E, Ok as K};

    fn status_of(r: &Reply) -> String {
        r.status.map(|s| format!("{}.{}.{}", s.class, s.subject, s.detail)).unwrap_or_default()
    }

    fn check(cases: &[(&[u8], Want)]) {
        for (line, want) in cases {
            let got = parse(line);
            match (want, &got) {
                (K(canon), Ok(c)) => {
                    assert_eq!(c.to_string(), *canon, "input {:?}", String::from_utf8_lossy(line));
                }
                (E(code, st), Err(e)) => {
                    let r = Reply::from(e);
                    assert_eq!(
                        (r.code, status_of(&r).as_str()),
                        (*code, *st),
                        "input {:?} -> {e:?}",
                        String::from_utf8_lossy(line)
                    );
                }
                _ => panic!("input {:?}: got {got:?}", String::from_utf8_lossy(line)),
            }
        }
    }

    #[test]
    fn verbs_and_simple_commands() {
        check(&[
            (b"HELO mail.example.com", K("HELO mail.example.com")),
            (b"helo mail.example.com  ", K("HELO mail.example.com")),
            (b"EHLO [192.0.2.1]", K("EHLO [192.0.2.1]")),
            (b"EHLO [IPv6:2001:db8::1]", K("EHLO [IPv6:2001:db8::1]")),
            (b"EHLO my_pc", K("EHLO my_pc")),
            (b"EHLO host.example.com.", K("EHLO host.example.com.")),
            (b"EHLO host..example", E(501, "5.5.4")),
            (b"HELO .", E(501, "5.5.4")),
            (b"EHLO", E(501, "5.5.4")),
            (b"EHLO   ", E(501, "5.5.4")),
            (b"EHLO a b", E(501, "5.5.4")),
            (b"EHLO -bad-", E(501, "5.5.4")),
            (b"EHLO a..b", E(501, "5.5.4")),
            (b"EHLO [1.2.3]", E(501, "5.5.4")),
            (b"DATA", K("DATA")),
            (b"data", K("DATA")),
            (b"DATA x", E(501, "5.5.4")),
            (b"RSET", K("RSET")),
            (b"RSET now", E(501, "5.5.4")),
            (b"QUIT", K("QUIT")),
            (b"QUIT ", K("QUIT")),
            (b"QUIT bye", E(501, "5.5.4")),
            (b"STARTTLS", K("STARTTLS")),
            (b"StartTLS x", E(501, "5.5.4")),
            (b"NOOP", K("NOOP")),
            (b"NOOP anything at all", K("NOOP")),
            (b"VRFY postmaster", K("VRFY postmaster")),
            (b"VRFY", E(501, "5.5.4")),
            (b"EXPN staff list", K("EXPN staff list")),
            (b"EXPN ", E(501, "5.5.4")),
            (b"HELP", K("HELP")),
            (b"HELP MAIL", K("HELP MAIL")),
            (b"BDAT 1000", K("BDAT 1000")),
            (b"BDAT 0 LAST", K("BDAT 0 LAST")),
            (b"bdat 12 last", K("BDAT 12 LAST")),
            (b"BDAT", E(501, "5.5.4")),
            (b"BDAT x", E(501, "5.5.4")),
            (b"BDAT -1", E(501, "5.5.4")),
            (b"BDAT 1 LAST x", E(501, "5.5.4")),
            (b"BDAT 1 FIRST", E(501, "5.5.4")),
            (b"BDAT 18446744073709551615", K("BDAT 18446744073709551615")),
            (b"BDAT 18446744073709551616", E(501, "5.5.4")),
            (b"AUTH PLAIN", K("AUTH PLAIN")),
            (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", K("AUTH PLAIN AGFsaWNlAHNlY3JldA==")),
            (b"AUTH PLAIN =", K("AUTH PLAIN =")),
            (b"AUTH", E(501, "5.5.4")),
            (b"AUTH PL@IN", E(501, "5.5.4")),
            (b"AUTH PLAIN a b", E(501, "5.5.4")),
            (b"AUTH PLAIN a!b", E(501, "5.5.4")),
            (b"AUTH ABCDEFGHIJKLMNOPQRSTU", E(501, "5.5.4")),
            (b"", E(500, "5.5.2")),
            (b"   ", E(500, "5.5.2")),
            (b"FOO", E(500, "5.5.1")),
            (b"MAILFROM:<a@b>", E(500, "5.5.1")),
            (b" MAIL FROM:<a@b>", K("MAIL FROM:<a@b>")),
            (b"NOOP \x00", E(500, "5.5.2")),
            (b"\x00", E(500, "5.5.2")),
            (b"NOOP\tx", E(500, "5.5.2")),
            (b"HELO a\x7f", E(500, "5.5.2")),
            (b"HELO \xff", E(501, "5.6.7")),
            (b"HELO \xc3\xa9xample.com", K("HELO \u{e9}xample.com")),
        ]);
    }

    #[test]
    fn mail_from() {
        check(&[
            (b"MAIL FROM:<a@b>", K("MAIL FROM:<a@b>")),
            (b"mail from:<a@b>", K("MAIL FROM:<a@b>")),
            (b"MAIL FROM: <a@b>", K("MAIL FROM:<a@b>")),
            (b"MAIL  FROM:<a@b>  ", K("MAIL FROM:<a@b>")),
            (b"MAIL FROM:<>", K("MAIL FROM:<>")),
            (b"MAIL FROM:a@b", E(501, "5.1.7")),
            (b"MAIL FROM:", E(501, "5.1.7")),
            (b"MAIL FROM:<a@b", E(501, "5.1.7")),
            (b"MAIL FROM:<Postmaster>", E(501, "5.1.7")),
            (b"MAIL TO:<a@b>", E(501, "5.5.4")),
            (b"MAIL", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b>x", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b>SIZE=1", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SIZE=1000", K("MAIL FROM:<a@b> SIZE=1000")),
            (b"MAIL FROM:<a@b> size=1000", K("MAIL FROM:<a@b> SIZE=1000")),
            (
                b"MAIL FROM:<a@b> SIZE=99999999999999999999",
                K("MAIL FROM:<a@b> SIZE=18446744073709551615"),
            ),
            (b"MAIL FROM:<a@b> SIZE=999999999999999999999", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SIZE=abc", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SIZE=", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SIZE", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SIZE=1 SIZE=2", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> BODY=8BITMIME", K("MAIL FROM:<a@b> BODY=8BITMIME")),
            (b"MAIL FROM:<a@b> BODY=7bit", K("MAIL FROM:<a@b> BODY=7BIT")),
            (b"MAIL FROM:<a@b> BODY=BINARYMIME", K("MAIL FROM:<a@b> BODY=BINARYMIME")),
            (b"MAIL FROM:<a@b> BODY=9BIT", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> BODY=7BIT BODY=7BIT", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SMTPUTF8", K("MAIL FROM:<a@b> SMTPUTF8")),
            (b"MAIL FROM:<a@b> SMTPUTF8=yes", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> SMTPUTF8 smtputf8", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> RET=HDRS", K("MAIL FROM:<a@b> RET=HDRS")),
            (b"MAIL FROM:<a@b> RET=ALL", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> ENVID=QQ314159", K("MAIL FROM:<a@b> ENVID=QQ314159")),
            (b"MAIL FROM:<a@b> ENVID=a+2Bb", K("MAIL FROM:<a@b> ENVID=a+2Bb")),
            (b"MAIL FROM:<a@b> ENVID=a+2bb+20c", K("MAIL FROM:<a@b> ENVID=a+2Bb+20c")),
            (b"MAIL FROM:<a@b> ENVID=a+2", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> ENVID=a+00", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> ENVID=a+GG", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> ENVID=a=b", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> AUTH=<>", K("MAIL FROM:<a@b>")),
            (b"MAIL FROM:<a@b> AUTH=e+3Dmc2@example.com", K("MAIL FROM:<a@b>")),
            (b"MAIL FROM:<a@b> AUTH", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> XFOO=1", E(555, "5.5.4")),
            (b"MAIL FROM:<a@b> XFOO", E(555, "5.5.4")),
            (b"MAIL FROM:<a@b> NOTIFY=NEVER", E(555, "5.5.4")),
            (b"MAIL FROM:<a@b> -X=1", E(501, "5.5.4")),
            (b"MAIL FROM:<a@b> =1", E(501, "5.5.4")),
            (
                b"MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=x",
                K("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=x"),
            ),
            (b"MAIL FROM:<@a.example,@b.example:user@d.example>", K("MAIL FROM:<user@d.example>")),
            (b"MAIL FROM:<\xff@b>", E(501, "5.6.7")),
            (b"MAIL FROM:<\xc3\xa9@b> SMTPUTF8", K("MAIL FROM:<\u{e9}@b> SMTPUTF8")),
        ]);
    }

    #[test]
    fn rcpt_to() {
        check(&[
            (b"RCPT TO:<a@b>", K("RCPT TO:<a@b>")),
            (b"rcpt to: <a@b> ", K("RCPT TO:<a@b>")),
            (b"RCPT TO:<Postmaster>", K("RCPT TO:<Postmaster>")),
            (b"RCPT TO:<POSTMASTER>", K("RCPT TO:<Postmaster>")),
            (b"RCPT TO:<postmaster@b>", K("RCPT TO:<postmaster@b>")),
            (b"RCPT TO:<>", E(501, "5.1.3")),
            (b"RCPT TO:a@b", E(501, "5.1.3")),
            (b"RCPT FROM:<a@b>", E(501, "5.5.4")),
            (b"RCPT TO:<@route:user@host>", K("RCPT TO:<user@host>")),
            (b"RCPT TO:<a@b> NOTIFY=NEVER", K("RCPT TO:<a@b> NOTIFY=NEVER")),
            (b"RCPT TO:<a@b> NOTIFY=delay,success", K("RCPT TO:<a@b> NOTIFY=SUCCESS,DELAY")),
            (b"RCPT TO:<a@b> NOTIFY=NEVER,DELAY", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> NOTIFY=", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> NOTIFY=SUCCESS,", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> NOTIFY=ALWAYS", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> ORCPT=rfc822;a@b", K("RCPT TO:<a@b> ORCPT=rfc822;a@b")),
            (b"RCPT TO:<a@b> ORCPT=rfc822;a+2Bx@b", K("RCPT TO:<a@b> ORCPT=rfc822;a+2Bx@b")),
            (b"RCPT TO:<a@b> ORCPT=rfc822", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> ORCPT=;a@b", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> ORCPT=rfc822;", E(501, "5.5.4")),
            (b"RCPT TO:<a@b> SIZE=1", E(555, "5.5.4")),
            (b"RCPT TO:<a@b@c>", E(501, "5.1.3")),
        ]);
    }

    #[test]
    fn line_length_limit() {
        let mut long = b"NOOP ".to_vec();
        long.resize(MAX_COMMAND_LINE_BYTES - 2, b'x');
        assert_eq!(parse(&long), Ok(Command::Noop));
        long.push(b'x');
        assert_eq!(parse(&long), Err(SyntaxError::LineTooLong));
    }

    #[test]
    fn zero_copy_for_ascii() {
        // Every Cow in an ordinary command borrows (no allocation; the only other heap
        // use is the error path's String).
        let line = b"MAIL FROM:<user@example.com> SIZE=10 ENVID=abc";
        let Ok(Command::Mail { from, params }) = parse(line) else { panic!() };
        let mb = from.mailbox().unwrap();
        assert!(matches!(mb.local_part, Cow::Borrowed(_)));
        assert!(matches!(params.envid, Some(Cow::Borrowed("abc"))));
        assert_eq!(mb.domain, Domain::Name("example.com"));
        let line = b"RCPT TO:<\"bob smith\"@example.org> ORCPT=rfc822;bob@example.org";
        let Ok(Command::Rcpt { to, params }) = parse(line) else { panic!() };
        assert!(matches!(to.mailbox().unwrap().local_part, Cow::Borrowed("bob smith")));
        assert!(matches!(params.orcpt.unwrap().addr, Cow::Borrowed("bob@example.org")));
        // Escapes need a copy.
        let line = b"MAIL FROM:<\"a\\\"b\"@c> ENVID=a+2Bb";
        let Ok(Command::Mail { from, params }) = parse(line) else { panic!() };
        assert!(matches!(from.mailbox().unwrap().local_part, Cow::Owned(ref s) if s == "a\"b"));
        assert!(matches!(params.envid, Some(Cow::Owned(ref s)) if s == "a+b"));
    }

    #[test]
    fn reply_text_carries_grammar_hint() {
        let e = parse(b"MAIL FROM:a@b").unwrap_err();
        let r = Reply::from(&e);
        assert_eq!(
            r.to_string(),
            format!(
                "501 5.1.7 Bad sender address syntax: address must be enclosed in <>. Syntax: {}",
                syntax::MAIL
            )
        );
        let r = Reply::from(&parse(b"MAIL FROM:<a@b> X-FOO=1").unwrap_err());
        assert!(r.text.starts_with("Unsupported parameter X-FOO. Syntax: MAIL FROM:<address>"));
        let r = Reply::from(&parse(b"BOGUS").unwrap_err());
        assert_eq!(r.to_string(), "500 5.5.1 Command unrecognized");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Owned description of a command, from which a borrowing `Command` is built.
        #[derive(Clone, Debug)]
        enum Spec {
            Helo(bool, String),
            Mail(
                Option<(String, String)>,
                Option<u64>,
                Option<u8>,
                bool,
                Option<u8>,
                Option<String>,
            ),
            Rcpt(
                Option<(String, String)>,
                Option<(bool, bool, bool, bool)>,
                Option<(String, String)>,
            ),
            Bdat(u64, bool),
            Simple(u8),
            Arg(u8, String),
            Help(Option<String>),
            Auth(String, Option<String>),
        }

        /// `Display` drops the source route; clear the flag before comparing.
        fn without_route(mut c: Command<'_>) -> Command<'_> {
            if let Command::Mail { from: ReversePath::Mailbox(m), .. }
            | Command::Rcpt { to: ForwardPath::Mailbox(m), .. } = &mut c
            {
                m.had_source_route = false;
            }
            c
        }

        fn mailbox(l: &(String, String)) -> Mailbox<'_> {
            Mailbox {
                local_part: Cow::Borrowed(&l.0),
                domain: Domain::Name(&l.1),
                had_source_route: false,
            }
        }

        fn build(s: &Spec) -> Command<'_> {
            let body =
                |b: u8| [Body::SevenBit, Body::EightBitMime, Body::BinaryMime][usize::from(b % 3)];
            match s {
                Spec::Helo(true, d) => Command::Helo { domain: d },
                Spec::Helo(false, d) => Command::Ehlo { domain: d },
                Spec::Mail(mb, size, b, u8f, ret, envid) => Command::Mail {
                    from: mb
                        .as_ref()
                        .map_or(ReversePath::Null, |m| ReversePath::Mailbox(mailbox(m))),
                    params: MailParams {
                        size: *size,
                        body: b.map(body),
                        smtputf8: *u8f,
                        ret: ret.map(|r| if r % 2 == 0 { Ret::Full } else { Ret::Hdrs }),
                        envid: envid.as_deref().map(Cow::Borrowed),
                    },
                },
                Spec::Rcpt(mb, notify, orcpt) => Command::Rcpt {
                    to: mb
                        .as_ref()
                        .map_or(ForwardPath::Postmaster, |m| ForwardPath::Mailbox(mailbox(m))),
                    params: RcptParams {
                        notify: notify.map(|(never, success, failure, delay)| {
                            if never || !(success || failure || delay) {
                                Notify { never: true, ..Notify::default() }
                            } else {
                                Notify { never: false, success, failure, delay }
                            }
                        }),
                        orcpt: orcpt
                            .as_ref()
                            .map(|(t, a)| Orcpt { addr_type: t, addr: Cow::Borrowed(a) }),
                    },
                },
                Spec::Bdat(n, last) => Command::Bdat { chunk_bytes: *n, last: *last },
                Spec::Simple(k) => {
                    [Command::Data, Command::Rset, Command::Noop, Command::Quit, Command::StartTls]
                        [usize::from(k % 5)]
                    .clone()
                }
                Spec::Arg(k, a) => {
                    if k % 2 == 0 {
                        Command::Vrfy { arg: a }
                    } else {
                        Command::Expn { arg: a }
                    }
                }
                Spec::Help(t) => Command::Help { topic: t.as_deref() },
                Spec::Auth(m, i) => Command::Auth { mechanism: m, initial: i.as_deref() },
            }
        }

        fn arb_mb() -> impl Strategy<Value = (String, String)> {
            (
                prop_oneof![
                    "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9_-]{1,8}){0,3}",
                    "[ -~]{0,20}",
                    "[a-z\u{e9}\u{4e2d}]{1,8}",
                ],
                "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-zA-Z0-9\u{e9}]{1,10}){0,3}",
            )
        }

        fn arb_spec() -> impl Strategy<Value = Spec> {
            let text = "[!-~]([ -~]{0,20}[!-~])?";
            prop_oneof![
                (any::<bool>(), "[a-zA-Z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}")
                    .prop_map(|(h, d)| Spec::Helo(h, d)),
                (
                    proptest::option::of(arb_mb()),
                    proptest::option::of(any::<u64>()),
                    proptest::option::of(any::<u8>()),
                    any::<bool>(),
                    proptest::option::of(any::<u8>()),
                    proptest::option::of("[ -~]{1,30}"),
                )
                    .prop_map(|(m, s, b, u, r, e)| Spec::Mail(m, s, b, u, r, e)),
                (
                    proptest::option::of(arb_mb()),
                    proptest::option::of(any::<(bool, bool, bool, bool)>()),
                    proptest::option::of(("[a-zA-Z0-9-]{1,8}", "[ -~\u{e9}]{1,40}")),
                )
                    .prop_map(|(m, n, o)| Spec::Rcpt(m, n, o)),
                (any::<u64>(), any::<bool>()).prop_map(|(n, l)| Spec::Bdat(n, l)),
                any::<u8>().prop_map(Spec::Simple),
                (any::<u8>(), text).prop_map(|(k, a)| Spec::Arg(k, a)),
                proptest::option::of(text).prop_map(Spec::Help),
                ("[A-Z0-9_-]{1,20}", proptest::option::of("[A-Za-z0-9+/]{1,40}={0,2}"))
                    .prop_map(|(m, i)| Spec::Auth(m, i)),
            ]
        }

        proptest! {
            /// parse(print(x)) == x for every command we can build.
            #[test]
            fn print_then_parse_is_identity(spec in arb_spec()) {
                let cmd = build(&spec);
                let line = cmd.to_string();
                // Local parts whose canonical form is longer than 64 octets are invalid.
                let parsed = parse(line.as_bytes());
                if let Spec::Mail(Some(m), ..) | Spec::Rcpt(Some(m), ..) = &spec
                    && Mailbox::parse(&mailbox(m).to_string()).is_err()
                {
                    prop_assert!(parsed.is_err());
                    return Ok(());
                }
                prop_assert_eq!(parsed, Ok(cmd), "line {:?}", line);
            }

            /// Parsing is total: any bytes give Ok or Err, never a panic, and an accepted
            /// command re-prints to a line that parses to the same command.
            #[test]
            fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Ok(cmd) = parse(&line) {
                    let again = cmd.to_string();
                    let reparsed = parse(again.as_bytes()).map(without_route);
                    prop_assert_eq!(reparsed, Ok(without_route(cmd)));
                }
            }
        }
    }
}
