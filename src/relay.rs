//! Wiring: opens the spool, builds the inbound workers and the queue runner, handles
//! signals, and shuts everything down in order. The only module that knows every piece.
//!
//! # Threads and what crosses between them
//! - `worker-k` (k = 0..workers): one mio event loop each (`net::worker::Worker` driving
//!   `receive::inbound::Inbound`). Each owns its listeners (one per site address, all
//!   `SO_REUSEPORT`), its connections and its `SpoolWriter`. Shared with the other workers:
//!   the `ConnLimits` counters and the shutdown flag.
//! - the spool's syncer thread(s) (owned by `spool`): run group commits and call
//!   `on_commit`, which rings the worker's `mio::Waker`. Nothing else crosses.
//! - `queue-runner`: receives every committed `QueueId` over an unbounded crossbeam channel,
//!   one `IncomingBatch` per group commit (ids are 8 bytes, copied; the messages stay in the
//!   spool; batching means one runner wake-up per commit, not per message). It owns the
//!   scheduler and every cross-off (`queue::runner`). Recovered messages are fed in at
//!   start. It sends `Task`s (envelope + content copied once, `Arc<[u8]>`) to:
//! - `resolver-0..1` (`deliver::resolve`): blocking DNS, then the task with its connection
//!   targets goes to the outbound loop (crossbeam channel + `mio::Waker`);
//! - `outbound` (`deliver::outbound`): one mio loop driving every outbound
//!   `smtp::client::ClientSession`; per-recipient results go back to the runner;
//! - `local-delivery` (`deliver::local_worker`): Drop files; results back to the runner.
//! - `pickup` (`pickup::watch`): watches `Mailroot/Pickup/` (inotify + rescan), writes
//!   files into the spool with its own `SpoolWriter`, and sends their QueueIds to the queue
//!   runner on a clone of the workers' channel. Stops on the same shutdown flag.
//! - `auth-verifier` (`receive::auth`, only when `[[user]]`s exist): argon2 password checks
//!   for every worker's AUTH (crossbeam channel in; each verdict goes back on the asking
//!   worker's channel and rings its `mio::Waker`). Ends when the workers are gone.
//! - `signals`: waits for SIGTERM/SIGINT (signal-hook), then sets the shutdown flag and
//!   wakes every worker; SIGHUP reloads the TLS certificates (`receive::tls::reload_all`:
//!   new handshakes get the new files, open connections keep theirs, a bad file is logged
//!   and the old certificate kept).
//! - the main thread joins the workers, then stops the signal thread and the queue runner.
//!
//! # Shutdown order
//! 1. flag + wake: every worker drops its listeners, tells idle sessions 421 4.3.2, lets
//!    in-flight transactions finish for up to `limits.shutdown_grace_ms`, closes the rest,
//!    waits for its outstanding commits, exits;
//! 2. the pickup thread (which checks the flag at least every 200 ms) finishes its batch
//!    and exits;
//! 3. the last `Sender` is dropped with the workers and the pickup thread, so the queue
//!    runner applies its last cross-offs and exits;
//! 4. the outbound loop is told to stop and joined (tasks in flight stay pending in the
//!    spool: sent again after the next start); the resolver and local-delivery threads end
//!    when their channels close;
//! 5. `serve` returns `Ok(())` (exit status 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::deliver::outbound::{self, OutboundOptions, OutboundThread};
use crate::deliver::{local_worker, resolve};
use crate::dns::{Resolver, ResolverConfig};
use crate::net::limits::ConnLimits;
use crate::net::listener;
use crate::net::worker::{Listen, Worker, WorkerCounters, WorkerOptions, WorkerPoll};
use crate::pickup::{self, PickupConfig};
use crate::queue::inbox::{IncomingBatch, QueueRequest};
use crate::queue::runner::{self, RunnerParts};
use crate::receive::auth::{self as receive_auth, WorkerAuth};
use crate::receive::inbound::{Inbound, InboundShared};
use crate::spool::{QueueId, Spool, SpoolOptions};

