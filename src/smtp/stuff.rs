//! Dot-stuffing, the one implementation: message content in, DATA (or BDAT) wire bytes out.
//!
//! `DotStuffer::fill` writes a message's content as DATA transparency requires (RFC 5321
//! §4.5.2), a piece at a time into the caller's output buffer, so a 50 MB message never
//! needs a 50 MB buffer: bare CR and bare LF become CRLF, a dot at a line start is doubled,
//! a final CRLF is added if the content is not empty and does not end with a line ending,
//! then `.\r\n`. [`dot_stuff`] is the same encoder run to completion in one call (tests,
//! benches, the load generator). For BDAT (`DotStuffer::bdat`) it writes `BDAT <n> LAST`
//! and then the same content without dot-stuffing or end marker, `n` being counted
//! beforehand (`bdat_len`). Either way it keeps only a position and two flags between
//! calls, and the next hop stores the same bytes. For content made of CRLF-terminated
//! lines, `data::DataScanner` gives back exactly the content.
//!
//! `DotStuffer::next_run` is the same encoding without the copy: it appends only the
//! bytes that are not in the content (a doubled dot, the CRLF of a bare CR or LF, the
//! final CRLF and end marker, the `BDAT` line) and returns the next range of the content
//! to send verbatim after them, so the outbound loop can `writev` the message from its
//! shared buffer (`smtp::client::ClientSession::poll_transmit_borrowed`). Its wire is
//! `fill`'s byte for byte (property-tested against `dot_stuff`, also with calls mixed).
//!
//! TRUST: the content comes from our spool, but is treated as arbitrary bytes: bare CR and
//! bare LF become CRLF so the next hop can never see an end-of-data marker (or a line
//! break) that we did not mean (SMTP smuggling, RFC 5321 §2.3.8).
//!
//! STANDARDS: RFC 5321 §4.5.2 (transparency), §4.1.1.4 (`<CRLF>.<CRLF>` ends the data);
//! RFC 3030 §2 (BDAT: the chunk is exactly `n` octets, no transparency).

use std::io::Write as _;

use memchr::memchr2;

/// Write `content` dot-stuffed, followed by the end marker, into `out` (see the module
/// docs): `DotStuffer` run to completion.
pub fn dot_stuff(content: &[u8], out: &mut Vec<u8>) {
    let mut stuffer = DotStuffer::new();
    stuffer.fill(content, out, usize::MAX);
    debug_assert!(stuffer.is_done(), "an unbounded fill writes the end marker");
}

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
    /// The final CRLF (if needed) and, for DATA, `.\r\n` were written.
    done: bool,
    /// BDAT instead of DATA: no transparency dots, no end marker, a `BDAT <n> LAST`
    /// line before the content (written at the first `fill`, when `len` is learnt).
    bdat: bool,
}

impl DotStuffer {
    /// A DATA encoder at the start of a message's content.
    pub(crate) fn new() -> Self {
        DotStuffer { pos: 0, len: usize::MAX, line_start: true, done: false, bdat: false }
    }

    /// A BDAT encoder: `BDAT <n> LAST` and the content as one chunk (RFC 3030).
    pub(crate) fn bdat() -> Self {
        DotStuffer { bdat: true, ..DotStuffer::new() }
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
        let start = out.len();
        if self.len == usize::MAX {
            self.len = content.len();
            if self.bdat {
                let _ = write!(out, "BDAT {} LAST\r\n", bdat_len(content));
            }
        }
        assert_eq!(content.len(), self.len, "DotStuffer: content changed between calls");
        // Room for this call's output in one allocation: grown a line at a time, a 64 KiB
        // piece reallocated (and copied) `out` at 8, 16, 32 and 64 KiB, as many bytes
        // again as the piece itself. The output is the content plus a few stuffing dots or
        // CRs (more only for bare line endings, which then grow `out` as before).
        let remaining = self.len - self.pos;
        let room = remaining.saturating_add(remaining / 64).saturating_add(5);
        out.reserve(limit.saturating_sub(out.len()).min(room));
        while self.pos < self.len && out.len() < limit {
            if self.line_start && content[self.pos] == b'.' && !self.bdat {
                out.push(b'.');
            }
            self.line_start = false;
            let end = self.len.min(self.pos.saturating_add(limit.saturating_sub(out.len())));
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
            if !self.bdat {
                out.extend_from_slice(b".\r\n");
            }
            self.done = true;
        }
        out.len() - start
    }

