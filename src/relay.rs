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
//! - `local-delivery-0..N-1` (`deliver::local_worker`, `[delivery] local_concurrency`): Drop
//!   files; results back to the runner.
//! - `pickup` (`pickup::watch`): watches `Mailroot/Pickup/` (inotify + rescan), writes
//!   files into the spool with its own `SpoolWriter`, and sends their QueueIds to the queue
//!   runner on a clone of the workers' channel. Stops on the same shutdown flag.
//! - `auth-verifier` (`receive::auth`, always started so a reload can add users): argon2 password checks
//!   for every worker's AUTH (crossbeam channel in; each verdict goes back on the asking
//!   worker's channel and rings its `mio::Waker`). Ends when the workers are gone.
//! - `protocol-log` (`protolog::writer`; always, asleep while no site logs): owns the W3C
//!   protocol-log files; each worker hands it one batch of lines per site per event-loop
//!   pass (bounded crossbeam channel, `try_send`: lines are dropped and counted, never
//!   waited for); a reload sends it new options. Ends, after a last flush, when the
//!   workers are gone.
//! - `signals`: waits for SIGTERM/SIGINT (signal-hook), then sets the shutdown flag and
//!   wakes every worker; SIGHUP reloads the configuration file and the TLS certificates
//!   (`relay::control`: a bad file is refused with its error in the event log and the
//!   running configuration kept; new handshakes get the new certificate files, open
//!   connections keep theirs).
//! - `event-log` (`eventlog`): writes the service events, fed by a bounded channel.
//! - `control` (`relay::control`): watches the spool's free space for the event log.
//! - pause/resume/stop/start/drain/reload arrive from the `admin` thread (POSTs) through
//!   `control::Control`: pause flips a per-site flag each worker reads at accept, stop and
//!   start send each worker a `ListenerCommand` on its command channel (`relay::sites`),
//!   reload publishes new snapshots (`control::Live`) the workers, the queue runner and
//!   the AUTH verifier each pick up on their own.
//! - the main thread joins the workers, then stops the signal thread and the queue runner.
//!
//! # Start-up order (`serve`)
//! Signal handlers, `RLIMIT_NOFILE`, every listener bound (`bind::bind_all`, the admin
//! listener too), then `privilege::drop_to` when started as root with `[service] user`,
//! all while the process has one thread; only then the event log, the spool, the
//! certificates and every thread above (`start_bound`).
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

mod bind;
mod control;
pub mod privilege;
mod sites;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