/// Errors that stop the relay from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Could not bind a listen address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the site's `listen` list.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The admin listener (`[admin] listen`) could not be bound.
    #[error("admin.listen: {0}")]
    Admin(std::io::Error),
    /// The spool could not be opened or recovered.
    #[error("spool: {0}")]
    Spool(String),
    /// A site's certificate or key could not be loaded.
    #[error("tls: {0}")]
    Tls(#[from] crate::receive::tls::TlsSetupError),
    /// The outbound TLS settings could not be built (`[delivery] tls_ca_file`).
    #[error("{0}")]
    OutboundTls(#[from] crate::deliver::tls::TlsClientError),
    /// Any other I/O failure while starting or running (e.g. a worker's poll failed).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Exit status when a second SIGTERM/SIGINT cuts the graceful shutdown short.
const EXIT_FORCED: i32 = 130;

/// Run the relay until SIGTERM/SIGINT; returns after a clean shutdown. A second signal
/// exits at once (status 130).
pub fn serve(config: Config) -> Result<(), RelayError> {
    // Registered before anything starts: a signal during recovery is queued, not fatal.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    let running = start(config)?;
    let handle = signals.handle();
    let stopper = running.stopper();
    let certs = running.certificates.clone();
    let signal_thread = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut signals = signals;
        let mut seen = 0;
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                // Certificates only: open connections keep theirs, new handshakes get the
                // new files; a bad file is logged and the old certificate kept.
                log::info!("signal={sig} reloading TLS certificates");
                crate::receive::tls::reload_all(&certs);
                continue;
            }
            seen += 1;
            if seen == 1 {
                log::info!("signal={sig} shutting down");
                stopper.stop();
            } else {
                // A second signal means "now": the spool is crash-safe (a message that got
                // 250 is durable; one that did not was never promised).
                log::warn!("signal={sig} again: exiting without waiting");
                std::process::exit(EXIT_FORCED);
            }
        }
    })?;
    let result = running.wait();
    handle.close();
    let _ = signal_thread.join();
    result
}

/// Sets the shutdown flag and wakes every worker. Cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    /// Shared shutdown flag.
    flag: Arc<AtomicBool>,
    /// One waker per worker.
    wakers: Vec<Arc<mio::Waker>>,
}

impl Stopper {
    /// Begin graceful shutdown.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        for w in &self.wakers {
            if let Err(e) = w.wake() {
                log::warn!("cannot wake worker: {e}");
            }
        }
    }
}

/// A started relay: worker threads and the queue runner.
pub struct Running {
    /// Addresses actually bound, per site: `(site name, address)`.
    listening: Vec<(String, SocketAddr)>,
    /// Shutdown trigger.
    stopper: Stopper,
    /// Worker threads.
    workers: Vec<JoinHandle<std::io::Result<WorkerCounters>>>,
    /// The queue runner and the delivery threads.
    delivery: Delivery,
    /// The Pickup folder watcher.
    pickup: JoinHandle<()>,
    /// The admin HTTP listener, if enabled.
    admin: Option<crate::admin::Admin>,
    /// The AUTH verifier thread, if users are configured.
    auth_verifier: Option<JoinHandle<()>>,
    /// Implicit-TLS addresses actually bound, per site: `(site name, address)`.
    implicit_tls_listening: Vec<(String, SocketAddr)>,
    /// Every distinct server certificate (reloaded on SIGHUP).
    certificates: Vec<Arc<crate::net::tls_cert::ReloadableCert>>,
    /// The `event-log` writer thread, stopped last.
    event_log: crate::eventlog::EventLogThread,
}

impl Running {
    /// Addresses listened on (a `:0` port in the config is resolved here).
    pub fn listening(&self) -> &[(String, SocketAddr)] {
        &self.listening
    }

    /// Implicit-TLS addresses listened on (RFC 8314), per site.
    pub fn implicit_tls_listening(&self) -> &[(String, SocketAddr)] {
        &self.implicit_tls_listening
    }

    /// Reload every TLS certificate now (what SIGHUP does).
    pub fn reload_certificates(&self) {
        crate::receive::tls::reload_all(&self.certificates);
    }

