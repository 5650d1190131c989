//! The W3C Extended Log File Format as IIS SMTP wrote it: the header block and one line
//! per SMTP command, with every field escaped so a client cannot forge a line or a field.
//!
//! WHAT: [`header`] writes `#Software`, `#Version: 1.0`, `#Date` and `#Fields` (the first
//! lines of every file); [`write_line`] turns a [`Record`] (the values, borrowed) into one
//! line of the fields in [`FIELDS`], space-separated, ending in CRLF (IIS wrote CRLF);
//! [`file_name`] is the IIS name `exYYMMDD.log` (`exYYMMDD_N.log` for the N-th file of a
//! day after a size rotation).
//!
//! Fields, as IIS SMTP filled them (except `cs-username`, see below): `date time` (UTC,
//! `YYYY-MM-DD HH:MM:SS`, when the reply was queued), `c-ip` (client address),
//! `cs-username` (the AUTH identity; IIS put the HELO name here, we keep the HELO name in
//! the EHLO line's query), `s-sitename` (the site), `s-computername` (our host name),
//! `s-ip s-port` (the local address the client connected to), `cs-method` (the verb),
//! `cs-uri-query` (the arguments), `sc-status` (the reply code; of a multi-reply exchange
//! the last), `sc-bytes` (reply bytes), `cs-bytes` (command bytes, CRLF included),
//! `time-taken` (ms from the command to its reply). `-` is an empty field.
//!
//! SECURITY (escaping, [`escape`]): a field holds only the printable ASCII bytes
//! `!`..=`~` other than `+` and `%`, and those stand for themselves. Space becomes `+`
//! (W3C/IIS); every other byte (controls, CR, LF, TAB, NUL, DEL, 8-bit, and `+`, `%`)
//! becomes `%XX` (upper-case hex), so the escaping can be undone exactly and no value can
//! contain a field separator or a line end. An empty value is `-`, and a value that is
//! exactly `-` is written `%2D`, so "empty" and "a dash" stay distinct.
//!
//! Layer 0: values in, bytes out; no clock (the time is in the record), no file.
//!
//! STANDARDS: W3C Working Draft WD-logfile-960323 (Extended Log File Format).

use std::net::{IpAddr, SocketAddr};

use crate::smtp::date::{SECS_PER_DAY, civil_from_days};

/// The `#Fields:` directive's value: IIS SMTP's field list, in line order.
pub const FIELDS: &str = "date time c-ip cs-username s-sitename s-computername s-ip s-port \
                          cs-method cs-uri-query sc-status sc-bytes cs-bytes time-taken";

/// Number of fields in a line.
pub const FIELD_COUNT: usize = 14;

/// One command and its reply: the values of one log line, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the reply was queued, ms since the Unix epoch (the `date` and `time` fields).
    pub unix_ms: u64,
    /// The client's address (`c-ip`).
    pub client: IpAddr,
    /// The AUTH identity (`cs-username`); `None` = not authenticated.
    pub username: Option<&'a str>,
    /// The site's name (`s-sitename`).
    pub site: &'a str,
    /// Our host name (`s-computername`).
    pub computer: &'a str,
    /// The local address the client connected to (`s-ip`, `s-port`).
    pub server: SocketAddr,
    /// The command verb (`cs-method`); empty = unknown.
    pub method: &'a str,
    /// The arguments as received (`cs-uri-query`); escaped when written.
    pub query: &'a [u8],
    /// The reply code (`sc-status`); 0 = no reply (written `-`).
    pub status: u16,
    /// Reply bytes (`sc-bytes`).
    pub sc_bytes: u64,
    /// Command bytes (`cs-bytes`); `None` = withheld (written `-`).
    pub cs_bytes: Option<u64>,
    /// Milliseconds from the command to its reply (`time-taken`).
    pub time_taken_ms: u64,
}

