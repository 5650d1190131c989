//! Delivery status notifications: the NDR (failure), delay and success reports.
//!
//! What: [`build`] writes one RFC 3464 `multipart/report; report-type=delivery-status`
//! message from `MAILER-DAEMON@<hostname>` to the original sender: a `text/plain` part
//! naming each recipient, the remote host and its exact reply (or our own reason, such as
//! "Cannot connect to self"), a `message/delivery-status` part (Reporting-MTA,
//! Arrival-Date, and per recipient Final-Recipient, Original-Recipient, Action, Status,
//! Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), and the original
//! message's header (`text/rfc822-headers`, RET=HDRS and the default) or the whole
//! original (`message/rfc822`, RET=FULL). [`should_notify`] applies RFC 3461 NOTIFY.
//! The caller (the bounce service, `queue::bounce`) spools the result with a null reverse
//! path (RFC 3461 §6.1; RFC 5321 §4.5.5) and never bounces a message whose own sender is
//! null (that goes to Badmail).
//!
//! Trust: recipient addresses, remote host names and replies come from peers. They only
//! appear as data: CR, LF and other controls are replaced, so no peer text can add a header
//! field or a MIME part; non-ASCII in the ASCII-only status part is escaped
//! (RFC 6533 `\x{..}`); the boundary is checked against every part's content.
//!
//! Output: CRLF line ends everywhere and no line over 998 octets (RFC 5322 §2.1.1): long
//! fields are folded at spaces, overlong header lines of the original are cut, and a full
//! original with an overlong line (or over [`MAX_FULL_RETURN_BYTES`]) is returned as
//! headers only.
//!
//! Layer 0: no I/O, no clock (dates are passed in as Unix seconds).
//! Standards: RFC 3461 (NOTIFY, RET, ORCPT, ENVID), RFC 3462/6522 (multipart/report),
//! RFC 3464 (delivery-status), RFC 3834 (Auto-Submitted), RFC 5322 (format, dates).

use std::fmt;
use std::fmt::Write as _;

use crate::smtp::command::{Notify, Ret};

/// Longest line, in octets without CRLF (RFC 5322 §2.1.1).
pub const MAX_LINE_OCTETS: usize = 998;
/// Preferred longest line of a header field we write (RFC 5322 §2.1.1 "SHOULD be 78").
pub const SOFT_LINE_OCTETS: usize = 78;
/// Largest original returned whole for RET=FULL; bigger ones are returned as headers.
pub const MAX_FULL_RETURN_BYTES: usize = 10 << 20;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Delivery failed permanently (or expired): an NDR.
    Failure,
    /// Delivery is delayed; the server keeps trying.
    Delay,
    /// Delivered (only on NOTIFY=SUCCESS).
    Success,
}

impl ReportKind {
    /// The word in the subject: "Failure", "Delay", "Success".
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Failure => "Failure",
            ReportKind::Delay => "Delay",
            ReportKind::Success => "Success",
        }
    }

    /// RFC 3464 §2.3.3 `Action` value.
    fn action(self) -> &'static str {
        match self {
            ReportKind::Failure => "failed",
            ReportKind::Delay => "delayed",
            ReportKind::Success => "delivered",
        }
    }

    /// Opening sentence of the human-readable part.
    fn sentence(self) -> &'static str {
        match self {
            ReportKind::Failure => "Delivery to the following recipients failed.",
            ReportKind::Delay => "Delivery to the following recipients has been delayed.",
            ReportKind::Success => "Delivery to the following recipients succeeded.",
        }
    }
}

/// Should a report of `kind` be sent for a recipient with this NOTIFY (RFC 3461 §4.1)?
/// Without NOTIFY: failures only. NEVER: nothing. Otherwise exactly the kinds listed.
#[must_use]
pub fn should_notify(notify: Option<Notify>, kind: ReportKind) -> bool {
    let Some(n) = notify else { return kind == ReportKind::Failure };
    !n.never
        && match kind {
            ReportKind::Failure => n.failure,
            ReportKind::Delay => n.delay,
            ReportKind::Success => n.success,
        }
}

