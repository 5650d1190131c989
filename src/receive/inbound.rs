//! Inbound SMTP service: drives one `smtp::server::ServerSession` per connection on `net`
//! and streams DATA into this worker's `SpoolWriter`.
//!
//! WHAT: implements `net::Service`. Accept: `policy::access::connection_allowed` (554
//! 5.7.1) and the connection limits (421 4.7.0), then the 220 greeting. Per transaction
//! (`TxHandler`, the session's `Handler`): MAIL checks spool free space (452 4.3.1; the
//! session itself applies `policy::size` to `SIZE=` and the content); RCPT runs
//! `policy::access::check_rcpt`; DATA opens a spool record and writes our `Received:` header
//! first;
//! content goes straight to `SpoolWriter::append`; end of data `finish`es the record and the
//! reply waits (`DataOutcome::Pending`) for the group commit. Each event-loop pass ends with
//! `SpoolWriter::flush` (one fdatasync for every message finished in the pass); when the
//! syncer rings the worker's waker, `poll_committed` tells which tickets are durable: those
//! sessions get `250 2.0.0 Ok queued as <id>` and the QueueId goes to the queue runner.
//! AUTH (`Handler::auth_check`) is answered the same way: the credentials go to the
//! `auth-verifier` thread (`receive::auth`), its verdict comes back with the waker, a
//! failure is held back by its delay (`pass_deadline`), then `auth_done`. An authenticated
//! session may relay (`check_rcpt`, `[auth] relay_authenticated`) and its messages get
//! `with ESMTPA`. Passwords are never logged; the user name only after a success.
//!
//! TRUST: everything from the peer is untrusted and reaches us only through the session's
//! parsed commands; replies come from `smtp::reply`. The client address is the kernel's,
//! or on a proxy site the one a header from a `proxy_trusted` peer carried.
//!
//! INVARIANT (DESIGN invariant 1): a 250 to DATA/BDAT is written only after
//! `poll_committed` reported the record's sequence number durable.
//!
//! COUNTERS (`stats`): one `CounterBlock` per site, owned by this worker (written only
//! here, Relaxed adds, no lock): connections, bytes in/out, refusals, and at commit the
//! messages, message bytes, recipients (local/remote), commit latency and batch size.
//! Marked `// stats:` below.
//!
//! TLS (`receive/tls.rs` holds the certificates): when the session asks for TLS after
//! `220 2.0.0 Ready to start TLS` (`tls_requested`), `Service::tls_start` hands `net` the
//! site's rustls configuration (net then discards the plaintext it holds and drives the
//! handshake); `Service::tls_established` tells the session. On an implicit-TLS listener
//! (`Peer::implicit_tls`) the greeting waits for the handshake. While a handshake runs the
//! connection's timer is `[tls] handshake_timeout`. The TLS facts go into `Received:`.
//!
//! PROXY protocol (`[[site]] proxy_protocol`): `inbound/proxy.rs` reads the header before
//! the greeting; the client address it carries replaces `Peer::remote`.
//!
//! STANDARDS: RFC 5321 §4.4 (trace header), §4.5.3.2 (timeouts), RFC 1870 (SIZE),
//! RFC 3463 (enhanced codes, via `smtp::reply`), RFC 3207 (STARTTLS), RFC 8314 (implicit
//! TLS), RFC 3848 (ESMTPS in `Received:`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;

use super::auth::{Verdict, WorkerAuth};
use crate::config::Config;
use crate::net::{
    CloseReason, ConnId, ConnPermit, LimitExceeded, Peer, Service, TlsInfo as NetTlsInfo, TlsStart,
};
use crate::policy::access::{check_rcpt, connection_allowed};
use crate::policy::domain::rcpt_split;
use crate::protolog::LogSink;
use crate::queue::inbox::IncomingBatch;
use crate::smtp::command::{MailParams, RcptParams};
use crate::smtp::path::{ForwardPath, ReversePath};
use crate::smtp::reply::Reply;
use crate::smtp::server::{AuthOutcome, DataOutcome, Handler, ServerSession, Transaction};
use crate::spool::{OpenRecord, QueueId, Spool, SpoolError, SpoolWriter, Ticket};
use crate::stats::{Counter, CounterBlock, Hist, Registry};

