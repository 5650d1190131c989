//! The shared in-memory index of committed live records, and the operations on it:
//! segment number allocation, registration after commit, sealing, cross-off, read, deletion.
//!
//! TRUST: the index is rebuilt from the segments at start-up (one source of truth: the
//! disk, STYLE.md rule 17); it only ever lists records whose commit completed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use super::format::{
    FormatError, QueueId, RECORD_STATUS_OFFSET, RcptStatus, RecordHeader, RecordLayout,
};
use super::segment::{Segment, sync_dir};
use super::space::FreeSpace;
use super::{SpoolError, SpoolOptions};

/// Name of the high-water-mark file (highest segment number ever deleted, 16 hex digits).
pub(crate) const HWM_FILE: &str = "hwm";
/// Name of the lock file held by the running server.
pub(crate) const LOCK_FILE: &str = "lock";

/// Where a committed record lives.
#[derive(Clone)]
pub(crate) struct Loc {
    /// Its segment.
    pub(crate) seg: Arc<Segment>,
    /// Offset of the record start in the segment.
    pub(crate) offset: usize,
    /// Its header.
    pub(crate) header: RecordHeader,
    /// Offsets of its parts.
    pub(crate) layout: RecordLayout,
}

impl Loc {
    /// Offset of recipient `i`'s status byte in the segment.
    pub(crate) fn status_offset(&self, i: usize) -> usize {
        self.offset + RECORD_STATUS_OFFSET + i
    }

    /// True when no recipient is Pending.
    pub(crate) fn all_crossed_off(&self) -> bool {
        (0..self.header.rcpt_count as usize)
            .all(|i| self.seg.map.load_u8(self.status_offset(i)) != RcptStatus::Pending.as_byte())
    }
}

/// Per-segment bookkeeping.
pub(crate) struct SegEntry {
    /// The segment.
    pub(crate) seg: Arc<Segment>,
    /// Live records in it (committed, some recipient pending).
    pub(crate) live: u64,
    /// No writer will append to it again.
    pub(crate) sealed: bool,
}

/// Live records and the segments holding them.
#[derive(Default)]
pub(crate) struct Index {
    /// Every committed record with a pending recipient.
    pub(crate) records: HashMap<QueueId, Loc>,
    /// Every segment holding a live record, plus active segments that got commits.
    pub(crate) segments: HashMap<u64, SegEntry>,
}

/// Shared state of a [`super::Spool`].
pub(crate) struct SpoolInner {
    /// `Queue/`.
    pub(crate) dir: PathBuf,
    /// Options (segment size already clamped).
    pub(crate) opts: SpoolOptions,
    /// Records bigger than this go to a spill segment.
    pub(crate) spill_threshold: usize,
    /// Next segment number to hand out; strictly above every number on disk or in `hwm`.
    pub(crate) next_segment: AtomicU64,
    /// The number durably stored in `Queue/hwm`.
    pub(crate) hwm: Mutex<u64>,
    /// The index.
    pub(crate) index: Mutex<Index>,
    /// Cross-offs hold it shared; compaction holds it exclusively (no status changes while
    /// records are copied).
    pub(crate) compact_lock: RwLock<()>,
    /// Pages holding cross-off bytes stored but not yet msynced (segment, page index):
    /// written back by [`SpoolInner::sync_crossoffs`] (see [`super::Spool::cross_off_batch`]).
    pub(crate) crossoff_dirty: Mutex<Vec<(Arc<Segment>, usize)>>,
    /// Free-space cache.
    pub(crate) space: FreeSpace,
    /// What recovery found at open (reported in the event log).
    pub(crate) recovery: super::RecoverySummary,
    /// Test hook: make the next group commit fail as if msync had failed.
    #[cfg(test)]
    pub(crate) fail_next_commit: std::sync::atomic::AtomicBool,
    /// `Queue/lock`, locked for our lifetime.
    pub(crate) _lock: File,
}

