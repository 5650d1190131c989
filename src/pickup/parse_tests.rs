//! Tests of `pickup::parse`: tables of files and what they become, and property tests.

use proptest::prelude::*;

use super::*;

/// `(file, reverse path, recipients, content)` for files that parse.
type Good = (&'static str, &'static str, &'static [&'static str], &'static str);

#[test]
fn files_that_parse() {
    let cases: &[Good] = &[
        // IIS / Drop format: lower case, envelope lines removed from the content.
        (
            "x-sender: a@b.example\r\nx-receiver: c@d.example\r\nSubject: s\r\n\r\nbody\r\n",
            "a@b.example",
            &["c@d.example"],
            "Subject: s\r\n\r\nbody\r\n",
        ),
        // .NET SmtpClient: X-Sender / X-Receiver at the top, Bcc recipients included there.
        (
            "X-Sender: from@example.com\r\nX-Receiver: to@example.com\r\n\
             X-Receiver: hidden@example.com\r\nMIME-Version: 1.0\r\nFrom: from@example.com\r\n\
             To: to@example.com\r\nDate: 28 Nov 2026 15:00:00 +0000\r\nSubject: hi\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nHello=20there\r\n",
            "from@example.com",
            &["to@example.com", "hidden@example.com"],
            "MIME-Version: 1.0\r\nFrom: from@example.com\r\nTo: to@example.com\r\n\
             Date: 28 Nov 2026 15:00:00 +0000\r\nSubject: hi\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nHello=20there\r\n",
        ),
        // Angle brackets, odd case, spaces; null sender written as <> or empty.
        ("X-SENDER:  <a@b>  \r\nx-Receiver:<c@d>\r\n\r\nx", "a@b", &["c@d"], "\r\nx"),
        ("x-sender: <>\r\nx-receiver: c@d\r\nS: 1\r\n\r\n", "", &["c@d"], "S: 1\r\n\r\n"),
        ("x-sender:\r\nx-receiver: c@d\r\nS: 1\r\n\r\n", "", &["c@d"], "S: 1\r\n\r\n"),
        // x-receiver only: the sender comes from From.
        ("x-receiver: c@d\r\nFrom: A <a@b>\r\n\r\n", "a@b", &["c@d"], "From: A <a@b>\r\n\r\n"),
        // Headers only: Sender wins over From; To/Cc/Bcc with names, comments, groups,
        // folding, duplicates; Bcc removed from the content.
        (
            "From: Alice <alice@a.example>\r\nSender: sec@a.example\r\n\
             To: \"Bob, Jr.\" <bob@b.example>, carol@c.example (Carol)\r\n\
             Cc: friends: dave@d.example, Eve <eve@e.example>;,\r\n\tBOB@b.example\r\n\
             Bcc: secret@s.example\r\nSubject: x\r\n\r\nbody\r\n",
            "sec@a.example",
            &[
                "bob@b.example",
                "carol@c.example",
                "dave@d.example",
                "eve@e.example",
                "secret@s.example",
            ],
            "From: Alice <alice@a.example>\r\nSender: sec@a.example\r\n\
             To: \"Bob, Jr.\" <bob@b.example>, carol@c.example (Carol)\r\n\
             Cc: friends: dave@d.example, Eve <eve@e.example>;,\r\n\tBOB@b.example\r\n\
             Subject: x\r\n\r\nbody\r\n",
        ),
        // Folded Bcc fields (several) are removed whole; recipients from multiple To fields.
        (
            "From: a@b\r\nBcc: x@y,\r\n  z@y\r\nTo: c@d\r\nBCC: w@y\r\nTo: e@f\r\n\r\n",
            "a@b",
            &["x@y", "z@y", "c@d", "w@y", "e@f"],
            "From: a@b\r\nTo: c@d\r\nTo: e@f\r\n\r\n",
        ),
        // Bcc is removed even when the envelope comes from x-receiver lines.
        (
            "x-sender: a@b\r\nx-receiver: c@d\r\nBcc: c@d\r\nTo: z@z\r\n\r\nb",
            "a@b",
            &["c@d"],
            "To: z@z\r\n\r\nb",
        ),
        // An empty group is no recipient, others still count.
        (
            "From: a@b\r\nTo: undisclosed-recipients:;\r\nBcc: c@d\r\n\r\n",
            "a@b",
            &["c@d"],
            "From: a@b\r\nTo: undisclosed-recipients:;\r\n\r\n",
        ),
        // An X-Sender below the first ordinary field is an ordinary field.
        (
            "From: a@b\r\nX-Sender: evil@x\r\nTo: c@d\r\n\r\n",
            "a@b",
            &["c@d"],
            "From: a@b\r\nX-Sender: evil@x\r\nTo: c@d\r\n\r\n",
        ),
        // Bare LF (and bare CR) files are normalised.
        (
            "x-sender: a@b\nx-receiver: c@d\nS: 1\n\nline1\nline2\n",
            "a@b",
            &["c@d"],
            "S: 1\r\n\r\nline1\r\nline2\r\n",
        ),
        ("From: a@b\rTo: c@d\r\rx\r\n", "a@b", &["c@d"], "From: a@b\r\nTo: c@d\r\n\r\nx\r\n"),
        // The classic hand-typed IIS example: the header "ends" with a line of spaces,
        // written as an empty line. (Its last line `.` needs CRLF line ends: with bare LFs
        // it is an end-of-data look-alike, see `files_that_go_to_badmail`.)
        (
            "From: blog@a.example\r\nTo: email@b.example\r\nSubject: Email test\r\n \r\nThis is the body\r\n \r\n.\r\n",
            "blog@a.example",
            &["email@b.example"],
            "From: blog@a.example\r\nTo: email@b.example\r\nSubject: Email test\r\n\r\nThis is the body\r\n \r\n.\r\n",
        ),
        (
            "From: a@b\r\nBcc: x@y\r\nTo: c@d\r\n\t \r\nb",
            "a@b",
            &["x@y", "c@d"],
            "From: a@b\r\nTo: c@d\r\n\r\nb",
        ),
        // Obsolete WSP before the colon; postmaster without a domain.
        (
            "From : a@b\r\nTo\t: postmaster\r\n\r\n",
            "a@b",
            &["Postmaster"],
            "From : a@b\r\nTo\t: postmaster\r\n\r\n",
        ),
        // UTF-8 addresses (SMTPUTF8) and 8-bit bodies are kept.
        (
            "From: jöran@bücher.example\r\nTo: c@d\r\n\r\nGrüße\r\n",
            "jöran@bücher.example",
            &["c@d"],
            "From: jöran@bücher.example\r\nTo: c@d\r\n\r\nGrüße\r\n",
        ),
        // The body may contain anything but NUL, and need not end with CRLF.
        (
            "From: a@b\r\nTo: c@d\r\n\r\n.\r\nFrom: x\r\n\r\n\x7f no end",
            "a@b",
            &["c@d"],
            "From: a@b\r\nTo: c@d\r\n\r\n.\r\nFrom: x\r\n\r\n\x7f no end",
        ),
    ];
    for (file, sender, rcpts, content) in cases {
        let m = parse(file.as_bytes()).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert_eq!(m.reverse_path, *sender, "{file:?}");
        assert_eq!(m.recipients, *rcpts, "{file:?}");
        assert_eq!(String::from_utf8_lossy(&m.content), *content, "{file:?}");
    }
}

