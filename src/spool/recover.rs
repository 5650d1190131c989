//! Recovery at start-up (`Spool::open`) and the read-only queue listing (`scan`).
//!
//! Both read every segment with `read(2)` and verify every record (header checksum, payload
//! checksum, END marker, envelope; a status byte that is none of `PDBX` reads as pending
//! and is logged). A record whose header verifies but whose
//! payload does not (rot in its envelope or content) is skipped by its checksummed length
//! and the records after it are kept; a segment stops at the first record whose header does
//! not verify (its length cannot be trusted, and nothing is ever parsed from inside a
//! record's content). `scan` never modifies anything and tolerates a tail being appended
//! concurrently (a half-copied record simply does not verify yet) and segments disappearing.
//!
//! TRUST: file contents are untrusted bytes (torn writes, bit flips); file names that are
//! not ours are ignored.

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::{Mutex, RwLock};

use super::format::{
    FormatError, QueueId, RECORD_HEADER_BYTES, RECORD_MAGIC_DEAD, RECORD_STATUS_OFFSET, RcptStatus,
    RecordView, SegmentHeader, decode_envelope, parse_record,
};
use super::index::{Index, LOCK_FILE, Loc, SegEntry, SpoolInner, read_hwm};
use super::segment::{FIRST_RECORD_OFFSET, Segment, parse_file_name};
use super::space::FreeSpace;
use super::{
    Envelope, MAX_BUFFERED_RECORD_BYTES, MIN_SEGMENT_BYTES, QueuedMessage, SpoolError, SpoolOptions,
};

/// Appended to the name of a segment whose header does not verify (kept for inspection).
const CORRUPT_SUFFIX: &str = ".corrupt";
/// Alignment of the segment size (a page).
const SEGMENT_SIZE_ALIGN_BYTES: u64 = 4096;

/// A verified live record found in a segment.
pub(crate) struct FoundRecord {
    /// Offset in the segment.
    pub(crate) offset: usize,
    /// Header and layout.
    pub(crate) view: RecordView,
    /// Decoded envelope.
    pub(crate) envelope: Envelope,
    /// Recipient statuses.
    pub(crate) status: Vec<RcptStatus>,
}

impl FoundRecord {
    fn is_live(&self) -> bool {
        self.status.iter().any(|s| !s.is_crossed_off())
    }
}

/// What one segment file holds.
pub(crate) struct ParsedSegment {
    /// Its header.
    pub(crate) header: SegmentHeader,
    /// Verified live-magic records in order (some may be fully crossed off).
    pub(crate) records: Vec<FoundRecord>,
    /// Where and why reading stopped, when not at clean (all-zero) space or the file end.
    pub(crate) stop: Option<(usize, FormatError)>,
    /// Records skipped because their header verified but the rest did not: (offset, the
    /// queue id in that header, why).
    pub(crate) skipped: Vec<(usize, QueueId, FormatError)>,
    /// Status bytes that are none of `PDBX`, read as pending: (queue id, recipient index,
    /// the byte).
    pub(crate) odd_status: Vec<(QueueId, usize, u8)>,
}

/// The length and id of the record at `rest[0]` when `e` (why it did not verify) lies behind a
/// header that verifies and the whole record is present: the length is covered by the
/// header checksum, so the next record can be read after it. `None` when the header itself
/// is bad or the record runs past the bytes (a torn tail).
fn skippable(rest: &[u8], e: FormatError) -> Option<(usize, QueueId)> {
    match e {
        FormatError::PayloadChecksum | FormatError::MissingEnd | FormatError::Envelope => {}
        _ => return None,
    }
    let (header, _, _) = super::format::RecordHeader::decode(rest).ok()?;
    let total = usize::try_from(header.layout().total_len).ok()?;
    (total > 0 && total <= rest.len()).then_some((total, header.id))
}

