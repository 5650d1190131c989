//! Tests of the session transcript: one entry per command with the right verb,
//! arguments, status and byte counts; DATA and AUTH as one entry each; no credential kept.

use std::sync::Arc;

use super::super::{AuthOutcome, DataOutcome, Handler, ServerConfig, ServerSession, Transaction};
use crate::smtp::command::{MailParams, RcptParams};
use crate::smtp::path::{ForwardPath, ReversePath};
use crate::smtp::reply::Reply;

/// Accepts everything; commits later; AUTH answer later.
struct Yes;

impl Handler for Yes {
    fn mail(&mut self, _: &ReversePath<'_>, _: &MailParams<'_>) -> Result<(), Reply> {
        Ok(())
    }
    fn rcpt(&mut self, _: &ForwardPath<'_>, _: &RcptParams<'_>) -> Result<(), Reply> {
        Ok(())
    }
    fn data_start(&mut self, _: &Transaction) -> Result<(), Reply> {
        Ok(())
    }
    fn data_chunk(&mut self, _: &[u8]) -> Result<(), Reply> {
        Ok(())
    }
    fn data_end(&mut self) -> DataOutcome {
        DataOutcome::Pending
    }
    fn data_abort(&mut self) {}
    fn auth_check(&mut self, _: &str, _: &[u8]) -> AuthOutcome {
        AuthOutcome::Pending
    }
}

/// (method, args, status, sc_bytes, cs_bytes, started, done)
type Row = (&'static str, String, u16, u64, Option<u64>, u64, u64);

fn session(cfg: ServerConfig) -> ServerSession {
    let mut s = ServerSession::new(Arc::new(cfg));
    s.enable_transcript();
    s
}

fn drain(s: &mut ServerSession, now: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    s.transcript().unwrap().drain(now, |e, args| {
        rows.push((
            e.method,
            String::from_utf8_lossy(args).into_owned(),
            e.status,
            e.sc_bytes,
            e.cs_bytes,
            e.started_ms,
            e.done_ms,
        ));
    });
    rows
}

#[test]
fn one_entry_per_command_with_bytes() {
    let mut s = session(ServerConfig::default());
    let (mut h, mut out) = (Yes, Vec::new());
    let input =
        b"EHLO client.example\r\nMAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<c@d.example>\r\n";
    assert_eq!(s.feed(input, &mut h, &mut out), input.len());
    let rows = drain(&mut s, 1000);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].0, "EHLO");
    assert_eq!(rows[0].1, "client.example");
    assert_eq!(rows[0].2, 250);
    assert_eq!(rows[0].4, Some(21));
    assert_eq!(
        rows[1],
        ("MAIL", "FROM:<a@b.example> SIZE=10".into(), 250, 14, Some(33), 1000, 1000)
    );
    assert_eq!(rows[2], ("RCPT", "TO:<c@d.example>".into(), 250, 14, Some(23), 1000, 1000));
    let total_sc: u64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(total_sc, out.len() as u64, "every reply byte belongs to one entry");

    // DATA: one entry from the line to the reply after the commit, content counted.
    out.clear();
    assert_eq!(s.feed(b"DATA\r\nHello\r\n.\r\n", &mut h, &mut out), 16);
    assert!(drain(&mut s, 1005).is_empty(), "DATA is not over before its commit");
    s.commit_done(Ok("0000000000000001"), &mut out);
    let rows = drain(&mut s, 1042);
    assert_eq!(rows.len(), 1);
    let (m, a, st, sc, cs, t0, t1) = rows[0].clone();
    assert_eq!((m, a.as_str(), st, cs, t0, t1), ("DATA", "", 250, Some(16), 1005, 1042));
    assert_eq!(sc, out.len() as u64, "354 and 250 both counted");

    // QUIT.
    out.clear();
    let _ = s.feed(b"QUIT\r\n", &mut h, &mut out);
    assert_eq!(
        drain(&mut s, 2000),
        [("QUIT", String::new(), 221, out.len() as u64, Some(6), 2000, 2000)]
    );
}

#[test]
fn auth_keeps_no_credential() {
    let cfg =
        ServerConfig { enable_auth: true, allow_plaintext_auth: true, ..ServerConfig::default() };
    let mut s = session(cfg);
    let (mut h, mut out) = (Yes, Vec::new());
    // PLAIN with an initial response ("\0alice\0secret").
    let _ = s.feed(b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", &mut h, &mut out);
    assert!(s.awaiting_auth());
    s.auth_done(true, &mut out);
    let rows = drain(&mut s, 7);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1], ("AUTH", "PLAIN".into(), 235, rows[1].3, None, 7, 7));

    // LOGIN with its two SASL lines: one entry, no lines of their own.
    let mut s = session(ServerConfig {
        enable_auth: true,
        allow_plaintext_auth: true,
        ..ServerConfig::default()
    });
    let _ = s.feed(b"EHLO c\r\nAUTH login\r\nYWxpY2U=\r\nc2VjcmV0\r\n", &mut h, &mut out);
    s.auth_done(false, &mut out);
    let rows = drain(&mut s, 9);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[1].0, rows[1].1.as_str(), rows[1].2, rows[1].4), ("AUTH", "LOGIN", 535, None));

    // An unknown mechanism's name and a line sent out of turn are not kept.
    let mut s = session(ServerConfig {
        enable_auth: true,
        allow_plaintext_auth: true,
        ..ServerConfig::default()
    });
    let _ = s.feed(b"EHLO c\r\nAUTH c2VjcmV0 x\r\nc2VjcmV0\r\n", &mut h, &mut out);
    let rows = drain(&mut s, 9);
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[1].0, rows[1].1.as_str(), rows[1].2), ("AUTH", "", 504));
    assert_eq!((rows[2].0, rows[2].1.as_str(), rows[2].2), ("", "", 500));
}

