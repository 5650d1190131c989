//! Transcript tests: `tests/transcripts/*.txt` replayed against the pure `ServerSession`
//! with a fake `Handler` that records everything.
//!
//! # Transcript format (also in `tests/transcripts/README.md`)
//!
//! One item per line; blank lines are ignored.
//!
//! - `# text`            comment.
//! - `C: text`           the client sends `text` followed by CRLF.
//! - `C+ text`           the client sends `text` with NO line ending appended (BDAT chunks,
//!   partial lines, bare LF tests). `C+` with nothing after it sends nothing.
//! - `S: text`           the server must reply exactly this line (CRLF is implied).
//! - `M: text`           one line of message content (CRLF implied; `M+ text` without CRLF).
//!   Consecutive `M:`/`M+` lines form one block; block k must equal the k-th message the
//!   handler received in full (`data_end` called).
//! - `T: VERSION CIPHER`  the TLS handshake completes here (after STARTTLS got its 220):
//!   the driver checks `tls_requested()`, DISCARDS every plaintext byte it still holds
//!   (what a client pipelined after STARTTLS), and calls `tls_established`; `C:` lines
//!   after it are the client's input over TLS.
//! - `! key value`       directive, applies to the whole transcript (see below).
//! - `= key value`       assertion on the final state (see below).
//!
//! Escapes in `C:`, `C+`, `S:`, `M:`, `M+` text: `\r`, `\n`, `\t`, `\0`, `\\`, `\xHH`
//! (one byte), and `\{N*TEXT}` = TEXT repeated N times (TEXT may not contain `}`).
//!
//! Config directives: `! hostname NAME`, `! max_message_size_bytes N`,
//! `! max_recipients N`, `! max_messages_per_connection N`, `! max_errors N`,
//! `! bare_line_ending normalize|reject`, `! chunking on|off`, `! smtputf8 on|off`,
//! `! starttls on|off`, `! require_tls on|off`, `! implicit_tls VERSION CIPHER` (TLS is
//! established before the greeting, as on an RFC 8314 listener).
//! Handler directives (CODE picks a canned reply: 451 local_error, 452
//! insufficient_storage, 550 mailbox_unavailable, 552 message_too_big, 554 relay_denied):
//! `! mail-reply CODE` (refuse every MAIL), `! rcpt-reject ADDR CODE` (refuse that
//! recipient; ADDR as printed, case-insensitive), `! data-start-reply CODE`,
//! `! chunk-reply CODE` (refuse content bytes), `! commit ok` (default: `data_end` is
//! `Pending`, the driver calls `commit_done(Ok(id))` with ids `0000000000000001`, ...),
//! `! commit fail` (`commit_done(Err(451 4.3.0))`), `! commit sync` (`data_end` returns
//! `Done(250 queued)` at once).
//!
//! AUTH directives: `! auth on` (users exist: `enable_auth`), `! plaintext_auth on`
//! (`allow_plaintext_auth`), `! max_auth_failures N`, `! auth-user NAME PASSWORD` (the
//! fake accepts that pair; repeatable), `! auth-check pending|sync` (default `pending`:
//! `auth_check` returns `Pending`, the driver checks the session consumes nothing and
//! calls `auth_done`; `sync`: `Done(ok)` at once).
//!
//! Assertions: `= messages N` (complete messages), `= aborted N` (`data_abort` calls),
//! `= authenticated NAME|none` (`ServerSession::authenticated` at the end),
//! `= smuggling N` (`refused_smuggling` calls),
//! `= closed yes|no`, `= tls yes|no`, `= tx TEXT` (the envelope given to the last `data_start`, rendered
//! as `render_tx` below).
//!
//! Every transcript is replayed with the input fed whole, one byte at a time, split in two
//! at every byte, and at pseudo-random points; all must give identical replies and
//! handler records ("split at any byte gives the same replies").

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use mailroot::smtp::command::{MailParams, RcptParams};
use mailroot::smtp::data::BareLineEnding;
use mailroot::smtp::path::{ForwardPath, ReversePath};
use mailroot::smtp::reply::Reply;
use mailroot::smtp::server::{
    AuthOutcome, DataOutcome, Handler, ServerConfig, ServerSession, TlsInfo, Transaction,
};

mod common_transcript;
use common_transcript::{transcript_files, unescape};

/// How the fake handler finishes a message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Commit {
    Ok,
    Fail,
    Sync,
}

