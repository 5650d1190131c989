//! Unit tests of `smtp::client`: scripted servers for the edges (timeouts, errors,
//! parameters), and a `ServerSession` wired to a `ClientSession` over a simulated network
//! (quinn-proto `Pair::drive` style) for end-to-end byte-exactness. The conversations
//! themselves are in `tests/client_transcripts/`.
use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::smtp::command::{MailParams, Notify, RcptParams, Ret};
use crate::smtp::data::BareLineEnding;
use crate::smtp::path::{ForwardPath, ReversePath};
use crate::smtp::reply::EnhancedStatus;
use crate::smtp::reply_parse::ReplyError;
use crate::smtp::server::{DataOutcome, Handler, ServerConfig, ServerSession, Transaction};
use crate::smtp::stuff::dot_stuff;

const EHLO_ALL: &str = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
                        250-SMTPUTF8\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n";

fn cfg() -> ClientConfig {
    ClientConfig {
        helo_name: "relay.example".into(),
        own_hostnames: vec!["relay.example".into()],
        ..ClientConfig::default()
    }
}

fn job(to: &[&str]) -> Job {
    Job {
        reverse_path: "a@b.example".into(),
        recipients: to
            .iter()
            .map(|t| JobRecipient { forward_path: (*t).into(), ..JobRecipient::default() })
            .collect(),
        size: 10,
        ..Job::default()
    }
}

/// Drain output as text.
fn out(s: &mut ClientSession, now: Instant) -> String {
    let mut v = Vec::new();
    while s.poll_transmit(now, b"", &mut v) > 0 {}
    String::from_utf8(v).unwrap()
}

fn events(s: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session past EHLO with the given EHLO reply, events drained.
fn ready(ehlo: &str) -> (ClientSession, Instant) {
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(), t0);
    s.handle_input(t0, b"220 mx.example ESMTP\r\n").unwrap();
    assert_eq!(out(&mut s, t0), "EHLO relay.example\r\n");
    s.handle_input(t0, ehlo.as_bytes()).unwrap();
    assert_eq!(events(&mut s), [Event::Ready]);
    (s, t0)
}