pub use super::shared::InboundShared;
use super::tls::session_info;
use crate::control::{Live, SiteStates};

mod envelope;
mod protolog;
mod proxy;
use proxy::{PROXY_HEADER_TIMEOUT_MS, Preface, Rejection};

/// A message finished on some connection, waiting for its group commit.
#[derive(Debug)]
struct Pending {
    /// Ticket from `SpoolWriter::finish`.
    ticket: Ticket,
    /// The connection waiting for the reply (may be gone by the time it is durable).
    conn: ConnId,
    /// Record size in bytes (Received header + content), for the log line.
    bytes: u64,
    /// The client, for the log line.
    client: std::net::SocketAddr,
    /// Site index (`Peer::listener_tag`), for the per-site counters.
    site: usize,
    /// Recipients in a local domain / elsewhere, counted at commit.
    rcpts: RcptSplit,
    /// Wall clock of the pass that finished the record (commit latency).
    finished: SystemTime,
    /// The AUTH identity of the session, for the log line (`None`: not authenticated).
    user: Option<String>,
    /// The reverse path (empty for `<>`), for the log line.
    from: String,
}

/// Recipients of one message: (local, remote).
type RcptSplit = (u64, u64);

/// The inbound SMTP service of one worker.
pub struct Inbound {
    /// Worker number, for logs.
    worker: usize,
    /// Shared configuration.
    shared: Arc<InboundShared>,
    /// The spool (free-space check).
    spool: Spool,
    /// This worker's spool writer.
    writer: SpoolWriter,
    /// Committed QueueIds go to the queue runner, one batch per group commit.
    queue_tx: Sender<IncomingBatch>,
    /// Finished records not yet known durable, in `ticket.seq` order (seqs increase).
    pending: VecDeque<Pending>,
    /// Commit outcome per connection, between `poll_ready` and `resume`/`closed`.
    outcomes: HashMap<ConnId, Result<QueueId, ()>>,
    /// Wall clock of the current pass (arrival time, Received header date).
    now: SystemTime,
    /// Monotonic clock of the current pass (AUTH failure delays).
    now_instant: Instant,
    /// AUTH verification (the verifier thread's worker side); `None` without users.
    auth: Option<WorkerAuth>,
    /// Scratch list of verdicts that arrived in a `poll_ready` (for counters and logs).
    verdicts: Vec<Verdict>,
    /// Graceful shutdown has begun.
    draining: bool,
    /// stats: this worker's counter block per site (index = `Peer::listener_tag`).
    stats: Vec<Arc<CounterBlock>>,
    /// The W3C protocol log's buffers (`None`: no site logs); see `inbound::protolog`.
    protolog: Option<LogSink>,
    /// Where a reload publishes new settings, and the generation `shared` is from.
    live: Option<(Arc<Live<InboundShared>>, u64)>,
    /// Paused sites answer new connections `421 4.3.2` (`control`).
    sites: Option<Arc<SiteStates>>,
}

/// Per-connection state.
pub struct InboundConn {
    /// The sans-IO SMTP session.
    session: ServerSession,
    /// Transaction state seen by the `Handler`.
    tx: ConnTx,
    /// Keeps the connection counted in `ConnLimits`. Released (`None`) as soon as the
    /// session is closed, i.e. *before* its last reply (221, 421) is written: a client that
    /// reconnects the moment it reads 221 must not find its old connection still counted
    /// (smtp-source with as many sessions as `max_connections_per_ip` hit exactly that).
    permit: Option<ConnPermit>,
    /// Shutdown began while this session was busy; say 421 once it is idle.
    draining: bool,
    /// A TLS handshake is in progress (`net` drives it; the timer is the handshake
    /// timeout). Set by `tls_start` or an implicit-TLS accept, cleared by `tls_established`.
    handshaking: bool,
    /// PROXY protocol preface state (`inbound/proxy.rs`); `Off` on other sites.
    preface: Preface,
}

