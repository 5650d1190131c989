//! The blocking driver of the relay's own sans-IO SMTP client (`smtp::client::
//! ClientSession`): one connection, one message, QUIT. There is no second SMTP
//! implementation: every command, reply, STARTTLS and AUTH decision is the session's (the
//! one `deliver::outbound` drives on the relay's mio loop); this file only moves bytes
//! between it and a socket, as the session's contract asks:
//!
//! ```text
//! loop: poll_event  -> Ready: send(job) the first time, quit() after
//!                      StartTls: handshake (rustls ClientConnection over the TcpStream,
//!                                complete_io until done) -> tls_established / tls_failed
//!       poll_transmit -> write_all (commands, then the content in 64 KiB pieces)
//!       read (timeout = poll_timeout - now) -> handle_input | handle_close | handle_timeout
//! ```
//!
//! After the handshake the stream is a `rustls::StreamOwned` (blocking reads and writes
//! through TLS); `close_notify` is sent at the end.
//!
//! TRUST: the server is untrusted; the session bounds and checks its replies. Socket time
//! limits follow the session's deadlines (a stalled server ends with `Timeout`).
//!
//! STANDARDS: RFC 5321, RFC 3207 (STARTTLS), RFC 4954 (AUTH), through `smtp::client`.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};

use super::tls::{client_config, server_name};
use super::transport::{SendError, SendReport, SmtpServer};
#[cfg(test)]
use crate::smtp::client::Stage;
use crate::smtp::client::{
    ClientAuth, ClientConfig, ClientSession, Event, Job, JobRecipient, Timeouts, TlsPolicy,
};

/// Read buffer size.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The socket, before or after STARTTLS.
enum Stream {
    /// Plaintext.
    Plain(TcpStream),
    /// After the handshake.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only while switching (never read or written).
    Switching,
}

