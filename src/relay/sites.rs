//! Stopping and starting a site at run time: its listeners closed in, or bound again for,
//! every worker (`control` module doc says what stop means to clients and sessions).
//!
//! Each worker owns one `SO_REUSEPORT` listener per site address, so a stop is one
//! `net::worker::ListenerCommand::Close` per worker (its command channel + its waker),
//! and a start binds the site's addresses again here, once per worker, and hands each
//! worker its share with `Open`. Binding here, on the caller's thread, is what lets a
//! start fail cleanly: nothing reaches a worker unless every socket is bound. Each
//! command is answered by the worker once carried out; the caller waits (bounded), so
//! when `stop` returns no worker accepts for the site any more.
//!
//! A start probes each address first with `listener::ensure_unused` (as the relay does at
//! start-up): another socket on the port, `SO_REUSEPORT` or not, makes the start fail with
//! `AddrInUse` instead of silently sharing the port. A configured `:0` port is bound again
//! to the port the site got at start-up (the one clients were told).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::Waker;

use crate::control::Live;
use crate::net::listener;
use crate::net::worker::{Listen, ListenerCommand};
use crate::receive::inbound::InboundShared;

/// How long a stop or start waits for every worker to answer.
const WORKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// One worker's command channel and waker.
pub(super) struct WorkerHandle {
    /// Listener commands to the worker.
    pub(super) commands: Sender<ListenerCommand>,
    /// Rings the worker's poll.
    pub(super) waker: Arc<Waker>,
}

/// What a stop or start needs: the workers, and every site address as bound at start.
pub(super) struct SiteListeners {
    /// Every worker, in worker order.
    pub(super) workers: Vec<WorkerHandle>,
    /// (site index, address as bound at start-up, implicit TLS).
    pub(super) addrs: Vec<(usize, SocketAddr, bool)>,
    /// The sites' TLS configurations (for implicit-TLS listeners).
    pub(super) inbound: Arc<Live<InboundShared>>,
}

impl SiteListeners {
    /// Close site `site`'s listeners in every worker; returns once each has done it.
    pub(super) fn close(&self, site: usize) -> Result<(), String> {
        self.each_worker(|_, done| ListenerCommand::Close { tag: site, done })
    }

    /// Bind site `site`'s addresses again (one socket per worker and address) and give
    /// each worker its share; the bound addresses. Nothing changes on an error.
    pub(super) fn open(&self, site: usize) -> Result<Vec<String>, String> {
        let mine: Vec<(SocketAddr, bool)> =
            self.addrs.iter().filter(|(s, _, _)| *s == site).map(|(_, a, t)| (*a, *t)).collect();
        for (addr, _) in &mine {
            listener::ensure_unused(*addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        }
        let shared = self.inbound.load();
        let mut per_worker: Vec<Option<Vec<Listen>>> = Vec::with_capacity(self.workers.len());
        for _ in &self.workers {
            let mut ls = Vec::with_capacity(mine.len());
            for (addr, implicit) in &mine {
                let socket =
                    listener::bind(*addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let implicit_tls = if *implicit { shared.site_tls_config(site) } else { None };
                ls.push(Listen { socket, tag: site, implicit_tls });
            }
            per_worker.push(Some(ls));
        }
        self.each_worker(|k, done| ListenerCommand::Open {
            listeners: per_worker[k].take().unwrap_or_default(),
            done,
        })
        .inspect_err(|_| {
            // Some workers may have taken theirs: close them again.
            let _ = self.close(site);
        })?;
        Ok(mine.iter().map(|(a, _)| a.to_string()).collect())
    }

    /// Send `make(k, done)` to every worker `k`, ring it, and wait for every answer.
    fn each_worker(
        &self,
        mut make: impl FnMut(usize, Sender<Result<(), String>>) -> ListenerCommand,
    ) -> Result<(), String> {
        let (done, answers) = crossbeam_channel::bounded(self.workers.len());
        for (k, w) in self.workers.iter().enumerate() {
            if w.commands.send(make(k, done.clone())).is_err() {
                return Err("the server is shutting down".into());
            }
            let _ = w.waker.wake();
        }
        drop(done);
        let deadline = Instant::now() + WORKER_ANSWER_TIMEOUT;
        let mut first_err = None;
        for _ in &self.workers {
            let left = deadline.saturating_duration_since(Instant::now());
            match answers.recv_timeout(left) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => return Err("a worker did not answer (is the server stopping?)".into()),
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
