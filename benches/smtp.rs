//! Criterion benches for the `smtp` module's hot paths (STYLE.md rule 24).
//!
//! Groups:
//! - `command_parse`: `smtp::command::parse` on the lines a relay sees most (see
//!   [`command_parse`]). Throughput is reported in bytes so numbers compare across lines.
//! - `data_scan`: `smtp::data::DataScanner` over a dot-stuffed message (76-column lines,
//!   every 20th starting with a dot) fed in 16 KiB reads as a socket would deliver it;
//!   `Throughput::Bytes` of wire input, i.e. GB/s (see [`data_scan`]).
//! - `client_session`: a whole outbound `smtp::client::ClientSession` against canned
//!   replies: greeting, EHLO with PIPELINING, one message to three recipients by DATA
//!   (and by BDAT for `1MiB_bdat`);
//!   content dot-stuffed into a 64 KiB output buffer that is "written" (cleared) after
//!   each `poll_transmit`. `Throughput::Bytes` of content (see [`client_session`]).
//!
//! Run: `cargo bench --bench smtp`. Record headline numbers in perf/ with machine,
//! kernel and command (a number without its setup is not a result).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Instant;

use mailroot::smtp::client::{ClientConfig, ClientSession, Event, Job, JobRecipient};
use mailroot::smtp::command::parse;
use mailroot::smtp::data::{BareLineEnding, DataScanner};
use mailroot::smtp::stuff::dot_stuff;

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

/// Replies of a server accepting one pipelined message to three recipients by DATA.
const CLIENT_SCRIPT: [&[u8]; 4] = [
    b"220 mx.example.com ESMTP\r\n",
    b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250 DSN\r\n",
    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n",
    b"250 2.0.0 Ok: queued\r\n",
];

/// The same by BDAT (CHUNKING offered).
const CLIENT_SCRIPT_BDAT: [&[u8]; 4] = [
    b"220 mx.example.com ESMTP\r\n",
    b"250-mx.example.com\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 DSN\r\n",
    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n",
    b"250 2.0.0 Ok: queued\r\n",
];

fn client_session(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_session");
    let cfg = std::sync::Arc::new(ClientConfig::default());
    let job = Job {
        reverse_path: "alice@example.org".into(),
        recipients: ["b@example.com", "c@example.com", "d@example.com"]
            .iter()
            .map(|r| JobRecipient { forward_path: (*r).into(), ..JobRecipient::default() })
            .collect(),
        ..Job::default()
    };
    let runs = [
        ("4KiB", 4 * 1024, CLIENT_SCRIPT),
        ("64KiB", 64 * 1024, CLIENT_SCRIPT),
        ("1MiB", 1024 * 1024, CLIENT_SCRIPT),
        ("1MiB_bdat", 1024 * 1024, CLIENT_SCRIPT_BDAT),
    ];
    for (name, size, script) in runs {
        // Content lines as stored; the wire form comes from the session.
        let content = &wire_message(size)[..];
        let content = &content[..content.len() - 3];
        group.throughput(Throughput::Bytes(content.len() as u64));
        group.bench_function(name, |b| {
            let mut out = Vec::with_capacity(70 * 1024);
            b.iter(|| {
                let now = Instant::now();
                let mut s = ClientSession::new(std::sync::Arc::clone(&cfg), now);
                let mut written = 0usize;
                for reply in script {
                    s.handle_input(now, reply).unwrap();
                    while let Some(ev) = s.poll_event() {
                        if ev == Event::Ready {
                            s.send(job.clone(), now).unwrap();
                        }
                    }
                    loop {
                        out.clear();
                        let n = s.poll_transmit(now, black_box(content), &mut out);
                        if n == 0 {
                            break;
                        }
                        written += n;
                    }
                }
                black_box(written)
            });
        });
    }
    group.finish();
}

criterion_group!(smtp_benches, command_parse, data_scan, client_session);
criterion_main!(smtp_benches);
