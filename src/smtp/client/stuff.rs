//! Streaming DATA transparency for the client: message content in, wire bytes out, in
//! bounded pieces.
//!
//! `DotStuffer::fill` produces exactly what `data::dot_stuff` produces for the whole
//! content, but a piece at a time into the caller's output buffer, so a 50 MB message
//! never needs a 50 MB buffer. It keeps only a position and one flag between calls.
//!
//! TRUST: the content comes from our spool, but is treated as arbitrary bytes: bare CR and
//! bare LF become CRLF so the next hop can never see an end-of-data marker (or a line
//! break) that we did not mean (SMTP smuggling, RFC 5321 §2.3.8).
//!
//! STANDARDS: RFC 5321 §4.5.2 (transparency), §4.1.1.4 (`<CRLF>.<CRLF>` ends the data).

use memchr::memchr2;

/// Streaming encoder for one message's content. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DotStuffer {
    /// Bytes of the content already encoded. Invariant: ≤ `len`.
    pos: usize,
    /// Length of the content, learnt at the first `fill`; every call must pass the same
    /// content. `usize::MAX` before the first call.
    len: usize,
    /// The next content byte starts a line (start of content or after a line ending), and
    /// no dot has been doubled for it yet.
    line_start: bool,
    /// The final CRLF (if needed) and `.\r\n` were written.
    done: bool,
}

impl DotStuffer {
    /// An encoder at the start of a message's content.
    pub(crate) fn new() -> Self {
        DotStuffer { pos: 0, len: usize::MAX, line_start: true, done: false }
    }

    /// True once the end-of-data marker was written.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Append the next encoded bytes of `content` to `out` until `out.len()` reaches
    /// `limit` (it may pass it by up to 5 bytes) or the end marker is written. Returns the
    /// bytes appended.
    ///
    /// # Panics
    /// If `content` is not as long as at the first call (a caller bug).
    pub(crate) fn fill(&mut self, content: &[u8], out: &mut Vec<u8>, limit: usize) -> usize {
        if self.len == usize::MAX {
            self.len = content.len();
        }
        assert_eq!(content.len(), self.len, "DotStuffer: content changed between calls");
        let start = out.len();
        while self.pos < self.len && out.len() < limit {
            if self.line_start && content[self.pos] == b'.' {
                out.push(b'.');
            }
            self.line_start = false;
            let end = self.len.min(self.pos + (limit.saturating_sub(out.len())));
            match memchr2(b'\r', b'\n', &content[self.pos..end]) {
                None => {
                    out.extend_from_slice(&content[self.pos..end]);
                    self.pos = end;
                }
                Some(k) => {
                    let j = self.pos + k;
                    out.extend_from_slice(&content[self.pos..j]);
                    out.extend_from_slice(b"\r\n");
                    let crlf = content[j] == b'\r' && content.get(j + 1) == Some(&b'\n');
                    self.pos = if crlf { j + 2 } else { j + 1 };
                    self.line_start = true;
                }
            }
        }
        if self.pos == self.len && !self.done && out.len() < limit {
            // `line_start` is false only inside a line: the content did not end with a line
            // ending, so one is added before the marker (empty content needs none).
            if !self.line_start {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            self.done = true;
        }
        out.len() - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::data::dot_stuff;
    use proptest::prelude::*;

    /// Encode `content` with pieces of at most `limit` bytes (plus slack).
    fn encode(content: &[u8], limit: usize) -> Vec<u8> {
        let mut st = DotStuffer::new();
        let mut wire = Vec::new();
        let mut calls = 0;
        while !st.is_done() {
            let mut piece = Vec::new();
            let n = st.fill(content, &mut piece, limit);
            assert_eq!(n, piece.len());
            assert!(n > 0, "no progress");
            assert!(n <= limit + 5, "piece of {n} for limit {limit}");
            wire.extend_from_slice(&piece);
            calls += 1;
            assert!(calls < 10 * content.len() + 10);
        }
        let mut piece = Vec::new();
        assert_eq!(st.fill(content, &mut piece, limit), 0);
        wire
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n"),
            (b"a\r\n..\r\n", b"a\r\n...\r\n.\r\n"),
            (b"a.\r\nb", b"a.\r\nb\r\n.\r\n"),
            (b"a\n.\n", b"a\r\n..\r\n.\r\n"),
            (b"a\r.", b"a\r\n..\r\n.\r\n"),
            (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
        ];
        for (content, want) in cases {
            for limit in 1..=12 {
                assert_eq!(
                    encode(content, limit),
                    *want,
                    "{:?} limit {limit}",
                    String::from_utf8_lossy(content)
                );
            }
        }
    }

    #[test]
    fn respects_a_full_buffer() {
        let mut st = DotStuffer::new();
        let mut out = vec![0; 10];
        assert_eq!(st.fill(b"abc", &mut out, 10), 0);
        assert!(!st.is_done());
    }

    #[test]
    #[should_panic(expected = "content changed")]
    fn other_content_is_a_bug() {
        let mut st = DotStuffer::new();
        st.fill(b"abc", &mut Vec::new(), 1);
        st.fill(b"abcd", &mut Vec::new(), 10);
    }

    proptest! {
        #[test]
        fn equals_dot_stuff_at_any_piece_size(
            content in proptest::collection::vec(
                prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
                0..200,
            ),
            limit in 1usize..64,
        ) {
            let mut want = Vec::new();
            dot_stuff(&content, &mut want);
            prop_assert_eq!(encode(&content, limit), want);
        }
    }
}