/// What the handler knows about the connection and its current message.
struct ConnTx {
    /// Where the client came from and which site's listener took it (`remote`: the
    /// address a PROXY header carried, on a proxy site).
    peer: Peer,
    /// Spool state of the current message.
    record: RecordState,
    /// Recipient split of the current message, set at `data_start`.
    rcpts: RcptSplit,
    /// Reverse path of the current message, set at `data_start` (for the log line).
    from: String,
    /// The user name whose password the verifier is checking (between `auth_check` and
    /// the verdict).
    auth_pending: Option<String>,
    /// The identity the session proved with AUTH (mirrors `ServerSession::authenticated`,
    /// for the relay decision at RCPT and the logs).
    authenticated: Option<String>,
}

/// Spool state of the message being received on a connection.
enum RecordState {
    /// No message content in progress.
    Idle,
    /// Content is streaming into this record.
    Open(OpenRecord),
    /// An append failed; the session drains the content and this reply is the answer.
    Failed(Reply),
    /// Finished; waiting for the group commit (the ticket is in `Inbound::pending`).
    Committing,
}

impl Inbound {
    /// The service for worker `worker`.
    pub fn new(
        worker: usize,
        shared: Arc<InboundShared>,
        spool: Spool,
        writer: SpoolWriter,
        queue_tx: Sender<IncomingBatch>,
    ) -> Inbound {
        Inbound {
            worker,
            spool,
            writer,
            queue_tx,
            pending: VecDeque::new(),
            outcomes: HashMap::new(),
            now: UNIX_EPOCH, // set by `begin_pass` before any connection exists
            now_instant: Instant::now(),
            auth: None,
            verdicts: Vec::new(),
            draining: false,
            // stats: registered once, at worker construction (never on the hot path).
            stats: shared
                .config
                .sites
                .iter()
                .map(|s| Registry::global().site_block(&s.name))
                .collect(),
            shared,
            protolog: None,
            live: None,
            sites: None,
        }
    }

    /// Follow reloads published in `live` (checked once per pass) and refuse new
    /// connections to the sites `sites` marks paused.
    #[must_use]
    pub fn with_control(
        mut self,
        live: Arc<Live<InboundShared>>,
        sites: Arc<SiteStates>,
    ) -> Inbound {
        let generation = live.generation();
        self.shared = live.load();
        self.live = Some((live, generation));
        self.sites = Some(sites);
        self
    }

    /// Verify AUTH passwords with the verifier behind `auth` (`receive::auth`).
    #[must_use]
    pub fn with_auth(mut self, auth: WorkerAuth) -> Inbound {
        self.auth = Some(auth);
        self
    }

    /// stats: the counter block of the connection's site.
    fn block(&self, peer: &Peer) -> &CounterBlock {
        &self.stats[peer.listener_tag.min(self.stats.len() - 1)]
    }

    /// The session's `Handler` for connection `id`: the worker's spool writer, commit-wait
    /// list and the connection's site counters, lent for one `feed`/`disconnect` call.
    fn handler<'a>(&'a mut self, id: ConnId, tx: &'a mut ConnTx) -> TxHandler<'a> {
        TxHandler {
            stats: &self.stats[tx.peer.listener_tag.min(self.stats.len() - 1)],
            cfg: self.shared.site(tx.peer.listener_tag),
            spool: &self.spool,
            writer: &mut self.writer,
            pending: &mut self.pending,
            tx,
            conn: id,
            now: self.now,
            auth: self.auth.as_ref(),
        }
    }

    /// Say 421 4.3.2 to a draining session as soon as it is between messages (the
    /// session itself refuses while content is open or a commit is pending).
    fn maybe_goodbye(c: &mut InboundConn, out: &mut Vec<u8>) {
        if c.draining {
            c.session.shutdown(out);
        }
        Self::release_if_closed(c);
    }