    /// Address of the admin listener, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// A handle that starts shutdown.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Wait for every worker to exit (after `Stopper::stop`), then the queue runner.
    pub fn wait(self) -> Result<(), RelayError> {
        let mut first_err = None;
        let mut total = WorkerCounters::default();
        for w in self.workers {
            match w.join() {
                Ok(Ok(c)) => {
                    total.accepted += c.accepted;
                    total.refused += c.refused;
                    total.io_errors += c.io_errors;
                    total.timeouts += c.timeouts;
                }
                Ok(Err(e)) => {
                    log::error!("worker failed: {e}");
                    self.stopper.stop();
                    first_err.get_or_insert(RelayError::Io(e));
                }
                Err(_) => {
                    self.stopper.stop();
                    first_err
                        .get_or_insert(RelayError::Io(std::io::Error::other("worker panicked")));
                }
            }
        }
        // The workers are gone, so the flag is set (by `stop`, or by `StopOnExit`); set it
        // again in case a worker returned some other way, then let pickup finish its batch.
        self.stopper.flag.store(true, Ordering::Release);
        if let Some(admin) = self.admin
            && admin.thread.join().is_err()
        {
            first_err.get_or_insert(RelayError::Io(std::io::Error::other("admin panicked")));
        }
        // The workers held the verifier's request channel: it has ended or is ending.
        if let Some(v) = self.auth_verifier
            && v.join().is_err()
        {
            first_err.get_or_insert(RelayError::Io(std::io::Error::other("verifier panicked")));
        }
        if self.pickup.join().is_err() {
            first_err.get_or_insert(RelayError::Io(std::io::Error::other("pickup panicked")));
        }
        let queued = self.delivery.runner.join().unwrap_or(0);
        // The runner is gone: stop the outbound loop (tasks in flight stay pending in the
        // spool and are delivered after the next start). The resolver and local-delivery
        // threads end when their channels close (a blocking DNS query may finish first).
        self.delivery.outbound.stop_and_join();
        self.event_log.stop_and_join();
        log::info!(
            "stopped accepted={} refused={} io_errors={} timeouts={} queued={queued}",
            total.accepted,
            total.refused,
            total.io_errors,
            total.timeouts
        );
        first_err.map_or(Ok(()), Err)
    }
}

