//! Drop file parsing: envelope lines, fields, missing headers as `None`, malformed files.

use super::*;

const FULL: &[u8] = b"x-sender: alice@example.com\r\n\
x-receiver: bob@localhost\r\n\
x-receiver: carol@localhost\r\n\
Received: from client.example (127.0.0.1) by mx.test (mailroot); Thu, 5 Dec 2024 12:00:10 +0000\r\n\
From: Alice Example <alice@example.com>\r\n\
To: Bob <bob@localhost>\r\n\
Cc: carol@localhost\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Thu, 5 Dec 2024 12:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob\r\n";

#[test]
fn full_file() {
    let m = parse(FULL).unwrap();
    assert_eq!(m.envelope_sender, "alice@example.com");
    assert_eq!(m.receivers, ["bob@localhost", "carol@localhost"]);
    assert!(
        m.is_for("BOB@localhost") && m.is_for("carol@localhost") && !m.is_for("dave@localhost")
    );
    assert_eq!(m.subject.as_deref(), Some("Grüße"));
    assert_eq!(m.text.as_deref(), Some("Hello Bob\r\n"));
    assert_eq!(m.html, None);
    assert_eq!(
        m.sender,
        Some(Person { name: "Alice Example".into(), address: "alice@example.com".into() })
    );
    assert_eq!(m.to, [Person { name: "Bob".into(), address: "bob@localhost".into() }]);
    assert_eq!(m.cc, [Person { name: String::new(), address: "carol@localhost".into() }]);
    assert_eq!(m.time_sent, Some(UNIX_EPOCH + Duration::from_secs(1_733_400_000)));
    assert_eq!(m.time_received, Some(UNIX_EPOCH + Duration::from_secs(1_733_400_010)));
    assert_eq!(m.message_id.as_deref(), Some("1@example.com"));
}

/// The release notes' E_UNEXPECTED: a message without `Date:` or `Received:` has no times,
/// and that is `None`, not an error. Likewise no subject, no From.
#[test]
fn missing_headers_are_none() {
    let f = b"x-sender: \r\nx-receiver: bob@localhost\r\nX-Other: 1\r\n\r\nbody only\r\n";
    let m = parse(f).unwrap();
    assert_eq!(m.envelope_sender, "");
    assert_eq!(m.time_sent, None);
    assert_eq!(m.time_received, None);
    assert_eq!(m.subject, None);
    assert_eq!(m.sender, None);
    assert!(m.to.is_empty() && m.attachments.is_empty());
    assert_eq!(m.text.as_deref(), Some("body only\r\n"));
    // A Date that is not a date is missing too.
    let f =
        b"x-sender: a@b.example\r\nx-receiver: bob@localhost\r\nDate: yesterday-ish\r\n\r\nx\r\n";
    assert_eq!(parse(f).unwrap().time_sent, None);
}

/// (file, error): one line per malformed file.
#[test]
fn malformed_files() {
    let cases: &[(&[u8], DropFileError)] = &[
        (b"", DropFileError::NoEnvelope),
        (b"Subject: no envelope\r\n\r\nbody\r\n", DropFileError::NoEnvelope),
        (b"x-sender: a@b\r\nSubject: no receiver\r\n\r\nx\r\n", DropFileError::NoEnvelope),
        (b"x-receiver: b@c\r\n\r\nno sender\r\n", DropFileError::NoEnvelope),
        (b"\x00\x01\x02binary\xff\xfe", DropFileError::NoEnvelope),
        (b"x-sender: a@b\r\nx-receiver: c@d\r\n", DropFileError::NoMessage),
        (b"x-sender: a@b\r\nx-receiver: c@d\r\n\r\n  \r\n", DropFileError::NoMessage),
    ];
    for (file, want) in cases {
        assert_eq!(parse(file).unwrap_err(), *want, "{:?}", String::from_utf8_lossy(file));
    }
}

/// What the relay's Drop writer (`local::drop`) writes, this reads.
#[test]
fn reads_what_local_drop_writes() {
    let dir = tempfile::tempdir().unwrap();
    let id = crate::spool::QueueId(0x41);
    let msg = b"Received: by h; Thu, 5 Dec 2024 12:00:10 +0000\r\nSubject: s\r\n\r\nb\r\n";
    let path = crate::local::drop::deliver_to_drop(
        dir.path(),
        id,
        0,
        "a@example.com",
        &["x@localhost", "y@localhost"],
        msg,
    )
    .unwrap();
    let m = parse(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(m.envelope_sender, "a@example.com");
    assert_eq!(m.receivers, ["x@localhost", "y@localhost"]);
    assert_eq!(m.subject.as_deref(), Some("s"));
    assert!(m.time_received.is_some());
}

/// Any bytes: an error or a value, never a panic.
#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    proptest!(|(body in proptest::collection::vec(any::<u8>(), 0..400))| {
        let mut f = b"x-sender: a@b\r\nx-receiver: c@d\r\n".to_vec();
        f.extend_from_slice(&body);
        let _ = parse(&f);
        let _ = parse(&body);
    });
}
