//! Segment files: naming, creation with reserved blocks, mapping, spill files, directory sync.
//!
//! TRUST: only files whose names we generate (`XXXXXXXX.seg`, 8 upper-case hex digits) are
//! segments; everything else in `Queue/` is ignored.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::SpoolError;
use super::format::{SEGMENT_FLAG_SPILL, SEGMENT_HEADER_BYTES, SegmentHeader};
use super::map::{self, Appender, Map};

/// File-name suffix of segment files.
pub(crate) const SEGMENT_SUFFIX: &str = ".seg";
/// Bytes of zeros written per `pwrite` by the no-`fallocate` fallback.
const ZERO_CHUNK_BYTES: usize = 64 * 1024;
/// Spill files grow their reservation by at least this much at a time.
pub(crate) const SPILL_GROW_BYTES: u64 = 1024 * 1024;
/// Durable pages of a segment are dropped from the page tables once this many of them
/// piled up (see [`Segment::release_durable`]); bounds the RSS of each open segment.
pub(crate) const RELEASE_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Records at least this long are appended with `pwrite(2)` rather than copied into the
/// mapping ([`Segment::append`]). Copying into fresh pages of the mapping faults each page
/// in, and the fault reads (zero-fills) the page and its read-ahead neighbours before the
/// copy overwrites them: at 100 KiB per message that was 17% of the relay's CPU, more than
/// the copy itself (perf/RESULTS.md, 2026-12-05 19:55); at 10 KiB, 3-8% less CPU per
/// message. Smaller records (several per page, so fewer faults each) keep the copy: a
/// syscall per 1 KiB record was not measured to pay.
pub(crate) const PWRITE_MIN_BYTES: usize = 8 * 1024;
/// After a small record is appended, zeros are written ahead of the tail
/// ([`Map::prewrite_zeros`]) whenever fewer than [`ZERO_AHEAD_LOW_BYTES`] are left, up to
/// this far beyond the tail. Each zero window is converted from unwritten to written
/// extents by one commit's flush ([`Segment::flush_end`]), so the commits of the records
/// that then land in it wait for no journal commit: at 1 KiB x 10 sessions, end of data →
/// 250 p50 0.73 → 0.63 ms, 9% more messages a second, 9% less CPU per message (medians of
/// four alternating rounds, perf/RESULTS.md 2026-12-06 00:58). The cost is the zeros'
/// write-back, once per byte of small records (3.3 → 4.7 KiB of disk writes per relayed
/// 1 KiB message). Large records (`pwrite`, whole pages) get none: at 100 KiB the zeros
/// would double the disk writes, and there CPU, not the commit's wait, is what binds.
const ZERO_AHEAD_BYTES: usize = 256 * 1024;
/// See [`ZERO_AHEAD_BYTES`].
const ZERO_AHEAD_LOW_BYTES: usize = 64 * 1024;
/// Release ranges are multiples of this (the OS page size, or a divisor of it: memmap2
/// aligns the start down to the real page size, which only releases a little more).
const RELEASE_ALIGN_BYTES: usize = 4096;

/// The file name of segment `number`.
pub(crate) fn file_name(number: u64) -> String {
    format!("{number:08X}{SEGMENT_SUFFIX}")
}

/// The segment number in a segment file name, or `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// fsync the directory so that newly created (or removed) entries survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reserve the blocks of `[offset, offset + len)`: `fallocate`, or (where the filesystem
/// does not support it) extend and write zeros. Disk full becomes [`SpoolError::NoSpace`].
pub(crate) fn reserve(file: &File, offset: u64, len: u64) -> Result<(), SpoolError> {
    match map::fallocate(file, offset, len) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
        Err(e) => return Err(e.into()),
    }
    write_zeros(file, offset, len)
}

