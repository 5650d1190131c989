//! One connection's socket, buffers and readiness, and the read/write pass over it.
//!
//! WHAT: `drive` applies the edge-triggered rule of `net/mod.rs` to one connection: write
//! pending output, then read-and-feed until `WouldBlock` or a short read (or the service
//! stops wanting input), writing after every feed. Reads land in the worker's shared scratch buffer,
//! preceded by the connection's small unconsumed remainder, so the service always sees one
//! contiguous slice and per-connection memory stays tiny.
//!
//! TLS (`net/tls.rs`): once a connection has a `Tls`, reads go socket -> `read_tls` ->
//! `process_new_packets` -> plaintext `reader()` -> `Service::read`, and output goes
//! `out` -> `writer()` -> `write_tls` until `WouldBlock`, with the same rules (drain, write
//! in the same pass). The handshake is read even while the service does not want input.
//! After each pass whose plaintext output is flushed, a connection without TLS asks
//! `Service::tls_start`.
//!
//! TRUST: socket bytes are untrusted and only passed through; the one bound enforced here
//! is `MIN_READ_ROOM_BYTES` (a remainder that would leave less room than that in the
//! scratch buffer closes the connection).

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use super::output::Output;
use super::tls::Tls;
use super::{CloseReason, ConnId, Service};

/// Size of the per-worker scratch read buffer.
pub(super) const SCRATCH_BYTES: usize = 64 * 1024;

/// A read always offers at least this much space after the kept remainder; a service
/// that leaves a bigger remainder while still wanting input is broken or exploited.
const MIN_READ_ROOM_BYTES: usize = 4 * 1024;

/// Reads per connection per `drive` before yielding to other connections (fairness; the
/// connection is put on the worker's runnable list since no new edge will come).
const MAX_READS_PER_DRIVE: u32 = 16;

/// Stop reading while this much output is buffered (a client pipelining without reading
/// replies must not grow our output buffer without bound), and ask `Service::produce` for
/// more only below it. A shared piece is not a copy and does not count toward reading.
const OUT_HIGH_WATER_BYTES: usize = 64 * 1024;

/// Capacity of an idle input remainder buffer kept after use; larger ones are freed.
const IDLE_INPUT_CAPACITY_BYTES: usize = 1024;

/// Capacity of an idle output buffer kept after a flush; larger ones are freed.
const IDLE_OUTPUT_CAPACITY_BYTES: usize = 4 * 1024;

/// A connection as the worker holds it.
pub(super) struct Conn<C> {
    /// The socket; registered once for READABLE | WRITABLE, token = base + slot index.
    pub(super) stream: TcpStream,
    /// The service's per-connection state.
    pub(super) state: C,
    /// Unconsumed input (a partial command line, or bytes held while the service does not
    /// want input). Invariant: `len() <= SCRATCH_BYTES - MIN_READ_ROOM_BYTES` when read.
    input: Vec<u8>,
    /// Unsent output: the service's bytes (`out.buf`) and at most one shared piece
    /// from `Service::produce`, in write order.
    pub(super) out: Output,
    /// Read readiness: set by an event, cleared by `WouldBlock` or by a short read (see
    /// the edge-triggered rule in `net/mod.rs`).
    pub(super) readable: bool,
    /// An event reported the peer's half-close or an error (EPOLLRDHUP/HUP/ERR). Sticky:
    /// once set, a short read no longer clears `readable` (no new edge would report the
    /// pending end of stream).
    pub(super) read_closed: bool,
    /// Write readiness: set by an event (and at accept), cleared only by `WouldBlock`.
    pub(super) writable: bool,
    /// The service may consume more of `input` without new bytes (after `resume`).
    pub(super) refeed: bool,
    /// Outbound only: the TCP connect to this address is still in progress (the socket
    /// is neither read nor written until the worker sees it complete).
    pub(super) connecting: Option<SocketAddr>,
    /// TLS state once TLS started (boxed: plaintext connections stay small).
    pub(super) tls: Option<Box<Tls>>,
    /// An implicit-TLS listener's configuration, held back while the service reads the
    /// connection's preface (`Service::awaiting_preface`); `drive` starts TLS after it.
    pub(super) pending_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// What `drive` decided.
pub(super) enum Step {
    /// Keep the connection; nothing to do until an event (or the service wakes it).
    Idle,
    /// Keep the connection; it still has readable input, drive it again this pass.
    Yield,
    /// Close it.
    Close(CloseReason),
}

impl<C> Conn<C> {
    /// A freshly accepted connection with its greeting (or nothing) in `out`.
    pub(super) fn new(stream: TcpStream, state: C, out: Vec<u8>) -> Conn<C> {
        Conn {
            stream,
            state,
            input: Vec::new(),
            out: Output::new(out),
            readable: false,
            read_closed: false,
            writable: true,
            refeed: false,
            connecting: None,
            tls: None,
            pending_tls: None,
        }
    }