    /// The same encoding without copying the content (the outbound relay's path; `fill`
    /// stays the plain, line-at-a-time encoder: the blocking client library uses it, and
    /// the property tests check `next_run` against it byte for byte): append to `out` only the bytes
    /// that are not in the content (the `BDAT` line, a doubled dot, the CRLF for a bare
    /// CR or LF, the final CRLF and `.\r\n`), and return the range of `content` to be
    /// written verbatim right after them. The wire is then `out` + `content[range]`, call
    /// after call, byte for byte what `fill` writes. A range holds at most `max_run + 1`
    /// bytes (a CRLF may straddle the bound) and is empty only once the end marker was
    /// appended (`is_done`). Calls may be mixed with `fill` on the same encoder.
    ///
    /// A range ends where something must be inserted or changed: before a line-leading
    /// dot (DATA), at a bare CR or LF, at the end of the content, or at `max_run`; CRLF
    /// line endings are part of the range.
    ///
    /// # Panics
    /// If `content` is not as long as at the first call, or `max_run` is 0 (caller bugs).
    pub(crate) fn next_run(
        &mut self,
        content: &[u8],
        out: &mut Vec<u8>,
        max_run: usize,
    ) -> std::ops::Range<usize> {
        assert!(max_run > 0, "DotStuffer: a run of 0 bytes makes no progress");
        if self.len == usize::MAX {
            self.len = content.len();
            if self.bdat {
                let _ = write!(out, "BDAT {} LAST\r\n", bdat_len(content));
            }
        }
        assert_eq!(content.len(), self.len, "DotStuffer: content changed between calls");
        loop {
            if self.pos == self.len {
                if !self.done {
                    if !self.line_start {
                        out.extend_from_slice(b"\r\n");
                    }
                    if !self.bdat {
                        out.extend_from_slice(b".\r\n");
                    }
                    self.done = true;
                }
                return self.len..self.len;
            }
            let b = content[self.pos];
            if self.line_start && b == b'.' && !self.bdat {
                out.push(b'.'); // the dot itself starts the run below
            } else if b == b'\n' || (b == b'\r' && content.get(self.pos + 1) != Some(&b'\n')) {
                // Bare: a CRLF is never split between calls, so an LF here has no CR.
                out.extend_from_slice(b"\r\n");
                self.pos += 1;
                self.line_start = true;
                continue;
            }
            let start = self.pos;
            let end = self.len.min(start.saturating_add(max_run));
            // Fast path over whole chunks of plain lines; the rest line by line.
            self.pos += clean_prefix(&content[start..end], !self.bdat);
            while self.pos < end {
                let Some(k) = memchr2(b'\r', b'\n', &content[self.pos..end]) else {
                    self.pos = end;
                    break;
                };
                let j = self.pos + k;
                if content[j] != b'\r' || content.get(j + 1) != Some(&b'\n') {
                    self.pos = j; // bare: the next call writes its CRLF
                    break;
                }
                self.pos = j + 2;
                if content.get(self.pos) == Some(&b'.') && !self.bdat {
                    break; // a line-leading dot: the next call doubles it
                }
            }
            // The range is not empty (its first byte is no bare line ending). It ends at
            // a line start exactly when its last byte is the LF of a CRLF (bare LFs are
            // never inside a range).
            self.line_start = content[self.pos - 1] == b'\n';
            return start..self.pos;
        }
    }
}

/// Bytes `clean_prefix` checks at a time: it looks at most this far past a place where
/// something must be inserted, so content with one on every line is not scanned twice.
const CLEAN_CHUNK_BYTES: usize = 512;

