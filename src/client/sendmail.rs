//! The `sendmail` interface that cron, PHP's `mail()`, git send-email and mail(1) call:
//! its command line, its input rules, and the Pickup file it becomes. Pure (layer 0): the
//! caller (`cli::client_cmds`) reads stdin, the environment and the clock, and writes the
//! file.
//!
//! Options (Sendmail 8 / Postfix `sendmail(1)` spelling; letters may be grouped, values
//! attached or separate):
//! * `-t` recipients from the `To:`, `Cc:`, `Bcc:` headers, added to those on the command
//!   line (Postfix's rule); `Bcc:` is removed from the message (by the Pickup parser).
//! * `-f sender` / `-r sender` the envelope sender (`<>` = null); default `login@domain`.
//! * `-F name` the full name for the `From:` header that is added when there is none.
//! * `-i`, `-oi` a line holding only `.` does not end the input (without them it does).
//! * `-o<anything else>` ignored, as sendmail does (`-oem`, `-odi`, `-oee`...); `-B type`,
//!   `-N dsn`, `-R ret`, `-V envid`, `-L tag`, `-h hops`, `-O opt` accepted and ignored;
//!   `-v`, `-m`, `-n`, `-U` ignored; `-bm` is the mode and the only one (`-bs`, `-bp`...
//!   are refused); `-C FILE` / `--config FILE` the mailroot configuration.
//! * `--` ends the options; recipients may also be comma-separated in one argument.
//!   A recipient without `@` gets `@<default domain>` (cron's `root`).
//!
//! Input: LF, CR and CRLF line ends all become CRLF (the Pickup folder refuses a lone `.`
//! next to a bare LF). A message whose first line is not a header field gets an empty
//! header. `From:`, `Date:` and `Message-ID:` are added when missing.
//!
//! Exit codes are `<sysexits.h>`' (see [`SendmailError::exit_code`]).
//!
//! STANDARDS: RFC 5322 (header fields); sendmail(8) and Postfix sendmail(1) options.

use std::path::PathBuf;

use crate::client::draft::check_address;
use crate::pickup::parse::{PickupError, parse};
use crate::smtp::date::rfc5322_utc;

/// Success.
pub const EX_OK: i32 = 0;
/// A usage error: bad option, no recipients.
pub const EX_USAGE: i32 = 64;
/// The input data was incorrect: a bad address, a malformed message.
pub const EX_DATAERR: i32 = 65;
/// The input could not be read.
pub const EX_NOINPUT: i32 = 66;
/// Temporary failure (the Pickup folder cannot be written): try again later.
pub const EX_TEMPFAIL: i32 = 75;
/// The configuration is unusable.
pub const EX_CONFIG: i32 = 78;

/// Why sendmail gives up. `exit_code()` is the process exit status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendmailError {
    /// Bad command line, or no recipients (EX_USAGE, 64).
    #[error("{0}")]
    Usage(String),
    /// A bad address or a message the Pickup folder would refuse (EX_DATAERR, 65).
    #[error("{0}")]
    Data(String),
    /// The input could not be read (EX_NOINPUT, 66).
    #[error("{0}")]
    NoInput(String),
    /// The Pickup folder cannot be written (EX_TEMPFAIL, 75).
    #[error("{0}")]
    TempFail(String),
    /// The configuration file is unusable (EX_CONFIG, 78).
    #[error("{0}")]
    Config(String),
}

impl SendmailError {
    /// The sysexits status.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            SendmailError::Usage(_) => EX_USAGE,
            SendmailError::Data(_) => EX_DATAERR,
            SendmailError::NoInput(_) => EX_NOINPUT,
            SendmailError::TempFail(_) => EX_TEMPFAIL,
            SendmailError::Config(_) => EX_CONFIG,
        }
    }
}

