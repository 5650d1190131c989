//! Client transcript tests: `tests/client_transcripts/*.txt` replayed against the pure
//! `smtp::client::ClientSession` with a fake clock. The transcripts are written from the
//! client's point of view: `S:` is what the fake server sends, `C:` what the client must
//! write.
//!
//! # Transcript format
//!
//! One item per line; blank lines are ignored.
//!
//! - `# text`       comment.
//! - `S: text`      the server sends `text` + CRLF; `S+ text` without the CRLF.
//!   Consecutive `S:`/`S+` lines arrive together (one read).
//! - `C: text`      the client must write `text` + CRLF.
//! - `E: event`     the client must report this event (see `render` below for the forms:
//!   `ready`, `done mail=250 rcpt=250,451 data=250|-`, `refused 5.3.4`,
//!   `greeting-failed 421`, `hello-failed 554`, `loop-detected`, `timeout data-term`,
//!   `closed`, `starttls`, `security-failed 4.7.4 <text>`, `error <text>` for an `Err`
//!   from `handle_input`/`handle_close`, recorded after the events of the same read).
//! - `T: N`         N seconds pass on the fake clock, then `handle_timeout`.
//! - `X:`           the server closes the connection (`handle_close`).
//! - `H: ok`        the driver's TLS handshake succeeded (`tls_established`); `H: fail
//!   REASON` it failed (`tls_failed`). The driver never starts TLS by itself on
//!   `starttls`: the transcript says when (so bytes before `H:` are plaintext).
//! - `! key value`  configuration and jobs:
//!   `! helo_name NAME` (default `relay.example`), `! use_helo`, `! no_bdat` (DATA even
//!   when CHUNKING is offered),
//!   `! tls none|may|encrypt|verify` (default `may`), `! tls_capable` (the driver can do
//!   TLS; default not), `! auth USER PASSWORD` (smart host credentials),
//!   `! max_messages_per_connection N` (default 20), `! own_hostname NAME` (default
//!   `relay.example`; repeatable, the first replaces the default),
//!   `! job from=ADDR [size=N] [8bit] [smtputf8] [ret=FULL|HDRS] [envid=X]` (a new job;
//!   `from=` alone is `<>`; size defaults to the content length),
//!   `! rcpt ADDR [notify=X] [orcpt=TYPE;ADDR]` (a recipient of the last job).
//! - `M: text`      a line of the last job's content (+ CRLF); `M+ text` without CRLF.
//!
//! Escapes in `S:`, `C:`, `M:` text: `\r`, `\n`, `\t`, `\\`, `\xHH`.
//!
//! The driver sends the next job on each `ready` event and QUIT when none is left. After
//! each `S` group, `T:` or `X:` it collects the client's output and events until it is idle;
//! they must equal the `C:` and `E:` lines up to the next `S`/`T`/`X` (so the lines show
//! exactly when the client writes: one group after EHLO with PIPELINING, lock-step
//! without). Every transcript is replayed with the server's bytes fed whole, one byte at a
//! time, and split in two at every byte: all must give the same output and events.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use mailroot::smtp::client::{
    ClientAuth, ClientConfig, ClientSession, Event, Job, JobRecipient, TlsPolicy,
};
use mailroot::smtp::command::{Notify, Ret};
use mailroot::smtp::reply::Reply;

mod common_transcript;
use common_transcript::{transcript_files, unescape};

/// Something the server side of a transcript does.
#[derive(Clone, Debug)]
enum Step {
    /// Bytes arriving in one read.
    Input(Vec<u8>),
    /// Seconds pass; then `handle_timeout`.
    Wait(u64),
    /// The server closes.
    Close,
    /// The TLS handshake: `None` = established, else the failure reason.
    Handshake(Option<String>),
}

/// What the client must do after a step: bytes written and events.
#[derive(Clone, Debug, Default, PartialEq)]
struct Segment {
    out: String,
    events: Vec<String>,
}

#[derive(Default)]
struct Transcript {
    cfg: ClientConfig,
    jobs: Vec<(Job, Vec<u8>)>,
    explicit_size: Vec<bool>,
    steps: Vec<Step>,
    /// `expected[0]` before any step, `expected[i + 1]` after `steps[i]`.
    expected: Vec<Segment>,
}

fn parse_notify(v: &str) -> Notify {
    let mut n = Notify::default();
    for f in v.split(',') {
        match f.to_ascii_uppercase().as_str() {
            "NEVER" => n.never = true,
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            other => panic!("bad NOTIFY {other}"),
        }
    }
    n
}