#[test]
fn mail_and_rcpt_parameters_follow_the_extensions() {
    let mut j = job(&["c@d.example", "Postmaster"]);
    j.body_8bit = true;
    j.smtputf8 = true;
    j.ret = Some(Ret::Hdrs);
    j.envid = Some("id+1 =x".into());
    j.recipients[0].notify = Some(Notify { success: true, failure: true, ..Notify::default() });
    j.recipients[0].orcpt = Some("rfc822;c+x@d.example".into());
    let full = "MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+20+3Dx\r\n\
                RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2Bx@d.example\r\n\
                RCPT TO:<Postmaster>\r\nDATA\r\n";
    let (mut s, t0) = ready(EHLO_ALL);
    s.send(j.clone(), t0).unwrap();
    assert_eq!(out(&mut s, t0), full);
    // Without DSN/SIZE/SMTPUTF8 the parameters are left out (8BITMIME kept).
    let (mut s, t0) = ready("250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    s.send(j, t0).unwrap();
    assert_eq!(
        out(&mut s, t0),
        "MAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<c@d.example>\r\n\
         RCPT TO:<Postmaster>\r\nDATA\r\n"
    );
}

#[test]
fn pipelined_group_is_one_write() {
    let (mut s, t0) = ready(EHLO_ALL);
    s.send(job(&["c@d.example", "e@f.example", "g@h.example"]), t0).unwrap();
    let mut v = Vec::new();
    assert!(s.wants_write());
    assert!(s.poll_transmit(t0, b"", &mut v) > 0);
    assert_eq!(v.iter().filter(|&&b| b == b'\n').count(), 5);
    assert_eq!(s.poll_transmit(t0, b"", &mut v), 0);
    assert!(!s.wants_write());
}

#[test]
fn refusals_before_mail() {
    /// (EHLO reply, how the job differs, expected refusal)
    type Case = (&'static str, fn(&mut Job), Refusal);
    let cases: &[Case] = &[
        (EHLO_ALL, |j| j.size = 1001, Refusal::MessageTooBig { size: 1001, limit: 1000 }),
        ("250-mx\r\n250 SIZE 0\r\n", |j| j.size = u64::MAX, Refusal::EightBitUnsupported),
        ("250-mx\r\n250 SMTPUTF8\r\n", |j| j.body_8bit = true, Refusal::EightBitUnsupported),
        (
            "250-mx\r\n250 8BITMIME\r\n",
            |j| j.recipients[0].forward_path = "é@d".into(),
            Refusal::Smtputf8Unsupported,
        ),
        (
            "250-mx\r\n250 8BITMIME\r\n",
            |j| j.reverse_path = "é@d".into(),
            Refusal::Smtputf8Unsupported,
        ),
        (EHLO_ALL, |j| j.reverse_path = "a@b\r\nRSET".into(), Refusal::InvalidEnvelope),
        (EHLO_ALL, |j| j.recipients[0].orcpt = Some("rfc822;a\n".into()), Refusal::InvalidEnvelope),
    ];
    for (i, (ehlo, edit, want)) in cases.iter().enumerate() {
        let (mut s, t0) = ready(ehlo);
        let mut j = job(&["c@d.example"]);
        j.body_8bit = i == 1; // the SIZE 0 case: no limit, but 8-bit refused
        edit(&mut j);
        s.send(j, t0).unwrap();
        assert_eq!(events(&mut s), [Event::JobRefused(*want), Event::Ready], "case {i}");
        assert_eq!(out(&mut s, t0), "", "case {i}");
        assert!(s.ready_for_next() && s.messages_sent() == 0);
    }
    assert_eq!(
        Refusal::EightBitUnsupported.status(),
        EnhancedStatus { class: 5, subject: 6, detail: 3 }
    );
    assert_eq!(Refusal::Smtputf8Unsupported.status().detail, 7);
}

#[test]
fn send_gives_the_job_back_when_not_ready() {
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(), t0);
    assert!(s.send(job(&["c@d"]), t0).is_err());
    let (mut s, t0) = ready(EHLO_ALL);
    assert!(s.send(job(&[]), t0).is_err());
    s.send(job(&["c@d"]), t0).unwrap();
    assert!(s.send(job(&["c@d"]), t0).is_err());
}

/// Timeouts: each stage arms its own RFC 5321 §4.5.3.2 value.
#[test]
fn timeouts_per_stage() {
    let t = Timeouts::default();
    let min = |m: u64| Duration::from_secs(60 * m);
    assert_eq!(
        (t.greeting, t.mail, t.rcpt, t.data_init, t.data_block, t.data_term),
        (min(5), min(5), min(5), min(2), min(3), min(10))
    );
    // Greeting.
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(), t0);
    assert_eq!(s.poll_timeout(), Some(t0 + min(5)));
    s.handle_timeout(t0 + min(4));
    assert!(!s.is_closed());
    s.handle_timeout(t0 + min(5));
    assert!(s.is_closed() && s.poll_timeout().is_none());
    assert_eq!(events(&mut s), [Event::TimedOut { stage: Stage::Greeting }]);
    // Through a lock-step transaction.
    let (mut s, t0) = ready("250 mx\r\n");
    assert_eq!(s.poll_timeout(), None, "idle has no timeout");
    s.send(job(&["c@d"]), t0).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + min(5)));
    let t1 = t0 + min(1);
    s.handle_input(t1, b"250 ok\r\n").unwrap();
    assert_eq!((s.stage(), s.poll_timeout()), (Stage::Rcpt, Some(t1 + min(5))));
    s.handle_input(t1, b"250 ok\r\n").unwrap();
    assert_eq!((s.stage(), s.poll_timeout()), (Stage::DataInit, Some(t1 + min(2))));
    s.handle_input(t1, b"354 go\r\n").unwrap();
    assert_eq!((s.stage(), s.poll_timeout()), (Stage::DataBlock, Some(t1 + min(3))));
    let t2 = t1 + min(2);
    let content = vec![b'x'; 3 * TRANSMIT_CHUNK_BYTES];
    let mut v = Vec::new();
    let _ = s.poll_transmit(t2, &content, &mut v);
    assert_eq!((s.stage(), s.poll_timeout()), (Stage::DataBlock, Some(t2 + min(3))));
    // A full buffer is no progress.
    let _ = s.poll_transmit(t2 + min(1), &content, &mut v);
    assert_eq!(s.poll_timeout(), Some(t2 + min(3)));
    v.clear();
    while s.stage() == Stage::DataBlock {
        v.clear();
        let _ = s.poll_transmit(t2, &content, &mut v);
    }
    assert_eq!((s.stage(), s.poll_timeout()), (Stage::DataTerm, Some(t2 + min(10))));
    s.handle_timeout(t2 + min(10));
    assert_eq!(events(&mut s), [Event::TimedOut { stage: Stage::DataTerm }]);
}