#[test]
fn flags_and_borrowing() {
    let m = parse(b"x-sender: a@b\r\nx-receiver: c@d\r\nS: 1\r\n\r\nx").unwrap();
    assert!(matches!(m.content, Cow::Borrowed(_)), "no copy when nothing changes");
    assert!(!m.smtputf8 && !m.eight_bit);
    let m = parse("From: jöran@b.example\r\nTo: c@d\r\n\r\n".as_bytes()).unwrap();
    assert!(m.smtputf8 && m.eight_bit);
    let m = parse("From: a@b\r\nTo: c@d\r\n\r\n\u{e9}".as_bytes()).unwrap();
    assert!(!m.smtputf8 && m.eight_bit);
}

/// The Badmail reason of a Pickup file with an end-of-data look-alike.
const LOOKALIKE: &str = "a line holding a single dot next to a bare CR or LF (an end-of-data \
    look-alike, SMTP smuggling); write the file with CRLF line ends, or without such a line";

#[test]
fn files_that_go_to_badmail() {
    // (file, error, reason text as written to the .BDR)
    let cases: &[(&[u8], PickupError, &str)] = &[
        (b"", PickupError::Empty, "the file is empty"),
        // End-of-data look-alikes (SMTP smuggling): a lone dot next to a bare CR or LF.
        (
            b"From: a@b\nTo: c@d\n\nbody\n.\nMAIL FROM:<x@y>\n",
            PickupError::EndOfDataLookalike,
            LOOKALIKE,
        ),
        (
            b"From: a@b\r\nTo: c@d\r\n\r\nbody\n.\r\nx\r\n",
            PickupError::EndOfDataLookalike,
            LOOKALIKE,
        ),
        (
            b"From: a@b\r\nTo: c@d\r\n\r\nbody\r.\r\nx\r\n",
            PickupError::EndOfDataLookalike,
            LOOKALIKE,
        ),
        (b"From: a@b\r\nTo: c@d\r\n\r\nbody\r.\rx\r\n", PickupError::EndOfDataLookalike, LOOKALIKE),
        (
            b"From: a@b\r\nTo: c@d\r\n\r\nbody\r\n.\rx\r\n",
            PickupError::EndOfDataLookalike,
            LOOKALIKE,
        ),
        (b"From: a@b\nTo: c@d\n\nbody\n \n.\n", PickupError::EndOfDataLookalike, LOOKALIKE),
        (
            b"From: a@b\r\nTo: c@d\r\n\r\nbin\0ary",
            PickupError::Nul(25),
            "binary content: NUL byte at offset 25",
        ),
        (
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            PickupError::Nul(8),
            "binary content: NUL byte at offset 8",
        ),
        (
            b"\xff\xfe\x01garbage",
            PickupError::BadHeaderLine(1),
            "header line 1 is not a header field (name: value)",
        ),
        (
            b"Hello Bob,\r\n\r\nhow are you?\r\n",
            PickupError::BadHeaderLine(1),
            "header line 1 is not a header field (name: value)",
        ),
        (
            b"From a@b Sat Nov 28 2026\r\nTo: c@d\r\n\r\n",
            PickupError::BadHeaderLine(1),
            "header line 1 is not a header field (name: value)",
        ),
        (
            b"From: a@b\r\n continued first?\r\nTo c@d\r\n\r\n",
            PickupError::BadHeaderLine(3),
            "header line 3 is not a header field (name: value)",
        ),
        (
            b"x-sender: a@b\r\n folded\r\n\r\n",
            PickupError::BadHeaderLine(1),
            "header line 1 is not a header field (name: value)",
        ),
        (
            b"From: a@b\r\nTo: c@d\r\n",
            PickupError::NoHeaderEnd,
            "no empty line between the header and the body",
        ),
        (
            b"x-sender: a@b\r\nx-receiver: c@d\r\n",
            PickupError::NoHeaderEnd,
            "no empty line between the header and the body",
        ),
        (
            b"x-sender: a@b\r\nx-sender: e@f\r\nx-receiver: c@d\r\n\r\n",
            PickupError::DuplicateSender,
            "more than one x-sender line",
        ),
        (
            b"x-sender: not an address\r\nx-receiver: c@d\r\n\r\n",
            PickupError::BadSender("not an address".into()),
            "invalid sender address \"not an address\"",
        ),
        (
            b"x-sender: a@b\r\nx-receiver: c@\r\n\r\n",
            PickupError::BadRecipient("c@".into()),
            "invalid recipient address \"c@\"",
        ),
        (
            b"From: a@b\r\nTo: Bob\r\n\r\n",
            PickupError::BadRecipient("Bob".into()),
            "invalid recipient address \"Bob\"",
        ),
        (
            b"From: a@b\r\nTo: <@route:c@d>\r\n\r\n",
            PickupError::BadRecipient("@route:c@d".into()),
            "invalid recipient address \"@route:c@d\"",
        ),
        (
            b"From: a@b\r\nTo: c\xff@d\r\n\r\n",
            PickupError::NotUtf8("To"),
            "the To field is not valid UTF-8",
        ),
        (
            b"Subject: no sender\r\nTo: c@d\r\n\r\n",
            PickupError::NoSender,
            "no sender: no x-sender line and no address in Sender or From",
        ),
        (
            b"From: undisclosed:;\r\nTo: c@d\r\n\r\n",
            PickupError::NoSender,
            "no sender: no x-sender line and no address in Sender or From",
        ),
        (
            b"From: a@b\r\nSubject: nobody\r\n\r\n",
            PickupError::NoRecipients,
            "no recipients: no x-receiver line and no address in To, Cc or Bcc",
        ),
        (
            b"From: a@b\r\nTo: group:;\r\n\r\n",
            PickupError::NoRecipients,
            "no recipients: no x-receiver line and no address in To, Cc or Bcc",
        ),
        (
            b"\r\nbody only",
            PickupError::NoSender,
            "no sender: no x-sender line and no address in Sender or From",
        ),
    ];
    let mut wrong = Vec::new();
    for (file, want, reason) in cases {
        match parse(file) {
            Err(got) if got == *want && got.to_string() == *reason => {}
            other => wrong.push(format!("{:?}: {other:?}", String::from_utf8_lossy(file))),
        }
    }
    assert!(wrong.is_empty(), "unexpected results:\n{}", wrong.join("\n"));
}

