//! ESMTP parameters of MAIL and RCPT as values, and their value codecs: `SIZE` (RFC 1870),
//! `BODY` (RFC 6152 §3, RFC 3030 §3), `SMTPUTF8` (RFC 6531 §3.4), and the DSN parameters
//! `RET`, `ENVID`, `NOTIFY`, `ORCPT` with RFC 3461 §4 xtext (RFC 6533 for UTF-8).
//!
//! TRUST: values come from the network; every decoder returns `None` on anything
//! malformed and never panics. Split out of `command.rs`, which parses the keywords and
//! re-exports these types.

use std::borrow::Cow;
use std::fmt;

use super::command::{MAX_ORCPT_CHARS, MAX_SIZE_DIGITS};

/// `BODY=` (RFC 6152 §3, RFC 3030 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `7BIT`.
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
    /// `BINARYMIME` (needs BDAT).
    BinaryMime,
}

/// `RET=` (RFC 3461 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// `FULL`: return the whole message in a DSN.
    Full,
    /// `HDRS`: return headers only.
    Hdrs,
}

/// `NOTIFY=` (RFC 3461 §4.1). Invariant when parsed: `never` excludes the others, and at
/// least one flag is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// `NEVER`.
    pub never: bool,
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

/// MAIL FROM parameters. Each field is `None`/`false` when the parameter was absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams<'a> {
    /// `SIZE=n` declared message size in bytes (RFC 1870). Values beyond `u64` saturate.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// `SMTPUTF8` was given (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext-decoded; printable ASCII only (RFC 3461 §4.4).
    pub envid: Option<Cow<'a, str>>,
}

/// RCPT TO parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams<'a> {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<Orcpt<'a>>,
}

/// `ORCPT=addr-type;xtext` (RFC 3461 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orcpt<'a> {
    /// Address type as written, e.g. `rfc822` or `utf-8` (an atom).
    pub addr_type: &'a str,
    /// Original recipient, xtext-decoded (valid UTF-8, no control characters, non-empty).
    /// RFC 6533 `\x{..}` escapes of the `utf-8` type are kept as written.
    pub addr: Cow<'a, str>,
}

/// `1*20DIGIT` as u64; `None` on empty, non-digits, too many digits or overflow.
pub(super) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_SIZE_DIGITS {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, c| {
        let d = if c.is_ascii_digit() { u64::from(c - b'0') } else { return None };
        acc.checked_mul(10)?.checked_add(d)
    })
}

/// SIZE value: like [`parse_decimal`] but a 20-digit value beyond `u64::MAX` saturates,
/// so the session answers 552 (too big) rather than 501.
pub(super) fn parse_size_saturating(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_SIZE_DIGITS || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(parse_decimal(s).unwrap_or(u64::MAX))
}

/// `NOTIFY=NEVER` or a comma list of SUCCESS / FAILURE / DELAY (RFC 3461 §4.1).
pub(super) fn parse_notify(v: &str) -> Option<Notify> {
    let mut n = Notify::default();
    for item in v.split(',') {
        let flag = if item.eq_ignore_ascii_case("NEVER") {
            &mut n.never
        } else if item.eq_ignore_ascii_case("SUCCESS") {
            &mut n.success
        } else if item.eq_ignore_ascii_case("FAILURE") {
            &mut n.failure
        } else if item.eq_ignore_ascii_case("DELAY") {
            &mut n.delay
        } else {
            return None;
        };
        if *flag {
            return None; // listed twice
        }
        *flag = true;
    }
    if n.never && (n.success || n.failure || n.delay) { None } else { Some(n) }
}

/// `ORCPT=addr-type ";" xtext` (RFC 3461 §4.2); addr-type is an atom.
pub(super) fn parse_orcpt(v: &str) -> Option<Orcpt<'_>> {
    let (addr_type, x) = v.split_once(';')?;
    let type_ok = !addr_type.is_empty()
        && addr_type
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c));
    if !type_ok || x.len() > MAX_ORCPT_CHARS {
        return None;
    }
    let addr = xtext_decode(x).filter(|a| !a.is_empty() && !a.chars().any(char::is_control))?;
    // Raw UTF-8 (accepted above) is printed as `+HH` per octet when the address is passed
    // on (`Display`, the outbound RCPT): refuse what would then exceed the limit, so that
    // nothing accepted here becomes an ORCPT the next hop must refuse (found by fuzz/).
    if xtext_encoded_len(&addr) > MAX_ORCPT_CHARS {
        return None;
    }
    Some(Orcpt { addr_type, addr })
}

/// Length of `s` as [`xtext_encode`] writes it.
fn xtext_encoded_len(s: &str) -> usize {
    s.bytes().map(|c| if (33..=126).contains(&c) && c != b'+' && c != b'=' { 1 } else { 3 }).sum()
}

/// Decode RFC 3461 §4 xtext: `xchar` (33-126 except `+` and `=`) stands for itself,
/// `+HH` for the octet HH (upper- or lower-case hex accepted). UTF-8 characters are
/// passed through (RFC 6533 utf-8-addr-xtext). Borrows when there is no `+`. `None` if
/// malformed or the decoded octets are not UTF-8.
pub(super) fn xtext_decode(s: &str) -> Option<Cow<'_, str>> {
    let b = s.as_bytes();
    if b.iter().any(|&c| c == b'=' || c <= b' ' || c == 0x7f) {
        return None;
    }
    if memchr::memchr(b'+', b).is_none() {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'+' {
            let hi = hex_val(*b.get(i + 1)?)?;
            let lo = hex_val(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Encode as xtext: `+`, `=`, space, controls and non-ASCII octets become `+HH`.
fn xtext_encode(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for &c in s.as_bytes() {
        if (33..=126).contains(&c) && c != b'+' && c != b'=' {
            fmt::Write::write_char(f, char::from(c))?;
        } else {
            write!(f, "+{c:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        })
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        })
    }
}

impl fmt::Display for Notify {
    /// `NEVER` or e.g. `SUCCESS,DELAY` (empty if no flag is set).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let mut sep = "";
        for (on, name) in
            [(self.success, "SUCCESS"), (self.failure, "FAILURE"), (self.delay, "DELAY")]
        {
            if on {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        Ok(())
    }
}

impl fmt::Display for Orcpt<'_> {
    /// `addr-type;xtext`, the form stored in the spool envelope.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};", self.addr_type)?;
        xtext_encode(&self.addr, f)
    }
}

impl fmt::Display for MailParams<'_> {
    /// Each present parameter preceded by a space, e.g. ` SIZE=100 BODY=8BITMIME`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.size {
            write!(f, " SIZE={s}")?;
        }
        if let Some(b) = self.body {
            write!(f, " BODY={b}")?;
        }
        if self.smtputf8 {
            f.write_str(" SMTPUTF8")?;
        }
        if let Some(r) = self.ret {
            write!(f, " RET={r}")?;
        }
        if let Some(e) = &self.envid {
            f.write_str(" ENVID=")?;
            xtext_encode(e, f)?;
        }
        Ok(())
    }
}

impl fmt::Display for RcptParams<'_> {
    /// Each present parameter preceded by a space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.notify {
            write!(f, " NOTIFY={n}")?;
        }
        if let Some(o) = &self.orcpt {
            write!(f, " ORCPT={o}")?;
        }
        Ok(())
    }
}