/// Handler behaviour from `!` directives.
#[derive(Clone, Debug)]
struct Behaviour {
    mail_reply: Option<u16>,
    rcpt_reject: Vec<(String, u16)>,
    data_start_reply: Option<u16>,
    chunk_reply: Option<u16>,
    commit: Commit,
    /// (user, password) pairs the fake accepts.
    auth_users: Vec<(String, String)>,
    /// `auth_check` answers at once instead of `Pending`.
    auth_sync: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            mail_reply: None,
            rcpt_reject: Vec::new(),
            data_start_reply: None,
            chunk_reply: None,
            commit: Commit::Ok,
            auth_users: Vec::new(),
            auth_sync: false,
        }
    }
}

fn canned(code: u16) -> Reply {
    match code {
        451 => Reply::local_error(),
        452 => Reply::insufficient_storage(),
        550 => Reply::mailbox_unavailable(),
        552 => Reply::message_too_big(),
        554 => Reply::relay_denied(),
        _ => panic!("no canned reply for {code}"),
    }
}

/// Records everything and checks the `Handler` call-order contract.
#[derive(Debug, Default, PartialEq)]
struct Fake {
    behaviour_commit_sync: bool,
    mail_reply: Option<u16>,
    rcpt_reject: Vec<(String, u16)>,
    data_start_reply: Option<u16>,
    chunk_reply: Option<u16>,
    /// Content of the message being received, if content is open.
    open: Option<Vec<u8>>,
    /// Complete messages (data_end called).
    messages: Vec<Vec<u8>>,
    aborted: usize,
    /// `refused_smuggling` calls.
    smuggling: usize,
    last_tx: Option<String>,
    calls: Vec<String>,
    auth_users: Vec<(String, String)>,
    auth_sync: bool,
    /// The verdict of a pending `auth_check`, for the driver's `auth_done`.
    auth_pending: Option<bool>,
}

impl Fake {
    fn new(b: &Behaviour) -> Fake {
        Fake {
            behaviour_commit_sync: b.commit == Commit::Sync,
            mail_reply: b.mail_reply,
            rcpt_reject: b.rcpt_reject.clone(),
            data_start_reply: b.data_start_reply,
            chunk_reply: b.chunk_reply,
            auth_users: b.auth_users.clone(),
            auth_sync: b.auth_sync,
            ..Fake::default()
        }
    }
}

fn render_tx(tx: &Transaction) -> String {
    let mut s = format!("from=<{}> to=", tx.reverse_path);
    for (i, r) in tx.recipients.iter().enumerate() {
        let _ = write!(s, "{}<{}>", if i > 0 { "," } else { "" }, r.forward_path);
        if let Some(n) = r.notify {
            let _ = write!(s, ";notify={n}");
        }
        if let Some(o) = &r.orcpt {
            let _ = write!(s, ";orcpt={o}");
        }
    }
    if let Some(b) = tx.body {
        let _ = write!(s, " body={b}");
    }
    if tx.smtputf8 {
        s.push_str(" smtputf8");
    }
    if let Some(r) = tx.ret {
        let _ = write!(s, " ret={r}");
    }
    if let Some(e) = &tx.envid {
        let _ = write!(s, " envid={e}");
    }
    if let Some(z) = tx.declared_size {
        let _ = write!(s, " size={z}");
    }
    let _ = write!(s, " helo={} {}", tx.helo, if tx.esmtp { "esmtp" } else { "smtp" });
    if let Some(a) = &tx.authenticated {
        let _ = write!(s, " auth={a}");
    }
    if let Some(t) = &tx.tls {
        let _ = write!(s, " tls={}:{}", t.version, t.cipher);
    }
    s
}

impl Handler for Fake {
    fn mail(&mut self, from: &ReversePath<'_>, _params: &MailParams<'_>) -> Result<(), Reply> {
        assert!(self.open.is_none(), "MAIL while content open");
        self.calls.push(format!("mail {from}"));
        self.mail_reply.map_or(Ok(()), |c| Err(canned(c)))
    }

    fn rcpt(&mut self, to: &ForwardPath<'_>, _params: &RcptParams<'_>) -> Result<(), Reply> {
        assert!(self.open.is_none(), "RCPT while content open");
        let printed = to.mailbox().map(ToString::to_string).unwrap_or_else(|| "Postmaster".into());
        self.calls.push(format!("rcpt {printed}"));
        match self.rcpt_reject.iter().find(|(a, _)| a.eq_ignore_ascii_case(&printed)) {
            Some((_, code)) => Err(canned(*code)),
            None => Ok(()),
        }
    }

