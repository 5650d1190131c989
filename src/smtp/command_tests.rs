//! Unit and property tests of `smtp::command` (tables of cases, one line each).

use super::*;
use crate::smtp::path::{Domain, Mailbox};
use std::borrow::Cow;

/// Expected outcome: the canonical re-printed line, or the reply code and status.
enum Want {
    Ok(&'static str),
    Err(u16, &'static str),
}
use Want::{Err as E, Ok as K};

fn status_of(r: &Reply) -> String {
    r.status.map(|s| format!("{}.{}.{}", s.class, s.subject, s.detail)).unwrap_or_default()
}

fn check(cases: &[(&[u8], Want)]) {
    for (line, want) in cases {
        let got = parse(line);
        match (want, &got) {
            (K(canon), Ok(c)) => {
                assert_eq!(c.to_string(), *canon, "input {:?}", String::from_utf8_lossy(line));
            }
            (E(code, st), Err(e)) => {
                let r = Reply::from(e);
                assert_eq!(
                    (r.code, status_of(&r).as_str()),
                    (*code, *st),
                    "input {:?} -> {e:?}",
                    String::from_utf8_lossy(line)
                );
            }
            _ => panic!("input {:?}: got {got:?}", String::from_utf8_lossy(line)),
        }
    }
}

#[test]
fn verbs_and_simple_commands() {
    check(&[
        (b"HELO mail.example.com", K("HELO mail.example.com")),
        (b"helo mail.example.com  ", K("HELO mail.example.com")),
        (b"EHLO [192.0.2.1]", K("EHLO [192.0.2.1]")),
        (b"EHLO [IPv6:2001:db8::1]", K("EHLO [IPv6:2001:db8::1]")),
        (b"EHLO my_pc", K("EHLO my_pc")),
        (b"EHLO host.example.com.", K("EHLO host.example.com.")),
        (b"EHLO host..example", E(501, "5.5.4")),
        (b"HELO .", E(501, "5.5.4")),
        (b"EHLO", E(501, "5.5.4")),
        (b"EHLO   ", E(501, "5.5.4")),
        (b"EHLO a b", E(501, "5.5.4")),
        (b"EHLO -bad-", E(501, "5.5.4")),
        (b"EHLO a..b", E(501, "5.5.4")),
        (b"EHLO [1.2.3]", E(501, "5.5.4")),
        (b"DATA", K("DATA")),
        (b"data", K("DATA")),
        (b"DATA x", E(501, "5.5.4")),
        (b"RSET", K("RSET")),
        (b"RSET now", E(501, "5.5.4")),
        (b"QUIT", K("QUIT")),
        (b"QUIT ", K("QUIT")),
        (b"QUIT bye", E(501, "5.5.4")),
        (b"STARTTLS", K("STARTTLS")),
        (b"StartTLS x", E(501, "5.5.4")),
        (b"NOOP", K("NOOP")),
        (b"NOOP anything at all", K("NOOP")),
        (b"VRFY postmaster", K("VRFY postmaster")),
        (b"VRFY", E(501, "5.5.4")),
        (b"EXPN staff list", K("EXPN staff list")),
        (b"EXPN ", E(501, "5.5.4")),
        (b"HELP", K("HELP")),
        (b"HELP MAIL", K("HELP MAIL")),
        (b"BDAT 1000", K("BDAT 1000")),
        (b"BDAT 0 LAST", K("BDAT 0 LAST")),
        (b"bdat 12 last", K("BDAT 12 LAST")),
        (b"BDAT", E(501, "5.5.4")),
        (b"BDAT x", E(501, "5.5.4")),
        (b"BDAT -1", E(501, "5.5.4")),
        (b"BDAT 1 LAST x", E(501, "5.5.4")),
        (b"BDAT 1 FIRST", E(501, "5.5.4")),
        (b"BDAT 18446744073709551615", K("BDAT 18446744073709551615")),
        (b"BDAT 18446744073709551616", E(501, "5.5.4")),
        (b"AUTH PLAIN", K("AUTH PLAIN")),
        (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", K("AUTH PLAIN AGFsaWNlAHNlY3JldA==")),
        (b"AUTH PLAIN =", K("AUTH PLAIN =")),
        (b"AUTH", E(501, "5.5.4")),
        (b"AUTH PL@IN", E(501, "5.5.4")),
        (b"AUTH PLAIN a b", E(501, "5.5.4")),
        (b"AUTH PLAIN a!b", E(501, "5.5.4")),
        (b"AUTH ABCDEFGHIJKLMNOPQRSTU", E(501, "5.5.4")),
        (b"", E(500, "5.5.2")),
        (b"   ", E(500, "5.5.2")),
        (b"FOO", E(500, "5.5.1")),
        (b"MAILFROM:<a@b>", E(500, "5.5.1")),
        (b" MAIL FROM:<a@b>", K("MAIL FROM:<a@b>")),
        (b"NOOP \x00", E(500, "5.5.2")),
        (b"\x00", E(500, "5.5.2")),
        (b"NOOP\tx", E(500, "5.5.2")),
        (b"HELO a\x7f", E(500, "5.5.2")),
        (b"HELO \xff", E(501, "5.6.7")),
        (b"HELO \xc3\xa9xample.com", K("HELO \u{e9}xample.com")),
    ]);
}

#[test]
fn mail_from() {
    check(&[
        (b"MAIL FROM:<a@b>", K("MAIL FROM:<a@b>")),
        (b"mail from:<a@b>", K("MAIL FROM:<a@b>")),
        (b"MAIL FROM: <a@b>", K("MAIL FROM:<a@b>")),
        (b"MAIL  FROM:<a@b>  ", K("MAIL FROM:<a@b>")),
        (b"MAIL FROM:<>", K("MAIL FROM:<>")),
        (b"MAIL FROM:a@b", E(501, "5.1.7")),
        (b"MAIL FROM:", E(501, "5.1.7")),
        (b"MAIL FROM:<a@b", E(501, "5.1.7")),
        (b"MAIL FROM:<Postmaster>", E(501, "5.1.7")),
        (b"MAIL TO:<a@b>", E(501, "5.5.4")),
        (b"MAIL", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b>x", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b>SIZE=1", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SIZE=1000", K("MAIL FROM:<a@b> SIZE=1000")),
        (b"MAIL FROM:<a@b> size=1000", K("MAIL FROM:<a@b> SIZE=1000")),
        (
            b"MAIL FROM:<a@b> SIZE=99999999999999999999",
            K("MAIL FROM:<a@b> SIZE=18446744073709551615"),
        ),
        (b"MAIL FROM:<a@b> SIZE=999999999999999999999", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SIZE=abc", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SIZE=", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SIZE", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SIZE=1 SIZE=2", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> BODY=8BITMIME", K("MAIL FROM:<a@b> BODY=8BITMIME")),
        (b"MAIL FROM:<a@b> BODY=7bit", K("MAIL FROM:<a@b> BODY=7BIT")),
        (b"MAIL FROM:<a@b> BODY=BINARYMIME", K("MAIL FROM:<a@b> BODY=BINARYMIME")),
        (b"MAIL FROM:<a@b> BODY=9BIT", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> BODY=7BIT BODY=7BIT", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SMTPUTF8", K("MAIL FROM:<a@b> SMTPUTF8")),
        (b"MAIL FROM:<a@b> SMTPUTF8=yes", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> SMTPUTF8 smtputf8", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> RET=HDRS", K("MAIL FROM:<a@b> RET=HDRS")),
        (b"MAIL FROM:<a@b> RET=ALL", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> ENVID=QQ314159", K("MAIL FROM:<a@b> ENVID=QQ314159")),
        (b"MAIL FROM:<a@b> ENVID=a+2Bb", K("MAIL FROM:<a@b> ENVID=a+2Bb")),
        (b"MAIL FROM:<a@b> ENVID=a+2bb+20c", K("MAIL FROM:<a@b> ENVID=a+2Bb+20c")),
        (b"MAIL FROM:<a@b> ENVID=a+2", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> ENVID=a+00", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> ENVID=a+GG", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> ENVID=a=b", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> AUTH=<>", K("MAIL FROM:<a@b>")),
        (b"MAIL FROM:<a@b> AUTH=e+3Dmc2@example.com", K("MAIL FROM:<a@b>")),
        (b"MAIL FROM:<a@b> AUTH", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> XFOO=1", E(555, "5.5.4")),
        (b"MAIL FROM:<a@b> XFOO", E(555, "5.5.4")),
        (b"MAIL FROM:<a@b> NOTIFY=NEVER", E(555, "5.5.4")),
        (b"MAIL FROM:<a@b> -X=1", E(501, "5.5.4")),
        (b"MAIL FROM:<a@b> =1", E(501, "5.5.4")),
        (
            b"MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=x",
            K("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=x"),
        ),
        (b"MAIL FROM:<@a.example,@b.example:user@d.example>", K("MAIL FROM:<user@d.example>")),
        (b"MAIL FROM:<\xff@b>", E(501, "5.6.7")),
        (b"MAIL FROM:<\xc3\xa9@b> SMTPUTF8", K("MAIL FROM:<\u{e9}@b> SMTPUTF8")),
    ]);
}

#[test]
fn rcpt_to() {
    check(&[
        (b"RCPT TO:<a@b>", K("RCPT TO:<a@b>")),
        (b"rcpt to: <a@b> ", K("RCPT TO:<a@b>")),
        (b"RCPT TO:<Postmaster>", K("RCPT TO:<Postmaster>")),
        (b"RCPT TO:<POSTMASTER>", K("RCPT TO:<Postmaster>")),
        (b"RCPT TO:<postmaster@b>", K("RCPT TO:<postmaster@b>")),
        (b"RCPT TO:<>", E(501, "5.1.3")),
        (b"RCPT TO:a@b", E(501, "5.1.3")),
        (b"RCPT FROM:<a@b>", E(501, "5.5.4")),
        (b"RCPT TO:<@route:user@host>", K("RCPT TO:<user@host>")),
        (b"RCPT TO:<a@b> NOTIFY=NEVER", K("RCPT TO:<a@b> NOTIFY=NEVER")),
        (b"RCPT TO:<a@b> NOTIFY=delay,success", K("RCPT TO:<a@b> NOTIFY=SUCCESS,DELAY")),
        (b"RCPT TO:<a@b> NOTIFY=NEVER,DELAY", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> NOTIFY=", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> NOTIFY=SUCCESS,", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> NOTIFY=ALWAYS", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> ORCPT=rfc822;a@b", K("RCPT TO:<a@b> ORCPT=rfc822;a@b")),
        (b"RCPT TO:<a@b> ORCPT=rfc822;a+2Bx@b", K("RCPT TO:<a@b> ORCPT=rfc822;a+2Bx@b")),
        (b"RCPT TO:<a@b> ORCPT=rfc822", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> ORCPT=;a@b", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> ORCPT=rfc822;", E(501, "5.5.4")),
        (b"RCPT TO:<a@b> SIZE=1", E(555, "5.5.4")),
        (b"RCPT TO:<a@b@c>", E(501, "5.1.3")),
    ]);
}

#[test]
fn line_length_limit() {
    let mut long = b"NOOP ".to_vec();
    long.resize(MAX_COMMAND_LINE_BYTES - 2, b'x');
    assert_eq!(parse(&long), Ok(Command::Noop));
    long.push(b'x');
    assert_eq!(parse(&long), Err(SyntaxError::LineTooLong));
}

#[test]
fn zero_copy_for_ascii() {
    // Every Cow in an ordinary command borrows (no allocation; the only other heap
    // use is the error path's String).
    let line = b"MAIL FROM:<user@example.com> SIZE=10 ENVID=abc";
    let Ok(Command::Mail { from, params }) = parse(line) else { panic!() };
    let mb = from.mailbox().unwrap();
    assert!(matches!(mb.local_part, Cow::Borrowed(_)));
    assert!(matches!(params.envid, Some(Cow::Borrowed("abc"))));
    assert_eq!(mb.domain, Domain::Name("example.com"));
    let line = b"RCPT TO:<\"bob smith\"@example.org> ORCPT=rfc822;bob@example.org";
    let Ok(Command::Rcpt { to, params }) = parse(line) else { panic!() };
    assert!(matches!(to.mailbox().unwrap().local_part, Cow::Borrowed("bob smith")));
    assert!(matches!(params.orcpt.unwrap().addr, Cow::Borrowed("bob@example.org")));
    // Escapes need a copy.
    let line = b"MAIL FROM:<\"a\\\"b\"@c> ENVID=a+2Bb";
    let Ok(Command::Mail { from, params }) = parse(line) else { panic!() };
    assert!(matches!(from.mailbox().unwrap().local_part, Cow::Owned(ref s) if s == "a\"b"));
    assert!(matches!(params.envid, Some(Cow::Owned(ref s)) if s == "a+b"));
}

#[test]
fn reply_text_carries_grammar_hint() {
    let e = parse(b"MAIL FROM:a@b").unwrap_err();
    let r = Reply::from(&e);
    assert_eq!(
        r.to_string(),
        format!(
            "501 5.1.7 Bad sender address syntax: address must be enclosed in <>. Syntax: {}",
            syntax::MAIL
        )
    );
    let r = Reply::from(&parse(b"MAIL FROM:<a@b> X-FOO=1").unwrap_err());
    assert!(r.text.starts_with("Unsupported parameter X-FOO. Syntax: MAIL FROM:<address>"));
    let r = Reply::from(&parse(b"BOGUS").unwrap_err());
    assert_eq!(r.to_string(), "500 5.5.1 Command unrecognized");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Owned description of a command, from which a borrowing `Command` is built.
    #[derive(Clone, Debug)]
    enum Spec {
        Helo(bool, String),
        Mail(Option<(String, String)>, Option<u64>, Option<u8>, bool, Option<u8>, Option<String>),
        Rcpt(Option<(String, String)>, Option<(bool, bool, bool, bool)>, Option<(String, String)>),
        Bdat(u64, bool),
        Simple(u8),
        Arg(u8, String),
        Help(Option<String>),
        Auth(String, Option<String>),
    }

    /// `Display` drops the source route; clear the flag before comparing.
    fn without_route(mut c: Command<'_>) -> Command<'_> {
        if let Command::Mail { from: ReversePath::Mailbox(m), .. }
        | Command::Rcpt { to: ForwardPath::Mailbox(m), .. } = &mut c
        {
            m.had_source_route = false;
        }
        c
    }

    fn mailbox(l: &(String, String)) -> Mailbox<'_> {
        Mailbox {
            local_part: Cow::Borrowed(&l.0),
            domain: Domain::Name(&l.1),
            had_source_route: false,
        }
    }

    fn build(s: &Spec) -> Command<'_> {
        let body =
            |b: u8| [Body::SevenBit, Body::EightBitMime, Body::BinaryMime][usize::from(b % 3)];
        match s {
            Spec::Helo(true, d) => Command::Helo { domain: d },
            Spec::Helo(false, d) => Command::Ehlo { domain: d },
            Spec::Mail(mb, size, b, u8f, ret, envid) => Command::Mail {
                from: mb.as_ref().map_or(ReversePath::Null, |m| ReversePath::Mailbox(mailbox(m))),
                params: MailParams {
                    size: *size,
                    body: b.map(body),
                    smtputf8: *u8f,
                    ret: ret.map(|r| if r % 2 == 0 { Ret::Full } else { Ret::Hdrs }),
                    envid: envid.as_deref().map(Cow::Borrowed),
                },
            },
            Spec::Rcpt(mb, notify, orcpt) => Command::Rcpt {
                to: mb
                    .as_ref()
                    .map_or(ForwardPath::Postmaster, |m| ForwardPath::Mailbox(mailbox(m))),
                params: RcptParams {
                    notify: notify.map(|(never, success, failure, delay)| {
                        if never || !(success || failure || delay) {
                            Notify { never: true, ..Notify::default() }
                        } else {
                            Notify { never: false, success, failure, delay }
                        }
                    }),
                    orcpt: orcpt
                        .as_ref()
                        .map(|(t, a)| Orcpt { addr_type: t, addr: Cow::Borrowed(a) }),
                },
            },
            Spec::Bdat(n, last) => Command::Bdat { chunk_bytes: *n, last: *last },
            Spec::Simple(k) => {
                [Command::Data, Command::Rset, Command::Noop, Command::Quit, Command::StartTls]
                    [usize::from(k % 5)]
                .clone()
            }
            Spec::Arg(k, a) => {
                if k % 2 == 0 {
                    Command::Vrfy { arg: a }
                } else {
                    Command::Expn { arg: a }
                }
            }
            Spec::Help(t) => Command::Help { topic: t.as_deref() },
            Spec::Auth(m, i) => Command::Auth { mechanism: m, initial: i.as_deref() },
        }
    }

    fn arb_mb() -> impl Strategy<Value = (String, String)> {
        (
            prop_oneof![
                "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9_-]{1,8}){0,3}",
                "[ -~]{0,20}",
                "[a-z\u{e9}\u{4e2d}]{1,8}",
            ],
            "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-zA-Z0-9\u{e9}]{1,10}){0,3}",
        )
    }

    fn arb_spec() -> impl Strategy<Value = Spec> {
        let text = "[!-~]([ -~]{0,20}[!-~])?";
        prop_oneof![
            (any::<bool>(), "[a-zA-Z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}")
                .prop_map(|(h, d)| Spec::Helo(h, d)),
            (
                proptest::option::of(arb_mb()),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u8>()),
                any::<bool>(),
                proptest::option::of(any::<u8>()),
                proptest::option::of("[ -~]{1,30}"),
            )
                .prop_map(|(m, s, b, u, r, e)| Spec::Mail(m, s, b, u, r, e)),
            (
                proptest::option::of(arb_mb()),
                proptest::option::of(any::<(bool, bool, bool, bool)>()),
                proptest::option::of(("[a-zA-Z0-9-]{1,8}", "[ -~\u{e9}]{1,40}")),
            )
                .prop_map(|(m, n, o)| Spec::Rcpt(m, n, o)),
            (any::<u64>(), any::<bool>()).prop_map(|(n, l)| Spec::Bdat(n, l)),
            any::<u8>().prop_map(Spec::Simple),
            (any::<u8>(), text).prop_map(|(k, a)| Spec::Arg(k, a)),
            proptest::option::of(text).prop_map(Spec::Help),
            ("[A-Z0-9_-]{1,20}", proptest::option::of("[A-Za-z0-9+/]{1,40}={0,2}"))
                .prop_map(|(m, i)| Spec::Auth(m, i)),
        ]
    }

    proptest! {
        /// parse(print(x)) == x for every command we can build.
        #[test]
        fn print_then_parse_is_identity(spec in arb_spec()) {
            let cmd = build(&spec);
            let line = cmd.to_string();
            // Local parts whose canonical form is longer than 64 octets are invalid.
            let parsed = parse(line.as_bytes());
            if let Spec::Mail(Some(m), ..) | Spec::Rcpt(Some(m), ..) = &spec
                && Mailbox::parse(&mailbox(m).to_string()).is_err()
            {
                prop_assert!(parsed.is_err());
                return Ok(());
            }
            prop_assert_eq!(parsed, Ok(cmd), "line {:?}", line);
        }

        /// Parsing is total: any bytes give Ok or Err, never a panic, and an accepted
        /// command re-prints to a line that parses to the same command.
        #[test]
        fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(cmd) = parse(&line) {
                let again = cmd.to_string();
                let reparsed = parse(again.as_bytes()).map(without_route);
                prop_assert_eq!(reparsed, Ok(without_route(cmd)));
            }
        }
    }
}

/// Found by the fuzz target `smtp_command` (fuzz/corpus/smtp_command/crash-4dc4...): raw
/// UTF-8 in ORCPT passed the 500-character limit as written but not as printed (`+HH` per
/// octet), so an accepted recipient became a RCPT line the next hop must refuse. The limit
/// now holds for the printed form, and whatever is accepted prints back to a line that parses.
#[test]
fn orcpt_limit_holds_for_the_printed_form() {
    let line = |n: usize| format!("RCPT TO:<a@b.example> ORCPT=utf-8;{}", "\u{e9}".repeat(n));
    // 83 x 'é' = 166 octets written, 498 characters printed: accepted, and it round-trips.
    let ok = line(83);
    let cmd = parse(ok.as_bytes()).unwrap();
    let printed = cmd.to_string();
    assert!(printed.ends_with(&"+C3+A9".repeat(83)), "{printed}");
    assert_eq!(parse(printed.as_bytes()).unwrap().to_string(), printed);
    // 84 x 'é' = 168 octets written (under 500) but 504 printed: refused.
    let too_long = line(84);
    assert!(
        matches!(parse(too_long.as_bytes()), Err(SyntaxError::InvalidParameterValue { .. })),
        "{:?}",
        parse(too_long.as_bytes())
    );
}

/// Issue 12 (injection): every control byte (NUL, CR, LF, TAB, ESC, ... and DEL) at every
/// position of every command that takes an argument is `500 5.5.2`, before anything
/// looks at the argument; an 8-bit byte that is not UTF-8 in an argument is `501 5.6.7`
/// (and in the verb, an unknown command). So no such byte can reach a header, a Drop
/// envelope line or a log field through a command.
#[test]
fn control_and_8bit_bytes_anywhere_in_a_command_are_refused() {
    let lines: &[&[u8]] = &[
        b"EHLO client.example",
        b"HELO [192.0.2.1]",
        b"MAIL FROM:<a@b.example> SIZE=10",
        b"RCPT TO:<\"x y\"@b.example> NOTIFY=NEVER",
        b"VRFY user",
        b"NOOP hello",
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
    ];
    let controls = (0u8..0x20).chain([0x7f]);
    for bad in controls {
        for line in lines {
            for at in 0..=line.len() {
                let mut l = line.to_vec();
                l.insert(at, bad);
                let got = parse(&l).map_err(|e| Reply::from(&e));
                let r = got.expect_err("a control byte was accepted");
                assert_eq!((r.code, status_of(&r).as_str()), (500, "5.5.2"), "{l:?}");
            }
        }
    }
    for line in lines {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        for at in verb_end + 1..=line.len() {
            for bad in [0x80u8, 0xc3, 0xff] {
                let mut l = line.to_vec();
                l.insert(at, bad);
                let r = parse(&l).map_err(|e| Reply::from(&e));
                let r = r.expect_err("invalid UTF-8 was accepted");
                assert_eq!((r.code, status_of(&r).as_str()), (501, "5.6.7"), "{l:?}");
            }
        }
        let mut l = line.to_vec();
        l.insert(1, 0xff);
        assert_eq!(parse(&l).map_err(|e| Reply::from(&e).code).err(), Some(500), "{l:?}");
    }
}
