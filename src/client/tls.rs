//! The library's TLS client settings: a rustls `ClientConfig` that always checks the
//! server's certificate chain and name.
//!
//! WHAT: roots are Mozilla's list (`webpki-roots`, the same choice as the relay's outbound
//! `verify` policy) plus the PEM certificates of an optional CA file (a private CA, the
//! tests' rcgen CA). The crypto provider is the relay's one (`net::tls_cert::provider`,
//! ring). A program that sends through STARTTLS wants to know it reached its server, so
//! there is no unauthenticated mode here (unlike the relay's opportunistic `may`).
//!
//! TRUST: the CA file is the program's; certificates from the server are parsed by rustls.
//!
//! STANDARDS: RFC 3207 (STARTTLS), RFC 6125 (name checks, via webpki).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::net::tls_cert::provider;

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The CA file could not be read or holds no usable certificate.
    #[error("CA file {path}: {detail}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The host name cannot be checked against a certificate.
    #[error("{0:?} is not a host name or IP address TLS can check")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A verifying client configuration: webpki-roots plus the roots in `ca_file`.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let err =
            |detail: String| TlsSetupError::CaFile { path: path.display().to_string(), detail };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no certificate in the file".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| err(e.to_string()))?;
        }
    }
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The name to send (SNI) and check: an IP address (bracketed or not) or a DNS name.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsSetupError> {
    let bare = host.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.trim_end_matches('.').to_owned())
        .map_err(|_| TlsSetupError::ServerName(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_a_missing_ca_file() {
        for (host, want) in
            [("localhost", "localhost"), ("[127.0.0.1]", "127.0.0.1"), ("::1", "::1")]
        {
            assert_eq!(server_name(host).unwrap().to_str(), want);
        }
        assert!(server_name("not a name").is_err());
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(client_config(None).is_ok());
    }
}
