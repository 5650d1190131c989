//! The durable queue in `Queue/`: mmap'd segment files, group commit, recovery, cross-off,
//! compaction, free-space checks. Beside the segments: the advisory delivery-state files
//! (`state`, `Queue/state/<ID>`, written by the queue runner) and the read-only `queue
//! list` view of both (`listing`, for the CLI and the admin listener), with `queue show`
//! (`show`) and the qshape table (`shape`).
//!
//! TRUST: `Queue/` is ours alone (mode 0700, `Queue/lock` held with `flock` by the running
//! server); files in it are read back with full verification because a crash or a disk can
//! tear or flip them. Envelope and message bytes are stored as given, never interpreted.
//!
//! STANDARDS: RFC 5321 §4.5.3.1 / §6.1 ("it MUST NOT lose the message" once it has accepted
//! responsibility by sending 250 to DATA): that is the commit rule below.
//!
//! # Crash rules (written before the code, STYLE.md rule 16)
//!
//! **What may be lost in a crash:** only records whose group commit did not complete. Such
//! a record never got its 250 (the 250 is sent only after [`SpoolWriter::poll_committed`]
//! reports its seq), so the client still owns the message and will retry.
//!
//! **What must never be lost:** a record whose commit completed (its seq was reported
//! durable). Recipient cross-offs may be lost (the byte did not reach the disk; with
//! [`Spool::cross_off_batch`] that is up to the last [`Spool::sync_crossoffs`] after a power
//! loss): that means a duplicate delivery after the crash, never a lost message.
//!
//! **What must never come back:** a torn record (any record whose header checksum, status
//! bytes, payload checksum or END marker does not verify), a record whose commit *failed*
//! (its client got 451; it is marked dead in place before the failure is reported), and a
//! record aborted before `finish`.
//!
//! **Commit order:**
//! 1. the worker writes the whole record (header, status bytes, envelope, message, END) into
//!    the mapped segment (blocks reserved beforehand with `fallocate`, so no SIGBUS);
//! 2. the syncer thread `msync(MS_SYNC)`s the range `[synced_to, end of last record)` of each
//!    segment touched (it includes the segment header the first time), `fdatasync`s spill
//!    files, and `fsync`s `Queue/` once for any newly created file;
//! 3. only then is the highest seq in the batch published as committed and `on_commit`
//!    called; the worker answers 250 for every ticket with `seq <= committed`.
//!
//! **Failed commits:** if msync/fdatasync fails, the whole batch fails. Page state after a
//! failed writeback is unknown (Linux may mark the pages clean), so the segment is
//! *poisoned*: every record finished after the batch also fails (conservatively: all records
//! the writer holds at that moment, whatever their segment), the writer rotates to
//! a new segment, and each failed record's magic is overwritten with `MRdd` (dead) and
//! msynced (best effort) before the failure is reported. Because of this rule, in every
//! segment the committed records form a prefix of the live records, so recovery may stop a
//! segment at the first record that does not verify without losing a committed record.
//!
//! **Recovery:** every segment is read and every record verified; a segment stops at the
//! first record whose header does not verify (torn tail: the rest of a preallocated segment
//! is zeros). A record whose header verifies but whose payload or END marker does not is
//! skipped by its (checksummed) length, and reading goes on after it; so are dead records. Two live copies of one
//! QueueId can exist only after a crash during compaction; the copy in the higher-numbered
//! segment wins (its statuses are at least as current) and the other is marked dead.
//!
//! **Deletion:** a segment file is unlinked only when it is sealed (no writer will append to
//! it again) and no record in it has a pending recipient. Before unlinking the
//! highest-numbered segment ever, `Queue/hwm` records that number so that segment numbers
//! (and so queue ids) never repeat across restarts.
//!
//! # Threads
//!
//! Each [`SpoolWriter`] belongs to one worker thread and has one syncer thread
//! (`spool-sync-N`). The worker appends with plain memory copies (no syscalls for records
//! up to the spill threshold, no allocation in steady state); the syncer performs the
//! msync/fdatasync, updates the shared index and calls `on_commit`. At most one commit per
//! writer is in flight (pipeline depth 1); records finished meanwhile wait for the next one.
//! [`Spool`] methods (`cross_off`, `read_message`, `compact`) may run on any thread.
//!
//! # Use from an event loop
//!
//! ```no_run
//! # use mailroot::spool::*;
//! # fn demo(spool: &Spool, env: &Envelope, waker: std::sync::Arc<mio::Waker>) -> Result<(), SpoolError> {
//! let mut w = spool.writer(0, Box::new(move || { let _ = waker.wake(); }))?;
//! let mut rec = w.begin(env)?;            // rec.id() goes into the Received header
//! w.append(&mut rec, b"Subject: hi\r\n\r\nbody\r\n")?;
//! let ticket = w.finish(rec)?;            // keep (ticket.seq, connection) as pending
//! w.flush();                               // once per loop pass
//! // ... after the waker fired:
//! match w.poll_committed() {
//!     Ok(durable) => { /* 250 for every pending ticket with seq <= durable */ }
//!     Err((failed_through, _e)) => { /* 451 for every pending seq <= failed_through */ }
//! }
//! # let _ = ticket; Ok(()) }
//! ```

