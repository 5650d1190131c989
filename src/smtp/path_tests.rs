//! Unit and property tests of `smtp::path` (tables of cases, one line each).

use super::*;
use proptest::prelude::*;

/// Expected outcome of parsing a forward path: (canonical `Display`, source route flag,
/// relay trick) or the error.
type Want<'w> = Result<(&'w str, bool, Option<RelayTrick>), PathError>;

fn check_forward(cases: &[(&str, Want<'_>)]) {
    for (input, want) in cases {
        let got = parse_forward_path(input).map(|(p, rest)| {
            assert_eq!(rest, "", "input {input:?}");
            let mb = p.mailbox();
            (
                p.to_string(),
                mb.is_some_and(|m| m.had_source_route),
                mb.and_then(Mailbox::relay_trick),
            )
        });
        let want = want.map(|(s, r, t)| (s.to_owned(), r, t));
        assert_eq!(got, want, "input {input:?}");
    }
}

const L63: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn length_limits() {
    use PathError::*;
    let l62 = L63.get(1..).unwrap();
    let ok = |s: &str| format!("<{s}>");
    let local64 = format!("{L63}a@b");
    let quoted64 = format!("\"{l62}\"@b");
    let label63 = format!("a@{L63}.com");
    let dom255 = format!("a@{L63}.{L63}.{L63}.{L63}");
    let (p1, p2, p3, p4) = (ok(&local64), ok(&format!("{l62}@b")), ok(&label63), ok(&dom255));
    check_forward(&[
        (&p1, Ok((&p1, false, None))),
        (&format!("<{L63}aa@b>"), Err(LocalPartTooLong)),
        (&ok(&quoted64), Ok((&p2, false, None))),
        (&format!("<\"{L63}\"@b>"), Err(LocalPartTooLong)),
        (&p3, Ok((&p3, false, None))),
        (&format!("<a@{L63}a.com>"), Err(LabelTooLong)),
        (&p4, Ok((&p4, false, None))),
        (&format!("<a@b.{L63}.{L63}.{L63}.{L63}>"), Err(DomainTooLong)),
    ]);
}

#[test]
fn forward_path_table() {
    use PathError::*;
    use RelayTrick::*;
    check_forward(&[
        ("<a@b>", Ok(("<a@b>", false, None))),
        ("<User.Name+tag@Example.COM>", Ok(("<User.Name+tag@Example.COM>", false, None))),
        ("<Postmaster>", Ok(("<Postmaster>", false, None))),
        ("<pOsTmAsTeR>", Ok(("<Postmaster>", false, None))),
        ("<postmaster@b>", Ok(("<postmaster@b>", false, None))),
        ("<>", Err(NullNotAllowed)),
        ("a@b", Err(MissingAngleBrackets)),
        ("", Err(MissingAngleBrackets)),
        ("<", Err(BadLocalPart)),
        ("<a@b", Err(Unterminated)),
        ("<a@b c>", Err(Unterminated)),
        ("<a>", Err(MissingDomain)),
        ("<a@>", Err(MissingDomain)),
        ("<@>", Err(BadSourceRoute)),
        // Quoted local parts.
        ("<\"a b\"@c>", Ok(("<\"a b\"@c>", false, None))),
        ("<\"abc\"@c>", Ok(("<abc@c>", false, None))),
        ("<\"\"@c>", Ok(("<\"\"@c>", false, None))),
        ("<\"a\\\"b\"@c>", Ok(("<\"a\\\"b\"@c>", false, None))),
        ("<\"a\\\\b\"@c>", Ok(("<\"a\\\\b\"@c>", false, None))),
        ("<\"\\a\\b\"@c>", Ok(("<ab@c>", false, None))),
        ("<\"a@b\"@c>", Ok(("<\"a@b\"@c>", false, Some(QuotedAt)))),
        ("<\"a.\"@c>", Ok(("<\"a.\"@c>", false, None))),
        ("<\"a\"b\"@c>", Err(BadLocalPart)),
        ("<\"abc@c>", Err(BadQuotedString)),
        ("<\"a\\\u{e9}\"@c>", Err(BadQuotedString)),
        ("<\"a\\", Err(BadQuotedString)),
        ("<a.\"b\"@c>", Err(BadLocalPart)),
        // Dot-strings.
        ("<a.b@c>", Ok(("<a.b@c>", false, None))),
        ("<.a@c>", Err(BadLocalPart)),
        ("<a.@c>", Err(BadLocalPart)),
        ("<a..b@c>", Err(BadLocalPart)),
        ("<a b@c>", Err(BadLocalPart)),
        ("<a(b)@c>", Err(BadLocalPart)),
        // Relay tricks.
        ("<u%other.example@c>", Ok(("<u%other.example@c>", false, Some(Percent)))),
        ("<host!u@c>", Ok(("<host!u@c>", false, Some(Bang)))),
        // Domains.
        ("<a@b.>", Err(EmptyLabel)),
        ("<a@.b>", Err(EmptyLabel)),
        ("<a@b..c>", Err(EmptyLabel)),
        ("<a@-b>", Err(BadLabel)),
        ("<a@b->", Err(BadLabel)),
        ("<a@b_c>", Err(BadLabel)),
        ("<a@b@c>", Err(BadLabel)),
        ("<a@xn--bcher-kva.example>", Ok(("<a@xn--bcher-kva.example>", false, None))),
        ("<a@123.example>", Ok(("<a@123.example>", false, None))),
        // Address literals.
        ("<a@[192.0.2.1]>", Ok(("<a@[192.0.2.1]>", false, None))),
        ("<a@[010.0.2.1]>", Ok(("<a@[10.0.2.1]>", false, None))),
        ("<a@[256.0.2.1]>", Err(BadAddressLiteral)),
        ("<a@[1.2.3]>", Err(BadAddressLiteral)),
        ("<a@[1.2.3.4.5]>", Err(BadAddressLiteral)),
        ("<a@[1.2.3.4]x>", Err(Unterminated)),
        ("<a@[1.2.3.4>", Err(BadAddressLiteral)),
        ("<a@[]>", Err(BadAddressLiteral)),
        ("<a@[IPv6:2001:db8::1]>", Ok(("<a@[IPv6:2001:db8::1]>", false, None))),
        ("<a@[ipv6:::1]>", Ok(("<a@[IPv6:::1]>", false, None))),
        ("<a@[IPv6:1.2.3.4]>", Err(BadAddressLiteral)),
        ("<a@[IPv6:2001:db8::g]>", Err(BadAddressLiteral)),
        ("<a@[x-tag:any-thing:1]>", Ok(("<a@[x-tag:any-thing:1]>", false, None))),
        ("<a@[:x]>", Err(BadAddressLiteral)),
        ("<a@[tag:]>", Err(BadAddressLiteral)),
        ("<a@[-tag:x]>", Err(BadAddressLiteral)),
        ("<a@[a[b]>", Err(BadAddressLiteral)),
        // Source routes: accepted, ignored, flagged.
        ("<@a.example,@b.example:user@d.example>", Ok(("<user@d.example>", true, None))),
        ("<@route:user@host>", Ok(("<user@host>", true, None))),
        ("<@a,b:u@d>", Err(BadSourceRoute)),
        ("<@a u@d>", Err(BadSourceRoute)),
        ("<@:u@d>", Err(BadSourceRoute)),
        ("<@a.:u@d>", Err(BadSourceRoute)),
        ("<@[1.2.3.4]:u@d>", Err(BadSourceRoute)),
        ("<@a:Postmaster>", Err(MissingDomain)),
        // UTF-8 (RFC 6531).
        ("<\u{e9}l\u{e8}ve@\u{e9}cole.fr>", Ok(("<\u{e9}l\u{e8}ve@\u{e9}cole.fr>", false, None))),
        ("<\"\u{4e2d} \u{6587}\"@x.cn>", Ok(("<\"\u{4e2d} \u{6587}\"@x.cn>", false, None))),
    ]);
}

#[test]
fn reverse_path_table() {
    let cases: &[(&str, Result<&str, PathError>, &str)] = &[
        ("<>", Ok("<>"), ""),
        ("<> SIZE=1", Ok("<>"), " SIZE=1"),
        ("<a@b> BODY=8BITMIME", Ok("<a@b>"), " BODY=8BITMIME"),
        ("<Postmaster>", Err(PathError::MissingDomain), ""),
        ("< >", Err(PathError::BadLocalPart), ""),
        ("<<a@b>>", Err(PathError::BadLocalPart), ""),
        ("a@b", Err(PathError::MissingAngleBrackets), ""),
    ];
    for (input, want, want_rest) in cases {
        match (parse_reverse_path(input), want) {
            (Ok((p, rest)), Ok(w)) => {
                assert_eq!((p.to_string().as_str(), rest), (*w, *want_rest))
            }
            (Err(e), Err(w)) => assert_eq!(e, *w, "input {input:?}"),
            (got, _) => panic!("input {input:?}: {got:?}"),
        }
    }
}

#[test]
fn helpers() {
    let m = Mailbox::parse("Joe@Example.COM").unwrap();
    assert_eq!(m.domain_str(), "example.com");
    assert!(m.is_ascii() && !m.local_part_needs_quoting() && !m.has_relay_trick());
    assert!(matches!(Mailbox::parse("a@b.example").unwrap().domain_str(), Cow::Borrowed(_)));
    let m = Mailbox::parse("a@[IPv6:2001:DB8::1]").unwrap();
    assert_eq!(m.domain_str(), "[IPv6:2001:db8::1]");
    assert_eq!(Mailbox::parse("a@[Tag:AbC]").unwrap().domain_str(), "[tag:AbC]");
    assert_eq!(Mailbox::parse("a@[1.2.3.4]").unwrap().domain_str(), "[1.2.3.4]");
    assert!(!Mailbox::parse("\u{e9}@b").unwrap().is_ascii());
    assert!(!Mailbox::parse("a@\u{e9}.fr").unwrap().is_ascii());
    assert!(ReversePath::Null.is_ascii() && ForwardPath::Postmaster.is_ascii());
    assert!(!parse_forward_path("<\u{e9}@b>").unwrap().0.is_ascii());
    assert_eq!(Mailbox::parse("a@\u{c9}X.fr").unwrap().domain_str(), "\u{c9}x.fr");
    assert!(Mailbox::parse("\"a b\"@c").unwrap().local_part_needs_quoting());
    assert!(Mailbox::parse("\"a@b\"@c").unwrap().has_relay_trick());
    assert_eq!(Mailbox::parse("a@b c"), Err(PathError::BadLabel));
    assert_eq!(parse_domain("Example.COM"), Ok(Domain::Name("Example.COM")));
    assert_eq!(parse_domain("my_pc"), Err(PathError::BadLabel));
    assert_eq!(parse_helo_domain("my_pc"), Ok(Domain::Name("my_pc")));
    assert_eq!(parse_helo_domain("a.example."), Ok(Domain::Name("a.example")));
    assert_eq!(parse_helo_domain("a.example.."), Err(PathError::EmptyLabel));
    assert_eq!(parse_helo_domain("."), Err(PathError::MissingDomain));
    assert_eq!(parse_domain("[127.0.0.1]"), Ok(Domain::Ip(IpAddr::from([127, 0, 0, 1]))));
}

fn arb_local() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,12}(\\.[a-zA-Z0-9_-]{1,8}){0,3}",
        "[ -~]{0,30}",
        "[a-z.\"\\\\ \u{e9}\u{4e2d}]{0,20}",
    ]
}

