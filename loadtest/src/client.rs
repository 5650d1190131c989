//! The client side of one SMTP connection, as `source` drives it.
//!
//! Blocking `std::net` socket, one per session thread, plaintext or TLS (`tls::Stream`;
//! `start_tls` upgrades after a STARTTLS 220, `connect_implicit_tls` handshakes at once).
//! Replies are read with a bounded line
//! length and a bounded number of continuation lines, so a misbehaving server cannot make
//! us buffer without limit (RFC 5321 §4.2.1 multi-line replies, §4.5.3.1.5 reply line
//! length).
//!
//! SECURITY: the server is trusted only to be on loopback (see `target.rs`); its replies are
//! parsed defensively and never echoed unescaped.

use std::fmt;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::tls::{ClientTls, Negotiated, Stream, tls_error_key};

/// Longest reply line we accept, in octets including CRLF (RFC 5321 says 512).
const MAX_REPLY_LINE_BYTES: u64 = 4096;
/// Most lines one multi-line reply may have (EHLO replies are the longest in practice).
const MAX_REPLY_LINES: usize = 100;
/// Read buffer size per connection, in bytes.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Read buffer size of `connect_small`, in bytes (an EHLO reply fits).
const SMALL_READ_BUFFER_BYTES: usize = 1024;

/// What went wrong on a connection; every variant closes it.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// `connect()` failed (refused, timed out, ...).
    Connect(io::Error),
    /// A read or write failed, or timed out.
    Io(io::Error),
    /// The server closed the connection where a reply was due.
    Closed,
    /// A reply line was not `ddd[ -]text` or exceeded our bounds.
    Malformed,
    /// The server sent bytes after its STARTTLS 220, before the handshake (it must not:
    /// RFC 3207 §5, the CVE-2011-0411 class); the connection is dropped.
    DataAfterStartTls,
}

