//! Spool tests of the large-message path: records appended with `pwrite` (at least
//! `segment::PWRITE_MIN_BYTES`) beside records copied into the mapping, and the commit
//! delay's deadline while a commit is in flight.

use std::time::{Duration, Instant};

use super::segment::PWRITE_MIN_BYTES;
use super::tests::{env, msg, noop, opts, reopen};

/// A segment large enough that 100 KiB records stay in it (no spill).
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

#[test]
fn large_records_written_with_pwrite_read_back_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [1024, 100 * 1024, 300, PWRITE_MIN_BYTES, PWRITE_MIN_BYTES - 1, 150 * 1024, 7];
    let bodies: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| msg(i, n)).collect();
    let mut ids = Vec::new();
    {
        let (spool, _) = reopen(dir.path(), opts(SEGMENT_BYTES));
        let mut w = spool.writer(0, noop()).unwrap();
        for b in &bodies {
            let mut r = w.begin(&env(2)).unwrap();
            // In pieces, as a socket delivers it.
            for piece in b.chunks(4096) {
                w.append(&mut r, piece).unwrap();
            }
            ids.push(w.finish(r).unwrap().id);
            w.flush();
        }
        w.wait_idle();
        for (id, b) in ids.iter().zip(&bodies) {
            assert!(spool.read_message(*id).unwrap() == *b, "read back {id}");
            assert!(*spool.read_message_shared(*id).unwrap() == b[..], "shared read {id}");
        }
        // Every record landed in the one worker segment (none spilled).
        let segs = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok);
        let n = segs.filter(|e| e.file_name().to_string_lossy().ends_with(".seg")).count();
        assert!(n <= 2, "{n} segment files: a record spilled (or a spare)");
    }
    let (spool, recovered) = reopen(dir.path(), opts(SEGMENT_BYTES));
    let mut got: Vec<_> = recovered.iter().map(|q| (q.id, q.message_bytes)).collect();
    got.sort();
    let mut want: Vec<_> = ids.iter().zip(&sizes).map(|(id, &n)| (*id, n as u64)).collect();
    want.sort();
    assert_eq!(got, want, "every record recovered with its length");
    for (id, b) in ids.iter().zip(&bodies) {
        assert!(spool.read_message(*id).unwrap() == *b, "recovered content of {id}");
    }
}

#[test]
fn no_flush_deadline_while_a_commit_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = reopen(dir.path(), opts(SEGMENT_BYTES));
    let mut w = spool.writer(0, noop()).unwrap();
    w.set_commit_delay(Duration::from_millis(1));
    let open = w.begin(&env(1)).unwrap(); // another client between DATA and its dot
    let mut r = w.begin(&env(1)).unwrap();
    w.append(&mut r, &msg(1, 100)).unwrap();
    let seq = w.finish(r).unwrap().seq;
    w.flush();
    assert!(w.flush_deadline().is_some(), "held back for the open record");
    std::thread::sleep(Duration::from_millis(3));
    // The delay is over but a commit is in flight: `flush` cannot hand over, and the end
    // of that commit wakes the loop, so there is no deadline to poll for (a past one made
    // the worker spin on a zero poll timeout until the commit ended).
    w.fake_in_flight(true);
    w.flush();
    assert_eq!(w.flush_deadline(), None, "no deadline while a commit is in flight");
    w.fake_in_flight(false);
    let past = w.flush_deadline().expect("the held-back record is due again");
    assert!(past <= Instant::now(), "its deadline has passed: the next pass hands it over");
    w.flush();
    assert_eq!(w.flush_deadline(), None, "handed over");
    w.wait_idle();
    assert!(w.poll_committed().unwrap() >= seq);
    w.abort(open);
}

/// Small records get zeros written ahead of them (`Segment::append`); the zeros are clean
/// space to recovery, so a restart finds every record and reports nothing torn.
#[test]
fn small_records_with_zeros_written_ahead_recover_with_no_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = (0..600).map(|i| msg(i, 200 + (i * 37) % 3000)).collect();
    let mut ids = Vec::new();
    {
        let (spool, _) = reopen(dir.path(), opts(SEGMENT_BYTES));
        let mut w = spool.writer(0, noop()).unwrap();
        for b in &bodies {
            let mut r = w.begin(&env(1)).unwrap();
            w.append(&mut r, b).unwrap();
            ids.push(w.finish(r).unwrap().id);
            w.flush();
        }
        w.wait_idle();
    }
    // The records span several zero windows (256 KiB each).
    assert!(bodies.iter().map(Vec::len).sum::<usize>() > 3 * 256 * 1024 / 2);
    let (spool, found) = reopen(dir.path(), opts(SEGMENT_BYTES));
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(spool.recovery_summary().torn_tails, 0);
    for (id, b) in ids.iter().zip(&bodies) {
        assert!(spool.read_message(*id).unwrap() == *b, "read back {id}");
    }
}