impl Stream {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(s) => Some(s.get_ref()),
            Stream::Switching => None,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Switching => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf),
            Stream::Tls(s) => s.write_all(buf).and_then(|()| s.flush()),
            Stream::Switching => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Run the TLS handshake on the plaintext socket.
    fn start_tls(&mut self, server: &SmtpServer) -> Result<(), String> {
        let Stream::Plain(mut tcp) = std::mem::replace(self, Stream::Switching) else {
            return Err("STARTTLS twice".into());
        };
        let cfg = client_config(server.ca_file.as_deref()).map_err(|e| e.to_string())?;
        let name = server_name(&server.host).map_err(|e| e.to_string())?;
        let mut conn = ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        *self = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        Ok(())
    }

    /// Send TLS close_notify (best effort) before the socket closes.
    fn finish(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

/// The session settings for `server`.
fn session_config(server: &SmtpServer) -> ClientConfig {
    let t = server.timeout;
    ClientConfig {
        helo_name: server.helo_name.clone(),
        timeouts: Timeouts {
            greeting: t,
            command: t,
            mail: t,
            rcpt: t,
            data_init: t,
            data_block: t,
            data_term: t,
        },
        max_messages_per_connection: 1,
        tls: if server.starttls { TlsPolicy::Verify } else { TlsPolicy::None },
        tls_capable: server.starttls,
        auth: server
            .auth
            .as_ref()
            .map(|(user, password)| ClientAuth { user: user.clone(), password: password.clone() }),
        ..ClientConfig::default()
    }
}

/// The envelope for `content`.
fn job(sender: &str, recipients: &[String], content: &[u8]) -> Job {
    Job {
        reverse_path: sender.to_owned(),
        recipients: recipients
            .iter()
            .map(|r| JobRecipient { forward_path: r.clone(), ..JobRecipient::default() })
            .collect(),
        body_8bit: content.iter().any(|b| *b > 127),
        smtputf8: false,
        size: content.len() as u64,
        ret: None,
        envid: None,
    }
}

/// Connect to `server`, trying each address it resolves to.
fn connect(server: &SmtpServer, addr: &str) -> Result<TcpStream, SendError> {
    let err = |source| SendError::Connect { addr: addr.to_owned(), source };
    let host = server.host.trim_start_matches('[').trim_end_matches(']');
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in (host, server.port).to_socket_addrs().map_err(err)? {
        match TcpStream::connect_timeout(&a, server.timeout) {
            Ok(s) => {
                s.set_write_timeout(Some(server.timeout)).map_err(err)?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(err(last))
}

/// Send one message: `content` from `sender` to `recipients` over a new connection.
pub(crate) fn submit(
    server: &SmtpServer,
    sender: &str,
    recipients: &[String],
    content: &[u8],
) -> Result<SendReport, SendError> {
    if recipients.is_empty() {
        return Err(SendError::NoRecipients);
    }
    let addr = format!("{}:{}", server.host, server.port);
    let mut stream = Stream::Plain(connect(server, &addr)?);
    let io_err = |source| SendError::Io { addr: addr.clone(), source };
    let mut session = ClientSession::new(Arc::new(session_config(server)), Instant::now());
    let mut pending = Some(job(sender, recipients, content));
    let mut failure: Option<SendError> = None;
    let mut outcome: Option<SendReport> = None;
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    let mut out = Vec::new();
    loop {
        while let Some(ev) = session.poll_event() {
            let now = Instant::now();
            match ev {
                Event::Ready => match pending.take() {
                    // The job has recipients and the session is ready: `send` cannot give
                    // it back.
                    Some(j) => session.send(j, now).map_err(|_| SendError::NoRecipients)?,
                    None => session.quit(now),
                },
                Event::StartTls => match stream.start_tls(server) {
                    Ok(()) => session.tls_established(Instant::now()),
                    Err(reason) => session.tls_failed(&reason),
                },
                Event::TransactionDone { mail_reply, rcpt_results, data_reply } => {
                    let mut accepted = Vec::new();
                    let mut refused = Vec::new();
                    for r in &rcpt_results {
                        let reply = r.outcome(data_reply.as_ref());
                        let addr = recipients.get(r.index).cloned().unwrap_or_default();
                        if reply.is_positive() {
                            accepted.push(addr);
                        } else {
                            refused.push((addr, reply.to_string().trim_end().to_owned()));
                        }
                    }
                    if !mail_reply.is_positive() {
                        failure =
                            Some(SendError::Refused(mail_reply.to_string().trim_end().into()));
                    } else if !refused.is_empty() {
                        failure = Some(SendError::Rejected { refused, accepted });
                    } else {
                        let reply = data_reply.map(|r| r.to_string().trim_end().to_owned());
                        outcome = Some(SendReport { accepted, reply, file: None });
                    }
                }
                Event::GreetingFailed(r) | Event::HelloFailed(r) | Event::LoopDetected(r) => {
                    failure = Some(SendError::Refused(r.to_string().trim_end().to_owned()));
                }
                Event::JobRefused(r) => failure = Some(SendError::Refused(r.to_string())),
                Event::SecurityFailed(f) => failure = Some(SendError::Security(f)),
                Event::TimedOut { stage } => failure = Some(SendError::Timeout(stage)),
                Event::Closed => {}
            }
        }
        if session.wants_write() {
            out.clear();
            session.poll_transmit(Instant::now(), content, &mut out);
            stream.write_all(&out).map_err(io_err)?;
            continue;
        }
        if session.is_closed() || !session.wants_read() {
            break;
        }
        let now = Instant::now();
        let wait = session.poll_timeout().map(|t| t.saturating_duration_since(now));
        let wait = wait.map(|w| w.max(Duration::from_millis(1)));
        if let Some(tcp) = stream.tcp() {
            tcp.set_read_timeout(wait).map_err(io_err)?;
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                if let Err(e) = session.handle_close() {
                    failure.get_or_insert(SendError::Protocol(e));
                }
            }
            Ok(n) => {
                if let Err(e) = session.handle_input(Instant::now(), &buf[..n]) {
                    failure.get_or_insert(SendError::Protocol(e));
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                session.handle_timeout(Instant::now());
                if !session.is_closed() {
                    // The socket's timer fired a little early: wait for the deadline.
                    continue;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                failure.get_or_insert(io_err(e));
                break;
            }
        }
    }
    stream.finish();
    match (outcome, failure) {
        (Some(report), None) => Ok(report),
        (_, Some(f)) => Err(f),
        (None, None) => {
            Err(SendError::Refused("the session ended before the message was sent".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// A one-connection server on loopback answering each line read with the next reply
    /// of `script` (the first entry is the greeting; `None` = say nothing, hold the line).
    fn scripted(script: Vec<Option<&'static str>>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut seen = Vec::new();
            for (i, reply) in script.into_iter().enumerate() {
                if i > 0 {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    seen.push(line.trim_end().to_owned());
                }
                match reply {
                    Some(text) => w.write_all(text.as_bytes()).unwrap(),
                    None => std::thread::sleep(Duration::from_millis(600)),
                }
            }
            seen
        });
        (port, h)
    }

    fn server(port: u16) -> SmtpServer {
        let mut s = SmtpServer::new("127.0.0.1", port);
        s.timeout = Duration::from_millis(200);
        s
    }

    #[test]
    fn lock_step_transaction_without_extensions() {
        let (port, h) = scripted(vec![
            Some("220 hi\r\n"),
            Some("250 hello\r\n"),
            Some("250 ok\r\n"),
            Some("250 ok\r\n"),
            Some("354 go\r\n"),
            Some(""), // X: y
            Some(""), // (empty line)
            Some(""), // ..dot
            Some("250 queued as 1\r\n"),
            Some("221 bye\r\n"),
        ]);
        let rcpts = ["c@d.example".to_owned()];
        let report = submit(&server(port), "a@b.example", &rcpts, b"X: y\r\n\r\n.dot\r\n").unwrap();
        assert_eq!(report.accepted, rcpts);
        assert_eq!(report.reply.as_deref(), Some("250 queued as 1"));
        let seen = h.join().unwrap();
        let want = [
            "EHLO localhost",
            "MAIL FROM:<a@b.example> ",
            "RCPT TO:<c@d.example>",
            "DATA",
            "X: y",
            "",
            "..dot",
            ".",
            "QUIT",
        ];
        assert_eq!(seen.iter().map(|s| s.trim_end()).collect::<Vec<_>>(), want.map(str::trim_end));
    }

    #[test]
    fn refusals_and_timeouts() {
        let (port, h) = scripted(vec![Some("554 go away\r\n")]);
        let e = submit(&server(port), "a@b.example", &["c@d.example".into()], b"x").unwrap_err();
        assert!(matches!(&e, SendError::Refused(r) if r.starts_with("554")), "{e:?}");
        h.join().unwrap();
        let (port, h) = scripted(vec![None]);
        let e = submit(&server(port), "a@b.example", &["c@d.example".into()], b"x").unwrap_err();
        assert!(matches!(e, SendError::Timeout(Stage::Greeting)), "{e:?}");
        h.join().unwrap();
        let e = submit(&server(1), "a@b.example", &["c@d.example".into()], b"x").unwrap_err();
        assert!(matches!(e, SendError::Connect { .. }), "{e:?}");
        // STARTTLS required but not offered: a temporary security failure, no MAIL.
        let (port, h) =
            scripted(vec![Some("220 hi\r\n"), Some("250 hello\r\n"), Some("221 bye\r\n")]);
        let e = submit(&server(port).starttls(None), "a@b.example", &["c@d.example".into()], b"x")
            .unwrap_err();
        assert!(matches!(e, SendError::Security(_)) && e.is_temporary(), "{e:?}");
        assert_eq!(h.join().unwrap(), ["EHLO localhost", "QUIT"]);
    }
}
