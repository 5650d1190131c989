//! The PROXY protocol on inbound listeners (`[[site]] proxy_protocol = true`): the service
//! side of `net`'s *preface* (`Service::awaiting_preface`). The header is parsed by the pure
//! `proxy_protocol` module; this file decides what it means for the connection.
//!
//! WHAT, per connection of a proxy site:
//! 1. accept: the TCP peer must be in `proxy_trusted`, else the connection is closed at
//!    once, without a greeting (`reason=untrusted`). The connection limits counted it in
//!    the total only (`Service::defers_client_ip`); no greeting is written.
//! 2. read: bytes are accumulated (at most one header's worth) until `proxy_protocol::parse`
//!    says done or error. A malformed header closes without a greeting
//!    (`reason=malformed`); no header within `PROXY_HEADER_TIMEOUT_MS` (or
//!    `[limits] command_timeout` if shorter) closes too (`reason=timeout`). Each is logged at warn with the TCP peer and counted in
//!    `mailroot_proxy_rejected_total{site,reason}`.
//! 3. done: the carried source address (or, for LOCAL / UNKNOWN / AF_UNIX, the TCP peer)
//!    becomes `Peer::remote` for everything after: connection control (`[connections]`,
//!    554 5.7.1), the per-IP connection limit (421 4.7.0, `ConnPermit::count_ip`), relay
//!    rules, AUTH, logs, the envelope's client address and the `Received:` header. Then the
//!    220 greeting, or on an implicit-TLS listener the handshake (`net` starts it with the
//!    bytes after the header) and the greeting after it.
//!
//! TRUST: a header is believed only from `proxy_trusted`; the balancer's own address is
//! logged (`via=`, debug) when the header is accepted. Nothing is written to the peer before the header is in.

use std::net::SocketAddr;

use super::{Inbound, InboundConn};
use crate::net::{ConnId, Service as _};
use crate::policy::access::connection_allowed;
use crate::proxy_protocol::{self, Addresses, Parsed, ProxyError};
use crate::smtp::reply::Reply;
use crate::stats::Counter;

/// How long a trusted balancer has to send the whole header after connecting. HAProxy
/// sends it with the connection's first bytes; this only bounds a stuck or hostile peer.
pub(super) const PROXY_HEADER_TIMEOUT_MS: u64 = 10_000;

/// Where a connection of a proxy site is in its preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Preface {
    /// No preface (not a proxy site), or it is over: SMTP (or the TLS handshake) runs.
    Off,
    /// Waiting for the PROXY header; nothing was written to the peer.
    Awaiting,
    /// Header done on an implicit-TLS listener: no plaintext is read until `net` has
    /// started the handshake and `tls_established` switches to `Off`.
    TlsNext,
    /// Refused: close as soon as the output (if any) is flushed; read nothing more.
    Rejected,
}

/// Why a connection of a proxy site was closed before its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    /// The TCP peer is not in `proxy_trusted`.
    Untrusted,
    /// The header did not parse.
    Malformed(ProxyError),
    /// No complete header in time.
    Timeout,
}

impl Inbound {
    /// Whether site `tag` reads a PROXY header first.
    pub(super) fn proxy_site(&self, tag: usize) -> bool {
        self.shared.config.sites.get(tag).is_some_and(|s| s.proxy.enabled)
    }

    /// Whether the site trusts the TCP peer `peer` to send a header.
    pub(super) fn proxy_trusted(&self, tag: usize, peer: SocketAddr) -> bool {
        self.shared.config.sites.get(tag).is_some_and(|s| s.proxy.trusts(peer.ip()))
    }

    /// Log and count a connection closed before its greeting (peer = the TCP peer).
    pub(super) fn proxy_reject(&self, tag: usize, peer: SocketAddr, why: Rejection) {
        let site = self.shared.config.sites.get(tag).map_or("", |s| s.name.as_str());
        let (counter, reason) = match why {
            Rejection::Untrusted => {
                (Counter::ProxyRejectedUntrusted, "peer not in proxy_trusted".to_owned())
            }
            Rejection::Malformed(e) => (Counter::ProxyRejectedMalformed, e.to_string()),
            Rejection::Timeout => (Counter::ProxyRejectedTimeout, "no header in time".to_owned()),
        };
        log::warn!("peer={peer} site={site} PROXY protocol: connection closed: {reason}");
        self.stats[tag.min(self.stats.len() - 1)].inc(counter); // stats
    }

    /// `Service::read` while the header is awaited: parse what arrived; on success apply
    /// the carried address and greet (or hand over to TLS), and feed what followed the
    /// header to the session. Returns the bytes consumed.
    pub(super) fn read_preface(
        &mut self,
        id: ConnId,
        c: &mut InboundConn,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> usize {
        let tag = c.tx.peer.listener_tag;
        let tcp_peer = c.tx.peer.remote;
        let (header, consumed) = match proxy_protocol::parse(input) {
            // Bounded: `parse` refuses a v1 line over 107 bytes and a v2 header over
            // `MAX_V2_BYTES` as soon as the bytes show it.
            Ok(Parsed::NeedMore) => return 0,
            Ok(Parsed::Done { header, consumed }) => (header, consumed),
            Err(e) => {
                self.proxy_reject(tag, tcp_peer, Rejection::Malformed(e));
                c.preface = Preface::Rejected;
                return input.len();
            }
        };
        self.block(&c.tx.peer).inc(Counter::ProxyHeaders); // stats
        if let Addresses::Tcp { source, .. } = header.addresses {
            // A dual-stack balancer may send `TCP6 ::ffff:192.0.2.1`: policy networks are
            // written for the IPv4 address.
            c.tx.peer.remote = SocketAddr::new(source.ip().to_canonical(), source.port());
        }
        let client = c.tx.peer.remote;
        log::debug!("client={client} via={tcp_peer} PROXY {:?} header accepted", header.version);
        let site_cfg = self.shared.site(c.tx.peer.listener_tag);
        let refusal = if !connection_allowed(&site_cfg.connections, client.ip()) {
            Some(Reply::connection_refused())
        } else if c.permit.as_mut().is_some_and(|p| p.count_ip(client.ip()).is_err()) {
            Some(Reply::too_many_connections())
        } else {
            None
        };
        if let Some(reply) = refusal {
            log::debug!("client={client} via={tcp_peer} refused: {}", reply.code);
            let before = out.len();
            if !c.tx.peer.implicit_tls {
                reply.write_to(out); // a TLS client could not read plaintext: just close
            }
            self.block(&c.tx.peer).add(Counter::BytesSent, (out.len() - before) as u64); // stats
            c.preface = Preface::Rejected;
            return input.len();
        }
        if c.tx.peer.implicit_tls {
            c.preface = Preface::TlsNext;
            c.handshaking = true;
            return consumed; // the rest is the ClientHello: `net` gives it to rustls
        }
        c.preface = Preface::Off;
        let before = out.len();
        c.session.greet(out);
        self.block(&c.tx.peer).add(Counter::BytesSent, (out.len() - before) as u64); // stats
        consumed + self.read(id, c, &input[consumed..], out)
    }
}