/// Append the header block that opens every file: `#Software: mailroot <version>`,
/// `#Version: 1.0`, `#Date: <when the file was started>`, `#Fields: ...`.
pub fn header(version: &str, unix_ms: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"#Software: mailroot ");
    escape_into(version.as_bytes(), out);
    out.extend_from_slice(b"\r\n#Version: 1.0\r\n#Date: ");
    date_time(unix_ms, out);
    out.extend_from_slice(b"\r\n#Fields: ");
    out.extend_from_slice(FIELDS.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Append one log line (CRLF-terminated) for `r`.
pub fn write_line(r: &Record<'_>, out: &mut Vec<u8>) {
    date_time(r.unix_ms, out);
    out.push(b' ');
    display(r.client, out);
    out.push(b' ');
    escape(r.username.unwrap_or_default().as_bytes(), out);
    out.push(b' ');
    escape(r.site.as_bytes(), out);
    out.push(b' ');
    escape(r.computer.as_bytes(), out);
    out.push(b' ');
    display(r.server.ip(), out);
    out.push(b' ');
    number(u64::from(r.server.port()), out);
    out.push(b' ');
    escape(r.method.as_bytes(), out);
    out.push(b' ');
    escape(r.query, out);
    out.push(b' ');
    if r.status == 0 {
        out.push(b'-');
    } else {
        number(u64::from(r.status), out);
    }
    out.push(b' ');
    number(r.sc_bytes, out);
    out.push(b' ');
    match r.cs_bytes {
        Some(n) => number(n, out),
        None => out.push(b'-'),
    }
    out.push(b' ');
    number(r.time_taken_ms, out);
    out.extend_from_slice(b"\r\n");
}

/// Append `value` escaped as one field (see the module docs); `-` when empty.
pub fn escape(value: &[u8], out: &mut Vec<u8>) {
    match value {
        [] => out.push(b'-'),
        b"-" => out.extend_from_slice(b"%2D"),
        _ => escape_into(value, out),
    }
}

/// The escaping itself, without the empty / dash rules.
fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        match b {
            b' ' => out.push(b'+'),
            b'+' | b'%' => {
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            }
            0x21..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

/// Undo [`escape`] (for tests and log readers): `+` is a space, `%XX` a byte, `-` empty.
/// `None` for text `escape` never writes.
#[must_use]
pub fn unescape(field: &str) -> Option<Vec<u8>> {
    if field == "-" {
        return Some(Vec::new());
    }
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = field.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c @ 0x21..=0x7e => out.push(c),
            _ => return None,
        }
        i += 1;
    }
    Some(out)
}

/// The file name for the day of `unix_ms` (UTC): `exYYMMDD.log` for the first file of the
/// day (`seq` 0), `exYYMMDD_<seq>.log` for the next ones (size rotation).
#[must_use]
pub fn file_name(unix_ms: u64, seq: u32) -> String {
    let (y, m, d) = civil_from_days(day_number(unix_ms));
    let yy = y.rem_euclid(100);
    if seq == 0 {
        format!("ex{yy:02}{m:02}{d:02}.log")
    } else {
        format!("ex{yy:02}{m:02}{d:02}_{seq}.log")
    }
}

/// True for a name [`file_name`] makes: `ex` + six digits, then `.log` or `_<digits>.log`
/// (what `[protocol_log] keep` may delete; nothing else in a site's folder is touched).
#[must_use]
pub fn is_file_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("ex").and_then(|r| r.strip_suffix(".log")) else {
        return false;
    };
    let (date, seq) = match rest.split_once('_') {
        Some((date, seq)) => (date, Some(seq)),
        None => (rest, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    date.len() == 6 && digits(date) && seq.is_none_or(digits)
}

/// Days since 1970-01-01 (UTC) of `unix_ms`: the daily rotation compares these.
#[must_use]
pub fn day_number(unix_ms: u64) -> i64 {
    i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX) / SECS_PER_DAY
}

/// Append `YYYY-MM-DD HH:MM:SS` (UTC) of `unix_ms`.
fn date_time(unix_ms: u64, out: &mut Vec<u8>) {
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX);
    let (y, mo, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let two = |v: i64, out: &mut Vec<u8>| {
        let v = u8::try_from(v.rem_euclid(100)).unwrap_or(0);
        out.extend_from_slice(&[b'0' + v / 10, b'0' + v % 10]);
    };
    two(y / 100, out);
    two(y, out);
    out.push(b'-');
    two(mo, out);
    out.push(b'-');
    two(d, out);
    out.push(b' ');
    two(sod / 3600, out);
    out.push(b':');
    two(sod / 60 % 60, out);
    out.push(b':');
    two(sod % 60, out);
}

/// Append `n` in decimal without allocating.
fn number(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Append an IP address (its `Display` form: only hex digits, dots and colons).
fn display(ip: IpAddr, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let _ = write!(out, "{ip}");
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