    /// Shutdown or site stop: `421 4.3.2` to an idle session now, to a session in a
    /// transaction once it is between messages (`maybe_goodbye`).
    fn goodbye(&mut self, c: &mut InboundConn, out: &mut Vec<u8>) {
        c.draining = true;
        if c.preface == Preface::Awaiting {
            c.preface = Preface::Rejected; // never greeted: just close
            return;
        }
        let before = out.len();
        Self::maybe_goodbye(c, out);
        self.log(c);
        self.block(&c.tx.peer).add(Counter::BytesSent, (out.len() - before) as u64); // stats
    }

    /// AUTH verdicts: count those that arrived, report the connections whose answer is
    /// due (failures only after their delay).
    fn poll_auth(&mut self, ready: &mut Vec<ConnId>) {
        let Some(auth) = &mut self.auth else { return };
        auth.poll(self.now_instant, ready, &mut self.verdicts);
        for v in self.verdicts.drain(..) {
            // stats: AUTH successes and failures by site.
            let b = &self.stats[v.site.min(self.stats.len() - 1)];
            b.inc(if v.ok { Counter::AuthSuccesses } else { Counter::AuthFailures });
        }
    }

    /// Answer a session's AUTH with its verdict. Logs the user name on success only (a
    /// failed "user name" may be a mistyped password); never the password.
    fn resume_auth(&mut self, v: Verdict, c: &mut InboundConn, out: &mut Vec<u8>) {
        if !c.session.awaiting_auth() {
            return; // timed out or shut down meanwhile
        }
        let user = c.tx.auth_pending.take();
        let site = self.shared.config.sites.get(c.tx.peer.listener_tag).map_or("", |s| &s.name);
        if v.ok {
            let shown = user.as_deref().unwrap_or_default().escape_debug().to_string();
            log::info!("client={} site={site} authenticated user=\"{shown}\"", c.tx.peer.remote);
            c.tx.authenticated = user;
        } else {
            log::warn!("client={} site={site} AUTH failed: 535 5.7.8", c.tx.peer.remote);
        }
        let before = out.len();
        c.session.auth_done(v.ok, out);
        Self::maybe_goodbye(c, out);
        self.log(c);
        self.block(&c.tx.peer).add(Counter::BytesSent, (out.len() - before) as u64); // stats
    }

    /// Un-count a closed session now (see `InboundConn::permit`).
    fn release_if_closed(c: &mut InboundConn) {
        if c.session.is_closed() {
            c.permit = None;
        }
    }
}

impl Service for Inbound {
    type Conn = InboundConn;

    fn begin_pass(&mut self, now: Instant, wall_clock: SystemTime) {
        self.now = wall_clock;
        self.now_instant = now;
        // A reload: sessions see the new settings from their next command, new sessions
        // get the new greeting and limits (one atomic load per pass when nothing changed).
        if let Some((live, seen)) = &mut self.live
            && live.refresh(seen, &mut self.shared)
        {
            log::debug!("worker={} configuration reloaded", self.worker);
        }
    }

