//! Spool tests: commit, recovery (torn tails at every offset, bit flips), cross-off and
//! deletion, compaction, concurrency of open records, spill, free space.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::format::{EnvelopeRecipient, RECORD_STATUS_OFFSET};
use super::recover::parse_segment;
use super::segment::parse_file_name;
use super::*;

pub(super) const SMALL_SEGMENT_BYTES: u64 = 64 * 1024;

pub(super) fn opts(segment_bytes: u64) -> SpoolOptions {
    SpoolOptions { segment_bytes, min_free_bytes: 0 }
}

pub(super) fn env(n: usize) -> Envelope {
    Envelope {
        reverse_path: "sender@example.org".into(),
        recipients: (0..n)
            .map(|i| EnvelopeRecipient {
                forward_path: format!("rcpt{i}@example.com"),
                notify: 0,
                orcpt: None,
            })
            .collect(),
        body: 1,
        smtputf8: false,
        ret: 0,
        envid: None,
        client_addr: "127.0.0.1:2525".into(),
        helo: "client.example".into(),
        arrival_unix_ms: 1_700_000_000_000,
        site: "default".into(),
    }
}

pub(super) fn msg(i: usize, len: usize) -> Vec<u8> {
    let mut m = format!("Subject: message {i}\r\n\r\n").into_bytes();
    while m.len() < len {
        m.push(b'a' + ((m.len() * 7 + i) % 26) as u8);
    }
    m.truncate(len.max(1));
    m
}

/// `Spool::open`, retrying `Locked`: a child process forked by another test (e.g. `mount`)
/// briefly holds a duplicate of our lock's file description until it execs.
/// After a restart, `id` (3 recipients, the second bounced) is the only message left.
fn assert_only_survivor_is(dir: &Path, id: QueueId) {
    let (_, found) = reopen(dir, opts(SMALL_SEGMENT_BYTES));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(
        found[0].rcpt_status,
        vec![RcptStatus::Pending, RcptStatus::Bounced, RcptStatus::Pending]
    );
}

pub(super) fn reopen(dir: &Path, o: SpoolOptions) -> (Spool, Vec<QueuedMessage>) {
    for _ in 0..100 {
        match Spool::open(dir, o) {
            Err(SpoolError::Locked(_)) => std::thread::sleep(std::time::Duration::from_millis(10)),
            r => return r.unwrap(),
        }
    }
    panic!("spool stays locked")
}

pub(super) fn noop() -> Box<dyn Fn() + Send + Sync> {
    Box::new(|| {})
}

/// Write `msgs` through one writer, wait for the commit, return their ids.
pub(super) fn write_all(spool: &Spool, msgs: &[(Envelope, Vec<u8>)]) -> Vec<QueueId> {
    let mut w = spool.writer(0, noop()).unwrap();
    let mut ids = vec![];
    let mut last = 0;
    for (e, m) in msgs {
        let mut r = w.begin(e).unwrap();
        for chunk in m.chunks(700) {
            w.append(&mut r, chunk).unwrap();
        }
        let t = w.finish(r).unwrap();
        ids.push(t.id);
        last = t.seq;
    }
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= last);
    ids
}

pub(super) fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_name().to_str().and_then(parse_file_name).map(|n| (n, e.path()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn commit_then_recover_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("Queue");
    let msgs: Vec<_> = (0..20).map(|i| (env(1 + i % 3), msg(i, 100 + i * 97))).collect();
    let ids = {
        let (spool, found) = reopen(&q, opts(SMALL_SEGMENT_BYTES));
        assert!(found.is_empty());
        let ids = write_all(&spool, &msgs);
        for (id, (_, m)) in ids.iter().zip(&msgs) {
            assert_eq!(&spool.read_message(*id).unwrap(), m);
        }
        ids
    };
    let (spool, found) = reopen(&q, opts(SMALL_SEGMENT_BYTES));
    assert_eq!(found.len(), msgs.len());
    for ((f, id), (e, m)) in found.iter().zip(&ids).zip(&msgs) {
        assert_eq!(f.id, *id);
        assert_eq!(&f.envelope, e);
        assert_eq!(f.message_bytes, m.len() as u64);
        assert!(f.rcpt_status.iter().all(|s| *s == RcptStatus::Pending));
        assert_eq!(&spool.read_message(*id).unwrap(), m);
    }
    assert_eq!(scan(&q).unwrap(), found);
}

#[test]
fn on_commit_called_and_seq_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut w = spool
        .writer(
            1,
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    let mut seqs = vec![];
    for i in 0..50 {
        let mut r = w.begin(&env(1)).unwrap();
        w.append(&mut r, &msg(i, 200)).unwrap();
        seqs.push(w.finish(r).unwrap().seq);
        w.flush(); // a commit may be in flight: the rest waits for the next one
    }
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1));
    w.wait_idle();
    assert_eq!(w.poll_committed().unwrap(), 50);
    assert!(!w.has_uncommitted());
    assert!(calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(spool.live_messages(), 50);
}

