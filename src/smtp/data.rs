//! Streaming DATA scanner, the line-ending check for undotted content, and the BDAT chunk
//! counter.
//!
//! `DataScanner` turns the bytes that follow a `354` into message content: it finds the end
//! of data, removes the transparency dots and deals with bare CR / bare LF, handing the
//! content to a callback as slices *borrowed from the input* (zero-copy). It never
//! allocates and carries at most one state byte between calls, so the input may be split
//! at any byte and the output is the same. `LineCheck` applies the same line-ending rules
//! to content that is not dot-stuffed (BDAT chunks, Pickup files) without copying it.
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
//! *End-of-data look-alike* (SMTP smuggling, CVE-2023-51764/51765/51766): a line that is a
//! single `.` — as sent, or after its stuffing dot is removed — with a bare CR or bare LF
//! right before it or as its own ending: `\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r`,
//! `\r\n.\n`, `\r\n..\n`, `\r.\r` and the like. A lax receiver takes such a line for the
//! end of the data; normalising its bare ending to CRLF would store a real lone-dot line
//! that the client never sent as one, followed by whatever the client hid after it. Both
//! scanners report it (`saw_end_of_data_lookalike`) so the message can be refused under
//! either policy; an ordinary bare line ending is not a look-alike.
//!
//! STANDARDS: RFC 5321 §4.1.1.4 (end of data), §4.5.2 (transparency), §2.3.8 (lines end in
//! CRLF); RFC 3030 §2 (BDAT chunks are counted octets, never scanned for an end marker).

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
    /// Just after `..` at a line start: the content line so far is a single `.` (the
    /// first dot was stuffing and is dropped, the second is content); nothing withheld.
    StuffedDot,
    /// Inside a line, just after a bare CR or bare LF (already emitted); nothing withheld.
    AfterBare,
    /// Just after a bare line ending and a `.` (the dot is content); nothing withheld.
    AfterBareDot,
    /// Inside a line; nothing withheld.
    Mid,
    /// Inside a line just after a CR; the CR is withheld until we see what follows.
    /// `lone_dot`: the content line before the CR is exactly `.`.
    Cr { lone_dot: bool },
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
    /// An end-of-data look-alike (see the module docs) was seen in the content so far.
    saw_lookalike: bool,
}

/// Emitted in place of a bare CR or bare LF under `Normalize`.
const CRLF: &[u8] = b"\r\n";
/// Emitted for a withheld CR (start of a CRLF pair, or a bare CR kept under `Reject`).
const CR: &[u8] = b"\r";

impl DataScanner {
    /// A scanner positioned at the start of the data (just after the DATA line's CRLF).
    pub fn new(policy: BareLineEnding) -> Self {
        DataScanner { policy, pos: Pos::LineStart, saw_bare: false, saw_lookalike: false }
    }

    /// True once a bare CR or bare LF was seen in the content (under either policy).
    #[must_use]
    pub fn saw_bare_line_ending(&self) -> bool {
        self.saw_bare
    }

