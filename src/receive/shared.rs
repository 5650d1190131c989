//! What every worker's `Inbound` reads of the configuration, built once per
//! configuration: the `Config`, each site's `smtp::server::ServerConfig`, and the sites'
//! TLS material. A reload builds a new one ([`InboundShared::reconfigured`], keeping the
//! loaded certificates) and publishes it through a `control::Live`; each worker picks it
//! up at the start of its next pass.

use std::sync::Arc;

use crate::config::Config;
use crate::smtp::server::ServerConfig;

use super::tls::{InboundTls, TlsSetupError};

/// Configuration shared (read-only) by every worker's `Inbound`.
#[derive(Debug)]
pub struct InboundShared {
    /// The whole configuration.
    pub(super) config: Arc<Config>,
    /// What the SMTP sessions need, built once per site (index = site index).
    pub(super) server: Vec<Arc<ServerConfig>>,
    /// Certificates and rustls configurations per site (shared by every reload: the
    /// certificate paths cannot change live, their content is re-read in place).
    tls: Arc<InboundTls>,
}

impl InboundShared {
    /// Derive the session configuration from `config` and load every site's certificate.
    pub fn new(config: Arc<Config>) -> Result<InboundShared, TlsSetupError> {
        let tls = Arc::new(InboundTls::load(&config)?);
        Ok(InboundShared::build(config, tls))
    }

    /// The same certificates under a new configuration (a reload; the certificate paths
    /// and the sites are the running ones, `config::diff::plan_reload` sees to that).
    #[must_use]
    pub fn reconfigured(&self, config: Arc<Config>) -> InboundShared {
        InboundShared::build(config, Arc::clone(&self.tls))
    }

    /// Derive the per-site session settings.
    fn build(config: Arc<Config>, tls: Arc<InboundTls>) -> InboundShared {
        let server = (0..config.sites.len().max(1))
            .map(|i| {
                Arc::new(server_config(&config, i, tls.sites.get(i).is_some_and(Option::is_some)))
            })
            .collect();
        InboundShared { config, server, tls }
    }

    /// The configuration these settings were built from.
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The rustls configuration of site `site`'s implicit-TLS listeners, if it has TLS.
    pub fn site_tls_config(&self, site: usize) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.sites.get(site)?.as_ref().map(|t| Arc::clone(&t.server))
    }

    /// Every distinct certificate, for the SIGHUP reload (`receive::tls::reload_all`).
    pub fn certificates(&self) -> Vec<Arc<crate::net::tls_cert::ReloadableCert>> {
        self.tls.certs.clone()
    }
}

/// `ServerConfig` of site `site` from the relay configuration.
fn server_config(c: &Config, site: usize, has_tls: bool) -> ServerConfig {
    ServerConfig {
        hostname: c.hostname.clone(),
        max_message_size_bytes: c.limits.max_message_size_bytes,
        max_recipients: c.limits.max_recipients,
        max_messages_per_connection: c.limits.max_messages_per_connection,
        max_errors: c.limits.max_errors,
        bare_line_ending: c.smtp.bare_line_ending,
        enable_chunking: true,
        enable_smtputf8: true,
        enable_auth: !c.auth.users.is_empty(),
        allow_plaintext_auth: c.auth.allow_plaintext_auth,
        max_auth_failures: c.auth.max_auth_failures,
        starttls: has_tls,
        require_tls: has_tls && c.sites.get(site).is_some_and(|s| s.tls.require_tls),
    }
}