#[test]
fn server_faults_are_typed_errors() {
    use Misbehaviour::*;
    let mal = |e| Err(ClientError::PeerMisbehaved { stage: Stage::Mail, why: Malformed(e) });
    let cases: &[(&[u8], Result<(), ClientError>)] = &[
        (b"250 ok\r\n", Ok(())),
        (b"hello\r\n", mal(ReplyError::BadCode)),
        (
            b"354 go\r\n",
            Err(ClientError::PeerMisbehaved { stage: Stage::Mail, why: UnexpectedCode(354) }),
        ),
        (b"250-a\r\n251 b\r\n", mal(ReplyError::CodeMismatch)),
        (&[b'2'; 5000], mal(ReplyError::LineTooLong)),
        // MAIL 250, RCPT 250, DATA 250: not a go-ahead.
        (
            b"250 a\r\n250 b\r\n250 c\r\n",
            Err(ClientError::PeerMisbehaved { stage: Stage::DataInit, why: UnexpectedCode(250) }),
        ),
        // A reply while content is due.
        (
            b"250 a\r\n250 b\r\n354 c\r\n250 d\r\n",
            Err(ClientError::PeerMisbehaved { stage: Stage::DataBlock, why: Unsolicited(250) }),
        ),
    ];
    for (input, want) in cases {
        let (mut s, t0) = ready(EHLO_ALL);
        s.send(job(&["c@d"]), t0).unwrap();
        let _ = out(&mut s, t0);
        let got = s.handle_input(t0, input);
        assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(s.is_closed(), got.is_err());
        assert!(s.handle_input(t0, b"250 more\r\n").is_ok(), "closed sessions ignore input");
    }
    // Unsolicited while idle; 421 while idle is a clean close.
    let (mut s, t0) = ready(EHLO_ALL);
    assert_eq!(
        s.handle_input(t0, b"250 hi\r\n"),
        Err(ClientError::PeerMisbehaved { stage: Stage::Idle, why: Unsolicited(250) })
    );
    let (mut s, t0) = ready(EHLO_ALL);
    s.handle_input(t0, b"421 4.3.2 bye\r\n").unwrap();
    assert_eq!(events(&mut s), [Event::Closed]);
    // EOF: clean when idle or after QUIT, an error mid-reply or while a reply is due.
    let (mut s, _) = ready(EHLO_ALL);
    assert_eq!(s.handle_close(), Ok(()));
    assert_eq!(events(&mut s), [Event::Closed]);
    let (mut s, t0) = ready(EHLO_ALL);
    s.handle_input(t0, b"25").unwrap();
    assert_eq!(s.handle_close(), Err(ClientError::ConnectionClosed { stage: Stage::Idle }));
    let (mut s, t0) = ready(EHLO_ALL);
    s.send(job(&["c@d"]), t0).unwrap();
    s.handle_input(t0, b"250-2.1.0 partial\r\n").unwrap();
    assert_eq!(s.handle_close(), Err(ClientError::ConnectionClosed { stage: Stage::Mail }));
    assert!(s.is_closed() && events(&mut s).is_empty());
    let (mut s, t0) = ready(EHLO_ALL);
    s.quit(t0);
    assert_eq!(out(&mut s, t0), "QUIT\r\n");
    assert_eq!(s.handle_close(), Ok(()));
    assert_eq!(events(&mut s), [Event::Closed]);
}

