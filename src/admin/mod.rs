//! The admin HTTP listener: one thread (`admin`) serving read-only views of the running
//! server with `tiny_http`.
//!
//! Endpoints:
//! - `GET /metrics`: every counter in Prometheus text format 0.0.4 (`stats::render_prometheus`);
//! - `GET /api/stats`: the same snapshot as JSON (`stats::render_json`), read by `mailroot stats`;
//! - `GET /api/queue`: the queue listing `mailroot queue list --json` prints
//!   (`spool::listing`, a read-only scan of `Queue/`);
//! - `GET /api/queue/shape`: the qshape table `mailroot queue shape --json` prints
//!   (`spool::shape`, pending recipients by domain and age at the time of the request).
//!
//! SECURITY: bound to `[admin] listen` (loopback by default; the config refuses a
//! non-loopback address without `[admin] token`). With a token set and a non-loopback
//! listener, every request must carry `Authorization: Bearer <token>`; on loopback the GET
//! endpoints are open. No endpoint changes state yet: anything but GET gets 405. Nothing
//! from the request is echoed back or logged beyond its method and path length.
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

use tiny_http::{Header, Method, Request, Response, Server};

use crate::config::Config;
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
}

/// Bind `[admin] listen` and start the `admin` thread; `None` when the listener is
/// disabled. Stops when `stop` is set.
pub fn spawn(config: &Config, stop: Arc<AtomicBool>) -> io::Result<Option<Admin>> {
    let Some(listen) = config.admin.listen else { return Ok(None) };
    let server = Server::http(listen).map_err(|e| io::Error::other(format!("{listen}: {e}")))?;
    let addr = server.server_addr().to_ip().unwrap_or(listen);
    // The token is enforced only off loopback (the config guarantees one is set there).
    let token = if addr.ip().is_loopback() { None } else { config.admin.token.clone() };
    let ctx = Ctx { queue_dir: config.queue_dir(), token, registry: Registry::global() };
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
    let resp = Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", ctype));
    if let Err(e) = req.respond(resp) {
        log::debug!("admin respond failed: {e}");
    }
}

/// Status, content type and body for `req`.
fn route(ctx: &Ctx, req: &Request) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = "application/json";
    if let Some(token) = &ctx.token {
        let want = format!("Bearer {token}");
        let ok = req
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str() == want.as_str());
        if !ok {
            return (401, TEXT, "bearer token required\n".into());
        }
    }
    if *req.method() != Method::Get {
        return (405, TEXT, "only GET is supported\n".into());
    }
    let path = req.url().split('?').next().unwrap_or("");
    match path {
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
        PATH_QUEUE_SHAPE => queue_shape(&ctx.queue_dir),
        _ => (404, TEXT, "not found: try /metrics, /api/stats, /api/queue\n".into()),
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