#[test]
fn several_open_records_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| msg(i, 3000 + i * 11)).collect();
    let mut recs: Vec<_> = (0..5).map(|i| w.begin(&env(i + 1)).unwrap()).collect();
    let ids: Vec<_> = recs.iter().map(|r| r.id()).collect();
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 5, "ids are distinct");
    for off in (0..3100).step_by(100) {
        for (r, b) in recs.iter_mut().zip(&bodies) {
            if off < b.len() {
                w.append(r, &b[off..(off + 100).min(b.len())]).unwrap();
            }
        }
    }
    // Finish in a different order than begun; abort one.
    let r4 = recs.pop().unwrap();
    w.abort(r4);
    while let Some(r) = recs.pop() {
        let _ = w.finish(r).unwrap();
    }
    w.wait_idle();
    for i in 0..4 {
        assert_eq!(spool.read_message(ids[i]).unwrap(), bodies[i]);
    }
    assert!(matches!(spool.read_message(ids[4]), Err(SpoolError::NotFound(_))));
    drop(w);
    drop(spool);
    let (_, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut got: Vec<_> = found.iter().map(|f| f.id).collect();
    got.sort();
    let mut want = ids[..4].to_vec();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn record_from_other_writer_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut a = spool.writer(0, noop()).unwrap();
    let mut b = spool.writer(1, noop()).unwrap();
    let mut r = a.begin(&env(1)).unwrap();
    assert!(matches!(b.append(&mut r, b"x"), Err(SpoolError::BadRecord(_))));
    a.abort(r);
}

/// Build a queue with `n` committed records; returns (dir, ids, segment path, offsets).
fn queue_with_records(n: usize) -> (tempfile::TempDir, Vec<QueueId>, PathBuf, Vec<usize>) {
    let (dir, ids, seg, bytes) = super::tests_torn::one_segment(n, 2, |i| 300 + i);
    let offsets = parse_segment(&bytes).unwrap().records.iter().map(|r| r.offset).collect();
    (dir, ids, seg, offsets)
}

#[test]
fn torn_last_record_never_resurrected_at_any_offset() {
    let (dir, ids, seg, offsets) = queue_with_records(3);
    let orig = std::fs::read(&seg).unwrap();
    let last = offsets[2];
    // Bytes after the END marker are alignment padding (zeros either way).
    let end = parse_segment(&orig).unwrap().records[2].view.layout.end_offset as usize + 8 + last;
    let work = tempfile::tempdir().unwrap();
    let wseg = work.path().join(seg.file_name().unwrap());
    for cut in last..end {
        for truncate_file in [false, true] {
            let mut b = orig.clone();
            if truncate_file {
                b.truncate(cut);
            } else {
                b[cut..end].fill(0); // preallocated space reads as zeros
            }
            std::fs::write(&wseg, &b).unwrap();
            let (spool, found) = reopen(work.path(), opts(SMALL_SEGMENT_BYTES));
            let got: Vec<_> = found.iter().map(|f| f.id).collect();
            assert_eq!(got, ids[..2], "cut at {cut} (truncate {truncate_file})");
            drop(spool);
        }
    }
    drop(dir);
}

