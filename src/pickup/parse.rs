//! Pickup file -> envelope + content. Pure: bytes in, values out (layer 0).
//!
//! WHAT: a file dropped into `Pickup/` is an RFC 5322 message, optionally preceded by an
//! envelope in the IIS / .NET `SmtpClient` form:
//!
//! ```text
//! X-Sender: alice@example.com        any case; empty value or <> = null reverse path
//! X-Receiver: bob@example.net        one line per recipient
//! X-Receiver: carol@example.org
//! From: Alice <alice@example.com>    ... the message ...
//! ```
//!
//! * Only the `x-sender:`/`x-receiver:` lines at the very top are the envelope; they are
//!   removed from the content. (An `X-Sender:` field further down is an ordinary field.)
//! * Without `x-sender:`, the reverse path is the first address of `Sender:`, else of
//!   `From:`. Without `x-receiver:`, the recipients are every address of every `To:`,
//!   `Cc:` and `Bcc:` field (display names, comments, groups, folded lines: the address
//!   lists are parsed by mail-parser), without duplicates (compared case-insensitively).
//! * Every `Bcc:` field is removed from the content, whichever way the envelope was given
//!   (IIS kept it, which told every recipient who else got a blind copy).
//! * Bare LF and bare CR line ends are normalised to CRLF (files written on Unix), except
//!   that a file with a line that is a single `.` next to a bare CR or bare LF is refused
//!   (`smtp::data::LineCheck`): normalising it would hand the next hop a lone-dot line
//!   followed by whatever the file hid after it, the SMTP smuggling payload. The rule is
//!   the one SMTP clients get for DATA and BDAT; such a file goes to Badmail.
//! * A line of only spaces/tabs ends the header like an empty line and is written as one
//!   (hand-typed files; strictly an obsolete folding, RFC 5322 §4.2).
//! * Addresses must pass the RFC 5321 mailbox grammar (`smtp::path`), as if given in RCPT.
//!
//! Anything else is a [`PickupError`] whose `Display` is the reason written to the `.BDR`
//! file: empty file, NUL bytes (binary), an end-of-data look-alike, a header line that is not a field, no empty line
//! ending the header, invalid addresses, no sender, no recipients.
//!
//! TRUST: the file is untrusted (anyone who can write `Pickup/`). Nothing here panics on
//! any input (property-tested): slicing is by positions found in the same slice.
//!
//! STANDARDS: RFC 5322 §2.2 (header fields, folding), §3.4 (address lists, groups),
//! §3.6.3 (Bcc); RFC 5321 §4.1.2 (mailbox grammar); RFC 6531 (UTF-8 addresses).

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};

use crate::smtp::path::Mailbox;
use crate::spool::format::MAX_RECIPIENTS;

/// A parsed Pickup file: what goes into the spool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickupMessage<'a> {
    /// Reverse path without angle brackets; empty = null reverse path.
    pub reverse_path: String,
    /// Recipients, in file order, without duplicates; never empty.
    pub recipients: Vec<String>,
    /// The message content: the file without the envelope lines and `Bcc:` fields, CRLF
    /// line ends. Borrowed from the file when nothing had to change but the envelope lines.
    pub content: Cow<'a, [u8]>,
    /// Some address is not ASCII (the message needs SMTPUTF8).
    pub smtputf8: bool,
    /// The content has bytes above 127 (8BITMIME).
    pub eight_bit: bool,
}