/// Verify and decode every record of a segment's bytes.
pub(crate) fn parse_segment(bytes: &[u8]) -> Result<ParsedSegment, FormatError> {
    let header = SegmentHeader::decode(bytes)?;
    let mut records = Vec::new();
    let mut stop = None;
    let mut skipped = Vec::new();
    let mut odd_status = Vec::new();
    let mut off = FIRST_RECORD_OFFSET;
    while off + RECORD_HEADER_BYTES <= bytes.len() {
        let rest = &bytes[off..];
        let verified = parse_record(rest).and_then(|view| {
            if !view.live {
                return Ok((view, None));
            }
            let l = view.layout;
            // Offsets are within `rest` (parse_record checked total_len <= rest.len()).
            let env =
                decode_envelope(&rest[l.envelope_offset as usize..l.message_offset as usize])?;
            if env.recipients.len() != view.header.rcpt_count as usize {
                return Err(FormatError::Envelope);
            }
            Ok((view, Some(env)))
        });
        match verified {
            Ok((view, env)) => {
                let total = view.layout.total_len as usize;
                if let Some(envelope) = env {
                    let n = view.header.rcpt_count as usize;
                    let bytes = &rest[RECORD_STATUS_OFFSET..RECORD_STATUS_OFFSET + n];
                    for (i, &b) in bytes.iter().enumerate() {
                        if RcptStatus::from_byte(b).is_none() {
                            odd_status.push((view.header.id, i, b));
                        }
                    }
                    let status = bytes.iter().map(|&b| RcptStatus::read(b)).collect();
                    records.push(FoundRecord { offset: off, view, envelope, status });
                }
                off += total;
            }
            Err(e) => {
                if let Some((total, id)) = skippable(rest, e) {
                    skipped.push((off, id, e));
                    off += total;
                    continue;
                }
                if rest.iter().any(|&b| b != 0) {
                    stop = Some((off, e));
                }
                break;
            }
        }
    }
    // Fewer bytes than a record header left (a file cut inside the last record's header):
    // the loop above never looked at them, but they are a torn record all the same and
    // must be reported like any other unverifiable tail.
    if stop.is_none() && bytes.get(off..).is_some_and(|rest| rest.iter().any(|&b| b != 0)) {
        stop = Some((off, FormatError::Truncated));
    }
    Ok(ParsedSegment { header, records, stop, skipped, odd_status })
}

/// A segment file's bytes as recovery reads them (see [`verify_segment`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSegment {
    /// The segment number written in its header.
    pub number: u64,
    /// Every verified live-magic record in file order (some may be fully crossed off).
    pub records: Vec<QueuedMessage>,
    /// Where reading stopped at bytes that do not verify; `None` at clean (all-zero)
    /// space or the file end.
    pub stop: Option<usize>,
    /// Offsets of records skipped (header verified, the rest did not); reading went on
    /// after each.
    pub skipped: Vec<usize>,
}

/// Verify a segment file's bytes exactly as recovery and [`scan`] do, touching no file.
/// This is the half of recovery that reads untrusted bytes; it is public so that the fuzz
/// targets (`fuzz/`) can drive it without a directory.
pub fn verify_segment(bytes: &[u8]) -> Result<VerifiedSegment, FormatError> {
    let p = parse_segment(bytes)?;
    Ok(VerifiedSegment {
        number: p.header.number,
        records: p.records.iter().map(message).collect(),
        stop: p.stop.map(|(off, _)| off),
        skipped: p.skipped.iter().map(|(off, _, _)| *off).collect(),
    })
}

/// Segment files in `dir`, ascending by number.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((n, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(n, _)| *n);
    Ok(out)
}

/// For each id, the winning copy `(segment index, record index)`: the last one in
/// (segment number, offset) order, i.e. the newest (compaction copies forward).
fn winners(segs: &[(u64, PathBuf, ParsedSegment)]) -> HashMap<QueueId, (usize, usize)> {
    let mut best = HashMap::new();
    for (si, (_, _, p)) in segs.iter().enumerate() {
        for (ri, r) in p.records.iter().enumerate() {
            best.insert(r.view.header.id, (si, ri));
        }
    }
    best
}

