//! The admin HTTP listener: one thread (`admin`) serving views of the running server, the
//! operator's queue actions and the web admin page, with `tiny_http`.
//!
//! Endpoints:
//! - `GET /`: the web admin page (`page`: HTML, CSS and JavaScript compiled in);
//! - `GET /metrics`: every counter in Prometheus text format 0.0.4 (`stats::render_prometheus`);
//! - `GET /api/stats`: the same snapshot as JSON (`stats::render_json`), read by `mailroot stats`;
//! - `GET /api/queue`: the queue listing `mailroot queue list --json` prints
//!   (`spool::listing`, a read-only scan of `Queue/`);
//! - `GET /api/queue/{id}`: one message with its whole envelope (`spool::listing::detail`);
//! - `GET /api/config`: the effective configuration as JSON, secrets masked
//!   (`Config::to_masked_json`);
//! - `POST /api/queue/{id}/delete|bounce|hold|release`, `POST /api/flush`: queue actions,
//!   carried out by the queue runner (`actions`).
//!
//! SECURITY: bound to `[admin] listen` (loopback by default; the config refuses a
//! non-loopback address without `[admin] token`). With a token set and a non-loopback
//! listener, every request must carry `Authorization: Bearer <token>`; on loopback the GET
//! endpoints are open. Every POST needs the bearer token (`actions::authorized`), so a
//! state change needs `[admin] token` set (or, on a loopback listener without a token,
//! `allow_unauthenticated_loopback_control = true`); a cross-site page cannot send that
//! header.
//! Nothing from the request is echoed back or logged beyond its method, path and the
//! action's queue id. The page is served with a Content-Security-Policy that allows only
//! its own script and style (no inline script), as a second wall behind its escaping.
//!
//! Cost: a scrape locks the stats registry once and each per-thread histogram once; it
//! never touches a worker's hot path otherwise.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::config::Config;
use crate::queue::inbox::QueueRequest;
use crate::spool::listing;
use crate::stats::{self, Registry};

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";
/// Path of the Prometheus endpoint.
pub const PATH_METRICS: &str = "/metrics";
/// Path of the JSON counters.
pub const PATH_STATS: &str = "/api/stats";
/// Path of the JSON queue listing.
pub const PATH_QUEUE: &str = "/api/queue";

/// Path of the web admin page.
pub const PATH_PAGE: &str = "/";
/// Path of the masked effective configuration.
pub const PATH_CONFIG: &str = "/api/config";
/// Path of the flush action.
pub const PATH_FLUSH: &str = "/api/flush";

mod actions;
mod page;

/// Content type of plain-text answers.
const TEXT: &str = "text/plain; charset=utf-8";
/// Content type of JSON answers.
const JSON: &str = "application/json";

/// How often the thread checks the shutdown flag while idle.
const STOP_POLL: Duration = Duration::from_millis(200);

/// A started admin listener.
#[derive(Debug)]
pub struct Admin {
    /// The address actually bound.
    pub addr: SocketAddr,
    /// The `admin` thread; ends within `STOP_POLL` of the flag being set.
    pub thread: JoinHandle<()>,
}

/// What the handler needs.
struct Ctx {
    /// `Queue/`, scanned read-only for `/api/queue`.
    queue_dir: PathBuf,
    /// Required bearer token (`None`: open).
    token: Option<String>,
    /// The counters.
    registry: &'static Registry,
    /// What a POST must carry.
    post_auth: actions::PostAuth,
    /// Operator actions to the queue runner.
    requests: Sender<QueueRequest>,
    /// The effective configuration, secrets masked, as JSON text.
    config_json: String,
}

/// Bind `[admin] listen` and start the `admin` thread; `None` when the listener is
/// disabled. Stops when `stop` is set.
pub fn spawn(
    config: &Config,
    stop: Arc<AtomicBool>,
    requests: Sender<QueueRequest>,
) -> io::Result<Option<Admin>> {
    let Some(listen) = config.admin.listen else { return Ok(None) };
    let server = Server::http(listen).map_err(|e| io::Error::other(format!("{listen}: {e}")))?;
    let addr = server.server_addr().to_ip().unwrap_or(listen);
    // The token is enforced only off loopback (the config guarantees one is set there).
    let token = if addr.ip().is_loopback() { None } else { config.admin.token.clone() };
    let ctx = Ctx {
        queue_dir: config.queue_dir(),
        token,
        registry: Registry::global(),
        post_auth: actions::PostAuth::of(&config.admin, addr),
        requests,
        config_json: config.to_masked_json().to_string(),
    };
    let thread = std::thread::Builder::new().name("admin".into()).spawn(move || {
        while !stop.load(Ordering::Acquire) {
            match server.recv_timeout(STOP_POLL) {
                Ok(Some(req)) => handle(&ctx, req),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("admin accept failed: {e}");
                    std::thread::sleep(STOP_POLL);
                }
            }
        }
    })?;
    log::info!("admin listening addr={addr}");
    Ok(Some(Admin { addr, thread }))
}

/// A header that is a constant, valid ASCII name and value.
fn header(name: &str, value: &str) -> Header {
    // Both parts are constants of this module: always valid header bytes.
    #[allow(clippy::unwrap_used)]
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

/// Answer one request.
fn handle(ctx: &Ctx, req: Request) {
    let (status, ctype, body) = route(ctx, &req);
    let mut resp = Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", ctype))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"));
    if ctype == page::HTML {
        resp.add_header(header("Content-Security-Policy", page::CSP));
        resp.add_header(header("X-Frame-Options", "DENY"));
    }
    if let Err(e) = req.respond(resp) {
        log::debug!("admin respond failed: {e}");
    }
}

/// Status, content type and body for `req`.
fn route(ctx: &Ctx, req: &Request) -> (u16, &'static str, String) {
    let path = req.url().split('?').next().unwrap_or("");
    // The page itself holds no data: it loads without the token and sends the one the
    // operator types with every API call.
    if *req.method() == Method::Get
        && let Some(asset) = page::asset(path)
    {
        return asset;
    }
    if let Some(token) = &ctx.token
        && !actions::authorized(req, token)
    {
        return (401, TEXT, "bearer token required\n".into());
    }
    if *req.method() == Method::Post {
        return actions::post(ctx, req, path);
    }
    if *req.method() != Method::Get {
        return (405, TEXT, "only GET and POST are supported\n".into());
    }
    match path {
        PATH_CONFIG => (200, JSON, ctx.config_json.clone()),
        p if p.starts_with(PATH_QUEUE) && p.len() > PATH_QUEUE.len() => actions::detail(ctx, p),
        PATH_METRICS => {
            (200, PROMETHEUS_CONTENT_TYPE, stats::render_prometheus(&ctx.registry.snapshot()))
        }
        PATH_STATS => (200, JSON, stats::render_json(&ctx.registry.snapshot()).to_string()),
        PATH_QUEUE => match listing::list(&ctx.queue_dir) {
            Ok(l) => {
                let mut out = Vec::new();
                match listing::write_json(&l, &mut out) {
                    Ok(()) => (200, JSON, String::from_utf8_lossy(&out).into_owned()),
                    Err(e) => (500, TEXT, format!("{e}\n")),
                }
            }
            Err(e) => (500, TEXT, format!("{e}\n")),
        },
        _ => (404, TEXT, "not found: try /, /metrics, /api/stats, /api/queue\n".into()),
    }
}