/// Why a Pickup file cannot be sent. The `Display` text is the Badmail reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickupError {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// The file contains a NUL byte (binary data, not a message).
    #[error("binary content: NUL byte at offset {0}")]
    Nul(usize),
    /// A line that is a single `.` has a bare CR or bare LF before it or as its ending.
    #[error(
        "a line holding a single dot next to a bare CR or LF (an end-of-data look-alike, \
         SMTP smuggling); write the file with CRLF line ends, or without such a line"
    )]
    EndOfDataLookalike,
    /// A line of the header is neither a `name: value` field nor a folded continuation.
    #[error("header line {0} is not a header field (name: value)")]
    BadHeaderLine(usize),
    /// The header never ends: no empty line before the end of the file.
    #[error("no empty line between the header and the body")]
    NoHeaderEnd,
    /// More than one leading `x-sender:` line.
    #[error("more than one x-sender line")]
    DuplicateSender,
    /// The sender (from `x-sender:`, `Sender:` or `From:`) is not a valid mailbox.
    #[error("invalid sender address {0:?}")]
    BadSender(String),
    /// A recipient is not a valid mailbox.
    #[error("invalid recipient address {0:?}")]
    BadRecipient(String),
    /// An address field (`Sender`, `From`, `To`, `Cc`, `Bcc`) is not valid UTF-8.
    #[error("the {0} field is not valid UTF-8")]
    NotUtf8(&'static str),
    /// No `x-sender:` line, and no address in `Sender:` or `From:`.
    #[error("no sender: no x-sender line and no address in Sender or From")]
    NoSender,
    /// No `x-receiver:` line, and no address in `To:`, `Cc:` or `Bcc:`.
    #[error("no recipients: no x-receiver line and no address in To, Cc or Bcc")]
    NoRecipients,
    /// More recipients than one spool record can hold.
    #[error("too many recipients ({0})")]
    TooManyRecipients(usize),
}