/// Length of a prefix of `block` (whole chunks, at least one byte short of its end) that
/// `next_run` can send as it is: every CR in it is followed by LF, every LF preceded by CR
/// (the first byte is never a bare LF: `next_run` handled it), and, with `dots`, no LF in
/// it is followed by a dot. A prefix never ends between the CR and the LF of a CRLF.
/// Branch-free over each chunk, so the compiler vectorises it: per-line `memchr2` calls
/// cost more on ~70-byte lines (the outbound profile of issue 15).
fn clean_prefix(block: &[u8], dots: bool) -> usize {
    let mut done = 0;
    while block.len() - done > CLEAN_CHUNK_BYTES {
        // The chunk's bytes and the one after it, checked as pairs (x, next).
        let w = &block[done..=done + CLEAN_CHUNK_BYTES];
        let mut bad = 0u8;
        for (&x, &y) in w.iter().zip(&w[1..]) {
            // A CR not followed by LF, or an LF not preceded by CR.
            bad |= u8::from(x == b'\r') ^ u8::from(y == b'\n');
            bad |= u8::from(x == b'\n') & u8::from(y == b'.') & u8::from(dots);
        }
        if bad != 0 {
            break;
        }
        done += CLEAN_CHUNK_BYTES;
    }
    // A prefix must not end between the CR and the LF of a CRLF. It ends before that CR
    // rather than after the LF: the byte after the LF was not checked, and a dot there
    // starts a line and must be doubled (the line-by-line loop of `next_run` sees it).
    if done > 0 && block[done - 1] == b'\r' {
        done -= 1;
    }
    done
}