/// Milliseconds since the Unix epoch (wall clock; only for segment headers and compaction).
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Read `Queue/hwm` (0 when absent or unreadable).
pub(crate) fn read_hwm(dir: &std::path::Path) -> u64 {
    match std::fs::read_to_string(dir.join(HWM_FILE)) {
        Ok(s) => u64::from_str_radix(s.trim(), 16).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Cross-off pages are grouped by this size (the OS page size or a multiple of it: a coarser
/// grouping only widens an msync range, it never misses a byte).
const CROSSOFF_PAGE_BYTES: usize = 4096;

impl SpoolInner {
    /// A fresh segment number (never used before, never used again).
    pub(crate) fn alloc_segment_number(&self) -> u64 {
        self.next_segment.fetch_add(1, Ordering::Relaxed)
    }

    /// Make sure `Queue/hwm` durably records at least `number` (before deleting it).
    fn raise_hwm(&self, number: u64) -> Result<(), SpoolError> {
        let mut hwm = self.hwm.lock();
        if *hwm >= number {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(HWM_FILE))?;
        f.seek(SeekFrom::Start(0))?;
        // Fixed width, so an overwrite never leaves a longer stale tail.
        f.write_all(format!("{number:016X}\n").as_bytes())?;
        f.sync_data()?;
        sync_dir(&self.dir)?;
        *hwm = number;
        Ok(())
    }

    /// Unlink segment files (after raising the hwm). Errors are logged: a file left behind
    /// holds only finished records and is deleted again at the next start.
    pub(crate) fn delete_segments(&self, segs: &[Arc<Segment>]) {
        for seg in segs {
            self.delete_file(seg.number, &seg.path);
        }
    }

    /// Unlink one segment file (after raising the hwm); errors are logged.
    pub(crate) fn delete_file(&self, number: u64, path: &std::path::Path) {
        if let Err(e) = self.raise_hwm(number) {
            log::error!("spool: cannot record hwm {number:08X}: {e}; keeping file");
            return;
        }
        match std::fs::remove_file(path) {
            Ok(()) => log::debug!("spool: deleted segment {number:08X}"),
            Err(e) => log::warn!("spool: cannot delete {}: {e}", path.display()),
        }
    }

    /// Mark segments sealed; returns those that became deletable (caller deletes them).
    pub(crate) fn seal(&self, segs: &[Arc<Segment>], out: &mut Vec<Arc<Segment>>) {
        let mut idx = self.index.lock();
        for seg in segs {
            match idx.segments.get_mut(&seg.number) {
                Some(e) if e.live > 0 => e.sealed = true,
                Some(_) => {
                    if let Some(e) = idx.segments.remove(&seg.number) {
                        out.push(e.seg);
                    }
                }
                None => out.push(seg.clone()),
            }
        }
    }

    /// Register committed records (called by the syncer after a successful commit).
    pub(crate) fn register<'a>(&self, recs: impl Iterator<Item = (QueueId, Loc)> + 'a) {
        let mut idx = self.index.lock();
        for (id, loc) in recs {
            let entry = idx.segments.entry(loc.seg.number).or_insert_with(|| SegEntry {
                seg: loc.seg.clone(),
                live: 0,
                sealed: false,
            });
            entry.live += 1;
            if let Some(old) = idx.records.insert(id, loc) {
                // Ids are unique; reaching this is a bug. Keep the counts consistent.
                log::error!("spool: duplicate queue id {id} registered");
                if let Some(e) = idx.segments.get_mut(&old.seg.number) {
                    e.live -= 1;
                }
            }
        }
    }

    /// Look a live record up.
    pub(crate) fn lookup(&self, id: QueueId) -> Result<Loc, SpoolError> {
        self.index.lock().records.get(&id).cloned().ok_or(SpoolError::NotFound(id))
    }

    /// Message content, copied out of the spool (the shared read, then one more copy into
    /// a `Vec`: for the bounce service, `queue show` and tests, not the delivery path).
    pub(crate) fn read_message(&self, id: QueueId) -> Result<Vec<u8>, SpoolError> {
        self.read_message_shared(id).map(|content| content.to_vec())
    }

    /// The message content in one shared buffer, read straight into it (one copy out of
    /// the spool, no zero fill first), together with the envelope for the checksum: they
    /// are adjacent in the record and come in with one `preadv`.
    pub(crate) fn read_message_shared(&self, id: QueueId) -> Result<Arc<[u8]>, SpoolError> {
        let loc = self.lookup(id)?;
        let len = usize::try_from(loc.header.message_len)
            .map_err(|_| SpoolError::Io(std::io::Error::other("message too large")))?;
        let env_len = loc.header.envelope_len as usize;
        debug_assert_eq!(
            loc.layout.envelope_offset + env_len as u64,
            loc.layout.message_offset,
            "the content follows the envelope"
        );
        let (envelope, content) = loc.seg.read_published_fresh(
            loc.offset + loc.layout.envelope_offset as usize,
            env_len,
            len,
        )?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&envelope);
        crc.update(&content);
        // Re-verify: bits can rot between recovery and delivery.
        if crc.finalize() != loc.header.payload_crc {
            return Err(SpoolError::Corrupt {
                segment: loc.seg.number,
                offset: loc.offset as u64,
                reason: FormatError::PayloadChecksum,
            });
        }
        Ok(content)
    }

    /// Envelope and current recipient statuses of a live record: the status bytes and the
    /// envelope that follows them are read with one `pread` ([`Segment::read_published`]),
    /// not through the mapping, whose read fault would also map the neighbouring 64 KiB
    /// (the kernel's fault-around) into the RSS for every queued message.
    pub(crate) fn message_info(
        &self,
        id: QueueId,
    ) -> Result<(crate::spool::Envelope, Vec<RcptStatus>, u64), SpoolError> {
        let loc = self.lookup(id)?;
        let rcpts = loc.header.rcpt_count as usize;
        let start = loc.status_offset(0);
        let env_start = loc.offset + loc.layout.envelope_offset as usize;
        let env_end = env_start + loc.header.envelope_len as usize;
        let mut bytes = Vec::with_capacity(env_end - start);
        loc.seg.read_published(start, env_end - start, &mut bytes)?;
        let corrupt = |reason| SpoolError::Corrupt {
            segment: loc.seg.number,
            offset: loc.offset as u64,
            reason,
        };
        let env =
            crate::spool::format::decode_envelope(&bytes[env_start - start..]).map_err(corrupt)?;
        let status = bytes[..rcpts].iter().map(|&b| RcptStatus::read(b)).collect();
        Ok((env, status, loc.header.message_len))
    }

    /// Forget a record that has no pending recipient; returns its segment if deletable.
    pub(crate) fn retire(&self, id: QueueId) -> Option<Arc<Segment>> {
        let mut idx = self.index.lock();
        let loc = idx.records.remove(&id)?;
        let e = idx.segments.get_mut(&loc.seg.number)?;
        e.live -= 1;
        if e.live == 0 && e.sealed {
            return idx.segments.remove(&loc.seg.number).map(|e| e.seg);
        }
        None
    }

    /// See [`super::Spool::cross_off_batch`].
    pub(crate) fn cross_off_batch(
        &self,
        items: &[(QueueId, usize, RcptStatus)],
    ) -> Result<(), SpoolError> {
        let _shared = self.compact_lock.read();
        let mut pages: Vec<(Arc<Segment>, usize)> = Vec::with_capacity(items.len());
        let mut records: Vec<(QueueId, Loc)> = Vec::with_capacity(items.len());
        let mut first_err = None;
        for &(id, i, status) in items {
            let loc = match self.lookup(id) {
                Ok(l) => l,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            if i >= loc.header.rcpt_count as usize {
                first_err.get_or_insert(SpoolError::NoSuchRecipient { id, index: i });
                continue;
            }
            let at = loc.status_offset(i);
            loc.seg.map.store_u8(at, status.as_byte());
            pages.push((Arc::clone(&loc.seg), at / CROSSOFF_PAGE_BYTES));
            if status.is_crossed_off() {
                records.push((id, loc));
            }
        }
        self.crossoff_dirty.lock().extend(pages);
        records.sort_by_key(|(id, _)| *id);
        records.dedup_by_key(|(id, _)| *id);
        let mut dead = Vec::new();
        for (id, loc) in records {
            if loc.all_crossed_off()
                && let Some(seg) = self.retire(id)
            {
                dead.push(seg);
            }
        }
        if !dead.is_empty() {
            self.delete_segments(&dead);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// See [`super::Spool::sync_crossoffs`].
    pub(crate) fn sync_crossoffs(&self) -> Result<usize, SpoolError> {
        let mut pages = std::mem::take(&mut *self.crossoff_dirty.lock());
        if pages.is_empty() {
            return Ok(0);
        }
        pages.sort_by_key(|(seg, page)| (seg.number, *page));
        let mut first_err = None;
        let mut calls = 0;
        let mut i = 0;
        while i < pages.len() {
            // One msync per segment, from its lowest to its highest dirty page.
            let (seg, lo) = (&pages[i].0, pages[i].1);
            let mut hi = lo;
            while i < pages.len() && pages[i].0.number == seg.number {
                hi = pages[i].1;
                i += 1;
            }
            let len = (hi - lo) * CROSSOFF_PAGE_BYTES + 1;
            calls += 1;
            if let Err(e) = seg.map.flush_range(lo * CROSSOFF_PAGE_BYTES, len) {
                first_err.get_or_insert(e.into());
            }
            // The stores faulted their pages (whole large folios, on recent kernels) back
            // into the page tables; drop them again where the syncer had already released
            // them (all of a sealed segment), so cross-offs do not grow the RSS either.
            let from = lo * CROSSOFF_PAGE_BYTES;
            let to = ((hi + 1) * CROSSOFF_PAGE_BYTES)
                .min(seg.released_to.load(std::sync::atomic::Ordering::Relaxed));
            if from < to {
                let _ = seg.map.release(from, to - from);
            }
        }
        first_err.map_or(Ok(calls), Err)
    }

    /// See [`super::Spool::cross_off`].
    pub(crate) fn cross_off(
        &self,
        id: QueueId,
        rcpt_index: usize,
        status: RcptStatus,
    ) -> Result<(), SpoolError> {
        let _shared = self.compact_lock.read();
        let loc = self.lookup(id)?;
        if rcpt_index >= loc.header.rcpt_count as usize {
            return Err(SpoolError::NoSuchRecipient { id, index: rcpt_index });
        }
        let at = loc.status_offset(rcpt_index);
        loc.seg.map.store_u8(at, status.as_byte());
        loc.seg.map.flush_range(at, 1)?;
        if status.is_crossed_off()
            && loc.all_crossed_off()
            && let Some(seg) = self.retire(id)
        {
            self.delete_segments(&[seg]);
        }
        Ok(())
    }
}