/// The parsed command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendmailArgs {
    /// `-t`.
    pub extract_recipients: bool,
    /// `-f` / `-r`.
    pub sender: Option<String>,
    /// `-F`.
    pub full_name: Option<String>,
    /// `-i` / `-oi`.
    pub ignore_dots: bool,
    /// Recipients from the command line, as given.
    pub recipients: Vec<String>,
    /// `-C` / `--config`.
    pub config: Option<PathBuf>,
}

/// Options that take a value (attached or the next argument).
const WITH_VALUE: &str = "frFCBNRVLhO";
/// Flags accepted and ignored.
const IGNORED_FLAGS: &str = "vmnU";

/// Parse the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<SendmailArgs, SendmailError> {
    let mut out = SendmailArgs::default();
    let mut it = args.iter();
    let usage = |m: String| SendmailError::Usage(m);
    while let Some(arg) = it.next() {
        if arg == "--" {
            out.recipients.extend(it.by_ref().cloned());
            break;
        }
        if let Some(v) = arg.strip_prefix("--config") {
            let v = match v.strip_prefix('=') {
                Some(v) => v.to_owned(),
                None if v.is_empty() => {
                    it.next().cloned().ok_or_else(|| usage("--config needs a file".into()))?
                }
                None => return Err(usage(format!("unknown option {arg}"))),
            };
            out.config = Some(PathBuf::from(v));
            continue;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            out.recipients.push(arg.clone());
            continue;
        };
        for (i, c) in flags.char_indices() {
            let rest = &flags[i + c.len_utf8()..];
            match c {
                't' => out.extract_recipients = true,
                'i' => out.ignore_dots = true,
                c if IGNORED_FLAGS.contains(c) => {}
                'o' => {
                    if rest.is_empty() {
                        return Err(usage("-o needs an option letter (e.g. -oi)".into()));
                    }
                    if rest == "i" {
                        out.ignore_dots = true;
                    }
                    break;
                }
                'b' => {
                    if rest != "m" {
                        return Err(usage(format!(
                            "-b{rest}: only -bm (deliver mail) is supported"
                        )));
                    }
                    break;
                }
                c if WITH_VALUE.contains(c) => {
                    let value = if rest.is_empty() {
                        it.next().cloned().ok_or_else(|| usage(format!("-{c} needs a value")))?
                    } else {
                        rest.to_owned()
                    };
                    match c {
                        'f' | 'r' => out.sender = Some(value),
                        'F' => out.full_name = Some(value),
                        'C' => out.config = Some(PathBuf::from(value)),
                        _ => {}
                    }
                    break;
                }
                c => return Err(usage(format!("unknown option -{c}"))),
            }
        }
    }
    Ok(out)
}

/// What the caller knows about the machine and the moment.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The login name (for the default sender).
    pub login: &'a str,
    /// The domain for unqualified addresses (the first local domain, else the host name).
    pub default_domain: &'a str,
    /// Now, seconds since the epoch (for `Date:`).
    pub now_unix: i64,
    /// A unique Message-ID (without brackets).
    pub message_id: &'a str,
}

/// A Pickup file ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Envelope sender (empty = null).
    pub sender: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// The whole Pickup file: envelope lines, then the message. Accepted by `pickup::parse`.
    pub file: Vec<u8>,
}

