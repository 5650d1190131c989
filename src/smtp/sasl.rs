//! smtp::sasl: the server side of the SASL mechanisms PLAIN and LOGIN, as SMTP AUTH carries
//! them (RFC 4954): base64 responses in, a 334 challenge or the claimed credentials out.
//!
//! WHAT: [`start`] begins an exchange for a [`Mechanism`] (with the optional initial
//! response of the AUTH line); [`Exchange::respond`] takes each following client line. Both
//! return a [`Step`]: another challenge (a `334` reply), the decoded [`Credentials`] (not
//! yet verified: that is the caller's, on another thread), or a [`SaslError`] whose reply
//! is `501`. A consuming state machine: an exchange in progress is a value, never a flag.
//!
//! TRUST: every line is the peer's. Decoding is bounded (a response line is at most
//! `MAX_COMMAND_LINE_BYTES`, each field at most [`MAX_SASL_FIELD_BYTES`]) and cannot panic.
//! The password bytes are wiped when dropped (`zeroize`), and `Credentials`' `Debug` never
//! shows them; nothing here logs.
//!
//! STANDARDS: RFC 4954 §4 (`*` cancels: 501; undecodable base64: 501; `=` is an empty
//! initial response), RFC 4616 (PLAIN: `[authzid] NUL authcid NUL passwd`, each 1..=255
//! octets of UTF-8 except the password, which we take as bytes),
//! draft-murchison-sasl-login (LOGIN: challenges `Username:` and `Password:`).
//! Layer 0: no I/O, no clock.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use super::reply::Reply;

/// Longest authcid, authzid or password, in octets (RFC 4616 §2: 255).
pub const MAX_SASL_FIELD_BYTES: usize = 255;

/// The mechanisms we offer, in the order the EHLO `AUTH` line lists them.
pub const OFFERED_MECHANISMS: &str = "PLAIN LOGIN";

/// LOGIN's first challenge, `Username:` in base64.
const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
/// LOGIN's second challenge, `Password:` in base64.
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// A SASL mechanism we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616 PLAIN.
    Plain,
    /// The LOGIN mechanism (two challenges).
    Login,
}

impl Mechanism {
    /// The mechanism named `name` (case-insensitive), if we implement it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// What the client claims; verified by the caller. The password is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authorization identity (PLAIN only; empty = the same as `authcid`).
    pub authzid: String,
    /// Authentication identity (the user name). Invariant: 1..=255 octets, no NUL.
    pub authcid: String,
    /// The password as sent. Invariant: at most 255 octets, no NUL.
    pub password: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Credentials {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why an exchange failed before any verification. The client is at fault in every case.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 §4).
    Aborted,
    /// A response was not valid base64.
    BadBase64,
    /// The decoded response breaks the mechanism's syntax (PLAIN without its two NULs,
    /// an empty or over-long field, a user name that is not UTF-8).
    Malformed,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaslError::Aborted => "authentication aborted by the client",
            SaslError::BadBase64 => "invalid base64 in an authentication response",
            SaslError::Malformed => "malformed authentication response",
        })
    }
}

impl std::error::Error for SaslError {}

impl From<&SaslError> for Reply {
    /// `*` gets `501 5.0.0`; undecodable or malformed responses `501 5.5.2`.
    fn from(e: &SaslError) -> Reply {
        match e {
            SaslError::Aborted => Reply::auth_aborted(),
            SaslError::BadBase64 | SaslError::Malformed => Reply::auth_bad_response(),
        }
    }
}

/// An exchange waiting for the client's next line.
#[derive(Clone, PartialEq, Eq)]
pub enum Exchange {
    /// PLAIN was sent without an initial response; `334 ` was sent.
    PlainResponse,
    /// LOGIN: `334 VXNlcm5hbWU6` was sent.
    LoginUsername,
    /// LOGIN: the user name arrived and `334 UGFzc3dvcmQ6` was sent.
    LoginPassword {
        /// The user name. Invariant: as in [`Credentials::authcid`].
        authcid: String,
    },
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exchange::PlainResponse => "PlainResponse",
            Exchange::LoginUsername => "LoginUsername",
            Exchange::LoginPassword { .. } => "LoginPassword",
        })
    }
}

/// The outcome of one step of an exchange.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Send this `334` reply and wait for the next line in this state.
    Challenge(Exchange, Reply),
    /// The exchange is complete; verify these.
    Done(Credentials),
    /// The exchange failed; answer with `Reply::from(&error)`.
    Failed(SaslError),
}

/// Begin an exchange. `initial` is the AUTH line's initial response (`=` = empty).
pub fn start(mechanism: Mechanism, initial: Option<&str>) -> Step {
    let initial = match initial.map(decode_initial) {
        None => None,
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(e)) => return Step::Failed(e),
    };
    match (mechanism, initial) {
        (Mechanism::Plain, None) => Step::Challenge(Exchange::PlainResponse, Reply::challenge("")),
        (Mechanism::Plain, Some(bytes)) => plain(&bytes),
        (Mechanism::Login, None) => {
            Step::Challenge(Exchange::LoginUsername, Reply::challenge(LOGIN_USERNAME))
        }
        (Mechanism::Login, Some(bytes)) => login_username(&bytes),
    }
}

