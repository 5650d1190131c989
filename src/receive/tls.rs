//! The inbound TLS material of every site: the certificate each site serves (loaded once
//! per distinct chain/key pair, so sites sharing `[tls]` share one reloadable
//! certificate), the rustls `ServerConfig` around it, and the SIGHUP reload of them all.
//!
//! TRUST: certificate and key files are the operator's (`config`), read with
//! `net::tls_cert` (a bad file is an error naming the file, never a panic). At start-up a
//! bad file stops the relay; at reload it is logged and the old certificate stays.

use std::sync::Arc;

use crate::config::{Config, TlsFiles};
use crate::net::TlsInfo as NetTlsInfo;
use crate::net::tls_cert::{self, CertError, ReloadableCert};
use crate::smtp::server::TlsInfo;

/// TLS of one site.
#[derive(Debug, Clone)]
pub struct SiteTlsRuntime {
    /// The rustls server configuration (STARTTLS and implicit-TLS listeners).
    pub server: Arc<rustls::ServerConfig>,
}

/// Every site's TLS, and the certificates to reload.
#[derive(Debug, Default)]
pub struct InboundTls {
    /// Per site (index = site index): `None` when the site has no certificate.
    pub sites: Vec<Option<SiteTlsRuntime>>,
    /// Each distinct certificate once.
    pub certs: Vec<Arc<ReloadableCert>>,
}

/// Why the TLS material could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A certificate or key file is unusable.
    #[error("site {site}: {source}")]
    Cert {
        /// The site's name.
        site: String,
        /// The file problem.
        source: CertError,
    },
    /// rustls refused the configuration.
    #[error("site {site}: TLS configuration: {source}")]
    Config {
        /// The site's name.
        site: String,
        /// rustls' error.
        source: rustls::Error,
    },
}

impl InboundTls {
    /// Load every site's certificate (each distinct file pair once).
    pub fn load(config: &Config) -> Result<InboundTls, TlsSetupError> {
        let mut out = InboundTls::default();
        let mut loaded: Vec<(TlsFiles, Arc<rustls::ServerConfig>)> = Vec::new();
        for (i, site) in config.sites.iter().enumerate() {
            let Some(files) = config.site_tls_files(i) else {
                out.sites.push(None);
                continue;
            };
            if let Some((_, server)) = loaded.iter().find(|(f, _)| f == files) {
                out.sites.push(Some(SiteTlsRuntime { server: Arc::clone(server) }));
                continue;
            }
            let cert = ReloadableCert::load(&files.cert, &files.key)
                .map_err(|source| TlsSetupError::Cert { site: site.name.clone(), source })?;
            let server = tls_cert::server_config(Arc::clone(&cert))
                .map_err(|source| TlsSetupError::Config { site: site.name.clone(), source })?;
            out.certs.push(cert);
            loaded.push((files.clone(), Arc::clone(&server)));
            out.sites.push(Some(SiteTlsRuntime { server }));
        }
        Ok(out)
    }
}

/// Reload every certificate (SIGHUP): new handshakes get the new files, open connections
/// keep theirs; a file that does not load is logged and its old certificate kept.
pub fn reload_all(certs: &[Arc<ReloadableCert>]) {
    for c in certs {
        match c.reload() {
            Ok(()) => log::info!("tls certificate reloaded cert={}", c.cert_path().display()),
            Err(e) => log::error!("tls reload refused, keeping the old certificate: {e}"),
        }
    }
}

/// The session's view of what `net` negotiated (`TLSv1_3` is written `TLSv1.3`, the
/// spelling `Received:` headers use).
pub fn session_info(info: &NetTlsInfo) -> TlsInfo {
    TlsInfo { version: info.version.replace('_', "."), cipher: info.cipher.to_owned() }
}