    /// True once the content held an end-of-data look-alike: a line that is a single `.`
    /// (before or after dot-unstuffing) with a bare CR or bare LF right before or after it.
    /// Such a message must be refused whatever the bare line ending policy (SMTP smuggling).
    #[must_use]
    pub fn saw_end_of_data_lookalike(&self) -> bool {
        self.saw_lookalike
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
                Pos::Dot => match input[i] {
                    b'\r' => {
                        i += 1;
                        run = i;
                        self.pos = Pos::DotCr;
                    }
                    b'.' => {
                        // `..`: the first dot was stuffing; the second is content (in the run).
                        i += 1;
                        self.pos = Pos::StuffedDot;
                    }
                    b => {
                        // `.` then a bare LF is a look-alike (`<CRLF>.<LF>`). Otherwise the
                        // dot was stuffing (dropped: it is before `run`). Reprocess the byte.
                        self.saw_lookalike |= b == b'\n';
                        self.pos = Pos::Mid;
                    }
                },
                Pos::DotCr => {
                    if input[i] == b'\n' {
                        self.pos = Pos::Done;
                        return (i + 1, true);
                    }
                    // `.` `\r` <other>: a lone dot ended by a bare CR (`<CRLF>.<CR>`).
                    self.saw_lookalike = true;
                    self.pos = Pos::Cr { lone_dot: false };
                }
                Pos::StuffedDot => match input[i] {
                    b'\r' => {
                        flush(emit, &input[run..i]);
                        i += 1;
                        run = i;
                        self.pos = Pos::Cr { lone_dot: true };
                    }
                    b => {
                        // Content line `.` ended by a bare LF: a look-alike once normalised.
                        self.saw_lookalike |= b == b'\n';
                        self.pos = Pos::Mid;
                    }
                },
                Pos::AfterBare => {
                    if input[i] == b'.' {
                        i += 1; // content: stays in the run
                        self.pos = Pos::AfterBareDot;
                    } else {
                        self.pos = Pos::Mid;
                    }
                }
                Pos::AfterBareDot => {
                    // A lone dot after a bare line ending, ended by any line ending.
                    self.saw_lookalike |= input[i] == b'\r' || input[i] == b'\n';
                    self.pos = Pos::Mid;
                }
                Pos::Cr { lone_dot } => {
                    // The withheld CR is not in `input[run..]`: emit it (or its replacement).
                    flush(emit, &input[run..i]);
                    run = i;
                    if input[i] == b'\n' {
                        emit(CR); // the LF joins the run
                        i += 1;
                        self.pos = Pos::LineStart;
                    } else {
                        self.saw_bare = true;
                        self.saw_lookalike |= lone_dot;
                        emit(bare_cr);
                        self.pos = Pos::AfterBare; // reprocess this byte
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
                            self.pos = Pos::Cr { lone_dot: false };
                        } else {
                            // Bare LF, or bare CR followed by more content in this input.
                            self.saw_bare = true;
                            if normalize {
                                flush(emit, &input[run..j]);
                                emit(CRLF);
                                run = j + 1;
                            }
                            i = j + 1;
                            self.pos = Pos::AfterBare;
                        }
                    }
                },
            }
        }
        flush(emit, &input[run..]);
        (input.len(), self.pos == Pos::Done)
    }
}

/// Streaming line-ending check for content that is not dot-stuffed: BDAT chunks (RFC 3030)
/// and Pickup files. It passes nothing on and copies nothing; it remembers whether a bare
/// CR or bare LF was seen, and whether a line made of a single `.` had a bare CR or bare LF
/// right before or after it (an end-of-data look-alike, see the module docs). The start of
/// the content counts as a CRLF. The input may be split at any byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineCheck {
    /// The line ending before the current line was a bare CR or bare LF.
    prev_bare: bool,
    /// What the current line holds so far.
    line: LineSoFar,
    /// The last byte fed was a CR whose partner (LF or not) is not known yet.
    pending_cr: bool,
    /// A bare CR or bare LF was seen.
    saw_bare: bool,
    /// An end-of-data look-alike was seen.
    saw_lookalike: bool,
}

/// The current line of a `LineCheck`, as far as the look-alike rule cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LineSoFar {
    /// Nothing yet.
    #[default]
    Empty,
    /// Exactly `.`.
    Dot,
    /// Anything else.
    Other,
}

impl LineCheck {
    /// A check positioned at the start of the content.
    #[must_use]
    pub fn new() -> Self {
        LineCheck::default()
    }

    /// Check the next `input` bytes of the content.
    pub fn feed(&mut self, input: &[u8]) {
        let mut i = 0;
        if self.pending_cr {
            let Some(&first) = input.first() else { return };
            self.pending_cr = false;
            self.line_end(first != b'\n');
            if first == b'\n' {
                i = 1;
            }
        }
        while i < input.len() {
            let Some(k) = memchr2(b'\r', b'\n', &input[i..]) else {
                self.extend(&input[i..]);
                return;
            };
            let j = i + k;
            self.extend(&input[i..j]);
            match (input[j], input.get(j + 1)) {
                (b'\r', None) => {
                    self.pending_cr = true;
                    return;
                }
                (b'\r', Some(b'\n')) => {
                    self.line_end(false);
                    i = j + 2;
                }
                _ => {
                    self.line_end(true);
                    i = j + 1;
                }
            }
        }
    }

