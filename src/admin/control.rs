//! The control endpoints of the admin listener (pause, resume, drain, reload, sites,
//! events), answering JSON. Every POST that is allowed is written to the event log by the
//! control surface it calls (`by: "admin-api"`, or `"command"` when the request carries
//! `X-Mailroot-Client: command`, as `mailroot pause|resume|drain|reload` send).
//!
//! Contract (the web page and the commands code against it):
//! - `GET  /api/sites` → `[{"name":..,"state":"running"|"paused"|"stopped","paused":bool,
//!   "listen":[..]}]` (`paused` stays under a stop: a paused site started again is paused)
//! - `GET  /api/events?limit=N` → `[{event}, ...]`, oldest first (default 100, max 1000)
//! - `POST /api/sites/{site}/pause`, `/api/sites/{site}/resume`, `/api/pause`,
//!   `/api/resume` → 200 `{"ok":true,"changed":[names],"sites":[as GET /api/sites]}`;
//!   404 `{"ok":false,"error":"no such site: x"}`
//! - `POST /api/sites/{site}/stop`, `/api/sites/{site}/start` → 200 as pause (the site's
//!   listeners are closed / bound again in every worker before the answer); a start whose
//!   address cannot be bound → 409 `{"ok":false,"error":"site b stays stopped: cannot
//!   listen on ..: Address already in use (os error 98)"}` (the site stays stopped)
//! - `POST /api/reload` → 200 `{"ok":true,"changes":[{"key","old","new"}],
//!   "restart_needed":[keys]}`; 422 `{"ok":false,"error":".."}` (running config kept)
//! - `POST /api/drain[?timeout=SECONDS]` (or a body `timeout=SECONDS` / `{"timeout":N}`;
//!   default 300) → answered when done: 200 `{"ok":true,"state":"drained"}` (then the
//!   server stops, exit status 0); 504 `{"ok":false,"state":"timeout","queued":N,
//!   "connections":N}` (every site stays paused); 409 if a drain is already running.
//! - refused without the token: 401 / 403 `{"ok":false,"error":".."}`, nothing changes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::control::{Control, ControlError, DrainOutcome, ReloadOutcome, SiteView};
use crate::eventlog::event::By;

/// Path of the site list.
pub const PATH_SITES: &str = "/api/sites";
/// Path of the recent events.
pub const PATH_EVENTS: &str = "/api/events";
/// Pause every site.
pub const PATH_PAUSE: &str = "/api/pause";
/// Resume every site.
pub const PATH_RESUME: &str = "/api/resume";
/// Drain.
pub const PATH_DRAIN: &str = "/api/drain";
/// Reload the configuration.
pub const PATH_RELOAD: &str = "/api/reload";
/// Header a `mailroot` command sets so its actions are logged `by: "command"`.
pub const CLIENT_HEADER: &str = "X-Mailroot-Client";

/// Events shown without `limit`.
const DEFAULT_EVENTS: usize = 100;
/// Largest `limit`.
const MAX_EVENTS: usize = crate::eventlog::RECENT_EVENTS;
/// Drain timeout without `timeout`, seconds.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 300;
/// Longest drain timeout accepted, seconds (a day).
const MAX_DRAIN_TIMEOUT_SECS: u64 = 86_400;

/// An answer: status and JSON body.
pub(super) type Answer = (u16, String);

/// A POST the admin thread must act on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Post {
    /// Pause (`site` `None` = every site).
    Pause(Option<String>),
    /// Resume.
    Resume(Option<String>),
    /// Stop one site (close its listeners).
    Stop(String),
    /// Start a stopped site.
    Start(String),
    /// Reload the configuration.
    Reload,
    /// Drain with this timeout (answered from its own thread: it takes long).
    Drain(Duration),
}

/// The POST at `path` with `query` and `body`, or the error answer.
pub(super) fn parse_post(path: &str, query: &str, body: &str) -> Result<Post, Answer> {
    match path {
        PATH_PAUSE => return Ok(Post::Pause(None)),
        PATH_RESUME => return Ok(Post::Resume(None)),
        PATH_RELOAD => return Ok(Post::Reload),
        PATH_DRAIN => return drain_timeout(query, body).map(Post::Drain),
        _ => {}
    }
    let site_action = path.strip_prefix(PATH_SITES).and_then(|rest| rest.strip_prefix('/'));
    if let Some((site, action)) = site_action.and_then(|r| r.split_once('/'))
        && !site.is_empty()
    {
        match action {
            "pause" => return Ok(Post::Pause(Some(site.to_owned()))),
            "resume" => return Ok(Post::Resume(Some(site.to_owned()))),
            "stop" => return Ok(Post::Stop(site.to_owned())),
            "start" => return Ok(Post::Start(site.to_owned())),
            _ => {}
        }
    }
    Err(error(404, "not found"))
}

/// The drain timeout from `?timeout=` or the body.
fn drain_timeout(query: &str, body: &str) -> Result<Duration, Answer> {
    let body = body.trim();
    let from_json = if body.starts_with('{') {
        let v: Value = serde_json::from_str(body).map_err(|_| error(400, "bad JSON body"))?;
        match &v["timeout"] {
            Value::Null => None,
            t => Some(t.as_u64().ok_or_else(|| error(400, "timeout: whole seconds"))?),
        }
    } else {
        None
    };
    let param = |text: &str| {
        text.split('&')
            .find_map(|kv| kv.strip_prefix("timeout="))
            .map(|v| v.parse::<u64>().map_err(|_| error(400, "timeout: whole seconds")))
    };
    let secs = match (from_json, param(query), param(body)) {
        (Some(s), _, _) => s,
        (None, Some(s), _) | (None, None, Some(s)) => s?,
        (None, None, None) => DEFAULT_DRAIN_TIMEOUT_SECS,
    };
    if secs > MAX_DRAIN_TIMEOUT_SECS {
        return Err(error(400, "timeout: at most 86400 seconds"));
    }
    Ok(Duration::from_secs(secs))
}

