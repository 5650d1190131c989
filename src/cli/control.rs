//! `mailroot pause|resume|stop|start|drain|reload [--site S]`: POSTs to the running server's admin
//! listener (address and token from the configuration, as `mailroot stats` reads them),
//! marked `X-Mailroot-Client: command` so the event log says `by: "command"`.
//!
//! Trust: the answer comes from our own server; it is only printed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::admin::control::{
    CLIENT_HEADER, PATH_DRAIN, PATH_PAUSE, PATH_RELOAD, PATH_RESUME, PATH_SITES,
};

/// Connect timeout, and read timeout beyond the drain's own.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Pause one site or all.
    Pause(Option<String>),
    /// Resume one site or all.
    Resume(Option<String>),
    /// Stop one site (close its listeners).
    Stop(String),
    /// Start a stopped site.
    Start(String),
    /// Drain with a timeout in seconds.
    Drain(u64),
    /// Reload the configuration.
    Reload,
}

impl Action {
    /// The request path (and query).
    pub(super) fn path(&self) -> String {
        match self {
            Action::Pause(Some(s)) => format!("{PATH_SITES}/{s}/pause"),
            Action::Resume(Some(s)) => format!("{PATH_SITES}/{s}/resume"),
            Action::Stop(s) => format!("{PATH_SITES}/{s}/stop"),
            Action::Start(s) => format!("{PATH_SITES}/{s}/start"),
            Action::Pause(None) => PATH_PAUSE.to_owned(),
            Action::Resume(None) => PATH_RESUME.to_owned(),
            Action::Drain(secs) => format!("{PATH_DRAIN}?timeout={secs}"),
            Action::Reload => PATH_RELOAD.to_owned(),
        }
    }

    /// How long the answer may take.
    fn read_timeout(&self) -> Duration {
        match self {
            Action::Drain(secs) => Duration::from_secs(*secs) + ADMIN_TIMEOUT,
            _ => ADMIN_TIMEOUT,
        }
    }
}

/// POST `action` and return the HTTP status and the JSON body.
pub(super) fn send(
    addr: SocketAddr,
    token: Option<&str>,
    action: &Action,
) -> Result<(u16, Value), String> {
    let mut s = TcpStream::connect_timeout(&addr, ADMIN_TIMEOUT)
        .map_err(|e| format!("cannot connect to the admin listener {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(action.read_timeout()));
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let path = action.path();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}{CLIENT_HEADER}: command\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("malformed HTTP status line")?;
    let json = serde_json::from_str(body).unwrap_or(Value::String(body.trim().to_owned()));
    Ok((status, json))
}

/// The lines to print for a successful answer.
pub(super) fn describe(action: &Action, body: &Value) -> String {
    let names = |k: &str| -> Vec<String> {
        body[k].as_array().map_or(Vec::new(), |a| {
            a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        })
    };
    match action {
        Action::Pause(_) | Action::Resume(_) | Action::Stop(_) | Action::Start(_) => {
            let mut out = String::new();
            for s in body["sites"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let listen: Vec<&str> = s["listen"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                out += &format!(
                    "{} {} {}\n",
                    s["name"].as_str().unwrap_or("?"),
                    s["state"].as_str().unwrap_or("?"),
                    listen.join(",")
                );
            }
            out
        }
        Action::Drain(_) => "drained: the queue is empty, the server is stopping\n".to_owned(),
        Action::Reload => {
            let mut out = String::new();
            let changes = body["changes"].as_array().map(Vec::as_slice).unwrap_or_default();
            out += &format!("reloaded: {} change(s)\n", changes.len());
            let show = |v: &Value| v.as_str().map_or_else(|| "(none)".to_owned(), str::to_owned);
            for c in changes {
                out += &format!(
                    "  {}: {} -> {}\n",
                    c["key"].as_str().unwrap_or("?"),
                    show(&c["old"]),
                    show(&c["new"])
                );
            }
            for k in names("restart_needed") {
                out += &format!("  {k}: needs a restart to take effect\n");
            }
            out
        }
    }
}

/// The error text of a refused answer.
pub(super) fn refusal(status: u16, body: &Value) -> String {
    let why = body["error"].as_str().map_or_else(|| body.to_string(), str::to_owned);
    format!("refused ({status}): {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases = [
            (Action::Pause(None), "/api/pause"),
            (Action::Resume(None), "/api/resume"),
            (Action::Pause(Some("a".into())), "/api/sites/a/pause"),
            (Action::Resume(Some("a".into())), "/api/sites/a/resume"),
            (Action::Stop("a".into()), "/api/sites/a/stop"),
            (Action::Start("a".into()), "/api/sites/a/start"),
            (Action::Drain(5), "/api/drain?timeout=5"),
            (Action::Reload, "/api/reload"),
        ];
        for (a, want) in cases {
            assert_eq!(a.path(), want);
        }
    }

    #[test]
    fn reload_text() {
        let body = serde_json::json!({
            "ok": true,
            "changes": [{"key": "relay.allow", "old": "[]", "new": "[\"10.0.0.0/8\"]"}],
            "restart_needed": ["workers"],
        });
        let t = describe(&Action::Reload, &body);
        assert_eq!(
            t,
            "reloaded: 1 change(s)\n  relay.allow: [] -> [\"10.0.0.0/8\"]\n  workers: needs a restart to take effect\n"
        );
        assert_eq!(
            refusal(401, &serde_json::json!({"error": "bearer token required"})),
            "refused (401): bearer token required"
        );
    }
}
