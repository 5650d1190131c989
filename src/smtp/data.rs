//! Streaming DATA scanner and BDAT chunk counter.
//!
//! `DataScanner` turns the bytes that follow a `354` into message content: it finds the end
//! of data, removes the transparency dots and deals with bare CR / bare LF, handing the
//! content to a callback as slices *borrowed from the input* (zero-copy). It never
//! allocates and carries at most one state byte between calls, so the input may be split
//! at any byte and the output is the same.
//!
//! TRUST: the input is raw peer bytes. Nothing but `<CRLF>.<CRLF>` ends the data: `\n.\n`,
//! `\n.\r\n`, `\r.\r\n` and `\r\n.\r<text>` are content (SMTP smuggling defence). The data
//! begins right after the DATA command's CRLF, so a `.` as the very first byte is at the
//! start of a line.
//!
//! Definitions used below: a *line start* is the first byte of the data or the byte after
//! a CRLF pair. Bare CR and bare LF never start a line: they are content (normalised to
//! CRLF, or remembered for a `554 5.6.0` under `BareLineEnding::Reject`); a dot after them
//! is kept as is. A dot at a line start is removed unless it is followed by CRLF (which
//! ends the data): RFC 5321 §4.5.2 "if the first character is a period and there are other
//! characters on the line, the first character is deleted".
//!
//! STANDARDS: RFC 5321 §4.1.1.4 (end of data), §4.5.2 (transparency), §2.3.8 (lines end in
//! CRLF); RFC 3030 §2 (BDAT chunks are counted octets, never scanned).

use memchr::memchr2;

/// What to do with a CR not followed by LF, or an LF not preceded by CR, in message content.
/// In configuration files it is spelled `"normalize"` or `"reject"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEnding {
    /// Store the bare CR / bare LF as CRLF (lenient, the default).
    #[default]
    Normalize,
    /// Remember it; the session answers `554 5.6.0` at the end of data and stores nothing.
    /// Content is passed through unchanged until then.
    Reject,
}

impl BareLineEnding {
    /// The spelling used in the configuration file (`"normalize"` or `"reject"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BareLineEnding::Normalize => "normalize",
            BareLineEnding::Reject => "reject",
        }
    }
}

/// Scanner position between two input bytes. Each variant stands for bytes it has consumed
/// but not yet emitted (at most a dot and a CR), which is all the state carried over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pos {
    /// At a line start (start of data or just after CRLF); nothing withheld.
    LineStart,
    /// Just after a dot at a line start; the dot is withheld.
    Dot,
    /// Just after `.` `\r` at a line start; both withheld.
    DotCr,
    /// Inside a line; nothing withheld.
    Mid,
    /// Inside a line just after a CR; the CR is withheld until we see what follows.
    Cr,
    /// `<CRLF>.<CRLF>` seen; the scanner consumes nothing more.
    Done,
}

/// Streaming scanner for DATA content (see the module docs for the exact rules).
#[derive(Clone, Debug)]
pub struct DataScanner {
    /// Policy for bare CR / bare LF.
    policy: BareLineEnding,
    /// Where we are; see `Pos`.
    pos: Pos,
    /// A bare CR or bare LF was seen in the content so far.
    saw_bare: bool,
}

/// Emitted in place of a bare CR or bare LF under `Normalize`.
const CRLF: &[u8] = b"\r\n";
/// Emitted for a withheld CR (start of a CRLF pair, or a bare CR kept under `Reject`).
const CR: &[u8] = b"\r";

impl DataScanner {
    /// A scanner positioned at the start of the data (just after the DATA line's CRLF).
    pub fn new(policy: BareLineEnding) -> Self {
        DataScanner { policy, pos: Pos::LineStart, saw_bare: false }
    }

    /// True once a bare CR or bare LF was seen in the content (under either policy).
    #[must_use]
    pub fn saw_bare_line_ending(&self) -> bool {
        self.saw_bare
    }