#[test]
fn bit_flips_in_last_record_detected() {
    let (_dir, ids, seg, offsets) = queue_with_records(3);
    let orig = std::fs::read(&seg).unwrap();
    let p = parse_segment(&orig).unwrap();
    let last = offsets[2];
    let layout = p.records[2].view.layout;
    let work = tempfile::tempdir().unwrap();
    let wseg = work.path().join(seg.file_name().unwrap());
    let status = last + RECORD_STATUS_OFFSET..last + RECORD_STATUS_OFFSET + 2;
    let pad = last + RECORD_STATUS_OFFSET + 2..last + layout.envelope_offset as usize;
    for at in last..last + layout.end_offset as usize + 8 {
        if pad.contains(&at) {
            continue; // alignment padding is not significant
        }
        let mut b = orig.clone();
        // A status byte is outside the checksums: a flip leaves the record valid, and
        // this one (to no valid status) reads as pending. Anything else is detected.
        b[at] ^= if status.contains(&at) { 0x80 } else { 0x04 };
        std::fs::write(&wseg, &b).unwrap();
        let found = scan(work.path()).unwrap();
        let got: Vec<_> = found.iter().map(|f| f.id).collect();
        if status.contains(&at) {
            assert_eq!(got, ids, "flip at {at}: a status byte");
            assert!(found[2].rcpt_status.iter().all(|s| *s == RcptStatus::Pending));
        } else {
            assert_eq!(got, ids[..2], "flip at {at}");
        }
    }
}

#[test]
fn cross_off_deletes_sealed_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    // ~100 records of 2 KiB fill more than one 64 KiB segment: rotation seals the first.
    let msgs: Vec<_> = (0..100).map(|i| (env(2), msg(i, 2048))).collect();
    let mut w = spool.writer(0, noop()).unwrap();
    let mut ids = vec![];
    for (e, m) in &msgs {
        let mut r = w.begin(e).unwrap();
        w.append(&mut r, m).unwrap();
        ids.push(w.finish(r).unwrap().id);
    }
    w.wait_idle();
    let before = segment_files(dir.path());
    assert!(before.len() >= 3, "rotated: {before:?}");
    let first = before[0].0;
    // Ids come from the segment active at `begin`; where a record lives is the index's business.
    let seg_of = |id: &QueueId| spool.inner.lookup(*id).unwrap().seg.number;
    let in_first: Vec<_> = ids.iter().copied().filter(|id| seg_of(id) == first).collect();
    assert!(!in_first.is_empty());
    let table = [
        (RcptStatus::Delivered, RcptStatus::Bounced),
        (RcptStatus::Expired, RcptStatus::Delivered),
    ];
    for (k, id) in in_first.iter().enumerate() {
        let (a, b) = table[k % 2];
        spool.cross_off(*id, 0, a).unwrap();
        assert!(segment_files(dir.path()).iter().any(|s| s.0 == first), "still pending rcpt 1");
        spool.cross_off(*id, 1, b).unwrap();
    }
    assert!(matches!(
        spool.cross_off(ids[50], 2, RcptStatus::Delivered),
        Err(SpoolError::NoSuchRecipient { .. })
    ));
    assert!(!segment_files(dir.path()).iter().any(|s| s.0 == first), "first segment deleted");
    // Cross off everything: the active segment of the live writer stays.
    for id in ids.iter().filter(|id| !in_first.contains(id)) {
        spool.cross_off(*id, 0, RcptStatus::Delivered).unwrap();
        spool.cross_off(*id, 1, RcptStatus::Delivered).unwrap();
    }
    assert_eq!(spool.live_messages(), 0);
    // Left: the writer's active segment and maybe the spare its syncer pre-created.
    assert!(segment_files(dir.path()).len() <= 2, "only the active (and spare) segment left");
    assert!(matches!(
        spool.cross_off(ids[0], 0, RcptStatus::Delivered),
        Err(SpoolError::NotFound(_))
    ));
    drop(w); // seals it: now it goes too
    assert_eq!(segment_files(dir.path()).len(), 0);
    drop(spool);
    // Segment numbers never repeat even though the queue is empty now.
    let (spool, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert!(found.is_empty());
    let mut w = spool.writer(0, noop()).unwrap();
    let r = w.begin(&env(1)).unwrap();
    assert!(r.id().0 >> 32 > before.last().unwrap().0);
    w.abort(r);
}

