//! The running server's control surface (`control::Control`): pause, resume, site stop
//! and start (`relay::sites`), drain, reload, and the disk-space watch, each written to
//! the event log.
//!
//! Called from the admin thread (POSTs), the signal thread (SIGHUP = reload) and the
//! `control` thread (disk space). Pause and resume flip the per-site flags the workers
//! read at accept; reload builds new snapshots and publishes them through
//! `control::Live` (the workers, the queue runner and the AUTH verifier pick them up on
//! their own); nothing here blocks a worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Stopper;
use super::sites::SiteListeners;
use crate::config::Config;
use crate::config::diff::plan_reload;
use crate::control::{
    Control, ControlError, DrainOutcome, Live, ReloadOutcome, SiteStates, SiteView,
};
use crate::eventlog::{By, Event, EventLog};
use crate::net::limits::ConnLimits;
use crate::net::tls_cert::ReloadableCert;
use crate::protolog::{ProtoLogControl, ProtoLogOptions};
use crate::receive::inbound::InboundShared;
use crate::spool::Spool;

/// Reads and validates the configuration file again (the same checks as start-up:
/// `cli::load_config` and the certificate check); the error text names the key.
pub type Loader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// How often a drain looks at the queue.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// How often the `control` thread checks the spool's free space.
const DISK_POLL: Duration = Duration::from_secs(1);

/// The wiring's implementation of [`Control`].
pub(super) struct RelayControl {
    /// Paused flags, shared with every worker.
    pub(super) sites: Arc<SiteStates>,
    /// The event log.
    pub(super) events: EventLog,
    /// The running configuration (runner, AUTH verifier).
    pub(super) config: Arc<Live<Config>>,
    /// The workers' settings.
    pub(super) inbound: Arc<Live<InboundShared>>,
    /// Every server certificate, re-read by each reload.
    pub(super) certs: Vec<Arc<ReloadableCert>>,
    /// The protocol log's settings (switched on/off, moved, re-rotated by a reload).
    pub(super) protolog: ProtoLogControl,
    /// Reads the configuration file again.
    pub(super) loader: Loader,
    /// The file `loader` reads, for the events (`None`: the embedded default).
    pub(super) config_file: Option<String>,
    /// The spool (queue length for a drain).
    pub(super) spool: Spool,
    /// Open inbound connections (for a drain).
    pub(super) limits: Arc<ConnLimits>,
    /// Starts shutdown.
    pub(super) stopper: Stopper,
    /// One reload at a time (SIGHUP and the admin API may race).
    pub(super) reload_lock: Mutex<()>,
    /// A drain is waiting.
    pub(super) draining: AtomicBool,
    /// Why the server stops, for the `service.stop` event (first writer wins).
    pub(super) stop_reason: Mutex<Option<(String, By)>>,
    /// The workers' listeners, for site stop and start.
    pub(super) listeners: SiteListeners,
    /// One site stop or start at a time.
    pub(super) site_lock: Mutex<()>,
}

impl RelayControl {
    /// Pause or resume, with one event per site whose state changed.
    fn set_paused(
        &self,
        site: Option<&str>,
        paused: bool,
        by: By,
    ) -> Result<Vec<String>, ControlError> {
        let changed = self.sites.set_paused(site, paused).map_err(ControlError::NoSuchSite)?;
        for name in &changed {
            log::info!(
                "site={name} {} by={}",
                if paused { "paused" } else { "resumed" },
                by.as_str()
            );
            self.events.emit(if paused {
                Event::SitePause { site: name.clone(), by }
            } else {
                Event::SiteResume { site: name.clone(), by }
            });
        }
        Ok(changed)
    }

    /// The index of site `name`.
    fn site_index(&self, name: &str) -> Result<usize, ControlError> {
        self.sites.index_of(name).ok_or_else(|| ControlError::NoSuchSite(name.to_owned()))
    }

    /// Read every certificate again; one event each.
    pub(super) fn reload_certificates(&self, by: By) {
        for c in &self.certs {
            let cert = c.cert_path().display().to_string();
            match c.reload() {
                Ok(()) => {
                    log::info!("tls certificate reloaded cert={cert}");
                    self.events.emit(Event::CertReload { by, cert });
                }
                Err(e) => {
                    log::error!("tls reload refused, keeping the old certificate: {e}");
                    self.events.emit(Event::CertReloadRefused { by, cert, error: e.to_string() });
                }
            }
        }
    }

    /// Remember why the server stops (the first reason given wins).
    pub(super) fn note_stop(&self, reason: &str, by: By) {
        self.stop_reason.lock().get_or_insert_with(|| (reason.to_owned(), by));
    }

    /// The reason noted, or "stopped" when the workers ended on their own.
    pub(super) fn stop_reason(&self) -> (String, By) {
        self.stop_reason.lock().clone().unwrap_or_else(|| ("stopped".to_owned(), By::Startup))
    }
}

impl Control for RelayControl {
    fn sites(&self) -> Vec<SiteView> {
        self.sites.views()
    }

    fn pause(&self, site: Option<&str>, by: By) -> Result<Vec<String>, ControlError> {
        self.set_paused(site, true, by)
    }

    fn resume(&self, site: Option<&str>, by: By) -> Result<Vec<String>, ControlError> {
        self.set_paused(site, false, by)
    }

