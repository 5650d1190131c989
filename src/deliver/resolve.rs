//! The resolver pool: a few threads that turn a task's route into connection targets
//! (blocking DNS through `dns::Resolver`) before the task reaches the outbound event loop,
//! which never blocks. Routes that need no DNS (address literals, the host table) are
//! handled by [`Router::submit`] on the caller's thread (the queue runner's, through the
//! `deliver::inbox::RemoteSubmit` handle `relay.rs` wires).
//!
//! WHAT: per [`ResolveRequest`]: a smart host literal needs no DNS; a smart host name and
//! the MX route are resolved (MX in preference order, each exchange's addresses; with
//! `attempt_direct_first` the smart host is appended after every MX target, and used alone
//! when MX lookup fails temporarily). Targets that are one of our own listen addresses are
//! dropped; if that leaves none, the task fails with 5.4.6 "Cannot connect to self".
//! Null MX fails with 5.1.10; NXDOMAIN and "no mail host" fail with the resolver's status;
//! temporary DNS failures defer (`dest_down`).
//!
//! TRUST: DNS answers are untrusted (decoded by `dns::wire`); only names and addresses
//! come out of them.
//!
//! STANDARDS: RFC 5321 §5.1 (MX, implicit MX), RFC 7505 (null MX, 5.1.10), RFC 3463.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::inbox::{OutboundTask, ResolveRequest, Target};
use super::outbound::OutboundHandle;
use crate::config::Config;
use crate::dns::{DnsError, MxResolution, Resolver};
use crate::plan::route::{HopOptions, LOOP_STATUS, NextHop, Route, SELF_CONNECT_TEXT, is_self};
use crate::queue::inbox::{RcptOutcome, TaskReport};
use crate::smtp::client::{ClientConfig, Timeouts, TlsPolicy};

/// Threads in the pool.
pub const RESOLVER_THREADS: usize = 2;
/// Status of a null-MX domain (RFC 7505 §4.2).
pub const NULL_MX_STATUS: &str = "5.1.10";

/// What the pool threads share.
struct Shared {
    /// DNS.
    resolver: Arc<Resolver>,
    /// Our listen addresses (loop check).
    listen: Vec<SocketAddr>,
    /// Client settings for each (HELO, TLS policy, smart host AUTH) a route can ask for,
    /// built once. Invariant: `clients[client_index(..)]` exists for every key.
    clients: Vec<Arc<ClientConfig>>,
    /// The outbound loop.
    outbound: OutboundHandle,
    /// Failures go straight back to the runner.
    reports: Sender<TaskReport>,
}

/// Where the client settings for a route's (HELO, TLS policy, smart host AUTH) sit in
/// `Shared::clients`.
fn client_index(helo: bool, tls: TlsPolicy, auth: bool) -> usize {
    let tls = TlsPolicy::ALL.iter().position(|&p| p == tls).unwrap_or(0);
    usize::from(helo) * 2 * TlsPolicy::ALL.len() + tls * 2 + usize::from(auth)
}

/// Every client setting a route can ask for (16, shared by all tasks), in
/// `client_index` order.
fn client_configs(cfg: &Config) -> Vec<Arc<ClientConfig>> {
    let mut out = Vec::new();
    for helo in [false, true] {
        for tls in TlsPolicy::ALL {
            for auth in [false, true] {
                debug_assert_eq!(client_index(helo, tls, auth), out.len());
                let mut c = client_config(cfg, helo);
                c.tls = tls;
                if auth {
                    c.auth = cfg.relay.smart_host_auth.as_ref().map(|a| a.credentials.clone());
                }
                out.push(Arc::new(c));
            }
        }
    }
    out
}

