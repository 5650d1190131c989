//! A real SMTP sink for the delivery tests, written with `std::net` (one thread per
//! connection): it answers EHLO with PIPELINING, 8BITMIME, SMTPUTF8, SIZE and
//! ENHANCEDSTATUSCODES, takes pipelined commands, answers each RCPT from a per-address
//! script (default 250), reads DATA up to `<CRLF>.<CRLF>`, un-stuffs it and records the
//! exact bytes with the envelope and the connection number. It counts connections and the
//! highest number open at once.
//!
//! Scripts: `sink.script("rcpt@x", &[451, 250])` makes the first RCPT for that address get
//! 451, the second 250, then 250 forever. `greeting_name` sets the first word of the 220
//! greeting (the loop test makes it our own host name). `data_delay` holds each reply to
//! the final dot (so concurrency can be observed).
//!
//! Every loop is bounded: sockets have read timeouts, the accept loop polls a stop flag
//! and ends when the `Sink` is dropped.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Read timeout of a sink connection.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(10);
/// Longest command line accepted.
const MAX_LINE: usize = 4096;

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Connection number (1-based, in accept order).
    pub(crate) conn: usize,
    /// MAIL FROM address (between the brackets).
    pub(crate) mail_from: String,
    /// The whole MAIL FROM line (parameters included).
    pub(crate) mail_line: String,
    /// Accepted recipients.
    pub(crate) rcpts: Vec<String>,
    /// Content, dot-unstuffed, exactly as sent (without the final dot line).
    pub(crate) data: Vec<u8>,
}

/// Shared state.
#[derive(Default)]
struct State {
    /// Accepted messages.
    received: Mutex<Vec<Received>>,
    /// Per-recipient reply codes still to use.
    script: Mutex<HashMap<String, VecDeque<u16>>>,
    /// Connections accepted.
    conns: AtomicUsize,
    /// Open now.
    open: AtomicUsize,
    /// Highest `open` seen.
    max_open: AtomicUsize,
    /// RCPT commands seen (any answer).
    rcpt_seen: AtomicUsize,
    /// Stop.
    stop: AtomicBool,
    /// First word of the greeting.
    greeting_name: Mutex<String>,
    /// Hold the reply to the final dot this long.
    data_delay: Mutex<Duration>,
    /// Greeting code (220 unless set: 421 / 554 refuse the session).
    greeting_code: AtomicUsize,
    /// Leave 8BITMIME out of the EHLO reply.
    no_8bitmime: AtomicBool,
}

/// A running sink.
pub(crate) struct Sink {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Listen on `ip:0` (any loopback address, e.g. "127.0.0.2").
    pub(crate) fn start(ip: &str) -> Sink {
        Sink::start_on(&format!("{ip}:0"))
    }