/// Reserve blocks by writing zeros (for filesystems without `fallocate`).
fn write_zeros(file: &File, offset: u64, len: u64) -> Result<(), SpoolError> {
    let zeros = [0u8; ZERO_CHUNK_BYTES];
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let n = usize::try_from(end - at).map_or(ZERO_CHUNK_BYTES, |n| n.min(ZERO_CHUNK_BYTES));
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Create `dir/XXXXXXXX.seg` exclusively with mode 0600.
fn create_file(dir: &Path, number: u64) -> Result<(File, PathBuf), SpoolError> {
    let path = dir.join(file_name(number));
    let file =
        OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
    Ok((file, path))
}

/// One segment file, mapped.
pub(crate) struct Segment {
    /// Segment number (unique forever; also in the file name and header).
    pub(crate) number: u64,
    /// Path of the file (for deletion).
    pub(crate) path: PathBuf,
    /// The open file (kept for `fdatasync` of spill segments).
    pub(crate) file: File,
    /// The whole file, mapped; never resized.
    pub(crate) map: Map,
    /// Its decoded header.
    pub(crate) header: SegmentHeader,
    /// Bytes `[0, synced_to)` are known durable; only the committing thread advances it.
    pub(crate) synced_to: AtomicUsize,
    /// Whether `Queue/` was fsynced after this file was created.
    pub(crate) dir_synced: AtomicBool,
    /// Bytes `[0, released_to)` were dropped from the page tables ([`Map::release`]) after
    /// they became durable; only the committing thread advances it (a page multiple).
    pub(crate) released_to: AtomicUsize,
}

impl Segment {
    /// Append `len` published bytes at `offset` to `out`, read with `pread(2)` rather than
    /// through the mapping: reading a queued message (the runner, once per delivery
    /// attempt) then never maps its pages into mailroot's page tables, so the RSS does not
    /// grow with the queue. The page cache is the one the mapping writes into, so the bytes
    /// are those [`Map::copy_out`] would return. Panics (a bug) when the range is not below
    /// the published tail.
    pub(crate) fn read_published(
        &self,
        offset: usize,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let tail = self.map.tail();
        assert!(offset <= tail && len <= tail - offset, "read beyond the published tail");
        let old = out.len();
        out.resize(old + len, 0);
        let r = self.file.read_exact_at(&mut out[old..], offset as u64);
        if r.is_err() {
            out.truncate(old);
        }
        r
    }

    /// `head_len` then `body_len` published bytes from `offset`, into a fresh `Vec` and a
    /// fresh `Arc<[u8]>` (the queue runner's envelope and task content) with one `preadv`
    /// and no zero fill ([`map::read_fresh`]).
    pub(crate) fn read_published_fresh(
        &self,
        offset: usize,
        head_len: usize,
        body_len: usize,
    ) -> io::Result<(Vec<u8>, Arc<[u8]>)> {
        let tail = self.map.tail();
        let len = head_len.saturating_add(body_len);
        assert!(offset <= tail && len <= tail - offset, "read beyond the published tail");
        map::read_fresh(&self.file, offset as u64, head_len, body_len)
    }

    /// Drop durable bytes of this segment from the process's page tables ([`Map::release`]):
    /// `[released_to, synced_to)` rounded down to a page, once at least
    /// [`RELEASE_CHUNK_BYTES`] piled up; with `sealed`, the whole rest of the mapping (no
    /// more appends will come). The data stays in the page cache and the file; a later read
    /// maps it again. Called by the committing thread only. Failure only costs memory.
    pub(crate) fn release_durable(&self, sealed: bool) {
        let from = self.released_to.load(Ordering::Relaxed);
        let to = if sealed {
            self.map.len()
        } else {
            self.synced_to.load(Ordering::Acquire) / RELEASE_ALIGN_BYTES * RELEASE_ALIGN_BYTES
        };
        if to <= from || (!sealed && to - from < RELEASE_CHUNK_BYTES) {
            return;
        }
        match self.map.release(from, to - from) {
            Ok(()) => self.released_to.store(to, Ordering::Relaxed),
            Err(e) => log::debug!("spool: segment {}: madvise(DONTNEED) failed: {e}", self.number),
        }
    }

    /// Create a fresh segment of `capacity` bytes with all blocks reserved, write its header,
    /// and map it. Returns it with its unique appender. A failure removes the file again.
    pub(crate) fn create(
        dir: &Path,
        header: SegmentHeader,
    ) -> Result<(Segment, Appender), SpoolError> {
        let (file, path) = create_file(dir, header.number)?;
        let built = (|| {
            reserve(&file, 0, header.capacity_bytes)?;
            let len = usize::try_from(header.capacity_bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
            let map = Map::new(&file, len, 0)?;
            let Some(mut app) = map.take_appender() else {
                unreachable!("a fresh map has its appender");
            };
            map.append(&mut app, &[&header.encode()]);
            Ok::<_, SpoolError>((map, app))
        })();
        match built {
            Ok((map, app)) => Ok((
                Segment {
                    number: header.number,
                    path,
                    file,
                    map,
                    header,
                    synced_to: AtomicUsize::new(0),
                    dir_synced: AtomicBool::new(false),
                    released_to: AtomicUsize::new(0),
                },
                app,
            )),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Map an existing, complete segment file (recovery, or a finished spill file).
    /// The whole file counts as published and durable; no appender is available.
    pub(crate) fn open_existing(
        path: PathBuf,
        file: File,
        header: SegmentHeader,
        durable: bool,
    ) -> Result<Segment, SpoolError> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        let map = Map::new(&file, len, len)?;
        // Nobody appends to an existing segment: burn the appender.
        let _burned = map.take_appender();
        Ok(Segment {
            number: header.number,
            path,
            file,
            map,
            header,
            synced_to: AtomicUsize::new(if durable { len } else { 0 }),
            dir_synced: AtomicBool::new(durable),
            released_to: AtomicUsize::new(0),
        })
    }

    /// Append one record's bytes at the tail with the unique appender and publish them:
    /// a record of [`PWRITE_MIN_BYTES`] or more is written to the file with `pwrite(2)`
    /// ([`Map::append_through`]), a smaller one copied into the mapping. Returns the
    /// offset; the caller checked that it fits. An I/O error publishes nothing.
    pub(crate) fn append(&self, app: &mut Appender, bytes: &[u8]) -> io::Result<usize> {
        if bytes.len() >= PWRITE_MIN_BYTES {
            return self.map.append_through(app, &self.file, bytes);
        }
        let at = self.map.append(app, &[bytes]);
        let tail = at + bytes.len();
        if self.map.zeroed_to() < tail.saturating_add(ZERO_AHEAD_LOW_BYTES) {
            // Best effort: the blocks are reserved either way; without the zeros a commit
            // only waits longer.
            if let Err(e) = self.map.prewrite_zeros(app, &self.file, tail + ZERO_AHEAD_BYTES) {
                log::debug!("spool: segment {}: writing zeros ahead failed: {e}", self.number);
            }
        }
        Ok(at)
    }

    /// End of the range a commit of records up to `end` flushes: `end`, or further when
    /// zeros were written ahead ([`Map::prewrite_zeros`]), so that the zeros are written
    /// back (and their extents converted) with this commit rather than with later ones.
    pub(crate) fn flush_end(&self, end: usize) -> usize {
        end.max(self.map.zeroed_to())
    }

    /// True for a single-record spill segment.
    pub(crate) fn is_spill(&self) -> bool {
        self.header.flags & SEGMENT_FLAG_SPILL != 0
    }

    /// Open a segment file read-write for recovery (header already verified by the caller).
    pub(crate) fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }
}

/// A large record being written to its own segment file with `pwrite`.
///
/// Invariant: blocks `[0, reserved)` are allocated; bytes `[0, cursor)` are written.
/// Dropping an unfinished spill removes its file.
pub(crate) struct Spill {
    /// Segment header (flag SPILL) at offset 0.
    pub(crate) header: SegmentHeader,
    /// The file's path.
    pub(crate) path: PathBuf,
    /// The open file.
    pub(crate) file: Option<File>,
    /// Allocated bytes.
    reserved: u64,
    /// Written bytes (next write goes here).
    cursor: u64,
}

impl Spill {
    /// Create the spill file and write its segment header.
    pub(crate) fn create(dir: &Path, header: SegmentHeader) -> Result<Spill, SpoolError> {
        let (file, path) = create_file(dir, header.number)?;
        let mut s = Spill { header, path, file: Some(file), reserved: 0, cursor: 0 };
        s.write(&header.encode())?;
        Ok(s)
    }

    fn file(&self) -> &File {
        // Invariant: `file` is Some until `into_segment` takes it.
        self.file.as_ref().expect("spill file present until finished")
    }

    /// Append `bytes`, reserving blocks first (never write into unreserved space).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        let need = self.cursor + bytes.len() as u64;
        if need > self.reserved {
            let grow = (need - self.reserved).max(SPILL_GROW_BYTES).max(self.reserved / 2);
            reserve(self.file(), self.reserved, grow)?;
            self.reserved += grow;
        }
        self.file().write_all_at(bytes, self.cursor)?;
        self.cursor = need;
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.cursor
    }

    /// Overwrite already-written bytes at `offset` (the final record header).
    pub(crate) fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), SpoolError> {
        assert!(offset + bytes.len() as u64 <= self.cursor, "spill overwrite past cursor");
        self.file().write_all_at(bytes, offset)?;
        Ok(())
    }

    /// Trim the unused reservation and map the finished file as a segment (not yet durable).
    pub(crate) fn into_segment(mut self) -> Result<Segment, SpoolError> {
        let file = self.file.take().expect("spill file present until finished");
        let path = std::mem::take(&mut self.path);
        let done = (|| {
            // Not mapped yet, so shrinking is safe.
            file.set_len(self.cursor)?;
            Segment::open_existing(path.clone(), file, self.header, false)
        })();
        if done.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        done
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The segment header for a fresh segment.
pub(crate) fn new_header(
    number: u64,
    worker: u32,
    flags: u16,
    capacity_bytes: u64,
    now_unix_ms: u64,
) -> SegmentHeader {
    SegmentHeader { flags, worker, number, created_unix_ms: now_unix_ms, capacity_bytes }
}

/// Offset of the first record in any segment.
pub(crate) const FIRST_RECORD_OFFSET: usize = SEGMENT_HEADER_BYTES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("00000001.seg", Some(1)),
            ("FFFFFFFF.seg", Some(0xFFFF_FFFF)),
            ("0000000a.seg", None),
            ("00000001.seg.corrupt", None),
            ("1.seg", None),
            ("lock", None),
            ("0000000G.seg", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_file_name(name), *want, "{name}");
        }
        assert_eq!(file_name(0x2A), "0000002A.seg");
    }

    #[test]
    fn zero_fill_fallback_reserves() {
        let f = tempfile::tempfile().unwrap();
        let cases = [(0u64, 10u64), (10, 200_000), (300_000, 1)];
        for (off, len) in cases {
            write_zeros(&f, off, len).unwrap();
            assert!(f.metadata().unwrap().len() >= off + len);
        }
        let mut b = vec![];
        std::io::Read::read_to_end(&mut &f, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(b.len(), 300_001);
    }
}
