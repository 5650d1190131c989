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

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