/// The input up to EOF (or, without `ignore_dots`, up to a line holding only `.`), every
/// line end made CRLF.
#[must_use]
pub fn read_message(input: &[u8], ignore_dots: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    let mut rest = input;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr2(b'\r', b'\n', rest) {
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => (&rest[..i], i + 2),
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        if !ignore_dots && line == b"." {
            break;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        rest = &rest[next..];
    }
    out
}

/// `addr`, with `@domain` added when it has none; `<...>` removed.
fn qualify(addr: &str, domain: &str) -> String {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    if a.is_empty() || a.contains('@') { a.to_owned() } else { format!("{a}@{domain}") }
}

/// The length of the header (up to and including the empty line), if the message starts
/// with header fields; 0 when its first line is not a field.
fn header_len(msg: &[u8]) -> Option<usize> {
    let first = msg.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let colon = memchr::memchr(b':', first)?;
    let name = &first[..colon];
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(memchr::memmem::find(msg, b"\r\n\r\n").map_or(msg.len(), |i| i + 4))
}

/// Does the header hold a field `name`?
fn has_field(header: &[u8], name: &str) -> bool {
    header.split(|b| *b == b'\n').any(|line| {
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && line[name.len()] == b':'
    })
}

/// Turn the input into a Pickup file (see the module docs).
pub fn prepare(
    args: &SendmailArgs,
    input: &[u8],
    ctx: &Context<'_>,
) -> Result<Prepared, SendmailError> {
    let data = |m: String| SendmailError::Data(m);
    let sender = match args.sender.as_deref() {
        Some("<>") | Some("") => String::new(),
        Some(s) => qualify(s, ctx.default_domain),
        None => format!("{}@{}", ctx.login, ctx.default_domain),
    };
    if !sender.is_empty() {
        check_address(&sender).map_err(|e| data(format!("sender: {e}")))?;
    }
    let mut recipients = Vec::new();
    for arg in &args.recipients {
        for r in arg.split(',').filter(|r| !r.trim().is_empty()) {
            let r = qualify(r, ctx.default_domain);
            check_address(&r).map_err(|e| data(format!("recipient: {e}")))?;
            if !recipients.iter().any(|x: &String| x.eq_ignore_ascii_case(&r)) {
                recipients.push(r);
            }
        }
    }

    let body = read_message(input, args.ignore_dots);
    let mut message = Vec::with_capacity(body.len() + 256);
    let (header, rest) = match header_len(&body) {
        Some(n) => body.split_at(n),
        None => (&body[..0], &body[..]),
    };
    let header_done = header.ends_with(b"\r\n\r\n");
    let header = if header_done { &header[..header.len() - 2] } else { header };
    if !has_field(header, "From") {
        let name = args.full_name.as_deref().filter(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\')
        });
        let addr = if sender.is_empty() {
            format!("MAILER-DAEMON@{}", ctx.default_domain)
        } else {
            sender.clone()
        };
        match name {
            Some(n) => message.extend_from_slice(format!("From: \"{n}\" <{addr}>\r\n").as_bytes()),
            None => message.extend_from_slice(format!("From: {addr}\r\n").as_bytes()),
        }
    }
    if !has_field(header, "Date") {
        message.extend_from_slice(format!("Date: {}\r\n", rfc5322_utc(ctx.now_unix)).as_bytes());
    }
    if !has_field(header, "Message-ID") {
        message.extend_from_slice(format!("Message-ID: <{}>\r\n", ctx.message_id).as_bytes());
    }
    message.extend_from_slice(header);
    message.extend_from_slice(b"\r\n");
    message.extend_from_slice(rest);

    if args.extract_recipients {
        // The relay's own Pickup parser reads To/Cc/Bcc (groups, folding, names).
        let mut probe = format!("x-sender: {sender}\r\n").into_bytes();
        probe.extend_from_slice(&message);
        match parse(&probe) {
            Ok(p) => {
                for r in p.recipients {
                    if !recipients.iter().any(|x| x.eq_ignore_ascii_case(&r)) {
                        recipients.push(r);
                    }
                }
            }
            Err(PickupError::NoRecipients) => {}
            Err(e) => return Err(data(e.to_string())),
        }
    }
    if recipients.is_empty() {
        return Err(SendmailError::Usage(
            "no recipients (give them as arguments, or use -t with To/Cc/Bcc headers)".into(),
        ));
    }
    let mut file = format!("x-sender: {sender}\r\n").into_bytes();
    for r in &recipients {
        file.extend_from_slice(format!("x-receiver: {r}\r\n").as_bytes());
    }
    file.extend_from_slice(&message);
    match parse(&file) {
        Ok(_) => Ok(Prepared { sender, recipients, file }),
        Err(e) => Err(data(e.to_string())),
    }
}

#[cfg(test)]
mod tests;
