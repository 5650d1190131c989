//! Service control shared between the threads: which sites are paused, the swappable
//! configuration snapshots a reload publishes, and the control surface the admin listener
//! calls ([`Control`], implemented by the wiring in `relay::control`).
//!
//! Layer 0: atomics and one `parking_lot::RwLock` per snapshot; no thread, file, socket
//! or clock.
//!
//! PAUSE (IIS semantics): a paused site answers every *new* connection `421 4.3.2 Service
//! paused` and closes it; established sessions finish; the queue keeps delivering. The
//! listener stays bound, so resuming cannot fail (the port cannot be taken meanwhile), a
//! client learns why it was turned away (a 421 makes a sender retry later, a refused
//! connect may make it try the next MX at once), and no worker has to be woken: each
//! reads the site's [`AtomicBool`] once per accepted connection (`receive::inbound`).
//!
//! STOP (IIS "Stop" of a virtual server, distinct from pause): the site's listeners are
//! closed in every worker (a new connection is refused by the kernel), its sessions are
//! told `421 4.3.2` as at shutdown (an idle one at once, one in a transaction after its
//! message is queued), the queue keeps delivering. Start binds its addresses again and
//! can fail (address in use); the site then stays stopped. The wiring does the sockets
//! (`relay::sites`); [`SiteStates`] only records the state. Stop and pause are
//! independent: a paused site that is stopped and started again is still paused.
//!
//! SNAPSHOTS: [`Live`] holds an `Arc<T>` and a generation number. The publisher (a
//! reload) swaps the `Arc` and bumps the generation; a reader keeps its own `Arc` and
//! compares generations once per pass or per session ([`Live::refresh`]): one relaxed
//! atomic load, no lock, unless something changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::diff::Change;
use crate::eventlog::event::By;

/// A value replaced as a whole by a reload, read by many threads.
#[derive(Debug)]
pub struct Live<T> {
    /// Bumped after every `store`.
    generation: AtomicU64,
    /// The current value.
    current: RwLock<Arc<T>>,
}

impl<T> Live<T> {
    /// A snapshot holding `value` at generation 0.
    pub fn new(value: Arc<T>) -> Arc<Live<T>> {
        Arc::new(Live { generation: AtomicU64::new(0), current: RwLock::new(value) })
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.current.read())
    }

    /// Replace the value (readers see it at their next `refresh`).
    pub fn store(&self, value: Arc<T>) {
        *self.current.write() = value;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// If a newer value was stored since `*seen`, put it in `mine`, update `*seen` and
    /// return true.
    pub fn refresh(&self, seen: &mut u64, mine: &mut Arc<T>) -> bool {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return false;
        }
        *mine = self.load();
        *seen = g;
        true
    }

    /// The current generation (to start a reader's `seen`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// Running / paused per site, shared by every worker and the control surface.
#[derive(Debug)]
pub struct SiteStates {
    /// Per site (index = site index, as `Peer::listener_tag`).
    sites: Box<[SiteState]>,
}

/// One site's control state.
#[derive(Debug)]
struct SiteState {
    /// The site's name.
    name: String,
    /// Its bound addresses (SMTP and implicit TLS), as text; set once the listeners are
    /// bound (a `:0` port is known only then).
    listen: RwLock<Vec<String>>,
    /// New connections get `421 4.3.2` while set.
    paused: AtomicBool,
    /// The site's listeners are closed (`Control::stop_site`) while set.
    stopped: AtomicBool,
}

/// A site as `GET /api/sites` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteView {
    /// The site's name.
    pub name: String,
    /// `"running"`, `"paused"` or `"stopped"` (stopped wins: a stopped site is also
    /// paused when `paused` says so, and is paused once started again).
    pub state: &'static str,
    /// New connections would get `421 4.3.2`.
    pub paused: bool,
    /// Bound addresses.
    pub listen: Vec<String>,
}

impl SiteStates {
    /// Every site running; `sites` = (name, addresses) in site order.
    pub fn new(sites: Vec<(String, Vec<String>)>) -> Arc<SiteStates> {
        let sites = sites
            .into_iter()
            .map(|(name, listen)| SiteState {
                name,
                listen: RwLock::new(listen),
                paused: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
            })
            .collect();
        Arc::new(SiteStates { sites })
    }

