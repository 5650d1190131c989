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
#[path = "command_tests.rs"]
mod tests;