    fn data_start(&mut self, tx: &Transaction) -> Result<(), Reply> {
        assert!(self.open.is_none(), "data_start while content open");
        assert!(!tx.recipients.is_empty());
        self.calls.push("data_start".into());
        self.last_tx = Some(render_tx(tx));
        if let Some(c) = self.data_start_reply {
            return Err(canned(c));
        }
        self.open = Some(Vec::new());
        Ok(())
    }

    fn data_chunk(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        let open = self.open.as_mut().expect("data_chunk without data_start");
        assert!(!bytes.is_empty(), "empty data_chunk");
        open.extend_from_slice(bytes);
        self.chunk_reply.map_or(Ok(()), |c| Err(canned(c)))
    }

    fn data_end(&mut self) -> DataOutcome {
        let m = self.open.take().expect("data_end without data_start");
        self.calls.push(format!("data_end {}", m.len()));
        self.messages.push(m);
        if self.behaviour_commit_sync {
            DataOutcome::Done(Reply::queued(&format!("{:016X}", self.messages.len())))
        } else {
            DataOutcome::Pending
        }
    }

    fn refused_smuggling(&mut self) {
        self.calls.push("refused_smuggling".into());
        self.smuggling += 1;
    }

    fn auth_check(&mut self, authcid: &str, password: &[u8]) -> AuthOutcome {
        assert!(self.open.is_none(), "AUTH while content open");
        assert!(self.auth_pending.is_none(), "auth_check while one is pending");
        self.calls.push(format!("auth_check {authcid}"));
        let ok = self.auth_users.iter().any(|(u, p)| u == authcid && p.as_bytes() == password);
        if self.auth_sync {
            AuthOutcome::Done(ok)
        } else {
            self.auth_pending = Some(ok);
            AuthOutcome::Pending
        }
    }

    fn data_abort(&mut self) {
        assert!(self.open.take().is_some(), "data_abort without open content");
        self.calls.push("data_abort".into());
        self.aborted += 1;
    }
}

/// One stretch of client input, and the TLS handshake that ends it (if any).
#[derive(Clone, Debug)]
struct Phase<'a> {
    /// The input, in the pieces the "socket" delivers it.
    pieces: Vec<&'a [u8]>,
    /// `Some`: TLS is established after this input (`T:` line).
    then_tls: Option<TlsInfo>,
}

/// Feed the phases the way `receive` and `net` will: keep unconsumed bytes, re-feed after
/// each commit; at a handshake, throw away every byte still held (SECURITY, RFC 3207).
fn drive(
    cfg: &Arc<ServerConfig>,
    b: &Behaviour,
    implicit: &Option<TlsInfo>,
    phases: &[Phase<'_>],
) -> (Vec<u8>, Fake, bool) {
    let mut s = ServerSession::new(Arc::clone(cfg));
    let mut h = Fake::new(b);
    let mut out = Vec::new();
    let mut commits = 0u64;
    if let Some(info) = implicit {
        s.tls_established(info.clone());
    }
    s.greet(&mut out);
    'phases: for phase in phases {
        let mut buf: Vec<u8> = Vec::new();
        for p in &phase.pieces {
            buf.extend_from_slice(p);
            loop {
                let n = s.feed(&buf, &mut h, &mut out);
                assert!(n <= buf.len());
                buf.drain(..n);
                assert!(
                    s.is_closed()
                        || s.awaiting_commit()
                        || s.awaiting_auth()
                        || s.tls_requested()
                        || buf.len() < 2100,
                    "session left {} bytes unconsumed",
                    buf.len()
                );
                assert!(!s.tls_requested() || !s.wants_read(), "wants input before TLS");
                if s.awaiting_commit() {
                    assert_eq!(s.feed(b"NOOP\r\n", &mut h, &mut out), 0, "consumed while pending");
                    commits += 1;
                    let id = format!("{commits:016X}");
                    let result = match b.commit {
                        Commit::Fail => Err(Reply::local_error()),
                        Commit::Ok | Commit::Sync => Ok(id.as_str()),
                    };
                    s.commit_done(result, &mut out);
                    continue;
                }
                if s.awaiting_auth() {
                    assert!(!s.wants_read(), "wants input while AUTH is pending");
                    assert_eq!(
                        s.feed(b"NOOP\r\n", &mut h, &mut out),
                        0,
                        "consumed while AUTH pending"
                    );
                    let ok = h.auth_pending.take().expect("awaiting_auth without a pending check");
                    s.auth_done(ok, &mut out);
                    continue;
                }
                break;
            }
            if s.is_closed() {
                break 'phases;
            }
        }
        if let Some(info) = &phase.then_tls {
            assert!(s.tls_requested(), "T: line but the session did not ask for TLS");
            assert_eq!(s.feed(b"NOOP\r\n", &mut h, &mut out), 0, "consumed before TLS");
            // SECURITY: what the client pipelined after STARTTLS is discarded, never fed.
            buf.clear();
            s.tls_established(info.clone());
            assert!(s.tls_active() && !s.tls_requested());
        }
    }
    let closed = s.is_closed();
    h.calls.push(format!("authenticated {}", s.authenticated().unwrap_or("none")));
    s.disconnect(&mut h);
    assert!(h.open.is_none(), "content left open after disconnect");
    (out, h, closed)
}