    fn stop_site(&self, site: &str, by: By) -> Result<Vec<String>, ControlError> {
        let i = self.site_index(site)?;
        let _one_at_a_time = self.site_lock.lock();
        if self.sites.is_stopped(i) {
            return Ok(Vec::new());
        }
        self.listeners.close(i).map_err(ControlError::Workers)?;
        self.sites.set_stopped(i, true);
        log::info!("site={site} stopped (listeners closed) by={}", by.as_str());
        self.events.emit(Event::SiteStopped { site: site.to_owned(), by });
        Ok(vec![site.to_owned()])
    }

    fn start_site(&self, site: &str, by: By) -> Result<Vec<String>, ControlError> {
        let i = self.site_index(site)?;
        let _one_at_a_time = self.site_lock.lock();
        if !self.sites.is_stopped(i) {
            return Ok(Vec::new());
        }
        match self.listeners.open(i) {
            Ok(listen) => {
                self.sites.set_listen(i, listen.clone());
                self.sites.set_stopped(i, false);
                log::info!("site={site} started listen={} by={}", listen.join(","), by.as_str());
                self.events.emit(Event::SiteStarted { site: site.to_owned(), by, listen });
                Ok(vec![site.to_owned()])
            }
            Err(error) => {
                log::error!("site={site} start refused, it stays stopped: {error}");
                self.events.emit(Event::SiteStartRefused {
                    site: site.to_owned(),
                    by,
                    error: error.clone(),
                });
                Err(ControlError::StartFailed { site: site.to_owned(), error })
            }
        }
    }

    fn reload(&self, by: By) -> ReloadOutcome {
        let _one_at_a_time = self.reload_lock.lock();
        let outcome = match (self.loader)() {
            Err(error) => {
                log::error!("configuration reload refused, keeping the running one: {error}");
                self.events.emit(Event::ConfigReloadRefused {
                    by,
                    config_file: self.config_file.clone(),
                    error: error.clone(),
                });
                ReloadOutcome::Refused { error }
            }
            Ok(new) => {
                let old = self.config.load();
                let plan = plan_reload(&old, &new);
                let running = Arc::new(plan.running);
                let l = &running.limits;
                self.limits.set_limits(l.max_connections, l.max_connections_per_ip);
                self.spool.set_min_free_bytes(l.min_free_disk_bytes);
                self.protolog.reconfigure(ProtoLogOptions::from_config(&running));
                let inbound = self.inbound.load().reconfigured(Arc::clone(&running));
                self.inbound.store(Arc::new(inbound));
                self.config.store(running);
                log::info!(
                    "configuration reloaded: {} change(s), {} need a restart",
                    plan.changes.len(),
                    plan.restart_needed.len()
                );
                for key in &plan.restart_needed {
                    log::warn!("configuration key {key} changed: takes effect after a restart");
                }
                self.events.emit(Event::ConfigReload {
                    by,
                    config_file: self.config_file.clone(),
                    changes: plan.changes.clone(),
                    restart_needed: plan.restart_needed.clone(),
                });
                ReloadOutcome::Applied {
                    changes: plan.changes,
                    restart_needed: plan.restart_needed,
                }
            }
        };
        // The certificate files' content is re-read either way (what SIGHUP always did):
        // a renewed certificate must not wait for a configuration typo to be fixed.
        self.reload_certificates(by);
        outcome
    }

    fn drain(&self, timeout: Duration, by: By) -> Result<DrainOutcome, ControlError> {
        if self.draining.swap(true, Ordering::AcqRel) {
            return Err(ControlError::DrainInProgress);
        }
        self.set_paused(None, true, by)?;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.events.emit(Event::DrainStart { by, timeout_ms });
        log::info!("draining: every site paused, waiting for the queue to empty");
        let deadline = Instant::now() + timeout;
        let outcome = loop {
            let queued = self.spool.live_messages() as u64;
            let connections = self.limits.total() as u64;
            if queued == 0 && connections == 0 {
                self.events.emit(Event::Drained { by });
                break DrainOutcome::Drained;
            }
            if Instant::now() >= deadline {
                log::warn!(
                    "drain timed out: {queued} queued, {connections} connections; sites stay paused"
                );
                self.events.emit(Event::DrainTimeout { by, queued, connections });
                break DrainOutcome::TimedOut { queued, connections };
            }
            std::thread::sleep(DRAIN_POLL);
        };
        self.draining.store(false, Ordering::Release);
        Ok(outcome)
    }

    fn shutdown(&self, reason: &str, by: By) {
        self.note_stop(reason, by);
        self.stopper.stop();
    }

    fn recent_events(&self, limit: usize) -> Vec<String> {
        self.events.recent(limit)
    }

    fn running_config(&self) -> Arc<Config> {
        self.config.load()
    }

    fn log_event(&self, event: Event) {
        self.events.emit(event);
    }
}

/// The `control` thread: reports the spool's free space crossing `limits.min_free_disk`
/// (both ways) until `stop` is set.
pub(super) fn spawn_disk_watch(
    spool: Spool,
    events: EventLog,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("control".into()).spawn(move || {
        let path = spool.queue_dir().display().to_string();
        let mut ok = true;
        while !stop.load(Ordering::Acquire) {
            let now_ok = spool.has_free_space();
            if now_ok != ok {
                ok = now_ok;
                let min_free_bytes = spool.min_free_bytes();
                let path = path.clone();
                events.emit(if ok {
                    log::info!("spool disk space recovered path={path}");
                    Event::DiskRecovered { path, min_free_bytes }
                } else {
                    log::warn!("spool disk space low path={path} min_free_bytes={min_free_bytes}");
                    Event::DiskLow { path, min_free_bytes }
                });
            }
            // Short sleeps so shutdown is not held up.
            let until = Instant::now() + DISK_POLL;
            while Instant::now() < until && !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}