/// Parse a Pickup file (see the module documentation).
pub fn parse(file: &[u8]) -> Result<PickupMessage<'_>, PickupError> {
    if file.is_empty() {
        return Err(PickupError::Empty);
    }
    if let Some(at) = memchr::memchr(0, file) {
        return Err(PickupError::Nul(at));
    }
    if crate::smtp::data::has_end_of_data_lookalike(file) {
        return Err(PickupError::EndOfDataLookalike);
    }
    let text = normalize_crlf(file);
    let bytes: &[u8] = &text;

    // The leading envelope lines.
    let mut x_sender: Option<&[u8]> = None;
    let mut x_receivers: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    while let Some((line, next)) = line_at(bytes, pos) {
        if let Some(v) = strip_name(line, b"x-sender") {
            if x_sender.replace(v).is_some() {
                return Err(PickupError::DuplicateSender);
            }
        } else if let Some(v) = strip_name(line, b"x-receiver") {
            x_receivers.push(v);
        } else {
            break;
        }
        pos = next;
    }
    let content_start = pos;

    // The header: fields up to the first empty line.
    let mut fields: Vec<Field> = Vec::new();
    let mut line_no = 0;
    // Edits of the content: (start, end, replacement), in order.
    let mut edits: Vec<(usize, usize, &'static [u8])> = Vec::new();
    let blank_line = loop {
        let Some((line, next)) = line_at(bytes, pos) else {
            return Err(PickupError::NoHeaderEnd);
        };
        line_no += 1;
        if line.is_empty() {
            break None;
        }
        if line.iter().all(|&b| b == b' ' || b == b'\t') {
            // Files typed by hand (the classic IIS Pickup examples) often "end" the header
            // with a line of spaces. Strictly that is an obsolete folding; taking it as the
            // end of the header, and writing it as an empty line, is what the author meant.
            break Some((pos, next));
        }
        if matches!(line[0], b' ' | b'\t') {
            match fields.last_mut() {
                Some(f) => f.end = next,
                None => return Err(PickupError::BadHeaderLine(line_no)),
            }
        } else {
            let name_len = field_name_len(line).ok_or(PickupError::BadHeaderLine(line_no))?;
            fields.push(Field { name_end: pos + name_len, start: pos, end: next });
        }
        pos = next;
    };
    // `fields` cover the header lines from `content_start` up to the empty line.
    let field = |f: &Field| -> (&[u8], &[u8]) {
        let name = trim(&bytes[f.start..f.name_end]);
        // Skip the ':' after the name (and any WSP before it, obsolete syntax).
        let colon = f.name_end + memchr::memchr(b':', &bytes[f.name_end..f.end]).unwrap_or(0);
        (name, &bytes[colon + 1..f.end])
    };

    let reverse_path = match x_sender {
        Some(v) => sender_address(v)?,
        None => {
            let first_of = |want: &'static str| -> Result<Option<String>, PickupError> {
                for f in &fields {
                    let (name, value) = field(f);
                    if name.eq_ignore_ascii_case(want.as_bytes()) {
                        let mut found = Vec::new();
                        addresses(value, want, &mut found)?;
                        if let Some(a) = found.into_iter().next() {
                            return Ok(Some(a));
                        }
                    }
                }
                Ok(None)
            };
            let raw = match first_of("Sender")? {
                Some(a) => a,
                None => first_of("From")?.ok_or(PickupError::NoSender)?,
            };
            sender_address(raw.as_bytes())?
        }
    };

    let mut recipients: Vec<String> = Vec::new();
    let mut push = |raw: &[u8]| -> Result<(), PickupError> {
        let a = recipient_address(raw)?;
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&a)) {
            if recipients.len() >= MAX_RECIPIENTS as usize {
                return Err(PickupError::TooManyRecipients(recipients.len() + 1));
            }
            recipients.push(a);
        }
        Ok(())
    };
    if x_receivers.is_empty() {
        for f in &fields {
            let (name, value) = field(f);
            for want in ["To", "Cc", "Bcc"] {
                if name.eq_ignore_ascii_case(want.as_bytes()) {
                    let mut found = Vec::new();
                    addresses(value, want, &mut found)?;
                    for a in found {
                        push(a.as_bytes())?;
                    }
                }
            }
        }
    } else {
        for v in &x_receivers {
            push(v)?;
        }
    }
    if recipients.is_empty() {
        return Err(PickupError::NoRecipients);
    }

    for f in &fields {
        if field(f).0.eq_ignore_ascii_case(b"bcc") {
            edits.push((f.start, f.end, b""));
        }
    }
    if let Some((start, end)) = blank_line {
        edits.push((start, end, b"\r\n"));
    }
    let content: Cow<'_, [u8]> = if edits.is_empty() {
        match text {
            Cow::Borrowed(b) => Cow::Borrowed(&b[content_start..]),
            Cow::Owned(ref v) => Cow::Owned(v[content_start..].to_vec()),
        }
    } else {
        // Edits are in file order and do not overlap (header fields, then the blank line).
        let mut out = Vec::with_capacity(bytes.len() - content_start);
        let mut from = content_start;
        for (start, end, replacement) in edits {
            out.extend_from_slice(&bytes[from..start]);
            out.extend_from_slice(replacement);
            from = end;
        }
        out.extend_from_slice(&bytes[from..]);
        Cow::Owned(out)
    };
    let smtputf8 = !reverse_path.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    let eight_bit = !content.is_ascii();
    Ok(PickupMessage { reverse_path, recipients, content, smtputf8, eight_bit })
}

/// One header field: `[start, end)` including its continuation lines and final CRLF;
/// `name_end` is where the name (plus any WSP before the colon) ends.
struct Field {
    /// First byte of the field.
    start: usize,
    /// Position of the `:` or of the WSP before it.
    name_end: usize,
    /// One past the CRLF of its last line.
    end: usize,
}

/// The line starting at `pos` without its CRLF, and where the next line starts; `None` at
/// the end of the input. A last line without CRLF is a line too.
fn line_at(b: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(pos..).filter(|r| !r.is_empty())?;
    Some(match memchr::memmem::find(rest, b"\r\n") {
        Some(i) => (&rest[..i], pos + i + 2),
        None => (rest, b.len()),
    })
}