#[test]
fn loop_detected_in_ehlo_reply() {
    let t0 = super::test_epoch();
    let mut s = ClientSession::new(cfg(), t0);
    s.handle_input(t0, b"220 mx.example\r\n").unwrap();
    s.handle_input(t0, b"250-RELAY.example. hello\r\n250 SIZE 5\r\n").unwrap();
    assert!(matches!(events(&mut s)[..], [Event::LoopDetected(_)]));
    assert_eq!(out(&mut s, t0), "EHLO relay.example\r\nQUIT\r\n");
}

#[test]
fn pipelined_421_mid_group_fails_the_rest() {
    let (mut s, t0) = ready(EHLO_ALL);
    s.send(job(&["a@x", "b@x", "c@x"]), t0).unwrap();
    s.handle_input(t0, b"250 ok\r\n250 ok\r\n421 4.3.2 going down\r\n").unwrap();
    let ev = events(&mut s);
    let Event::TransactionDone { rcpt_results, data_reply, .. } = &ev[0] else { panic!("{ev:?}") };
    let codes: Vec<u16> = rcpt_results.iter().map(|r| r.reply.code).collect();
    assert_eq!(codes, [250, 421, 421]);
    assert_eq!(data_reply.as_ref().map(|r| r.code), Some(421));
    assert_eq!(rcpt_results[0].outcome(data_reply.as_ref()).code, 421);
    assert_eq!(ev[1], Event::Closed);
    assert!(s.is_closed());
}

// ---- a ServerSession and a ClientSession over a simulated network ----------------------------

/// Server side: accepts everyone but `bad*` (550) and `tmp*` (451); commits at once.
#[derive(Default)]
struct Sink {
    open: Option<Vec<u8>>,
    messages: Vec<(Vec<String>, Vec<u8>)>,
    rcpts: Vec<String>,
}

impl Handler for Sink {
    fn mail(&mut self, _: &ReversePath<'_>, _: &MailParams<'_>) -> Result<(), Reply> {
        self.rcpts.clear();
        Ok(())
    }
    fn rcpt(&mut self, to: &ForwardPath<'_>, _: &RcptParams<'_>) -> Result<(), Reply> {
        let to = to.mailbox().map(ToString::to_string).unwrap_or_default();
        if to.starts_with("bad") {
            Err(Reply::mailbox_unavailable())
        } else if to.starts_with("tmp") {
            Err(Reply::local_error())
        } else {
            self.rcpts.push(to);
            Ok(())
        }
    }
    fn data_start(&mut self, _: &Transaction) -> Result<(), Reply> {
        self.open = Some(Vec::new());
        Ok(())
    }
    fn data_chunk(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        self.open.as_mut().unwrap().extend_from_slice(bytes);
        Ok(())
    }
    fn data_end(&mut self) -> DataOutcome {
        let m = self.open.take().unwrap();
        self.messages.push((std::mem::take(&mut self.rcpts), m));
        DataOutcome::Done(Reply::queued("1"))
    }
    fn data_abort(&mut self) {
        self.open = None;
    }
}

/// What the server stores for `content` sent by our client: bare CR/LF become CRLF and a
/// missing final CRLF is added (RFC 5321 §4.1.1.4), nothing else changes.
fn stored_form(content: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            b'\r' if content.get(i + 1) == Some(&b'\n') => {
                v.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => v.extend_from_slice(b"\r\n"),
            c => v.push(c),
        }
        i += 1;
    }
    if !v.is_empty() && !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// One connection: drive both ends until the client closes. `mtu` bounds each simulated
