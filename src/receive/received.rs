//! The `Received:` trace header that inbound SMTP prepends to every message it queues
//! (RFC 5321 §4.4), from the session's transaction and the connection: HELO name, client
//! address, ESMTP / ESMTPS / ESMTPA / ESMTPSA with the TLS version and cipher (RFC 3848),
//! queue id, the single recipient when there is one, and the time in UTC (no time-zone
//! database here). The text itself is `smtp::trace`'s; this module only gathers the fields.
//!
//! TRUST: the HELO name and addresses come from the client; `smtp::trace` escapes them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::net::Peer;
use crate::smtp::server::Transaction;
use crate::smtp::trace::{self, TraceFields};
use crate::spool::QueueId;

/// Our trace header (RFC 5321 §4.4), written in UTC (no time-zone database here).
pub(super) fn received_header(
    out: &mut Vec<u8>,
    cfg: &Config,
    peer: &Peer,
    t: &Transaction,
    id: QueueId,
    now: SystemTime,
) {
    let queue_id = id.to_string();
    let recipient = match t.recipients.as_slice() {
        [only] => Some(only.forward_path.as_str()),
        _ => None,
    };
    let fields = TraceFields {
        helo: &t.helo,
        client_rdns: None,
        client_ip: peer.remote.ip(),
        hostname: &cfg.hostname,
        esmtp: t.esmtp,
        smtputf8: t.smtputf8,
        tls: t.tls.as_ref().map(|i| trace::TlsInfo { version: &i.version, cipher: &i.cipher }),
        authenticated: t.authenticated.is_some(),
        queue_id: &queue_id,
        recipient,
        unix_time_secs: i64::try_from(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
            .unwrap_or(i64::MAX),
        utc_offset_secs: 0,
    };
    trace::write_received(&fields, out);
}