/// The client settings from the configuration (TLS policy `[delivery] tls`, no AUTH;
/// `client_configs` varies them per route).
pub fn client_config(cfg: &Config, use_helo: bool) -> ClientConfig {
    let d = &cfg.delivery;
    let ms = Duration::from_millis;
    ClientConfig {
        helo_name: cfg.hostname.clone(),
        use_helo,
        // BDAT when offered: no dot-stuffing pass over the content (RFC 3030).
        use_bdat: true,
        timeouts: Timeouts {
            greeting: ms(d.greeting_timeout_ms),
            command: ms(d.mail_timeout_ms),
            mail: ms(d.mail_timeout_ms),
            rcpt: ms(d.rcpt_timeout_ms),
            data_init: ms(d.data_init_timeout_ms),
            data_block: ms(d.data_block_timeout_ms),
            data_term: ms(d.data_term_timeout_ms),
        },
        max_messages_per_connection: d.max_messages_per_connection,
        own_hostnames: vec![cfg.hostname.clone()],
        tls: cfg.delivery.tls,
        // The outbound service runs the handshake through `net` (`deliver/tls.rs`).
        tls_capable: true,
        auth: None,
    }
}

/// Where the queue runner sends remote tasks: routes that need no DNS (an address-literal
/// smart host, host-table addresses) are turned into targets right away on the caller's
/// thread (no blocking, no extra thread hop); the others go to the pool.
pub struct Router {
    /// Shared with the pool threads.
    shared: Arc<Shared>,
    /// The pool's queue.
    pool: Sender<ResolveRequest>,
}

impl Router {
    /// Route `req` now if it needs no DNS, else queue it for the pool. Gives the request
    /// back if the pool is gone (shutting down).
    pub fn submit(&self, req: ResolveRequest) -> Result<(), Box<ResolveRequest>> {
        let no_dns = match &req.route {
            Route::SmartHost { hop, .. } => matches!(hop, NextHop::Literal { .. }),
            Route::Hosts { .. } => true,
            Route::Local { .. } | Route::Mx { .. } => false,
        };
        if no_dns {
            self.shared.handle(req);
            return Ok(());
        }
        self.pool.send(req).map_err(|e| Box::new(e.0))
    }
}

/// Start the pool; returns the [`Router`] that feeds it. Threads exit when the router is
/// dropped.
pub fn spawn(
    cfg: &Config,
    resolver: Arc<Resolver>,
    listen: Vec<SocketAddr>,
    outbound: OutboundHandle,
    reports: Sender<TaskReport>,
) -> std::io::Result<Router> {
    let (pool, requests) = crossbeam_channel::unbounded::<ResolveRequest>();
    let shared =
        Arc::new(Shared { resolver, listen, clients: client_configs(cfg), outbound, reports });
    for k in 0..RESOLVER_THREADS {
        let shared = Arc::clone(&shared);
        let rx = requests.clone();
        // Not joined: a thread ends when the router (the last sender) is dropped, after at
        // most one blocking query.
        let _detached =
            std::thread::Builder::new().name(format!("resolver-{k}")).spawn(move || {
                for req in rx {
                    shared.handle(req);
                }
            })?;
    }
    Ok(Router { shared, pool })
}

/// Targets for a next hop (smart host): a literal as is, a name by A/AAAA.
fn hop_targets(
    resolver: &Resolver,
    hop: &NextHop,
    options: &HopOptions,
    now: Instant,
) -> Result<Vec<Target>, DnsError> {
    let port = options.port_for(hop);
    match hop {
        NextHop::Literal { ip, .. } => {
            Ok(vec![Target { name: format!("[{ip}]"), addr: SocketAddr::new(*ip, port) }])
        }
        NextHop::Name { host, .. } => {
            let addrs = resolver.resolve_host(host, now)?;
            if addrs.is_empty() {
                return Err(DnsError::NoMailHosts { domain: host.clone() });
            }
            Ok(addrs
                .into_iter()
                .map(|ip| Target { name: host.clone(), addr: SocketAddr::new(ip, port) })
                .collect())
        }
    }
}