    /// Record the addresses site `index` is actually bound to.
    pub fn set_listen(&self, index: usize, listen: Vec<String>) {
        if let Some(s) = self.sites.get(index) {
            *s.listen.write() = listen;
        }
    }

    /// Is site `index` paused? (An unknown index is not.)
    #[must_use]
    pub fn is_paused(&self, index: usize) -> bool {
        self.sites.get(index).is_some_and(|s| s.paused.load(Ordering::Relaxed))
    }

    /// Pause or resume the sites `which` selects; the names of those whose state changed.
    /// `Err(name)` if `which` names no site (nothing changes then).
    pub fn set_paused(&self, which: Option<&str>, paused: bool) -> Result<Vec<String>, String> {
        if let Some(name) = which
            && !self.sites.iter().any(|s| s.name == name)
        {
            return Err(name.to_owned());
        }
        let mut changed = Vec::new();
        for s in self.sites.iter().filter(|s| which.is_none_or(|n| s.name == n)) {
            if s.paused.swap(paused, Ordering::Relaxed) != paused {
                changed.push(s.name.clone());
            }
        }
        Ok(changed)
    }

    /// The index of the site called `name`.
    #[must_use]
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.name == name)
    }

    /// Is site `index` stopped (listeners closed)? (An unknown index is not.)
    #[must_use]
    pub fn is_stopped(&self, index: usize) -> bool {
        self.sites.get(index).is_some_and(|s| s.stopped.load(Ordering::Acquire))
    }

    /// Record site `index` as stopped or not (the caller has closed or bound its
    /// listeners); whether the state changed.
    pub fn set_stopped(&self, index: usize, stopped: bool) -> bool {
        self.sites.get(index).is_some_and(|s| s.stopped.swap(stopped, Ordering::AcqRel) != stopped)
    }

    /// Every site with its state.
    #[must_use]
    pub fn views(&self) -> Vec<SiteView> {
        self.sites
            .iter()
            .map(|s| {
                let paused = s.paused.load(Ordering::Relaxed);
                let state = if s.stopped.load(Ordering::Acquire) {
                    "stopped"
                } else if paused {
                    "paused"
                } else {
                    "running"
                };
                SiteView { name: s.name.clone(), state, paused, listen: s.listen.read().clone() }
            })
            .collect()
    }
}

/// Why a control request did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// `--site` / `/api/sites/{site}` names no configured site.
    #[error("no such site: {0}")]
    NoSuchSite(String),
    /// A drain is already running.
    #[error("a drain is already in progress")]
    DrainInProgress,
    /// A stopped site could not be started (its addresses could not be bound); it
    /// stays stopped.
    #[error("site {site} stays stopped: {error}")]
    StartFailed {
        /// The site.
        site: String,
        /// What failed, e.g. `cannot listen on 127.0.0.1:25: Address already in use`.
        error: String,
    },
    /// The workers did not carry out a stop or start (the server is shutting down).
    #[error("{0}")]
    Workers(String),
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadOutcome {
    /// The new file is running (except `restart_needed`).
    Applied {
        /// Every changed key, secrets masked.
        changes: Vec<Change>,
        /// Keys that keep their old value until a restart.
        restart_needed: Vec<String>,
    },
    /// The file was refused; the running configuration is unchanged.
    Refused {
        /// Why (naming the key).
        error: String,
    },
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// The queue is empty and no inbound connection is open; the server is stopping.
    Drained,
    /// The timeout passed first; every site stays paused, the server keeps running.
    TimedOut {
        /// Messages still queued.
        queued: u64,
        /// Inbound connections still open.
        connections: u64,
    },
}

