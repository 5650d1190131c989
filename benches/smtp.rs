//! Criterion benches for the `smtp` module's hot paths (STYLE.md rule 24).
//!
//! Groups:
//! - `command_parse`: `smtp::command::parse` on the lines a relay sees most (see
//!   [`command_parse`]). Throughput is reported in bytes so numbers compare across lines.
//!
//! Run: `cargo bench --bench smtp`. Record headline numbers in perf/ with machine,
//! kernel and command (a number without its setup is not a result).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailroot::smtp::command::parse;

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

criterion_group!(smtp_benches, command_parse);
criterion_main!(smtp_benches);