/// Length of the BDAT chunk for `content`: bare CR / bare LF count as CRLF, and a final
/// CRLF is added to non-empty content that does not end with a line ending.
pub(crate) fn bdat_len(content: &[u8]) -> u64 {
    let mut n = content.len() as u64;
    let mut i = 0;
    while let Some(k) = memchr2(b'\r', b'\n', &content[i..]) {
        let j = i + k;
        if content[j] == b'\r' && content.get(j + 1) == Some(&b'\n') {
            i = j + 2;
        } else {
            n += 1; // a bare CR or LF becomes two bytes
            i = j + 1;
        }
    }
    if content.last().is_some_and(|&b| b != b'\r' && b != b'\n') {
        n += 2;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::data::{BareLineEnding, DataScanner};
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
    fn a_piece_is_allocated_once_not_grown_line_by_line() {
        const LIMIT: usize = 64 * 1024;
        let line = b"La de da de da 1 da de da de da 2 da de da de da 3 da de da de da 4\r\n";
        let content: Vec<u8> = line.iter().copied().cycle().take(100 * 1024).collect();
        let mut st = DotStuffer::new();
        let mut out = Vec::new();
        st.fill(&content, &mut out, LIMIT);
        assert!(out.len() >= LIMIT && out.len() <= LIMIT + 5);
        // Grown by doubling from a line it would end at 128 KiB after copying itself 4 times.
        assert!(out.capacity() < LIMIT + LIMIT / 8, "capacity {}", out.capacity());
        let mut rest = Vec::new();
        st.fill(&content, &mut rest, LIMIT);
        assert!(st.is_done());
        assert!(rest.capacity() < content.len() - LIMIT + 4096, "capacity {}", rest.capacity());
        out.extend_from_slice(&rest);
        let mut whole = Vec::new();
        dot_stuff(&content, &mut whole);
        assert!(out == whole, "pieces equal the one-call encoding");
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
            let mut whole = Vec::new();
            dot_stuff(content, &mut whole);
            assert_eq!(whole, *want, "{:?} whole", String::from_utf8_lossy(content));
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

    /// BDAT-encode `content` in pieces; returns (header, chunk).
    fn encode_bdat(content: &[u8], limit: usize) -> (String, Vec<u8>) {
        let mut st = DotStuffer::bdat();
        let mut wire = Vec::new();
        while !st.is_done() {
            let before = wire.len();
            st.fill(content, &mut wire, before + limit);
        }
        let k = wire.iter().position(|&b| b == b'\n').unwrap() + 1;
        (String::from_utf8(wire[..k].to_vec()).unwrap(), wire[k..].to_vec())
    }

    #[test]
    fn bdat_table() {
        let cases: &[(&[u8], &str, &[u8])] = &[
            (b"", "BDAT 0 LAST\r\n", b""),
            (b"a", "BDAT 3 LAST\r\n", b"a\r\n"),
            (b".\r\n", "BDAT 3 LAST\r\n", b".\r\n"),
            (b"a\n.\r", "BDAT 6 LAST\r\n", b"a\r\n.\r\n"),
            (b"\r\n\r\n", "BDAT 4 LAST\r\n", b"\r\n\r\n"),
        ];
        for (content, header, chunk) in cases {
            for limit in 1..=8 {
                let got = encode_bdat(content, limit);
                assert_eq!((got.0.as_str(), got.1.as_slice()), (*header, *chunk), "{content:?}");
            }
        }
    }

    /// The wire invariants of a DATA encoding (the SMTP smuggling defence, outbound):
    /// every line ends in CRLF (no bare CR, no bare LF), every line that starts with a dot
    /// has it doubled but the final `.`, so `<CRLF>.<CRLF>` (counting the CRLF that ended
    /// the DATA command) occurs exactly once: at the very end.
    fn assert_wire_is_canonical(content: &[u8], wire: &[u8]) {
        let what = String::from_utf8_lossy(content);
        assert_only_crlf(wire);
        let mut framed = b"\r\n".to_vec(); // the DATA command's line ending
        framed.extend_from_slice(wire);
        let ends: Vec<usize> = framed
            .windows(5)
            .enumerate()
            .filter(|(_, w)| w == b"\r\n.\r\n")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ends, [framed.len() - 5], "end of data only at the end for {what:?}");
        let lines: Vec<&[u8]> = wire.split(|&b| b == b'\n').collect();
        let body = &lines[..lines.len() - 2]; // the last two: "." and "" after its LF
        for l in body {
            assert!(!l.starts_with(b".") || l.starts_with(b".."), "unstuffed {l:?} in {what:?}");
        }
    }

    /// Every CR in `wire` is followed by LF and every LF preceded by CR. (A BDAT chunk has
    /// no transparency dots: RFC 3030 §2; a lone-dot line in it is plain content.)
    fn assert_only_crlf(wire: &[u8]) {
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\r' {
                assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}: {wire:?}");
            }
            if b == b'\n' {
                assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i}: {wire:?}");
            }
        }
    }

    #[test]
    fn smuggling_sequences_go_out_canonical() {
        let cases: &[&[u8]] = &[
            b"a\n.\nMAIL FROM:<x@y>\r\n",
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\rMAIL FROM:<x@y>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y>",
            b"a\r\n.\nMAIL",
            b".\n",
            b".\r",
            b".",
            b"\r\n.\r\n",
            b"a\r\n.\r\n.\r\n",
            b"\r\r\n\n.\r",
        ];
        for content in cases {
            for limit in 1..=12 {
                assert_wire_is_canonical(content, &encode(content, limit));
            }
            let (_, chunk) = encode_bdat(content, 7);
            assert_only_crlf(&chunk);
        }
    }

    /// Encode with `next_run`: each call's inserted bytes, then its verbatim range.
    /// `fill_every`: every that-many calls use `fill` instead (the two share the state).
    fn encode_runs(
        mut st: DotStuffer,
        content: &[u8],
        max_run: usize,
        fill_every: usize,
    ) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut calls = 0;
        while !st.is_done() {
            calls += 1;
            assert!(calls < 10 * content.len() + 10, "no progress");
            if fill_every > 0 && calls % fill_every == 0 {
                let before = wire.len();
                st.fill(content, &mut wire, before + max_run);
                continue;
            }
            let r = st.next_run(content, &mut wire, max_run);
            assert!(r.len() <= max_run + 1, "run {r:?} for max {max_run}");
            assert_eq!(r.is_empty(), st.is_done(), "empty run {r:?} only at the end");
            wire.extend_from_slice(&content[r]);
        }
        let mut more = Vec::new();
        assert!(st.next_run(content, &mut more, max_run).is_empty() && more.is_empty());
        wire
    }

    #[test]
    fn runs_table() {
        // (content, max_run, the ranges of the calls)
        type Case<'a> = (&'a [u8], usize, &'a [std::ops::Range<usize>]);
        #[allow(clippy::single_range_in_vec_init)] // a list of ranges, one long here
        let cases: &[Case<'_>] = &[
            (b"", 8, &[0..0]),
            (b"ab\r\ncd\r\n", 64, &[0..8, 8..8]),
            (b"ab\r\ncd\r\n", 3, &[0..4, 4..8, 8..8]),
            (b"ab\r\n.cd\r\n", 64, &[0..4, 4..9, 9..9]),
            (b".a\nb", 64, &[0..2, 3..4, 4..4]),
            (b"a\rb\r", 64, &[0..1, 2..3, 4..4]),
            (b"\n\n.", 64, &[2..3, 3..3]),
        ];
        for (content, max_run, want) in cases {
            let mut st = DotStuffer::new();
            let mut out = Vec::new();
            let got: Vec<_> =
                want.iter().map(|_| st.next_run(content, &mut out, *max_run)).collect();
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(content));
            assert!(st.is_done());
        }
    }

    #[test]
    fn runs_table_matches_dot_stuff() {
        let cases: &[&[u8]] =
            &[b"", b"a", b".", b".\r\n", b"a\r\n.b", b"a\n.\n", b"a\r.", b"\r\n\r\n", b"\r\r\n\n."];
        for content in cases {
            let mut want = Vec::new();
            dot_stuff(content, &mut want);
            for max_run in 1..=8 {
                assert_eq!(encode_runs(DotStuffer::new(), content, max_run, 0), want);
                assert_eq!(
                    encode_runs(DotStuffer::bdat(), content, max_run, 0),
                    encode_runs(DotStuffer::bdat(), content, max_run, 1),
                );
            }
        }
    }

    /// A chunk of `clean_prefix` that ends between the CR and the LF of a line followed by
    /// a dot-led line: the dot is doubled (the fast path once sent it as it was, so a
    /// lone "." line ended the data early; found by `runs_give_the_same_wire_on_long_content`).
    #[test]
    fn a_dot_line_right_after_a_chunk_boundary_is_doubled() {
        let mut content = vec![b'a'; CLEAN_CHUNK_BYTES - 1];
        content.extend_from_slice(b"\r\n.\r\n");
        content.extend(std::iter::repeat_n(b'b', 600));
        content.extend_from_slice(b"\r\n");
        let mut want = Vec::new();
        dot_stuff(&content, &mut want);
        assert!(want.windows(5).filter(|w| w == b"\r\n.\r\n").count() == 1, "one end marker");
        for max_run in [CLEAN_CHUNK_BYTES + 10, 1 << 20] {
            assert_eq!(encode_runs(DotStuffer::new(), &content, max_run, 0), want);
        }
    }

    #[test]
    fn a_plain_message_is_one_run_per_bound() {
        let line = b"La de da de da 1 da de da de da 2 da de da de da 3 da de da de da 4\r\n";
        let content: Vec<u8> = line.iter().copied().cycle().take(100 * 1024).collect();
        let mut st = DotStuffer::new();
        let mut out = Vec::new();
        assert_eq!(st.next_run(&content, &mut out, 64 * 1024).len(), 64 * 1024);
        assert_eq!(st.next_run(&content, &mut out, 64 * 1024).len(), 36 * 1024);
        assert!(out.is_empty(), "nothing inserted: {out:?}");
        assert!(st.next_run(&content, &mut out, 64 * 1024).is_empty());
        assert_eq!(out, b"\r\n.\r\n", "100 KiB ends inside a line");
    }

    /// Content over the bytes that matter to transparency, plus any byte.
    fn smtp_content() -> impl Strategy<Value = Vec<u8>> {
        crate::smtp::test_bytes::smtp_bytes(200)
    }

    proptest! {
        /// No content byte string can put `<CRLF>.<CRLF>` on the wire before the real end
        /// of data, at any piece size; BDAT chunks hold only CRLF line ends.
        #[test]
        fn no_content_ends_the_data_early(
            content in smtp_content(),
            limit in 1usize..64,
        ) {
            assert_wire_is_canonical(&content, &encode(&content, limit));
            let (_, chunk) = encode_bdat(&content, limit);
            assert!(chunk.is_empty() || chunk.ends_with(b"\r\n"));
            assert_only_crlf(&chunk);
        }

        #[test]
        fn bdat_chunk_is_the_unstuffed_data(
            content in smtp_content(),
            limit in 1usize..64,
        ) {
            // What a DATA receiver stores (dot_stuff, then scan) is what BDAT sends.
            let mut wire = Vec::new();
            dot_stuff(&content, &mut wire);
            let mut stored = Vec::new();
            let mut sc = DataScanner::new(BareLineEnding::Normalize);
            let _ = sc.scan(&wire, &mut |b: &[u8]| stored.extend_from_slice(b));
            let (header, chunk) = encode_bdat(&content, limit);
            prop_assert_eq!(header, format!("BDAT {} LAST\r\n", chunk.len()));
            prop_assert_eq!(chunk.len() as u64, bdat_len(&content));
            prop_assert_eq!(chunk, stored);
        }

        /// Ranges of any bound, alone or mixed with `fill`, put the same bytes on the wire
        /// as `dot_stuff` (DATA) and as `fill` (BDAT).
        #[test]
        fn runs_give_the_same_wire(
            content in smtp_content(),
            max_run in 1usize..64,
            fill_every in 0usize..4,
        ) {
            let mut want = Vec::new();
            dot_stuff(&content, &mut want);
            prop_assert_eq!(encode_runs(DotStuffer::new(), &content, max_run, fill_every), want);
            let bdat = encode_runs(DotStuffer::bdat(), &content, max_run, fill_every);
            let (header, chunk) = encode_bdat(&content, max_run);
            prop_assert_eq!(bdat, [header.as_bytes(), &chunk].concat());
        }

        /// The same on content of many lines (the chunked fast path of `next_run`), at
        /// bounds around and far above its chunk size.
        #[test]
        fn runs_give_the_same_wire_on_long_content(
            lines in proptest::collection::vec((0usize..120, 0u8..40), 0..80),
            max_run in prop_oneof![1usize..64, 500usize..530, Just(1025usize), Just(1 << 20)],
            fill_every in 0usize..3,
        ) {
            let mut content = Vec::new();
            for (i, (len, kind)) in lines.iter().enumerate() {
                if *kind == 0 {
                    content.push(b'.');
                }
                content.extend((0..*len).map(|k| b'a' + ((i + k) % 26) as u8));
                content.extend_from_slice(match kind {
                    1 => b"\n",
                    2 => b"\r",
                    3 => b"",
                    _ => b"\r\n",
                });
            }
            let mut want = Vec::new();
            dot_stuff(&content, &mut want);
            prop_assert_eq!(encode_runs(DotStuffer::new(), &content, max_run, fill_every), want);
            let bdat = encode_runs(DotStuffer::bdat(), &content, max_run, fill_every);
            let (header, chunk) = encode_bdat(&content, max_run.min(4096));
            prop_assert_eq!(bdat, [header.as_bytes(), &chunk].concat());
        }

        /// Pieces of any size put the same bytes on the wire as one unbounded call.
        #[test]
        fn any_piece_size_gives_the_whole(
            content in smtp_content(),
            limit in 1usize..64,
        ) {
            let mut want = Vec::new();
            dot_stuff(&content, &mut want);
            prop_assert_eq!(encode(&content, limit), want);
        }
    }
}
