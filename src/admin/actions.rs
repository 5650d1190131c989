//! The admin listener's queue actions and the per-message view.
//!
//! WHAT: `POST /api/queue/{id}/{delete|bounce|hold|release}` and `POST /api/flush` become
//! a `queue::inbox::QueueRequest` on the queue runner's channel; the runner carries it out
//! (it owns the schedule and the cross-offs), writes it to the event log, and answers
//! through a one-slot reply channel, waited for at most [`REPLY_TIMEOUT`]. Answers are
//! JSON: `{"ok": true, "action", "id", "result"}` (200), or `{"ok": false, "action", "id",
//! "error"}` with 404 (no such queued message), 409 (a delivery attempt is in flight: try
//! again), 500 (could not be done), 503 (the runner did not answer).
//! `GET /api/queue/{id}` is the message's details (`spool::show`, the JSON of
//! `mailroot queue show ID --json`).
//!
//! SECURITY: the token rules are `admin::auth`'s, checked before anything here runs
//! (every POST needs the bearer token when one is set; a browser cannot send that header
//! cross-site without a CORS preflight we never answer, so no CSRF).

use std::time::Duration;

use super::{Ctx, JSON, PATH_FLUSH, PATH_QUEUE, TEXT};
use crate::eventlog::By;
use crate::queue::inbox::{ActionOutcome, QueueAction, QueueRequest};
use crate::spool::QueueId;
use crate::spool::show;

/// Longest wait for the queue runner's answer (a bounce waits for one group commit).
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// A status and a JSON body.
type Answer = (u16, String);

/// An error answer.
fn error(status: u16, why: &str) -> Answer {
    (status, serde_json::json!({"ok": false, "error": why}).to_string())
}

/// Is `path` a queue action? `None`: not ours; `Some(Err)`: ours but malformed.
pub(super) fn parse(path: &str) -> Option<Result<QueueAction, Answer>> {
    if path == PATH_FLUSH {
        return Some(Ok(QueueAction::FlushAll));
    }
    let rest = path.strip_prefix(PATH_QUEUE)?.strip_prefix('/')?;
    let Some((id, verb)) = rest.split_once('/') else {
        return Some(Err(error(404, "POST /api/queue/{id}/delete|bounce|hold|release")));
    };
    let Ok(id) = id.parse::<QueueId>() else {
        return Some(Err(error(400, "not a queue id (16 hex digits)")));
    };
    Some(
        QueueAction::from_verb(verb, id)
            .ok_or_else(|| error(404, "unknown action: delete, bounce, hold or release")),
    )
}

/// Hand `action` to the queue runner and wait for its answer.
pub(super) fn post(ctx: &Ctx, action: QueueAction, by: By) -> Answer {
    let (verb, id) = (action.verb(), action.id().map(|i| i.to_string()));
    let (tx, rx) = crossbeam_channel::bounded(1);
    let request = QueueRequest {
        action,
        by,
        reply: Box::new(move |outcome| {
            let _ = tx.send(outcome);
        }),
    };
    let (status, key, text) = if ctx.requests.send(request).is_err() {
        (503, "error", "the queue runner has stopped".to_owned())
    } else {
        match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(ActionOutcome::Done(t)) => (200, "result", t),
            Ok(ActionOutcome::NotFound) => (404, "error", "no queued message with that id".into()),
            Ok(ActionOutcome::Busy(t)) => (409, "error", t),
            Ok(ActionOutcome::Failed(t)) => (500, "error", t),
            Err(_) => (503, "error", "the queue runner did not answer in time".into()),
        }
    };
    let mut v = serde_json::json!({"ok": status == 200, "action": verb, "id": id});
    v[key] = serde_json::Value::String(text);
    (status, format!("{v}\n"))
}

/// `GET /api/queue/{id}`.
pub(super) fn detail(ctx: &Ctx, path: &str) -> (u16, &'static str, String) {
    let id = path.strip_prefix(PATH_QUEUE).and_then(|r| r.strip_prefix('/')).unwrap_or("");
    let Ok(id) = id.parse::<QueueId>() else {
        return (400, TEXT, "not a queue id (16 hex digits)\n".into());
    };
    match show::show(&ctx.queue_dir, id) {
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
    fn action_paths() {
        let id = "0000000300000041";
        // (path, Some(status of the error) / None when it parses / 0 when not ours)
        let cases: &[(String, Option<u16>)] = &[
            (format!("/api/queue/{id}/hold"), None),
            (format!("/api/queue/{id}/release"), None),
            (format!("/api/queue/{id}/delete"), None),
            (format!("/api/queue/{id}/bounce"), None),
            ("/api/flush".into(), None),
            (format!("/api/queue/{id}/frobnicate"), Some(404)),
            (format!("/api/queue/{id}"), Some(404)),
            ("/api/queue/xyz/hold".into(), Some(400)),
            ("/api/queue".into(), Some(0)),
            ("/api/pause".into(), Some(0)),
            ("/api/sites/default/pause".into(), Some(0)),
        ];
        for (path, want) in cases {
            let got = match parse(path) {
                None => Some(0),
                Some(Ok(_)) => None,
                Some(Err((status, _))) => Some(status),
            };
            assert_eq!(got, *want, "{path}");
        }
    }
}
