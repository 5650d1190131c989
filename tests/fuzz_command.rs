//! Fuzz-style property test for `smtp::command::parse` (STYLE.md rule 20).
//!
//! Random bytes are mapped into the SMTP alphabet (verbs, parameter keywords, `<`, `>`,
//! `@`, `:`, `=`, quotes, backslashes, spaces, address-literal pieces, UTF-8, NUL, 8-bit
//! junk), in the spirit of smtp-proto's `fuzz/fuzz_targets/smtp_proto.rs`, so that the
//! generated lines get deep into the grammar instead of failing at the verb. For every
//! line: `parse` must not panic, every error must map to a well-formed 5xx reply, and every
//! accepted command must print to a line that parses back to the same command.
//!
//! Inputs that once broke the parser go into `CORPUS` and are checked on every run.

use mailroot::smtp::command::{Command, MAX_COMMAND_LINE_BYTES, SyntaxError, parse};
use mailroot::smtp::path::{ForwardPath, ReversePath};
use mailroot::smtp::reply::Reply;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// The alphabet: each input byte selects one token.
const TOKENS: &[&[u8]] = &[
    b"MAIL FROM:",
    b"mail from: ",
    b"RCPT TO:",
    b"rcpt to: ",
    b"EHLO ",
    b"HELO ",
    b"DATA",
    b"BDAT ",
    b"LAST",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"VRFY ",
    b"EXPN ",
    b"HELP",
    b"STARTTLS",
    b"AUTH ",
    b"PLAIN",
    b"SIZE=",
    b"BODY=",
    b"8BITMIME",
    b"BINARYMIME",
    b"7BIT",
    b"SMTPUTF8",
    b"RET=",
    b"FULL",
    b"HDRS",
    b"ENVID=",
    b"AUTH=",
    b"NOTIFY=",
    b"NEVER",
    b"SUCCESS",
    b"FAILURE",
    b"DELAY",
    b"ORCPT=",
    b"rfc822;",
    b"Postmaster",
    b"<",
    b">",
    b"<>",
    b"@",
    b":",
    b";",
    b",",
    b"=",
    b".",
    b"-",
    b"_",
    b"+",
    b"+2B",
    b"%",
    b"!",
    b"\"",
    b"\\",
    b" ",
    b"  ",
    b"[",
    b"]",
    b"IPv6:",
    b"::1",
    b"192.0.2.1",
    b"256",
    b"a",
    b"user",
    b"example.com",
    b"xn--bcher-kva",
    b"0",
    b"12345678901234567890",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "é".as_bytes(),
    "中文".as_bytes(),
    b"\x00",
    b"\t",
    b"\r",
    b"\n",
    b"\x7f",
    b"\xff",
    b"\xc3",
];

/// Lines that once caused trouble (or are designed to): checked on every run.
const CORPUS: &[&[u8]] = &[
    b"",
    b"<",
    b"MAIL FROM:<",
    b"MAIL FROM:<\"",
    b"MAIL FROM:<\"\\",
    b"MAIL FROM:<@",
    b"MAIL FROM:<@:",
    b"MAIL FROM:<a@[",
    b"MAIL FROM:<a@[IPv6:",
    b"MAIL FROM:<a@b> ENVID=+",
    b"MAIL FROM:<a@b> ENVID=+F",
    b"MAIL FROM:<a@b> ENVID=+\xc3\xa9",
    b"MAIL FROM:<a@b> SIZE=18446744073709551616",
    b"RCPT TO:<a@b> ORCPT=;",
    b"RCPT TO:<a@b> NOTIFY=,",
    b"RCPT TO:<Postmaster",
    b"RCPT TO:<\xc3\xa9@\xc3\xa9>",
    b"RCPT TO:<\"\xc3\xa9\\\xc3\xa9\"@b>",
    b"BDAT 99999999999999999999999",
    b"EHLO [",
    b"EHLO \xc3",
    b"\xff\xfe",
    b"MAIL\x00FROM:<a@b>",
];