/// Read and parse every segment; corrupt headers are reported to `bad`. A skipped record is
/// logged at error when `recovering` (start-up) and at debug otherwise: a listing beside
/// the running server may read a record whose copy into the segment is not finished yet.
fn read_all(
    dir: &Path,
    recovering: bool,
    mut bad: impl FnMut(u64, &Path, &[u8], FormatError),
) -> Result<Vec<(u64, PathBuf, ParsedSegment)>, SpoolError> {
    let mut segs = Vec::new();
    for (n, path) in list_segments(dir)? {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // deleted meanwhile
            Err(e) => return Err(e.into()),
        };
        match parse_segment(&bytes) {
            Ok(p) if p.header.number == n => {
                let skip_level = if recovering { log::Level::Error } else { log::Level::Debug };
                for (off, id, e) in &p.skipped {
                    log::log!(
                        skip_level,
                        "spool: segment {n:08X}: record {id} at {off} does not verify ({e}); \
                         skipped (that message is lost), the records after it are kept"
                    );
                }
                for (id, i, b) in &p.odd_status {
                    log::log!(
                        skip_level,
                        "spool: segment {n:08X}: record {id} recipient {i} has status byte \
                         {b:#04x}, none of P/D/B/X; read as pending (it may be delivered twice)"
                    );
                }
                if let Some((off, e)) = p.stop {
                    log::warn!("spool: segment {n:08X}: dropping unverifiable tail at {off}: {e}");
                }
                segs.push((n, path, p));
            }
            Ok(_) => bad(n, &path, &bytes, FormatError::BadMagic),
            Err(e) => bad(n, &path, &bytes, e),
        }
    }
    Ok(segs)
}

fn message(r: &FoundRecord) -> QueuedMessage {
    QueuedMessage {
        id: r.view.header.id,
        envelope: r.envelope.clone(),
        message_bytes: r.view.header.message_len,
        rcpt_status: r.status.clone(),
    }
}

/// Read-only listing of the live queue; safe while the server runs (modifies nothing).
pub fn scan(queue_dir: &Path) -> Result<Vec<QueuedMessage>, SpoolError> {
    let segs = read_all(queue_dir, false, |n, _, _, e| {
        log::warn!("spool: segment {n:08X} has a bad header ({e}); skipped");
    })?;
    let best = winners(&segs);
    let mut out = Vec::new();
    for (si, (_, _, p)) in segs.iter().enumerate() {
        for (ri, r) in p.records.iter().enumerate() {
            if best.get(&r.view.header.id) == Some(&(si, ri)) && r.is_live() {
                out.push(message(r));
            }
        }
    }
    Ok(out)
}

/// Read-only: the live message `id` (as [`scan`] finds it) and the first `max_bytes` of its
/// content (`queue show` prints the header section); `None` when it is not in the queue.
pub fn scan_one(
    queue_dir: &Path,
    id: QueueId,
    max_bytes: usize,
) -> Result<Option<(QueuedMessage, Vec<u8>)>, SpoolError> {
    let segs = read_all(queue_dir, false, |_, _, _, _| {})?;
    let Some(&(si, ri)) = winners(&segs).get(&id) else { return Ok(None) };
    let (_, path, p) = &segs[si];
    let r = &p.records[ri];
    if !r.is_live() {
        return Ok(None);
    }
    // Read again: the parse kept no bytes. The record verified in this file, and records
    // are never moved in place (compaction copies to a new segment), so the same offsets
    // hold unless the file was deleted meanwhile (then the message left the queue).
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let start = r.offset + r.view.layout.message_offset as usize;
    let len = usize::try_from(r.view.header.message_len).unwrap_or(usize::MAX).min(max_bytes);
    let content = bytes.get(start..start.saturating_add(len)).unwrap_or_default().to_vec();
    Ok(Some((message(r), content)))
}