impl Shared {
    /// Resolve one request and pass it on.
    fn handle(&self, req: ResolveRequest) {
        let ResolveRequest { task, route } = req;
        let now = Instant::now();
        let (key, options, targets) = match &route {
            Route::Local { .. } => {
                // The runner never sends local routes here (a bug): defer, do not lose.
                let outcome = RcptOutcome::Deferred {
                    reason: "internal: local route sent to the resolver".into(),
                    dest_down: false,
                };
                let _ = self.reports.send(TaskReport::all(&task, &outcome));
                return;
            }
            Route::SmartHost { hop, options } => {
                (format!("smart:{hop}:{}", options.port_for(hop)), *options, {
                    hop_targets(&self.resolver, hop, options, now)
                })
            }
            Route::Hosts { addrs, options } => {
                let t = addrs
                    .iter()
                    .map(|ip: &IpAddr| Target {
                        name: format!("[{ip}]"),
                        addr: SocketAddr::new(*ip, options.port),
                    })
                    .collect();
                (format!("hosts:{}", task.domain), *options, Ok(t))
            }
            Route::Mx { fallback, options } => {
                let mx = match self.resolver.resolve_mx(&task.domain, now) {
                    Ok(MxResolution::NullMx) => {
                        let outcome = RcptOutcome::Failed {
                            status: NULL_MX_STATUS.into(),
                            mta: None,
                            reply: None,
                            text: format!("{}: the domain accepts no mail (null MX)", task.domain),
                        };
                        let _ = self.reports.send(TaskReport::all(&task, &outcome));
                        return;
                    }
                    Ok(MxResolution::Hosts(hosts)) => Ok(hosts
                        .into_iter()
                        .flat_map(|h| {
                            let name = h.name;
                            h.addrs.into_iter().map(move |ip| Target {
                                name: name.clone(),
                                addr: SocketAddr::new(ip, options.port),
                            })
                        })
                        .collect::<Vec<_>>()),
                    Err(e) => Err(e),
                };
                let targets = match (mx, fallback) {
                    (Ok(mut t), Some(hop)) => {
                        if let Ok(more) = hop_targets(&self.resolver, hop, options, now) {
                            t.extend(more);
                        }
                        Ok(t)
                    }
                    (Err(e), Some(hop)) if !e.is_permanent() => {
                        hop_targets(&self.resolver, hop, options, now)
                    }
                    (r, _) => r,
                };
                (format!("mx:{}", task.domain), *options, targets)
            }
        };
        let targets = match targets {
            Ok(t) => t,
            Err(e) => {
                let outcome = if e.is_permanent() {
                    RcptOutcome::Failed {
                        status: e.enhanced_status().into(),
                        mta: None,
                        reply: None,
                        text: e.to_string(),
                    }
                } else {
                    RcptOutcome::Deferred { reason: e.to_string(), dest_down: true }
                };
                log::info!("queue_id={} domain={} dns: {e}", task.id, task.domain);
                let _ = self.reports.send(TaskReport::all(&task, &outcome));
                return;
            }
        };
        let before = targets.len();
        let targets: Vec<Target> =
            targets.into_iter().filter(|t| !is_self(t.addr, &self.listen, &[])).collect();
        if targets.is_empty() {
            let outcome = RcptOutcome::Failed {
                status: LOOP_STATUS.into(),
                mta: None,
                reply: None,
                text: SELF_CONNECT_TEXT.into(),
            };
            log::info!(
                "queue_id={} domain={} loop: {before} target(s), all ourselves",
                task.id,
                task.domain
            );
            let _ = self.reports.send(TaskReport::all(&task, &outcome));
            return;
        }
        let i = client_index(options.helo, options.tls, options.smart_host_auth);
        let client = Arc::clone(&self.clients[i]); // invariant of `clients`
        let ot = OutboundTask { task, dest_key: Arc::from(key), targets, client };
        if let Err(t) = self.outbound.submit(ot) {
            let outcome =
                RcptOutcome::Deferred { reason: "shutting down".into(), dest_down: false };
            let _ = self.reports.send(TaskReport::all(&t.task, &outcome));
        }
    }
}
