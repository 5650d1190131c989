//! Torn-write tests of recovery, in the shapes `perf/crash_trials.py` damages a segment
//! with between a SIGKILL and the restart: the file cut at any offset of its last record
//! (inside the record header too), bytes flipped, a page zeroed, garbage appended.
//!
//! The rule checked everywhere: every record that lies entirely before the damaged offset D
//! (`start + total_len <= D`) is recovered byte-exact, the damaged record is not, and the
//! damage is reported (`ParsedSegment::stop` / `skipped`, `RecoverySummary::torn_tails` /
//! `bad_records`, a log line). Records after a damaged one are kept when its header (and
//! so its length) still verifies, lost when it does not.

use std::path::{Path, PathBuf};

use super::recover::parse_segment;
use super::tests::{SMALL_SEGMENT_BYTES, env, msg, opts, reopen, segment_files, write_all};
use super::*;

/// `n` committed records (envelope `env(e)`, message `i` of `len(i)` bytes) in one
/// segment; (dir, ids, segment path, the segment's bytes). Shared with `tests.rs`.
pub(super) fn one_segment(
    n: usize,
    e: usize,
    len: fn(usize) -> usize,
) -> (tempfile::TempDir, Vec<QueueId>, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<_> = (0..n).map(|i| (env(e), msg(i, len(i)))).collect();
    let ids = {
        let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
        write_all(&spool, &msgs)
    };
    let segs = segment_files(dir.path());
    assert_eq!(segs.len(), 1);
    let bytes = std::fs::read(&segs[0].1).unwrap();
    (dir, ids, segs[0].1.clone(), bytes)
}

/// A queue with `n` committed records in one segment; (dir, ids, segment path, bytes,
/// record extents `[start, start + total_len)`).
type Queue = (tempfile::TempDir, Vec<QueueId>, PathBuf, Vec<u8>, Vec<(usize, usize)>);

fn queue(n: usize) -> Queue {
    let (dir, ids, seg, bytes) = one_segment(n, 1, |i| 500 + 37 * i);
    let p = parse_segment(&bytes).unwrap();
    assert!(p.stop.is_none());
    let extents =
        p.records.iter().map(|r| (r.offset, r.offset + r.view.layout.total_len as usize)).collect();
    (dir, ids, seg, bytes, extents)
}

/// Recover a copy of the segment holding `bytes`; the ids found and the summary.
fn recover(seg: &Path, bytes: &[u8]) -> (Vec<QueueId>, RecoverySummary) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join(seg.file_name().unwrap()), bytes).unwrap();
    let (spool, found) = reopen(work.path(), opts(SMALL_SEGMENT_BYTES));
    (found.iter().map(|m| m.id).collect(), spool.recovery_summary())
}

/// Ids of the records entirely before `d`.
fn before(ids: &[QueueId], extents: &[(usize, usize)], d: usize) -> Vec<QueueId> {
    ids.iter().zip(extents).filter(|(_, (_, end))| *end <= d).map(|(id, _)| *id).collect()
}

#[test]
fn cut_inside_the_last_record_header_is_reported() {
    // Found while writing the crash trials' truncate mode: a file cut less than a record
    // header past the last whole record was dropped silently (the scan loop never looked
    // at those bytes).
    let (_dir, ids, seg, orig, extents) = queue(3);
    let (start, _) = extents[2];
    for cut in start + 1..start + format::RECORD_HEADER_BYTES {
        let b = &orig[..cut];
        let p = parse_segment(b).unwrap();
        assert_eq!(p.stop.map(|(off, _)| off), Some(start), "cut at {cut}");
        let (got, summary) = recover(&seg, b);
        assert_eq!(got, ids[..2], "cut at {cut}");
        assert_eq!(summary.torn_tails, 1, "cut at {cut}");
    }
    // A cut exactly at a record boundary leaves nothing torn.
    let p = parse_segment(&orig[..start]).unwrap();
    assert!(p.stop.is_none());
}

#[test]
fn every_damage_mode_keeps_exactly_the_records_before_it() {
    let (_dir, ids, seg, orig, extents) = queue(6);
    let (start, end) = extents[5];
    let page = 4096;
    let layout = parse_segment(&orig).unwrap().records[5].view.layout;
    // Not covered by a checksum, on purpose: the status byte (a flip may turn it into
    // another valid status, i.e. a cross-off) and the alignment padding (never read).
    let status = start + format::RECORD_STATUS_OFFSET;
    let end_marker = start + layout.end_offset as usize + format::END_MARKER_BYTES;
    let insignificant: Vec<usize> =
        (status..start + layout.envelope_offset as usize).chain(end_marker..end).collect();
    // (mode, damaged bytes, D)
    let mut cases: Vec<(String, Vec<u8>, usize)> = Vec::new();
    for d in (start..end).step_by(97) {
        cases.push((format!("truncate at {d}"), orig[..d].to_vec(), d));
        let mut b = orig.clone();
        b[d] ^= 0x5a;
        if !insignificant.contains(&d) {
            cases.push((format!("flip at {d}"), b, d));
        }
        let z = d / page * page;
        let mut b = orig.clone();
        b[z..(z + page).min(orig.len())].fill(0);
        cases.push((format!("zero page at {z}"), b, z));
    }
    for (n, magic) in [(1, false), (13, true), (4096, false), (4096, true)] {
        let mut b = orig.clone();
        for (i, x) in b[end..end + n].iter_mut().enumerate() {
            *x = u8::try_from(i % 251).unwrap().wrapping_mul(151).wrapping_add(7);
        }
        if magic {
            b[end..end + 4].copy_from_slice(&format::RECORD_MAGIC_LIVE);
        }
        cases.push((format!("{n} garbage bytes (magic {magic})"), b, end));
    }
    for (what, bytes, d) in cases {
        let (got, summary) = recover(&seg, &bytes);
        let want = before(&ids, &extents, d);
        if d < format::SEGMENT_HEADER_BYTES {
            assert!(got.is_empty(), "{what}");
            continue;
        }
        // The damaged record is the last one: nothing after it to keep.
        assert_eq!(got, want, "{what}");
        // Zeros from D to the end look exactly like unwritten preallocated space: nothing to
        // report then (and nothing before D was touched).
        let first_torn = extents.iter().find(|(_, e)| *e > d).map_or(d, |(s, _)| *s);
        let clean_end = bytes.get(first_torn..).unwrap_or_default().iter().all(|&b| b == 0);
        let reported = summary.torn_tails + summary.bad_records;
        assert!(reported == 1 || clean_end, "{what}: damage not reported");
    }
}