/// packet in both directions. Returns the client's events.
fn connect(
    ccfg: &ClientConfig,
    scfg: &Arc<ServerConfig>,
    jobs: &mut VecDeque<(Job, Vec<u8>)>,
    sink: &mut Sink,
    mtu: usize,
    borrowed: bool,
) -> Vec<Event> {
    let mut now = super::test_epoch();
    let mut client = ClientSession::new(ccfg.clone(), now);
    let mut server = ServerSession::new(Arc::clone(scfg));
    let (mut c2s, mut s2c, mut server_in) = (Vec::new(), Vec::new(), Vec::new());
    server.greet(&mut s2c);
    let mut content: Vec<u8> = Vec::new();
    let mut evs = Vec::new();
    for _round in 0..100_000 {
        now += Duration::from_millis(1);
        while let Some(ev) = client.poll_event() {
            if ev == Event::Ready {
                match jobs.pop_front() {
                    Some((job, c)) => {
                        content = c;
                        client.send(job, now).unwrap();
                    }
                    None => client.quit(now),
                }
            }
            evs.push(ev);
        }
        let wrote = if borrowed {
            let before = c2s.len();
            let run = client.poll_transmit_borrowed(now, &content, &mut c2s);
            c2s.extend_from_slice(&content[run]); // what `net` writes after the buffer
            c2s.len() > before
        } else {
            client.poll_transmit(now, &content, &mut c2s) > 0
        };
        // One packet each way.
        let n = c2s.len().min(mtu);
        server_in.extend(c2s.drain(..n));
        if !server.is_closed() {
            let used = server.feed(&server_in, sink, &mut s2c);
            server_in.drain(..used);
        }
        let m = s2c.len().min(mtu);
        let packet: Vec<u8> = s2c.drain(..m).collect();
        if !packet.is_empty() {
            client.handle_input(now, &packet).unwrap();
        }
        if server.is_closed() && s2c.is_empty() && !client.is_closed() && !wrote && c2s.is_empty() {
            client.handle_close().unwrap();
        }
        if client.is_closed() && c2s.is_empty() && s2c.is_empty() {
            evs.extend(std::iter::from_fn(|| client.poll_event()));
            return evs;
        }
    }
    panic!("no progress: {evs:?}");
}

fn content_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // CRLF lines: stored byte-exact.
        proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'a'), any::<u8>()], 0..10)
                .prop_map(|l| {
                    let mut l: Vec<u8> =
                        l.into_iter().filter(|&b| b != b'\r' && b != b'\n').collect();
                    l.extend_from_slice(b"\r\n");
                    l
                }),
            0..20,
        )
        .prop_map(|ls| ls.concat()),
        // Anything.
        proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
            0..300,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn client_and_server_deliver_byte_exact(
        messages in proptest::collection::vec(
            (content_strategy(), proptest::collection::vec(0u8..4, 1..4)),
            1..5,
        ),
        use_helo in any::<bool>(),
        use_bdat in any::<bool>(),
        max_messages in 0u32..4,
        mtu in prop_oneof![Just(1usize), 2usize..64, Just(100_000)],
        borrowed in any::<bool>(),
    ) {
        // The server offers CHUNKING: after EHLO the content goes by BDAT or DATA.
        let ccfg = ClientConfig {
            use_helo,
            use_bdat,
            max_messages_per_connection: max_messages,
            ..cfg()
        };
        let scfg = Arc::new(ServerConfig {
            max_messages_per_connection: 0,
            bare_line_ending: BareLineEnding::Normalize,
            ..ServerConfig::default()
        });
        let mut jobs = VecDeque::new();
        for (k, (content, kinds)) in messages.iter().enumerate() {
            let mut j = job(&[]);
            j.size = content.len() as u64;
            j.body_8bit = content.iter().any(|&b| b >= 0x80);
            for (i, kind) in kinds.iter().enumerate() {
                let local = ["ok", "ok", "bad", "tmp"][usize::from(*kind)];
                let forward_path = format!("{local}{k}.{i}@x.example");
                j.recipients.push(JobRecipient { forward_path, ..JobRecipient::default() });
            }
            jobs.push_back((j, content.clone()));
        }
        let mut sink = Sink::default();
        let mut all = Vec::new();
        let mut connections = 0;
        while !jobs.is_empty() {
            connections += 1;
            prop_assert!(connections <= messages.len());
            let evs = connect(&ccfg, &scfg, &mut jobs, &mut sink, mtu, borrowed);
            let done = evs.iter().filter(|e| matches!(e, Event::TransactionDone { .. })).count();
            prop_assert!(max_messages == 0 || done <= max_messages as usize, "{evs:?}");
            prop_assert_eq!(evs.last(), Some(&Event::Closed));
            all.extend(evs);
        }
        // Every job has exactly one outcome, in order; accepted ones arrived byte-exact.
        let outcomes: Vec<&Event> = all
            .iter()
            .filter(|e| matches!(e, Event::TransactionDone { .. } | Event::JobRefused(_)))
            .collect();
        prop_assert_eq!(outcomes.len(), messages.len());
        let mut stored = sink.messages.iter();
        for ((content, kinds), ev) in messages.iter().zip(outcomes) {
            let eight_bit = content.iter().any(|&b| b >= 0x80);
            match ev {
                Event::JobRefused(r) => {
                    prop_assert!(use_helo && eight_bit);
                    prop_assert_eq!(*r, Refusal::EightBitUnsupported);
                }
                Event::TransactionDone { mail_reply, rcpt_results, data_reply } => {
                    prop_assert!(!(use_helo && eight_bit));
                    prop_assert_eq!(mail_reply.code, 250);
                    let codes: Vec<u16> = rcpt_results.iter().map(|r| r.reply.code).collect();
                    let want: Vec<u16> = kinds.iter().map(|k| [250, 250, 550, 451][usize::from(*k)]).collect();
                    prop_assert_eq!(&codes, &want);
                    if want.contains(&250) {
                        prop_assert_eq!(data_reply.as_ref().map(|r| r.code), Some(250));
                        let (rcpts, body) = stored.next().unwrap();
                        prop_assert_eq!(rcpts.len(), want.iter().filter(|&&c| c == 250).count());
                        prop_assert_eq!(body, &stored_form(content));
                    } else {
                        prop_assert!(data_reply.is_none());
                    }
                }
                _ => unreachable!(),
            }
        }
        prop_assert!(stored.next().is_none());
    }
}