    fn accept(
        &mut self,
        peer: &Peer,
        permit: Result<ConnPermit, LimitExceeded>,
        out: &mut Vec<u8>,
    ) -> Option<InboundConn> {
        let ip = peer.remote.ip();
        if self.sites.as_ref().is_some_and(|s| s.is_paused(peer.listener_tag)) {
            // Paused (`control`): no session, whatever the site's protocol options.
            log::debug!("worker={} client={ip} refused: site paused", self.worker);
            Reply::service_paused().write_to(out);
            return None;
        }
        let proxied = self.proxy_site(peer.listener_tag);
        if proxied && !self.proxy_trusted(peer.listener_tag, peer.remote) {
            self.proxy_reject(peer.listener_tag, peer.remote, Rejection::Untrusted);
            return None; // nothing written: no greeting before a header from a trusted peer
        }
        // A proxy site checks the client the header names (`inbound/proxy.rs`).
        let site_cfg = self.shared.site(peer.listener_tag);
        if !proxied && !connection_allowed(&site_cfg.connections, ip) {
            log::debug!("worker={} client={ip} refused: connection control", self.worker);
            Reply::connection_refused().write_to(out);
            return None;
        }
        let permit = match permit {
            Ok(p) => p,
            Err(which) => {
                log::debug!("worker={} client={ip} refused: {which:?} limit", self.worker);
                Reply::too_many_connections().write_to(out);
                return None;
            }
        };
        let site = peer.listener_tag.min(self.shared.server.len() - 1);
        let mut session = ServerSession::new(Arc::clone(&self.shared.server[site]));
        let before = out.len();
        if !peer.implicit_tls && !proxied {
            session.greet(out); // implicit TLS: after the handshake (`tls_established`)
        }
        if self.protolog.as_ref().is_some_and(|l| l.enabled(site)) {
            session.enable_transcript();
        }
        // stats: one more connection (counted down in `closed`), and the greeting's bytes.
        let b = self.block(peer);
        b.inc(Counter::InboundConnections);
        b.inc(Counter::InboundConnectionsTotal);
        b.add(Counter::BytesSent, (out.len() - before) as u64);
        Some(InboundConn {
            session,
            tx: ConnTx {
                peer: *peer,
                record: RecordState::Idle,
                rcpts: (0, 0),
                from: String::new(),
                auth_pending: None,
                authenticated: None,
            },
            permit: Some(permit),
            draining: self.draining,
            handshaking: peer.implicit_tls && !proxied,
            preface: if proxied { Preface::Awaiting } else { Preface::Off },
        })
    }

    fn read(&mut self, id: ConnId, c: &mut InboundConn, input: &[u8], out: &mut Vec<u8>) -> usize {
        match c.preface {
            Preface::Off => {}
            Preface::Awaiting => return self.read_preface(id, c, input, out),
            Preface::TlsNext | Preface::Rejected => return 0,
        }
        let before = out.len();
        let mut h = self.handler(id, &mut c.tx);
        let used = c.session.feed(input, &mut h, out);
        Self::maybe_goodbye(c, out);
        self.log(c);
        // stats: bytes consumed from the peer and reply bytes produced in this call.
        let stats = self.block(&c.tx.peer);
        stats.add(Counter::BytesReceived, used as u64);
        stats.add(Counter::BytesSent, (out.len() - before) as u64);
        used
    }

    fn wants_read(&self, c: &InboundConn) -> bool {
        match c.preface {
            Preface::Off => c.session.wants_read(),
            Preface::Awaiting => true,
            Preface::TlsNext | Preface::Rejected => false,
        }
    }

    fn wants_close(&self, c: &InboundConn) -> bool {
        c.preface == Preface::Rejected || c.session.is_closed()
    }

    fn idle_timeout_ms(&self, c: &InboundConn) -> u64 {
        let l = &self.shared.site(c.tx.peer.listener_tag).limits;
        if c.preface == Preface::Awaiting {
            return PROXY_HEADER_TIMEOUT_MS.min(l.command_timeout_ms);
        }
        if c.handshaking {
            return self.shared.config.tls.handshake_timeout_ms;
        }
        if c.session.in_data() { l.data_timeout_ms } else { l.command_timeout_ms }
    }

    fn timed_out(&mut self, c: &mut InboundConn, out: &mut Vec<u8>) {
        if c.preface == Preface::Awaiting {
            c.preface = Preface::Rejected;
            return self.proxy_reject(c.tx.peer.listener_tag, c.tx.peer.remote, Rejection::Timeout);
        }
        log::debug!("worker={} client={} idle timeout", self.worker, c.tx.peer.remote);
        let before = out.len();
        c.session.timeout(out);
        Self::release_if_closed(c);
        self.log(c);
        self.block(&c.tx.peer).add(Counter::BytesSent, (out.len() - before) as u64); // stats
    }

    fn shutdown(&mut self, c: &mut InboundConn, out: &mut Vec<u8>) {
        self.draining = true;
        self.goodbye(c, out);
    }