#[test]
fn odd_lines_bdat_and_disconnect() {
    let mut s = session(ServerConfig::default());
    let (mut h, mut out) = (Yes, Vec::new());
    // Over-long line: one entry, every byte counted.
    let mut long = b"NOOP ".to_vec();
    long.resize(5000, b'x');
    long.extend_from_slice(b"\r\n");
    let used = s.feed(&long[..3000], &mut h, &mut out);
    let used2 = s.feed(&long[used..], &mut h, &mut out);
    assert_eq!(used + used2, long.len());
    let rows = drain(&mut s, 1);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0, rows[0].2, rows[0].4), ("NOOP", 500, Some(5002)));
    // BDAT refused before MAIL: its chunk is counted in the entry.
    let _ = s.feed(b"HELO c\r\nBDAT 5\r\nabcde", &mut h, &mut out);
    let rows = drain(&mut s, 2);
    assert_eq!((rows[1].0, rows[1].1.as_str(), rows[1].2, rows[1].4), ("BDAT", "5", 503, Some(13)));
    // Client gone in the middle of DATA: the entry is logged as it stands.
    let _ = s.feed(b"MAIL FROM:<>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nabc", &mut h, &mut out);
    s.disconnect(&mut h);
    let rows = drain(&mut s, 3);
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[2].0, rows[2].2, rows[2].4), ("DATA", 354, Some(9)));
}

#[test]
fn off_by_default() {
    let mut s = ServerSession::new(Arc::new(ServerConfig::default()));
    let _ = s.feed(b"HELO c\r\n", &mut Yes, &mut Vec::new());
    assert!(s.transcript().is_none());
}

/// Refuses every password, answers every message at once (no pending states).
struct Now;

impl Handler for Now {
    fn mail(&mut self, _: &ReversePath<'_>, _: &MailParams<'_>) -> Result<(), Reply> {
        Ok(())
    }
    fn rcpt(&mut self, _: &ForwardPath<'_>, _: &RcptParams<'_>) -> Result<(), Reply> {
        Ok(())
    }
    fn data_start(&mut self, _: &Transaction) -> Result<(), Reply> {
        Ok(())
    }
    fn data_chunk(&mut self, _: &[u8]) -> Result<(), Reply> {
        Ok(())
    }
    fn data_end(&mut self) -> DataOutcome {
        DataOutcome::Done(Reply::queued("1"))
    }
    fn data_abort(&mut self) {}
}

/// base64("\0u\0s3cr3t"): a PLAIN response holding the password `s3cr3t`.
const SECRET: &str = "AHUAczNjcjN0";

proptest::proptest! {
    /// Whatever the client sends (whole lines in the SMTP alphabet, pipelined, split
    /// anywhere): every consumed byte and every reply byte belongs to exactly one entry,
    /// and no entry keeps a credential.
    #[test]
    fn every_byte_is_accounted_for_and_no_credential_is_kept(
        picks in proptest::collection::vec(0usize..16, 0..40),
        split in 1usize..64,
    ) {
        const LINES: &[&str] = &[
            "EHLO c.example\r\n", "HELO x\r\n", "MAIL FROM:<a@b.example>\r\n",
            "RCPT TO:<c@d.example>\r\n", "DATA\r\n", "hello\r\n", ".\r\n", "BDAT 4 LAST\r\n",
            "RSET\r\n", "NOOP x\r\n", "AUTH PLAIN AHUAczNjcjN0\r\n", "AUTH LOGIN\r\n",
            "AHUAczNjcjN0\r\n", "*\r\n", "x\0y\r\n", "QUIT\r\n",
        ];
        let cfg = ServerConfig {
            enable_auth: true,
            allow_plaintext_auth: true,
            max_errors: 0,
            max_auth_failures: 0,
            ..ServerConfig::default()
        };
        let mut s = session(cfg);
        let input: Vec<u8> = picks.iter().flat_map(|&i| LINES[i].bytes()).collect();
        let (mut out, mut used) = (Vec::new(), 0);
        // Feed as the caller does: the unconsumed tail first, then the next piece.
        let mut held: Vec<u8> = Vec::new();
        for piece in input.chunks(split) {
            held.extend_from_slice(piece);
            let n = s.feed(&held, &mut Now, &mut out);
            used += n;
            held.drain(..n);
        }
        s.disconnect(&mut Now);
        let (mut sc, mut cs, mut withheld) = (0u64, 0u64, false);
        s.transcript().unwrap().drain(0, |e, args| {
            sc += e.sc_bytes;
            match e.cs_bytes {
                Some(n) => cs += n,
                None => withheld = true,
            }
            let text = String::from_utf8_lossy(args);
            assert!(!text.contains(SECRET) && !text.contains("czNjcjN0"), "{e:?} {text}");
        });
        proptest::prop_assert_eq!(sc, out.len() as u64);
        if !withheld {
            proptest::prop_assert_eq!(cs, used as u64);
        } else {
            proptest::prop_assert!(cs <= used as u64);
        }
    }
}