/// A parsed transcript.
#[derive(Default)]
struct Transcript {
    cfg: ServerConfig,
    behaviour: Behaviour,
    /// Client input per phase, each followed by the TLS info of its `T:` line (the last
    /// phase has none).
    phases: Vec<(Vec<u8>, Option<TlsInfo>)>,
    /// `! implicit_tls`: TLS established before the greeting.
    implicit_tls: Option<TlsInfo>,
    expected: Vec<u8>,
    messages: Vec<Vec<u8>>,
    asserts: Vec<(usize, String, String)>,
}

fn parse_transcript(text: &str) -> Transcript {
    let mut t = Transcript {
        cfg: ServerConfig { hostname: "mx.example".into(), ..ServerConfig::default() },
        phases: vec![(Vec::new(), None)],
        ..Transcript::default()
    };
    let mut in_message = false;
    for (idx, raw) in text.lines().enumerate() {
        let n = idx + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            in_message = false;
            continue;
        }
        let (tag, rest) = line.split_at(2.min(line.len()));
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let is_m = tag == "M:" || tag == "M+";
        if is_m && !in_message {
            t.messages.push(Vec::new());
        }
        in_message = is_m;
        match tag {
            "C:" => {
                let input = &mut t.phases.last_mut().unwrap().0;
                input.extend(unescape(rest, n));
                input.extend_from_slice(b"\r\n");
            }
            "C+" => t.phases.last_mut().unwrap().0.extend(unescape(rest, n)),
            "T:" => {
                t.phases.last_mut().unwrap().1 = Some(tls_info(rest, n));
                t.phases.push((Vec::new(), None));
            }
            "S:" => {
                t.expected.extend(unescape(rest, n));
                t.expected.extend_from_slice(b"\r\n");
            }
            "M:" | "M+" => {
                let m = t.messages.last_mut().unwrap();
                m.extend(unescape(rest, n));
                if tag == "M:" {
                    m.extend_from_slice(b"\r\n");
                }
            }
            "! " | "!" => directive(&mut t, rest.trim(), n),
            "= " | "=" => {
                let (k, v) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
                t.asserts.push((n, k.to_owned(), v.to_owned()));
            }
            _ => panic!("line {n}: unknown line {line:?}"),
        }
    }
    t
}

/// `VERSION CIPHER` of a `T:` line or `! implicit_tls`.
fn tls_info(text: &str, n: usize) -> TlsInfo {
    let (version, cipher) =
        text.trim().split_once(' ').unwrap_or_else(|| panic!("line {n}: VERSION CIPHER"));
    TlsInfo { version: version.to_owned(), cipher: cipher.trim().to_owned() }
}

