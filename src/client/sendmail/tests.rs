//! sendmail option parsing, input rules and the Pickup file.

use super::*;

fn args(v: &[&str]) -> Result<SendmailArgs, SendmailError> {
    parse_args(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
}

const CTX: Context<'static> = Context {
    login: "www-data",
    default_domain: "localhost",
    now_unix: 1_733_400_000,
    message_id: "1.2@localhost",
};

/// (command line, -t, sender, full name, -i, recipients, config) -- the shapes callers use.
#[test]
fn command_lines() {
    type Want = (bool, Option<&'static str>, Option<&'static str>, bool, &'static [&'static str]);
    let cases: &[(&[&str], Want)] = &[
        (&["-t", "-i"], (true, None, None, true, &[])), // PHP mail()
        (&["-ti"], (true, None, None, true, &[])),
        (&["-oi", "-f", "a@b.c", "x@y.z"], (false, Some("a@b.c"), None, true, &["x@y.z"])),
        (
            &["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"],
            (false, None, Some("CronDaemon"), true, &["root"]),
        ), // cron
        (&["-i", "--", "-odd@x.y"], (false, None, None, true, &["-odd@x.y"])),
        (
            &["-fa@b.c", "-F", "Full Name", "-odi", "-v", "u@v.w"],
            (false, Some("a@b.c"), Some("Full Name"), false, &["u@v.w"]),
        ),
        (
            &["-r", "a@b.c", "-N", "never", "-bm", "x@y.z"],
            (false, Some("a@b.c"), None, false, &["x@y.z"]),
        ),
        (&["-oem", "-oee", "x@y.z"], (false, None, None, false, &["x@y.z"])),
    ];
    for (argv, (t, f, name, i, rcpts)) in cases {
        let a = args(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert_eq!(a.extract_recipients, *t, "{argv:?}");
        assert_eq!(a.sender.as_deref(), *f, "{argv:?}");
        assert_eq!(a.full_name.as_deref(), *name, "{argv:?}");
        assert_eq!(a.ignore_dots, *i, "{argv:?}");
        assert_eq!(a.recipients, *rcpts, "{argv:?}");
    }
    assert_eq!(args(&["-C", "/etc/m.toml"]).unwrap().config, Some("/etc/m.toml".into()));
    assert_eq!(args(&["--config=/m.toml"]).unwrap().config, Some("/m.toml".into()));
    for bad in [&["-bs"][..], &["-bp"], &["-x"], &["-f"], &["-o"], &["--frobnicate"]] {
        let e = args(bad).unwrap_err();
        assert_eq!(e.exit_code(), EX_USAGE, "{bad:?}: {e}");
    }
}