/// Why a recipient is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnosis<'a> {
    /// The remote host said this (the exact reply, lines separated by CRLF or LF).
    Remote {
        /// The remote MTA's host name (or `[address]`).
        mta: &'a str,
        /// Its reply, e.g. `550 5.1.1 <a@b>: no such user`.
        reply: &'a str,
    },
    /// Our own reason, e.g. "Cannot connect to self"; no remote reply exists.
    Local {
        /// The reason in words.
        text: &'a str,
        /// The host we tried, if any (shown as Remote-MTA).
        mta: Option<&'a str>,
    },
}

/// One recipient in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RcptReport<'a> {
    /// The address we tried (`Final-Recipient: rfc822; ...`).
    pub final_recipient: &'a str,
    /// The ORCPT value, xtext-decoded (`rfc822;user@example.com`); a bare address is
    /// taken as `rfc822`.
    pub original_recipient: Option<&'a str>,
    /// Enhanced status code, e.g. `5.1.1`, `4.4.1`, `2.0.0`.
    pub status: &'a str,
    /// Remote reply or our reason.
    pub diagnosis: Diagnosis<'a>,
    /// Time of the last attempt, Unix seconds.
    pub last_attempt: Option<u64>,
    /// For delays: until when we keep trying, Unix seconds.
    pub will_retry_until: Option<u64>,
}

/// Everything a report needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report<'a> {
    /// Failure, delay or success.
    pub kind: ReportKind,
    /// Our host name: `MAILER-DAEMON@hostname`, `Reporting-MTA: dns; hostname`.
    pub hostname: &'a str,
    /// The original envelope sender, who gets the report. Must not be empty.
    pub to: &'a str,
    /// `Date:` of the report, Unix seconds.
    pub date: u64,
    /// Left part of the `Message-ID` (unique: e.g. queue id and date); `@hostname` is added.
    pub message_id: &'a str,
    /// The original ENVID, xtext-decoded.
    pub envid: Option<&'a str>,
    /// When the original arrived, Unix seconds.
    pub arrival_date: u64,
    /// The recipients reported. Must not be empty.
    pub recipients: &'a [RcptReport<'a>],
    /// RET of the original; `None` = headers only.
    pub ret: Option<Ret>,
    /// The original message as spooled.
    pub original: &'a [u8],
}

/// A report that cannot be built; the caller is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BounceError {
    /// The original sender is null: such mail is never bounced (it goes to Badmail).
    NullSender,
    /// No recipient to report.
    NoRecipients,
}

impl fmt::Display for BounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BounceError::NullSender => "the original sender is null; such mail is not bounced",
            BounceError::NoRecipients => "a delivery report needs at least one recipient",
        })
    }
}

impl std::error::Error for BounceError {}

/// Peer text made safe for one header field: controls (CR, LF, NUL, ...) become spaces.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Peer text made safe for the ASCII-only status part: controls become spaces and
/// non-ASCII characters are written `\x{HEX}` (RFC 6533 §3).
fn ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if c.is_control() => out.push(' '),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
            }
        }
    }
    out
}

/// `name: value` folded at spaces: lines of at most [`SOFT_LINE_OCTETS`] where the words
/// allow, never more than [`MAX_LINE_OCTETS`] (a longer word is cut). Unfolding gives the
/// value back with single spaces. `value` must be free of CR and LF.
fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    let mut line_len = name.len() + 1;
    // Nothing on this line yet but the name or the folding white space.
    let mut fresh = true;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        let mut word = word;
        loop {
            let need = line_len + 1 + word.len();
            if need <= SOFT_LINE_OCTETS || (fresh && need <= MAX_LINE_OCTETS) {
                out.push(' ');
                out.push_str(word);
                line_len = need;
                fresh = false;
                break;
            }
            if !fresh {
                out.push_str("\r\n");
                line_len = 0;
                fresh = true;
                continue;
            }
            // A word longer than a whole line: cut it at a char boundary.
            let mut cut = MAX_LINE_OCTETS - line_len - 1;
            while !word.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(' ');
            out.push_str(&word[..cut]);
            out.push_str("\r\n");
            line_len = 0;
            word = &word[cut..];
        }
    }
    out.push_str("\r\n");
}

