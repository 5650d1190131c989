//! The mio I/O core: listeners, outbound connects, one event loop per worker thread,
//! connection table, buffers, timers, connection limits, wakers. Knows NOTHING about SMTP:
//! it moves bytes between sockets and a [`Service`] (static dispatch, implemented by
//! `receive` for inbound SMTP and by `deliver::outbound` for outbound delivery).
//!
//! # Both directions
//! A connection enters the worker either by `accept` on one of its listeners or by a
//! [`ConnectRequest`] the service hands out from [`Service::poll_connect`]: the worker
//! starts a non-blocking `connect`, keeps the socket in the same table under the same
//! timer wheel (the request's timeout arms the connection's timer), and tells the service
//! [`Service::connected`] once the TCP handshake is done, or gives the state back through
//! [`Service::connect_failed`] (refused, unreachable, timed out) so it can try the next
//! address. From then on an outbound connection is driven exactly like an inbound one.
//!
//! # TLS
//! A connection may carry a rustls `Connection` (`tls.rs`): started when the service
//! answers `Service::tls_start` (STARTTLS; any plaintext input still held is discarded
//! first) or at accept on an implicit-TLS listener (`worker::Listen`). From then on the
//! same rules hold with rustls in between (`conn.rs`): reads drain the socket through
//! `read_tls`/`process_new_packets`, plaintext goes to `Service::read`, output goes
//! through `writer()`/`write_tls` until `WouldBlock`. The handshake's end is reported by
//! `Service::tls_established`; a TLS error is first given to `Service::tls_error` (its
//! text: the outbound client reports it), then the connection closes. Server
//! certificates that can be reloaded: `tls_cert.rs`.
//!
//! # Prefaces (the PROXY protocol)
//! A service may say a connection starts with a plaintext *preface* it must read before
//! anything else (`Service::awaiting_preface`; inbound SMTP: the PROXY protocol header of a
//! trusted load balancer, parsed by the service, not here). While it is awaited the
//! connection is read in plaintext even on an implicit-TLS listener: the worker holds the
//! listener's TLS configuration back and starts the handshake once the service says the
//! preface is over, handing rustls the bytes the service left unconsumed (the start of the
//! ClientHello often shares a packet with the header). For such listeners the client's
//! address is not known at accept (`Service::defers_client_ip`): the connection limits
//! count it in the total only, and the service counts the real client per IP later
//! (`limits::ConnPermit::count_ip`).
//!
//! # Threads
//! One [`worker::Worker`] per thread, shared nothing: each owns a `mio::Poll`, its own
//! `SO_REUSEPORT` listener for every address (the kernel spreads connections), its connection
//! table, timer wheel and a 64 KiB scratch read buffer. The only state shared between
//! workers is [`limits::ConnLimits`] (one atomic + a sharded mutex, touched at accept/close)
//! and the shutdown flag. Other threads reach a worker only through its `mio::Waker`
//! (the spool syncer after a group commit; the signal handler at shutdown).
//!
//! # The edge-triggered rule (sozu `doc/lifetime_of_a_session.md` §2.2)
//! mio registers every socket edge-triggered (`EPOLLET`): the kernel reports a socket
//! *once* when it becomes readable/writable, not while it stays so. Hence, always:
//! 1. **Drain reads until `WouldBlock` or a short read.** A readiness flag (`readable`) is
//!    set by an event and cleared when a read returns `WouldBlock`, or fewer bytes than it
//!    asked for: a short TCP read took everything queued, and Linux reports every later
//!    arrival as a new edge (nginx's `ngx_unix_recv` relies on the same; it saves one
//!    `EAGAIN` read per command). Exception: once an event said the peer half-closed or
//!    errored (`read_closed`), only `WouldBlock` or end of stream clears the flag, since no
//!    further edge would report the pending end. If we stop early (the service does not
//!    want input now, or the per-pass fairness cap hit) the flag stays set and we come back
//!    without waiting for a new event: none would come.
//! 2. **Output produced on a read path is written in the same pass.** After each
//!    `Service::read`/`resume`/`timed_out` the worker tries to write the connection's output
//!    before doing anything else; `writable` is likewise cleared only by `WouldBlock`.
//! 3. **Interest is derived from state each time**, never toggled by hand:
//!    read when `readable && service.wants_read(conn) && output below high water`, write
//!    when `writable && output pending`. Sockets are registered once for
//!    `READABLE | WRITABLE` and never re-registered (no `epoll_ctl` per command).
//!
//! # Errors (STYLE 14)
//! `WouldBlock` is flow control, `Interrupted` is retried, any other I/O error closes that
//! connection, bumps a counter in [`worker::WorkerCounters`] and is logged once at debug.
//! Nothing a peer sends can panic a worker.
//!
//! # Memory
//! Per connection: the socket, the service's state, the unconsumed input remainder (a
//! partial command line, bounded by the service; empty and unallocated almost always) and
//! the output `Vec` (shrunk back when idle), plus at most one [`SharedPiece`] handed over
//! by `Service::produce`: a range of bytes the service already holds (an `Arc`), written
//! after the `Vec`'s bytes with one `writev` (or copied into rustls), never copied into it
//! (`output.rs`). Reads go through the worker's shared scratch
//! buffer, so 10,000 idle connections cost a few hundred bytes each plus the service state.
//!
//! See `src/net/LIFECYCLE.md` for the walk of one connection through these files.

