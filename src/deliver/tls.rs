//! Outbound TLS settings: the rustls `ClientConfig`s of the delivery client, built once at
//! start-up per TLS policy, and the server name each connection checks.
//!
//! WHAT: `may` and `encrypt` (Postfix's names) encrypt without authenticating the server:
//! a `NoCertificateCheck` verifier accepts any certificate chain and any name, but the
//! handshake signatures are still verified with the ring provider's algorithms, so the
//! session key is bound to the key of the certificate the server sent (an active attacker
//! can still present its own: that is what `verify` is for). `verify` checks the chain
//! against a root store and the name we connected to (the MX or smart host name; an
//! IP-literal target is checked as an IP address), through rustls' `WebPkiServerVerifier`.
//!
//! Root store: the `webpki-roots` crate (Mozilla's CA list compiled in), chosen over the
//! system store because it needs no file or platform code at run time, gives the same
//! answer on every machine, and is the list rustls itself is tested with; `[delivery]
//! tls_ca_file` adds roots (a private CA, the tests' rcgen CA). All configs: TLS 1.2
//! minimum (rustls' safe defaults, 1.3 preferred), ring provider (`net::tls_cert::provider`).
//!
//! TRUST: the CA file is ours (operator configuration); certificates from servers are
//! untrusted and parsed only by rustls/webpki.
//!
//! STANDARDS: RFC 3207 (STARTTLS), RFC 6125 (name checks, via webpki), RFC 7435
//! (opportunistic security: `may`/`encrypt` without authentication).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::net::tls_cert::provider;

/// Why the outbound TLS settings could not be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsClientError {
    /// `[delivery] tls_ca_file` could not be read or holds no usable certificate.
    #[error("delivery.tls_ca_file {path}: {detail}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the configuration (a bug: the versions are fixed here).
    #[error("outbound TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The rustls client configurations, one per kind of check (built once, shared by every
/// connection through `Arc`).
#[derive(Debug, Clone)]
pub struct OutboundTls {
    /// `may` and `encrypt`: no certificate check (see the module docs).
    unauthenticated: Arc<ClientConfig>,
    /// `verify`: chain against webpki-roots plus `tls_ca_file`, and the host name.
    verified: Arc<ClientConfig>,
}

impl OutboundTls {
    /// Build both configurations; `ca_file` adds PEM roots to the `verify` store.
    pub fn new(ca_file: Option<&Path>) -> Result<OutboundTls, TlsClientError> {
        let p = provider();
        let unauthenticated = ClientConfig::builder_with_provider(Arc::clone(&p))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(Arc::clone(&p))))
            .with_no_client_auth();
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = ca_file {
            let err = |detail: String| TlsClientError::CaFile { path: path.to_owned(), detail };
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
        let verified = ClientConfig::builder_with_provider(p)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(OutboundTls { unauthenticated: Arc::new(unauthenticated), verified: Arc::new(verified) })
    }

    /// The configuration for a connection: `verify` checks the certificate, the other
    /// policies do not.
    #[must_use]
    pub fn config(&self, verify: bool) -> Arc<ClientConfig> {
        Arc::clone(if verify { &self.verified } else { &self.unauthenticated })
    }
}

/// The server name to send (SNI) and, with `verify`, to check: the target's MX or smart
/// host name; `[ip]` (an address literal) becomes `ServerName::IpAddress`. `None` for a
/// name rustls cannot use (the handshake is then not attempted).
#[must_use]
pub fn server_name(target_name: &str) -> Option<ServerName<'static>> {
    let literal = target_name.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
    if let Some(ip) = literal.and_then(|s| s.parse::<IpAddr>().ok()) {
        return Some(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(target_name.trim_end_matches('.').to_owned()).ok()
}

/// `may` / `encrypt`: accepts any certificate chain for any name (RFC 7435 opportunistic
/// encryption; Postfix does no check for these levels either) but verifies the handshake
/// signatures with the provider's algorithms, so the handshake itself stays sound.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // SECURITY: no authentication by design for `may`/`encrypt` (see above).
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_targets() {
        let cases: &[(&str, Option<&str>)] = &[
            ("mx.example.com", Some("mx.example.com")),
            ("mx.example.com.", Some("mx.example.com")),
            ("[127.0.0.1]", Some("127.0.0.1")),
            ("[::1]", Some("::1")),
            ("[nope]", None),
        ];
        for (input, want) in cases {
            let got = server_name(input).map(|n| n.to_str().into_owned());
            assert_eq!(got.as_deref(), *want, "{input}");
        }
    }

    #[test]
    fn configs_build_and_a_missing_ca_file_is_named() {
        let t = OutboundTls::new(None).unwrap();
        assert!(!Arc::ptr_eq(&t.config(true), &t.config(false)));
        let e = OutboundTls::new(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
