//! The fuzz targets as regression tests: every committed input of `fuzz/corpus/<target>/`
//! (the seeds, and every input that once crashed a target, kept as `crash-*` files) is
//! replayed through the same target body the fuzzer runs (`fuzz/src/targets.rs`, compiled
//! into this test). A target's assertions failing or a panic fails the test, naming the
//! file. This runs in the ordinary `cargo test`, without the fuzzing engine.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use std::fs;
use std::path::{Path, PathBuf};

use mailroot::spool::format::{
    Envelope, EnvelopeRecipient, QueueId, RcptStatus, SEGMENT_HEADER_BYTES, SegmentHeader,
    encode_record,
};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// Every target has a corpus directory with seeds, and every file in it passes.
#[test]
fn every_corpus_file_passes_its_target() {
    let mut total = 0;
    for (name, run) in targets::TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 2, "{name}: no seeds in {}", dir.display());
        for f in files {
            let data = fs::read(&f).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} fails its target", f.display());
            total += 1;
        }
    }
    assert!(total > 50, "only {total} corpus files");
}

/// Every target has a libFuzzer entry file of the same name, and no entry is missing from
/// `TARGETS` (so the replay above covers what `fuzz/run.sh all` runs).
#[test]
fn targets_match_the_fuzz_crate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut entries: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut names: Vec<String> = targets::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(entries, names);
}

/// A small segment file as the spool writes it: header, then `records` messages (the
/// second one's recipients all crossed off when `delivered`), then clean zero space.
fn segment(number: u64, records: u64, delivered: bool) -> Vec<u8> {
    let header = SegmentHeader {
        flags: 0,
        worker: 0,
        number,
        created_unix_ms: 1_700_000_000_000,
        capacity_bytes: 65_536,
    };
    let mut out = header.encode().to_vec();
    assert_eq!(out.len(), SEGMENT_HEADER_BYTES);
    for i in 0..records {
        let env = Envelope {
            reverse_path: format!("sender{i}@example.org"),
            recipients: vec![
                EnvelopeRecipient { forward_path: "a@example.com".into(), ..Default::default() },
                EnvelopeRecipient {
                    forward_path: "b@example.net".into(),
                    notify: 6,
                    orcpt: Some("rfc822;b@example.net".into()),
                },
            ],
            body: 1,
            envid: Some("env".into()),
            client_addr: "192.0.2.1:4567".into(),
            helo: "client.example".into(),
            arrival_unix_ms: 1_700_000_000_000 + i,
            site: "SMTPSVC1".into(),
            ..Default::default()
        };
        let start = out.len();
        encode_record(QueueId(number << 32 | i), &env, b"Subject: x\r\n\r\nhello\r\n", &mut out);
        if delivered && i == 1 {
            let status = start + mailroot::spool::format::RECORD_STATUS_OFFSET;
            out[status..status + 2].fill(RcptStatus::Delivered.as_byte());
        }
    }
    out.resize(out.len() + 128, 0);
    out
}

/// The spool seeds: written by `cargo test --test fuzz_corpus -- --ignored`, and checked
/// to be what the committed files hold.
fn spool_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let two = segment(1, 2, false);
    let mut torn = segment(2, 3, false);
    torn.truncate(torn.len() - 200);
    let mut flipped = segment(3, 2, false);
    let k = flipped.len() / 2;
    flipped[k] ^= 0x40;
    vec![
        ("two_records", two),
        ("one_delivered", segment(7, 2, true)),
        ("torn_tail", torn),
        ("bit_flip", flipped),
        ("header_only", segment(0xABCDEF, 0, false)),
    ]
}

#[test]
fn spool_seeds_are_committed() {
    for (name, bytes) in spool_seeds() {
        let mut with_ctl = vec![0x11];
        with_ctl.extend_from_slice(&bytes);
        assert_eq!(fs::read(corpus_dir("spool_recover").join(name)).unwrap(), bytes, "{name}");
        assert_eq!(fs::read(corpus_dir("spool_segment").join(name)).unwrap(), with_ctl, "{name}");
    }
    // The seeds really hold records (or the fuzzer would start from nothing).
    let found = mailroot::spool::verify_segment(&spool_seeds()[0].1).unwrap();
    assert_eq!(found.records.len(), 2);
    assert_eq!(found.stop, None);
}

#[test]
#[ignore = "writes the spool seed files; run by hand after a format change"]
fn write_spool_seeds() {
    for (name, bytes) in spool_seeds() {
        let mut with_ctl = vec![0x11];
        with_ctl.extend_from_slice(&bytes);
        fs::create_dir_all(corpus_dir("spool_recover")).unwrap();
        fs::create_dir_all(corpus_dir("spool_segment")).unwrap();
        fs::write(corpus_dir("spool_recover").join(name), &bytes).unwrap();
        fs::write(corpus_dir("spool_segment").join(name), &with_ctl).unwrap();
    }
}