#[test]
fn partial_cross_off_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
        let ids = write_all(&spool, &[(env(3), msg(0, 10)), (env(1), msg(1, 10))]);
        spool.cross_off(ids[0], 1, RcptStatus::Bounced).unwrap();
        spool.cross_off(ids[1], 0, RcptStatus::Delivered).unwrap();
        ids
    };
    assert_only_survivor_is(dir.path(), ids[0]);
}

#[test]
fn corrupt_segment_header_set_aside_and_number_not_reused() {
    let (dir, _ids, seg, _) = queue_with_records(2);
    let mut b = std::fs::read(&seg).unwrap();
    b[20] ^= 0xFF; // inside the segment header
    std::fs::write(&seg, &b).unwrap();
    let number = parse_file_name(seg.file_name().unwrap().to_str().unwrap()).unwrap();
    let (spool, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert!(found.is_empty());
    let corrupt = dir.path().join(format!("{number:08X}.seg.corrupt"));
    assert!(corrupt.exists());
    let mut w = spool.writer(0, noop()).unwrap();
    let r = w.begin(&env(1)).unwrap();
    assert!(r.id().0 >> 32 > number);
    w.abort(r);
    drop(w);
    drop(spool);
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let r = w.begin(&env(1)).unwrap();
    assert!(r.id().0 >> 32 > number, "still above the corrupt one after another restart");
    w.abort(r);
}

#[test]
fn read_message_detects_rot_after_recovery() {
    let (dir, ids, seg, offsets) = queue_with_records(2);
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let p = parse_segment(&std::fs::read(&seg).unwrap()).unwrap();
    let at = offsets[1] + p.records[1].view.layout.message_offset as usize + 3;
    // Flip a byte underneath the running spool (through the file; the map sees it).
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let mut b = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, at as u64).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[b[0] ^ 1], at as u64).unwrap();
    assert!(spool.read_message(ids[0]).is_ok() && spool.read_message_shared(ids[0]).is_ok());
    assert!(matches!(spool.read_message(ids[1]), Err(SpoolError::Corrupt { .. })));
    assert!(matches!(spool.read_message_shared(ids[1]), Err(SpoolError::Corrupt { .. })));
}

#[test]
fn second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (_spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert!(matches!(
        Spool::open(dir.path(), opts(SMALL_SEGMENT_BYTES)),
        Err(SpoolError::Locked(_))
    ));
    // scan needs no lock
    assert!(scan(dir.path()).unwrap().is_empty());
}

#[test]
fn scan_is_read_only_and_tolerates_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let mut r = w.begin(&env(1)).unwrap();
    w.append(&mut r, b"committed\r\n").unwrap();
    let t = w.finish(r).unwrap();
    w.wait_idle();
    // After a commit the syncer pre-creates a spare segment in the background; wait for it
    // so the snapshot below is not racing with that file's creation.
    w.wait_spare();
    // An unfinished record and a finished-but-uncommitted tail are in flight.
    let mut open = w.begin(&env(1)).unwrap();
    w.append(&mut open, b"half").unwrap();
    // (The syncer may pre-create a spare segment meanwhile: compare the files seen first.)
    let snapshot: Vec<_> = segment_files(dir.path())
        .into_iter()
        .map(|(_, p)| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let found = scan(dir.path()).unwrap();
    assert_eq!(found.iter().map(|f| f.id).collect::<Vec<_>>(), vec![t.id]);
    for (p, b) in &snapshot {
        assert!(std::fs::read(p).unwrap() == *b, "scan modified {}", p.display());
    }
    w.abort(open);
}