/// (input, ignore dots, expected): line ends and the lone dot.
#[test]
fn input_rules() {
    let cases: &[(&[u8], bool, &[u8])] = &[
        (b"a\nb\n", false, b"a\r\nb\r\n"),
        (b"a\r\nb", false, b"a\r\nb\r\n"),
        (b"a\rb\r", false, b"a\r\nb\r\n"),
        (b"a\n.\nafter\n", false, b"a\r\n"),
        (b"a\r\n.\r\nafter\r\n", false, b"a\r\n"),
        (b"a\n.\nafter\n", true, b"a\r\n.\r\nafter\r\n"),
        (b"a\n..\n. \n", false, b"a\r\n..\r\n. \r\n"),
        (b"", false, b""),
    ];
    for (input, dots, want) in cases {
        assert_eq!(read_message(input, *dots), *want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn php_mail_with_t_and_bcc() {
    let a = args(&["-t", "-i"]).unwrap();
    let input = b"To: Bob <bob@localhost>\nCc: carol@localhost\nBcc: hidden@localhost\n\
                  Subject: from PHP\n\nline one\n.\nline after the dot\n";
    let p = prepare(&a, input, &CTX).unwrap();
    assert_eq!(p.sender, "www-data@localhost");
    assert_eq!(p.recipients, ["bob@localhost", "carol@localhost", "hidden@localhost"]);
    let parsed = parse(&p.file).unwrap();
    let content = String::from_utf8(parsed.content.into_owned()).unwrap();
    assert!(!content.contains("hidden"), "{content}");
    assert!(content.starts_with("From: www-data@localhost\r\nDate: Thu, 5 Dec 2024 12:00:00 +0000\r\nMessage-ID: <1.2@localhost>\r\nTo: Bob"), "{content}");
    assert!(content.ends_with("\r\n\r\nline one\r\n.\r\nline after the dot\r\n"), "{content}");
}

#[test]
fn cron_style_without_header_and_with_full_name() {
    let a = args(&["-FCronDaemon", "-i", "root"]).unwrap();
    let p = prepare(&a, b"job output\n", &CTX).unwrap();
    assert_eq!(p.recipients, ["root@localhost"]);
    let text = String::from_utf8(p.file).unwrap();
    assert!(text.contains("From: \"CronDaemon\" <www-data@localhost>\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\njob output\r\n"), "{text}");
}

#[test]
fn headers_given_are_kept_and_f_is_the_envelope() {
    let a = args(&["-f", "bounces@example.com", "bob@localhost"]).unwrap();
    let input = b"From: Web <web@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n";
    let p = prepare(&a, input, &CTX).unwrap();
    assert_eq!(p.sender, "bounces@example.com");
    let text = String::from_utf8(p.file).unwrap();
    assert_eq!(
        text,
        "x-sender: bounces@example.com\r\nx-receiver: bob@localhost\r\n\
         From: Web <web@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n"
    );
    assert_eq!(
        prepare(&args(&["-f", "<>", "b@localhost"]).unwrap(), b"\n", &CTX).unwrap().sender,
        ""
    );
}

/// (command line, input, exit code): the refusals.
#[test]
fn refusals_and_exit_codes() {
    let cases: &[(&[&str], &[u8], i32)] = &[
        (&[], b"Subject: x\n\nbody\n", EX_USAGE),
        (&["-t"], b"Subject: no recipients\n\nbody\n", EX_USAGE),
        (&["not an address@@x"], b"x\n", EX_DATAERR),
        (&["-t"], b"To: bad@@address\n\nx\n", EX_DATAERR),
        (&["-f", "a b@c", "x@y.z"], b"x\n", EX_DATAERR),
        (&["x@y.z"], b"Subject: a\n\0binary\n", EX_DATAERR),
    ];
    for (argv, input, code) in cases {
        let e = prepare(&args(argv).unwrap(), input, &CTX).unwrap_err();
        assert_eq!(e.exit_code(), *code, "{argv:?}: {e}");
    }
}

/// Any input: CRLF line ends only, no panic, and whatever `prepare` accepts the Pickup
/// parser accepts too (with and without `-i`).
#[test]
fn any_input_property() {
    use proptest::prelude::*;
    let alphabet = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b'.'),
        Just(b':'),
        Just(b' '),
        Just(b'a'),
        Just(b'T'),
        Just(0xc3u8),
        any::<u8>()
    ];
    proptest!(|(input in proptest::collection::vec(alphabet, 0..300), dots in any::<bool>())| {
        let out = read_message(&input, dots);
        for (i, b) in out.iter().enumerate() {
            if *b == b'\n' {
                prop_assert_eq!(out.get(i.wrapping_sub(1)), Some(&b'\r'));
            }
            if *b == b'\r' {
                prop_assert_eq!(out.get(i + 1), Some(&b'\n'));
            }
        }
        let mut a = args(&["bob@localhost"]).unwrap();
        a.ignore_dots = dots;
        match prepare(&a, &input, &CTX) {
            Ok(p) => prop_assert!(parse(&p.file).is_ok()),
            Err(e) => prop_assert_eq!(e.exit_code(), EX_DATAERR),
        }
    });
}
