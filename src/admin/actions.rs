//! The admin listener's state-changing requests (queue actions, flush) and the
//! per-message view.
//!
//! WHAT: `POST /api/queue/{id}/{delete|bounce|hold|release}` and `POST /api/flush` become
//! a `queue::inbox::QueueRequest` on the queue runner's channel; the runner carries it out
//! (it owns the schedule and the cross-offs) and answers through a one-slot reply channel,
//! waited for at most [`REPLY_TIMEOUT`]. Answers are JSON: `{"ok": true, "action",
//! "id", "result"}` (200), or `{"ok": false, "action", "id", "error"}` with 404 (no such
//! queued message), 409 (a delivery attempt is in flight: try again), 500 (could not be
//! done), 503 (the runner did not answer). `GET /api/queue/{id}` is the message's
//! details (`spool::listing::detail`).
//!
//! SECURITY: every POST must carry `Authorization: Bearer <[admin] token>` (compared in
//! constant time); without a configured token every POST is refused with 401, so a
//! relay is never changed by whoever merely reaches its loopback port. Browsers cannot
//! send that header cross-site without a CORS preflight we never answer, so no CSRF.

use std::net::SocketAddr;
use std::time::Duration;

use tiny_http::Request;

use super::{Ctx, JSON, PATH_FLUSH, PATH_QUEUE, TEXT};
use crate::config::AdminConfig;
use crate::eventlog::By;
use crate::queue::inbox::{ActionOutcome, QueueAction, QueueRequest};
use crate::spool::QueueId;
use crate::spool::listing;

/// Longest wait for the queue runner's answer (a bounce waits for one group commit).
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// What a POST must carry (`[admin] token`, `allow_unauthenticated_loopback_control`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PostAuth {
    /// `Authorization: Bearer <this>`.
    Token(String),
    /// Nothing: a loopback listener without a token whose config allows it.
    Open,
    /// No token configured and no permission: every POST is refused.
    Refused,
}

impl PostAuth {
    /// The rule for `cfg` on a listener bound to `addr`.
    pub(super) fn of(cfg: &AdminConfig, addr: SocketAddr) -> PostAuth {
        match &cfg.token {
            Some(t) => PostAuth::Token(t.clone()),
            None if cfg.allow_unauthenticated_loopback_control && addr.ip().is_loopback() => {
                PostAuth::Open
            }
            None => PostAuth::Refused,
        }
    }
}

/// `a == b` without an early exit on the first difference (the token check).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Does `req` carry `Authorization: Bearer <token>`?
pub(super) fn authorized(req: &Request, token: &str) -> bool {
    req.headers().iter().filter(|h| h.field.equiv("Authorization")).any(|h| {
        h.value
            .as_str()
            .strip_prefix("Bearer ")
            .is_some_and(|t| same_bytes(t.as_bytes(), token.as_bytes()))
    })
}

/// A JSON answer.
fn answer(status: u16, v: &serde_json::Value) -> (u16, &'static str, String) {
    (status, JSON, format!("{v}\n"))
}

/// `POST path`.
pub(super) fn post(ctx: &Ctx, req: &Request, path: &str) -> (u16, &'static str, String) {
    match &ctx.post_auth {
        PostAuth::Token(token) if !authorized(req, token) => {
            return (401, TEXT, "bearer token required\n".into());
        }
        PostAuth::Token(_) | PostAuth::Open => {}
        PostAuth::Refused => {
            let why = "state-changing requests need [admin] token in the config\n";
            return (401, TEXT, why.into());
        }
    }
    let action = if path == PATH_FLUSH {
        QueueAction::FlushAll
    } else {
        match parse_action(path) {
            Ok(a) => a,
            Err(answer) => return answer,
        }
    };
    let (verb, id) = (action.verb(), action.id().map(|i| i.to_string()));
    let (tx, rx) = crossbeam_channel::bounded(1);
    let request = QueueRequest {
        action,
        by: By::AdminApi,
        reply: Box::new(move |outcome| {
            let _ = tx.send(outcome);
        }),
    };
    if ctx.requests.send(request).is_err() {
        let v = serde_json::json!({"ok": false, "action": verb, "id": id,
                                   "error": "the queue runner has stopped"});
        return answer(503, &v);
    }
    let (status, key, text) = match rx.recv_timeout(REPLY_TIMEOUT) {
        Ok(ActionOutcome::Done(t)) => (200, "result", t),
        Ok(ActionOutcome::NotFound) => (404, "error", "no queued message with that id".into()),
        Ok(ActionOutcome::Busy(t)) => (409, "error", t),
        Ok(ActionOutcome::Failed(t)) => (500, "error", t),
        Err(_) => (503, "error", "the queue runner did not answer in time".into()),
    };
    let mut v = serde_json::json!({"ok": status == 200, "action": verb, "id": id});
    v[key] = serde_json::Value::String(text);
    answer(status, &v)
}

