//! Criterion benches for the `smtp` module's hot paths.
//!
//! `data_scan`: `DataScanner` over a dot-stuffed message (typical 76-column text lines,
//! some starting with a dot), fed in 16 KiB reads as a socket would deliver it. Reported in
//! bytes/s of wire input (`Throughput::Bytes`). Run: `cargo bench --bench smtp -- data_scan`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailroot::smtp::data::{BareLineEnding, DataScanner, dot_stuff};

/// Size of one simulated socket read.
const READ_BYTES: usize = 16 * 1024;

/// A dot-stuffed message of about `approx_bytes` of 76-column lines, every 20th line
/// starting with a dot, terminated by `.\r\n`.
fn wire_message(approx_bytes: usize) -> Vec<u8> {
    let mut content = Vec::with_capacity(approx_bytes + 80);
    let mut i = 0usize;
    while content.len() < approx_bytes {
        if i.is_multiple_of(20) {
            content.push(b'.');
        }
        for k in 0..74 {
            content.push(b'a' + ((i + k) % 26) as u8);
        }
        content.extend_from_slice(b"\r\n");
        i += 1;
    }
    let mut wire = Vec::with_capacity(content.len() + content.len() / 64 + 8);
    dot_stuff(&content, &mut wire);
    wire
}

fn data_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_scan");
    for (name, size) in [("4KiB", 4 * 1024), ("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)] {
        let wire = wire_message(size);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut sc = DataScanner::new(BareLineEnding::Normalize);
                let mut content_bytes = 0usize;
                let mut emit = |s: &[u8]| content_bytes += s.len();
                for read in black_box(&wire).chunks(READ_BYTES) {
                    let (_, finished) = sc.scan(read, &mut emit);
                    if finished {
                        break;
                    }
                }
                black_box(content_bytes)
            });
        });
    }
    group.finish();
}

criterion_group!(data_scan_benches, data_scan);
criterion_main!(data_scan_benches);