/// A plain address for the generators.
fn address() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9+_-]{0,6}(\\.[a-z0-9+_-]{1,5})?",
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?\\.(example|test|org)",
    )
        .prop_map(|(l, d)| format!("{l}@{d}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never panic.
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes);
    }

    /// Bytes from the header alphabet (colons, folding, brackets, x-lines) never panic.
    #[test]
    fn never_panics_on_header_like_input(
        parts in proptest::collection::vec(prop_oneof![
            Just("x-sender: "), Just("X-Receiver:"), Just("To: "), Just("Bcc:"), Just("From:"),
            Just("\r\n"), Just("\n"), Just("\r"), Just(" "), Just("\t"), Just(":"), Just(","),
            Just(";"), Just("<"), Just(">"), Just("\""), Just("("), Just(")"), Just("@"),
            Just("a"), Just("b.example"), Just("\u{e9}"), Just("=?utf-8?q?x?="),
        ], 0..80)
    ) {
        let _ = parse(parts.concat().as_bytes());
    }

    /// Envelope lines + a message: the envelope comes back and the content is the message.
    #[test]
    fn envelope_round_trip(
        sender in proptest::option::of(address()),
        rcpts in proptest::collection::vec(address(), 1..6),
        subject in "[ -~]{0,40}",
        body in "([ -~]{0,30}\r\n){0,5}",
        upper in any::<bool>(),
    ) {
        let mut file = String::new();
        let (xs, xr) = if upper { ("X-Sender", "X-Receiver") } else { ("x-sender", "x-receiver") };
        file += &format!("{xs}: {}\r\n", sender.clone().unwrap_or_default());
        for r in &rcpts {
            file += &format!("{xr}: {r}\r\n");
        }
        let message = format!("Subject: {subject}\r\n\r\n{body}");
        file += &message;
        let m = parse(file.as_bytes()).unwrap();
        prop_assert_eq!(m.reverse_path, sender.unwrap_or_default());
        let mut want: Vec<String> = Vec::new();
        for r in rcpts {
            if !want.iter().any(|w| w.eq_ignore_ascii_case(&r)) {
                want.push(r);
            }
        }
        prop_assert_eq!(m.recipients, want);
        prop_assert_eq!(&*m.content, message.as_bytes());
    }

    /// A bare-LF file parses exactly like its CRLF twin.
    #[test]
    fn bare_lf_equals_crlf(
        from in address(),
        to in proptest::collection::vec(address(), 1..4),
        bcc in proptest::option::of(address()),
        body in "([ -~]{0,30}\r\n){0,5}",
    ) {
        // A line `.` with bare LFs is a look-alike (refused); every other file is the same.
        prop_assume!(!body.split("\r\n").any(|l| l == "."));
        let mut crlf = format!("From: <{from}>\r\nTo: {}\r\n", to.join(", "));
        if let Some(b) = &bcc {
            crlf += &format!("Bcc: {b}\r\n");
        }
        crlf += &format!("Subject: t\r\n\r\n{body}");
        let lf = crlf.replace("\r\n", "\n");
        let a = parse(crlf.as_bytes()).unwrap();
        let b = parse(lf.as_bytes()).unwrap();
        prop_assert!(!a.content.windows(5).any(|w| w.eq_ignore_ascii_case(b"\nBcc:")));
        prop_assert_eq!(a, b);
    }
}
