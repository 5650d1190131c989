//! Tests of the W3C line format: exact lines, escaping of hostile values, and properties
//! (any field bytes give one line of exactly `FIELD_COUNT` fields that unescape back).

use super::*;
use proptest::prelude::*;

/// 2026-12-05 17:04:09.250 UTC.
const T: u64 = 1_796_490_249_250;

fn record<'a>(method: &'a str, query: &'a [u8]) -> Record<'a> {
    Record {
        unix_ms: T,
        client: "192.0.2.7".parse().unwrap(),
        username: None,
        site: "default",
        computer: "mx1.example.com",
        server: "127.0.0.1:2525".parse().unwrap(),
        method,
        query,
        status: 250,
        sc_bytes: 14,
        cs_bytes: Some(33),
        time_taken_ms: 0,
    }
}

fn line(r: &Record<'_>) -> String {
    let mut out = Vec::new();
    write_line(r, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn a_mail_line_looks_like_iis() {
    assert_eq!(
        line(&record("MAIL", b"FROM:<a@example.com> SIZE=1024")),
        "2026-12-05 17:04:09 192.0.2.7 - default mx1.example.com 127.0.0.1 2525 MAIL \
         FROM:<a@example.com>+SIZE=1024 250 14 33 0\r\n"
    );
    let mut r = record("AUTH", b"PLAIN");
    r.username = Some("alice");
    r.status = 235;
    r.cs_bytes = None;
    r.time_taken_ms = 41;
    r.client = "::1".parse().unwrap();
    r.server = "[::1]:587".parse().unwrap();
    assert_eq!(
        line(&r),
        "2026-12-05 17:04:09 ::1 alice default mx1.example.com ::1 587 AUTH PLAIN 235 14 - 41\r\n"
    );
    let mut r = record("", b"");
    r.status = 0;
    assert!(line(&r).contains(" 2525 - - - 14 33 0\r\n"), "{}", line(&r));
}

#[test]
fn escaping_table() {
    // (value, field)
    let cases: &[(&[u8], &str)] = &[
        (b"", "-"),
        (b"-", "%2D"),
        (b"--", "--"),
        (b"a b", "a+b"),
        (b"a+b", "a%2Bb"),
        (b"100%", "100%25"),
        (b"x\r\ny", "x%0D%0Ay"),
        (b"\t\0\x7f", "%09%00%7F"),
        ("é".as_bytes(), "%C3%A9"),
        (b"<a@b>", "<a@b>"),
        (b"#Fields:", "#Fields:"),
    ];
    for (value, want) in cases {
        let mut out = Vec::new();
        escape(value, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), *want, "{value:?}");
        assert_eq!(unescape(want).as_deref(), Some(*value), "{want}");
    }
    assert_eq!(unescape("a b"), None);
    assert_eq!(unescape("%G0"), None);
    assert_eq!(unescape("%4"), None);
}

#[test]
fn injected_line_ends_cannot_forge_a_line() {
    let forged = b"x\r\n2026-12-05 17:04:09 6.6.6.6 root default mx 1.2.3.4 25 MAIL - 250 1 1 0";
    let text = line(&record("EHLO", forged));
    assert_eq!(text.matches("\r\n").count(), 1, "{text}");
    assert!(text.ends_with("\r\n") && !text[..text.len() - 2].contains(['\r', '\n']));
    assert_eq!(text.trim_end().split(' ').count(), FIELD_COUNT);
    let query = text.split(' ').nth(9).unwrap();
    assert_eq!(unescape(query).unwrap(), forged);
}

#[test]
fn header_block() {
    let mut out = Vec::new();
    header("0.1.0", T, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "#Software: mailroot 0.1.0\r\n#Version: 1.0\r\n#Date: 2026-12-05 17:04:09\r\n\
             #Fields: {FIELDS}\r\n"
        )
    );
    assert_eq!(FIELDS.split(' ').count(), FIELD_COUNT);
}

#[test]
fn file_names_are_recognised_and_nothing_else() {
    for seq in [0, 1, 12] {
        assert!(is_file_name(&file_name(T, seq)), "{}", file_name(T, seq));
    }
    for other in [
        "ex261205.log.gz",
        "ex2612.log",
        "ex261205_.log",
        "ex26120a.log",
        "x261205.log",
        "ex261205_1x.log",
        "notes.txt",
        "ex261205",
    ] {
        assert!(!is_file_name(other), "{other}");
    }
}

#[test]
fn file_names_and_days() {
    assert_eq!(file_name(T, 0), "ex261205.log");
    assert_eq!(file_name(T, 3), "ex261205_3.log");
    assert_eq!(file_name(0, 0), "ex700101.log");
    // The day changes at midnight UTC, not before.
    let midnight = 1_796_515_200_000; // 2026-12-06 00:00:00 UTC
    assert_eq!(day_number(midnight - 1) + 1, day_number(midnight));
    assert_eq!(file_name(midnight, 0), "ex261206.log");
    let mut out = Vec::new();
    date_time(midnight - 1, &mut out);
    assert_eq!(out, b"2026-12-05 23:59:59");
}

proptest! {
    /// Whatever bytes a client puts in the fields it controls, the line is one line of
    /// `FIELD_COUNT` fields of printable ASCII, and each field unescapes to its value.
    #[test]
    fn any_values_make_one_well_formed_line(
        method in proptest::collection::vec(any::<u8>(), 0..12),
        query in proptest::collection::vec(any::<u8>(), 0..200),
        user in proptest::collection::vec(any::<u8>(), 0..20),
        status in any::<u16>(),
        sc in any::<u64>(),
        cs in proptest::option::of(any::<u64>()),
        ms in any::<u64>(),
        when in 0u64..253_402_300_799_000,
    ) {
        let method = String::from_utf8_lossy(&method).into_owned();
        let user = String::from_utf8_lossy(&user).into_owned();
        let r = Record {
            unix_ms: when,
            username: Some(user.as_str()),
            status,
            sc_bytes: sc,
            cs_bytes: cs,
            time_taken_ms: ms,
            ..record(&method, &query)
        };
        let mut out = Vec::new();
        write_line(&r, &mut out);
        prop_assert!(out.ends_with(b"\r\n"));
        let body = &out[..out.len() - 2];
        prop_assert!(body.iter().all(|b| (0x20..0x7f).contains(b)), "{:?}", body);
        let text = std::str::from_utf8(body).unwrap();
        let fields: Vec<&str> = text.split(' ').collect();
        prop_assert_eq!(fields.len(), FIELD_COUNT);
        prop_assert!(fields.iter().all(|f| !f.is_empty()));
        prop_assert_eq!(unescape(fields[3]).unwrap(), user.as_bytes());
        prop_assert_eq!(unescape(fields[8]).unwrap(), method.as_bytes());
        prop_assert_eq!(unescape(fields[9]).unwrap(), query);
    }
}
