//! `SpoolWriter`: one per worker thread; builds records and hands them to its syncer.
//!
//! Hot path (records up to the spill threshold): `begin` encodes the envelope into a pooled
//! buffer, `append` copies content into it (and updates the CRC), `finish` fills in the
//! header and END marker and copies the record into the mapped segment with one memcpy
//! (records of 8 KiB or more: one `pwrite` into the segment file, see
//! `segment::PWRITE_MIN_BYTES`). No other syscall and, once the pools are warm, no
//! allocation. A record that grows past the
//! threshold is spilled: it moves to its own segment file written with `pwrite`, so memory
//! per open record stays bounded by the threshold.
//!
//! TRUST: callers are the worker's event loop; an `OpenRecord` from another writer is
//! refused, not trusted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::commit::{self, Done, Shared};
use super::format::{
    END_MARKER_BYTES, Envelope, QueueId, RECORD_HEADER_BYTES, RECORD_STATUS_OFFSET, RcptStatus,
    RecordHeader, SEGMENT_FLAG_SPILL, align_up, encode_envelope, end_marker, prefix_len,
};
use super::index::{SpoolInner, now_unix_ms};
use super::map::Appender;
use super::segment::{FIRST_RECORD_OFFSET, Segment, Spill, new_header};
use super::{SpoolError, Ticket};

/// How often `wait_idle` re-checks that the syncer thread is still alive.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// Buffers kept for reuse per writer (more are freed when returned).
const POOL_MAX_BUFFERS: usize = 256;
/// A pooled buffer with more capacity than this counts as large.
const POOL_LARGE_BUFFER_BYTES: usize = 64 * 1024;
/// Large buffers kept for reuse per writer; pool memory is therefore bounded by
/// `POOL_MAX_BUFFERS * POOL_LARGE_BUFFER_BYTES + POOL_MAX_LARGE_BUFFERS * spill threshold`.
const POOL_MAX_LARGE_BUFFERS: usize = 16;
/// Source of writer identities (to refuse records from another writer).
static NEXT_WRITER_TOKEN: AtomicU64 = AtomicU64::new(1);
/// The commit delay never holds back this many records or more.
pub(super) const COMMIT_DELAY_MAX_BATCH: usize = 64;

/// The segment a writer appends to.
struct Active {
    /// The segment (shared with the index and the syncer).
    seg: Arc<Segment>,
    /// The unique right to append to it.
    app: Appender,
    /// Next id ordinal in this segment's id block (ids are `number << 32 | ordinal`).
    next_ordinal: u32,
}

/// A record being received (one per connection in DATA).
///
/// Invariant: `buf` holds the record prefix (header placeholder, status array, padding),
/// the envelope and the content so far, unless `spill` is set, in which case those bytes
/// are in the spill file and `buf` is empty. `crc` covers envelope + content so far.
pub struct OpenRecord {
    /// Its queue id (known from `begin`).
    id: QueueId,
    /// Writer that began it.
    token: u64,
    /// Pooled buffer (see invariant).
    pub(super) buf: Vec<u8>,
    /// Running CRC of envelope + content.
    crc: crc32fast::Hasher,
    /// Recipients (status bytes).
    rcpt_count: u32,
    /// Encoded envelope length.
    envelope_len: u32,
    /// Content bytes so far.
    message_len: u64,
    /// Set once the record outgrew the threshold.
    pub(super) spill: Option<Spill>,
    /// An append failed; the record can only be aborted.
    failed: bool,
    /// Counts this record among its writer's open ones until it is dropped (finished,
    /// aborted, or lost by a caller bug).
    _open: OpenGuard,
}

/// Keeps a writer's count of open records: +1 when made, -1 when dropped.
#[derive(Debug)]
struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    fn new(count: &Arc<AtomicUsize>) -> OpenGuard {
        // Relaxed: the count is only read by the same (worker) thread, as a hint.
        count.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(count))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OpenRecord {
    /// The queue id (for the Received header and logs).
    #[must_use]
    pub fn id(&self) -> QueueId {
        self.id
    }

    /// Content bytes appended so far.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.message_len
    }
}

