//! The admin HTTP listener: one thread (`admin`) serving views of the running server, the
//! operator's controls (sites, queue actions) and the web admin page, with `tiny_http`.
//!
//! Endpoints:
//! - `GET /`: the web admin page (`page`: HTML, CSS and JavaScript compiled in);
//! - `GET /metrics`: every counter in Prometheus text format 0.0.4 (`stats::render_prometheus`);
//! - `GET /api/stats`: the same snapshot as JSON (`stats::render_json`) plus `"sites"` (as
//!   `GET /api/sites`), read by `mailroot stats`;
//! - `GET /api/queue`: the queue listing `mailroot queue list --json` prints
//!   (`spool::listing`, a read-only scan of `Queue/`);
//! - `GET /api/queue/shape`: the qshape table `mailroot queue shape --json` prints
//!   (`spool::shape`, pending recipients by domain and age at the time of the request);
//! - `GET /api/queue/{id}`: one message with its whole envelope (`spool::show`, as `queue show --json` prints it);
//! - `GET /api/config`: the effective (live) configuration as JSON, secrets masked
//!   (`Config::to_masked_json`);
//! - `POST /api/queue/{id}/delete|bounce|hold|release`, `POST /api/flush`: queue actions,
//!   carried out by the queue runner (`actions`);
//! - the control endpoints (`GET /api/sites`, `GET /api/events`, `POST /api/pause`,
//!   `/api/resume`, `/api/sites/{site}/pause|resume|stop|start`, `/api/drain`,
//!   `/api/reload`): see `admin::control` for the contract.
//!
//! SECURITY: bound to `[admin] listen` (loopback by default; the config refuses a
//! non-loopback address without `[admin] token`). Who may read and who may change state
//! is `admin::auth`: POSTs always need the bearer token when one is set, and without one
//! only a loopback listener with `allow_unauthenticated_loopback_control` takes them.
//! Refusals are written to the event log (`admin.refused`). Other methods get 405.
//! Nothing from the request is echoed back or logged beyond its method and path. The page
//! and its two assets are served without the token (they hold no data; the page sends
//! the token the operator types); the page gets a Content-Security-Policy that allows
//! only its own script and style, a second wall behind its text-only DOM updates.
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

mod actions;
mod auth;
pub mod control;
mod page;

use std::io::Read as _;

use tiny_http::{Header, Method, Request, Response, Server};

use self::control::{CLIENT_HEADER, PATH_EVENTS, PATH_SITES, Post};
use crate::config::Config;
use crate::control::Control;
use crate::eventlog::event::Event;
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
/// Path of the JSON qshape table.
pub const PATH_QUEUE_SHAPE: &str = "/api/queue/shape";

/// Path of the web admin page.
pub const PATH_PAGE: &str = "/";
/// Path of the masked effective configuration.
pub const PATH_CONFIG: &str = "/api/config";
/// Path of the flush action.
pub const PATH_FLUSH: &str = "/api/flush";

/// Largest POST body read (a drain timeout; anything longer is cut).
const MAX_BODY_BYTES: u64 = 4096;

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
    /// Who may read and who may change state.
    policy: auth::Policy,
    /// The counters.
    registry: &'static Registry,
    /// Pause, resume, drain, reload; the event log.
    control: Arc<dyn Control>,
    /// Operator actions to the queue runner (each answered on its own reply channel).
    requests: crossbeam_channel::Sender<QueueRequest>,
    /// Rate limit of the `admin.refused` events (used by this thread only).
    refusals: std::cell::RefCell<auth::RefusalLog>,
}

/// Bind `[admin] listen` and start the `admin` thread; `None` when the listener is
/// disabled. Stops when `stop` is set.
pub fn spawn(
    config: &Config,
    stop: Arc<AtomicBool>,
    control: Arc<dyn Control>,
    requests: crossbeam_channel::Sender<QueueRequest>,
) -> io::Result<Option<Admin>> {
    let listener = bind(config)?;
    spawn_on(listener, config, stop, control, requests)
}

/// Bind `[admin] listen` (`None` when the admin listener is off). Separate from
/// [`spawn_on`] so the wiring can bind as root and serve after dropping privileges.
pub fn bind(config: &Config) -> io::Result<Option<std::net::TcpListener>> {
    let Some(listen) = config.admin.listen else { return Ok(None) };
    std::net::TcpListener::bind(listen)
        .map(Some)
        .map_err(|e| io::Error::new(e.kind(), format!("{listen}: {e}")))
}

