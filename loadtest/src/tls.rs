//! TLS for the load tools: the client side of `source --starttls` / `--implicit-tls` and
//! the server side of `sink --tls-cert/--tls-key`.
//!
//! rustls 0.23 with the ring provider, as mailroot itself uses. Sockets stay blocking (one
//! thread per session, as in plaintext): a handshake is driven to completion with
//! `complete_io` before any SMTP byte is read or written over it, so its time can be
//! measured on its own. `Stream` is one type over a plaintext or TLS socket, so the SMTP
//! code reads and writes the same way before and after STARTTLS.
//!
//! SECURITY: `--tls-insecure` installs a verifier that accepts any certificate for any
//! name (the handshake signature is still checked, so the key exchange is real); it exists
//! for benchmarks against self-signed certificates on loopback, the only place this tool
//! talks to. By default every handshake is a full one (no session resumption), the
//! pessimistic case for a server.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore,
    ServerConfig, ServerConnection, SignatureScheme, StreamOwned,
};

/// A TCP socket, plaintext or wrapped in TLS (either side).
pub(crate) enum Stream {
    /// No TLS (yet).
    Plain(TcpStream),
    /// The client side of a finished handshake.
    Client(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// The server side (the sink after STARTTLS).
    Server(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    /// True once TLS is on.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Client(s) => s.read(buf),
            Stream::Server(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Client(s) => s.write(buf),
            Stream::Server(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Client(s) => s.flush(),
            Stream::Server(s) => s.flush(),
        }
    }
}

/// A TLS set-up problem found before any connection (bad file, bad name).
#[derive(Debug)]
pub(crate) struct SetupError(String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When the client starts TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// After the first EHLO, with STARTTLS (RFC 3207); EHLO again after the handshake.
    StartTls,
    /// At once after connect, before the greeting (RFC 8314, port 465).
    Implicit,
}

impl Mode {
    /// Name in the reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::StartTls => "STARTTLS",
            Mode::Implicit => "implicit TLS",
        }
    }
}

/// Whom the client trusts.
#[derive(Clone, Debug)]
pub(crate) enum Trust {
    /// The certificates in this PEM file (a CA, or the server's self-signed certificate).
    CaFile(PathBuf),
    /// Nobody is checked (`--tls-insecure`).
    Insecure,
}

/// Everything a session needs to start TLS as a client.
#[derive(Clone, Debug)]
pub(crate) struct ClientTls {
    /// STARTTLS or implicit.
    pub(crate) mode: Mode,
    /// Shared client configuration (and its session cache, when resumption is on).
    config: Arc<ClientConfig>,
    /// SNI and the name the certificate is checked against.
    name: ServerName<'static>,
    /// How the server is trusted, for the report.
    pub(crate) trust: Trust,
    /// Session resumption allowed.
    pub(crate) resume: bool,
}

/// What one client handshake negotiated.
pub(crate) struct Negotiated {
    /// Time from the ClientHello to the end of the handshake.
    pub(crate) elapsed: Duration,
    /// The handshake resumed an earlier session.
    pub(crate) resumed: bool,
    /// "TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519": version, suite, key exchange group.
    pub(crate) describe: String,
}

/// The crypto provider: ring, as mailroot, with mailroot's key exchange order (X25519,
/// P-256, P-384; rustls 0.23.48's ring provider lists P-384 first, which ring computes
/// several times slower). rustls 0.23.48 deprecates ring's `default_provider` (no
/// post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(p)
}

impl ClientTls {
    /// A client configuration for `mode`, trusting `trust`, checking `name`.
    pub(crate) fn new(
        mode: Mode,
        trust: Trust,
        name: &str,
        resume: bool,
    ) -> Result<Self, SetupError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError(format!("TLS versions: {e}")))?;
        let mut config = match &trust {
            Trust::CaFile(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(path)? {
                    roots.add(cert).map_err(|e| {
                        SetupError(format!(
                            "--tls-ca {}: unusable certificate: {e}",
                            path.display()
                        ))
                    })?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth(),
        };
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| SetupError(format!("--tls-name {name:?}: {e}")))?;
        Ok(ClientTls { mode, config: Arc::new(config), name, trust, resume })
    }

    /// Run a client handshake on `tcp` to its end.
    pub(crate) fn handshake(&self, mut tcp: TcpStream) -> io::Result<(Stream, Negotiated)> {
        let t0 = Instant::now();
        let mut conn = ClientConnection::new(Arc::clone(&self.config), self.name.clone())
            .map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        let elapsed = t0.elapsed();
        let describe = format!(
            "{} {} {}",
            conn.protocol_version().map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
            conn.negotiated_cipher_suite()
                .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite())),
            conn.negotiated_key_exchange_group()
                .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name()))
        );
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        let negotiated = Negotiated { elapsed, resumed, describe };
        Ok((Stream::Client(Box::new(StreamOwned::new(conn, tcp))), negotiated))
    }

    /// One line for the report: mode, trust, resumption.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}, {}, resumption {}",
            self.mode.name(),
            match &self.trust {
                Trust::CaFile(p) => format!("trusting {}", p.display()),
                Trust::Insecure => "certificate NOT verified (--tls-insecure)".to_owned(),
            },
            if self.resume { "allowed" } else { "off (every handshake full)" }
        )
    }
}

/// Server side: a configuration from a PEM chain and key.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, SetupError> {
    let chain = read_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| SetupError(format!("--tls-key {}: {e}", key.display())))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            SetupError(format!("--tls-cert {} / --tls-key {}: {e}", cert.display(), key.display()))
        })?;
    Ok(Arc::new(config))
}

/// Server side: run the handshake on `tcp` to its end.
pub(crate) fn accept(config: &Arc<ServerConfig>, mut tcp: TcpStream) -> io::Result<Stream> {
    let mut conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(Stream::Server(Box::new(StreamOwned::new(conn, tcp))))
}

/// Every certificate in a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let err = |e: String| SetupError(format!("{}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE in the file".to_owned()));
    }
    Ok(certs)
}

/// The rustls error inside an I/O error, as a short key ("tls: invalid peer certificate:
/// UnknownIssuer"), if there is one.
pub(crate) fn tls_error_key(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(format!("tls: {inner}"))
}

/// `--tls-insecure`: accepts every certificate and name; still checks that the server
/// signed the handshake with the key of the certificate it sent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