    fn listener_closed(&mut self, tag: usize, c: &mut InboundConn, out: &mut Vec<u8>) -> bool {
        // The site was stopped (`control`): its sessions go as at shutdown.
        if c.tx.peer.listener_tag != tag {
            return false;
        }
        self.goodbye(c, out);
        true
    }

    fn closed(&mut self, id: ConnId, mut c: InboundConn, reason: CloseReason) {
        self.outcomes.remove(&id);
        if let Some(a) = &mut self.auth {
            a.forget(id);
        }
        let b = self.block(&c.tx.peer);
        b.dec(Counter::InboundConnections); // stats: counted up in `accept`
        if c.handshaking {
            b.inc(Counter::TlsHandshakeFailures); // stats
        }
        if c.session.tls_active() {
            b.dec(Counter::TlsConnections); // stats: counted up in `tls_established`
        }
        let mut h = self.handler(id, &mut c.tx);
        c.session.disconnect(&mut h);
        self.log(&mut c);
        // Whatever the session thought, never leave a record open (it would pin the writer).
        if let RecordState::Open(rec) = std::mem::replace(&mut c.tx.record, RecordState::Idle) {
            self.writer.abort(rec);
        }
        log::debug!("worker={} client={} closed: {reason:?}", self.worker, c.tx.peer.remote);
    }

    fn poll_ready(&mut self, ready: &mut Vec<ConnId>) {
        self.poll_auth(ready);
        if self.pending.is_empty() {
            return;
        }
        let (durable, failed) = match self.writer.poll_committed() {
            Ok(seq) => (seq, None),
            Err((through, e)) => {
                // Reported once; the next call returns the durable seq again.
                log::error!("worker={} group commit failed: {e}", self.worker);
                (self.writer.poll_committed().unwrap_or(0), Some(through))
            }
        };
        let mut batch = IncomingBatch::new();
        while let Some(p) = self.pending.front() {
            let outcome = if p.ticket.seq <= durable {
                self.log_received(p); // the lifecycle line
                batch.push(p.ticket.id);
                // stats: the message is accepted (250 follows).
                let b = &self.stats[p.site.min(self.stats.len() - 1)];
                b.inc(Counter::MessagesReceived);
                b.inc(Counter::MessagesAccepted);
                b.add(Counter::MessageBytesReceived, p.bytes);
                b.add(Counter::RecipientsLocal, p.rcpts.0);
                b.add(Counter::RecipientsRemote, p.rcpts.1);
                let waited = self.now.duration_since(p.finished).unwrap_or_default();
                b.record(Hist::CommitLatency, waited.as_micros() as u64);
                Ok(p.ticket.id)
            } else if failed.is_some_and(|f| p.ticket.seq <= f) {
                Err(())
            } else {
                break;
            };
            self.outcomes.insert(p.conn, outcome);
            ready.push(p.conn);
            self.pending.pop_front();
        }
        // Only the 8-byte ids cross threads (the messages stay in the spool), and only once
        // per group commit: one wake-up of the queue runner per batch, not per message.
        if let Some(b) = self.stats.first().filter(|_| !batch.is_empty()) {
            b.record(Hist::CommitBatch, batch.len() as u64); // stats
        }
        if !batch.is_empty() && self.queue_tx.send(batch).is_err() {
            log::warn!("worker={} queue runner gone", self.worker);
        }
    }

    fn resume(&mut self, id: ConnId, c: &mut InboundConn, out: &mut Vec<u8>) {
        if let Some(v) = self.auth.as_mut().and_then(|a| a.take(id)) {
            return self.resume_auth(v, c, out);
        }
        let Some(outcome) = self.outcomes.remove(&id) else { return };
        if !matches!(c.tx.record, RecordState::Committing) {
            return;
        }
        c.tx.record = RecordState::Idle;
        let before = out.len();
        match outcome {
            Ok(qid) => c.session.commit_done(Ok(&qid.to_string()), out),
            Err(()) => c.session.commit_done(Err(Reply::local_error()), out),
        }
        Self::maybe_goodbye(c, out);
        self.log(c);
        self.block(&c.tx.peer).add(Counter::BytesSent, (out.len() - before) as u64); // stats
    }

