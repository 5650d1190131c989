//! Server certificates from PEM files, swappable at run time (SIGHUP reload).
//!
//! WHAT: [`ReloadableCert`] reads a PEM certificate chain and its private key, checks the
//! key matches the leaf, and serves the pair to rustls as a `ResolvesServerCert`: every
//! handshake takes the current `Arc<CertifiedKey>` under a `parking_lot::RwLock` (a read
//! lock held for one `Arc` clone). [`ReloadableCert::reload`] reads the files again and
//! swaps the pair in; open connections keep the one they negotiated with, new handshakes
//! get the new one. A file that does not load is refused with the error and the old pair
//! is kept. [`server_config`] builds the rustls `ServerConfig` around it: the `ring`
//! provider (the one crypto provider), TLS 1.3 and TLS 1.2 only (1.3 preferred: rustls
//! picks the highest version both sides offer), no client certificates.
//!
//! TRUST: the files are the operator's; their content is still parsed defensively (a bad
//! PEM is an error, never a panic).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate or key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The chain file could not be read or holds no certificate.
    #[error("certificate file {path}: {detail}")]
    Chain {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The key file could not be read, holds no private key, or the key is unsupported.
    #[error("key file {path}: {detail}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The key does not belong to the chain's leaf certificate.
    #[error("key file {key} does not match the certificate in {cert}: {detail}")]
    Mismatch {
        /// The chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' words.
        detail: String,
    },
}

/// The crypto provider every TLS configuration of mailroot uses: `ring`, the one provider
/// compiled in (README "TLS"). rustls 0.23.48 marks ring's `default_provider` deprecated
/// because ring has no post-quantum key exchange (X25519MLKEM768); the classical groups
/// (X25519, P-256, P-384) are what SMTP peers use today, and ring builds without cmake or
/// a C toolchain beyond cc. Revisit with aws-lc-rs when post-quantum is wanted.
///
/// Key exchange order: X25519, P-256, P-384. rustls 0.23.48's ring provider lists P-384
/// first, so two rustls peers (our outbound client, lettre, the loadtest) agreed on P-384,
/// which ring computes with generic bignum code: about 0.9 ms of server CPU per handshake
/// on the 2-CPU VM, against about 0.1 ms with X25519 (perf/RESULTS.md, 2026-12-05 17:20).
/// The server takes the first of these groups the client sent a key share for.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(p)
}

/// Read and check a chain + key pair.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain_err = |detail: String| CertError::Chain { path: cert.to_owned(), detail };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| chain_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| chain_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(chain_err("no CERTIFICATE section".into()));
    }
    let key_err = |detail: String| CertError::Key { path: key.to_owned(), detail };
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| key_err(e.to_string()))?;
    let signing =
        provider().key_provider.load_private_key(der).map_err(|e| key_err(e.to_string()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| CertError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(pair)
}

/// A server certificate that can be swapped while connections use it.
#[derive(Debug)]
pub struct ReloadableCert {
    /// The chain file.
    cert: PathBuf,
    /// The key file.
    key: PathBuf,
    /// The pair new handshakes get. Invariant: loaded from `cert`/`key` and checked.
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Load the pair now (start-up: an error stops the relay).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ReloadableCert>, CertError> {
        let pair = load_certified_key(cert, key)?;
        Ok(Arc::new(ReloadableCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Read the files again and use them for new handshakes; on error keep the old pair.
    pub fn reload(&self) -> Result<(), CertError> {
        let pair = load_certified_key(&self.cert, &self.key)?;
        *self.current.write() = Arc::new(pair);
        Ok(())
    }

    /// The chain file, for logs.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The pair new handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server configuration serving `cert`: ring, TLS 1.3 and 1.2, no client auth.
pub fn server_config(
    cert: Arc<ReloadableCert>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_exchange_prefers_x25519_then_p256() {
        let names: Vec<_> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            names,
            [
                rustls::NamedGroup::X25519,
                rustls::NamedGroup::secp256r1,
                rustls::NamedGroup::secp384r1
            ]
        );
    }
}
