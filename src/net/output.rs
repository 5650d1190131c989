//! A connection's unsent output, in write order: the bytes services wrote into its output
//! buffer, and at most one [`SharedPiece`] (a range of reference-counted bytes the service
//! handed over from `Service::produce` instead of copying them) at the point of the
//! buffer where it was handed over.
//!
//! WHAT: `Output` keeps the order `buf[pos..at]`, then the piece, then `buf[at..]` (bytes
//! a later callback appended while the piece was pending), and tells `conn.rs` what to
//! write next: up to three slices for one `writev` on plaintext, or the first slice for
//! rustls' writer on TLS. `advance` moves past what the socket (or rustls) took, across
//! slice boundaries. Pure bookkeeping, no socket: unit-tested below.
//!
//! MEMORY: the piece is not a copy; it keeps its bytes alive (one `Arc`) until written.

use std::ops::Range;
use std::sync::Arc;

/// Bytes shared with the service (typically a message held by several threads), to be
/// written after what the service put in the output buffer, without copying them there.
#[derive(Clone)]
pub struct SharedPiece {
    /// The whole shared buffer.
    bytes: Arc<[u8]>,
    /// The part to write. Invariant: `range.start <= range.end <= bytes.len()`.
    range: Range<usize>,
}

impl SharedPiece {
    /// `bytes[range]`, shared.
    ///
    /// # Panics
    /// If `range` is not inside `bytes` (a caller bug).
    #[must_use]
    pub fn new(bytes: Arc<[u8]>, range: Range<usize>) -> SharedPiece {
        assert!(
            range.start <= range.end && range.end <= bytes.len(),
            "SharedPiece: range {range:?} outside {} bytes",
            bytes.len()
        );
        SharedPiece { bytes, range }
    }

    /// The bytes to write.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }
}

impl std::fmt::Debug for SharedPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Lengths only: the bytes may be a message's content.
        write!(f, "SharedPiece({:?} of {} bytes)", self.range, self.bytes.len())
    }
}

/// A piece not yet fully written.
struct Pending {
    /// The piece. Invariant: not empty.
    piece: SharedPiece,
    /// Bytes of the piece already written. Invariant: `< piece.as_slice().len()`.
    sent: usize,
    /// The piece goes before `buf[at..]`. Invariant: `pos <= at <= buf.len()`.
    at: usize,
}

/// Unsent output of one connection (see the module docs).
#[derive(Default)]
pub(super) struct Output {
    /// Output written by the service; `buf[pos..]` is not yet written.
    pub(super) buf: Vec<u8>,
    /// Invariant: `pos <= buf.len()`; both reset to 0 when everything is written.
    pos: usize,
    /// The shared piece in flight, if any.
    pending: Option<Pending>,
}

impl Output {
    /// Output starting with `buf` (a greeting, or nothing).
    pub(super) fn new(buf: Vec<u8>) -> Output {
        Output { buf, pos: 0, pending: None }
    }

    /// Output bytes built by the service and not yet written (the piece not counted).
    pub(super) fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// All bytes not yet written, the piece's included.
    pub(super) fn unsent(&self) -> usize {
        self.buffered() + self.pending.as_ref().map_or(0, |p| p.piece.as_slice().len() - p.sent)
    }

    /// A shared piece is waiting to be written (the service is not asked for more).
    pub(super) fn has_piece(&self) -> bool {
        self.pending.is_some()
    }

    /// Queue `piece` after everything in `buf` now. An empty piece is dropped.
    ///
    /// # Panics
    /// If a piece is already pending (the worker asks `produce` only when none is).
    pub(super) fn push_piece(&mut self, piece: SharedPiece) {
        assert!(self.pending.is_none(), "one shared piece at a time");
        if !piece.as_slice().is_empty() {
            self.pending = Some(Pending { piece, sent: 0, at: self.buf.len() });
        }
    }

