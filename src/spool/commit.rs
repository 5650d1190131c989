//! Group commit: the per-writer syncer thread and the hand-off between it and the worker.
//!
//! The worker hands over every record finished since the last hand-off (a `Vec<Done>`
//! swapped, never reallocated) when no commit is in flight; the syncer msyncs/fdatasyncs,
//! registers the records in the index, publishes the highest seq and calls `on_commit`.
//! See the crash rules in `spool/mod.rs`.
//!
//! TRUST: the records handed over were fully written by the worker before the hand-off
//! (the mutex hand-off orders those memory writes before the msync).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use super::SpoolError;
use super::format::{QueueId, RECORD_MAGIC_DEAD, RecordHeader};
use super::index::now_unix_ms;
use super::index::{Loc, SpoolInner};
use super::map::Appender;
use super::segment::{Segment, new_header, sync_dir};

/// A finished record waiting for (or in) a commit.
pub(crate) struct Done {
    /// Its per-writer sequence number.
    pub(crate) seq: u64,
    /// Its queue id.
    pub(crate) id: QueueId,
    /// Segment holding it.
    pub(crate) seg: Arc<Segment>,
    /// Offset of the record in the segment.
    pub(crate) offset: usize,
    /// Its header.
    pub(crate) header: RecordHeader,
}

impl Done {
    fn end(&self) -> usize {
        // The record was appended inside the map, so its end fits in usize.
        self.offset + self.header.layout().total_len as usize
    }
}

/// State shared by a writer and its syncer, under `Shared::state`.
#[derive(Default)]
pub(crate) struct SyncState {
    /// Records of the commit in flight (empty when idle; the vec is swapped back and forth).
    pub(crate) job: Vec<Done>,
    /// Segments to seal after the job's records are registered.
    pub(crate) seals: Vec<Arc<Segment>>,
    /// The job must be failed without syncing (its segment was poisoned).
    pub(crate) fail: bool,
    /// A job was handed over and is not finished.
    pub(crate) in_flight: bool,
    /// The writer is gone: finish the current job and exit.
    pub(crate) shutdown: bool,
    /// A commit failed since the writer last looked: it must rotate and fail what it holds.
    pub(crate) poisoned: bool,
    /// Failure to report from `poll_committed`: (highest failed seq, first error).
    pub(crate) failure: Option<(u64, SpoolError)>,
}

/// Shared between one writer and its syncer thread.
pub(crate) struct Shared {
    /// The hand-off state.
    pub(crate) state: Mutex<SyncState>,
    /// Signalled when a job is handed over or on shutdown.
    pub(crate) work: Condvar,
    /// Signalled when a job finishes.
    pub(crate) idle: Condvar,
    /// Highest seq durably committed (monotonic).
    pub(crate) committed: AtomicU64,
    /// Mirror of `state.in_flight` for a lock-free check on the worker's hot path.
    pub(crate) in_flight: AtomicBool,
    /// Mirror of `state.poisoned`.
    pub(crate) poisoned: AtomicBool,
    /// Mirror of `state.failure.is_some()`.
    pub(crate) has_failure: AtomicBool,
    /// Wakes the worker (its mio Waker).
    pub(crate) on_commit: Box<dyn Fn() + Send + Sync>,
    /// The writer's worker number (for headers of pre-created segments).
    pub(crate) worker: u32,
    /// A fresh segment pre-created by the syncer, so that rotation on the worker's thread
    /// is a pointer swap rather than open + fallocate + mmap.
    pub(crate) spare: Mutex<Option<(Segment, Appender)>>,
}

impl Shared {
    /// Fresh shared state.
    pub(crate) fn new(worker: u32, on_commit: Box<dyn Fn() + Send + Sync>) -> Shared {
        Shared {
            state: Mutex::new(SyncState::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
            committed: AtomicU64::new(0),
            in_flight: AtomicBool::new(false),
            has_failure: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            on_commit,
            worker,
            spare: Mutex::new(None),
        }
    }
}

/// Make every record of `job` durable. `touched` is scratch space (kept to avoid allocating).
fn sync_job(
    inner: &SpoolInner,
    job: &[Done],
    touched: &mut Vec<(Arc<Segment>, usize)>,
) -> io::Result<()> {
    #[cfg(test)]
    if inner.fail_next_commit.swap(false, Ordering::SeqCst) {
        return Err(io::Error::other("injected commit failure"));
    }
    touched.clear();
    for d in job {
        match touched.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &d.seg)) {
            Some(t) => t.1 = t.1.max(d.end()),
            None => touched.push((d.seg.clone(), d.end())),
        }
    }
    let mut new_file = false;
    for (seg, end) in touched.iter() {
        let first = !seg.dir_synced.load(Ordering::Acquire);
        if seg.is_spill() || first {
            // Spill records were written with pwrite; a new segment's size/extents must be
            // durable too. fdatasync covers both (once per segment for mapped ones).
            if !seg.is_spill() {
                seg.map.flush_range(0, seg.flush_end(*end))?;
            }
            seg.file.sync_data()?;
        } else {
            let from = seg.synced_to.load(Ordering::Acquire);
            if *end > from {
                seg.map.flush_range(from, seg.flush_end(*end) - from)?;
            }
        }
        new_file |= first;
    }
    if new_file {
        sync_dir(&inner.dir)?;
    }
    for (seg, end) in touched.iter() {
        seg.synced_to.fetch_max(*end, Ordering::AcqRel);
        seg.dir_synced.store(true, Ordering::Release);
        seg.release_durable(false);
    }
    Ok(())
}