fn directive(t: &mut Transcript, d: &str, n: usize) {
    let words: Vec<&str> = d.split_whitespace().collect();
    let num = |i: usize| -> u64 { words[i].parse().unwrap_or_else(|_| panic!("line {n}: number")) };
    let on = |i: usize| match words[i] {
        "on" | "yes" => true,
        "off" | "no" => false,
        w => panic!("line {n}: on/off, not {w}"),
    };
    match words[0] {
        "hostname" => t.cfg.hostname = words[1].to_owned(),
        "max_message_size_bytes" => t.cfg.max_message_size_bytes = num(1),
        "max_recipients" => t.cfg.max_recipients = num(1) as usize,
        "max_messages_per_connection" => t.cfg.max_messages_per_connection = num(1) as u32,
        "max_errors" => t.cfg.max_errors = num(1) as u32,
        "bare_line_ending" => {
            t.cfg.bare_line_ending = match words[1] {
                "reject" => BareLineEnding::Reject,
                "normalize" => BareLineEnding::Normalize,
                w => panic!("line {n}: {w}"),
            }
        }
        "chunking" => t.cfg.enable_chunking = on(1),
        "auth" => t.cfg.enable_auth = on(1),
        "plaintext_auth" => t.cfg.allow_plaintext_auth = on(1),
        "max_auth_failures" => t.cfg.max_auth_failures = num(1) as u32,
        "auth-user" => t.behaviour.auth_users.push((words[1].to_owned(), words[2].to_owned())),
        "auth-check" => {
            t.behaviour.auth_sync = match words[1] {
                "pending" => false,
                "sync" => true,
                w => panic!("line {n}: auth-check {w}"),
            }
        }
        "smtputf8" => t.cfg.enable_smtputf8 = on(1),
        "starttls" => t.cfg.starttls = on(1),
        "require_tls" => t.cfg.require_tls = on(1),
        "implicit_tls" => t.implicit_tls = Some(tls_info(&words[1..].join(" "), n)),
        "mail-reply" => t.behaviour.mail_reply = Some(num(1) as u16),
        "rcpt-reject" => t.behaviour.rcpt_reject.push((words[1].to_owned(), num(2) as u16)),
        "data-start-reply" => t.behaviour.data_start_reply = Some(num(1) as u16),
        "chunk-reply" => t.behaviour.chunk_reply = Some(num(1) as u16),
        "commit" => {
            t.behaviour.commit = match words[1] {
                "ok" => Commit::Ok,
                "fail" => Commit::Fail,
                "sync" => Commit::Sync,
                w => panic!("line {n}: commit {w}"),
            }
        }
        w => panic!("line {n}: unknown directive {w}"),
    }
}

/// Show replies one per line, escaped, for failure messages.
fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "\\r").replace("\\r\n", "\\r\n  ")
}

/// Tiny deterministic PRNG (xorshift) for split points.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn check_transcript(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let t = parse_transcript(&text);
    let cfg = Arc::new(t.cfg.clone());
    let whole_phases: Vec<Phase<'_>> = t
        .phases
        .iter()
        .map(|(input, tls)| Phase { pieces: vec![input.as_slice()], then_tls: tls.clone() })
        .collect();
    let (out, fake, closed) = drive(&cfg, &t.behaviour, &t.implicit_tls, &whole_phases);
    assert!(
        out == t.expected,
        "{name}: replies differ\n--- expected\n  {}\n--- got\n  {}",
        show(&t.expected),
        show(&out)
    );
    for (k, want) in t.messages.iter().enumerate() {
        let got = fake.messages.get(k).unwrap_or_else(|| panic!("{name}: no message {}", k + 1));
        assert!(
            got == want,
            "{name}: message {} differs\n--- expected\n{}\n--- got\n{}",
            k + 1,
            show(want),
            show(got)
        );
    }
    for (line, k, v) in &t.asserts {
        let got = match k.as_str() {
            "messages" => fake.messages.len().to_string(),
            "aborted" => fake.aborted.to_string(),
            "smuggling" => fake.smuggling.to_string(),
            "closed" => (if closed { "yes" } else { "no" }).to_owned(),
            "tls" => {
                let tls = fake.last_tx.as_deref().is_some_and(|tx| tx.contains(" tls="));
                (if tls { "yes" } else { "no" }).to_owned()
            }
            "tx" => fake.last_tx.clone().unwrap_or_default(),
            "authenticated" => fake
                .calls
                .iter()
                .rev()
                .find_map(|c| c.strip_prefix("authenticated "))
                .unwrap_or("none")
                .to_owned(),
            _ => panic!("{name}:{line}: unknown assertion {k}"),
        };
        assert_eq!(&got, v, "{name}:{line}: = {k}");
    }
    // Split at any byte: identical replies and handler records.
    let whole = (out, fake, closed);
    let check = |split: &dyn Fn(&[u8]) -> Vec<&[u8]>, what: &str| {
        let phases: Vec<Phase<'_>> = t
            .phases
            .iter()
            .map(|(input, tls)| Phase { pieces: split(input), then_tls: tls.clone() })
            .collect();
        let got = drive(&cfg, &t.behaviour, &t.implicit_tls, &phases);
        assert!(got.0 == whole.0, "{name}: replies differ when {what}:\n{}", show(&got.0));
        assert_eq!(got.1, whole.1, "{name}: handler records differ when {what}");
        assert_eq!(got.2, whole.2, "{name}: closed differs when {what}");
    };
    check(&|input| input.chunks(1).collect(), "fed one byte at a time");
    let longest = t.phases.iter().map(|(i, _)| i.len()).max().unwrap_or(0);
    for cut in 0..=longest {
        check(
            &|input| {
                let (a, b) = input.split_at(cut.min(input.len()));
                vec![a, b]
            },
            &format!("split at byte {cut}"),
        );
    }
    for round in 0..32u64 {
        check(
            &|input| {
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ input.len() as u64 ^ round;
                let mut pieces = Vec::new();
                let mut rest: &[u8] = input;
                while !rest.is_empty() {
                    let n = (xorshift(&mut seed) % 40 + 1) as usize;
                    let (a, b) = rest.split_at(n.min(rest.len()));
                    pieces.push(a);
                    rest = b;
                }
                pieces
            },
            &format!("split randomly (round {round})"),
        );
    }
}