mod conn;
pub mod conn_table;
pub mod limits;
pub mod listener;
mod output;
pub mod timer;
pub mod tls;
pub mod tls_cert;
pub mod worker;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_connect;
#[cfg(test)]
mod tests_preface;
#[cfg(test)]
mod tests_tls;

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

pub use conn_table::ConnId;
pub use limits::{ConnLimits, ConnPermit, LimitExceeded};
pub use output::SharedPiece;
pub use tls::{TlsInfo, TlsStart};

/// Where a new connection came from and which listener took it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// The client's address (from `accept`).
    pub remote: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// Caller-chosen tag of the listener (the relay uses the site index).
    pub listener_tag: usize,
    /// The listener is implicit TLS (RFC 8314): the connection starts with a TLS handshake
    /// the worker drives before any plaintext; `Service::tls_established` follows it.
    pub implicit_tls: bool,
}

/// An outbound connection the service wants: where to, how long the TCP connect may take,
/// and the service's state for it (given back by `connected` / `connect_failed`).
#[derive(Debug)]
pub struct ConnectRequest<C> {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// Give up (`ConnectError::TimedOut`) after this many milliseconds.
    pub timeout_ms: u64,
    /// The service's per-connection state.
    pub state: C,
}

/// Why an outbound connect failed (given to [`Service::connect_failed`]).
#[derive(Debug)]
pub enum ConnectError {
    /// The connect did not complete within the request's timeout.
    TimedOut,
    /// The connect failed (refused, unreachable, no route...), at once or later.
    Io(std::io::Error),
    /// The worker is shutting down and opens no new connection.
    ShuttingDown,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::TimedOut => f.write_str("connection timed out"),
            ConnectError::Io(e) => write!(f, "connection failed: {e}"),
            ConnectError::ShuttingDown => f.write_str("shutting down"),
        }
    }
}

/// Why a connection was closed (given to [`Service::closed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The service asked to close (`wants_close`) and its output was flushed.
    Done,
    /// The peer closed its side (read returned 0).
    PeerClosed,
    /// An I/O error other than `WouldBlock`/`Interrupted`.
    Io(std::io::ErrorKind),
    /// The idle timer fired (the service already wrote its goodbye).
    TimedOut,
    /// The service left more unconsumed input than the worker can hold (a service bug or
    /// a peer exploiting one); the connection is dropped.
    InputOverflow,
    /// Shutdown grace period expired with the connection still open.
    Shutdown,
    /// The TLS handshake failed (a TLS protocol error from the peer, or the TLS state could
    /// not be created). A close of any other kind during the handshake (timeout, peer gone)
    /// keeps its own reason; the worker counts every close during a handshake as a
    /// handshake failure (`WorkerCounters::tls_handshake_failures`).
    TlsHandshake,
    /// A TLS protocol error after the handshake (bad record, unexpected message).
    Tls,
}

/// What a worker drives: one implementation per protocol (inbound SMTP is `receive`).
///
/// All methods run on the worker thread. Output goes to `out`, which the worker writes
/// to the socket (in the same pass). `Conn` is the per-connection state.
pub trait Service {
    /// Per-connection state.
    type Conn;

    /// Start of an event-loop pass; the clocks are read once per pass by the worker
    /// (layer-0 code below the service never reads the clock).
    fn begin_pass(&mut self, now: Instant, wall_clock: SystemTime);

    /// A new connection. `permit` is the outcome of the connection limits; the service
    /// keeps the permit in its state (dropping it un-counts the connection). Return `None`
    /// to refuse: the worker writes `out` once (best effort) and closes.
    fn accept(
        &mut self,
        peer: &Peer,
        permit: Result<ConnPermit, LimitExceeded>,
        out: &mut Vec<u8>,
    ) -> Option<Self::Conn>;

    /// Input arrived: `input` is the previous unconsumed remainder followed by new bytes.
    /// Return how many bytes were consumed; the rest is handed back next time.
    fn read(&mut self, id: ConnId, conn: &mut Self::Conn, input: &[u8], out: &mut Vec<u8>)
    -> usize;

    /// Whether the connection wants input now (false e.g. while a commit is pending).
    fn wants_read(&self, conn: &Self::Conn) -> bool;

    /// Whether the connection should be closed once its output is flushed.
    fn wants_close(&self, conn: &Self::Conn) -> bool;

    /// How long from now the connection may wait for its peer, in milliseconds (re-asked
    /// after every pass; a service with deadlines returns the time left before them).
    fn idle_timeout_ms(&self, conn: &Self::Conn) -> u64;

    /// The idle timer fired: write the goodbye; the worker flushes (best effort) and closes.
    fn timed_out(&mut self, conn: &mut Self::Conn, out: &mut Vec<u8>);