/// What the admin listener may ask of the running server (implemented by the wiring).
pub trait Control: Send + Sync {
    /// Every site and its state.
    fn sites(&self) -> Vec<SiteView>;
    /// Pause one site (`Some(name)`) or all; the names actually paused now.
    fn pause(&self, site: Option<&str>, by: By) -> Result<Vec<String>, ControlError>;
    /// Resume one site or all; the names actually resumed now.
    fn resume(&self, site: Option<&str>, by: By) -> Result<Vec<String>, ControlError>;
    /// Stop one site: close its listeners in every worker (see the module doc); the
    /// names actually stopped now (empty if it already was).
    fn stop_site(&self, site: &str, by: By) -> Result<Vec<String>, ControlError>;
    /// Start a stopped site: bind its addresses again; the names actually started now.
    /// `StartFailed` (the site stays stopped) if an address cannot be bound.
    fn start_site(&self, site: &str, by: By) -> Result<Vec<String>, ControlError>;
    /// Read, validate and apply the configuration file; certificates are re-read too.
    fn reload(&self, by: By) -> ReloadOutcome;
    /// Pause every site, then wait (blocking the caller) until the queue is empty and no
    /// inbound connection is open, or `timeout` passes. On `Drained` the server stops.
    fn drain(&self, timeout: Duration, by: By) -> Result<DrainOutcome, ControlError>;
    /// Stop the server (after a drain was answered): what SIGTERM does.
    fn shutdown(&self, reason: &str, by: By);
    /// The newest `limit` event-log lines, oldest first.
    fn recent_events(&self, limit: usize) -> Vec<String>;
    /// The configuration the server runs with now (after reloads). Show it with
    /// `Config::to_masked_json`, never `to_toml` (the admin token is in it).
    fn running_config(&self) -> Arc<crate::config::Config>;
    /// Write `event` to the event log (e.g. a refused request, a queue action).
    fn log_event(&self, event: crate::eventlog::event::Event);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> Arc<SiteStates> {
        SiteStates::new(vec![
            ("a".into(), vec!["127.0.0.1:25".into()]),
            ("b".into(), vec!["127.0.0.1:26".into()]),
        ])
    }

    #[test]
    fn pause_and_resume() {
        let s = states();
        // (site, pause?, result, paused after: [a, b])
        type Case<'a> = (Option<&'a str>, bool, Result<&'a [&'a str], &'a str>, [bool; 2]);
        let cases: &[Case<'_>] = &[
            (Some("a"), true, Ok(&["a"]), [true, false]),
            (Some("a"), true, Ok(&[]), [true, false]),
            (None, true, Ok(&["b"]), [true, true]),
            (Some("zz"), false, Err("zz"), [true, true]),
            (Some("b"), false, Ok(&["b"]), [true, false]),
            (None, false, Ok(&["a"]), [false, false]),
        ];
        for (site, pause, want, after) in cases {
            let got = s.set_paused(*site, *pause);
            let want = want.map(|w| w.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
            assert_eq!(got, want.map_err(str::to_owned), "{site:?} {pause}");
            assert_eq!([s.is_paused(0), s.is_paused(1)], *after, "{site:?} {pause}");
        }
        assert!(!s.is_paused(7));
        let v = s.views();
        assert_eq!(
            v[0],
            SiteView {
                name: "a".into(),
                state: "running",
                paused: false,
                listen: vec!["127.0.0.1:25".into()]
            }
        );
    }

    #[test]
    fn stop_is_independent_of_pause() {
        let s = states();
        let state = |i: usize| s.views()[i].state;
        // (action, changed, states after: [a, b])
        type Step<'a> = (&'a dyn Fn() -> bool, bool, [&'a str; 2]);
        let steps: &[Step<'_>] = &[
            (&|| s.set_stopped(1, true), true, ["running", "stopped"]),
            (&|| s.set_stopped(1, true), false, ["running", "stopped"]),
            (
                &|| s.set_paused(Some("b"), true).is_ok_and(|c| c.len() == 1),
                true,
                ["running", "stopped"],
            ),
            (&|| s.set_stopped(1, false), true, ["running", "paused"]),
            (&|| s.set_stopped(7, true), false, ["running", "paused"]),
        ];
        for (i, (act, changed, after)) in steps.iter().enumerate() {
            assert_eq!(act(), *changed, "step {i}");
            assert_eq!([state(0), state(1)], *after, "step {i}");
        }
        assert!(!s.is_stopped(1) && s.is_paused(1));
        assert_eq!((s.index_of("b"), s.index_of("zz")), (Some(1), None));
    }

    #[test]
    fn live_refresh() {
        let live = Live::new(Arc::new(1));
        let mut seen = live.generation();
        let mut mine = live.load();
        assert!(!live.refresh(&mut seen, &mut mine));
        live.store(Arc::new(2));
        assert!(live.refresh(&mut seen, &mut mine));
        assert_eq!(*mine, 2);
        assert!(!live.refresh(&mut seen, &mut mine));
    }
}