#[test]
fn spill_large_message_bounded_memory() {
    const BIG: usize = 5 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let body = msg(7, BIG);
    let id = {
        let (spool, _) = reopen(dir.path(), opts(1024 * 1024));
        let mut w = spool.writer(0, noop()).unwrap();
        let mut r = w.begin(&env(2)).unwrap();
        let mut max_buf = 0;
        for chunk in body.chunks(16 * 1024) {
            w.append(&mut r, chunk).unwrap();
            max_buf = max_buf.max(r.buf.capacity());
        }
        assert!(r.spill.is_some(), "spilled");
        assert!(max_buf <= spool.inner.spill_threshold + 16 * 1024, "buffer bounded: {max_buf}");
        assert_eq!(r.bytes(), BIG as u64);
        // A small record committed alongside.
        let mut small = w.begin(&env(1)).unwrap();
        w.append(&mut small, b"small").unwrap();
        let t1 = w.finish(r).unwrap();
        let t2 = w.finish(small).unwrap();
        w.wait_idle();
        assert!(w.poll_committed().unwrap() >= t2.seq.max(t1.seq));
        assert_eq!(spool.read_message(t1.id).unwrap(), body);
        assert_eq!(spool.read_message(t2.id).unwrap(), b"small");
        spool.cross_off(t2.id, 0, RcptStatus::Delivered).unwrap();
        t1.id
    };
    let (spool, found) = reopen(dir.path(), opts(1024 * 1024));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(spool.read_message(id).unwrap(), body);
    spool.cross_off(id, 0, RcptStatus::Delivered).unwrap();
    spool.cross_off(id, 1, RcptStatus::Delivered).unwrap();
    assert!(segment_files(dir.path()).is_empty(), "spill segment deleted");
}

#[test]
fn buffer_pool_is_bounded_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let big = vec![b'b'; 100 * 1024];
    let recs: Vec<_> = (0..40)
        .map(|_| {
            let mut r = w.begin(&env(1)).unwrap();
            w.append(&mut r, &big).unwrap();
            r
        })
        .collect();
    for r in recs {
        w.abort(r);
    }
    let (n, large, cap) = w.pool_stats();
    assert_eq!((n, large), (16, 16), "only 16 large buffers kept");
    assert!(cap <= 16 * (spool.inner.spill_threshold + 1024));
    // Small records reuse pooled buffers: the pool does not grow.
    for _ in 0..100 {
        let mut r = w.begin(&env(1)).unwrap();
        w.append(&mut r, b"small").unwrap();
        let _ = w.finish(r).unwrap();
    }
    assert_eq!(w.pool_stats().0, 16);
}

#[test]
fn aborted_spill_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let before = segment_files(dir.path()).len();
    let mut r = w.begin(&env(1)).unwrap();
    w.append(&mut r, &vec![b'x'; 100_000]).unwrap();
    assert_eq!(segment_files(dir.path()).len(), before + 1);
    w.abort(r);
    assert_eq!(segment_files(dir.path()).len(), before);
}

#[test]
fn failed_commit_reports_and_never_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let ok = write_all(&spool, &[(env(1), msg(0, 50))]);
    let mut r = w.begin(&env(1)).unwrap();
    w.append(&mut r, b"doomed").unwrap();
    let t = w.finish(r).unwrap();
    spool.inner.fail_next_commit.store(true, Ordering::SeqCst);
    w.wait_idle();
    let (through, _) = w.poll_committed().unwrap_err();
    assert!(through >= t.seq);
    assert!(matches!(spool.read_message(t.id), Err(SpoolError::NotFound(_))));
    // The writer moved on to a fresh segment; later records commit normally.
    let mut r = w.begin(&env(1)).unwrap();
    w.append(&mut r, b"fine").unwrap();
    let t2 = w.finish(r).unwrap();
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= t2.seq);
    drop(w);
    drop(spool);
    let (_, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let ids: Vec<_> = found.iter().map(|f| f.id).collect();
    assert!(ids.contains(&ok[0]) && ids.contains(&t2.id));
    assert!(!ids.contains(&t.id), "failed record resurrected");
}

#[test]
fn failure_poisons_segment_but_not_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    let put = |w: &mut SpoolWriter, body: &[u8]| {
        let mut r = w.begin(&env(1)).unwrap();
        w.append(&mut r, body).unwrap();
        w.finish(r).unwrap()
    };
    let a = put(&mut w, b"a");
    spool.inner.fail_next_commit.store(true, Ordering::SeqCst);
    w.flush();
    let b = put(&mut w, b"b"); // likely while A's commit is in flight, same segment
    w.wait_idle();
    let mut failed_through = 0;
    let mut committed = 0;
    for _ in 0..3 {
        match w.poll_committed() {
            Ok(c) => committed = c,
            Err((t, _)) => failed_through = failed_through.max(t),
        }
    }
    assert!(failed_through >= a.seq);
    let b_ok = b.seq <= committed && b.seq > failed_through;
    // Records finished after the failure go to a healthy segment and commit.
    let cs: Vec<_> = (0..5).map(|i| put(&mut w, format!("c{i}").as_bytes())).collect();
    w.wait_idle();
    assert_eq!(w.poll_committed().unwrap(), cs[4].seq, "no cascade of failures");
    drop(w);
    drop(spool);
    let (_, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let ids: Vec<_> = found.iter().map(|f| f.id).collect();
    assert!(!ids.contains(&a.id));
    assert_eq!(ids.contains(&b.id), b_ok, "b recovered iff it was reported committed");
    assert!(cs.iter().all(|c| ids.contains(&c.id)));
}

