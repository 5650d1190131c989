//! Fuzz-style property test for `smtp::sasl` (STYLE.md rule 20), the AUTH response decoder.
//!
//! Random bytes are mapped into the SASL-over-SMTP alphabet (base64 letters, `=` padding,
//! `*`, whole valid base64 of PLAIN and LOGIN pieces with and without NULs, 8-bit junk),
//! so generated responses reach the mechanism parsers instead of failing at base64. For
//! every exchange: no panic, every challenge is a `334`, every failure maps to a `501`,
//! and completed credentials keep their invariants (user name 1..=255 octets without NUL,
//! password at most 255 octets without NUL).

use mailroot::smtp::reply::Reply;
use mailroot::smtp::sasl::{self, MAX_SASL_FIELD_BYTES, Mechanism, Step};
use proptest::collection::vec;
use proptest::prelude::*;

/// The alphabet: each input byte selects one token.
const TOKENS: &[&[u8]] = &[
    b"A",
    b"G",
    b"F",
    b"s",
    b"a",
    b"W",
    b"N",
    b"l",
    b"Q",
    b"+",
    b"/",
    b"=",
    b"==",
    b"*",
    b"AGFsaWNlAHNlY3JldA==", // \0alice\0secret
    b"YWxpY2U=",             // alice
    b"c2VjcmV0",             // secret
    b"AA==",                 // \0
    b"AAA=",                 // \0\0
    b"/w==",                 // \xff
    b"AGFsaWNl",             // \0alice
    b" ",
    b"\xff",
    b"\0",
    b"\r",
];

/// A response line built from the alphabet.
fn line() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24).prop_map(|picks| {
        picks.iter().flat_map(|&p| TOKENS[p as usize % TOKENS.len()]).copied().collect()
    })
}

/// An initial response as the AUTH line would carry it (`=`, base64, or junk).
fn initial() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some("=".to_owned())),
        4 => line().prop_map(|l| Some(String::from_utf8_lossy(&l).into_owned())),
    ]
}

/// Check one step; returns the exchange to continue with, if any.
fn check(step: Step) -> Result<Option<sasl::Exchange>, TestCaseError> {
    match step {
        Step::Challenge(ex, reply) => {
            prop_assert_eq!(reply.code, 334);
            Ok(Some(ex))
        }
        Step::Failed(e) => {
            let r = Reply::from(&e);
            prop_assert_eq!(r.code, 501, "{}", r);
            Ok(None)
        }
        Step::Done(c) => {
            prop_assert!(!c.authcid.is_empty() && c.authcid.len() <= MAX_SASL_FIELD_BYTES);
            prop_assert!(!c.authcid.contains('\0'));
            prop_assert!(c.password.len() <= MAX_SASL_FIELD_BYTES && !c.password.contains(&0));
            // The password never shows in Debug (the user names may; they are not secret):
            // the same credentials with another password print exactly the same. (A plain
            // "does not contain" check fails whenever the password also appears in a name
            // or in the field labels, e.g. authzid "secret" with password "secret".)
            let shown = format!("{c:?}");
            let other = sasl::Credentials {
                authzid: c.authzid.clone(),
                authcid: c.authcid.clone(),
                password: zeroize::Zeroizing::new(b"a different password".to_vec()),
            };
            prop_assert_eq!(&shown, &format!("{other:?}"), "Debug depends on the password");
            Ok(None)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, .. ProptestConfig::default() })]

    #[test]
    fn sasl_alphabet(login in any::<bool>(), first in initial(), lines in vec(line(), 0..4)) {
        let m = if login { Mechanism::Login } else { Mechanism::Plain };
        let mut ex = check(sasl::start(m, first.as_deref()))?;
        for l in &lines {
            let Some(e) = ex.take() else { break };
            ex = check(e.respond(l))?;
        }
    }

    #[test]
    fn raw_bytes(login in any::<bool>(), lines in vec(vec(any::<u8>(), 0..600), 1..4)) {
        let m = if login { Mechanism::Login } else { Mechanism::Plain };
        let mut ex = check(sasl::start(m, None))?;
        for l in &lines {
            let Some(e) = ex.take() else { break };
            ex = check(e.respond(l))?;
        }
    }
}

/// The input proptest found (2026-12-05): PLAIN `secret\0alice\0secret`, the password equal
/// to the authorization identity. Debug shows the names and not the password.
#[test]
fn password_equal_to_a_name_is_not_a_leak() {
    use base64::Engine as _;
    let first = base64::engine::general_purpose::STANDARD.encode(b"secret\0alice\0secret");
    let Step::Done(c) = sasl::start(Mechanism::Plain, Some(&first)) else {
        panic!("PLAIN with an initial response completes in one step");
    };
    assert_eq!((c.authzid.as_str(), c.authcid.as_str()), ("secret", "alice"));
    assert_eq!(c.password.as_slice(), b"secret");
    let shown = format!("{c:?}");
    assert!(shown.contains("\"alice\"") && shown.contains("<redacted>"), "{shown}");
    assert_eq!(shown.matches("secret").count(), 1, "only the authzid shows: {shown}");
}