impl ClientError {
    /// Short stable key for the error table ("connect: ConnectionRefused", "io: TimedOut").
    pub(crate) fn key(&self) -> String {
        if let ClientError::Io(e) = self
            && let Some(key) = tls_error_key(e)
        {
            return key;
        }
        match self {
            ClientError::Connect(e) => format!("connect: {:?}", e.kind()),
            // A socket read/write timeout shows up as WouldBlock on Unix.
            ClientError::Io(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                "io: timeout".to_owned()
            }
            ClientError::Io(e) => format!("io: {:?}", e.kind()),
            ClientError::Closed => "closed by server".to_owned(),
            ClientError::Malformed => "malformed reply".to_owned(),
            ClientError::DataAfterStartTls => "data after STARTTLS 220".to_owned(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// One reply: the code of its last line, and (when asked for) the text of every line.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// Three-digit reply code (RFC 5321 §4.2); the same on every line of a valid reply.
    pub(crate) code: u16,
}

impl Reply {
    /// 2yz: positive completion.
    pub(crate) fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// A connected SMTP client socket.
pub(crate) struct Connection {
    /// Buffered reader over the socket; writes go to `reader.get_mut()` directly.
    reader: BufReader<Stream>,
    /// Scratch for one reply line; cleared before each use.
    line: Vec<u8>,
}

impl Connection {
    /// Connect with `timeout` for connect, each read and each write.
    pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, ClientError> {
        Self::connect_with_buffer(addr, timeout, READ_BUFFER_BYTES)
    }

    fn connect_with_buffer(
        addr: SocketAddr,
        timeout: Duration,
        buffer: usize,
    ) -> Result<Self, ClientError> {
        Ok(Self::with_stream(Stream::Plain(tcp_connect(addr, timeout)?), buffer))
    }

    fn with_stream(stream: Stream, buffer: usize) -> Self {
        Connection {
            reader: BufReader::with_capacity(buffer, stream),
            line: Vec::with_capacity(buffer.min(512)),
        }
    }

    /// Connect and run the TLS handshake at once (implicit TLS, RFC 8314); the greeting
    /// comes next.
    pub(crate) fn connect_implicit_tls(
        addr: SocketAddr,
        timeout: Duration,
        tls: &ClientTls,
    ) -> Result<(Self, Negotiated), ClientError> {
        let tcp = tcp_connect(addr, timeout)?;
        let (stream, negotiated) = tls.handshake(tcp).map_err(ClientError::Io)?;
        Ok((Self::with_stream(stream, READ_BUFFER_BYTES), negotiated))
    }

    /// After the server's `220` to STARTTLS: run the handshake on the same socket. Any
    /// byte the server sent after that 220 is an error (it would be read as if it came
    /// over TLS).
    pub(crate) fn start_tls(self, tls: &ClientTls) -> Result<(Self, Negotiated), ClientError> {
        if !self.reader.buffer().is_empty() {
            return Err(ClientError::DataAfterStartTls);
        }
        let buffer = self.reader.capacity();
        let Stream::Plain(tcp) = self.reader.into_inner() else {
            // Already TLS: STARTTLS inside TLS is refused by servers; nothing to upgrade.
            return Err(ClientError::Malformed);
        };
        let (stream, negotiated) = tls.handshake(tcp).map_err(ClientError::Io)?;
        Ok((Self::with_stream(stream, buffer), negotiated))
    }

    /// As `connect`, with a small read buffer: for `idle`, which holds thousands.
    pub(crate) fn connect_small(addr: SocketAddr, timeout: Duration) -> Result<Self, ClientError> {
        Self::connect_with_buffer(addr, timeout, SMALL_READ_BUFFER_BYTES)
    }

    /// Write all of `bytes`.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        if stream.is_tls() {
            // rustls may still hold records: push them out before waiting for a reply.
            stream.flush()?;
        }
        Ok(())
    }

    /// Read one complete reply. If `lines` is given, each line's text (after `ddd-`/`ddd `)
    /// is pushed to it.
    pub(crate) fn read_reply(
        &mut self,
        mut lines: Option<&mut Vec<String>>,
    ) -> Result<Reply, ClientError> {
        for _ in 0..MAX_REPLY_LINES {
            self.line.clear();
            let n =
                (&mut self.reader).take(MAX_REPLY_LINE_BYTES).read_until(b'\n', &mut self.line)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            let line = self.line.as_slice();
            if !line.ends_with(b"\n") || line.len() < 4 {
                return Err(ClientError::Malformed);
            }
            let code = parse_code(&line[..3]).ok_or(ClientError::Malformed)?;
            let text = trim_crlf(line.get(4..).unwrap_or_default());
            if let Some(out) = lines.as_deref_mut() {
                out.push(String::from_utf8_lossy(text).into_owned());
            }
            match line[3] {
                b' ' | b'\r' | b'\n' => return Ok(Reply { code }),
                b'-' => continue,
                _ => return Err(ClientError::Malformed),
            }
        }
        Err(ClientError::Malformed)
    }
}

/// TCP connect with `timeout` for the connect, each read and each write; Nagle off.
fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ClientError> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(ClientError::Connect)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Parse three ASCII digits 2..5 followed by two digits into a reply code.
fn parse_code(d: &[u8]) -> Option<u16> {
    if d.len() != 3 || !d.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&d[0]) {
        return None;
    }
    Some(d.iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0')))
}

/// `text` without a trailing CRLF or LF.
fn trim_crlf(text: &[u8]) -> &[u8] {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    text.strip_suffix(b"\r").unwrap_or(text)
}

/// True if an EHLO reply's lines (as returned by `read_reply`) advertise `keyword`.
pub(crate) fn advertises(ehlo_lines: &[String], keyword: &str) -> bool {
    // The first line is the greeting domain, not a keyword (RFC 5321 §4.1.1.1).
    ehlo_lines
        .iter()
        .skip(1)
        .any(|l| l.split_ascii_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case(keyword)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let cases: &[(&[u8], Option<u16>)] = &[
            (b"250", Some(250)),
            (b"354", Some(354)),
            (b"554", Some(554)),
            (b"199", None),
            (b"600", None),
            (b"2a0", None),
            (b"25", None),
        ];
        for (d, want) in cases {
            assert_eq!(parse_code(d), *want, "{d:?}");
        }
    }

    #[test]
    fn ehlo_keywords() {
        let lines: Vec<String> =
            ["mx.example", "PIPELINING", "SIZE 10240000", "8BITMIME"].map(String::from).to_vec();
        assert!(advertises(&lines, "pipelining"));
        assert!(advertises(&lines, "SIZE"));
        assert!(!advertises(&lines, "CHUNKING"));
        assert!(!advertises(&lines, "mx.example"));
    }
}