/// Appends records to this worker's segments; one per worker thread (`Send`, not shared).
pub struct SpoolWriter {
    /// The spool.
    inner: Arc<SpoolInner>,
    /// Worker number (segment headers, thread name).
    worker: u32,
    /// Identity checked against `OpenRecord::token`.
    token: u64,
    /// Current segment; `None` after a failed rotation (next use retries).
    active: Option<Active>,
    /// Last seq handed out by `finish`.
    seq: u64,
    /// Finished records not yet handed to the syncer (in finish order).
    pending: Vec<Done>,
    /// When the oldest record in `pending` was finished.
    pending_since: Option<Instant>,
    /// Records begun and not yet finished or aborted: clients in the middle of a message
    /// (between DATA and the final dot), the load signal of the commit delay.
    open: Arc<AtomicUsize>,
    /// See [`SpoolWriter::set_commit_delay`]; zero: hand over at once.
    commit_delay: Duration,
    /// Segments this writer will not append to again, sealed after the next commit.
    seals: Vec<Arc<Segment>>,
    /// Reusable record buffers.
    pool: Vec<Vec<u8>>,
    /// How many buffers in `pool` are large (capacity > `POOL_LARGE_BUFFER_BYTES`).
    pool_large: usize,
    /// Hand-off state with the syncer.
    shared: Arc<Shared>,
    /// The syncer thread.
    syncer: Option<JoinHandle<()>>,
}

impl SpoolWriter {
    /// Create a writer with a fresh segment and start its syncer thread.
    pub(crate) fn new(
        inner: Arc<SpoolInner>,
        worker: u32,
        on_commit: Box<dyn Fn() + Send + Sync>,
    ) -> Result<SpoolWriter, SpoolError> {
        let shared = Arc::new(Shared::new(worker, on_commit));
        let syncer = {
            let (shared, inner) = (shared.clone(), inner.clone());
            std::thread::Builder::new()
                .name(format!("spool-sync-{worker}"))
                .spawn(move || commit::run(shared, inner))?
        };
        let mut w = SpoolWriter {
            inner,
            worker,
            token: NEXT_WRITER_TOKEN.fetch_add(1, Ordering::Relaxed),
            active: None,
            seq: 0,
            pending: Vec::new(),
            pending_since: None,
            open: Arc::new(AtomicUsize::new(0)),
            commit_delay: Duration::ZERO,
            seals: Vec::new(),
            pool: Vec::new(),
            pool_large: 0,
            shared,
            syncer: Some(syncer),
        };
        w.rotate()?;
        Ok(w)
    }