/// The source route is not printed, so compare commands with the flag cleared.
fn without_route(cmd: Command<'_>) -> Command<'_> {
    match cmd {
        Command::Mail { from: ReversePath::Mailbox(mut m), params } => {
            m.had_source_route = false;
            Command::Mail { from: ReversePath::Mailbox(m), params }
        }
        Command::Rcpt { to: ForwardPath::Mailbox(mut m), params } => {
            m.had_source_route = false;
            Command::Rcpt { to: ForwardPath::Mailbox(m), params }
        }
        other => other,
    }
}

fn check_line(line: &[u8]) -> Result<(), TestCaseError> {
    match parse(line) {
        Ok(cmd) => {
            let printed = cmd.to_string();
            prop_assert!(printed.len() + 2 <= MAX_COMMAND_LINE_BYTES + 64, "{printed:?}");
            let again = parse(printed.as_bytes());
            prop_assert_eq!(
                again.map(without_route),
                Ok(without_route(cmd)),
                "input {:?} printed {:?}",
                String::from_utf8_lossy(line),
                printed
            );
        }
        Err(e) => check_error(&e)?,
    }
    Ok(())
}

fn check_error(e: &SyntaxError) -> Result<(), TestCaseError> {
    let r = Reply::from(e);
    prop_assert!(matches!(r.code, 500 | 501 | 555), "{e:?} -> {r:?}");
    prop_assert!(r.is_permanent());
    prop_assert!(!r.text.contains(['\r', '\n', '\0']), "{r:?}");
    let mut wire = Vec::new();
    r.write_to(&mut wire);
    prop_assert!(wire.ends_with(b"\r\n"));
    Ok(())
}

/// Pieces for grammar-shaped lines: a verb, a path, parameters.
const VERBS: &[&[u8]] =
    &[b"MAIL FROM:", b"MAIL FROM: ", b"mail from:", b"RCPT TO:", b"Rcpt To: ", b"EHLO ", b"VRFY "];
const ROUTES: &[&[u8]] = &[b"", b"", b"", b"@r.example:", b"@a,@b:", b"@a.:", b"@"];
const LOCAL: &[&[u8]] = &[
    b"a",
    b"user",
    b"x",
    b"Z",
    b".",
    b"%",
    b"!",
    b"+",
    b"=",
    b"\xc3\xa9",
    b"a",
    b"user",
    b"x",
    b"\"",
    b"\\",
    b" ",
    b"@",
    b"\\\"",
];
const DOMAIN: &[&[u8]] = &[
    b"example.com",
    b"mx1.example.org",
    b"a",
    b"\xc3\xa9cole.fr",
    b"[192.0.2.1]",
    b"[IPv6:2001:db8::1]",
    b"[x-y:z]",
    b".",
    b"-",
    b"_",
    b"[",
    b"]",
];
/// Whole parameters, mostly valid.
const PARAMS: &[&[u8]] = &[
    b"SIZE=100",
    b"size=0",
    b"BODY=8BITMIME",
    b"BODY=7bit",
    b"SMTPUTF8",
    b"RET=FULL",
    b"RET=HDRS",
    b"ENVID=a+2Bb",
    b"ENVID=QQ123",
    b"AUTH=<>",
    b"AUTH=e+3Dmc2@x",
    b"NOTIFY=NEVER",
    b"NOTIFY=SUCCESS,DELAY",
    b"NOTIFY=failure",
    b"ORCPT=rfc822;a@b",
    b"ORCPT=utf-8;a+2Bb@\xc3\xa9",
    b"XFOO=1",
    b"SIZE=",
    b"BODY",
    b"ENVID=+",
];

fn pick(table: &[&'static [u8]], i: u8) -> &'static [u8] {
    table.get(usize::from(i) % table.len()).copied().unwrap_or_default()
}

/// A line shaped like MAIL/RCPT/EHLO with random pieces and an optional mutation.
fn grammar_line() -> impl Strategy<Value = Vec<u8>> {
    let bytes = |n| vec(any::<u8>(), n);
    (
        (any::<u8>(), any::<u8>(), bytes(1..5), bytes(1..3)),
        bytes(0..4),
        proptest::option::weighted(0.3, (any::<u16>(), any::<u8>())),
    )
        .prop_map(|((verb, route, local, domain), params, mutation)| {
            let mut line = pick(VERBS, verb).to_vec();
            line.push(b'<');
            line.extend_from_slice(pick(ROUTES, route));
            local.iter().for_each(|&i| line.extend_from_slice(pick(LOCAL, i)));
            line.push(b'@');
            domain.iter().for_each(|&i| line.extend_from_slice(pick(DOMAIN, i)));
            line.push(b'>');
            for p in params {
                line.push(b' ');
                line.extend_from_slice(pick(PARAMS, p));
            }
            if let Some((pos, tok)) = mutation {
                let at = usize::from(pos) % (line.len() + 1);
                let tail = line.split_off(at);
                line.extend_from_slice(pick(TOKENS, tok));
                line.extend_from_slice(&tail);
            }
            line
        })
}

/// Token soup: every byte picks a token from the whole alphabet.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..64).prop_map(|picks| {
        let mut line = Vec::new();
        for p in picks {
            line.extend_from_slice(pick(TOKENS, p));
        }
        line
    })
}

fn smtp_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => grammar_line(), 1 => token_soup()]
}

/// `cases` runs; failures are not persisted to files (regressions go into `CORPUS`).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

#[test]
fn alphabet_reaches_accepting_paths() {
    // Guard against a mapping that only ever produces rejects: sample and count.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = smtp_line();
    let mut accepted = 0;
    let mut mail_or_rcpt = 0;
    for _ in 0..20_000 {
        let Ok(tree) = strategy.new_tree(&mut runner) else { continue };
        let line = tree.current();
        match parse(&line) {
            Ok(Command::Mail { .. } | Command::Rcpt { .. }) => mail_or_rcpt += 1,
            Ok(_) => accepted += 1,
            Err(_) => {}
        }
    }
    eprintln!("accepted {accepted} other + {mail_or_rcpt} MAIL/RCPT of 20000");
    assert!(accepted > 0 && mail_or_rcpt > 0);
}

#[test]
fn corpus() {
    for line in CORPUS {
        if let Err(e) = check_line(line) {
            panic!("{:?}: {e}", String::from_utf8_lossy(line));
        }
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    /// Lines from the SMTP alphabet never panic and round-trip when accepted.
    #[test]
    fn smtp_alphabet(line in smtp_line()) {
        check_line(&line)?;
    }

    /// A valid command prefix followed by arbitrary bytes.
    #[test]
    fn valid_prefix_then_junk(prefix in 0usize..4, junk in vec(any::<u8>(), 0..80)) {
        let heads: [&[u8]; 4] = [b"MAIL FROM:<a@b> ", b"RCPT TO:<", b"EHLO ", b"MAIL FROM:<\""];
        let mut line = heads.get(prefix).copied().unwrap_or_default().to_vec();
        line.extend_from_slice(&junk);
        check_line(&line)?;
    }

}

proptest! {
    #![proptest_config(config(2_000))]

    /// Raw random bytes (mostly rejected early, but must never panic).
    #[test]
    fn raw_bytes(line in vec(any::<u8>(), 0..MAX_COMMAND_LINE_BYTES + 16)) {
        check_line(&line)?;
    }
}