mod commit;
mod compact;
pub mod format;
mod index;
pub mod listing;
mod map;
mod recover;
mod segment;
pub mod shape;
pub mod show;
mod space;
pub mod state;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use format::{Envelope, EnvelopeRecipient, FormatError, QueueId, RcptStatus};
pub use recover::{VerifiedSegment, scan, scan_one, verify_segment};
pub use writer::{OpenRecord, SpoolWriter};

use index::SpoolInner;

/// Default segment size (bytes reserved per segment file).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest accepted segment size; smaller values are raised to it.
pub const MIN_SEGMENT_BYTES: u64 = 64 * 1024;
/// Records larger than this (or a quarter of the segment size, if smaller) are spilled to
/// their own segment file instead of being buffered in memory.
pub const MAX_BUFFERED_RECORD_BYTES: usize = 256 * 1024;
/// How long a free-space reading is reused.
pub const FREE_SPACE_CACHE_MS: u64 = 250;

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The filesystem (or quota) is full: blocks could not be reserved. The record being
    /// written is discarded and can never be recovered. Answer 452 4.3.1.
    #[error("no space left in the spool")]
    NoSpace,
    /// Any other I/O error from the OS (including a failed msync/fdatasync).
    #[error("spool I/O error: {0}")]
    Io(io::Error),
    /// A segment file does not verify where it must (e.g. reading a record the index says
    /// is committed).
    #[error("corrupt spool segment {segment:08X} at offset {offset}: {reason}")]
    Corrupt {
        /// Segment number.
        segment: u64,
        /// Byte offset in the segment.
        offset: u64,
        /// What did not verify.
        reason: FormatError,
    },
    /// No live message with this queue id.
    #[error("no queued message {0}")]
    NotFound(QueueId),
    /// The recipient index is not below the message's recipient count.
    #[error("message {id} has no recipient #{index}")]
    NoSuchRecipient {
        /// The message.
        id: QueueId,
        /// The index asked for.
        index: usize,
    },
    /// Another process holds `Queue/lock` (a server is already running on this spool).
    #[error("spool {0} is locked by another process")]
    Locked(PathBuf),
    /// The record was begun by another writer, or failed earlier and must be aborted.
    #[error("record {0} is not usable with this writer")]
    BadRecord(QueueId),
}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> SpoolError {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => SpoolError::NoSpace,
            _ => SpoolError::Io(e),
        }
    }
}

/// Tunables of the spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Bytes reserved per segment file (at least [`MIN_SEGMENT_BYTES`]).
    pub segment_bytes: u64,
    /// [`Spool::has_free_space`] is false below this many available bytes.
    pub min_free_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> SpoolOptions {
        SpoolOptions { segment_bytes: DEFAULT_SEGMENT_BYTES, min_free_bytes: 100 * 1024 * 1024 }
    }
}

/// A message found in the queue (by recovery or [`scan`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Its queue id.
    pub id: QueueId,
    /// Its envelope.
    pub envelope: Envelope,
    /// Length of the stored message content.
    pub message_bytes: u64,
    /// One status per envelope recipient (at least one is Pending).
    pub rcpt_status: Vec<RcptStatus>,
}

/// Returned by [`SpoolWriter::finish`]: the record's id and commit sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Queue id (already known since `begin`).
    pub id: QueueId,
    /// Per-writer sequence number; durable once `poll_committed() >= seq`.
    pub seq: u64,
}

/// The spool: cheap to clone (an `Arc` inside), `Send + Sync`.
#[derive(Clone)]
pub struct Spool {
    /// Shared state: options, segment number allocator, index of live records.
    inner: Arc<SpoolInner>,
}

impl Spool {
    /// Create `Queue/` if needed, take its lock, recover: verify every record, drop torn
    /// tails, delete finished segments, and return the live messages in arrival order.
    pub fn open(
        queue_dir: &Path,
        opts: SpoolOptions,
    ) -> Result<(Spool, Vec<QueuedMessage>), SpoolError> {
        let (inner, found) = recover::open(queue_dir, opts)?;
        Ok((Spool { inner: Arc::new(inner) }, found))
    }

    /// One writer per worker thread. `on_commit` is called from the writer's syncer thread
    /// after each group commit (successful or failed).
    pub fn writer(
        &self,
        worker: u32,
        on_commit: Box<dyn Fn() + Send + Sync>,
    ) -> Result<SpoolWriter, SpoolError> {
        SpoolWriter::new(self.inner.clone(), worker, on_commit)
    }