    /// True once `<CRLF>.<CRLF>` was consumed.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.pos == Pos::Done
    }

    /// Scan `input`, calling `emit` with the content (unstuffed, line endings handled) in
    /// order. Returns `(bytes consumed, finished)`. Until the end marker is found the whole
    /// input is consumed; once it is, the bytes after it (pipelined commands) are left.
    /// Empty slices are never emitted.
    pub fn scan(&mut self, input: &[u8], emit: &mut impl FnMut(&[u8])) -> (usize, bool) {
        let normalize = self.policy == BareLineEnding::Normalize;
        // Replacement for a bare CR / bare LF that has to be emitted out of line.
        let bare_cr: &[u8] = if normalize { CRLF } else { CR };
        // Invariant: input[run..i] is verbatim content not yet emitted.
        let mut run = 0;
        let mut i = 0;
        while i < input.len() {
            match self.pos {
                Pos::Done => return (i, true),
                Pos::LineStart => {
                    if input[i] == b'.' {
                        flush(emit, &input[run..i]);
                        i += 1;
                        run = i;
                        self.pos = Pos::Dot;
                    } else {
                        self.pos = Pos::Mid;
                    }
                }
                Pos::Dot => {
                    if input[i] == b'\r' {
                        i += 1;
                        run = i;
                        self.pos = Pos::DotCr;
                    } else {
                        // Transparency dot: dropped (it is before `run`); reprocess this byte.
                        self.pos = Pos::Mid;
                    }
                }
                Pos::DotCr => {
                    if input[i] == b'\n' {
                        self.pos = Pos::Done;
                        return (i + 1, true);
                    }
                    // `.` `\r` <other>: the dot was stuffing, the CR is bare.
                    self.pos = Pos::Cr;
                }
                Pos::Cr => {
                    // The withheld CR is not in `input[run..]`: emit it (or its replacement).
                    flush(emit, &input[run..i]);
                    run = i;
                    if input[i] == b'\n' {
                        emit(CR); // the LF joins the run
                        i += 1;
                        self.pos = Pos::LineStart;
                    } else {
                        self.saw_bare = true;
                        emit(bare_cr);
                        self.pos = Pos::Mid; // reprocess this byte
                    }
                }
                Pos::Mid => match memchr2(b'\r', b'\n', &input[i..]) {
                    None => i = input.len(),
                    Some(k) => {
                        let j = i + k;
                        let next = input.get(j + 1).copied();
                        if input[j] == b'\r' && next == Some(b'\n') {
                            i = j + 2;
                            self.pos = Pos::LineStart;
                        } else if input[j] == b'\r' && next.is_none() {
                            // CR is the last byte: withhold it until we see the next one.
                            flush(emit, &input[run..j]);
                            i = j + 1;
                            run = i;
                            self.pos = Pos::Cr;
                        } else {
                            // Bare LF, or bare CR followed by more content in this input.
                            self.saw_bare = true;
                            if normalize {
                                flush(emit, &input[run..j]);
                                emit(CRLF);
                                run = j + 1;
                            }
                            i = j + 1;
                        }
                    }
                },
            }
        }
        flush(emit, &input[run..]);
        (input.len(), self.pos == Pos::Done)
    }
}

/// Emit `bytes` unless empty.
fn flush(emit: &mut impl FnMut(&[u8]), bytes: &[u8]) {
    if !bytes.is_empty() {
        emit(bytes);
    }
}

/// Counts the octets of one BDAT chunk (RFC 3030 §2): the chunk is exactly `n` octets,
/// never scanned for anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkCounter {
    /// Octets of the chunk not yet consumed.
    remaining: u64,
}

impl ChunkCounter {
    /// A counter for a chunk of `chunk_bytes` octets.
    pub fn new(chunk_bytes: u64) -> Self {
        ChunkCounter { remaining: chunk_bytes }
    }

    /// Split off the part of `input` that belongs to the chunk (maybe all of it, maybe
    /// empty) and count it.
    pub fn take<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let n = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        self.remaining -= n as u64;
        &input[..n]
    }

    /// Octets still expected.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The whole chunk was consumed.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}