fn parse(text: &str) -> Transcript {
    let mut t = Transcript {
        cfg: ClientConfig {
            helo_name: "relay.example".into(),
            own_hostnames: vec!["relay.example".into()],
            ..ClientConfig::default()
        },
        expected: vec![Segment::default()],
        ..Transcript::default()
    };
    let mut own_default = true;
    let mut in_input = false;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, rest) = line.split_at(2.min(line.len()));
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let was_input = std::mem::replace(&mut in_input, false);
        match kind {
            "S:" | "S+" => {
                let mut bytes = unescape(rest, n);
                if kind == "S:" {
                    bytes.extend_from_slice(b"\r\n");
                }
                match t.steps.last_mut() {
                    Some(Step::Input(v)) if was_input => v.extend_from_slice(&bytes),
                    _ => {
                        t.steps.push(Step::Input(bytes));
                        t.expected.push(Segment::default());
                    }
                }
                in_input = true;
            }
            "T:" => {
                t.steps.push(Step::Wait(rest.trim().parse().unwrap()));
                t.expected.push(Segment::default());
            }
            "X:" => {
                t.steps.push(Step::Close);
                t.expected.push(Segment::default());
            }
            "H:" => {
                let r = rest.trim();
                let step = match r.strip_prefix("fail ") {
                    Some(reason) => Step::Handshake(Some(reason.to_owned())),
                    None if r == "ok" => Step::Handshake(None),
                    None => panic!("line {n}: bad handshake {r}"),
                };
                t.steps.push(step);
                t.expected.push(Segment::default());
            }
            "C:" => {
                let seg = t.expected.last_mut().unwrap();
                seg.out.push_str(&String::from_utf8(unescape(rest, n)).unwrap());
                seg.out.push_str("\r\n");
            }
            "E:" => t.expected.last_mut().unwrap().events.push(rest.trim().to_owned()),
            "M:" | "M+" => {
                let (_, content) =
                    t.jobs.last_mut().unwrap_or_else(|| panic!("line {n}: M before job"));
                content.extend_from_slice(&unescape(rest, n));
                if kind == "M:" {
                    content.extend_from_slice(b"\r\n");
                }
            }
            "! " => {
                let mut words = rest.split_whitespace();
                let key = words.next().unwrap();
                match key {
                    "helo_name" => t.cfg.helo_name = words.next().unwrap().into(),
                    "use_helo" => t.cfg.use_helo = true,
                    "tls" => {
                        let w = words.next().unwrap();
                        t.cfg.tls = TlsPolicy::from_word(w).unwrap_or_else(|| panic!("tls {w}"));
                    }
                    "tls_capable" => t.cfg.tls_capable = true,
                    "auth" => {
                        let user = words.next().unwrap().into();
                        let password = words.next().unwrap().into();
                        t.cfg.auth = Some(ClientAuth { user, password });
                    }
                    "no_bdat" => t.cfg.use_bdat = false,
                    "max_messages_per_connection" => {
                        t.cfg.max_messages_per_connection = words.next().unwrap().parse().unwrap();
                    }
                    "own_hostname" => {
                        if std::mem::take(&mut own_default) {
                            t.cfg.own_hostnames.clear();
                        }
                        t.cfg.own_hostnames.push(words.next().unwrap().into());
                    }
                    "job" => {
                        let mut job = Job::default();
                        let mut sized = false;
                        for w in words {
                            match w.split_once('=') {
                                Some(("from", v)) => job.reverse_path = v.into(),
                                Some(("size", v)) => {
                                    job.size = v.parse().unwrap();
                                    sized = true;
                                }
                                Some(("ret", "FULL")) => job.ret = Some(Ret::Full),
                                Some(("ret", "HDRS")) => job.ret = Some(Ret::Hdrs),
                                Some(("envid", v)) => job.envid = Some(v.into()),
                                None if w == "8bit" => job.body_8bit = true,
                                None if w == "smtputf8" => job.smtputf8 = true,
                                _ => panic!("line {n}: bad job word {w}"),
                            }
                        }
                        t.jobs.push((job, Vec::new()));
                        t.explicit_size.push(sized);
                    }
                    "rcpt" => {
                        let mut r = JobRecipient {
                            forward_path: words.next().unwrap().into(),
                            ..JobRecipient::default()
                        };
                        for w in words {
                            match w.split_once('=') {
                                Some(("notify", v)) => r.notify = Some(parse_notify(v)),
                                Some(("orcpt", v)) => r.orcpt = Some(v.into()),
                                _ => panic!("line {n}: bad rcpt word {w}"),
                            }
                        }
                        t.jobs.last_mut().unwrap().0.recipients.push(r);
                    }
                    other => panic!("line {n}: unknown directive {other}"),
                }
            }
            _ => panic!("line {n}: cannot parse {line:?}"),
        }
    }
    for ((job, content), sized) in t.jobs.iter_mut().zip(&t.explicit_size) {
        if !sized {
            job.size = content.len() as u64;
        }
    }
    t
}

fn code(r: &Reply) -> String {
    r.code.to_string()
}