#[test]
fn transcripts() {
    let paths = transcript_files("tests/transcripts");
    assert!(!paths.is_empty());
    let mut failures = Vec::new();
    for p in &paths {
        let r = std::panic::catch_unwind(|| check_transcript(p));
        if r.is_err() {
            failures.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(failures.is_empty(), "failing transcripts: {failures:?}");
}

mod fuzz {
    //! Random input in the SMTP alphabet: nothing panics, the handler contract holds, and
    //! any split gives the same result.
    use super::*;
    use proptest::prelude::*;

    const TOKENS: &[&[u8]] = &[
        b"EHLO a.example\r\n",
        b"HELO b\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n",
        b"RCPT TO:<c@d.example>\r\n",
        b"RCPT TO:<bad@d.example> NOTIFY=SUCCESS\r\n",
        b"DATA\r\n",
        b"BDAT 3\r\n",
        b"BDAT 5 LAST\r\n",
        b"BDAT 0 LAST\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"QUIT\r\n",
        b"STARTTLS\r\n",
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
        b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH LOGIN YWxpY2U=\r\n",
        b"AUTH CRAM-MD5\r\n",
        b"YWxpY2U=\r\n",
        b"c2VjcmV0\r\n",
        b"*\r\n",
        b"MAIL FROM:<a@b.example> AUTH=<>\r\n",
        b"\r\n.\r\n",
        b".",
        b"\r",
        b"\n",
        b"\0",
        b"..",
        b"hello world",
        b"\xff\xfe",
    ];

    fn smtp_input() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(TOKENS).prop_map(|t| t.to_vec()),
                1 => proptest::collection::vec(any::<u8>(), 0..8),
                1 => (1usize..3000).prop_map(|n| vec![b'x'; n]),
            ],
            0..40,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]
        #[test]
        fn random_input_never_panics(
            input in smtp_input(),
            cuts in proptest::collection::vec(1usize..64, 1..20),
            max_errors in 0u32..4,
            max_size in 0u64..40,
            reject in any::<bool>(),
            chunk_fail in any::<bool>(),
            auth_sync in any::<bool>(),
            max_auth_failures in 0u32..3,
            starttls in any::<bool>(),
        ) {
            let cfg = Arc::new(ServerConfig {
                hostname: "mx.example".into(),
                max_errors,
                max_message_size_bytes: max_size,
                max_recipients: 2,
                max_messages_per_connection: 3,
                bare_line_ending: if reject { BareLineEnding::Reject } else { BareLineEnding::Normalize },
                enable_auth: true,
                allow_plaintext_auth: true,
                max_auth_failures,
                starttls,
                ..ServerConfig::default()
            });
            let b = Behaviour {
                rcpt_reject: vec![("bad@d.example".into(), 550)],
                chunk_reply: chunk_fail.then_some(452),
                auth_users: vec![("alice".into(), "secret".into())],
                auth_sync,
                ..Behaviour::default()
            };
            let whole = drive(&cfg, &b, &None, &[Phase { pieces: vec![&input], then_tls: None }]);
            let mut pieces = Vec::new();
            let mut rest: &[u8] = &input;
            for c in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let (a, r) = rest.split_at((*c).min(rest.len()));
                pieces.push(a);
                rest = r;
            }
            let split = drive(&cfg, &b, &None, &[Phase { pieces, then_tls: None }]);
            prop_assert!(whole.0 == split.0, "replies differ");
            prop_assert_eq!(whole.1, split.1);
            prop_assert_eq!(whole.2, split.2);
        }
    }
}