    /// The content ended: a CR still pending is bare, and a last line `.` (no line ending)
    /// right after a bare line ending is a look-alike (the next hop gets it with a CRLF).
    pub fn finish(&mut self) {
        if self.pending_cr {
            self.pending_cr = false;
            self.line_end(true);
        } else if self.line == LineSoFar::Dot && self.prev_bare {
            self.saw_lookalike = true;
        }
    }

    /// True once a bare CR or bare LF was seen.
    #[must_use]
    pub fn saw_bare_line_ending(&self) -> bool {
        self.saw_bare
    }

    /// True once an end-of-data look-alike was seen.
    #[must_use]
    pub fn saw_end_of_data_lookalike(&self) -> bool {
        self.saw_lookalike
    }

    /// Add bytes (no CR or LF among them) to the current line.
    fn extend(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.line = match (self.line, bytes) {
                (LineSoFar::Empty, b".") => LineSoFar::Dot,
                _ => LineSoFar::Other,
            };
        }
    }

    /// The current line ends with a bare CR / bare LF (`bare`) or a CRLF.
    fn line_end(&mut self, bare: bool) {
        self.saw_bare |= bare;
        self.saw_lookalike |= self.line == LineSoFar::Dot && (bare || self.prev_bare);
        self.prev_bare = bare;
        self.line = LineSoFar::Empty;
    }
}

