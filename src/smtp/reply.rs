//! SMTP replies as data (RFC 5321 §4.2, enhanced status codes RFC 2034/3463).
//!
//! Every reply text mailroot sends lives in this file; handlers pick a constructor.

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
}