pub use self::bind::{Bound, bind_all};
pub use self::control::Loader;
use self::control::RelayControl;
use crate::config::Config;
use crate::control::{Live, SiteStates};
use crate::deliver::outbound::{self, OutboundOptions, OutboundThread};
use crate::deliver::{local_worker, resolve};
use crate::dns::{Resolver, ResolverConfig};
use crate::eventlog::{self, By, Event, EventLog, EventLogOptions};
use crate::net::limits::ConnLimits;
use crate::net::worker::{Listen, Worker, WorkerCounters, WorkerOptions, WorkerPoll};
use crate::pickup::{self, PickupConfig};
use crate::queue::inbox::{IncomingBatch, QueueRequest};
use crate::queue::runner::{self, RunnerParts};
use crate::receive::auth::{self as receive_auth, WorkerAuth};
use crate::receive::inbound::{Inbound, InboundShared};
use crate::spool::{QueueId, Spool, SpoolOptions};
use sites::{SiteListeners, WorkerHandle};

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
    /// The event log file (`[event_log] path`) could not be opened.
    #[error("event_log.path {path}: {source}")]
    EventLog {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The privilege drop (`[service] user`) failed.
    #[error("{0}")]
    Privilege(String),
    /// Any other I/O failure while starting or running (e.g. a worker's poll failed).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Exit status when a second SIGTERM/SIGINT cuts the graceful shutdown short.
const EXIT_FORCED: i32 = 130;

/// How `serve` was started: which file to reload, and how to read it.
pub struct ServeOptions {
    /// The configuration file (`None`: the embedded default), for the events.
    pub config_file: Option<PathBuf>,
    /// Reads and validates the configuration again (SIGHUP, `POST /api/reload`).
    pub loader: Loader,
    /// Started as root with `[service] user`: the account to drop to once every listener
    /// is bound (`privilege::plan`, after `privilege::prepare_mailroot`).
    pub account: Option<privilege::Account>,
}

impl ServeOptions {
    /// No file: a reload re-applies the embedded default `config` was built from.
    #[must_use]
    pub fn fixed(config: &Config) -> ServeOptions {
        let same = config.clone();
        ServeOptions {
            config_file: None,
            loader: Box::new(move || Ok(same.clone())),
            account: None,
        }
    }
}

/// Run the relay until SIGTERM/SIGINT (or a drain); returns after a clean shutdown. A
/// second signal exits at once (status 130).
pub fn serve(config: Config, opts: ServeOptions) -> Result<(), RelayError> {
    // Registered before anything starts: a signal during recovery is queued, not fatal.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    // Bind as whoever started us (root for port 25), then drop privileges while this is
    // still the only thread: everything below (files, certificates, threads) runs as the
    // service account (`privilege`'s module doc).
    raise_fd_limit(&config);
    let bound = bind_all(&config).and_then(|bound| match &opts.account {
        Some(account) => privilege::drop_to(account)
            .map(|()| bound)
            .map_err(|e| RelayError::Privilege(e.to_string())),
        None => Ok(bound),
    });
    let path = config.event_log.enabled.then(|| config.event_log_path());
    let (events, event_thread) = eventlog::spawn(EventLogOptions {
        path: path.clone(),
        max_size_bytes: config.event_log.max_size_bytes,
        keep: config.event_log.keep,
    })
    .map_err(|source| RelayError::EventLog { path: path.unwrap_or_default(), source })?;
    // A bind, drop or start failure is still reported in the event log (opened by whoever we
    // are then: root's file in `Logs/` is given to the account at the next start).
    let running = match bound.and_then(|b| start_bound(config, b, events.clone(), opts)) {
        Ok(r) => r,
        Err(e) => {
            events
                .emit(Event::ServiceStop { reason: format!("start failed: {e}"), by: By::Startup });
            event_thread.stop_and_join();
            return Err(e);
        }
    };
    let handle = signals.handle();
    let stopper = running.stopper();
    let control = Arc::clone(&running.control);
    let signal_thread = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut signals = signals;
        let mut seen = 0;
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                // The file is validated first; certificates are re-read either way.
                log::info!("signal={sig} reloading the configuration and TLS certificates");
                let _ = crate::control::Control::reload(&*control, By::Signal);
                continue;
            }
            seen += 1;
            if seen == 1 {
                log::info!("signal={sig} shutting down");
                let name = if sig == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" };
                control.note_stop(name, By::Signal);
                stopper.stop();
            } else {
                // A second signal means "now": the spool is crash-safe (a message that got
                // 250 is durable; one that did not was never promised).
                log::warn!("signal={sig} again: exiting without waiting");
                std::process::exit(EXIT_FORCED);
            }
        }
    })?;
    let control = Arc::clone(&running.control);
    let result = running.wait();
    handle.close();
    let _ = signal_thread.join();
    for site in control.sites.views() {
        events.emit(Event::SiteStop { site: site.name });
    }
    let (mut reason, by) = control.stop_reason();
    if let Err(e) = &result {
        reason = format!("{reason}; error: {e}");
    }
    events.emit(Event::ServiceStop { reason, by });
    drop(control);
    event_thread.stop_and_join();
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
    /// The AUTH verifier thread, always started (a reload can add users).
    auth_verifier: Option<JoinHandle<()>>,
    /// Implicit-TLS addresses actually bound, per site: `(site name, address)`.
    implicit_tls_listening: Vec<(String, SocketAddr)>,
    /// The `protocol-log` thread, if a site logs.
    protolog: Option<JoinHandle<()>>,
    /// Pause, resume, drain, reload (shared with the admin and signal threads).
    control: Arc<RelayControl>,
    /// The `control` thread (disk-space watch); ends with the shutdown flag.
    control_thread: JoinHandle<()>,
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

    /// Reload every TLS certificate now (what SIGHUP does besides the configuration).
    pub fn reload_certificates(&self) {
        self.control.reload_certificates(By::Signal);
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
        // The workers held the protocol log's senders: it flushes and ends.
        if let Some(p) = self.protolog
            && p.join().is_err()
        {
            first_err.get_or_insert(RelayError::Io(std::io::Error::other("protocol log panicked")));
        }
        if self.control_thread.join().is_err() {
            first_err.get_or_insert(RelayError::Io(std::io::Error::other("control panicked")));
        }
        if self.pickup.join().is_err() {
            first_err.get_or_insert(RelayError::Io(std::io::Error::other("pickup panicked")));
        }
        let queued = self.delivery.runner.join().unwrap_or(0);
        // The runner is gone: stop the outbound loop (tasks in flight stay pending in the
        // spool and are delivered after the next start). The resolver and local-delivery
        // threads end when their channels close (a blocking DNS query may finish first).
        self.delivery.outbound.stop_and_join();
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

/// Open the spool, bind every listener, start the workers and the queue runner, with no
/// event log and reloads re-applying `config` (tests, tools).
pub fn start(config: Config) -> Result<Running, RelayError> {
    let opts = ServeOptions::fixed(&config);
    start_with(config, EventLog::disabled(), opts)
}

/// Open the spool, bind every listener, start the workers and the queue runner. Service
/// events go to `events`; `serve_opts` says how to reload.
pub fn start_with(
    config: Config,
    events: EventLog,
    serve_opts: ServeOptions,
) -> Result<Running, RelayError> {
    raise_fd_limit(&config);
    let bound = bind_all(&config)?;
    start_bound(config, bound, events, serve_opts)
}

/// [`start_with`] on listeners already bound by [`bind_all`] (as root, before the
/// privilege drop).
pub fn start_bound(
    config: Config,
    bound: Bound,
    events: EventLog,
    serve_opts: ServeOptions,
) -> Result<Running, RelayError> {
    let config = Arc::new(config);
    let opts = SpoolOptions {
        segment_bytes: config.spool.segment_bytes,
        min_free_bytes: config.limits.min_free_disk_bytes,
    };
    let (spool, recovered) =
        Spool::open(&config.queue_dir(), opts).map_err(|e| RelayError::Spool(e.to_string()))?;
    log::info!("spool={} recovered={}", config.queue_dir().display(), recovered.len());
    let summary = spool.recovery_summary();
    events.emit(Event::SpoolRecovered {
        messages: recovered.len() as u64,
        segments: summary.segments,
        torn_tails: summary.torn_tails,
        bad_records: summary.bad_records,
        corrupt_segments: summary.corrupt_segments,
    });

    let (queue_tx, queue_rx) = crossbeam_channel::unbounded::<IncomingBatch>();
    let recovered_ids: Vec<QueueId> = recovered.iter().map(|m| m.id).collect();
    drop(recovered);

    let shared = Arc::new(InboundShared::new(Arc::clone(&config))?);
    let certificates = shared.certificates();
    let live_inbound = Live::new(Arc::clone(&shared));
    let live_config = Live::new(Arc::clone(&config));
    let sites =
        SiteStates::new(config.sites.iter().map(|s| (s.name.clone(), Vec::new())).collect());
    let limits =
        ConnLimits::new(config.limits.max_connections, config.limits.max_connections_per_ip);
    let flag = Arc::new(AtomicBool::new(false));

    let Bound { per_worker, addrs, listening, implicit_tls_listening, admin: admin_listener } =
        bound;
    // AUTH: one verifier thread for the relay (argon2 must not run on the event loops),
    // started even without users so a reload can add some.
    let (verifier, auth_verifier) = {
        let (client, thread) = receive_auth::spawn(Arc::clone(&live_config))?;
        (Some(client), Some(thread))
    };
    // The W3C protocol log: one thread for every site (the workers feed it), started even
    // when no site logs so a reload can switch a site's log on (it sleeps meanwhile).
    let protolog_opts = crate::protolog::ProtoLogOptions::from_config(&config);
    let (protolog_parts, protolog_control, protolog) =
        crate::protolog::spawn(protolog_opts, events.clone())?;
    let protolog = Some(protolog);
    // Build every worker before starting any, so a failure leaves no thread behind.
    let mut built = Vec::with_capacity(config.workers);
    let mut wakers = Vec::with_capacity(config.workers);
    let mut handles = Vec::with_capacity(config.workers); // site stop/start (`relay::sites`)
    for (k, sockets) in per_worker.into_iter().enumerate() {
        let poll = WorkerPoll::new()?;
        let waker = poll.waker();
        let mut listeners = Vec::with_capacity(sockets.len());
        for (site, implicit, socket) in sockets {
            let implicit_tls = if implicit { shared.site_tls_config(site) } else { None };
            listeners.push(Listen { socket, tag: site, implicit_tls });
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
            Inbound::new(k, Arc::clone(&shared), spool.clone(), writer, queue_tx.clone())
                .with_control(Arc::clone(&live_inbound), Arc::clone(&sites));
        if let Some(client) = &verifier {
            let auth_waker = Arc::clone(&waker);
            let notify = Box::new(move || {
                let _ = auth_waker.wake();
            });
            service = service.with_auth(WorkerAuth::new(client.clone(), notify));
        }
        service = service.with_protolog(protolog_parts.clone());
        let opts = WorkerOptions {
            index: k,
            shutdown_grace: Duration::from_millis(config.limits.shutdown_grace_ms),
        };
        let (commands, command_rx) = crossbeam_channel::unbounded();
        handles.push(WorkerHandle { commands, waker: Arc::clone(&waker) });
        let worker =
            Worker::new(poll, listeners, service, Arc::clone(&limits), Arc::clone(&flag), opts)?
                .with_commands(command_rx);
        wakers.push(waker);
        built.push(worker);
    }
    drop(verifier); // the workers hold the only request senders now
    drop(protolog_parts); // and the only protocol-log senders
    let listen: Vec<SocketAddr> =
        listening.iter().chain(&implicit_tls_listening).map(|(_, a)| *a).collect();
    let delivery =
        start_delivery(&config, &live_config, &events, &spool, queue_rx, recovered_ids, listen)?;
    let pickup_tx = queue_tx.clone();
    drop(queue_tx);
    let mut workers = Vec::with_capacity(built.len());
    let stopper = Stopper { flag, wakers };
    for (i, site) in config.sites.iter().enumerate() {
        let bound: Vec<String> = listening
            .iter()
            .chain(&implicit_tls_listening)
            .filter(|(name, _)| *name == site.name)
            .map(|(_, a)| a.to_string())
            .collect();
        sites.set_listen(i, bound);
    }
    let control = Arc::new(RelayControl {
        sites: Arc::clone(&sites),
        events: events.clone(),
        config: live_config,
        listeners: SiteListeners { workers: handles, addrs, inbound: Arc::clone(&live_inbound) },
        site_lock: parking_lot::Mutex::new(()),
        inbound: live_inbound,
        certs: certificates,
        protolog: protolog_control,
        loader: serve_opts.loader,
        config_file: serve_opts.config_file.as_ref().map(|p| p.display().to_string()),
        spool: spool.clone(),
        limits: Arc::clone(&limits),
        stopper: stopper.clone(),
        reload_lock: parking_lot::Mutex::new(()),
        draining: AtomicBool::new(false),
        stop_reason: parking_lot::Mutex::new(None),
    });
    // The admin listener (GET /metrics, /api/*, POST control), up before the first SMTP
    // greeting so whoever sees the server answer can control it; stopped by the flag.
    let admin_control: Arc<dyn crate::control::Control> = control.clone();
    let admin = match crate::admin::spawn_on(
        admin_listener,
        &config,
        Arc::clone(&stopper.flag),
        admin_control,
        delivery.requests.clone(),
    ) {
        Ok(a) => a,
        Err(e) => {
            stopper.stop();
            return Err(RelayError::Admin(e));
        }
    };
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
    let pickup = match pickup::spawn_following(
        PickupConfig::from_config(&config),
        Some(Arc::clone(&control.config)),
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
    let control_thread =
        match control::spawn_disk_watch(spool.clone(), events.clone(), Arc::clone(&stopper.flag)) {
            Ok(h) => h,
            Err(e) => {
                stopper.stop();
                return Err(RelayError::Io(e));
            }
        };
    for (site, addr) in &listening {
        log::info!("listening site={site} addr={addr} workers={}", config.workers);
    }
    for (site, addr) in &implicit_tls_listening {
        log::info!("listening site={site} addr={addr} implicit_tls=yes workers={}", config.workers);
    }
    for site in sites.views() {
        events.emit(Event::SiteStart { site: site.name, listen: site.listen });
    }
    events.emit(Event::ServiceStart {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        config_file: control.config_file.clone(),
        sites: config.sites.iter().map(|s| s.name.clone()).collect(),
        listen: listening
            .iter()
            .chain(&implicit_tls_listening)
            .map(|(site, a)| format!("{site}={a}"))
            .collect(),
    });
    Ok(Running {
        listening,
        stopper,
        workers,
        delivery,
        pickup,
        admin,
        auth_verifier,
        implicit_tls_listening,
        protolog,
        control,
        control_thread,
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
    /// Operator actions to the queue runner (handed to the admin listener).
    requests: crossbeam_channel::Sender<QueueRequest>,
}

/// Writer number of the queue runner's own `SpoolWriter` (after the workers' and
/// pickup's).
fn runner_writer_number(config: &Config) -> u32 {
    u32::try_from(config.workers + 1).unwrap_or(u32::MAX)
}

/// Start delivery: the outbound loop, the resolver pool, the local-delivery thread and the
/// queue runner (which owns the scheduler and a spool writer for NDRs, and takes the
/// operator's queue actions on the channel whose sender `Delivery::requests` is).
fn start_delivery(
    config: &Arc<Config>,
    live: &Arc<Live<Config>>,
    events: &EventLog,
    spool: &Spool,
    queue_rx: Receiver<IncomingBatch>,
    recovered: Vec<QueueId>,
    listen: Vec<SocketAddr>,
) -> Result<Delivery, RelayError> {
    // Operator actions: admin thread -> queue runner (each answered on its own reply).
    let (requests_tx, requests) = crossbeam_channel::unbounded::<QueueRequest>();
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
    local_worker::spawn(local_rx, reports_tx, config.delivery.local_concurrency)?;
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
        live: Some(Arc::clone(live)),
        events: events.clone(),
        spool: spool.clone(),
        incoming: queue_rx,
        recovered,
        reports: reports_rx,
        router: Box::new(move |req| router.submit(req)),
        local: local_tx,
        writer,
        committed: commit_rx,
        requests,
    };
    let runner = std::thread::Builder::new()
        .name("queue-runner".into())
        .spawn(move || runner::run(parts))?;
    Ok(Delivery { runner, outbound: outbound_thread, requests: requests_tx })
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