    /// Graceful shutdown began (called once per open connection).
    fn shutdown(&mut self, conn: &mut Self::Conn, out: &mut Vec<u8>);

    /// The listeners tagged `tag` were closed at run time (`worker::ListenerCommand`):
    /// if `conn` came from one of them, say goodbye as `shutdown` does and return true
    /// (the worker then drives it, so the goodbye is written). Default: not ours.
    fn listener_closed(&mut self, _tag: usize, _conn: &mut Self::Conn, _out: &mut Vec<u8>) -> bool {
        false
    }

    /// The connection `id` is gone; release whatever it held.
    fn closed(&mut self, id: ConnId, conn: Self::Conn, reason: CloseReason);

    /// Collect connections with deferred work ready (e.g. their spool commit finished).
    /// Called every pass (and after the waker fired). Ids may be stale; the worker drops
    /// those.
    fn poll_ready(&mut self, ready: &mut Vec<ConnId>);

    /// Do the deferred work for a connection reported by `poll_ready`.
    fn resume(&mut self, id: ConnId, conn: &mut Self::Conn, out: &mut Vec<u8>);

    /// End of an event-loop pass (the spool's group commit is started here).
    fn end_of_pass(&mut self);

    /// When the service next needs a pass (and so `end_of_pass`) even if no I/O happens:
    /// a group commit the spool held back for its commit delay. `None`: no such need.
    fn pass_deadline(&self) -> Option<Instant> {
        None
    }

    /// True while work is outstanding that the worker must wait for before exiting
    /// (uncommitted spool records).
    fn has_outstanding(&self) -> bool;

    /// More output for `conn` now that its unsent output is below the high-water mark
    /// (a large message is produced piece by piece as the socket drains). Called on every
    /// drive of a connection before its output is flushed; inbound services produce
    /// output only when they read, and keep the default.
    ///
    /// A returned [`SharedPiece`] is written right after the bytes in `out` (and before
    /// anything appended to `out` later), straight from its shared buffer: one `writev` of
    /// both on plaintext, copied into rustls on TLS. `produce` is not called again until
    /// the piece is written, so a service hands out bytes it already holds (a message
    /// shared between threads) without copying them into `out`.
    fn produce(&mut self, _conn: &mut Self::Conn, _out: &mut Vec<u8>) -> Option<SharedPiece> {
        None
    }

    /// Outbound: connections to open now. Called every pass (after `poll_ready`), and
    /// again in the same pass while it keeps adding requests (bounded).
    fn poll_connect(&mut self, _requests: &mut Vec<ConnectRequest<Self::Conn>>) {}

    /// Outbound: the TCP connect of `id` completed; the connection is driven from now on
    /// like an accepted one (`out` is written at once).
    fn connected(&mut self, _id: ConnId, _conn: &mut Self::Conn, _out: &mut Vec<u8>) {}

    /// Whether to start TLS now. Asked after every pass over a connection that has no TLS
    /// yet and whose output is all on the wire (so a `220 Ready to start TLS` went out in
    /// plaintext first). `Some`: any plaintext input the worker still holds for the
    /// connection is discarded (RFC 3207 §4.2), and the handshake starts (driven by
    /// readiness, read even while `wants_read` is false). Default: never.
    fn tls_start(&mut self, _conn: &mut Self::Conn) -> Option<TlsStart> {
        None
    }

    /// The TLS handshake of `id` completed (after `tls_start`, or on an implicit-TLS
    /// listener): `info` says what was negotiated. Called before any plaintext received
    /// over TLS is given to `read`; `out` is written through TLS.
    fn tls_established(
        &mut self,
        _id: ConnId,
        _conn: &mut Self::Conn,
        _info: &TlsInfo,
        _out: &mut Vec<u8>,
    ) {
    }

    /// The TLS layer of the connection failed (`Tls::start` refused the configuration, or
    /// rustls reported a protocol or certificate error): called just before the connection
    /// is closed with `CloseReason::TlsHandshake` / `CloseReason::Tls`, so the service can
    /// keep the error's text (the outbound client reports it as the attempt's last error).
    fn tls_error(&mut self, _conn: &mut Self::Conn, _error: &rustls::Error) {}

    /// Whether the client's address is unknown at accept for connections of `peer` (the
    /// service reads it from a preface): the worker then takes a permit counted in the
    /// total only, and the service counts the client per IP itself once known
    /// (`ConnPermit::count_ip`). Default: the TCP peer is the client.
    fn defers_client_ip(&self, _peer: &Peer) -> bool {
        false
    }

    /// Whether the connection is still reading its plaintext preface (see the module
    /// docs): while true, an implicit-TLS listener's handshake is held back; once false,
    /// it starts, fed first with the input the service left unconsumed. Default: never.
    fn awaiting_preface(&self, _conn: &Self::Conn) -> bool {
        false
    }

    /// Outbound: the connect to `addr` failed; the state comes back (e.g. to try the next
    /// address with a new request). `closed` is not called for such a connection.
    fn connect_failed(&mut self, _conn: Self::Conn, _addr: SocketAddr, _error: ConnectError) {}
}