/// Write `content` as DATA transparency requires (RFC 5321 §4.5.2), followed by the end
/// marker: bare CR and bare LF become CRLF, a dot at a line start is doubled, a final
/// CRLF is added if `content` is not empty and does not end with one, then `.\r\n`.
///
/// For content made of CRLF-terminated lines, `DataScanner` gives back exactly `content`.
pub fn dot_stuff(content: &[u8], out: &mut Vec<u8>) {
    out.reserve(content.len() + content.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < content.len() {
        if line_start && content[i] == b'.' {
            out.push(b'.');
        }
        // Copy up to and including the next CR or LF.
        match memchr2(b'\r', b'\n', &content[i..]) {
            None => {
                out.extend_from_slice(&content[i..]);
                line_start = false;
                i = content.len();
            }
            Some(k) => {
                let j = i + k;
                out.extend_from_slice(&content[i..j]);
                out.extend_from_slice(CRLF);
                i = if content[j] == b'\r' && content.get(j + 1) == Some(&b'\n') {
                    j + 2
                } else {
                    j + 1
                };
                line_start = true;
            }
        }
    }
    if !line_start {
        out.extend_from_slice(CRLF);
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Scan `input` whole; returns (content, consumed, finished, saw_bare).
    fn run(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, usize, bool, bool) {
        let mut sc = DataScanner::new(policy);
        let mut out = Vec::new();
        let (n, fin) = sc.scan(input, &mut |b: &[u8]| {
            assert!(!b.is_empty());
            out.extend_from_slice(b)
        });
        (out, n, fin, sc.saw_bare_line_ending())
    }

    /// Scan `input` fed in pieces of the given sizes (the last piece takes the rest).
    fn run_split(policy: BareLineEnding, input: &[u8], cuts: &[usize]) -> (Vec<u8>, usize, bool) {
        let mut sc = DataScanner::new(policy);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut rest = input;
        for &c in cuts {
            let c = c.min(rest.len());
            pieces.push(&rest[..c]);
            rest = &rest[c..];
        }
        pieces.push(rest);
        for p in pieces {
            let (n, fin) = sc.scan(p, &mut |b: &[u8]| out.extend_from_slice(b));
            pos += n;
            if fin {
                return (out, pos, true);
            }
            assert_eq!(n, p.len());
        }
        (out, pos, false)
    }

    /// Byte-at-a-time model of the module rules, for comparison.
    fn model(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, Option<usize>, bool) {
        let mut out = Vec::new();
        let (mut i, mut line_start, mut saw) = (0, true, false);
        while i < input.len() {
            if line_start && input[i..].starts_with(b".\r\n") {
                return (out, Some(i + 3), saw);
            }
            if line_start && input[i] == b'.' {
                i += 1;
                line_start = false;
                continue;
            }
            line_start = false;
            let c = input[i];
            if c == b'\r' && input.get(i + 1) == Some(&b'\n') {
                out.extend_from_slice(b"\r\n");
                i += 2;
                line_start = true;
            } else if c == b'\r' || c == b'\n' {
                saw = true;
                match policy {
                    BareLineEnding::Normalize => out.extend_from_slice(b"\r\n"),
                    BareLineEnding::Reject => out.push(c),
                }
                i += 1;
            } else {
                out.push(c);
                i += 1;
            }
        }
        (out, None, saw)
    }

    #[test]
    fn table() {
        use BareLineEnding::{Normalize as N, Reject as R};
        // (policy, input, content, consumed, finished, saw_bare)
        type Case = (BareLineEnding, &'static [u8], &'static [u8], usize, bool, bool);
        let cases: &[Case] = &[
            (N, b".\r\n", b"", 3, true, false),
            (N, b".\r\nMAIL", b"", 3, true, false),
            (N, b"a\r\n.\r\nQUIT\r\n", b"a\r\n", 6, true, false),
            (N, b"..x\r\n.\r\n", b".x\r\n", 8, true, false),
            (N, b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n", 10, true, false),
            (N, b".a\r\n.\r\n", b"a\r\n", 7, true, false),
            (N, b"a\r\nb", b"a\r\nb", 4, false, false),
            // Smuggling variants: all content, none ends the data.
            (N, b"a\n.\nMAIL", b"a\r\n.\r\nMAIL", 8, false, true),
            (N, b"a\n.\r\nMAIL", b"a\r\n.\r\nMAIL", 9, false, true),
            (N, b"a\r.\r\nMAIL", b"a\r\n.\r\nMAIL", 9, false, true),
            (N, b"a\r\n.\rMAIL", b"a\r\n\r\nMAIL", 9, false, true),
            (R, b"a\n.\nMAIL", b"a\n.\nMAIL", 8, false, true),
            (R, b"a\r\n.\rMAIL", b"a\r\n\rMAIL", 9, false, true),
            // Bare endings.
            (N, b"a\nb\r\n.\r\n", b"a\r\nb\r\n", 8, true, true),
            (N, b"a\rb\r\n.\r\n", b"a\r\nb\r\n", 8, true, true),
            (N, b"a\r\r\n.\r\n", b"a\r\n\r\n", 7, true, true),
            (R, b"a\nb\r\n.\r\n", b"a\nb\r\n", 8, true, true),
            (N, b"\n.\r\n.\r\n", b"\r\n.\r\n", 7, true, true),
            // NUL and 8-bit bytes are content.
            (N, b"\0\xff\r\n.\r\n", b"\0\xff\r\n", 7, true, false),
        ];
        for (i, (pol, input, want, n, fin, bare)) in cases.iter().enumerate() {
            let got = run(*pol, input);
            assert_eq!(
                (got.0.as_slice(), got.1, got.2, got.3),
                (*want, *n, *fin, *bare),
                "case {i}: {:?}",
                String::from_utf8_lossy(input)
            );
            // Every two-piece split gives the same content.
            for cut in 0..=input.len() {
                let (c, m, f) = run_split(*pol, input, &[cut]);
                assert_eq!((c.as_slice(), m, f), (*want, *n, *fin), "case {i} cut {cut}");
            }
        }
    }

    #[test]
    fn withholds_at_most_a_dot_and_a_cr() {
        let mut sc = DataScanner::new(BareLineEnding::Normalize);
        let mut out = Vec::new();
        assert_eq!(sc.scan(b"ab\r", &mut |b: &[u8]| out.extend_from_slice(b)), (3, false));
        assert_eq!(out, b"ab");
        assert_eq!(sc.scan(b"\n.", &mut |b: &[u8]| out.extend_from_slice(b)), (2, false));
        assert_eq!(out, b"ab\r\n");
        assert_eq!(sc.scan(b"\r", &mut |b: &[u8]| out.extend_from_slice(b)), (1, false));
        assert_eq!(sc.scan(b"\nX", &mut |b: &[u8]| out.extend_from_slice(b)), (1, true));
        assert_eq!(out, b"ab\r\n");
        assert!(sc.is_finished());
        assert_eq!(sc.scan(b"X", &mut |_: &[u8]| panic!()), (0, true));
    }

    #[test]
    fn dot_stuff_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n"),
            (b"a\n.\n", b"a\r\n..\r\n.\r\n"),
            (b"a\r.", b"a\r\n..\r\n.\r\n"),
        ];
        for (content, want) in cases {
            let mut out = Vec::new();
            dot_stuff(content, &mut out);
            assert_eq!(out, *want, "{:?}", String::from_utf8_lossy(content));
        }
    }

    #[test]
    fn policy_names() {
        let p: BareLineEnding = serde_json::from_str("\"reject\"").unwrap();
        assert_eq!(p, BareLineEnding::Reject);
        assert_eq!(serde_json::to_string(&BareLineEnding::Normalize).unwrap(), "\"normalize\"");
    }

    #[test]
    fn chunk_counter() {
        let mut c = ChunkCounter::new(5);
        assert_eq!(c.take(b"abc"), b"abc");
        assert_eq!(c.remaining(), 2);
        assert_eq!(c.take(b"defg"), b"de");
        assert!(c.is_done());
        assert_eq!(c.take(b"x"), b"");
        let mut big = ChunkCounter::new(u64::MAX);
        assert_eq!(big.take(b"xy"), b"xy");
        assert_eq!(big.remaining(), u64::MAX - 2);
    }

    /// Content made of CRLF-terminated lines over an alphabet rich in dots and line ends.
    fn crlf_lines() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![Just(b'.'), Just(b'a'), Just(0u8), any::<u8>()],
                0..8,
            )
            .prop_map(|l| l.into_iter().filter(|&b| b != b'\r' && b != b'\n').collect::<Vec<u8>>()),
            0..12,
        )
        .prop_map(|lines| {
            let mut v = Vec::new();
            for l in lines {
                v.extend_from_slice(&l);
                v.extend_from_slice(b"\r\n");
            }
            v
        })
    }

    fn smtp_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
            0..64,
        )
    }

    proptest! {
        #[test]
        fn stuff_then_scan_is_identity(content in crlf_lines(), cuts in proptest::collection::vec(0usize..16, 0..6)) {
            let mut wire = Vec::new();
            dot_stuff(&content, &mut wire);
            let wire_len = wire.len();
            wire.extend_from_slice(b"MAIL FROM:<>\r\n");
            let (out, n, fin, bare) = run(BareLineEnding::Normalize, &wire);
            prop_assert!(fin && !bare);
            prop_assert_eq!(n, wire_len);
            prop_assert_eq!(&out, &content);
            let (out2, n2, fin2) = run_split(BareLineEnding::Normalize, &wire, &cuts);
            prop_assert_eq!((out2, n2, fin2), (content, wire_len, true));
        }

        #[test]
        fn matches_model_and_any_split(
            body in smtp_bytes(),
            reject in any::<bool>(),
            cuts in proptest::collection::vec(0usize..12, 0..8),
        ) {
            let policy = if reject { BareLineEnding::Reject } else { BareLineEnding::Normalize };
            let mut input = body;
            input.extend_from_slice(b"\r\n.\r\nNOOP\r\n");
            let (want, end, saw) = model(policy, &input);
            let (out, n, fin, bare) = run(policy, &input);
            prop_assert_eq!(Some(n), end);
            prop_assert!(fin);
            prop_assert_eq!(bare, saw);
            prop_assert_eq!(&out, &want);
            let (out2, n2, fin2) = run_split(policy, &input, &cuts);
            prop_assert_eq!((out2, n2, fin2), (want, n, true));
        }
    }
}