/// Open the spool, bind every listener, start the workers and the queue runner.
pub fn start(config: Config) -> Result<Running, RelayError> {
    raise_fd_limit(&config);
    let config = Arc::new(config);
    let opts = SpoolOptions {
        segment_bytes: config.spool.segment_bytes,
        min_free_bytes: config.limits.min_free_disk_bytes,
    };
    let (spool, recovered) =
        Spool::open(&config.queue_dir(), opts).map_err(|e| RelayError::Spool(e.to_string()))?;
    log::info!("spool={} recovered={}", config.queue_dir().display(), recovered.len());

    let (queue_tx, queue_rx) = crossbeam_channel::unbounded::<IncomingBatch>();
    let recovered_ids: Vec<QueueId> = recovered.iter().map(|m| m.id).collect();
    drop(recovered);

    let shared = Arc::new(InboundShared::new(Arc::clone(&config))?);
    let limits =
        ConnLimits::new(config.limits.max_connections, config.limits.max_connections_per_ip);
    let flag = Arc::new(AtomicBool::new(false));

    // Resolve the addresses once (a `:0` port becomes the port worker 0 got, so every
    // worker shares it).
    // (site, address, implicit TLS)
    let mut addrs: Vec<(usize, SocketAddr, bool)> = Vec::new();
    for (site, s) in config.sites.iter().enumerate() {
        addrs.extend(s.listen.iter().map(|a| (site, *a, false)));
        addrs.extend(s.tls.implicit_tls_listen.iter().map(|a| (site, *a, true)));
    }
    // Refuse to share a port with a process already listening there (SO_REUSEPORT would
    // silently split the connections between us).
    for (_, addr, _) in addrs.iter().filter(|(_, a, _)| a.port() != 0) {
        listener::ensure_unused(*addr)
            .map_err(|source| RelayError::Bind { addr: *addr, source })?;
    }
    // AUTH: one verifier thread for the relay (argon2 must not run on the event loops).
    let (verifier, auth_verifier) = if config.auth.users.is_empty() {
        (None, None)
    } else {
        let (client, thread) = receive_auth::spawn(&config.auth)?;
        (Some(client), Some(thread))
    };
    // Build every worker before starting any, so a failure leaves no thread behind.
    let mut built = Vec::with_capacity(config.workers);
    let mut wakers = Vec::with_capacity(config.workers);
    let mut listening = Vec::new();
    let mut implicit_tls_listening = Vec::new();
    for k in 0..config.workers {
        let poll = WorkerPoll::new()?;
        let waker = poll.waker();
        let mut listeners = Vec::with_capacity(addrs.len());
        for (site, addr, implicit) in &mut addrs {
            let l =
                listener::bind(*addr).map_err(|source| RelayError::Bind { addr: *addr, source })?;
            if k == 0 {
                *addr = l.local_addr()?;
                let named = (config.sites[*site].name.clone(), *addr);
                if *implicit { implicit_tls_listening.push(named) } else { listening.push(named) }
            }
            let implicit_tls = if *implicit { shared.site_tls_config(*site) } else { None };
            listeners.push(Listen { socket: l, tag: *site, implicit_tls });
        }
        let on_commit_waker = Arc::clone(&waker);
        let writer = spool
            .writer(
                u32::try_from(k).unwrap_or(u32::MAX),
                Box::new(move || {
                    let _ = on_commit_waker.wake();
                }),
            )
            .map_err(|e| RelayError::Spool(e.to_string()))?;
        let mut writer = writer;
        writer.set_commit_delay(Duration::from_millis(config.spool.commit_delay_ms));
        let mut service =
            Inbound::new(k, Arc::clone(&shared), spool.clone(), writer, queue_tx.clone());
        if let Some(client) = &verifier {
            let auth_waker = Arc::clone(&waker);
            let notify = Box::new(move || {
                let _ = auth_waker.wake();
            });
            service = service.with_auth(WorkerAuth::new(client.clone(), notify));
        }
        let opts = WorkerOptions {
            index: k,
            shutdown_grace: Duration::from_millis(config.limits.shutdown_grace_ms),
        };
        let worker =
            Worker::new(poll, listeners, service, Arc::clone(&limits), Arc::clone(&flag), opts)?;
        wakers.push(waker);
        built.push(worker);
    }
    drop(verifier); // the workers hold the only request senders now
    let listen: Vec<SocketAddr> =
        listening.iter().chain(&implicit_tls_listening).map(|(_, a)| *a).collect();
    // Operator actions: admin thread -> queue runner (each answered on its own reply).
    let (requests_tx, requests_rx) = crossbeam_channel::unbounded::<QueueRequest>();
    // The service event log (`[event_log]`): every queue action is written there.
    let (events, event_log) = crate::eventlog::spawn(crate::eventlog::EventLogOptions {
        path: config.event_log.enabled.then(|| config.event_log_path()),
        max_size_bytes: config.event_log.max_size_bytes,
    })
    .map_err(RelayError::Io)?;
    let delivery = start_delivery(
        &config,
        &spool,
        queue_rx,
        recovered_ids,
        listen,
        requests_rx,
        events.clone(),
    )?;
    let pickup_tx = queue_tx.clone();
    drop(queue_tx);
    let mut workers = Vec::with_capacity(built.len());
    let stopper = Stopper { flag, wakers };
    for (k, worker) in built.into_iter().enumerate() {
        let name = format!("worker-{k}");
        // If one worker dies (poll error, panic), the others shut down too.
        let mut guard = StopOnExit(Some(stopper.clone()));
        workers.push(std::thread::Builder::new().name(name).spawn(move || {
            let result = worker.run();
            if result.is_ok() {
                guard.disarm();
            }
            result
        })?);
    }
    // The Pickup/ watcher: its own thread and spool writer, stopped by the same flag.
    let pickup = match pickup::spawn(
        PickupConfig::from_config(&config),
        spool.clone(),
        pickup_tx,
        Arc::clone(&stopper.flag),
    ) {
        Ok(h) => h,
        Err(e) => {
            stopper.stop();
            return Err(RelayError::Io(e));
        }
    };
    // The admin listener (GET /metrics, /api/*): stopped by the same flag.
    let admin = match crate::admin::spawn(&config, Arc::clone(&stopper.flag), requests_tx) {
        Ok(a) => a,
        Err(e) => {
            stopper.stop();
            return Err(RelayError::Admin(e));
        }
    };
    for (site, addr) in &listening {
        log::info!("listening site={site} addr={addr} workers={}", config.workers);
    }
    for (site, addr) in &implicit_tls_listening {
        log::info!("listening site={site} addr={addr} implicit_tls=yes workers={}", config.workers);
    }
    let certificates = shared.certificates();
    Ok(Running {
        listening,
        stopper,
        workers,
        delivery,
        pickup,
        admin,
        auth_verifier,
        implicit_tls_listening,
        certificates,
        event_log,
    })
}

/// Stops every worker when dropped while armed (`Some`): a worker thread that exits with
/// an error or panics takes the others down with it instead of leaving `wait` blocked.
struct StopOnExit(Option<Stopper>);

impl StopOnExit {
    /// The worker exited cleanly: nothing to do on drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnExit {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.stop();
        }
    }
}

