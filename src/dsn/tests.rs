//! Tests of `dsn`: generated reports parsed back with mail-parser, NOTIFY tables,
//! line and boundary rules, and injection attempts.

use mail_parser::{Message, MessageParser, MimeHeaders};

use super::*;

const ORIGINAL: &[u8] = b"Received: from client by mx\r\nFrom: Alice <alice@example.org>\r\n\
To: bob@example.com\r\nSubject: Quarterly numbers\r\nMessage-ID: <orig-1@example.org>\r\n\
\r\nHello Bob,\r\nthe numbers.\r\n";

const REMOTE_REPLY: &str = "550-5.1.1 The email account that you tried to reach does not exist.\r\n\
550 5.1.1 Please try double-checking the recipient's address.";

fn rcpts() -> Vec<RcptReport<'static>> {
    vec![
        RcptReport {
            final_recipient: "bob@example.com",
            original_recipient: Some("rfc822;Bob@Example.com"),
            status: "5.1.1",
            diagnosis: Diagnosis::Remote { mta: "mx.example.com", reply: REMOTE_REPLY },
            last_attempt: Some(1_795_966_802),
            will_retry_until: None,
        },
        RcptReport {
            final_recipient: "carol@loop.example",
            original_recipient: None,
            status: "5.4.6",
            diagnosis: Diagnosis::Local {
                text: "Cannot connect to self",
                mta: Some("[127.0.0.1]"),
            },
            last_attempt: Some(1_795_966_802),
            will_retry_until: None,
        },
    ]
}