impl Exchange {
    /// The client's next line (without CRLF).
    pub fn respond(self, line: &[u8]) -> Step {
        if line == b"*" {
            return Step::Failed(SaslError::Aborted);
        }
        let bytes = match decode(line) {
            Ok(b) => b,
            Err(e) => return Step::Failed(e),
        };
        match self {
            Exchange::PlainResponse => plain(&bytes),
            Exchange::LoginUsername => login_username(&bytes),
            Exchange::LoginPassword { authcid } => {
                if bytes.len() > MAX_SASL_FIELD_BYTES || bytes.contains(&0) {
                    return Step::Failed(SaslError::Malformed);
                }
                Step::Done(Credentials { authzid: String::new(), authcid, password: bytes })
            }
        }
    }
}

/// An initial response: `=` is empty, anything else base64.
fn decode_initial(text: &str) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    if text == "=" { Ok(Zeroizing::new(Vec::new())) } else { decode(text.as_bytes()) }
}

/// Strict RFC 4648 base64 (padding required); an empty line is an empty response.
fn decode(line: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    BASE64.decode(line).map(Zeroizing::new).map_err(|_| SaslError::BadBase64)
}

/// A user name: 1..=255 octets of UTF-8 without NUL.
fn identity(bytes: &[u8], may_be_empty: bool) -> Result<String, SaslError> {
    if (bytes.is_empty() && !may_be_empty)
        || bytes.len() > MAX_SASL_FIELD_BYTES
        || bytes.contains(&0)
    {
        return Err(SaslError::Malformed);
    }
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| SaslError::Malformed)
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`.
fn plain(bytes: &[u8]) -> Step {
    let mut parts = bytes.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Step::Failed(SaslError::Malformed);
    };
    if password.is_empty() || password.len() > MAX_SASL_FIELD_BYTES || password.contains(&0) {
        return Step::Failed(SaslError::Malformed);
    }
    match (identity(authzid, true), identity(authcid, false)) {
        (Ok(authzid), Ok(authcid)) => Step::Done(Credentials {
            authzid,
            authcid,
            password: Zeroizing::new(password.to_vec()),
        }),
        _ => Step::Failed(SaslError::Malformed),
    }
}

/// LOGIN's user name arrived: ask for the password.
fn login_username(bytes: &[u8]) -> Step {
    match identity(bytes, false) {
        Ok(authcid) => {
            Step::Challenge(Exchange::LoginPassword { authcid }, Reply::challenge(LOGIN_PASSWORD))
        }
        Err(e) => Step::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b64(bytes: &[u8]) -> String {
        BASE64.encode(bytes)
    }

    /// What a step looks like, for one-line table cases.
    fn show(step: &Step) -> String {
        match step {
            Step::Challenge(_, r) => r.to_string(),
            Step::Done(c) => {
                format!("done {}|{}|{}", c.authzid, c.authcid, String::from_utf8_lossy(&c.password))
            }
            Step::Failed(e) => Reply::from(e).to_string(),
        }
    }

    #[test]
    fn start_table() {
        let cases: &[(Mechanism, Option<&str>, &str)] = &[
            (Mechanism::Plain, None, "334"),
            (Mechanism::Plain, Some("AGFsaWNlAHNlY3JldA=="), "done |alice|secret"),
            (Mechanism::Plain, Some("Ym9iAGFsaWNlAHNlY3JldA=="), "done bob|alice|secret"),
            (Mechanism::Plain, Some("="), "501 5.5.2 Invalid authentication response"),
            (Mechanism::Plain, Some("AGFsaWNl"), "501 5.5.2 Invalid authentication response"),
            (Mechanism::Plain, Some("AABzZWNyZXQ="), "501 5.5.2 Invalid authentication response"),
            (Mechanism::Plain, Some("AGFsaWNlAA=="), "501 5.5.2 Invalid authentication response"),
            (Mechanism::Plain, Some("!!!!"), "501 5.5.2 Invalid authentication response"),
            (
                Mechanism::Plain,
                Some("AGFsaWNlAHNlY3JldA"),
                "501 5.5.2 Invalid authentication response",
            ),
            (Mechanism::Plain, Some("AP8AcHc="), "501 5.5.2 Invalid authentication response"),
            (Mechanism::Login, None, "334 VXNlcm5hbWU6"),
            (Mechanism::Login, Some("YWxpY2U="), "334 UGFzc3dvcmQ6"),
            (Mechanism::Login, Some("="), "501 5.5.2 Invalid authentication response"),
        ];
        for &(m, initial, want) in cases {
            assert_eq!(show(&start(m, initial)), want, "{m:?} {initial:?}");
        }
    }

    #[test]
    fn respond_table() {
        // (mechanism, lines after AUTH, result of the last line)
        let cases: &[(Mechanism, &[&str], &str)] = &[
            (Mechanism::Plain, &["AGFsaWNlAHNlY3JldA=="], "done |alice|secret"),
            (Mechanism::Plain, &["*"], "501 5.0.0 Authentication aborted"),
            (Mechanism::Plain, &[""], "501 5.5.2 Invalid authentication response"),
            (Mechanism::Plain, &["a b"], "501 5.5.2 Invalid authentication response"),
            (Mechanism::Login, &["YWxpY2U="], "334 UGFzc3dvcmQ6"),
            (Mechanism::Login, &["YWxpY2U=", "c2VjcmV0"], "done |alice|secret"),
            (Mechanism::Login, &["YWxpY2U=", ""], "done |alice|"),
            (Mechanism::Login, &["YWxpY2U=", "*"], "501 5.0.0 Authentication aborted"),
            (Mechanism::Login, &["*"], "501 5.0.0 Authentication aborted"),
            (Mechanism::Login, &[""], "501 5.5.2 Invalid authentication response"),
            (Mechanism::Login, &["@@@"], "501 5.5.2 Invalid authentication response"),
            (Mechanism::Login, &["/w=="], "501 5.5.2 Invalid authentication response"),
        ];
        for &(m, lines, want) in cases {
            let mut step = start(m, None);
            for line in lines {
                let Step::Challenge(ex, _) = step else { panic!("{m:?} {lines:?}: ended early") };
                step = ex.respond(line.as_bytes());
            }
            assert_eq!(show(&step), want, "{m:?} {lines:?}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let Step::Done(c) = start(Mechanism::Plain, Some("AGFsaWNlAHNlY3JldA==")) else {
            panic!("plain")
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("alice") && !shown.contains("secret"), "{shown}");
        let Step::Challenge(ex, _) = start(Mechanism::Login, Some("YWxpY2U=")) else {
            panic!("login")
        };
        assert_eq!(format!("{ex:?}"), "LoginPassword");
    }

    #[test]
    fn mechanism_names() {
        let cases = [
            ("PLAIN", Some(Mechanism::Plain)),
            ("plain", Some(Mechanism::Plain)),
            ("Login", Some(Mechanism::Login)),
            ("CRAM-MD5", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(Mechanism::from_name(name), want, "{name}");
        }
    }

    proptest! {
        /// PLAIN: decode(encode(x)) == x for every well-formed triple.
        #[test]
        fn plain_round_trip(
            authzid in "[a-z@.]{0,20}",
            authcid in "[a-zA-Z0-9@.é]{1,40}",
            password in proptest::collection::vec(1u8..=255, 1..100),
        ) {
            let mut msg = authzid.as_bytes().to_vec();
            msg.push(0);
            msg.extend_from_slice(authcid.as_bytes());
            msg.push(0);
            msg.extend_from_slice(&password);
            let Step::Done(c) = start(Mechanism::Plain, Some(&b64(&msg))) else {
                return Err(TestCaseError::fail("not done"));
            };
            prop_assert_eq!(c.authzid, authzid);
            prop_assert_eq!(c.authcid, authcid);
            prop_assert_eq!(&c.password[..], &password[..]);
        }

        /// LOGIN over two lines gives what was encoded.
        #[test]
        fn login_round_trip(
            user in "[a-zA-Z0-9@.]{1,40}",
            password in proptest::collection::vec(1u8..=255, 0..100),
        ) {
            let Step::Challenge(ex, _) = start(Mechanism::Login, None) else {
                return Err(TestCaseError::fail("no challenge"));
            };
            let Step::Challenge(ex, _) = ex.respond(b64(user.as_bytes()).as_bytes()) else {
                return Err(TestCaseError::fail("no second challenge"));
            };
            let Step::Done(c) = ex.respond(b64(&password).as_bytes()) else {
                return Err(TestCaseError::fail("not done"));
            };
            prop_assert_eq!(c.authcid, user);
            prop_assert_eq!(&c.password[..], &password[..]);
        }

        /// Any bytes as any response: never a panic, and a failure is always a 501.
        #[test]
        fn any_response_is_answered(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 1..4),
            login in any::<bool>(),
        ) {
            let m = if login { Mechanism::Login } else { Mechanism::Plain };
            let mut step = start(m, None);
            for line in &lines {
                step = match step {
                    Step::Challenge(ex, r) => {
                        prop_assert_eq!(r.code, 334);
                        ex.respond(line)
                    }
                    done => done,
                };
            }
            if let Step::Failed(e) = &step {
                prop_assert_eq!(Reply::from(e).code, 501);
            }
        }
    }
}