/// The queue runner and the delivery threads it feeds.
struct Delivery {
    /// `queue-runner`; returns how many ids it received.
    runner: JoinHandle<u64>,
    /// The `outbound` worker (a `net::Worker` driving `deliver::outbound::Outbound`).
    outbound: OutboundThread,
}

/// Writer number of the queue runner's own `SpoolWriter` (after the workers' and
/// pickup's).
fn runner_writer_number(config: &Config) -> u32 {
    u32::try_from(config.workers + 1).unwrap_or(u32::MAX)
}

/// Start delivery: the outbound loop, the resolver pool, the local-delivery thread and the
/// queue runner (which owns the scheduler and a spool writer for NDRs).
fn start_delivery(
    config: &Arc<Config>,
    spool: &Spool,
    queue_rx: Receiver<IncomingBatch>,
    recovered: Vec<QueueId>,
    listen: Vec<SocketAddr>,
    requests: Receiver<QueueRequest>,
    events: crate::eventlog::EventLog,
) -> Result<Delivery, RelayError> {
    let d = &config.delivery;
    let (reports_tx, reports_rx) = crossbeam_channel::unbounded();
    let (outbound, outbound_thread) = outbound::spawn(
        OutboundOptions {
            max_connections: d.max_connections,
            max_connections_per_dest: d.max_connections_per_domain,
            connect_timeout: Duration::from_millis(d.connect_timeout_ms),
            idle_keep: OUTBOUND_IDLE_KEEP,
            worker_index: config.workers,
        },
        crate::deliver::tls::OutboundTls::new(d.tls_ca_file.as_deref())?,
        reports_tx.clone(),
    )?;
    let mut rc = if config.dns.servers.is_empty() {
        ResolverConfig::read_system()
    } else {
        ResolverConfig { servers: config.dns.servers.clone(), ..ResolverConfig::default() }
    };
    if !config.dns.servers.is_empty() {
        rc.timeout_ms = config.dns.timeout_ms;
        rc.attempts = config.dns.attempts;
    }
    rc.hosts = config.hosts.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let resolver = Arc::new(Resolver::new(rc));
    // stats: the resolver keeps its own query count; read it at each snapshot.
    let dns = Arc::clone(&resolver);
    crate::stats::Registry::global()
        .add_source(crate::stats::Counter::DnsQueries, move || dns.queries_total());
    let router = resolve::spawn(config, resolver, listen, outbound, reports_tx.clone())?;
    let (local_tx, local_rx) = crossbeam_channel::unbounded();
    local_worker::spawn(local_rx, reports_tx)?;
    let (commit_tx, commit_rx) = crossbeam_channel::unbounded();
    let writer = spool
        .writer(
            runner_writer_number(config),
            Box::new(move || {
                let _ = commit_tx.send(());
            }),
        )
        .map_err(|e| RelayError::Spool(e.to_string()))?;
    let parts = RunnerParts {
        config: Arc::clone(config),
        spool: spool.clone(),
        incoming: queue_rx,
        recovered,
        reports: reports_rx,
        router: Box::new(move |req| router.submit(req)),
        local: local_tx,
        writer,
        committed: commit_rx,
        requests,
        events,
    };
    let runner = std::thread::Builder::new()
        .name("queue-runner".into())
        .spawn(move || runner::run(parts))?;
    Ok(Delivery { runner, outbound: outbound_thread })
}

/// How long an idle outbound connection is kept open for the next message.
const OUTBOUND_IDLE_KEEP: Duration = Duration::from_secs(2);

/// File descriptors needed besides client connections: listeners, spool segments, wakers,
/// epoll instances, logs.
const FD_OVERHEAD: u64 = 256;

/// Raise the soft `RLIMIT_NOFILE` towards the hard limit so `max_connections` can be
/// reached (systemd and login shells often start servers at 1024); warn when even the hard
/// limit is too low, since accept would then fail with EMFILE under load.
fn raise_fd_limit(config: &Config) {
    // Inbound connections, outbound connections (delivery), and the rest.
    let conns = config.limits.max_connections.saturating_add(config.delivery.max_connections);
    let want = u64::try_from(conns).unwrap_or(u64::MAX).saturating_add(FD_OVERHEAD);
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => log::warn!(
            "open-file limit {got} is below max_connections + {FD_OVERHEAD} = {want}; \
             raise the hard limit (ulimit -Hn / LimitNOFILE=) or lower limits.max_connections"
        ),
        Ok(got) => log::debug!("open-file limit {got}"),
        Err(e) => log::warn!("cannot read or raise the open-file limit: {e}"),
    }
}
