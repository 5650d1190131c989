//! Binding: every SMTP listener (one `SO_REUSEPORT` socket per site address per worker)
//! and the admin listener, bound before anything else starts, so `relay::serve` can bind
//! as root and then drop privileges (`relay::privilege`) before the first thread.

use std::net::SocketAddr;

use super::RelayError;
use crate::config::Config;
use crate::net::listener;

/// One bound SMTP listener: `(site index, implicit TLS, socket)`.
pub(super) type Bound1 = (usize, bool, mio::net::TcpListener);

/// Every listening socket of the relay, not yet served.
pub struct Bound {
    /// Per worker (index = worker number), one socket per site address.
    pub(super) per_worker: Vec<Vec<Bound1>>,
    /// Every address as bound, `(site index, address, implicit TLS)` (for site start).
    pub(super) addrs: Vec<(usize, SocketAddr, bool)>,
    /// Addresses actually bound (a `:0` port resolved), per site: `(site name, address)`.
    pub(super) listening: Vec<(String, SocketAddr)>,
    /// Implicit-TLS addresses actually bound, per site.
    pub(super) implicit_tls_listening: Vec<(String, SocketAddr)>,
    /// The admin listener, if `[admin] listen` is set.
    pub(super) admin: Option<std::net::TcpListener>,
}

/// Bind every listener of `config` (`config.workers` sockets per address; a `:0` port
/// becomes the port worker 0 got, so every worker shares it) and the admin listener.
pub fn bind_all(config: &Config) -> Result<Bound, RelayError> {
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
    let mut per_worker = Vec::with_capacity(config.workers);
    let mut listening = Vec::new();
    let mut implicit_tls_listening = Vec::new();
    for k in 0..config.workers {
        let mut sockets = Vec::with_capacity(addrs.len());
        for (site, addr, implicit) in &mut addrs {
            let l =
                listener::bind(*addr).map_err(|source| RelayError::Bind { addr: *addr, source })?;
            if k == 0 {
                *addr = l.local_addr()?;
                let named = (config.sites[*site].name.clone(), *addr);
                if *implicit { implicit_tls_listening.push(named) } else { listening.push(named) }
            }
            sockets.push((*site, *implicit, l));
        }
        per_worker.push(sockets);
    }
    let admin = crate::admin::bind(config).map_err(RelayError::Admin)?;
    Ok(Bound { per_worker, addrs, listening, implicit_tls_listening, admin })
}