/// Who is asking: the `mailroot` commands mark themselves.
pub(super) fn by(client_header: Option<&str>) -> By {
    if client_header.is_some_and(|v| v.eq_ignore_ascii_case("command")) {
        By::Command
    } else {
        By::AdminApi
    }
}

/// `{"ok":false,"error":..}` with `status`.
pub(super) fn error(status: u16, why: &str) -> Answer {
    (status, json!({ "ok": false, "error": why }).to_string())
}

/// The site list as JSON.
pub(super) fn sites_json(sites: &[SiteView]) -> Value {
    Value::Array(
        sites
            .iter()
            .map(|s| {
                json!({ "name": s.name, "state": s.state, "paused": s.paused, "listen": s.listen })
            })
            .collect(),
    )
}

/// `GET /api/sites`.
pub(super) fn get_sites(control: &dyn Control) -> Answer {
    (200, sites_json(&control.sites()).to_string())
}

/// `GET /api/events?limit=N`.
pub(super) fn get_events(control: &dyn Control, query: &str) -> Answer {
    let limit = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_EVENTS)
        .min(MAX_EVENTS);
    let events: Vec<Value> = control
        .recent_events(limit)
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    (200, Value::Array(events).to_string())
}

/// Act on a pause, resume or reload (a drain goes to [`drain`]).
pub(super) fn post(control: &dyn Control, post: &Post, by: By) -> Answer {
    let changed = match post {
        Post::Pause(site) => control.pause(site.as_deref(), by),
        Post::Resume(site) => control.resume(site.as_deref(), by),
        Post::Stop(site) => control.stop_site(site, by),
        Post::Start(site) => control.start_site(site, by),
        Post::Reload => return reload(control, by),
        Post::Drain(timeout) => return drain(control, *timeout, by).0,
    };
    match changed {
        Ok(names) => {
            let body =
                json!({ "ok": true, "changed": names, "sites": sites_json(&control.sites()) });
            (200, body.to_string())
        }
        Err(e @ ControlError::NoSuchSite(_)) => error(404, &e.to_string()),
        Err(e) => error(409, &e.to_string()),
    }
}

/// `POST /api/reload`.
fn reload(control: &dyn Control, by: By) -> Answer {
    match control.reload(by) {
        ReloadOutcome::Applied { changes, restart_needed } => {
            let changes: Vec<Value> = changes
                .iter()
                .map(|c| json!({ "key": c.key, "old": c.old, "new": c.new }))
                .collect();
            let body = json!({ "ok": true, "changes": changes, "restart_needed": restart_needed });
            (200, body.to_string())
        }
        ReloadOutcome::Refused { error: e } => error(422, &e),
    }
}

/// `POST /api/drain`: blocks until the drain ends. The answer, and whether the server
/// must now stop (after the answer is sent).
pub(super) fn drain(control: &dyn Control, timeout: Duration, by: By) -> (Answer, bool) {
    match control.drain(timeout, by) {
        Ok(DrainOutcome::Drained) => {
            ((200, json!({ "ok": true, "state": "drained" }).to_string()), true)
        }
        Ok(DrainOutcome::TimedOut { queued, connections }) => {
            let body = json!({
                "ok": false, "state": "timeout", "queued": queued, "connections": connections,
                "error": "timed out; every site stays paused",
            });
            ((504, body.to_string()), false)
        }
        Err(e) => (error(409, &e.to_string()), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts() {
        // (path, query, body, expected post or error status)
        let secs = Duration::from_secs;
        let cases: &[(&str, &str, &str, Result<Post, u16>)] = &[
            ("/api/pause", "", "", Ok(Post::Pause(None))),
            ("/api/resume", "", "", Ok(Post::Resume(None))),
            ("/api/reload", "", "", Ok(Post::Reload)),
            ("/api/sites/default/pause", "", "", Ok(Post::Pause(Some("default".into())))),
            ("/api/sites/a.b/resume", "", "", Ok(Post::Resume(Some("a.b".into())))),
            ("/api/sites/b/stop", "", "", Ok(Post::Stop("b".into()))),
            ("/api/sites/b/start", "", "", Ok(Post::Start("b".into()))),
            ("/api/sites//stop", "", "", Err(404)),
            ("/api/stop", "", "", Err(404)),
            ("/api/sites//pause", "", "", Err(404)),
            ("/api/sites/x/frobnicate", "", "", Err(404)),
            ("/api/queue", "", "", Err(404)),
            ("/api/drain", "", "", Ok(Post::Drain(secs(300)))),
            ("/api/drain", "timeout=5", "", Ok(Post::Drain(secs(5)))),
            ("/api/drain", "", "timeout=7", Ok(Post::Drain(secs(7)))),
            ("/api/drain", "", "{\"timeout\": 9}", Ok(Post::Drain(secs(9)))),
            ("/api/drain", "timeout=x", "", Err(400)),
            ("/api/drain", "timeout=86401", "", Err(400)),
            ("/api/drain", "", "{\"timeout\": -1}", Err(400)),
        ];
        for (path, query, body, want) in cases {
            let got = parse_post(path, query, body).map_err(|(status, _)| status);
            assert_eq!(&got, want, "{path}?{query} {body}");
        }
    }

    #[test]
    fn who_asks() {
        assert_eq!(by(Some("command")), By::Command);
        assert_eq!(by(Some("web")), By::AdminApi);
        assert_eq!(by(None), By::AdminApi);
    }
}
