//! Criterion benches for the `smtp` module's hot paths (STYLE.md rule 24).
//!
//! Groups:
//! - `command_parse`: `smtp::command::parse` on the lines a relay sees most (see
//!   [`command_parse`]). Throughput is reported in bytes so numbers compare across lines.
//! - `data_scan`: `smtp::data::DataScanner` over a dot-stuffed message (76-column lines,
//!   every 20th starting with a dot) fed in 16 KiB reads as a socket would deliver it;
//!   `Throughput::Bytes` of wire input, i.e. GB/s (see [`data_scan`]).
//!
//! Run: `cargo bench --bench smtp`. Record headline numbers in perf/ with machine,
//! kernel and command (a number without its setup is not a result).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailroot::smtp::command::parse;
use mailroot::smtp::data::{BareLineEnding, DataScanner, dot_stuff};

/// Typical command lines, without CRLF, named for the report.
const COMMAND_LINES: &[(&str, &[u8])] = &[
    ("ehlo", b"EHLO mail-ed1-f45.google.com"),
    ("mail_plain", b"MAIL FROM:<alice.sender@example.com>"),
    ("mail_params", b"MAIL FROM:<bounces+12345-abcd@mailer.example.net> SIZE=48213 BODY=8BITMIME"),
    ("mail_dsn", b"MAIL FROM:<a@example.com> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ314159+2B1"),
    ("mail_null", b"MAIL FROM:<>"),
    ("rcpt_plain", b"RCPT TO:<bob@example.org>"),
    ("rcpt_dsn", b"RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.org"),
    ("rcpt_quoted", b"RCPT TO:<\"bob smith\"@example.org>"),
    ("rcpt_utf8", "RCPT TO:<élève@école.example>".as_bytes()),
    ("data", b"DATA"),
    ("bdat", b"BDAT 65536 LAST"),
];

/// `command_parse` group: one benchmark per typical line, plus a pipelined
/// MAIL + 3 RCPT + DATA transaction parsed as a batch.
fn command_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("command_parse");
    for (name, line) in COMMAND_LINES {
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(*name, |b| b.iter(|| black_box(parse(black_box(line))).is_ok()));
    }
    let tx: [&[u8]; 5] = [
        b"MAIL FROM:<alice@example.com> SIZE=2000",
        b"RCPT TO:<bob@example.org>",
        b"RCPT TO:<carol@example.org>",
        b"RCPT TO:<dave@example.org>",
        b"DATA",
    ];
    g.throughput(Throughput::Bytes(tx.iter().map(|l| l.len() as u64).sum()));
    g.bench_function("transaction", |b| {
        b.iter(|| tx.iter().filter(|l| parse(black_box(l)).is_ok()).count())
    });
    g.finish();
}

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

criterion_group!(smtp_benches, command_parse, data_scan);
criterion_main!(smtp_benches);