/// Large content through `poll_transmit_borrowed` (long runs handed out, short ones
/// copied) gives the wire `poll_transmit` gives, for DATA and BDAT.
#[test]
fn borrowed_transmit_is_the_copying_wire() {
    let line = b"La de da de da 1 da de da de da 2 da de da de da 3 da de da de da 4\r\n";
    let plain: Vec<u8> = line.iter().copied().cycle().take(300 * 1024).collect();
    let mut dotted = plain.clone();
    for i in (0..dotted.len()).step_by(7001) {
        dotted[i] = [b'.', b'\n', b'\r'][i % 3];
    }
    let bare: Vec<u8> = plain.iter().copied().filter(|&b| b != b'\r').collect();
    // (content, has runs of at least MIN_BORROWED_RUN_BYTES): a bare LF on every line
    // leaves only short runs, all copied.
    let cases =
        [(plain, true), (dotted, true), (bare, false), (Vec::new(), false), (b".".to_vec(), false)];
    for (content, long_runs) in cases {
        for bdat in [false, true] {
            let wire = |borrowed: bool| {
                let t0 = super::test_epoch();
                let mut s = ClientSession::new(ClientConfig { use_bdat: bdat, ..cfg() }, t0);
                s.handle_input(t0, b"220 mx.example ESMTP\r\n").unwrap();
                let _ = out(&mut s, t0);
                s.handle_input(t0, b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n").unwrap();
                s.send(job(&["c@d"]), t0).unwrap();
                let _ = out(&mut s, t0);
                let replies: &[u8] =
                    if bdat { b"250 a\r\n250 b\r\n" } else { b"250 a\r\n250 b\r\n354 c\r\n" };
                s.handle_input(t0, replies).unwrap();
                assert_eq!(s.stage(), Stage::DataBlock);
                let (mut v, mut runs) = (Vec::new(), 0);
                for _ in 0..1000 {
                    if s.stage() != Stage::DataBlock {
                        break;
                    }
                    // A fresh buffer per call, as `net` has once the last one is written.
                    let mut buf = Vec::new();
                    if borrowed {
                        let r = s.poll_transmit_borrowed(t0, &content, &mut buf);
                        assert!(r.is_empty() || r.len() >= MIN_BORROWED_RUN_BYTES);
                        runs += usize::from(!r.is_empty());
                        buf.extend_from_slice(&content[r]);
                    } else {
                        let _ = s.poll_transmit(t0, &content, &mut buf);
                    }
                    v.extend_from_slice(&buf);
                }
                assert_eq!(s.stage(), Stage::DataTerm);
                (v, runs)
            };
            let (copied, _) = wire(false);
            let (borrowed, runs) = wire(true);
            assert!(copied == borrowed, "{} bytes, bdat {bdat}", content.len());
            assert_eq!(runs > 0, long_runs, "{} bytes: {runs} runs", content.len());
        }
    }
}

#[test]
fn crlf_content_is_stored_unchanged() {
    // The strongest form of the property for well-formed content, spelled out.
    let content = b"From: a\r\n.\r\n..x\r\n\r\n.\r\nend\r\n".to_vec();
    assert_eq!(stored_form(&content), content);
    let mut wire = Vec::new();
    dot_stuff(&content, &mut wire);
    assert_eq!(wire, b"From: a\r\n..\r\n...x\r\n\r\n..\r\nend\r\n.\r\n");
}

/// Bytes in the SMTP reply alphabet, as smtp-proto's fuzz target maps random input.
fn server_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"220 mx\r\n".to_vec()),
        Just(b"250-mx\r\n250-PIPELINING\r\n250 SIZE 5\r\n".to_vec()),
        Just(b"250 2.1.0 ok\r\n".to_vec()),
        Just(b"354 go\r\n".to_vec()),
        Just(b"421 4.3.2 bye\r\n".to_vec()),
        Just(b"550-5.1.1 a\r\n".to_vec()),
        Just(b"221 bye\r\n".to_vec()),
        proptest::collection::vec(
            prop_oneof![
                Just(b'2'),
                Just(b'5'),
                Just(b'0'),
                Just(b'-'),
                Just(b' '),
                Just(b'\r'),
                Just(b'\n'),
                any::<u8>()
            ],
            0..12,
        ),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