fn render(ev: &Event) -> String {
    match ev {
        Event::Ready => "ready".into(),
        Event::GreetingFailed(r) => format!("greeting-failed {}", code(r)),
        Event::HelloFailed(r) => format!("hello-failed {}", code(r)),
        Event::LoopDetected(_) => "loop-detected".into(),
        Event::JobRefused(r) => {
            let s = r.status();
            format!("refused {}.{}.{}", s.class, s.subject, s.detail)
        }
        Event::TransactionDone { mail_reply, rcpt_results, data_reply } => {
            let rcpts: Vec<String> = rcpt_results.iter().map(|r| code(&r.reply)).collect();
            let data = data_reply.as_ref().map_or("-".into(), code);
            format!("done mail={} rcpt={} data={data}", code(mail_reply), rcpts.join(","))
        }
        Event::TimedOut { stage } => format!("timeout {stage}"),
        Event::Closed => "closed".into(),
        Event::StartTls => "starttls".into(),
        Event::SecurityFailed(f) => {
            let s = f.status();
            format!("security-failed {}.{}.{} {f}", s.class, s.subject, s.detail)
        }
    }
}

/// The client and the fake server's view of it.
struct Driver {
    s: ClientSession,
    now: Instant,
    jobs: VecDeque<(Job, Vec<u8>)>,
    content: Vec<u8>,
}

impl Driver {
    /// Let the client run until it has nothing more to say; record into `seg`.
    fn drain(&mut self, seg: &mut Segment) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.s.poll_event() {
                busy = true;
                if ev == Event::Ready {
                    match self.jobs.pop_front() {
                        Some((job, content)) => {
                            self.content = content;
                            self.s.send(job, self.now).expect("send when ready");
                        }
                        None => self.s.quit(self.now),
                    }
                }
                seg.events.push(render(&ev));
            }
            let mut out = Vec::new();
            while self.s.poll_transmit(self.now, &self.content, &mut out) > 0 {
                busy = true;
            }
            seg.out.push_str(&String::from_utf8_lossy(&out));
            if !busy {
                return;
            }
        }
    }
}

/// How input step `i` with these bytes is cut into reads.
type Split<'a> = &'a dyn Fn(usize, &[u8]) -> Vec<Vec<u8>>;

/// Replay; `split(step_index, bytes)` says how each input step is cut into reads.
fn replay(t: &Transcript, split: Split<'_>) -> Vec<Segment> {
    let now = Instant::now();
    let mut d = Driver {
        s: ClientSession::new(t.cfg.clone(), now),
        now,
        jobs: t.jobs.iter().cloned().collect(),
        content: Vec::new(),
    };
    let mut segs = vec![Segment::default()];
    d.drain(&mut segs[0]);
    for (i, step) in t.steps.iter().enumerate() {
        let mut seg = Segment::default();
        match step {
            Step::Input(bytes) => {
                for piece in split(i, bytes) {
                    let r = d.s.handle_input(d.now, &piece);
                    d.drain(&mut seg);
                    if let Err(e) = r {
                        seg.events.push(format!("error {e}"));
                    }
                }
            }
            Step::Wait(secs) => {
                d.now += Duration::from_secs(*secs);
                d.s.handle_timeout(d.now);
                d.drain(&mut seg);
            }
            Step::Handshake(result) => {
                match result {
                    None => d.s.tls_established(d.now),
                    Some(reason) => d.s.tls_failed(reason),
                }
                d.drain(&mut seg);
            }
            Step::Close => {
                if let Err(e) = d.s.handle_close() {
                    seg.events.push(format!("error {e}"));
                }
                d.drain(&mut seg);
            }
        }
        segs.push(seg);
    }
    segs
}

fn check(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let t = parse(&text);
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let whole = replay(&t, &|_, b| vec![b.to_vec()]);
    for (i, (got, want)) in whole.iter().zip(&t.expected).enumerate() {
        assert_eq!(got, want, "{name}: after step {i} (0 = start)");
    }
    assert_eq!(whole.len(), t.expected.len());
    let bytewise = replay(&t, &|_, b| b.iter().map(|&c| vec![c]).collect());
    assert_eq!(bytewise, whole, "{name}: fed one byte at a time");
    for (k, step) in t.steps.iter().enumerate() {
        let Step::Input(bytes) = step else { continue };
        for cut in 1..bytes.len() {
            let split = |i: usize, b: &[u8]| {
                if i == k { vec![b[..cut].to_vec(), b[cut..].to_vec()] } else { vec![b.to_vec()] }
            };
            assert_eq!(replay(&t, &split), whole, "{name}: step {k} split at byte {cut}");
        }
    }
}

#[test]
fn transcripts() {
    let files = transcript_files("tests/client_transcripts");
    assert!(files.len() >= 12, "transcripts missing in tests/client_transcripts");
    for f in &files {
        check(f);
    }
}
