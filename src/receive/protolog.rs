//! The inbound side of the W3C protocol log: after each call into a session, the
//! commands it finished (`smtp::server::Transcript`) become lines in the worker's
//! `protolog::LogSink`, with the connection's facts (client, local address, site, our
//! host name, the AUTH identity).
//!
//! Cost: nothing when the site does not log (the session keeps no transcript). Otherwise
//! one line formatted into the worker's per-site buffer per command, no allocation; the
//! buffer goes to the `protocol-log` thread at the end of the event-loop pass.
//!
//! Also `Quoted`, a field of the inbound lifecycle log lines.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::net::Peer;
use crate::protolog::LogSink;
use crate::protolog::format::Record;
use crate::smtp::server::ServerSession;

/// Move the finished commands of `session` into `sink`. `user`: the AUTH identity of the
/// connection; `now`: this pass's wall clock (the lines' time and `time-taken`).
pub(super) fn drain(
    sink: &mut LogSink,
    session: &mut ServerSession,
    peer: &Peer,
    user: Option<&str>,
    cfg: &Config,
    now: SystemTime,
) {
    let Some(t) = session.transcript() else { return };
    let site = peer.listener_tag;
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
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
pub(super) struct Quoted<'a>(pub(super) &'static str, pub(super) Option<&'a str>);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(v) => write!(f, "{}\"{}\"", self.0, v.escape_debug()),
            None => Ok(()),
        }
    }
}
