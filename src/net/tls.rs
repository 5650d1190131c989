//! TLS inside a connection: the rustls state of one socket, for both directions.
//!
//! WHAT: a [`TlsStart`] from the service (`Service::tls_start`, or an implicit-TLS
//! listener) turns a plaintext connection into a TLS one: a `rustls::Connection` (server or
//! client side) sits between the socket and the connection's plaintext buffers, and
//! `net/conn.rs` moves bytes as rustls' own `tlsserver-mio.rs` example does: socket ->
//! `read_tls` -> `process_new_packets` -> plaintext `reader()` -> `Service::read`; and
//! `out` -> `writer()` -> `write_tls` -> socket, until `WouldBlock`. No blocking
//! handshake, no thread: the handshake is driven by readiness like any other bytes.
//!
//! TRUST: everything from the socket is untrusted and goes to rustls; a TLS error closes
//! the connection (`CloseReason::TlsHandshake` / `CloseReason::Tls`), never panics.
//!
//! MEMORY: rustls allocates its record buffers on use; the outgoing plaintext and TLS
//! buffers are capped at `TLS_BUFFER_LIMIT_BYTES` each (the connection's `out` waits
//! above that), so an idle TLS connection holds the rustls state and little else.
//!
//! STANDARDS: RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), both through rustls 0.23 with the
//! `ring` provider (the one crypto provider, see README "TLS").

use std::sync::Arc;

use rustls::pki_types::ServerName;

/// Cap of rustls' outgoing plaintext buffer and of its outgoing TLS buffer (bytes each).
pub(super) const TLS_BUFFER_LIMIT_BYTES: usize = 16 * 1024;

/// How a connection becomes TLS, as the service decides it.
#[derive(Debug, Clone)]
pub enum TlsStart {
    /// We are the TLS server (inbound STARTTLS or an implicit-TLS listener).
    Server(Arc<rustls::ServerConfig>),
    /// We are the TLS client (outbound STARTTLS), talking to this server name.
    Client(Arc<rustls::ClientConfig>, ServerName<'static>),
}

/// What was negotiated, given to `Service::tls_established` once the handshake is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: &'static str,
    /// Cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: &'static str,
}

/// The TLS state of one connection.
pub(super) struct Tls {
    /// The rustls connection (server or client).
    pub(super) conn: rustls::Connection,
    /// `Service::tls_established` was called. Invariant: false while
    /// `conn.is_handshaking()`.
    pub(super) established: bool,
}

impl Tls {
    /// Start the TLS side of a connection.
    pub(super) fn start(how: TlsStart) -> Result<Tls, rustls::Error> {
        let mut conn: rustls::Connection = match how {
            TlsStart::Server(cfg) => rustls::ServerConnection::new(cfg)?.into(),
            TlsStart::Client(cfg, name) => rustls::ClientConnection::new(cfg, name)?.into(),
        };
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT_BYTES));
        Ok(Tls { conn, established: false })
    }

    /// Still in the handshake (the service has not been told it is done).
    pub(super) fn handshaking(&self) -> bool {
        !self.established
    }

    /// The negotiated version and cipher suite.
    pub(super) fn info(&self) -> TlsInfo {
        let version = self.conn.protocol_version().and_then(|v| v.as_str()).unwrap_or("TLS");
        let cipher =
            self.conn.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).unwrap_or("?");
        TlsInfo { version, cipher }
    }
}