/// `/api/queue/{id}/{verb}` -> the action, or the error answer.
fn parse_action(path: &str) -> Result<QueueAction, (u16, &'static str, String)> {
    let rest = path.strip_prefix(PATH_QUEUE).and_then(|r| r.strip_prefix('/'));
    let Some((id, verb)) = rest.and_then(|r| r.split_once('/')) else {
        return Err((
            404,
            TEXT,
            "POST /api/queue/{id}/delete|bounce|hold|release or /api/flush\n".into(),
        ));
    };
    let Ok(id) = id.parse::<QueueId>() else {
        return Err((400, TEXT, "not a queue id (16 hex digits)\n".into()));
    };
    QueueAction::from_verb(verb, id)
        .ok_or_else(|| (404, TEXT, "unknown action: delete, bounce, hold or release\n".into()))
}

/// `GET /api/queue/{id}`.
pub(super) fn detail(ctx: &Ctx, path: &str) -> (u16, &'static str, String) {
    let id = path.strip_prefix(PATH_QUEUE).and_then(|r| r.strip_prefix('/')).unwrap_or("");
    let Ok(id) = id.parse::<QueueId>() else {
        return (400, TEXT, "not a queue id (16 hex digits)\n".into());
    };
    match listing::detail(&ctx.queue_dir, id) {
        Ok(Some(d)) => match serde_json::to_string_pretty(&d) {
            Ok(text) => (200, JSON, text + "\n"),
            Err(e) => (500, TEXT, format!("{e}\n")),
        },
        Ok(None) => (404, TEXT, "no queued message with that id\n".into()),
        Err(e) => (500, TEXT, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        // (given, configured, same)
        let cases: &[(&str, &str, bool)] = &[
            ("s3cret", "s3cret", true),
            ("s3cre", "s3cret", false),
            ("s3cret!", "s3cret", false),
            ("S3cret", "s3cret", false),
            ("", "s3cret", false),
        ];
        for &(a, b, want) in cases {
            assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), want, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn post_rules() {
        let lo: SocketAddr = ([127, 0, 0, 1], 8025).into();
        let wide: SocketAddr = ([0, 0, 0, 0], 8025).into();
        let cfg = |token: Option<&str>, allow| AdminConfig {
            listen: Some(lo),
            token: token.map(str::to_owned),
            allow_unauthenticated_loopback_control: allow,
        };
        // (config, address, rule)
        let cases = [
            (cfg(Some("t"), false), lo, PostAuth::Token("t".into())),
            (cfg(Some("t"), true), lo, PostAuth::Token("t".into())),
            (cfg(None, false), lo, PostAuth::Refused),
            (cfg(None, true), lo, PostAuth::Open),
            (cfg(None, true), wide, PostAuth::Refused),
        ];
        for (c, addr, want) in cases {
            assert_eq!(PostAuth::of(&c, addr), want, "{c:?} on {addr}");
        }
    }

    #[test]
    fn action_paths() {
        let id = "0000000300000041";
        // (path, status of the error, or None when it parses)
        let cases: &[(String, Option<u16>)] = &[
            (format!("/api/queue/{id}/hold"), None),
            (format!("/api/queue/{id}/release"), None),
            (format!("/api/queue/{id}/delete"), None),
            (format!("/api/queue/{id}/bounce"), None),
            (format!("/api/queue/{id}/frobnicate"), Some(404)),
            (format!("/api/queue/{id}"), Some(404)),
            ("/api/queue/xyz/hold".into(), Some(400)),
            ("/api/queue".into(), Some(404)),
        ];
        for (path, want) in cases {
            assert_eq!(parse_action(path).err().map(|e| e.0), *want, "{path}");
        }
    }
}