    /// Listen on `addr`.
    pub(crate) fn start_on(addr: &str) -> Sink {
        let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("sink bind {addr}: {e}"));
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("local_addr");
        let state = Arc::new(State::default());
        *state.greeting_name.lock().unwrap() = "sink.test".into();
        state.greeting_code.store(220, Ordering::Release);
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            while !st.stop.load(Ordering::Acquire) {
                match l.accept() {
                    Ok((s, _)) => {
                        let n = st.conns.fetch_add(1, Ordering::AcqRel) + 1;
                        let open = st.open.fetch_add(1, Ordering::AcqRel) + 1;
                        st.max_open.fetch_max(open, Ordering::AcqRel);
                        let st2 = Arc::clone(&st);
                        std::thread::spawn(move || {
                            let _ = serve(&st2, s, n);
                            st2.open.fetch_sub(1, Ordering::AcqRel);
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
        Sink { addr, state, thread: Some(thread) }
    }

    /// Port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answer RCPT for `rcpt` with these codes, in order, then 250.
    pub(crate) fn script(&self, rcpt: &str, codes: &[u16]) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(rcpt.to_ascii_lowercase(), codes.iter().copied().collect());
    }

    /// First word of the greeting.
    pub(crate) fn set_greeting_name(&self, name: &str) {
        *self.state.greeting_name.lock().unwrap() = name.into();
    }

    /// Answer the greeting with `code` (e.g. 421, 554) instead of 220.
    pub(crate) fn set_greeting_code(&self, code: u16) {
        self.state.greeting_code.store(usize::from(code), Ordering::Release);
    }

    /// Do not offer 8BITMIME.
    pub(crate) fn without_8bitmime(&self) {
        self.state.no_8bitmime.store(true, Ordering::Release);
    }

    /// Hold each reply to the final dot.
    pub(crate) fn set_data_delay(&self, d: Duration) {
        *self.state.data_delay.lock().unwrap() = d;
    }

    /// Messages accepted so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.state.conns.load(Ordering::Acquire)
    }

    /// Most connections open at once.
    pub(crate) fn max_concurrent(&self) -> usize {
        self.state.max_open.load(Ordering::Acquire)
    }

    /// RCPT commands seen.
    pub(crate) fn rcpt_seen(&self) -> usize {
        self.state.rcpt_seen.load(Ordering::Acquire)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Address between `<` and `>` in a MAIL/RCPT line.
fn path_of(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}

/// Serve one connection.
fn serve(st: &State, s: TcpStream, conn: usize) -> std::io::Result<()> {
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let name = st.greeting_name.lock().unwrap().clone();
    let code = st.greeting_code.load(Ordering::Acquire);
    if code != 220 {
        w.write_all(format!("{code} {name} not now\r\n").as_bytes())?;
        // Wait for QUIT (or EOF), then close.
        let mut line = Vec::new();
        let _ = r.read_until(b'\n', &mut line);
        let _ = w.write_all(b"221 bye\r\n");
        return Ok(());
    }
    w.write_all(format!("220 {name} ESMTP test sink\r\n").as_bytes())?;
    let mut mail: Option<(String, String)> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let eight =
                if st.no_8bitmime.load(Ordering::Acquire) { "" } else { "250-8BITMIME\r\n" };
            format!(
                "250-{name}\r\n250-PIPELINING\r\n{eight}250-SMTPUTF8\r\n\
                 250-SIZE 100000000\r\n250 ENHANCEDSTATUSCODES\r\n"
            )
        } else if upper.starts_with("HELO") {
            format!("250 {name}\r\n")
        } else if upper.starts_with("MAIL FROM:") {
            mail = Some((path_of(&text), text.clone()));
            rcpts.clear();
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            st.rcpt_seen.fetch_add(1, Ordering::AcqRel);
            let addr = path_of(&text);
            let code = st
                .script
                .lock()
                .unwrap()
                .get_mut(&addr.to_ascii_lowercase())
                .and_then(VecDeque::pop_front)
                .unwrap_or(250);
            match code {
                250 => {
                    rcpts.push(addr);
                    "250 2.1.5 ok\r\n".into()
                }
                c if c >= 500 => format!("{c} 5.1.1 <{addr}>: user unknown here\r\n"),
                c => format!("{c} 4.7.1 <{addr}>: try again later\r\n"),
            }
        } else if upper == "DATA" {
            if mail.is_none() || rcpts.is_empty() {
                "554 5.5.1 no valid recipients\r\n".into()
            } else {
                w.write_all(b"354 go ahead\r\n")?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    let n = r.read_until(b'\n', &mut line)?;
                    if n == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    let body = if line.starts_with(b".") { &line[1..] } else { &line[..] };
                    data.extend_from_slice(body);
                }
                let delay = *st.data_delay.lock().unwrap();
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let (from, mail_line) = mail.take().unwrap_or_default();
                st.received.lock().unwrap().push(Received {
                    conn,
                    mail_from: from,
                    mail_line,
                    rcpts: std::mem::take(&mut rcpts),
                    data,
                });
                "250 2.0.0 queued by sink\r\n".into()
            }
        } else if upper == "RSET" {
            mail = None;
            rcpts.clear();
            "250 2.0.0 ok\r\n".into()
        } else if upper == "NOOP" {
            "250 2.0.0 ok\r\n".into()
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            "500 5.5.2 what?\r\n".into()
        };
        w.write_all(reply.as_bytes())?;
    }
}