#[test]
fn handles_are_send_and_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<SpoolWriter>();
    send::<OpenRecord>();
    send_sync::<Spool>();
}

#[test]
fn compaction_moves_records_and_frees_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let msgs: Vec<_> = (0..100).map(|i| (env(1), msg(i, 2048))).collect();
    let ids = write_all(&spool, &msgs); // writer dropped: all its segments sealed
    // Keep one record in three alive.
    for (i, id) in ids.iter().enumerate() {
        if i % 3 != 0 {
            spool.cross_off(*id, 0, RcptStatus::Delivered).unwrap();
        }
    }
    let before = segment_files(dir.path());
    assert!(before.len() >= 3);
    assert_eq!(spool.compact(u64::MAX).unwrap(), 0, "nothing old enough");
    let moved = spool.compact(0).unwrap();
    assert_eq!(moved, ids.len().div_ceil(3));
    let after = segment_files(dir.path());
    assert!(after.iter().all(|a| before.iter().all(|b| b.0 != a.0)), "old segments gone");
    assert!(after.len() < before.len());
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(spool.read_message(*id).unwrap(), msgs[i].1, "same id after compaction");
        }
    }
    drop(spool);
    let (_, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert_eq!(found.len(), moved);
}

#[test]
fn crash_between_compaction_copy_and_kill_keeps_one_copy() {
    // Simulate: the compacted copy is durable but the old copy was never marked dead.
    let (dir, ids, seg, _) = queue_with_records(3);
    let orig = std::fs::read(&seg).unwrap();
    {
        let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
        assert_eq!(spool.compact(0).unwrap(), 3);
        spool.cross_off(ids[1], 0, RcptStatus::Delivered).unwrap();
        spool.cross_off(ids[1], 1, RcptStatus::Delivered).unwrap();
    }
    std::fs::write(&seg, &orig).unwrap(); // old copy "resurrected" as if never killed
    let listed = scan(dir.path()).unwrap();
    let (_, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert_eq!(listed, found);
    let mut got: Vec<_> = found.iter().map(|f| f.id).collect();
    got.sort();
    assert_eq!(got, vec![ids[0], ids[2]], "newest copy wins, no duplicates");
    let found2 = scan(dir.path()).unwrap();
    assert_eq!(found2.len(), 2, "old copies marked dead at recovery");
}

#[test]
fn concurrent_writers_and_cross_offs() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                let msgs: Vec<_> = (0..200).map(|i| (env(1), msg(i + k * 1000, 500))).collect();
                let ids = write_all(&spool, &msgs);
                for id in &ids[..100] {
                    spool.cross_off(*id, 0, RcptStatus::Delivered).unwrap();
                }
                ids
            })
        })
        .collect();
    let all: Vec<QueueId> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let mut uniq = all.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 800);
    assert_eq!(spool.live_messages(), 400);
    drop(spool);
    let (_, found) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert_eq!(found.len(), 400);
}

#[test]
fn cross_off_batch_survives_restart_and_message_info_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
        let ids = write_all(&spool, &[(env(3), msg(0, 10)), (env(1), msg(1, 10))]);
        let batch = [
            (ids[0], 1, RcptStatus::Bounced),
            (ids[1], 0, RcptStatus::Delivered),
            (ids[0], 9, RcptStatus::Delivered), // no such recipient: reported, others applied
        ];
        assert!(matches!(
            spool.cross_off_batch(&batch),
            Err(SpoolError::NoSuchRecipient { index: 9, .. })
        ));
        let info = spool.message_info(ids[0]).unwrap();
        assert_eq!(info.envelope, env(3));
        assert_eq!(
            info.rcpt_status,
            vec![RcptStatus::Pending, RcptStatus::Bounced, RcptStatus::Pending]
        );
        assert!(matches!(spool.message_info(ids[1]), Err(SpoolError::NotFound(_))));
        ids
    };
    assert_only_survivor_is(dir.path(), ids[0]);
}

