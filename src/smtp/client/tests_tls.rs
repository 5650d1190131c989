//! Unit tests of STARTTLS and AUTH in `smtp::client` (the conversations themselves are
//! `tests/client_transcripts/tls_*.txt`, `auth_*.txt` and `starttls_pipelined_junk.txt`):
//! the edges a transcript cannot show (queries, timeouts, `Debug`), and a hostile server
//! that never gets the credentials over plaintext.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const PLAIN_B64: &str = "AHJlbGF5AHMzY3JldA==";
const USER_B64: &str = "cmVsYXk=";
const PASS_B64: &str = "czNjcmV0";

fn cfg(tls: TlsPolicy) -> ClientConfig {
    ClientConfig {
        helo_name: "relay.example".into(),
        tls,
        tls_capable: true,
        auth: Some(ClientAuth { user: "relay".into(), password: "s3cret".into() }),
        ..ClientConfig::default()
    }
}

fn out(s: &mut ClientSession, now: Instant) -> String {
    let mut v = Vec::new();
    while s.poll_transmit(now, b"", &mut v) > 0 {}
    String::from_utf8(v).unwrap()
}

fn events(s: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session that got 220 to STARTTLS and waits for the handshake.
fn at_handshake(tls: TlsPolicy) -> (ClientSession, Instant) {
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(tls), t0);
    s.handle_input(t0, b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n").unwrap();
    assert_eq!(out(&mut s, t0), "EHLO relay.example\r\nSTARTTLS\r\n");
    s.handle_input(t0, b"220 go\r\n").unwrap();
    assert_eq!(events(&mut s), [Event::StartTls]);
    (s, t0)
}

#[test]
fn handshake_wait_reads_and_writes_nothing() {
    let (mut s, t0) = at_handshake(TlsPolicy::May);
    assert_eq!(s.stage(), Stage::TlsHandshake);
    assert!(!s.wants_read() && !s.wants_write() && !s.tls_active() && !s.is_closed());
    assert_eq!(s.poll_timeout(), Some(t0 + Timeouts::default().command));
    assert!(s.send(Job::default(), t0).is_err());
    s.tls_established(t0);
    assert!(s.tls_active() && s.wants_read());
    assert_eq!(out(&mut s, t0), "EHLO relay.example\r\n");
    // Only once: a second call (a driver bug) changes nothing.
    s.tls_established(t0);
    s.tls_failed("late");
    assert_eq!(out(&mut s, t0), "");
    assert!(events(&mut s).is_empty());
    assert_eq!(s.extensions(), &PeerExtensions::default(), "forgotten until the new EHLO");
}

#[test]
fn handshake_timeout_and_close() {
    let (mut s, t0) = at_handshake(TlsPolicy::Encrypt);
    s.handle_timeout(t0 + Duration::from_secs(300));
    assert_eq!(events(&mut s), [Event::TimedOut { stage: Stage::TlsHandshake }]);
    let (mut s, _) = at_handshake(TlsPolicy::Encrypt);
    assert_eq!(s.handle_close(), Err(ClientError::ConnectionClosed { stage: Stage::TlsHandshake }));
    // tls_failed outside the handshake is ignored.
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(TlsPolicy::May), t0);
    s.tls_failed("nothing to fail");
    assert!(!s.is_closed() && events(&mut s).is_empty());
}

#[test]
fn unexpected_codes_in_starttls_and_auth() {
    use Misbehaviour::UnexpectedCode;
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(TlsPolicy::May), t0);
    s.handle_input(t0, b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n").unwrap();
    let err = s.handle_input(t0, b"250 ok\r\n");
    assert_eq!(
        err,
        Err(ClientError::PeerMisbehaved { stage: Stage::StartTls, why: UnexpectedCode(250) })
    );
    // (AUTH reply after TLS, expected error)
    let cases: &[(&str, &[u8], u16)] = &[
        ("250-mx\r\n250 AUTH PLAIN\r\n", b"334 \r\n", 334),
        ("250-mx\r\n250 AUTH LOGIN\r\n", b"235 ok\r\n", 235),
        ("250-mx\r\n250 AUTH LOGIN\r\n", b"334 a\r\n250 ok\r\n", 250),
    ];
    for (ehlo, replies, code) in cases {
        let (mut s, t0) = at_handshake(TlsPolicy::May);
        s.tls_established(t0);
        s.handle_input(t0, ehlo.as_bytes()).unwrap();
        let _ = out(&mut s, t0);
        let err = s.handle_input(t0, replies);
        assert_eq!(
            err,
            Err(ClientError::PeerMisbehaved { stage: Stage::Auth, why: UnexpectedCode(*code) }),
            "{ehlo:?}"
        );
        assert!(s.is_closed());
    }
}

