//! Tests of the pickup thread against a real spool in a temporary directory.

use std::time::Duration;

use super::*;
use crate::spool::SpoolOptions;

#[test]
fn skipped_names() {
    let cases = [
        ("msg.eml", false),
        ("0000000300000041.eml", false),
        ("noext", false),
        (".tmp-0001.eml", true),
        (".hidden", true),
        ("draft.eml~", true),
        ("upload.TMP", true),
        ("upload.tmp", true),
        ("tmp", false),
        ("", true),
    ];
    for (name, want) in cases {
        assert_eq!(skipped_name(OsStr::new(name)), want, "{name:?}");
    }
}

#[test]
fn envelope_of_a_pickup_message() {
    let m = parse::parse("From: a@b\r\nTo: c@d, jö@e\r\n\r\n\u{e9}".as_bytes()).unwrap();
    let env = envelope(&m, 1234);
    assert_eq!(env.reverse_path, "a@b");
    let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.forward_path.as_str()).collect();
    assert_eq!(rcpts, ["c@d", "jö@e"]);
    assert_eq!((env.body, env.smtputf8, env.arrival_unix_ms), (1, true, 1234));
    assert_eq!(
        (env.site.as_str(), env.client_addr.as_str(), env.helo.as_str()),
        ("pickup", "pickup", "pickup")
    );
}

/// Receive id batches until `n` ids arrived (bounded wait).
fn recv_ids(rx: &crossbeam_channel::Receiver<IncomingBatch>, n: usize) -> Vec<QueueId> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ids = Vec::new();
    while ids.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => ids.extend(b),
            Err(e) => panic!("only {} of {n} ids arrived: {e}", ids.len()),
        }
    }
    ids
}

#[test]
fn watcher_queues_files_and_badmails_garbage() {
    let root = tempfile::tempdir().unwrap();
    let pickup = root.path().join("Pickup");
    let badmail = root.path().join("Badmail");
    fs::create_dir_all(&pickup).unwrap();
    let opts = SpoolOptions { segment_bytes: 1 << 20, min_free_bytes: 0 };
    let (spool, _) = Spool::open(&root.path().join("Queue"), opts).unwrap();
    // Present before the start: found by the first rescans.
    fs::write(
        pickup.join("early.eml"),
        b"x-sender: a@b\r\nx-receiver: c@d\r\nS: 1\r\n\r\nearly\r\n",
    )
    .unwrap();
    let cfg = PickupConfig {
        domains: crate::config::DomainsConfig { local: vec!["localhost".into()], aliases: vec![] },
        pickup_dir: pickup.clone(),
        badmail_dir: badmail.clone(),
        hostname: "mx.test".into(),
        max_message_size_bytes: 1 << 20,
        writer_number: 7,
        rescan_ms: 300,
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(cfg, spool.clone(), tx, Arc::clone(&stop)).unwrap();
    let first = recv_ids(&rx, 1);

    // Renamed in (IN_MOVED_TO), as a careful writer does; its temp name is never touched.
    fs::write(pickup.join(".partial"), b"From: x@y\nTo: z@w\nBcc: q@w\n\nlate\n").unwrap();
    fs::rename(pickup.join(".partial"), pickup.join("late.eml")).unwrap();
    // Written in place (IN_CLOSE_WRITE), and garbage.
    fs::write(pickup.join("junk.bin"), b"\x7fELF\x02\x01\x01\0\0\0").unwrap();
    fs::write(pickup.join(".ignored"), b"not mail").unwrap();
    // A symbolic link to a readable message outside Pickup/ is never followed.
    let secret = root.path().join("secret.eml");
    fs::write(&secret, b"x-sender: a@b\r\nx-receiver: thief@x\r\n\r\nsecret\r\n").unwrap();
    std::os::unix::fs::symlink(&secret, pickup.join("link.eml")).unwrap();
    // Over max_message_size_bytes: copied to Badmail without being read.
    let big = vec![b'a'; (1 << 20) + 1];
    fs::write(pickup.join("big.eml"), &big).unwrap();
    let second = recv_ids(&rx, 1);

    let bad = badmail.join("junk.bin.BAD");
    let bdr = badmail.join("junk.bin.BDR");
    let gone = wait(|| !pickup.join("junk.bin").exists() && bad.exists());
    assert!(gone, "junk.bin not moved to Badmail");
    assert_eq!(fs::read(&bad).unwrap(), b"\x7fELF\x02\x01\x01\0\0\0");
    let reason = fs::read_to_string(&bdr).unwrap();
    assert!(reason.contains("Reason: binary content: NUL byte at offset 7\r\n"), "{reason}");

    let big_bad = badmail.join("big.eml.BAD");
    assert!(wait(|| !pickup.join("big.eml").exists() && big_bad.exists()), "big.eml");
    assert_eq!(fs::read(&big_bad).unwrap(), big);
    let reason = fs::read_to_string(badmail.join("big.eml.BDR")).unwrap();
    assert!(
        reason.contains("Reason: message too large (1048577 bytes, limit 1048576)"),
        "{reason}"
    );

    stop.store(true, Ordering::Release);
    handle.join().unwrap();
    let mut left: Vec<String> = fs::read_dir(&pickup)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".ignored", "link.eml"], "queued files are removed, links left alone");
    assert!(rx.try_recv().is_err(), "nothing else was queued");
    assert_eq!(spool.live_messages(), 2);

    let early = spool.read_message(first[0]).unwrap();
    let text = String::from_utf8(early).unwrap();
    assert!(
        text.starts_with("Received: by mx.test (mailroot, from the Pickup folder)\r\n\tid "),
        "{text}"
    );
    assert!(text.ends_with("+0000\r\nS: 1\r\n\r\nearly\r\n"), "{text}");
    let late = String::from_utf8(spool.read_message(second[0]).unwrap()).unwrap();
    assert!(late.ends_with("+0000\r\nFrom: x@y\r\nTo: z@w\r\n\r\nlate\r\n"), "{late}");
}

/// Poll `f` for up to 20 s.
fn wait(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
