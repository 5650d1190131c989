//! Test message and envelope text for `source`.
//!
//! The template is built once per session: a header block, then per message a `Message-ID`
//! and an `X-Loadtest-Id: <run>.<seq>` line (which `relay` matches at the sink), and a body
//! of `X` lines cut so the whole message (headers + body, before the terminating `.`) is
//! exactly the requested size when that is large enough. No body line starts with `.`, so
//! no dot-stuffing is needed (RFC 5321 §4.5.2).

use std::io::Write as _;

/// Body line length in octets, excluding CRLF (RFC 5322 §2.1.1 recommends <= 78).
const BODY_LINE_CHARS: usize = 76;

/// The end-of-data marker that follows the message content (RFC 5321 §4.1.1.4).
pub(crate) const END_OF_DATA: &[u8] = b".\r\n";

/// Name of the header that carries the run nonce and message number.
pub(crate) const ID_HEADER: &str = "X-Loadtest-Id";

/// One session's reusable message: fixed headers and full body lines, plus slots for the
/// varying `Message-ID` and `X-Loadtest-Id` headers.
pub(crate) struct MessageTemplate {
    /// Headers before `Message-ID` (From, To, Subject, Date), each ending in CRLF.
    head: Vec<u8>,
    /// Body lines of `BODY_LINE_CHARS` `X`s and CRLF, enough for the largest message.
    lines: Vec<u8>,
    /// Session number, part of every `Message-ID`.
    session: usize,
    /// Run nonce, part of every `X-Loadtest-Id`.
    run: u64,
}

impl MessageTemplate {
    /// Build the template for `session` of run `run`; `max_size` is the largest message it
    /// will render.
    pub(crate) fn new(session: usize, run: u64, max_size: usize, from: &str, to: &str) -> Self {
        let mut head = Vec::new();
        // Writes to a Vec cannot fail.
        let _ = write!(
            head,
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: mailroot-loadtest\r\n\
             Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        let full_lines = max_size / (BODY_LINE_CHARS + 2) + 1;
        let mut lines = Vec::with_capacity(full_lines * (BODY_LINE_CHARS + 2));
        for _ in 0..full_lines {
            lines.extend(std::iter::repeat_n(b'X', BODY_LINE_CHARS));
            lines.extend_from_slice(b"\r\n");
        }
        MessageTemplate { head, lines, session, run }
    }

    /// Write message number `seq` of `size` bytes (content, then the end-of-data marker)
    /// into `out`, replacing it. `size` must not exceed the template's `max_size`.
    pub(crate) fn render(&self, seq: u64, size: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        let _ = write!(
            out,
            "Message-ID: <{:010}.{:06}@loadtest.invalid>\r\n{ID_HEADER}: {:016x}.{:020}\r\n\r\n",
            seq % 10_000_000_000,
            self.session % 1_000_000,
            self.run,
            seq
        );
        let mut remaining = size.saturating_sub(out.len());
        // Whole lines first (a prefix of `lines`), then one short line for the rest.
        let whole = (remaining / (BODY_LINE_CHARS + 2)) * (BODY_LINE_CHARS + 2);
        let whole = whole.min(self.lines.len());
        out.extend_from_slice(&self.lines[..whole]);
        remaining -= whole;
        if remaining > 0 {
            out.extend(std::iter::repeat_n(b'X', remaining.saturating_sub(2).max(1)));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(END_OF_DATA);
    }
}

/// Parse the value of an `X-Loadtest-Id` header (`<run hex>.<seq>`).
pub(crate) fn parse_id(value: &[u8]) -> Option<(u64, u64)> {
    let v = std::str::from_utf8(value).ok()?.trim();
    let (run, seq) = v.split_once('.')?;
    Some((u64::from_str_radix(run, 16).ok()?, seq.parse().ok()?))
}

/// The `n`th recipient address derived from `to`: `n == 0` is `to` itself, later ones
/// append `n` to the local part (`b@example.net` -> `b1@example.net`).
pub(crate) fn recipient(to: &str, n: usize) -> String {
    if n == 0 {
        return to.to_owned();
    }
    match to.rsplit_once('@') {
        Some((local, domain)) => format!("{local}{n}@{domain}"),
        None => format!("{to}{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_size_matches_request() {
        let t = MessageTemplate::new(3, 0xabc, 100_000, "a@example.com", "b@example.net");
        for size in [300, 512, 1024, 1025, 1026, 4096, 10_000, 99_999, 100_000] {
            let mut out = Vec::new();
            t.render(42, size, &mut out);
            assert_eq!(out.len() - END_OF_DATA.len(), size, "size {size}");
            assert!(out.ends_with(b"\r\n.\r\n"));
            assert!(!out[..out.len() - 3].windows(3).any(|w| w == b"\n.\r" || w == b"\n.."));
        }
    }

    #[test]
    fn id_header_round_trips() {
        let t = MessageTemplate::new(0, 0xdead_beef, 2000, "a@example.com", "b@example.net");
        let mut out = Vec::new();
        t.render(1234, 2000, &mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        let line = text.lines().find_map(|l| l.strip_prefix("X-Loadtest-Id:"));
        assert_eq!(line.and_then(|v| parse_id(v.as_bytes())), Some((0xdead_beef, 1234)));
        assert_eq!(parse_id(b" zz.1"), None);
        assert_eq!(parse_id(b"12"), None);
    }

    #[test]
    fn recipients() {
        let cases = [
            ("b@example.net", 0, "b@example.net"),
            ("b@example.net", 2, "b2@example.net"),
            ("postmaster", 1, "postmaster1"),
        ];
        for (to, n, want) in cases {
            assert_eq!(recipient(to, n), want);
        }
    }
}