#[test]
fn sync_crossoffs_is_one_msync_per_segment_and_then_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    assert_eq!(spool.sync_crossoffs().unwrap(), 0, "nothing crossed off yet");
    let ids =
        write_all(&spool, &[(env(2), msg(0, 10)), (env(2), msg(1, 10)), (env(2), msg(2, 10))]);
    // All three records sit in the first segment; only the first recipient of each is
    // crossed off, so every message stays live.
    let batch: Vec<_> = ids.iter().map(|&id| (id, 0, RcptStatus::Delivered)).collect();
    spool.cross_off_batch(&batch).unwrap();
    for &id in &ids {
        let info = spool.message_info(id).unwrap();
        assert_eq!(info.rcpt_status, vec![RcptStatus::Delivered, RcptStatus::Pending]);
    }
    assert_eq!(spool.sync_crossoffs().unwrap(), 1, "one segment touched: one msync");
    assert_eq!(spool.sync_crossoffs().unwrap(), 0, "the dirty set was taken");
}

/// Finish one small record on `w`; its ticket's seq.
fn finish_one(w: &mut SpoolWriter, n: usize) -> u64 {
    let mut r = w.begin(&env(1)).unwrap();
    w.append(&mut r, &msg(n, 10)).unwrap();
    w.finish(r).unwrap().seq
}

#[test]
fn commit_delay_holds_back_only_while_another_record_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    w.set_commit_delay(Duration::from_millis(200));
    // Nobody else in the middle of a message: handed over at once.
    let s1 = finish_one(&mut w, 1);
    w.flush();
    assert_eq!(w.flush_deadline(), None, "nothing held back");
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= s1);
    // Another client is between DATA and its dot: the finished record waits for it.
    let mut other = w.begin(&env(1)).unwrap();
    let before = Instant::now();
    let s2 = finish_one(&mut w, 2);
    w.flush();
    let deadline = w.flush_deadline().expect("held back");
    assert!(deadline > before && deadline <= Instant::now() + Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(50));
    assert!(w.poll_committed().unwrap() < s2, "not committed while the other is open");
    assert!(w.has_uncommitted());
    // It finishes: both go together at once, long before the deadline.
    w.append(&mut other, &msg(3, 10)).unwrap();
    let s3 = w.finish(other).unwrap().seq;
    w.flush();
    assert_eq!(w.flush_deadline(), None, "no open record left: nothing held");
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= s3.max(s2));
    assert!(Instant::now() < deadline, "did not wait for the delay");
    // A record that stays open holds the others back only until the deadline.
    let stuck = w.begin(&env(1)).unwrap();
    let s4 = finish_one(&mut w, 4);
    w.flush();
    let deadline = w.flush_deadline().expect("held back");
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    w.flush(); // the caller's pass at the deadline hands it over
    assert_eq!(w.flush_deadline(), None);
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= s4);
    // An aborted record is no longer open.
    w.abort(stuck);
    let s5 = finish_one(&mut w, 5);
    w.flush();
    assert_eq!(w.flush_deadline(), None);
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= s5);
}

#[test]
fn commit_delay_never_holds_a_full_batch_or_a_single_client() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SMALL_SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    w.set_commit_delay(Duration::from_secs(10));
    // One record at a time (a single client): never held back.
    for n in 0..3 {
        let s = finish_one(&mut w, n);
        w.flush();
        assert_eq!(w.flush_deadline(), None);
        w.wait_idle();
        assert!(w.poll_committed().unwrap() >= s);
    }
    // A client stays open, yet a full batch goes at once despite the 10 s delay.
    let open = w.begin(&env(1)).unwrap();
    let mut last = 0;
    for n in 0..64 {
        last = finish_one(&mut w, n);
    }
    w.flush();
    assert_eq!(w.flush_deadline(), None, "64 pending: handed over");
    let t = Instant::now();
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= last);
    assert!(t.elapsed() < Duration::from_secs(5), "did not wait for the delay");
    w.abort(open);
}