/// Serve the admin API on an already bound `listener` (from [`bind`]) in the `admin`
/// thread; `None` = off.
pub fn spawn_on(
    listener: Option<std::net::TcpListener>,
    config: &Config,
    stop: Arc<AtomicBool>,
    control: Arc<dyn Control>,
    requests: crossbeam_channel::Sender<QueueRequest>,
) -> io::Result<Option<Admin>> {
    let Some(listener) = listener else { return Ok(None) };
    let listen = listener.local_addr()?;
    let server = Server::from_listener(listener, None)
        .map_err(|e| io::Error::other(format!("{listen}: {e}")))?;
    let addr = server.server_addr().to_ip().unwrap_or(listen);
    let policy = auth::Policy {
        token: config.admin.token.clone(),
        loopback: addr.ip().is_loopback(),
        open_loopback_control: config.admin.allow_unauthenticated_loopback_control,
    };
    let ctx = Ctx {
        queue_dir: config.queue_dir(),
        policy,
        registry: Registry::global(),
        control,
        requests,
        refusals: std::cell::RefCell::default(),
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

/// Plain text.
const TEXT: &str = "text/plain; charset=utf-8";
/// JSON.
const JSON: &str = "application/json";

/// Send `body` as the answer to `req`.
fn respond(req: Request, status: u16, ctype: &str, body: String) {
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

/// The value of header `name`, if present.
fn header_value<'r>(req: &'r Request, name: &'static str) -> Option<&'r str> {
    req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str())
}

/// Answer one request.
fn handle(ctx: &Ctx, mut req: Request) {
    let url = req.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let write = *req.method() == Method::Post;
    // The page itself holds no data: it loads without the token and sends the one the
    // operator types with every API call.
    if *req.method() == Method::Get
        && let Some((status, ctype, body)) = page::asset(path)
    {
        return respond(req, status, ctype, body);
    }
    if let Err(r) = ctx.policy.check(header_value(&req, "Authorization"), write) {
        if write {
            log::warn!("admin POST {path} refused: {}", r.reason);
            emit_refusal(ctx, path, &r);
        }
        return respond(req, r.status, JSON, control::error(r.status, r.reason).1);
    }
    match req.method() {
        Method::Get => {
            let (status, ctype, body) = route(ctx, path, query);
            respond(req, status, ctype, body);
        }
        Method::Post => {
            let mut body = String::new();
            let _ = req.as_reader().take(MAX_BODY_BYTES).read_to_string(&mut body);
            let by = control::by(header_value(&req, CLIENT_HEADER));
            if let Some(action) = actions::parse(path) {
                let (status, body) = match action {
                    Ok(action) => actions::post(ctx, action, by),
                    Err(answer) => answer,
                };
                return respond(req, status, JSON, body);
            }
            match control::parse_post(path, query, &body) {
                Err((status, body)) => respond(req, status, JSON, body),
                Ok(Post::Drain(timeout)) => {
                    // A drain takes long: answer it from its own thread so the listener
                    // keeps serving (the web page polls /api/events meanwhile).
                    let control = Arc::clone(&ctx.control);
                    let spawned =
                        std::thread::Builder::new().name("admin-drain".into()).spawn(move || {
                            let ((status, body), stop) = control::drain(&*control, timeout, by);
                            respond(req, status, JSON, body);
                            if stop {
                                control.shutdown("drained", by);
                            }
                        });
                    if let Err(e) = spawned {
                        log::error!("admin: cannot start the drain thread: {e}");
                    }
                }
                Ok(post) => {
                    let (status, body) = control::post(&*ctx.control, &post, by);
                    respond(req, status, JSON, body);
                }
            }
        }
        _ => respond(req, 405, TEXT, "only GET and POST are supported\n".into()),
    }
}

/// Write a refused POST to the event log (nothing else happens).
fn emit_refusal(ctx: &Ctx, path: &str, r: &auth::Refusal) {
    let Some(unlogged) = ctx.refusals.borrow_mut().admit(std::time::Instant::now()) else {
        return;
    };
    ctx.control.log_event(Event::AdminRefused {
        request: format!("POST {path}"),
        status: r.status,
        reason: r.reason.to_owned(),
        unlogged,
    });
}

/// Status, content type and body of a GET of `path`.
fn route(ctx: &Ctx, path: &str, query: &str) -> (u16, &'static str, String) {
    match path {
        PATH_CONFIG => (200, JSON, ctx.control.running_config().to_masked_json().to_string()),
        // Before the `/api/queue/{id}` arm: `shape` is not an id.
        PATH_QUEUE_SHAPE => queue_shape(&ctx.queue_dir),
        p if p.strip_prefix(PATH_QUEUE).is_some_and(|r| r.starts_with('/')) => {
            actions::detail(ctx, p)
        }
        PATH_METRICS => {
            (200, PROMETHEUS_CONTENT_TYPE, stats::render_prometheus(&ctx.registry.snapshot()))
        }
        PATH_STATS => {
            // The counters, and each site's state (running / paused / stopped).
            let mut v = stats::render_json(&ctx.registry.snapshot());
            v["sites"] = control::sites_json(&ctx.control.sites());
            (200, JSON, v.to_string())
        }
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
        PATH_SITES => {
            let (status, body) = control::get_sites(&*ctx.control);
            (status, JSON, body)
        }
        PATH_EVENTS => {
            let (status, body) = control::get_events(&*ctx.control, query);
            (status, JSON, body)
        }
        _ => (
            404,
            TEXT,
            "not found: try /, /metrics, /api/stats, /api/queue, /api/queue/shape, /api/sites, /api/events\n".into(),
        ),
    }
}

/// `GET /api/queue/shape`: the qshape JSON at the current wall-clock time.
fn queue_shape(queue_dir: &std::path::Path) -> (u16, &'static str, String) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut out = Vec::new();
    let written = listing::list(queue_dir).map_err(|e| e.to_string()).and_then(|l| {
        crate::spool::shape::Shape::compute(&l, now_ms)
            .write_json(&mut out)
            .map_err(|e| e.to_string())
    });
    match written {
        Ok(()) => (200, "application/json", String::from_utf8_lossy(&out).into_owned()),
        Err(e) => (500, "text/plain; charset=utf-8", format!("{e}\n")),
    }
}