#[test]
fn a_421_closes_without_quit() {
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(TlsPolicy::Encrypt), t0);
    s.handle_input(t0, b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n421 4.3.2 bye\r\n").unwrap();
    let ev = events(&mut s);
    assert!(matches!(
        &ev[..],
        [Event::SecurityFailed(SecurityFailure::TlsRefused { .. }), Event::Closed]
    ));
    assert_eq!(out(&mut s, t0), "");
    // May: a 421 to STARTTLS is a plain close.
    let mut s = ClientSession::new(cfg(TlsPolicy::May), t0);
    s.handle_input(t0, b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n421 4.3.2 bye\r\n").unwrap();
    assert_eq!(events(&mut s), [Event::Closed]);
    // AUTH answered 421.
    let (mut s, t0) = at_handshake(TlsPolicy::May);
    s.tls_established(t0);
    s.handle_input(t0, b"250-mx\r\n250 AUTH PLAIN\r\n421 4.3.2 bye\r\n").unwrap();
    let ev = events(&mut s);
    assert!(matches!(
        &ev[..],
        [Event::SecurityFailed(SecurityFailure::AuthFailed { .. }), Event::Closed]
    ));
}

#[test]
fn debug_never_shows_credentials() {
    let (mut s, t0) = at_handshake(TlsPolicy::May);
    s.tls_established(t0);
    let _ = out(&mut s, t0);
    s.handle_input(t0, b"250-mx\r\n250 AUTH PLAIN\r\n").unwrap();
    assert!(s.wants_write(), "the AUTH line is queued");
    let text = format!("{s:?}");
    assert!(text.contains("<redacted>") && text.contains("cmds_bytes"), "{text}");
    for secret in ["s3cret", PLAIN_B64, PASS_B64, "65, 85, 84, 72"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(out(&mut s, t0), format!("AUTH PLAIN {PLAIN_B64}\r\n"));
}

/// Bytes in the SMTP reply alphabet, with the STARTTLS/AUTH replies.
fn server_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"220 mx\r\n".to_vec()),
        Just(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n".to_vec()),
        Just(b"250-mx\r\n250 AUTH LOGIN\r\n".to_vec()),
        Just(b"334 VXNlcm5hbWU6\r\n".to_vec()),
        Just(b"235 2.7.0 ok\r\n".to_vec()),
        Just(b"454 4.7.0 no\r\n".to_vec()),
        Just(b"535 5.7.8 no\r\n".to_vec()),
        Just(b"250 ok\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

proptest! {
    /// Whatever a server sends, nothing panics, and no credential is ever written while
    /// TLS is not active.
    #[test]
    fn credentials_only_over_tls(
        input in server_bytes(),
        cuts in proptest::collection::vec(1usize..30, 0..8),
        policy in prop_oneof![Just(TlsPolicy::May), Just(TlsPolicy::Encrypt)],
        handshake_ok in any::<bool>(),
        capable in any::<bool>(),
    ) {
        let t0 = super::test_epoch();
        let mut s = ClientSession::new(ClientConfig { tls_capable: capable, ..cfg(policy) }, t0);
        let mut rest = &input[..];
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            let r = s.handle_input(t0, &rest[..n]);
            prop_assert!(r.is_ok() || s.is_closed());
            rest = &rest[n..];
            while let Some(ev) = s.poll_event() {
                match ev {
                    Event::StartTls if handshake_ok => s.tls_established(t0),
                    Event::StartTls => s.tls_failed("no"),
                    Event::Ready => s.quit(t0),
                    _ => {}
                }
            }
            let plaintext = !s.tls_active();
            let wire = out(&mut s, t0);
            if plaintext {
                for secret in [PLAIN_B64, USER_B64, PASS_B64] {
                    prop_assert!(!wire.contains(secret), "{wire:?}");
                }
            }
        }
        let _ = s.handle_close();
        prop_assert!(s.is_closed());
    }
}