/// Rot in a live record's envelope, found at delivery: the shared read (envelope and
/// content in one `preadv`) checks the payload checksum over both.
#[test]
fn shared_read_detects_envelope_rot() {
    let (dir, ids, seg, bytes, extents) = queue(3);
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let p = parse_segment(&bytes).unwrap();
    let at = extents[1].0 + p.records[1].view.layout.envelope_offset as usize + 2;
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[bytes[at] ^ 0x40], at as u64).unwrap();
    assert_eq!(
        *spool.read_message_shared(ids[0]).unwrap(),
        spool.read_message(ids[0]).unwrap()[..]
    );
    assert!(matches!(spool.read_message_shared(ids[1]), Err(SpoolError::Corrupt { .. })));
    assert!(spool.read_message_shared(ids[2]).is_ok());
}

/// Rot inside a record in the middle of a segment (its header intact): recovery skips that
/// record by its checksummed length and keeps every record after it, and reports it. Before,
/// a segment stopped at the first record that did not verify, so one flipped byte lost every
/// later message of the segment (up to `segment_size` of acknowledged mail). Damage to a
/// header still stops the segment there: a length that does not verify is never followed.
#[test]
fn rot_inside_a_middle_record_loses_that_record_only() {
    let (_dir, ids, seg, orig, extents) = queue(6);
    let p = parse_segment(&orig).unwrap();
    let l = p.records[2].view.layout;
    let (start, _) = extents[2];
    let places = [
        ("content", start + l.message_offset as usize + 5),
        ("envelope", start + l.envelope_offset as usize + 3),
        ("END marker", start + l.end_offset as usize + 1),
    ];
    for (what, at) in places {
        let mut b = orig.clone();
        b[at] ^= 0x20;
        let parsed = parse_segment(&b).unwrap();
        let skipped: Vec<_> = parsed.skipped.iter().map(|(o, id, _)| (*o, *id)).collect();
        assert_eq!(skipped, [(start, ids[2])], "{what}");
        assert!(parsed.stop.is_none(), "{what}");
        let (got, summary) = recover(&seg, &b);
        let want: Vec<QueueId> =
            ids.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, id)| *id).collect();
        assert_eq!(got, want, "{what}: every record but the damaged one");
        assert_eq!((summary.bad_records, summary.torn_tails), (1, 0), "{what}");
    }
    // A flipped byte in the header: its length cannot be trusted, the segment stops there.
    let mut b = orig.clone();
    b[start + 17] ^= 0x01; // inside rcpt_count
    let parsed = parse_segment(&b).unwrap();
    assert_eq!(parsed.stop.map(|(o, _)| o), Some(start));
    assert!(parsed.skipped.is_empty());
    let (got, summary) = recover(&seg, &b);
    assert_eq!(got, ids[..2]);
    assert_eq!((summary.bad_records, summary.torn_tails), (0, 1));
}

#[test]
fn a_rotted_status_byte_reads_as_pending_and_keeps_the_message() {
    // A status byte is outside every checksum (it is rewritten in place). One that is none
    // of P/D/B/X used to make its record unverifiable, and the whole message was skipped:
    // lost. Now the recipient reads as pending (delivered again at worst) and it is logged.
    let (_dir, ids, seg, orig, extents) = queue(4);
    let (start, _) = extents[2];
    for byte in [0x00, b'Q', 0xFF] {
        let mut b = orig.clone();
        b[start + format::RECORD_STATUS_OFFSET] = byte;
        let parsed = parse_segment(&b).unwrap();
        assert!(parsed.skipped.is_empty() && parsed.stop.is_none(), "{byte:#04x}");
        assert_eq!(parsed.odd_status, [(ids[2], 0, byte)]);
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join(seg.file_name().unwrap()), &b).unwrap();
        let (spool, found) = reopen(work.path(), opts(SMALL_SEGMENT_BYTES));
        let got: Vec<QueueId> = found.iter().map(|m| m.id).collect();
        assert_eq!(got, ids, "{byte:#04x}: every message kept");
        let m = found.iter().find(|m| m.id == ids[2]).unwrap();
        assert_eq!(m.rcpt_status, [RcptStatus::Pending]);
        assert_eq!(spool.recovery_summary().bad_records, 0);
    }
}
