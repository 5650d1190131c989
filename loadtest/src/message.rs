//! Test message and envelope text for `source`.
//!
//! The message is built once per session: a header block with a per-message `Message-ID`
//! line and a body of `X` lines padded so the whole message (headers + body, before the
//! terminating `.`) is exactly `--size` bytes when that is large enough. No body line starts
//! with `.`, so no dot-stuffing is needed (RFC 5321 §4.5.2).

use std::io::Write as _;

/// Body line length in octets, excluding CRLF (RFC 5322 §2.1.1 recommends <= 78).
const BODY_LINE_CHARS: usize = 76;

/// The end-of-data marker that follows the message content (RFC 5321 §4.1.1.4).
pub(crate) const END_OF_DATA: &[u8] = b".\r\n";

/// One session's reusable message: fixed headers and body, plus a slot for the varying
/// `Message-ID` header.
pub(crate) struct MessageTemplate {
    /// Headers before `Message-ID` (From, To, Subject, Date), each ending in CRLF.
    head: Vec<u8>,
    /// Blank line, then the body lines, each ending in CRLF; never contains a line starting
    /// with `.`.
    body: Vec<u8>,
    /// Session number, part of every `Message-ID`.
    session: usize,
}

/// Length of the `Message-ID` header line we produce, used to hit `--size` exactly:
/// "Message-ID: <" + 10 digits + "." + 6 digits + "@loadtest.invalid>\r\n".
const MESSAGE_ID_LINE_BYTES: usize = 13 + 10 + 1 + 6 + 18 + 2;

impl MessageTemplate {
    /// Build the template for `session`: `size_bytes` is the target total message size.
    pub(crate) fn new(session: usize, size_bytes: usize, from: &str, to: &str) -> Self {
        let mut head = Vec::new();
        // Writes to a Vec cannot fail.
        let _ = write!(
            head,
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: mailroot-loadtest\r\n\
             Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        let fixed = head.len() + MESSAGE_ID_LINE_BYTES + 2; // + blank line
        let mut remaining = size_bytes.saturating_sub(fixed);
        let mut body = b"\r\n".to_vec();
        while remaining > 0 {
            // Each line costs its characters plus CRLF; a final short line needs >= 1 char.
            let line = if remaining >= BODY_LINE_CHARS + 2 {
                BODY_LINE_CHARS
            } else {
                remaining.saturating_sub(2).max(1)
            };
            body.extend(std::iter::repeat_n(b'X', line));
            body.extend_from_slice(b"\r\n");
            remaining = remaining.saturating_sub(line + 2);
        }
        MessageTemplate { head, body, session }
    }

    /// Write message number `seq` (content + end-of-data marker) into `out`, replacing it.
    pub(crate) fn render(&self, seq: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        let _ = write!(
            out,
            "Message-ID: <{:010}.{:06}@loadtest.invalid>\r\n",
            seq % 10_000_000_000,
            self.session % 1_000_000
        );
        out.extend_from_slice(&self.body);
        out.extend_from_slice(END_OF_DATA);
    }
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
        for size in [200, 512, 1024, 1025, 4096, 10_000, 100_000] {
            let t = MessageTemplate::new(3, size, "a@example.com", "b@example.net");
            let mut out = Vec::new();
            t.render(42, &mut out);
            assert_eq!(out.len() - END_OF_DATA.len(), size, "size {size}");
            assert!(out.ends_with(b"\r\n.\r\n"));
            assert!(!out[..out.len() - 3].windows(3).any(|w| w == b"\n.\r" || w == b"\n.."));
        }
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
