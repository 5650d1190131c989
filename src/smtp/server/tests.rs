//! Unit tests of `smtp::server`: behaviour outside `feed` (timeouts, shutdown, disconnect, commit bookkeeping, the STARTTLS state). The
//! protocol itself is tested by the transcripts in `tests/transcripts/`.
use super::*;

/// Counts calls; accepts everything; commits later.
#[derive(Default)]
struct Count {
    starts: usize,
    aborts: usize,
    ends: usize,
    bytes: Vec<u8>,
}

impl Handler for Count {
    fn mail(&mut self, _: &ReversePath<'_>, _: &MailParams<'_>) -> Result<(), Reply> {
        Ok(())
    }
    fn rcpt(&mut self, _: &ForwardPath<'_>, _: &RcptParams<'_>) -> Result<(), Reply> {
        Ok(())
    }
    fn data_start(&mut self, _: &Transaction) -> Result<(), Reply> {
        self.starts += 1;
        Ok(())
    }
    fn data_chunk(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
    fn data_end(&mut self) -> DataOutcome {
        self.ends += 1;
        DataOutcome::Pending
    }
    fn data_abort(&mut self) {
        self.aborts += 1;
    }
}

const TX: &[u8] = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n";

fn session() -> (ServerSession, Count, Vec<u8>) {
    (ServerSession::new(Arc::new(ServerConfig::default())), Count::default(), Vec::new())
}

fn text(out: &[u8]) -> &str {
    std::str::from_utf8(out).unwrap()
}

#[test]
fn predicates_follow_the_state() {
    let (mut s, mut h, mut out) = session();
    assert!(s.wants_read() && !s.in_data() && !s.awaiting_commit() && !s.is_closed());
    assert_eq!(s.feed(TX, &mut h, &mut out), TX.len());
    assert_eq!(s.feed(b"DATA\r\nabc", &mut h, &mut out), 9);
    assert!(s.in_data());
    assert_eq!(s.feed(b"\r\n.\r\nNOOP\r\n", &mut h, &mut out), 5);
    assert!(s.awaiting_commit() && !s.wants_read() && !s.in_data());
    assert_eq!(s.feed(b"NOOP\r\n", &mut h, &mut out), 0);
    s.commit_done(Ok("0000000000000007"), &mut out);
    assert!(text(&out).ends_with(
        "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 0000000000000007\r\n"
    ));
    assert_eq!(h.bytes, b"abc\r\n");
    // commit_done without a pending commit is ignored.
    let before = out.len();
    s.commit_done(Ok("x"), &mut out);
    assert_eq!(out.len(), before);
    assert_eq!(s.feed(b"BDAT 2\r\nx", &mut h, &mut out), 9);
    assert!(s.in_data());
}

#[test]
fn timeout_mid_data_aborts_on_disconnect() {
    let (mut s, mut h, mut out) = session();
    let _ = s.feed(TX, &mut h, &mut out);
    let _ = s.feed(b"DATA\r\npartial", &mut h, &mut out);
    out.clear();
    s.shutdown(&mut out); // not while content is open
    assert!(out.is_empty() && !s.is_closed());
    s.timeout(&mut out);
    assert_eq!(text(&out), "421 4.4.2 Timeout, closing connection\r\n");
    assert!(s.is_closed());
    s.timeout(&mut out); // once only
    assert_eq!(out.len(), 39);
    assert_eq!(h.aborts, 0);
    s.disconnect(&mut h);
    assert_eq!((h.starts, h.aborts, h.ends), (1, 1, 0));
    s.disconnect(&mut h);
    assert_eq!(h.aborts, 1);
}

#[test]
fn shutdown_between_messages() {
    let (mut s, mut h, mut out) = session();
    let _ = s.feed(TX, &mut h, &mut out);
    out.clear();
    s.shutdown(&mut out);
    assert_eq!(text(&out), "421 4.3.2 Service shutting down, try again later\r\n");
    assert!(s.is_closed());
    assert_eq!(s.feed(b"NOOP\r\n", &mut h, &mut out), 0);
    s.disconnect(&mut h);
    assert_eq!(h.aborts, 0);
}

#[test]
fn partial_line_is_left_for_the_caller() {
    let (mut s, mut h, mut out) = session();
    assert_eq!(s.feed(b"NOOP\r\nNO", &mut h, &mut out), 6);
    assert_eq!(s.feed(b"NOOP\r", &mut h, &mut out), 0);
    let long = vec![b'x'; MAX_COMMAND_LINE_BYTES - 1];
    assert_eq!(s.feed(&long, &mut h, &mut out), 0);
    let longer = vec![b'x'; MAX_COMMAND_LINE_BYTES];
    assert_eq!(s.feed(&longer, &mut h, &mut out), MAX_COMMAND_LINE_BYTES);
    assert_eq!(s.feed(b"\r\n", &mut h, &mut out), 2);
    assert!(text(&out).ends_with("500 5.5.2 Line too long\r\n"));
}

/// AUTH is offered over TLS without `allow_plaintext_auth` (the STARTTLS work sets `tls`;
/// the transcripts have no TLS, so this is checked here).
#[test]
fn auth_offered_over_tls_only() {
    let cfg = ServerConfig { enable_auth: true, ..ServerConfig::default() };
    let mut s = ServerSession::new(Arc::new(cfg));
    let (mut h, mut out) = (Count::default(), Vec::new());
    let _ = s.feed(b"EHLO c\r\nAUTH LOGIN\r\n", &mut h, &mut out);
    assert!(!text(&out).contains("AUTH PLAIN LOGIN"), "{}", text(&out));
    assert!(
        text(&out)
            .ends_with("538 5.7.11 Encryption required for requested authentication mechanism\r\n")
    );
    assert!(!s.tls_active());
    s.tls_established(TlsInfo { version: "TLSv1.3".into(), cipher: "X".into() });
    out.clear();
    let _ = s.feed(b"EHLO c\r\nAUTH LOGIN\r\n", &mut h, &mut out);
    assert!(text(&out).contains("250-AUTH PLAIN LOGIN\r\n"), "{}", text(&out));
    assert!(text(&out).ends_with("334 VXNlcm5hbWU6\r\n"));
    // The Count handler refuses everyone (the default auth_check).
    let _ = s.feed(b"YWxpY2U=\r\nc2VjcmV0\r\n", &mut h, &mut out);
    assert!(text(&out).ends_with("535 5.7.8 Authentication credentials invalid\r\n"));
    assert_eq!(s.authenticated(), None);
}

/// `auth_done` without a pending check is ignored; a timeout while pending wins.
#[test]
fn auth_done_only_when_pending() {
    let mut s = ServerSession::new(Arc::new(ServerConfig::default()));
    let mut out = Vec::new();
    s.auth_done(true, &mut out);
    assert!(out.is_empty() && s.authenticated().is_none());
}

#[test]
fn starttls_state_consumes_nothing_and_times_out_silently() {
    let cfg = ServerConfig { starttls: true, ..ServerConfig::default() };
    let mut s = ServerSession::new(Arc::new(cfg));
    let (mut h, mut out) = (Count::default(), Vec::new());
    assert!(!s.tls_requested() && !s.tls_active() && s.tls_info().is_none());
    assert_eq!(s.feed(b"EHLO c\r\nSTARTTLS\r\nRSET\r\n", &mut h, &mut out), 18);
    assert!(text(&out).ends_with("250 HELP\r\n220 2.0.0 Ready to start TLS\r\n"));
    assert!(s.tls_requested() && !s.wants_read());
    assert_eq!(s.feed(b"RSET\r\n", &mut h, &mut out), 0);
    out.clear();
    s.timeout(&mut out);
    assert!(out.is_empty() && s.is_closed(), "no plaintext 421 inside a TLS handshake");
    // A closed session ignores a late handshake.
    s.tls_established(TlsInfo { version: "TLSv1.3".into(), cipher: "X".into() });
    assert!(!s.tls_active());
}

#[test]
fn tls_established_returns_to_the_greeting_state() {
    let cfg = ServerConfig { starttls: true, ..ServerConfig::default() };
    let mut s = ServerSession::new(Arc::new(cfg));
    let (mut h, mut out) = (Count::default(), Vec::new());
    assert_eq!(s.feed(b"HELO c\r\nSTARTTLS\r\n", &mut h, &mut out), 18);
    let info = TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_128_GCM_SHA256".into() };
    s.tls_established(info.clone());
    assert!(s.tls_active() && !s.tls_requested() && s.wants_read());
    assert_eq!(s.tls_info(), Some(&info));
    out.clear();
    let _ = s.feed(b"MAIL FROM:<a@b.example>\r\n", &mut h, &mut out);
    assert_eq!(text(&out), "503 5.5.1 Send HELO/EHLO first\r\n", "HELO must come again");
}