fn report<'a>(kind: ReportKind, recipients: &'a [RcptReport<'a>], ret: Option<Ret>) -> Report<'a> {
    Report {
        kind,
        hostname: "mx.example.org",
        to: "alice@example.org",
        date: 1_795_966_802,
        message_id: "0000000100000002.1795966802",
        envid: Some("env-42"),
        arrival_date: 1_795_966_000,
        recipients,
        ret,
        original: ORIGINAL,
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default().parse(bytes).expect("the report parses")
}

/// `(type, subtype)` of each MIME part after the root.
fn part_types(m: &Message<'_>) -> Vec<String> {
    m.parts
        .iter()
        .skip(1)
        .map(|p| {
            let ct = p.content_type().expect("every part has a Content-Type");
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
        })
        .collect()
}

/// Field values named `name` in a delivery-status text, in order.
fn fields(status: &str, name: &str) -> Vec<String> {
    status
        .replace("\r\n ", " ")
        .split("\r\n")
        .filter_map(|l| l.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.to_owned())
        .collect()
}

/// Every line ends in CRLF, no bare CR, no line over 998 octets.
fn assert_wire_clean(bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(bytes.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    assert!(bytes.ends_with(b"\r\n"));
    for line in bytes.split(|&b| b == b'\n') {
        assert!(line.len() <= MAX_LINE_OCTETS + 1, "line of {} octets", line.len());
    }
}

#[test]
fn failure_report_parses_with_all_fields() {
    let r = rcpts();
    let bytes = build(&report(ReportKind::Failure, &r, None)).unwrap();
    assert_wire_clean(&bytes);
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("Delivery Status Notification (Failure)"));
    assert_eq!(
        m.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("MAILER-DAEMON@mx.example.org")
    );
    assert_eq!(m.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("alice@example.org"));
    assert_eq!(m.message_id(), Some("0000000100000002.1795966802@mx.example.org"));
    assert_eq!(m.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
    assert_eq!(m.header_raw("Date").map(str::trim), Some("Sun, 29 Nov 2026 15:40:02 +0000"));
    let ct = m.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    assert_eq!(part_types(&m), ["text/plain", "message/delivery-status", "text/rfc822-headers"]);

    let human = m.parts[1].text_contents().unwrap();
    for want in [
        "Delivery to the following recipients failed.",
        "bob@example.com",
        "Remote host: mx.example.com",
        "550-5.1.1 The email account that you tried to reach does not exist.",
        "550 5.1.1 Please try double-checking the recipient's address.",
        "carol@loop.example",
        "Cannot connect to self (5.4.6)",
    ] {
        assert!(human.contains(want), "missing {want:?} in\n{human}");
    }
    assert!(!human.to_ascii_lowercase().contains("connection to host failed"));

    let status = std::str::from_utf8(m.parts[2].contents()).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("Reporting-MTA", &["dns; mx.example.org"]),
        ("Original-Envelope-Id", &["env-42"]),
        ("Arrival-Date", &["Sun, 29 Nov 2026 15:26:40 +0000"]),
        ("Final-Recipient", &["rfc822; bob@example.com", "rfc822; carol@loop.example"]),
        ("Original-Recipient", &["rfc822;Bob@Example.com"]),
        ("Action", &["failed", "failed"]),
        ("Status", &["5.1.1", "5.4.6"]),
        ("Remote-MTA", &["dns; mx.example.com", "dns; [127.0.0.1]"]),
        (
            "Diagnostic-Code",
            &["smtp; 550-5.1.1 The email account that you tried to reach does not exist. \
               550 5.1.1 Please try double-checking the recipient's address."],
        ),
        ("Last-Attempt-Date", &["Sun, 29 Nov 2026 15:40:02 +0000"; 2]),
        ("Will-Retry-Until", &[]),
    ];
    for &(name, want) in cases {
        assert_eq!(fields(status, name), want, "{name} in\n{status}");
    }
    // Per-message block, then one block per recipient, separated by empty lines.
    assert_eq!(status.matches("\r\n\r\n").count(), 2, "{status}");

    let headers = std::str::from_utf8(m.parts[3].contents()).unwrap();
    assert!(headers.contains("Subject: Quarterly numbers\r\n"));
    assert!(!headers.contains("Hello Bob"), "RET=HDRS returns headers only");
}

#[test]
fn ret_full_returns_the_message() {
    let r = rcpts();
    let bytes = build(&report(ReportKind::Failure, &r, Some(Ret::Full))).unwrap();
    assert_wire_clean(&bytes);
    let m = parse(&bytes);
    assert_eq!(part_types(&m)[2], "message/rfc822");
    let inner = m.parts[3].message().expect("a nested message");
    assert_eq!(inner.subject(), Some("Quarterly numbers"));
    assert_eq!(inner.raw_message(), ORIGINAL);
}

#[test]
fn ret_full_falls_back_to_headers_when_unsendable() {
    let r = rcpts();
    let long = [ORIGINAL, &b"x".repeat(MAX_LINE_OCTETS + 1), b"\r\n"].concat();
    let bare_cr = [ORIGINAL, b"a\rb\r\n"].concat();
    let bare_lf = b"Subject: lf\nX: y\n\nbody\n".to_vec();
    // (original, third part type)
    let cases: &[(&[u8], &str)] = &[
        (&long, "text/rfc822-headers"),
        (&bare_cr, "text/rfc822-headers"),
        (&bare_lf, "message/rfc822"),
    ];
    for &(original, want) in cases {
        let rep = Report { original, ..report(ReportKind::Failure, &r, Some(Ret::Full)) };
        let bytes = build(&rep).unwrap();
        assert_wire_clean(&bytes);
        assert_eq!(part_types(&parse(&bytes))[2], want);
    }
}

#[test]
fn delay_and_success_reports() {
    let mut r = rcpts();
    r.truncate(1);
    r[0].status = "4.4.1";
    r[0].will_retry_until = Some(1_796_139_602);
    let bytes = build(&report(ReportKind::Delay, &r, None)).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("Delivery Status Notification (Delay)"));
    let status = std::str::from_utf8(m.parts[2].contents()).unwrap();
    assert_eq!(fields(status, "Action"), ["delayed"]);
    assert_eq!(fields(status, "Will-Retry-Until"), ["Tue, 1 Dec 2026 15:40:02 +0000"]);
    assert!(m.parts[1].text_contents().unwrap().contains("will keep trying until"));

    r[0].status = "2.0.0";
    r[0].will_retry_until = None;
    r[0].diagnosis = Diagnosis::Remote { mta: "mx.example.com", reply: "250 2.0.0 OK queued" };
    let bytes = build(&report(ReportKind::Success, &r, None)).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("Delivery Status Notification (Success)"));
    let status = std::str::from_utf8(m.parts[2].contents()).unwrap();
    assert_eq!(fields(status, "Action"), ["delivered"]);
}

#[test]
fn peer_text_cannot_inject_headers_or_parts() {
    let evil_reply = "550 no\r\nBcc: victim@example.net\r\n\r\n--=_mailroot_x_0--\nX-Evil: 1";
    let long_reply = format!("550 5.7.1 {}", "blocked ".repeat(400));
    let huge_word = format!("550 {}", "w".repeat(3000));
    let r = vec![
        RcptReport {
            final_recipient: "bob@example.com\r\nX-Injected: yes",
            original_recipient: Some("bob@example.com"),
            status: "5.0.0",
            diagnosis: Diagnosis::Remote { mta: "mx\r\nX-Evil: 2", reply: evil_reply },
            last_attempt: None,
            will_retry_until: None,
        },
        RcptReport {
            final_recipient: "dörte@bücher.example",
            original_recipient: None,
            status: "5.7.1",
            diagnosis: Diagnosis::Remote { mta: "mx.example.com", reply: &long_reply },
            last_attempt: None,
            will_retry_until: None,
        },
        RcptReport {
            final_recipient: "x@example.com",
            original_recipient: None,
            status: "5.0.0",
            diagnosis: Diagnosis::Remote { mta: "mx.example.com", reply: &huge_word },
            last_attempt: None,
            will_retry_until: None,
        },
    ];
    let rep = Report {
        message_id: "x",
        to: "alice@example.org\r\nBcc: x@y",
        ..report(ReportKind::Failure, &r, None)
    };
    let bytes = build(&rep).unwrap();
    assert_wire_clean(&bytes);
    let m = parse(&bytes);
    assert_eq!(m.header_raw("Bcc"), None);
    assert_eq!(m.header_raw("X-Injected"), None);
    assert_eq!(part_types(&m).len(), 3);
    let status = std::str::from_utf8(m.parts[2].contents()).unwrap();
    assert!(status.is_ascii());
    assert_eq!(fields(status, "Final-Recipient")[1], "utf-8; d\\x{F6}rte@b\\x{FC}cher.example");
    assert_eq!(fields(status, "Original-Recipient"), ["rfc822; bob@example.com"]);
    assert!(!status.lines().any(|l| l.starts_with("X-Evil") || l.starts_with("Bcc")));
}