proptest! {
    /// Whatever a server sends, the client never panics, and after an error it is closed.
    #[test]
    fn hostile_server_never_panics(
        input in server_bytes(),
        cuts in proptest::collection::vec(1usize..40, 0..8),
        pipelining in any::<bool>(),
        content in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let t0 = super::test_epoch();
        let mut s = ClientSession::new(cfg(), t0);
        let mut jobs = 3;
        let mut rest = &input[..];
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            let r = s.handle_input(t0, &rest[..n]);
            prop_assert!(r.is_ok() || s.is_closed());
            rest = &rest[n..];
            while let Some(ev) = s.poll_event() {
                if ev == Event::Ready {
                    if jobs > 0 {
                        jobs -= 1;
                        let mut j = job(&["a@x", "b@x"]);
                        j.body_8bit = pipelining;
                        // Events can be stale (a later reply in the same read closed it).
                        let ready = s.ready_for_next();
                        prop_assert_eq!(s.send(j, t0).is_ok(), ready);
                    } else {
                        s.quit(t0);
                    }
                }
            }
            let mut out = Vec::new();
            while s.poll_transmit(t0, &content, &mut out) > 0 {
                out.clear();
            }
        }
        let _ = s.handle_close();
        prop_assert!(s.is_closed());
    }
}

#[test]
fn nothing_is_written_after_an_error() {
    let (mut s, t0) = ready("250 mx\r\n");
    s.send(job(&["c@d"]), t0).unwrap();
    assert_eq!(out(&mut s, t0), "MAIL FROM:<a@b.example>\r\n");
    // MAIL accepted (RCPT queued), then garbage in the same read.
    assert!(s.handle_input(t0, b"250 ok\r\n\x00\r\n").is_err());
    assert!(s.is_closed() && !s.wants_write() && !s.wants_read());
    assert_eq!(out(&mut s, t0), "");
}
