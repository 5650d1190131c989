//! Compaction: copy long-lived live records of old sealed segments forward into a fresh
//! segment so that one deferred message does not pin a whole old segment (STYLE.md rule 17).
//!
//! Order, and what a crash at each point leaves:
//! 1. copy each record (same QueueId, current status bytes) into a fresh segment;
//!    crash => the new segment is torn or unsynced: the old copies are still live. No loss.
//! 2. msync + fdatasync the new segment and fsync `Queue/`;
//!    crash after => two verified copies of the same id; recovery keeps the one in the
//!    higher-numbered (newer) segment and marks the older one dead. No loss, no duplicate.
//! 3. overwrite each old copy's magic with the dead magic and msync;
//! 4. point the index at the new copies and delete old segments left without live records.
//!
//! Cross-offs are held off (exclusive `compact_lock`) from step 1 to step 4, so both copies
//! always carry the same statuses.
//!
//! TRUST: records are re-verified after copying (`parse_record`); one that does not verify
//! is left where it is.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::SpoolError;
use super::format::{
    QueueId, RECORD_MAGIC_DEAD, RECORD_MAGIC_LIVE, RECORD_STATUS_OFFSET, SEGMENT_FLAG_COMPACTED,
    parse_record,
};
use super::index::{Loc, SegEntry, SpoolInner, now_unix_ms};
use super::map::Appender;
use super::segment::{FIRST_RECORD_OFFSET, Segment, new_header, sync_dir};

/// Worker number written in headers of compaction segments.
const COMPACTION_WORKER: u32 = u32::MAX;

/// Copy the record at `old` into `out` with its current status bytes (never reading the
/// atomically-updated bytes with a plain copy).
fn copy_record(old: &Loc, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&RECORD_MAGIC_LIVE);
    old.seg.map.copy_out(old.offset + 4, RECORD_STATUS_OFFSET - 4, out);
    for i in 0..old.header.rcpt_count as usize {
        out.push(old.seg.map.load_u8(old.status_offset(i)));
    }
    // Layout offsets are within the record, which is within the map.
    let env = old.layout.envelope_offset as usize;
    out.resize(env, 0);
    old.seg.map.copy_out(old.offset + env, old.layout.total_len as usize - env, out);
}

/// See [`super::Spool::compact`].
pub(crate) fn compact(inner: &SpoolInner, older_than_ms: u64) -> Result<usize, SpoolError> {
    let now = now_unix_ms();
    let _exclusive = inner.compact_lock.write();
    let mut recs: Vec<(QueueId, Loc)> = {
        let idx = inner.index.lock();
        let victims: Vec<u64> = idx
            .segments
            .values()
            .filter(|e| {
                e.sealed
                    && e.live > 0
                    && !e.seg.is_spill()
                    && now.saturating_sub(e.seg.header.created_unix_ms) >= older_than_ms
            })
            .map(|e| e.seg.number)
            .collect();
        idx.records
            .iter()
            .filter(|(_, l)| victims.contains(&l.seg.number))
            .map(|(id, l)| (*id, l.clone()))
            .collect()
    };
    if recs.is_empty() {
        return Ok(0);
    }
    recs.sort_unstable_by_key(|(_, l)| (l.seg.number, l.offset));

    let capacity = inner.opts.segment_bytes as usize;
    let mut fresh: Vec<Arc<Segment>> = Vec::new();
    let mut cur: Option<(Arc<Segment>, Appender)> = None;
    let mut moves: Vec<(QueueId, Loc, Loc)> = Vec::with_capacity(recs.len());
    let mut scratch = Vec::new();
    let result = (|| {
        for (id, old) in &recs {
            copy_record(old, &mut scratch);
            if let Err(e) = parse_record(&scratch) {
                log::error!("spool: compaction: record {id} does not verify in memory: {e}");
                continue;
            }
            if scratch.len() > capacity - FIRST_RECORD_OFFSET {
                continue; // cannot happen for buffered records; leave it in place
            }
            let room = cur.as_ref().map_or(0, |(s, _)| s.map.len() - s.map.tail());
            if scratch.len() > room {
                let h = new_header(
                    inner.alloc_segment_number(),
                    COMPACTION_WORKER,
                    SEGMENT_FLAG_COMPACTED,
                    inner.opts.segment_bytes,
                    now,
                );
                let (seg, app) = Segment::create(&inner.dir, h)?;
                let seg = Arc::new(seg);
                fresh.push(seg.clone());
                cur = Some((seg, app));
            }
            let Some((seg, app)) = cur.as_mut() else { unreachable!("segment created above") };
            let offset = seg.map.append(app, &[&scratch]);
            let header = old.header;
            let layout = old.layout;
            moves.push((*id, Loc { seg: seg.clone(), offset, header, layout }, old.clone()));
        }
        for seg in &fresh {
            seg.map.flush_range(0, seg.map.tail())?;
            seg.file.sync_data()?;
        }
        sync_dir(&inner.dir)?;
        Ok::<(), SpoolError>(())
    })();
    if let Err(e) = result {
        drop(cur);
        for seg in &fresh {
            let _ = std::fs::remove_file(&seg.path);
        }
        return Err(e);
    }
    for seg in &fresh {
        seg.synced_to.store(seg.map.tail(), Ordering::Release);
        seg.dir_synced.store(true, Ordering::Release);
    }

    // Step 3: the old copies must never be delivered again.
    for (_, _, old) in &moves {
        old.seg.map.store_u32(old.offset, RECORD_MAGIC_DEAD);
        if let Err(e) = old.seg.map.flush_range(old.offset, 4) {
            // The newer copy wins at recovery anyway.
            log::warn!("spool: compaction: cannot flush dead mark: {e}");
        }
    }

    // Step 4: switch the index, free old segments.
    let mut deletable = Vec::new();
    {
        let mut idx = inner.index.lock();
        for seg in &fresh {
            idx.segments.insert(seg.number, SegEntry { seg: seg.clone(), live: 0, sealed: true });
        }
        for (id, new, old) in &moves {
            if let Some(e) = idx.segments.get_mut(&new.seg.number) {
                e.live += 1;
            }
            idx.records.insert(*id, new.clone());
            if let Some(e) = idx.segments.get_mut(&old.seg.number) {
                e.live -= 1;
                if e.live == 0
                    && e.sealed
                    && let Some(e) = idx.segments.remove(&old.seg.number)
                {
                    deletable.push(e.seg);
                }
            }
        }
        for seg in &fresh {
            if idx.segments.get(&seg.number).is_some_and(|e| e.live == 0)
                && let Some(e) = idx.segments.remove(&seg.number)
            {
                deletable.push(e.seg);
            }
        }
    }
    inner.delete_segments(&deletable);
    log::info!("spool: compaction moved {} records into {} segments", moves.len(), fresh.len());
    Ok(moves.len())
}