    /// An outbound socket whose non-blocking connect to `addr` is in progress.
    pub(super) fn connecting(stream: TcpStream, state: C, addr: SocketAddr) -> Conn<C> {
        Conn { writable: false, connecting: Some(addr), ..Conn::new(stream, state, Vec::new()) }
    }

    /// For a connecting socket that got an event: `Ok(true)` once the connect completed,
    /// `Ok(false)` while it is still in progress, `Err` when it failed.
    pub(super) fn finish_connect(&mut self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = None;
                self.writable = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                self.readable = false;
                self.writable = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Everything is on the wire: no plaintext output left and no TLS record queued.
    pub(super) fn all_sent(&self) -> bool {
        self.out.unsent() == 0 && self.tls.as_ref().is_none_or(|t| !t.conn.wants_write())
    }

    /// Write as much pending output as the socket takes (through rustls once TLS started:
    /// before the handshake completes rustls holds the plaintext back). A shared piece
    /// goes out with the buffer in one `writev` (plaintext) or is copied into rustls.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            None => {
                while self.out.unsent() > 0 && self.writable {
                    let wrote = if self.out.has_piece() {
                        let [a, b, c] = self.out.slices();
                        let bufs = [IoSlice::new(a), IoSlice::new(b), IoSlice::new(c)];
                        self.stream.write_vectored(&bufs)
                    } else {
                        self.stream.write(self.out.first())
                    };
                    match wrote {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.out.advance(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Some(tls) => loop {
                // Ok(0) when rustls' buffer is at its limit: wait for write_tls.
                loop {
                    let next = self.out.first();
                    if next.is_empty() {
                        break;
                    }
                    let n = tls.conn.writer().write(next)?;
                    if n == 0 {
                        break;
                    }
                    self.out.advance(n);
                }
                if !self.writable || !tls.conn.wants_write() {
                    break;
                }
                match tls.conn.write_tls(&mut self.stream) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
        }
        self.out.reset_if_written(IDLE_OUTPUT_CAPACITY_BYTES);
        Ok(())
    }

    /// Give back memory held by an empty input remainder.
    fn shrink_input(&mut self) {
        if self.input.is_empty() && self.input.capacity() > IDLE_INPUT_CAPACITY_BYTES {
            self.input = Vec::new();
        }
    }
}

/// What one read attempt gave.
enum Input {
    /// Bytes were read and fed; keep going.
    Fed,
    /// Nothing to read now (`WouldBlock`, or the service does not want input).
    Nothing,
    /// Close the connection.
    Close(CloseReason),
}

/// One pass over a connection (see the module docs), then, while the connection has no
/// TLS and its output is flushed, `Service::tls_start`; a started TLS gets a pass at once.
pub(super) fn drive<S: Service>(
    svc: &mut S,
    id: ConnId,
    c: &mut Conn<S::Conn>,
    scratch: &mut [u8],
) -> Step {
    if std::mem::take(&mut c.refeed) && !c.input.is_empty() && svc.wants_read(&c.state) {
        let input = std::mem::take(&mut c.input);
        let used = svc.read(id, &mut c.state, &input, &mut c.out.buf);
        c.input = input;
        c.input.drain(..used);
    }
    let step = loop {
        let step = pass(svc, id, c, scratch);
        if !matches!(step, Step::Idle) || c.tls.is_some() {
            break step;
        }
        if c.pending_tls.is_some() && svc.wants_close(&c.state) {
            c.pending_tls = None; // refused after its preface: no handshake to start
        }
        if c.pending_tls.is_some() && !svc.awaiting_preface(&c.state) {
            match start_after_preface(svc, id, c) {
                Ok(()) => continue, // a pass at once: rustls may have a reply to send
                Err(reason) => break Step::Close(reason),
            }
        }
        if !c.all_sent() {
            break step;
        }
        let Some(how) = svc.tls_start(&mut c.state) else { break step };
        // SECURITY (RFC 3207 §4.2, CVE-2011-0411, Postfix `starttls_cmd`: "there must not
        // be any pending plaintext"): input that arrived in plaintext before TLS starts is
        // thrown away here, never handed to the service: a command pipelined after
        // STARTTLS in the same packet must not run as if it had come over TLS. (Bytes of
        // such a command still in the kernel's buffer are read by `read_tls` as TLS
        // records: they fail the handshake and close the connection, never run either.)
        c.input.clear();
        match Tls::start(how) {
            Ok(tls) => c.tls = Some(Box::new(tls)),
            Err(e) => {
                log::debug!("conn={} TLS start failed: {e}", id.index());
                svc.tls_error(&mut c.state, &e);
                break Step::Close(CloseReason::TlsHandshake);
            }
        }
    };
    c.shrink_input();
    step
}

/// Start the implicit TLS held back during the preface: the input the service left after
/// its preface is the client's first TLS bytes, handed to rustls before any socket read.
fn start_after_preface<S: Service>(
    svc: &mut S,
    id: ConnId,
    c: &mut Conn<S::Conn>,
) -> Result<(), CloseReason> {
    let Some(cfg) = c.pending_tls.take() else { return Ok(()) };
    let held = std::mem::take(&mut c.input);
    let mut tls = match Tls::start(super::TlsStart::Server(cfg)) {
        Ok(t) => t,
        Err(e) => {
            svc.tls_error(&mut c.state, &e);
            return Err(CloseReason::TlsHandshake);
        }
    };
    let mut rest = held.as_slice();
    while !rest.is_empty() {
        // Reading from a slice cannot fail with WouldBlock; rustls takes what it buffers.
        match tls.conn.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => {
                if let Err(e) = tls.conn.process_new_packets() {
                    log::debug!("conn={} TLS error: {e}", id.index());
                    svc.tls_error(&mut c.state, &e);
                    c.tls = Some(Box::new(tls));
                    let _ = c.flush(); // the alert, best effort
                    return Err(CloseReason::TlsHandshake);
                }
            }
            Err(_) => return Err(CloseReason::TlsHandshake),
        }
    }
    c.tls = Some(Box::new(tls));
    Ok(())
}

/// The write-then-read loop of one pass.
fn pass<S: Service>(svc: &mut S, id: ConnId, c: &mut Conn<S::Conn>, scratch: &mut [u8]) -> Step {
    let mut reads = 0;
    let mut rounds = 0;
    loop {
        // Produce and write until the socket is full or the service has nothing more
        // (edge-triggered: a socket that took everything reports no new writable edge).
        let mut full = false;
        loop {
            if !c.out.has_piece()
                && c.out.buffered() < OUT_HIGH_WATER_BYTES
                && let Some(piece) = svc.produce(&mut c.state, &mut c.out.buf)
            {
                c.out.push_piece(piece);
            }
            let produced = c.out.unsent();
            if c.flush().is_err() {
                break; // reported by the flush below
            }
            if !c.writable || !c.all_sent() || produced == 0 {
                break;
            }
            rounds += 1;
            if rounds == MAX_READS_PER_DRIVE {
                full = true;
                break;
            }
        }
        if let Err(e) = c.flush() {
            return Step::Close(CloseReason::Io(e.kind()));
        }
        if full {
            return Step::Yield;
        }
        let handshaking = c.tls.as_ref().is_some_and(|t| t.handshaking());
        if !handshaking && svc.wants_close(&c.state) {
            if !c.all_sent() {
                return Step::Idle;
            }
            if let Some(tls) = &mut c.tls {
                // Best effort: say goodbye inside TLS too.
                tls.conn.send_close_notify();
                let _ = c.flush();
            }
            return Step::Close(CloseReason::Done);
        }
        if c.out.buffered() > OUT_HIGH_WATER_BYTES {
            return Step::Idle;
        }
        if !handshaking && !svc.wants_read(&c.state) {
            return Step::Idle;
        }
        if reads == MAX_READS_PER_DRIVE {
            return Step::Yield;
        }
        let kept = c.input.len();
        if kept > scratch.len() - MIN_READ_ROOM_BYTES {
            return Step::Close(CloseReason::InputOverflow);
        }
        scratch[..kept].copy_from_slice(&c.input);
        let got = if c.tls.is_some() {
            read_tls(svc, id, c, scratch, kept, &mut reads)
        } else if !c.readable {
            Input::Nothing
        } else {
            read_plain(svc, id, c, scratch, kept, &mut reads)
        };
        match got {
            Input::Fed => {}
            Input::Nothing if c.readable => {}
            Input::Nothing => return Step::Idle,
            Input::Close(reason) => return Step::Close(reason),
        }
    }
}

/// Plaintext: one socket read into `scratch[kept..]`, fed to the service.
fn read_plain<S: Service>(
    svc: &mut S,
    id: ConnId,
    c: &mut Conn<S::Conn>,
    scratch: &mut [u8],
    kept: usize,
    reads: &mut u32,
) -> Input {
    let room = scratch.len() - kept;
    match c.stream.read(&mut scratch[kept..]) {
        Ok(0) => {
            // Peer closed. Best effort for anything still unsent, then close.
            let _ = c.flush();
            Input::Close(CloseReason::PeerClosed)
        }
        Ok(n) => {
            *reads += 1;
            if n < room && !c.read_closed {
                // Short read: the socket is drained; the next arrival is a new edge.
                c.readable = false;
            }
            feed(svc, id, c, scratch, kept + n);
            Input::Fed
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            c.readable = false;
            Input::Nothing
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Input::Fed,
        Err(e) => Input::Close(CloseReason::Io(e.kind())),
    }
}

/// Hand `scratch[..avail]` to the service and keep what it did not consume.
fn feed<S: Service>(svc: &mut S, id: ConnId, c: &mut Conn<S::Conn>, scratch: &[u8], avail: usize) {
    let used = svc.read(id, &mut c.state, &scratch[..avail], &mut c.out.buf);
    c.input.clear();
    c.input.extend_from_slice(&scratch[used.min(avail)..avail]);
}

/// TLS: plaintext rustls already decrypted goes to the service first; otherwise one
/// `read_tls` from the socket, `process_new_packets`, and the end of the handshake is
/// reported to the service (`tls_established`) before any plaintext of the session.
fn read_tls<S: Service>(
    svc: &mut S,
    id: ConnId,
    c: &mut Conn<S::Conn>,
    scratch: &mut [u8],
    kept: usize,
    reads: &mut u32,
) -> Input {
    let Some(tls) = c.tls.as_mut() else { unreachable!("read_tls on a TLS connection only") };
    if tls.established {
        match tls.conn.reader().read(&mut scratch[kept..]) {
            Ok(0) => return Input::Close(CloseReason::PeerClosed), // close_notify
            Ok(n) => {
                feed(svc, id, c, scratch, kept + n);
                return Input::Fed;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Input::Close(CloseReason::PeerClosed);
            }
            Err(e) => return Input::Close(CloseReason::Io(e.kind())),
        }
    }
    if !c.readable {
        return Input::Nothing;
    }
    match tls.conn.read_tls(&mut c.stream) {
        Ok(0) => {
            let _ = c.flush();
            Input::Close(CloseReason::PeerClosed)
        }
        Ok(_) => {
            *reads += 1;
            if let Err(e) = tls.conn.process_new_packets() {
                let handshaking = tls.handshaking();
                log::debug!("conn={} TLS error: {e}", id.index());
                svc.tls_error(&mut c.state, &e);
                let _ = c.flush(); // the alert rustls queued, best effort
                return Input::Close(if handshaking {
                    CloseReason::TlsHandshake
                } else {
                    CloseReason::Tls
                });
            }
            if !tls.established && !tls.conn.is_handshaking() {
                tls.established = true;
                let info = tls.info();
                svc.tls_established(id, &mut c.state, &info, &mut c.out.buf);
            }
            Input::Fed
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            c.readable = false;
            Input::Nothing
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Input::Fed,
        Err(e) => Input::Close(CloseReason::Io(e.kind())),
    }
}
