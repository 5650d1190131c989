//! Criterion benches for the performance counters (`stats`, STYLE.md rule 24).
//!
//! * `stats/counter_inc`: one hot-path counter increment (an uncontended Relaxed add on
//!   the thread's own block): what every message pays.
//! * `stats/histogram_record`: one latency sample into the thread's histogram.
//! * `stats/snapshot`: merging 4 workers' blocks (2 sites) and histograms, as a scrape does.
//! * `stats/render_prometheus`: the `/metrics` text for that snapshot.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mailroot::stats::{Counter, Hist, Registry, render_prometheus};

/// A registry shaped like a 4-worker server with two sites, with some traffic recorded.
fn populated() -> Registry {
    let r = Registry::new();
    for w in 0..4u64 {
        for site in ["default", "submission"] {
            let b = r.site_block(site);
            b.add(Counter::MessagesReceived, 1_000 + w);
            b.add(Counter::BytesReceived, 1_234_567 * (w + 1));
            for v in 0..1_000u64 {
                b.record(Hist::CommitLatency, 200 + (v * 37) % 5_000);
                b.record(Hist::CommitBatch, 1 + v % 64);
            }
        }
    }
    r
}

fn benches(c: &mut Criterion) {
    let r = Registry::new();
    let block = r.block();
    c.bench_function("stats/counter_inc", |b| {
        b.iter(|| block.inc(black_box(Counter::MessagesReceived)));
    });
    let mut v = 0u64;
    c.bench_function("stats/histogram_record", |b| {
        b.iter(|| {
            v = (v + 977) % 100_000;
            block.record(Hist::CommitLatency, black_box(v));
        });
    });
    let r = populated();
    c.bench_function("stats/snapshot", |b| b.iter(|| black_box(r.snapshot())));
    let snap = r.snapshot();
    c.bench_function("stats/render_prometheus", |b| {
        b.iter(|| black_box(render_prometheus(black_box(&snap))));
    });
}

criterion_group!(stats_benches, benches);
criterion_main!(stats_benches);
