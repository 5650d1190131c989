//! Clients for the end-to-end tests: `Raw`, a minimal SMTP socket for tests that must
//! control every byte on the wire (pipelining, smuggling, torn DATA, garbage), and the
//! runner for the Python `smtplib` scripts in `tests/py/`.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{IO_TIMEOUT, Server, unique};

/// One parsed SMTP reply.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// Three-digit code.
    pub(crate) code: u16,
    /// Lines without the `code[- ]` prefix.
    pub(crate) lines: Vec<String>,
}

impl Reply {
    /// All lines joined with '\n'.
    pub(crate) fn text(&self) -> String {
        self.lines.join("\n")
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// A raw SMTP client socket: the test controls every byte written.
pub(crate) struct Raw {
    /// The connection.
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connect from 127.0.0.1.
    pub(crate) fn connect(addr: SocketAddr) -> std::io::Result<Raw> {
        Raw::connect_from(Ipv4Addr::LOCALHOST, addr)
    }

    /// Connect from a chosen loopback source address.
    pub(crate) fn connect_from(src: Ipv4Addr, addr: SocketAddr) -> std::io::Result<Raw> {
        Raw::connect_from_timeout(src, addr, IO_TIMEOUT)
    }

    /// Connect from `src` with a connect timeout.
    pub(crate) fn connect_from_timeout(
        src: Ipv4Addr,
        addr: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<Raw> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
        s.connect_timeout(&addr.into(), timeout)?;
        let stream: TcpStream = s.into();
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Raw { stream, buf: Vec::new() })
    }

    /// Write all bytes; errors (peer closed) are ignored: the following read shows them.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Write all bytes, reporting failure.
    pub(crate) fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Read one line (without CRLF); None on EOF, error or timeout.
    pub(crate) fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=p).collect();
                let s = String::from_utf8_lossy(&line);
                return Some(s.trim_end_matches(['\r', '\n']).to_string());
            }
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Read one (possibly multi-line) reply; None on EOF/timeout/garbage.
    pub(crate) fn read_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            let code: u16 = line.get(..3)?.parse().ok()?;
            let sep = line.as_bytes().get(3).copied().unwrap_or(b' ');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if sep != b'-' {
                return Some(Reply { code, lines });
            }
        }
    }

    /// Send one command line (CRLF added) and read its reply.
    pub(crate) fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply().unwrap_or_else(|| panic!("no reply to {line:?}"))
    }

    /// Read until EOF (bounded by `limit`); true if the peer closed.
    pub(crate) fn wait_closed(&mut self, limit: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(Duration::from_millis(100)));
        let deadline = Instant::now() + limit;
        let mut tmp = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true, // reset counts as closed
            }
        }
        false
    }

    /// Greeting + EHLO; panics unless both succeed. Returns the EHLO reply.
    pub(crate) fn hello(&mut self) -> Reply {
        let g = self.read_reply().expect("greeting");
        assert_eq!(g.code, 220, "greeting: {g}");
        let e = self.cmd("EHLO client.test");
        assert_eq!(e.code, 250, "EHLO: {e}");
        e
    }

    /// MAIL + RCPTs + DATA + content (already dot-stuffed, must end with CRLF) + ".".
    /// Returns the final reply (or the first failing one).
    pub(crate) fn send_message(&mut self, from: &str, to: &[&str], stuffed: &[u8]) -> Reply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if r.code != 250 {
            return r;
        }
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            if r.code != 250 {
                return r;
            }
        }
        let r = self.cmd("DATA");
        if r.code != 354 {
            return r;
        }
        self.send(stuffed);
        self.send(b".\r\n");
        self.read_reply().expect("reply to end of data")
    }
}

/// RFC 5321 §4.5.2 transparency, for `Raw` senders (independent of the server's code).
pub(crate) fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    let mut bol = true;
    for &b in content {
        if bol && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        bol = b == b'\n';
    }
    out
}

/// Path of a helper script in `tests/py/`.
pub(crate) fn py_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(name)
}

/// Run `python3 tests/py/<script> args...`; parse its stdout as JSON. Panics on failure.
pub(crate) fn run_py(script: &str, args: &[String]) -> Value {
    let out = Command::new("python3")
        .arg(py_script(script))
        .args(args)
        .output()
        .expect("run python3 (is it installed?)");
    super::assert_success(&out, &format!("python3 {script} {args:?}"));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("python3 {script}: bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// `[code, text]` pair from the Python scripts -> (code, text).
pub(crate) fn code_text(v: &Value) -> (u16, String) {
    let code = v.get(0).and_then(Value::as_u64).unwrap_or_else(|| panic!("no code in {v}"));
    let text = v.get(1).and_then(Value::as_str).unwrap_or("").to_string();
    (u16::try_from(code).expect("code fits u16"), text)
}

/// Send one message with smtplib (`tests/py/send.py`); body is written to a file first.
pub(crate) struct PySend<'a> {
    /// Target server.
    pub(crate) server: &'a Server,
    /// Envelope sender.
    pub(crate) from: String,
    /// Envelope recipients.
    pub(crate) to: Vec<String>,
    /// Message content (should end with CRLF, else smtplib appends one).
    pub(crate) body: Vec<u8>,
    /// Extra MAIL parameters, e.g. `SIZE=123`.
    pub(crate) mail_opts: Vec<String>,
    /// Source address to bind.
    pub(crate) source: Option<Ipv4Addr>,
}

impl PySend<'_> {
    /// Run it; returns the script's JSON report.
    pub(crate) fn run(&self) -> Value {
        let body_path = self.server.dir.path().join(format!("body-{}.eml", unique()));
        fs::write(&body_path, &self.body).expect("write body");
        let mut args = vec![
            "--port".to_string(),
            self.server.port.to_string(),
            "--from".to_string(),
            self.from.clone(),
            "--body-file".to_string(),
            body_path.display().to_string(),
        ];
        for t in &self.to {
            args.push("--to".into());
            args.push(t.clone());
        }
        for o in &self.mail_opts {
            args.push(format!("--mail-opt={o}"));
        }
        if let Some(s) = self.source {
            args.push("--source".into());
            args.push(s.to_string());
        }
        run_py("send.py", &args)
    }
}