/// Overwrite the magic of every record in `job` with the dead magic and flush (best
/// effort): these records got (or will get) 451 and must never be recovered.
fn kill_job(job: &[Done]) {
    for d in job {
        d.seg.map.store_u32(d.offset, RECORD_MAGIC_DEAD);
    }
    for d in job {
        let r = if d.seg.is_spill() {
            d.seg.map.flush_range(d.offset, 4).and_then(|()| d.seg.file.sync_data())
        } else {
            d.seg.map.flush_range(d.offset, 4)
        };
        if let Err(e) = r {
            log::error!("spool: cannot mark failed record {} dead: {e}", d.id);
        }
    }
}

/// The syncer thread's body; returns when the writer shuts it down.
pub(crate) fn run(shared: Arc<Shared>, inner: Arc<SpoolInner>) {
    let mut job: Vec<Done> = Vec::new();
    let mut seals: Vec<Arc<Segment>> = Vec::new();
    let mut deletable: Vec<Arc<Segment>> = Vec::new();
    let mut touched: Vec<(Arc<Segment>, usize)> = Vec::new();
    loop {
        let fail = {
            let mut st = shared.state.lock();
            while !st.in_flight && !st.shutdown {
                shared.work.wait(&mut st);
            }
            if !st.in_flight {
                return;
            }
            std::mem::swap(&mut job, &mut st.job);
            std::mem::swap(&mut seals, &mut st.seals);
            st.fail
        };
        let result = match job.last() {
            None => Ok(()),
            Some(_) if fail => Err(io::Error::other("an earlier commit in this segment failed")),
            Some(_) => sync_job(&inner, &job, &mut touched),
        };
        touched.clear();
        let through = job.last().map(|d| d.seq);
        let failure = match (result, through) {
            (Ok(()), Some(t)) => {
                inner.register(job.iter().map(|d| {
                    let loc = Loc {
                        seg: d.seg.clone(),
                        offset: d.offset,
                        header: d.header,
                        layout: d.header.layout(),
                    };
                    (d.id, loc)
                }));
                shared.committed.fetch_max(t, Ordering::AcqRel);
                None
            }
            (Err(e), Some(t)) => {
                log::error!("spool: group commit of {} records failed: {e}", job.len());
                kill_job(&job);
                Some((t, SpoolError::from(e)))
            }
            _ => None,
        };
        inner.seal(&seals, &mut deletable);
        for seg in &seals {
            seg.release_durable(true);
        }
        inner.delete_segments(&deletable);
        deletable.clear();
        seals.clear();
        job.clear();
        {
            let mut st = shared.state.lock();
            if let Some((t, e)) = failure {
                if !fail {
                    // A fail job is the writer's answer to an earlier poison: it has already
                    // moved to a new segment, so it must not be told to move again (that
                    // would fail records of the healthy new segment).
                    st.poisoned = true;
                    shared.poisoned.store(true, Ordering::Release);
                }
                st.failure = match st.failure.take() {
                    Some((t0, e0)) => Some((t0.max(t), e0)),
                    None => Some((t, e)),
                };
                shared.has_failure.store(true, Ordering::Release);
            }
            std::mem::swap(&mut job, &mut st.job);
            std::mem::swap(&mut seals, &mut st.seals);
            st.in_flight = false;
            st.fail = false;
            shared.in_flight.store(false, Ordering::Release);
        }
        shared.idle.notify_all();
        (shared.on_commit)();
        prepare_spare(&shared, &inner);
    }
}

/// Pre-create the writer's next segment if it has none waiting (errors are retried later;
/// the writer creates its own segment if no spare is ready).
fn prepare_spare(shared: &Shared, inner: &SpoolInner) {
    if shared.spare.lock().is_some() {
        return;
    }
    let h = new_header(
        inner.alloc_segment_number(),
        shared.worker,
        0,
        inner.opts.segment_bytes,
        now_unix_ms(),
    );
    match Segment::create(&inner.dir, h) {
        Ok(s) => *shared.spare.lock() = Some(s),
        Err(e) => log::debug!("spool: cannot pre-create a segment: {e}"),
    }
}