    fn end_of_pass(&mut self) {
        self.writer.flush();
        if let Some(sink) = &mut self.protolog {
            sink.flush(protolog::unix_ms(self.now));
        }
    }

    fn pass_deadline(&self) -> Option<Instant> {
        let auth = self.auth.as_ref().and_then(WorkerAuth::deadline);
        match (self.writer.flush_deadline(), auth) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn has_outstanding(&self) -> bool {
        !self.pending.is_empty() || self.writer.has_uncommitted()
    }

    fn defers_client_ip(&self, peer: &Peer) -> bool {
        self.proxy_site(peer.listener_tag)
    }

    fn awaiting_preface(&self, c: &InboundConn) -> bool {
        c.preface == Preface::Awaiting
    }

    fn tls_start(&mut self, c: &mut InboundConn) -> Option<TlsStart> {
        if !c.session.tls_requested() || c.handshaking {
            return None;
        }
        // The session offers STARTTLS only on a site with a certificate.
        let cfg = self.shared.site_tls_config(c.tx.peer.listener_tag)?;
        c.handshaking = true;
        Some(TlsStart::Server(cfg))
    }

    fn tls_established(
        &mut self,
        _id: ConnId,
        c: &mut InboundConn,
        info: &NetTlsInfo,
        out: &mut Vec<u8>,
    ) {
        c.handshaking = false;
        c.preface = Preface::Off; // after a PROXY header on an implicit-TLS listener
        c.session.tls_established(session_info(info));
        log::debug!(
            "worker={} client={} tls version={} cipher={}",
            self.worker,
            c.tx.peer.remote,
            info.version,
            info.cipher
        );
        let before = out.len();
        if c.tx.peer.implicit_tls && !c.session.is_closed() {
            c.session.greet(out); // not after a 421 written during the handshake (shutdown)
        }
        let b = self.block(&c.tx.peer);
        b.inc(Counter::TlsHandshakes); // stats
        b.inc(Counter::TlsConnections); // stats: counted down in `closed`
        b.add(Counter::BytesSent, (out.len() - before) as u64); // stats
    }
}

/// The session's `Handler` for one `feed` call: policy + spool for one connection.
struct TxHandler<'a> {
    /// stats: the worker's block for the connection's site.
    stats: &'a CounterBlock,
    /// Configuration.
    cfg: &'a Config,
    /// The spool (free-space check).
    spool: &'a Spool,
    /// This worker's writer.
    writer: &'a mut SpoolWriter,
    /// The worker's commit-wait list.
    pending: &'a mut VecDeque<Pending>,
    /// The connection's transaction state.
    tx: &'a mut ConnTx,
    /// The connection's id (for the commit-wait list).
    conn: ConnId,
    /// Wall clock of this pass.
    now: SystemTime,
    /// The AUTH verifier, if users are configured.
    auth: Option<&'a WorkerAuth>,
}