/// A plain text line (indented), cut into pieces of at most [`MAX_LINE_OCTETS`].
fn text_line(out: &mut String, indent: &str, text: &str) {
    let mut rest = text;
    loop {
        let room = MAX_LINE_OCTETS - indent.len();
        let mut cut = rest.len().min(room);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(indent);
        out.push_str(&rest[..cut]);
        out.push_str("\r\n");
        rest = &rest[cut..];
        if rest.is_empty() {
            return;
        }
    }
}

/// An RFC 5322 §3.3 date in UTC: `Sat, 28 Nov 2026 15:40:02 +0000`.
#[must_use]
pub fn rfc5322_date(unix_secs: u64) -> String {
    crate::smtp::date::rfc5322_utc(i64::try_from(unix_secs).unwrap_or(i64::MAX))
}

/// The human-readable part.
fn human_part(r: &Report<'_>) -> String {
    let mut t = String::new();
    t.push_str("This is an automatically generated Delivery Status Notification.\r\n\r\n");
    t.push_str(r.kind.sentence());
    t.push_str("\r\n\r\n");
    for rcpt in r.recipients {
        text_line(&mut t, "       ", &clean(rcpt.final_recipient));
        match rcpt.diagnosis {
            Diagnosis::Remote { mta, reply } => {
                text_line(&mut t, "           Remote host: ", &clean(mta));
                text_line(&mut t, "           Reply from the remote host:", "");
                for line in reply.lines() {
                    text_line(&mut t, "               ", &clean(line));
                }
            }
            Diagnosis::Local { text, mta } => {
                if let Some(mta) = mta {
                    text_line(&mut t, "           Host: ", &clean(mta));
                }
                let reason = format!("{} ({})", clean(text), clean(rcpt.status));
                text_line(&mut t, "           Reason: ", &reason);
            }
        }
        if let Some(until) = rcpt.will_retry_until {
            let when = rfc5322_date(until);
            text_line(&mut t, "           The server will keep trying until ", &when);
        }
        t.push_str("\r\n");
    }
    t
}

/// `rfc822; addr`, or `utf-8; addr` with `\x{..}` escapes for a non-ASCII address.
fn address_field(addr: &str) -> String {
    if addr.is_ascii() {
        format!("rfc822; {}", ascii(addr))
    } else {
        format!("utf-8; {}", ascii(addr))
    }
}

/// The `message/delivery-status` part (RFC 3464 §2).
fn status_part(r: &Report<'_>) -> String {
    let mut s = String::new();
    field(&mut s, "Reporting-MTA", &format!("dns; {}", ascii(r.hostname)));
    if let Some(envid) = r.envid {
        field(&mut s, "Original-Envelope-Id", &ascii(envid));
    }
    field(&mut s, "Arrival-Date", &rfc5322_date(r.arrival_date));
    for rcpt in r.recipients {
        s.push_str("\r\n");
        if let Some(orcpt) = rcpt.original_recipient {
            let v = if orcpt.contains(';') { ascii(orcpt) } else { address_field(orcpt) };
            field(&mut s, "Original-Recipient", &v);
        }
        field(&mut s, "Final-Recipient", &address_field(rcpt.final_recipient));
        field(&mut s, "Action", r.kind.action());
        field(&mut s, "Status", &ascii(rcpt.status));
        match rcpt.diagnosis {
            Diagnosis::Remote { mta, reply } => {
                field(&mut s, "Remote-MTA", &format!("dns; {}", ascii(mta)));
                let joined: Vec<String> = reply.lines().map(ascii).collect();
                field(&mut s, "Diagnostic-Code", &format!("smtp; {}", joined.join(" ")));
            }
            Diagnosis::Local { mta, .. } => {
                if let Some(mta) = mta {
                    field(&mut s, "Remote-MTA", &format!("dns; {}", ascii(mta)));
                }
            }
        }
        if let Some(t) = rcpt.last_attempt {
            field(&mut s, "Last-Attempt-Date", &rfc5322_date(t));
        }
        if let Some(t) = rcpt.will_retry_until {
            field(&mut s, "Will-Retry-Until", &rfc5322_date(t));
        }
    }
    s
}