/// True if `content` (not dot-stuffed: a Pickup file, a whole BDAT message) holds an
/// end-of-data look-alike (see `LineCheck`).
#[must_use]
pub fn has_end_of_data_lookalike(content: &[u8]) -> bool {
    let mut check = LineCheck::new();
    check.feed(content);
    check.finish();
    check.saw_end_of_data_lookalike()
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

    /// Scan `input` whole; returns (content, consumed, finished, saw_bare, saw_lookalike).
    fn run(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, usize, bool, bool, bool) {
        let mut sc = DataScanner::new(policy);
        let mut out = Vec::new();
        let (n, fin) = sc.scan(input, &mut |b: &[u8]| {
            assert!(!b.is_empty());
            out.extend_from_slice(b)
        });
        (out, n, fin, sc.saw_bare_line_ending(), sc.saw_end_of_data_lookalike())
    }

    /// Scan `input` fed in pieces of the given sizes (the last piece takes the rest);
    /// returns (content, consumed, finished, saw_lookalike).
    fn run_split(
        policy: BareLineEnding,
        input: &[u8],
        cuts: &[usize],
    ) -> (Vec<u8>, usize, bool, bool) {
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
                return (out, pos, true, sc.saw_end_of_data_lookalike());
            }
            assert_eq!(n, p.len());
        }
        (out, pos, false, sc.saw_end_of_data_lookalike())
    }

    /// Byte-at-a-time model of the module rules, for comparison: (content, end of data,
    /// saw_bare, saw_lookalike). A look-alike is a raw line or an unstuffed content line
    /// equal to `.` whose ending, or the ending before it, is bare.
    fn model(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, Option<usize>, bool, bool) {
        let mut out = Vec::new();
        let (mut i, mut line_start, mut saw) = (0, true, false);
        let (mut raw_line, mut content_line) = (Vec::new(), Vec::new());
        let (mut prev_bare, mut look) = (false, false);
        let mut line_end = |bare: bool, raw: &mut Vec<u8>, content: &mut Vec<u8>| {
            if (raw.as_slice() == b"." || content.as_slice() == b".") && (bare || prev_bare) {
                look = true;
            }
            prev_bare = bare;
            raw.clear();
            content.clear();
        };
        while i < input.len() {
            if line_start && input[i..].starts_with(b".\r\n") {
                return (out, Some(i + 3), saw, look);
            }
            if line_start && input[i] == b'.' {
                raw_line.push(b'.');
                i += 1;
                line_start = false;
                continue;
            }
            line_start = false;
            let c = input[i];
            if c == b'\r' && input.get(i + 1) == Some(&b'\n') {
                line_end(false, &mut raw_line, &mut content_line);
                out.extend_from_slice(b"\r\n");
                i += 2;
                line_start = true;
            } else if c == b'\r' || c == b'\n' {
                saw = true;
                line_end(true, &mut raw_line, &mut content_line);
                match policy {
                    BareLineEnding::Normalize => out.extend_from_slice(b"\r\n"),
                    BareLineEnding::Reject => out.push(c),
                }
                i += 1;
            } else {
                out.push(c);
                raw_line.push(c);
                content_line.push(c);
                i += 1;
            }
        }
        (out, None, saw, look)
    }

    #[test]
    fn table() {
        use BareLineEnding::{Normalize as N, Reject as R};
        // (policy, input, content, consumed, finished, saw_bare, saw_lookalike)
        type Case = (BareLineEnding, &'static [u8], &'static [u8], usize, bool, bool, bool);
        let cases: &[Case] = &[
            (N, b".\r\n", b"", 3, true, false, false),
            (N, b".\r\nMAIL", b"", 3, true, false, false),
            (N, b"a\r\n.\r\nQUIT\r\n", b"a\r\n", 6, true, false, false),
            (N, b"..x\r\n.\r\n", b".x\r\n", 8, true, false, false),
            (N, b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n", 10, true, false, false),
            (N, b".a\r\n.\r\n", b"a\r\n", 7, true, false, false),
            (N, b"a\r\nb", b"a\r\nb", 4, false, false, false),
            // Smuggling variants: all content, none ends the data, every one a look-alike.
            (N, b"a\n.\nMAIL", b"a\r\n.\r\nMAIL", 8, false, true, true),
            (N, b"a\n.\r\nMAIL", b"a\r\n.\r\nMAIL", 9, false, true, true),
            (N, b"a\r.\r\nMAIL", b"a\r\n.\r\nMAIL", 9, false, true, true),
            (N, b"a\r.\rMAIL", b"a\r\n.\r\nMAIL", 8, false, true, true),
            (N, b"a\r\n.\rMAIL", b"a\r\n\r\nMAIL", 9, false, true, true),
            (N, b"a\r\n.\nMAIL", b"a\r\n\r\nMAIL", 9, false, true, true),
            (N, b"a\r\n..\nMAIL", b"a\r\n.\r\nMAIL", 10, false, true, true),
            (N, b"a\r\n..\rMAIL", b"a\r\n.\r\nMAIL", 10, false, true, true),
            (N, b"a\r\n.\r\r\nMAIL", b"a\r\n\r\n\r\nMAIL", 11, false, true, true),
            (N, b".\nMAIL", b"\r\nMAIL", 6, false, true, true),
            (N, b"a\n\n.\nb", b"a\r\n\r\n.\r\nb", 6, false, true, true),
            (R, b"a\n.\nMAIL", b"a\n.\nMAIL", 8, false, true, true),
            (R, b"a\r\n.\rMAIL", b"a\r\n\rMAIL", 9, false, true, true),
            // Dots near bare endings that are not look-alikes.
            (N, b"a\n..\nb\r\n.\r\n", b"a\r\n..\r\nb\r\n", 11, true, true, false),
            (N, b"a\n.x\nb\r\n.\r\n", b"a\r\n.x\r\nb\r\n", 11, true, true, false),
            (N, b"a\r\n.x\nb\r\n.\r\n", b"a\r\nx\r\nb\r\n", 12, true, true, false),
            (N, b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n", 10, true, false, false),
            // Bare endings.
            (N, b"a\nb\r\n.\r\n", b"a\r\nb\r\n", 8, true, true, false),
            (N, b"a\rb\r\n.\r\n", b"a\r\nb\r\n", 8, true, true, false),
            (N, b"a\r\r\n.\r\n", b"a\r\n\r\n", 7, true, true, false),
            (R, b"a\nb\r\n.\r\n", b"a\nb\r\n", 8, true, true, false),
            (N, b"\n.\r\n.\r\n", b"\r\n.\r\n", 7, true, true, true),
            // NUL and 8-bit bytes are content.
            (N, b"\0\xff\r\n.\r\n", b"\0\xff\r\n", 7, true, false, false),
        ];
        for (i, (pol, input, want, n, fin, bare, look)) in cases.iter().enumerate() {
            let got = run(*pol, input);
            assert_eq!(
                (got.0.as_slice(), got.1, got.2, got.3, got.4),
                (*want, *n, *fin, *bare, *look),
                "case {i}: {:?}",
                String::from_utf8_lossy(input)
            );
            let m = model(*pol, input);
            assert_eq!((m.2, m.3), (*bare, *look), "model, case {i}");
            // Every two-piece split gives the same content and verdict.
            for cut in 0..=input.len() {
                let (c, m, f, l) = run_split(*pol, input, &[cut]);
                assert_eq!((c.as_slice(), m, f, l), (*want, *n, *fin, *look), "case {i} cut {cut}");
            }
        }
    }

    /// Run a `LineCheck` over `input` in pieces; returns (saw_bare, saw_lookalike).
    fn check_lines(input: &[u8], cuts: &[usize]) -> (bool, bool) {
        let mut c = LineCheck::new();
        let mut rest = input;
        for &cut in cuts {
            let cut = cut.min(rest.len());
            c.feed(&rest[..cut]);
            rest = &rest[cut..];
        }
        c.feed(rest);
        c.finish();
        (c.saw_bare_line_ending(), c.saw_end_of_data_lookalike())
    }

    /// Model of `LineCheck`: split into (line, ending) pairs; a look-alike is a line `.`
    /// whose ending or the ending before it is bare; a last unended line counts as ended
    /// by CRLF.
    fn lines_model(input: &[u8]) -> (bool, bool) {
        let (mut i, mut start, mut prev_bare, mut saw, mut look) = (0, 0, false, false, false);
        loop {
            let (end, next, bare) = match input[i..].iter().position(|&b| b == b'\r' || b == b'\n')
            {
                None => (input.len(), input.len(), false),
                Some(k) if input[i + k] == b'\r' && input.get(i + k + 1) == Some(&b'\n') => {
                    (i + k, i + k + 2, false)
                }
                Some(k) => (i + k, i + k + 1, true),
            };
            saw |= bare;
            look |= &input[start..end] == b"." && (bare || prev_bare);
            if next == input.len() && end == input.len() {
                return (saw, look);
            }
            prev_bare = bare;
            i = next;
            start = next;
            if i == input.len() {
                return (saw, look);
            }
        }
    }

    #[test]
    fn line_check_table() {
        // (content, saw_bare, saw_lookalike)
        let cases: &[(&[u8], bool, bool)] = &[
            (b"", false, false),
            (b".", false, false),
            (b".\r\n", false, false),
            (b"a\r\n.\r\nb\r\n", false, false),
            (b"a\r\n.a\nb\r\n.\r\n", true, false),
            (b"a\n..\n", true, false),
            (b"a\n.\nMAIL", true, true),
            (b"a\n.\r\nMAIL", true, true),
            (b"a\r.\r\nMAIL", true, true),
            (b"a\r.\rMAIL", true, true),
            (b"a\r\n.\rMAIL", true, true),
            (b"a\r\n.\nMAIL", true, true),
            (b".\nMAIL", true, true),
            (b"a\n.", true, true),
            (b"a\r\n.\r", true, true),
            (b"a\r", true, false),
        ];
        for (input, bare, look) in cases {
            assert_eq!(
                lines_model(input),
                (*bare, *look),
                "model {:?}",
                String::from_utf8_lossy(input)
            );
            for cut in 0..=input.len() {
                assert_eq!(
                    check_lines(input, &[cut]),
                    (*bare, *look),
                    "{:?} cut {cut}",
                    String::from_utf8_lossy(input)
                );
            }
            assert_eq!(has_end_of_data_lookalike(input), *look);
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

    /// Where a lax receiver ends the data: after the first raw line `.`, lines being ended
    /// by CRLF, bare CR or bare LF.
    fn lax_end_of_data(input: &[u8]) -> Option<usize> {
        let mut start = 0;
        let mut i = 0;
        while i < input.len() {
            let end = match input[i] {
                b'\r' if input.get(i + 1) == Some(&b'\n') => i + 2,
                b'\r' | b'\n' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            if &input[start..i] == b"." {
                return Some(end);
            }
            start = end;
            i = end;
        }
        None
    }

    /// The lines of `bytes` (lines ended by CRLF, bare CR or bare LF) that are ended by a
    /// CRLF and start the input or follow a CRLF.
    fn crlf_framed_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
        let mut lines = Vec::new();
        let (mut start, mut i, mut framed) = (0, 0, true);
        while i < bytes.len() {
            let (end, crlf) = match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => (i + 2, true),
                b'\r' | b'\n' => (i + 1, false),
                _ => {
                    i += 1;
                    continue;
                }
            };
            if framed && crlf {
                lines.push(&bytes[start..i]);
            }
            framed = crlf;
            start = end;
            i = end;
        }
        lines.into_iter()
    }

    /// The complete CRLF-ended lines of `bytes` (without their CRLF).
    fn complete_crlf_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
        let complete = bytes.len() - bytes.rsplit(|&b| b == b'\n').next().map_or(0, <[u8]>::len);
        bytes[..complete].split(|&b| b == b'\n').filter_map(|l| l.strip_suffix(b"\r"))
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
            let (out, n, fin, bare, look) = run(BareLineEnding::Normalize, &wire);
            prop_assert!(fin && !bare && !look);
            prop_assert_eq!(n, wire_len);
            prop_assert_eq!(&out, &content);
            let (out2, n2, fin2, look2) = run_split(BareLineEnding::Normalize, &wire, &cuts);
            prop_assert_eq!((out2, n2, fin2, look2), (content, wire_len, true, false));
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
            let (want, end, saw, look_want) = model(policy, &input);
            let (out, n, fin, bare, look) = run(policy, &input);
            prop_assert_eq!(Some(n), end);
            prop_assert!(fin);
            prop_assert_eq!(bare, saw);
            prop_assert_eq!(look, look_want);
            prop_assert_eq!(&out, &want);
            let (out2, n2, fin2, look2) = run_split(policy, &input, &cuts);
            prop_assert_eq!((out2, n2, fin2, look2), (want, n, true, look));
        }

        #[test]
        fn line_check_matches_model_at_any_split(
            input in smtp_bytes(),
            cuts in proptest::collection::vec(0usize..12, 0..8),
        ) {
            prop_assert_eq!(check_lines(&input, &cuts), lines_model(&input));
        }

        /// Without the look-alike flag, a lax receiver (one that takes bare CR and bare LF
        /// for line ends, and any line `.` for the end) finds the end of the data exactly
        /// where we do, and every lone-dot line we store is one the client sent stuffed
        /// (`<CRLF>..<CRLF>`): normalising never manufactures one.
        #[test]
        fn unflagged_content_cannot_smuggle(body in smtp_bytes(), reject in any::<bool>()) {
            let policy = if reject { BareLineEnding::Reject } else { BareLineEnding::Normalize };
            let mut input = body;
            input.extend_from_slice(b"\r\n.\r\n");
            let (out, n, fin, _, look) = run(policy, &input);
            prop_assert!(fin);
            if !look {
                prop_assert_eq!(lax_end_of_data(&input), Some(n));
                let stuffed = crlf_framed_lines(&input[..n]).filter(|l| *l == b"..").count();
                if policy == BareLineEnding::Normalize {
                    prop_assert_eq!(complete_crlf_lines(&out).filter(|l| *l == b".").count(), stuffed);
                }
            }
        }
    }
}
