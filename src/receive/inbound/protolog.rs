//! The inbound side of the W3C protocol log (a child of `inbound`: it uses the worker's
//! private state): after each call into a session, the
//! commands it finished (`smtp::server::Transcript`) become lines in the worker's
//! `protolog::LogSink`, with the connection's facts (client, local address, site, our
//! host name, the AUTH identity).
//!
//! Cost: nothing when the site does not log (the session keeps no transcript). Otherwise
//! one line formatted into the worker's per-site buffer per command, no allocation; the
//! buffer goes to the `protocol-log` thread at the end of the event-loop pass.
//!
//! Also the `received` message lifecycle line (info, target `mailroot::message`, one per
//! message by design: issue 9), written when the message is durable.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Inbound, InboundConn, Pending};
use crate::config::Config;
use crate::net::Peer;
use crate::protolog::format::Record;
use crate::protolog::{LogSink, SinkParts};
use crate::smtp::server::ServerSession;

impl Inbound {
    /// Write the W3C protocol log of the sites that want one through `parts`.
    #[must_use]
    pub fn with_protolog(mut self, parts: SinkParts) -> Inbound {
        self.protolog = Some(LogSink::new(parts, self.stats.clone()));
        self
    }

    /// Protocol log: the commands the session finished in the last call.
    pub(super) fn log(&mut self, c: &mut InboundConn) {
        if let Some(sink) = &mut self.protolog {
            let user = c.tx.authenticated.as_deref();
            let site = self.shared.site(c.tx.peer.listener_tag);
            drain(sink, &mut c.session, &c.tx.peer, user, site, self.now);
        }
    }

    /// The lifecycle line of a message that is durable now (its 250 follows).
    pub(super) fn log_received(&self, p: &Pending) {
        log::info!(
            target: "mailroot::message",
            "queue_id={} received from=<{}> nrcpt={} size={} client={} site={}{}",
            p.ticket.id,
            p.from.escape_debug(),
            p.rcpts.0 + p.rcpts.1,
            p.bytes,
            p.client,
            self.shared.config.sites.get(p.site).map_or("", |s| s.name.as_str()),
            Quoted(" user=", p.user.as_deref())
        );
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Move the finished commands of `session` into `sink`. `user`: the AUTH identity of the
/// connection; `now`: this pass's wall clock (the lines' time and `time-taken`).
fn drain(
    sink: &mut LogSink,
    session: &mut ServerSession,
    peer: &Peer,
    user: Option<&str>,
    cfg: &Config,
    now: SystemTime,
) {
    let Some(t) = session.transcript() else { return };
    let site = peer.listener_tag;
    let now_ms = unix_ms(now);
    let site_name = cfg.sites.get(site).map_or("", |s| s.name.as_str());
    t.drain(now_ms, |e, args| {
        let r = Record {
            unix_ms: e.done_ms,
            client: peer.remote.ip(),
            username: user,
            site: site_name,
            computer: &cfg.hostname,
            server: peer.local,
            method: e.method,
            query: args,
            status: e.status,
            sc_bytes: e.sc_bytes,
            cs_bytes: e.cs_bytes,
            time_taken_ms: e.done_ms.saturating_sub(e.started_ms),
        };
        sink.write(site, &r);
    });
}

/// `<prefix>"<value escaped>"`, or nothing for `None` (a log field without allocating).
struct Quoted<'a>(&'static str, Option<&'a str>);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(v) => write!(f, "{}\"{}\"", self.0, v.escape_debug()),
            None => Ok(()),
        }
    }
}