    /// Seal the current segment (if any) and start a fresh one.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        if let Some(old) = self.active.take() {
            self.seals.push(old.seg);
        }
        let spare = self.shared.spare.lock().take();
        let (seg, app) = match spare {
            Some(s) => s,
            None => {
                let number = self.inner.alloc_segment_number();
                let header = new_header(
                    number,
                    self.worker,
                    0,
                    self.inner.opts.segment_bytes,
                    now_unix_ms(),
                );
                Segment::create(&self.inner.dir, header)?
            }
        };
        log::debug!("spool: worker {} opened segment {:08X}", self.worker, seg.number);
        self.active = Some(Active { seg: Arc::new(seg), app, next_ordinal: 1 });
        Ok(())
    }

    /// If a commit failed, fail everything finished since (same segment) and rotate.
    fn check_poison(&mut self) -> Result<(), SpoolError> {
        let poisoned = {
            let mut st = self.shared.state.lock();
            std::mem::take(&mut st.poisoned)
        };
        if poisoned {
            self.shared.poisoned.store(false, Ordering::Release);
            self.hand_over(true);
            if self.active.is_some() {
                self.rotate()?;
            }
        }
        Ok(())
    }

    fn active(&mut self) -> Result<&mut Active, SpoolError> {
        if self.active.is_none() {
            self.rotate()?;
        }
        // Invariant: rotate() succeeded, so `active` is Some.
        Ok(self.active.as_mut().expect("active segment after rotate"))
    }

    /// Start a record for `env`; its queue id is fixed from now on.
    pub fn begin(&mut self, env: &Envelope) -> Result<OpenRecord, SpoolError> {
        if self.shared.poisoned.load(Ordering::Acquire) {
            self.check_poison()?;
        }
        let active = self.active()?;
        if active.next_ordinal == u32::MAX {
            self.rotate()?;
        }
        let active = self.active()?;
        let id = QueueId(active.seg.number << 32 | u64::from(active.next_ordinal));
        active.next_ordinal += 1;

        let mut buf = self.pool.pop().unwrap_or_default();
        if buf.capacity() > POOL_LARGE_BUFFER_BYTES {
            self.pool_large -= 1;
        }
        buf.clear();
        let rcpt_count = u32::try_from(env.recipients.len()).unwrap_or(u32::MAX);
        let prefix = prefix_len(rcpt_count);
        buf.resize(prefix, 0);
        buf[RECORD_STATUS_OFFSET..RECORD_STATUS_OFFSET + rcpt_count as usize]
            .fill(RcptStatus::Pending.as_byte());
        encode_envelope(env, &mut buf);
        let envelope_len = u32::try_from(buf.len() - prefix).unwrap_or(u32::MAX);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&buf[prefix..]);
        let mut rec = OpenRecord {
            id,
            token: self.token,
            buf,
            crc,
            rcpt_count,
            envelope_len,
            message_len: 0,
            spill: None,
            failed: false,
            _open: OpenGuard::new(&self.open),
        };
        if rec.buf.len() > self.inner.spill_threshold
            && let Err(e) = self.spill(&mut rec)
        {
            self.abort(rec);
            return Err(e);
        }
        Ok(rec)
    }

    /// Move a record's bytes to its own spill segment.
    fn spill(&mut self, rec: &mut OpenRecord) -> Result<(), SpoolError> {
        let number = self.inner.alloc_segment_number();
        let header = new_header(number, self.worker, SEGMENT_FLAG_SPILL, 0, now_unix_ms());
        let mut spill = Spill::create(&self.inner.dir, header)?;
        spill.write(&rec.buf)?;
        log::debug!("spool: record {} spilled to segment {number:08X}", rec.id);
        let buf = std::mem::take(&mut rec.buf);
        self.give_back(buf);
        rec.spill = Some(spill);
        Ok(())
    }

    fn give_back(&mut self, mut buf: Vec<u8>) {
        let large = buf.capacity() > POOL_LARGE_BUFFER_BYTES;
        if self.pool.len() >= POOL_MAX_BUFFERS
            || buf.capacity() == 0
            || (large && self.pool_large >= POOL_MAX_LARGE_BUFFERS)
        {
            return; // freed
        }
        self.pool_large += usize::from(large);
        buf.clear();
        self.pool.push(buf);
    }

    fn check_record(&self, rec: &OpenRecord) -> Result<(), SpoolError> {
        if rec.token != self.token || rec.failed {
            return Err(SpoolError::BadRecord(rec.id));
        }
        Ok(())
    }

    /// Append content bytes. On error (e.g. [`SpoolError::NoSpace`] while spilling) the
    /// record can only be aborted.
    pub fn append(&mut self, rec: &mut OpenRecord, bytes: &[u8]) -> Result<(), SpoolError> {
        self.check_record(rec)?;
        rec.crc.update(bytes);
        rec.message_len += bytes.len() as u64;
        let r = if let Some(spill) = rec.spill.as_mut() {
            spill.write(bytes)
        } else if rec.buf.len() + bytes.len() + END_MARKER_BYTES > self.inner.spill_threshold {
            self.spill(rec).and_then(|()| match rec.spill.as_mut() {
                Some(s) => s.write(bytes),
                None => unreachable!("spill() sets rec.spill"),
            })
        } else {
            rec.buf.extend_from_slice(bytes);
            Ok(())
        };
        if r.is_err() {
            rec.failed = true;
        }
        r
    }

    /// Close the record (header, END marker) and queue it for the next group commit. The
    /// message may be acknowledged once `poll_committed() >= ticket.seq`.
    #[must_use = "the ticket's seq says when the message may get its 250"]
    pub fn finish(&mut self, mut rec: OpenRecord) -> Result<Ticket, SpoolError> {
        if let Err(e) = self.check_record(&rec) {
            self.abort(rec);
            return Err(e);
        }
        if self.shared.poisoned.load(Ordering::Acquire) {
            // Do not put this record into a poisoned segment.
            self.check_poison()?;
        }
        let header = RecordHeader {
            id: rec.id,
            rcpt_count: rec.rcpt_count,
            envelope_len: rec.envelope_len,
            message_len: rec.message_len,
            payload_crc: rec.crc.clone().finalize(),
        };
        let (hb, hcrc) = header.encode();
        let end = end_marker(hcrc);
        let placed = match rec.spill.take() {
            Some(spill) => self.finish_spill(spill, &hb, &end),
            None => self.finish_buffered(&mut rec, &hb, &end),
        };
        let buf = std::mem::take(&mut rec.buf);
        self.give_back(buf);
        let (seg, offset) = placed?;
        self.seq += 1;
        if self.pending.is_empty() {
            self.pending_since = Some(Instant::now());
        }
        self.pending.push(Done { seq: self.seq, id: rec.id, seg, offset, header });
        Ok(Ticket { id: rec.id, seq: self.seq })
    }

    fn finish_buffered(
        &mut self,
        rec: &mut OpenRecord,
        hb: &[u8; RECORD_HEADER_BYTES],
        end: &[u8; END_MARKER_BYTES],
    ) -> Result<(Arc<Segment>, usize), SpoolError> {
        rec.buf[..RECORD_HEADER_BYTES].copy_from_slice(hb);
        rec.buf.extend_from_slice(end);
        let total = align_up(rec.buf.len() as u64) as usize;
        rec.buf.resize(total, 0);
        let capacity = self.inner.opts.segment_bytes as usize - FIRST_RECORD_OFFSET;
        if total > capacity {
            // Cannot fit even an empty segment (huge envelope): use a spill segment.
            let number = self.inner.alloc_segment_number();
            let h = new_header(number, self.worker, SEGMENT_FLAG_SPILL, 0, now_unix_ms());
            let mut spill = Spill::create(&self.inner.dir, h)?;
            spill.write(&rec.buf)?;
            return self.seal_spill(spill);
        }
        let room = {
            let a = self.active()?;
            a.seg.map.len() - a.seg.map.tail()
        };
        if total > room {
            self.rotate()?;
        }
        let a = self.active()?;
        let offset = a.seg.append(&mut a.app, &rec.buf)?;
        Ok((a.seg.clone(), offset))
    }

    fn finish_spill(
        &mut self,
        mut spill: Spill,
        hb: &[u8; RECORD_HEADER_BYTES],
        end: &[u8; END_MARKER_BYTES],
    ) -> Result<(Arc<Segment>, usize), SpoolError> {
        spill.write(end)?;
        let unaligned = spill.written();
        let pad = (align_up(unaligned) - unaligned) as usize;
        spill.write(&[0u8; 8][..pad])?;
        spill.write_at(FIRST_RECORD_OFFSET as u64, hb)?;
        self.seal_spill(spill)
    }

    fn seal_spill(&mut self, spill: Spill) -> Result<(Arc<Segment>, usize), SpoolError> {
        let seg = Arc::new(spill.into_segment()?);
        self.seals.push(seg.clone());
        Ok((seg, FIRST_RECORD_OFFSET))
    }

    /// Discard an open record (nothing of it will ever be recovered).
    pub fn abort(&mut self, mut rec: OpenRecord) {
        drop(rec.spill.take()); // removes the spill file
        let buf = std::mem::take(&mut rec.buf);
        self.give_back(buf);
    }

    /// Hand pending records (and seals) to the syncer if no commit is in flight.
    fn hand_over(&mut self, fail: bool) -> bool {
        if self.pending.is_empty() && self.seals.is_empty() {
            return true;
        }
        if self.shared.in_flight.load(Ordering::Acquire) {
            return false;
        }
        let mut st = self.shared.state.lock();
        if st.in_flight {
            return false;
        }
        if st.poisoned && !fail {
            // A commit failed since the last look: these records share its segment.
            return false;
        }
        debug_assert!(st.job.is_empty() && st.seals.is_empty());
        self.pending_since = None;
        std::mem::swap(&mut st.job, &mut self.pending);
        std::mem::swap(&mut st.seals, &mut self.seals);
        st.fail = fail;
        st.in_flight = true;
        self.shared.in_flight.store(true, Ordering::Release);
        drop(st);
        self.shared.work.notify_one();
        true
    }

    /// Let [`SpoolWriter::flush`] hold finished records back for up to `delay` while it
    /// pays: only while another record of this writer is open (a client between DATA and
    /// its final dot, about to finish and join this commit rather than wait for the next
    /// one), and while fewer than 64 (`COMMIT_DELAY_MAX_BATCH`) are pending. The records
    /// go at once when the last open one finishes, so a lone client, or clients that are
    /// all waiting for their 250, never wait for the delay: the hold-back follows the
    /// arrivals instead of a fixed delay every commit pays (as PostgreSQL's
    /// `commit_delay` with `commit_siblings`, where the siblings are open transactions).
    /// The caller must call `flush` again by [`SpoolWriter::flush_deadline`].
    pub fn set_commit_delay(&mut self, delay: Duration) {
        self.commit_delay = delay;
    }

    /// When `flush` must run again for records it held back (see
    /// [`SpoolWriter::set_commit_delay`]); `None` when nothing is held back.
    #[must_use]
    pub fn flush_deadline(&self) -> Option<Instant> {
        // While a commit is in flight `flush` can hand nothing over, and its end wakes the
        // caller (`on_commit`, after `in_flight` is cleared): no deadline then. Otherwise a
        // deadline that passed during the commit made the loop poll with a zero timeout
        // until the msync was done (~290 `epoll_wait`s per 100 KiB message, perf/RESULTS.md
        // 2026-12-05 19:55).
        if self.shared.in_flight.load(Ordering::Acquire) {
            return None;
        }
        // Possibly already past: then the caller's next pass (at once) hands them over.
        self.hold_back_until()
    }

    /// Until when `flush` may hold the pending records back (the delay's conditions other
    /// than time); `None`: it must not.
    fn hold_back_until(&self) -> Option<Instant> {
        let under_load = !self.commit_delay.is_zero()
            && self.seals.is_empty()
            && self.open.load(Ordering::Relaxed) > 0
            && self.pending.len() < COMMIT_DELAY_MAX_BATCH;
        self.pending_since.filter(|_| under_load).map(|t| t + self.commit_delay)
    }

    /// True when `flush` should hold the pending records back a little longer.
    fn hold_back(&self, now: Instant) -> bool {
        self.hold_back_until().is_some_and(|until| now < until)
    }

    /// Start a group commit of every finished record if none is in flight (unless the
    /// commit delay holds them back). Call once per event-loop pass (and after
    /// `on_commit` woke the loop, and by [`SpoolWriter::flush_deadline`]).
    pub fn flush(&mut self) {
        self.flush_inner(false);
    }

    /// `flush`; `now`: ignore the commit delay.
    fn flush_inner(&mut self, now: bool) {
        if self.pending.is_empty() && self.seals.is_empty() {
            return;
        }
        if !now && self.hold_back(Instant::now()) {
            return;
        }
        if !self.hand_over(false) && !self.shared.in_flight.load(Ordering::Acquire) {
            // Refused because of poison: fail what we hold and move to a new segment.
            if let Err(e) = self.check_poison() {
                log::error!("spool: worker {} cannot open a new segment: {e}", self.worker);
            }
        }
    }

    /// Highest durable seq so far. `Err((through, e))`: a commit failed; every record with
    /// seq <= `through` not yet reported durable failed (answer 451 4.3.0); it is reported
    /// once, and the next call returns the durable seq again.
    pub fn poll_committed(&mut self) -> Result<u64, (u64, SpoolError)> {
        // Load `committed` FIRST: the syncer records a failure before it publishes any
        // later success, so if we see that success we also see the failure flag and report
        // the failure first (never a 250 for a failed seq).
        let committed = self.shared.committed.load(Ordering::Acquire);
        if self.shared.has_failure.load(Ordering::Acquire) {
            let mut st = self.shared.state.lock();
            if let Some(f) = st.failure.take() {
                self.shared.has_failure.store(false, Ordering::Release);
                return Err(f);
            }
        }
        Ok(committed)
    }

    /// True while some finished record is not yet reported durable or failed.
    #[must_use]
    pub fn has_uncommitted(&self) -> bool {
        !self.pending.is_empty() || self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Block until every finished record is committed or failed (tests, shutdown); the
    /// commit delay does not apply.
    pub fn wait_idle(&mut self) {
        loop {
            self.flush_inner(true);
            let mut st = self.shared.state.lock();
            while st.in_flight {
                if self.syncer.as_ref().is_none_or(|h| h.is_finished()) {
                    // The syncer is gone (it panicked: a bug); nothing will complete.
                    log::error!("spool: worker {} syncer thread is gone", self.worker);
                    return;
                }
                self.shared.idle.wait_for(&mut st, IDLE_POLL);
            }
            drop(st);
            if self.pending.is_empty() && self.seals.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
impl SpoolWriter {
    /// Wait (bounded) until the syncer has pre-created the spare segment, so that no file
    /// changes behind a test's back.
    pub(super) fn wait_spare(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.shared.spare.lock().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Pretend a commit is (or is no longer) in flight, without a job (tests of `flush`'s
    /// rules around an in-flight commit, which a real syncer ends at its own pace).
    pub(super) fn fake_in_flight(&self, on: bool) {
        self.shared.state.lock().in_flight = on;
        self.shared.in_flight.store(on, Ordering::Release);
    }

    /// (buffers pooled, of which large, total pooled capacity).
    pub(super) fn pool_stats(&self) -> (usize, usize, usize) {
        (self.pool.len(), self.pool_large, self.pool.iter().map(Vec::capacity).sum())
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        // Commit what is finished, seal the active segment, stop the syncer.
        if let Some(a) = self.active.take() {
            self.seals.push(a.seg);
        }
        self.wait_idle();
        self.shared.state.lock().shutdown = true;
        self.shared.work.notify_one();
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
        // An unused pre-created segment holds no record: remove it (after unmapping).
        if let Some((seg, _app)) = self.shared.spare.lock().take() {
            let (number, path) = (seg.number, seg.path.clone());
            drop(seg);
            self.inner.delete_file(number, &path);
        }
    }
}