fn arb_name() -> impl Strategy<Value = String> {
    concat!(
        "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?",
        "(\\.[a-z0-9\u{e9}]([a-z0-9-]{0,8}[a-z0-9])?){0,4}"
    )
}

proptest! {
    /// print then parse gives back the same mailbox, for names and address literals.
    #[test]
    fn mailbox_roundtrip(local in arb_local(), name in arb_name(),
                         v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>(), kind in 0u8..4) {
        let domain = match kind {
            0 | 1 => Domain::Name(&name),
            2 => Domain::Ip(IpAddr::from(v4)),
            _ => Domain::Ip(IpAddr::from(v6)),
        };
        let mb = Mailbox { local_part: Cow::Borrowed(&local), domain, had_source_route: false };
        let printed = format!("<{mb}>");
        let canonical_local_len = printed.rfind('@').unwrap() - 1;
        match parse_forward_path(&printed) {
            Ok((ForwardPath::Mailbox(got), rest)) => {
                prop_assert_eq!(rest, "");
                prop_assert_eq!(&got, &mb);
                prop_assert_eq!(got.local_part_needs_quoting(), printed.starts_with("<\""));
            }
            Ok((ForwardPath::Postmaster, _)) => {
                prop_assert!(false, "postmaster from {}", printed);
            }
            Err(e) => {
                prop_assert_eq!(e, PathError::LocalPartTooLong, "{}", printed);
                prop_assert!(canonical_local_len > MAX_LOCAL_PART_BYTES);
            }
        }
    }

    /// Any string: parsing never panics and accepted paths re-print to themselves.
    #[test]
    fn paths_are_total(s in "<[a-z@.\"\\\\:,\\[\\]>IPv6: \u{e9}0-9-]{0,40}") {
        if let Ok((p, _)) = parse_forward_path(&s) {
            // The source route is not printed, so compare without it.
            let strip = |p: ForwardPath<'_>| match p {
                ForwardPath::Mailbox(mut m) => {
                    m.had_source_route = false;
                    m.to_string()
                }
                ForwardPath::Postmaster => "Postmaster".to_owned(),
            };
            let printed = p.to_string();
            let again = parse_forward_path(&printed).map(|(p, _)| p);
            prop_assert_eq!(again.map(strip), Ok(strip(p)));
        }
        let _ = parse_reverse_path(&s);
        let _ = Mailbox::parse(s.trim_start_matches('<'));
    }
}