/// The original's header (up to the first empty line), CRLF, overlong lines cut.
fn original_headers(original: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in original.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        out.extend(line.iter().take(MAX_LINE_OCTETS).map(|&b| if b == b'\r' { b' ' } else { b }));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The whole original with CRLF line ends (a bare LF becomes CRLF), or `None` if it cannot
/// be carried as is (too big, a line over [`MAX_LINE_OCTETS`], a bare CR).
fn original_full(original: &[u8]) -> Option<Vec<u8>> {
    if original.len() > MAX_FULL_RETURN_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(original.len() + original.len() / 32);
    // The piece after a final LF is empty and is not a line.
    let body = original.strip_suffix(b"\n").unwrap_or(original);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE_OCTETS || line.contains(&b'\r') {
            return None;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

/// A boundary that appears in none of `parts`.
fn boundary(seed: &str, parts: &[&[u8]]) -> String {
    let seed: String = seed.chars().filter(char::is_ascii_alphanumeric).take(40).collect();
    (0u32..)
        .map(|n| format!("=_mailroot_{seed}_{n}"))
        .find(|b| parts.iter().all(|p| memchr::memmem::find(p, b.as_bytes()).is_none()))
        .unwrap_or_default()
}

/// `7bit` or `8bit` for content.
fn cte(bytes: &[u8]) -> &'static str {
    if bytes.is_ascii() { "7bit" } else { "8bit" }
}

/// Build the report message (RFC 5322 text with CRLF), ready to spool with a null sender.
pub fn build(r: &Report<'_>) -> Result<Vec<u8>, BounceError> {
    if r.to.is_empty() || r.to == "<>" {
        return Err(BounceError::NullSender);
    }
    if r.recipients.is_empty() {
        return Err(BounceError::NoRecipients);
    }
    let human = human_part(r);
    let status = status_part(r);
    let full = if r.ret == Some(Ret::Full) { original_full(r.original) } else { None };
    let (third_type, third) = match full {
        Some(f) => ("message/rfc822", f),
        None => ("text/rfc822-headers", original_headers(r.original)),
    };
    let b = boundary(r.message_id, &[human.as_bytes(), status.as_bytes(), &third]);
    let mut h = String::new();
    field(&mut h, "From", &format!("Mail Delivery System <MAILER-DAEMON@{}>", clean(r.hostname)));
    field(
        &mut h,
        "To",
        &format!("<{}>", clean(r.to.trim_start_matches('<').trim_end_matches('>'))),
    );
    field(&mut h, "Subject", &format!("Delivery Status Notification ({})", r.kind.as_str()));
    field(&mut h, "Date", &rfc5322_date(r.date));
    field(&mut h, "Message-ID", &format!("<{}@{}>", clean(r.message_id), clean(r.hostname)));
    field(&mut h, "Auto-Submitted", "auto-replied");
    field(&mut h, "MIME-Version", "1.0");
    field(
        &mut h,
        "Content-Type",
        &format!("multipart/report; report-type=delivery-status; boundary=\"{b}\""),
    );
    h.push_str("\r\nThis is a MIME-formatted message; your mail reader cannot show it.\r\n");
    let mut out = h.into_bytes();
    let mut part = |head: String, body: &[u8]| {
        out.extend_from_slice(format!("\r\n--{b}\r\n{head}\r\n").as_bytes());
        out.extend_from_slice(body);
    };
    part(
        format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n",
            cte(human.as_bytes())
        ),
        human.as_bytes(),
    );
    part("Content-Type: message/delivery-status\r\n".to_owned(), status.as_bytes());
    part(
        format!("Content-Type: {third_type}\r\nContent-Transfer-Encoding: {}\r\n", cte(&third)),
        &third,
    );
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests;