    /// True when the spool's filesystem has at least `min_free_bytes` available
    /// (`statvfs`, cached for [`FREE_SPACE_CACHE_MS`]). An error reading it counts as full.
    #[must_use]
    pub fn has_free_space(&self) -> bool {
        self.inner.space.has_free_space()
    }

    /// Change the free-space threshold (`limits.min_free_disk`, a reload).
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.inner.space.set_min_free_bytes(bytes);
    }

    /// The free-space threshold in bytes.
    #[must_use]
    pub fn min_free_bytes(&self) -> u64 {
        self.inner.space.min_free_bytes()
    }

    /// The message content exactly as stored (its checksum is verified again;
    /// [`SpoolError::Corrupt`] if the bytes changed on disk since they were written).
    pub fn read_message(&self, id: QueueId) -> Result<Vec<u8>, SpoolError> {
        self.inner.read_message(id)
    }

    /// [`Spool::read_message`] into a shared buffer (`pread` straight into the `Arc`): the
    /// one copy of a delivery attempt's content out of the spool, shared by every thread
    /// that sends it.
    pub fn read_message_shared(&self, id: QueueId) -> Result<Arc<[u8]>, SpoolError> {
        self.inner.read_message_shared(id)
    }

    /// A live message's envelope, its recipients' current statuses and its content length
    /// (for the queue runner; no message bytes are read).
    pub fn message_info(&self, id: QueueId) -> Result<QueuedMessage, SpoolError> {
        let (envelope, rcpt_status, message_bytes) = self.inner.message_info(id)?;
        Ok(QueuedMessage { id, envelope, message_bytes, rcpt_status })
    }

    /// Set recipient `rcpt_index`'s status with a one-byte in-place write, msync its page,
    /// and delete the segment once it is sealed and has no pending recipient left.
    pub fn cross_off(
        &self,
        id: QueueId,
        rcpt_index: usize,
        status: RcptStatus,
    ) -> Result<(), SpoolError> {
        self.inner.cross_off(id, rcpt_index, status)
    }

    /// [`Spool::cross_off`] for many recipients at once, written lazily: every byte is
    /// stored in the mapping (visible to readers and kept across a process crash, since the
    /// page cache outlives the process), emptied segments are deleted, and the touched pages
    /// are remembered for [`Spool::sync_crossoffs`] instead of being msynced here. Until that
    /// runs, a power loss or OS crash can undo these cross-offs, which means a duplicate
    /// delivery after restart, never a lost message (the at-least-once contract of SMTP;
    /// Postfix's unlinked queue files have the same window). Errors for single items
    /// (unknown id or index) do not stop the others; the first error is returned.
    pub fn cross_off_batch(
        &self,
        items: &[(QueueId, usize, RcptStatus)],
    ) -> Result<(), SpoolError> {
        self.inner.cross_off_batch(items)
    }

    /// msync every page [`Spool::cross_off_batch`] touched since the last call: one msync
    /// per segment, over the range from its lowest to its highest dirty page. Returns the
    /// number of msync calls. The queue runner calls it about once a second and on exit.
    pub fn sync_crossoffs(&self) -> Result<usize, SpoolError> {
        self.inner.sync_crossoffs()
    }

    /// Copy live records of sealed segments created more than `older_than_ms` ago forward
    /// into a fresh segment, commit it, then mark the old copies dead so the old segments
    /// can be deleted. Returns how many records moved. Queue ids do not change.
    pub fn compact(&self, older_than_ms: u64) -> Result<usize, SpoolError> {
        compact::compact(&self.inner, older_than_ms)
    }

    /// The spool directory.
    #[must_use]
    pub fn queue_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Number of live (committed, not fully crossed off) messages.
    #[must_use]
    pub fn live_messages(&self) -> usize {
        self.inner.index.lock().records.len()
    }

    /// What recovery found when this spool was opened (`segments`: kept at open).
    #[must_use]
    pub fn recovery_summary(&self) -> RecoverySummary {
        self.inner.recovery
    }

    /// Number of segment files the spool currently tracks (live ones, plus active ones).
    #[must_use]
    pub fn tracked_segments(&self) -> usize {
        self.inner.index.lock().segments.len()
    }
}

/// What [`Spool::open`] found: reported once as the `spool.recovered` event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoverySummary {
    /// Segment files kept (holding live records).
    pub segments: u64,
    /// Segments whose unverifiable tail was left unread (a crash while appending).
    pub torn_tails: u64,
    /// Records skipped because their header verified but their envelope or content did
    /// not (media corruption, or a crash that wrote a record's first page only); the
    /// records after them were kept.
    pub bad_records: u64,
    /// Segments whose header did not verify, renamed `*.seg.corrupt`.
    pub corrupt_segments: u64,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crash;
#[cfg(test)]
mod tests_large;
#[cfg(test)]
mod tests_torn;