    /// What is to be written next, in order (some slices may be empty).
    pub(super) fn slices(&self) -> [&[u8]; 3] {
        match &self.pending {
            None => [&self.buf[self.pos..], &[], &[]],
            Some(p) => {
                [&self.buf[self.pos..p.at], &p.piece.as_slice()[p.sent..], &self.buf[p.at..]]
            }
        }
    }

    /// The first non-empty slice to write (empty when all is written).
    pub(super) fn first(&self) -> &[u8] {
        self.slices().into_iter().find(|s| !s.is_empty()).unwrap_or(&[])
    }

    /// `n` more bytes were written, in the order of `slices`.
    pub(super) fn advance(&mut self, mut n: usize) {
        if let Some(p) = &mut self.pending {
            let before = n.min(p.at - self.pos);
            self.pos += before;
            n -= before;
            if n > 0 {
                let left = p.piece.as_slice().len() - p.sent;
                let k = n.min(left);
                p.sent += k;
                n -= k;
                if k == left {
                    self.pending = None; // `pos == at`: `buf[at..]` follows
                }
            }
        }
        self.pos += n;
        assert!(self.pos <= self.buf.len(), "advanced past the output");
    }

    /// Once the buffer is written: reset it, giving back a large allocation.
    pub(super) fn reset_if_written(&mut self, idle_capacity: usize) {
        if self.pos < self.buf.len() {
            return;
        }
        if let Some(p) = &mut self.pending {
            p.at = 0; // `pos <= at <= len == pos`
        }
        self.pos = 0;
        if self.buf.capacity() > idle_capacity {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(s: &[u8], range: Range<usize>) -> SharedPiece {
        SharedPiece::new(Arc::from(s), range)
    }

    /// Write everything in steps of `step` bytes (as a socket taking that much per
    /// `writev`), appending `late` to the buffer after the first step.
    fn drain(o: &mut Output, step: usize, late: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut first = true;
        while o.unsent() > 0 {
            let mut n = 0;
            for s in o.slices() {
                let k = s.len().min(step - n);
                wire.extend_from_slice(&s[..k]);
                n += k;
            }
            o.advance(n);
            o.reset_if_written(16);
            if std::mem::take(&mut first) {
                o.buf.extend_from_slice(late);
            }
        }
        wire
    }

    #[test]
    fn order_is_kept_across_partial_writes() {
        // (before, piece range of "0123456789", appended later, expected wire)
        type Case<'a> = (&'a [u8], Range<usize>, &'a [u8], &'a [u8]);
        let cases: &[Case<'_>] = &[
            (b"ab", 2..7, b"", b"ab23456"),
            (b"ab", 2..7, b"XY", b"ab23456XY"),
            (b"", 0..10, b"XY", b"0123456789XY"),
            (b"a", 3..3, b"XY", b"aXY"),
            (b"abcdef", 9..10, b"Z", b"abcdef9Z"),
        ];
        for (before, range, late, want) in cases {
            for step in 1..=12 {
                let mut o = Output::default();
                o.buf.extend_from_slice(before);
                o.push_piece(piece(b"0123456789", range.clone()));
                assert_eq!(drain(&mut o, step, late), *want, "step {step} {before:?}");
                assert!(!o.has_piece() && o.buf.is_empty());
            }
        }
    }

    #[test]
    fn counts_and_first_slice() {
        let mut o = Output::default();
        o.buf.extend_from_slice(b"ab");
        o.push_piece(piece(b"0123", 1..4));
        assert_eq!((o.buffered(), o.unsent(), o.first()), (2, 5, &b"ab"[..]));
        o.advance(2);
        o.reset_if_written(16);
        assert_eq!((o.buffered(), o.unsent(), o.first()), (0, 3, &b"123"[..]));
        o.buf.extend_from_slice(b"Z");
        o.advance(3);
        assert_eq!((o.has_piece(), o.first()), (false, &b"Z"[..]));
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn a_range_outside_the_bytes_is_a_bug() {
        let _ = piece(b"abc", 2..4);
    }
}