impl Handler for TxHandler<'_> {
    fn mail(&mut self, _from: &ReversePath<'_>, _params: &MailParams<'_>) -> Result<(), Reply> {
        if !self.spool.has_free_space() {
            return Err(Reply::insufficient_storage());
        }
        Ok(())
    }

    fn rcpt(&mut self, to: &ForwardPath<'_>, _params: &RcptParams<'_>) -> Result<(), Reply> {
        let authenticated = self.tx.authenticated.is_some();
        let verdict = check_rcpt(self.cfg, client_ip(&self.tx.peer), authenticated, to);
        if verdict.is_err() {
            self.stats.inc(Counter::MessagesRefusedPolicy); // stats
        }
        verdict
    }

    fn refused_for_size(&mut self) {
        self.stats.inc(Counter::MessagesRefusedSize); // stats
    }

    fn refused_smuggling(&mut self) {
        self.stats.inc(Counter::SmugglingRefused); // stats
        let site = self.cfg.sites.get(self.tx.peer.listener_tag).map_or("", |s| s.name.as_str());
        log::warn!(
            "client={} site={site} refused: end-of-data look-alike in content (SMTP smuggling), \
             554 5.6.0",
            self.tx.peer.remote
        );
    }

    fn data_start(&mut self, t: &Transaction) -> Result<(), Reply> {
        let env = self.envelope(t);
        self.tx.rcpts =
            rcpt_split(&self.cfg.domains, env.recipients.iter().map(|r| r.forward_path.as_str()));
        let mut rec = self.writer.begin(&env).map_err(|e| spool_reply(&e))?;
        self.tx.from = env.reverse_path; // moved, not copied: the envelope is done with
        let mut header = Vec::with_capacity(256);
        super::received::received_header(
            &mut header,
            self.cfg,
            &self.tx.peer,
            t,
            rec.id(),
            self.now,
        );
        if let Err(e) = self.writer.append(&mut rec, &header) {
            self.writer.abort(rec);
            return Err(spool_reply(&e));
        }
        self.tx.record = RecordState::Open(rec);
        Ok(())
    }

    fn data_chunk(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        let RecordState::Open(rec) = &mut self.tx.record else {
            return match &self.tx.record {
                RecordState::Failed(r) => Err(r.clone()),
                _ => Err(Reply::local_error()),
            };
        };
        if let Err(e) = self.writer.append(rec, bytes) {
            let reply = spool_reply(&e);
            if let RecordState::Open(rec) =
                std::mem::replace(&mut self.tx.record, RecordState::Failed(reply.clone()))
            {
                self.writer.abort(rec);
            }
            return Err(reply);
        }
        Ok(())
    }

    fn data_end(&mut self) -> DataOutcome {
        match std::mem::replace(&mut self.tx.record, RecordState::Idle) {
            RecordState::Open(rec) => match (rec.bytes(), self.writer.finish(rec)) {
                (bytes, Ok(ticket)) => {
                    let client = self.tx.peer.remote;
                    self.pending.push_back(Pending {
                        ticket,
                        conn: self.conn,
                        bytes,
                        client,
                        site: self.tx.peer.listener_tag,
                        rcpts: self.tx.rcpts,
                        finished: self.now,
                        // Cloned only for authenticated sessions (a short name).
                        user: self.tx.authenticated.clone(),
                        from: std::mem::take(&mut self.tx.from),
                    });
                    self.tx.record = RecordState::Committing;
                    DataOutcome::Pending
                }
                (_, Err(e)) => DataOutcome::Done(spool_reply(&e)),
            },
            RecordState::Failed(reply) => DataOutcome::Done(reply),
            RecordState::Idle | RecordState::Committing => DataOutcome::Done(Reply::local_error()),
        }
    }

    fn data_abort(&mut self) {
        if let RecordState::Open(rec) = std::mem::replace(&mut self.tx.record, RecordState::Idle) {
            self.writer.abort(rec);
        }
    }

    fn auth_check(&mut self, authcid: &str, password: &[u8]) -> AuthOutcome {
        let Some(auth) = self.auth else { return AuthOutcome::Done(false) };
        let peer = &self.tx.peer;
        if auth.submit(self.conn, peer.listener_tag, client_ip(peer), authcid, password) {
            self.tx.auth_pending = Some(authcid.to_owned());
            AuthOutcome::Pending
        } else {
            log::error!("client={} AUTH verifier thread is gone", peer.remote);
            AuthOutcome::Done(false)
        }
    }
}

/// The client's address as policy sees it.
fn client_ip(peer: &Peer) -> IpAddr {
    peer.remote.ip()
}

/// 452 4.3.1 for a full disk, 451 4.3.0 for anything else.
fn spool_reply(e: &SpoolError) -> Reply {
    match e {
        SpoolError::NoSpace => Reply::insufficient_storage(),
        _ => Reply::local_error(),
    }
}

#[cfg(test)]
mod tests;
