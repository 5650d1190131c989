//! Criterion benches for the spool hot path (STYLE.md rule 24).
//!
//! * `append_commit_1k/N`: N records of 1 KiB (begin + append + finish each), then one
//!   group commit (flush + wait until `poll_committed` covers them). Throughput = records.
//! * `append_100k`: begin + append (in 16 KiB pieces, like socket reads) + finish of one
//!   100 KiB record, with a group commit started every 64 records but not waited for.
//!
//! The spool lives in a temporary directory under `$SPOOL_BENCH_DIR` (default: the system
//! temp dir); record which filesystem it is on with the numbers (tmpfs makes msync free).
//! Records are crossed off outside the timed part so segments are deleted and the disk use
//! stays bounded.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailroot::spool::{Envelope, EnvelopeRecipient, QueueId, RcptStatus, Spool, SpoolOptions};

const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const SMALL_MESSAGE_BYTES: usize = 1024;
const LARGE_MESSAGE_BYTES: usize = 100 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;
const LARGE_FLUSH_EVERY: u64 = 64;

fn envelope() -> Envelope {
    Envelope {
        reverse_path: "sender@example.org".into(),
        recipients: vec![EnvelopeRecipient {
            forward_path: "rcpt@example.com".into(),
            notify: 0,
            orcpt: None,
        }],
        body: 1,
        smtputf8: false,
        ret: 0,
        envid: None,
        client_addr: "192.0.2.1:40000".into(),
        helo: "client.example".into(),
        arrival_unix_ms: 1_700_000_000_000,
        site: "default".into(),
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("SPOOL_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("temp dir in SPOOL_BENCH_DIR"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn cross_off_all(spool: &Spool, ids: &mut Vec<QueueId>) {
    for id in ids.drain(..) {
        spool.cross_off(id, 0, RcptStatus::Delivered).expect("cross off");
    }
}

fn append_commit(c: &mut Criterion) {
    let dir = bench_dir();
    let opts = SpoolOptions { segment_bytes: SEGMENT_BYTES, min_free_bytes: 0 };
    let (spool, _) = Spool::open(dir.path(), opts).expect("open spool");
    let mut w = spool.writer(0, Box::new(|| {})).expect("writer");
    let env = envelope();
    let body = vec![b'x'; SMALL_MESSAGE_BYTES];
    let mut ids = Vec::new();
    let mut g = c.benchmark_group("append_commit_1k");
    for batch in [1u64, 16, 64, 256] {
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let mut last = 0;
                    for _ in 0..batch {
                        let mut r = w.begin(&env).expect("begin");
                        w.append(&mut r, &body).expect("append");
                        let t = w.finish(r).expect("finish");
                        last = t.seq;
                        ids.push(t.id);
                    }
                    w.flush();
                    while w.poll_committed().expect("commit") < last {
                        w.wait_idle();
                    }
                    timed += start.elapsed();
                    if ids.len() >= 4096 {
                        cross_off_all(&spool, &mut ids);
                    }
                }
                timed
            });
        });
    }
    g.finish();
    cross_off_all(&spool, &mut ids);
}

fn append_large(c: &mut Criterion) {
    let dir = bench_dir();
    let opts = SpoolOptions { segment_bytes: SEGMENT_BYTES, min_free_bytes: 0 };
    let (spool, _) = Spool::open(dir.path(), opts).expect("open spool");
    let mut w = spool.writer(0, Box::new(|| {})).expect("writer");
    let env = envelope();
    let body = vec![b'y'; LARGE_MESSAGE_BYTES];
    let mut ids = Vec::new();
    let mut g = c.benchmark_group("append_100k");
    g.throughput(Throughput::Bytes(LARGE_MESSAGE_BYTES as u64));
    g.bench_function("buffered", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut r = w.begin(&env).expect("begin");
                for chunk in body.chunks(READ_CHUNK_BYTES) {
                    w.append(&mut r, black_box(chunk)).expect("append");
                }
                let t = w.finish(r).expect("finish");
                if t.seq % LARGE_FLUSH_EVERY == 0 {
                    w.flush();
                }
                timed += start.elapsed();
                ids.push(t.id);
                if ids.len() >= 512 {
                    w.wait_idle();
                    cross_off_all(&spool, &mut ids);
                }
            }
            timed
        });
    });
    g.finish();
    w.wait_idle();
    cross_off_all(&spool, &mut ids);
}

criterion_group!(benches, append_commit, append_large);
criterion_main!(benches);