/// Open `Queue/` (see `Spool::open`).
pub(crate) fn open(
    dir: &Path,
    opts: SpoolOptions,
) -> Result<(SpoolInner, Vec<QueuedMessage>), SpoolError> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir.to_path_buf())),
        Err(TryLockError::Error(e)) => return Err(e.into()),
    }
    let segment_bytes =
        opts.segment_bytes.max(MIN_SEGMENT_BYTES).next_multiple_of(SEGMENT_SIZE_ALIGN_BYTES);
    let opts = SpoolOptions { segment_bytes, ..opts };
    let spill_threshold =
        MAX_BUFFERED_RECORD_BYTES.min(usize::try_from(segment_bytes / 4).unwrap_or(usize::MAX));

    let mut empty = Vec::new();
    let mut corrupt_segments = 0u64;
    let segs = read_all(dir, true, |n, path, bytes, e| {
        if bytes.iter().all(|&b| b == 0) {
            // Crashed right after creating it: it never held a committed record (the first
            // commit of a segment syncs its header).
            empty.push((n, path.to_path_buf()));
        } else {
            let mut to = path.as_os_str().to_owned();
            to.push(CORRUPT_SUFFIX);
            let to = PathBuf::from(to);
            log::error!(
                "spool: segment {n:08X} header does not verify ({e}); moved to {}",
                to.display()
            );
            let _ = std::fs::rename(path, &to);
            corrupt_segments += 1;
        }
    })?;
    let torn_tails = segs.iter().filter(|(_, _, p)| p.stop.is_some()).count() as u64;
    let bad_records = segs.iter().map(|(_, _, p)| p.skipped.len() as u64).sum();
    let hwm = read_hwm(dir);
    // Every number still on disk counts, including segments set aside as corrupt.
    let mut max_on_disk = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_str().unwrap_or("");
        if let Some(n) = parse_file_name(name.strip_suffix(CORRUPT_SUFFIX).unwrap_or(name)) {
            max_on_disk = max_on_disk.max(n);
        }
    }
    let mut inner = SpoolInner {
        dir: dir.to_path_buf(),
        opts,
        spill_threshold,
        next_segment: AtomicU64::new(max_on_disk.max(hwm) + 1),
        hwm: Mutex::new(hwm),
        index: Mutex::new(Index::default()),
        compact_lock: RwLock::new(()),
        crossoff_dirty: Mutex::new(Vec::new()),
        space: FreeSpace::new(dir.to_path_buf(), opts.min_free_bytes),
        recovery: super::RecoverySummary { segments: 0, torn_tails, bad_records, corrupt_segments },
        #[cfg(test)]
        fail_next_commit: std::sync::atomic::AtomicBool::new(false),
        _lock: lock,
    };
    for (n, path) in &empty {
        inner.delete_file(*n, path);
    }

    let best = winners(&segs);
    let mut found = Vec::new();
    let mut idx = Index::default();
    for (si, (n, path, p)) in segs.iter().enumerate() {
        let is_winner = |ri: usize, r: &FoundRecord| best.get(&r.view.header.id) == Some(&(si, ri));
        let live: Vec<usize> = p
            .records
            .iter()
            .enumerate()
            .filter(|(ri, r)| is_winner(*ri, r) && r.is_live())
            .map(|(ri, _)| ri)
            .collect();
        if live.is_empty() {
            inner.delete_file(*n, path);
            continue;
        }
        let seg = Arc::new(Segment::open_existing(
            path.clone(),
            Segment::open_file(path)?,
            p.header,
            true,
        )?);
        for (ri, r) in p.records.iter().enumerate() {
            if !is_winner(ri, r) && r.is_live() {
                // An older copy left by a crash during compaction: never deliver it twice.
                seg.map.store_u32(r.offset, RECORD_MAGIC_DEAD);
                seg.map.flush_range(r.offset, 4)?;
            }
        }
        for &ri in &live {
            let r = &p.records[ri];
            let loc = Loc {
                seg: seg.clone(),
                offset: r.offset,
                header: r.view.header,
                layout: r.view.layout,
            };
            idx.records.insert(r.view.header.id, loc);
            found.push(message(r));
        }
        idx.segments.insert(*n, SegEntry { seg, live: live.len() as u64, sealed: true });
    }
    inner.recovery.segments = idx.segments.len() as u64;
    *inner.index.lock() = idx;
    log::info!(
        "spool: recovered {} messages from {} segments in {}",
        found.len(),
        inner.index.lock().segments.len(),
        dir.display()
    );
    Ok((inner, found))
}
