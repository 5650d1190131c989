//! `mailroot queue delete|bounce|hold|release ID`: the operator's queue actions, sent to
//! the running server's admin listener (`POST /api/queue/{ID}/{verb}` with the bearer
//! token of `[admin] token`), where the queue runner carries them out.
//!
//! Why through the server: the queue runner owns the schedule and every cross-off, and
//! holds `Queue/lock` while it runs; a second process changing the spool behind its back
//! could deliver a deleted message or lose a hold. When nothing answers on the admin
//! address, `cli::queue_offline` acts on the spool itself, under that same lock.
//!
//! Trust: the answer comes from our own server on the configured admin address; its
//! `result` / `error` text is printed (control characters escaped).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::admin::PATH_QUEUE;
use crate::admin::control::CLIENT_HEADER;
use crate::queue::inbox::QueueAction;
use crate::spool::QueueId;

/// Connect timeout; the read waits longer (a bounce waits for a group commit).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the answer (the server itself gives up on the runner after 15 s).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of a request.
#[derive(Debug)]
pub(super) enum Answer {
    /// 200: what the server did.
    Done(String),
    /// Any other status, with the server's words.
    Refused(u16, String),
    /// Nobody listens on the admin address (the server is not running, or its listener
    /// is elsewhere); the connect error.
    Unreachable(String),
}

/// Peer text made safe for a terminal.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `POST path` over HTTP/1.0 with the bearer token; the status and the JSON (or text)
/// answer's `result` / `error`.
pub(super) fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<Answer, String> {
    let mut s = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => return Ok(Answer::Unreachable(format!("{addr}: {e}"))),
    };
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    // Marked as a command, so the event log says `by: "command"`.
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n{auth}{CLIENT_HEADER}: \
         command\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let words = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => v["result"].as_str().or(v["error"].as_str()).unwrap_or("").to_owned(),
        Err(_) => body.trim().to_owned(),
    };
    let words = printable(&words);
    Ok(if status == 200 { Answer::Done(words) } else { Answer::Refused(status, words) })
}

/// The URL path of `verb` on `id`.
pub(super) fn path_of(verb: &str, id: QueueId) -> Option<String> {
    let action = QueueAction::from_verb(verb, id)?;
    Some(format!("{PATH_QUEUE}/{id}/{}", action.verb()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let id = QueueId(0x3_0000_0041);
        assert_eq!(path_of("hold", id).as_deref(), Some("/api/queue/0000000300000041/hold"));
        assert_eq!(path_of("flush", id), None);
        assert_eq!(printable("a\r\nb\x1b"), "a  b ");
    }
}