/// Length of the field name of a header line (up to the colon, WSP before it tolerated),
/// or `None` if the line is not a field. RFC 5322 §3.6.8: `ftext` = `%d33-57 / %d59-126`.
fn field_name_len(line: &[u8]) -> Option<usize> {
    let n = line.iter().position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if n == 0 {
        return None;
    }
    let after = &line[n..];
    let wsp = after.iter().position(|&b| b != b' ' && b != b'\t')?;
    (after[wsp] == b':').then_some(n)
}

/// The value of `line` if it is the field `name` (case-insensitive), trimmed.
fn strip_name<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let n = field_name_len(line)?;
    if !line[..n].eq_ignore_ascii_case(name) {
        return None;
    }
    let colon = n + memchr::memchr(b':', &line[n..])?;
    Some(trim(&line[colon + 1..]))
}

/// `b` without leading and trailing ASCII whitespace.
fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// CRLF line ends: bare LF and bare CR become CRLF; borrowed when already right.
fn normalize_crlf(b: &[u8]) -> Cow<'_, [u8]> {
    let ok = memchr::memchr2_iter(b'\r', b'\n', b).all(|i| match b[i] {
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        _ => i > 0 && b[i - 1] == b'\r',
    });
    if ok {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len() + b.len() / 32);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Every address in an address-list field value (`value` = the bytes after the colon,
/// folded lines and final CRLF included), in order; groups are flattened, display names
/// and comments dropped. A mailbox without an address part (a bare word) is kept as that
/// word, so the caller rejects it as an invalid address.
fn addresses(value: &[u8], field: &'static str, out: &mut Vec<String>) -> Result<(), PickupError> {
    if std::str::from_utf8(value).is_err() {
        return Err(PickupError::NotUtf8(field));
    }
    // mail-parser stops at the end of the (unfolded) field; make sure there is one.
    let value: Cow<'_, [u8]> = if value.ends_with(b"\n") {
        Cow::Borrowed(value)
    } else {
        Cow::Owned([value, b"\r\n"].concat())
    };
    let parsed = MessageStream::new(&value).parse_address();
    let mut take = |addr: &mail_parser::Addr<'_>| match (&addr.address, &addr.name) {
        (Some(a), _) => out.push(a.to_string()),
        (None, Some(name)) if !name.trim().is_empty() => out.push(name.to_string()),
        _ => {}
    };
    match &parsed {
        HeaderValue::Address(Address::List(list)) => list.iter().for_each(&mut take),
        HeaderValue::Address(Address::Group(groups)) => {
            groups.iter().flat_map(|g| g.addresses.iter()).for_each(&mut take)
        }
        _ => {}
    }
    Ok(())
}

/// Strip one pair of enclosing angle brackets (`<a@b>` -> `a@b`) and whitespace.
fn unbracket(v: &[u8]) -> &[u8] {
    let v = trim(v);
    match v {
        [b'<', inner @ .., b'>'] => trim(inner),
        _ => v,
    }
}

/// A validated reverse path from `raw`; empty (or `<>`) is the null reverse path.
fn sender_address(raw: &[u8]) -> Result<String, PickupError> {
    let v = unbracket(raw);
    if v.is_empty() {
        return Ok(String::new());
    }
    mailbox(v).ok_or_else(|| PickupError::BadSender(String::from_utf8_lossy(v).into_owned()))
}

/// A validated forward path from `raw` (`postmaster` alone is allowed, as in RCPT).
fn recipient_address(raw: &[u8]) -> Result<String, PickupError> {
    let v = unbracket(raw);
    if v.eq_ignore_ascii_case(b"postmaster") {
        return Ok("Postmaster".to_owned());
    }
    mailbox(v).ok_or_else(|| PickupError::BadRecipient(String::from_utf8_lossy(v).into_owned()))
}

/// `local@domain` in canonical form if `v` is a valid RFC 5321 mailbox without a source
/// route.
fn mailbox(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let mb = Mailbox::parse(s).ok()?;
    Some(mb.to_string())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