#[test]
fn boundary_avoids_content() {
    let r = rcpts();
    let original = b"Subject: tricky\r\n\r\n--=_mailroot_x_0\r\n--=_mailroot_x_1--\r\n";
    let rep =
        Report { message_id: "x", original, ..report(ReportKind::Failure, &r, Some(Ret::Full)) };
    let bytes = build(&rep).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.content_type().unwrap().attribute("boundary"), Some("=_mailroot_x_2"));
    assert_eq!(m.parts[3].message().unwrap().raw_message(), &original[..]);
}

#[test]
fn refused_reports() {
    let r = rcpts();
    let cases: &[(Report<'_>, BounceError)] = &[
        (Report { to: "", ..report(ReportKind::Failure, &r, None) }, BounceError::NullSender),
        (Report { to: "<>", ..report(ReportKind::Failure, &r, None) }, BounceError::NullSender),
        (
            Report { recipients: &[], ..report(ReportKind::Failure, &r, None) },
            BounceError::NoRecipients,
        ),
    ];
    for (rep, err) in cases {
        assert_eq!(build(rep), Err(*err));
    }
}

#[test]
fn notify_rules() {
    let n = |never, success, failure, delay| Some(Notify { never, success, failure, delay });
    use ReportKind::{Delay as D, Failure as F, Success as S};
    // (NOTIFY, kind, send?)
    let cases: &[(Option<Notify>, ReportKind, bool)] = &[
        (None, F, true),
        (None, D, false),
        (None, S, false),
        (n(true, false, false, false), F, false),
        (n(true, false, false, false), D, false),
        (n(true, false, false, false), S, false),
        (n(false, true, false, false), S, true),
        (n(false, true, false, false), F, false),
        (n(false, false, true, false), F, true),
        (n(false, false, true, false), D, false),
        (n(false, false, false, true), D, true),
        (n(false, true, true, true), S, true),
        (n(false, true, true, true), F, true),
        (n(false, true, true, true), D, true),
    ];
    for &(notify, kind, want) in cases {
        assert_eq!(should_notify(notify, kind), want, "{notify:?} {kind:?}");
    }
}

#[test]
fn dates() {
    let cases: &[(u64, &str)] = &[
        (0, "Thu, 1 Jan 1970 00:00:00 +0000"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 +0000"),
        (1_795_966_802, "Sun, 29 Nov 2026 15:40:02 +0000"),
        (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 +0000"),
    ];
    for &(t, want) in cases {
        assert_eq!(rfc5322_date(t), want, "{t}");
    }
}

mod props {
    use super::super::{MAX_LINE_OCTETS, field};
    use proptest::prelude::*;

    proptest! {
        /// A folded field unfolds to its words joined by single spaces, and no line is
        /// longer than the limit.
        #[test]
        fn folding_keeps_words_and_limits(words in proptest::collection::vec("[!-~\\u{a0}-\\u{2ff}]{1,1200}", 0..12)) {
            let value = words.join(" ");
            let mut out = String::new();
            field(&mut out, "Diagnostic-Code", &value);
            prop_assert!(out.ends_with("\r\n"));
            for (i, line) in out.trim_end_matches("\r\n").split("\r\n").enumerate() {
                prop_assert!(line.len() <= MAX_LINE_OCTETS, "line of {}", line.len());
                // A continuation line starts with white space, or it would be a new field.
                prop_assert!(i == 0 || line.starts_with(' '), "line {} is not folded", i);
            }
            let unfolded = out.trim_end_matches("\r\n").replace("\r\n", "");
            let body = unfolded.strip_prefix("Diagnostic-Code:").unwrap();
            // Cut words come back with a space inside; compare without spaces.
            prop_assert_eq!(body.replace(' ', ""), value.replace(' ', ""));
        }
    }
}
