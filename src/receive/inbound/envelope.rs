//! The spool envelope of a transaction (`TxHandler::envelope`): reverse path, recipients
//! with their DSN parameters (RFC 3461) as the spool's flag bytes, BODY, RET, ENVID, the
//! client address (the PROXY-carried one on a proxy site), HELO, arrival time and site.

use std::time::{SystemTime, UNIX_EPOCH};

use super::TxHandler;
use crate::smtp::command::{Body, Ret};
use crate::smtp::server::Transaction;
use crate::spool::format::{NOTIFY_DELAY, NOTIFY_FAILURE, NOTIFY_NEVER, NOTIFY_SUCCESS};
use crate::spool::{Envelope, EnvelopeRecipient};

impl TxHandler<'_> {
    /// The envelope record for `t`.
    pub(super) fn envelope(&self, t: &Transaction) -> Envelope {
        let site = self.cfg.sites.get(self.tx.peer.listener_tag).map(|s| s.name.clone());
        Envelope {
            reverse_path: t.reverse_path.clone(),
            recipients: t
                .recipients
                .iter()
                .map(|r| EnvelopeRecipient {
                    forward_path: r.forward_path.clone(),
                    notify: r.notify.map_or(0, |n| {
                        (if n.never { NOTIFY_NEVER } else { 0 })
                            | (if n.success { NOTIFY_SUCCESS } else { 0 })
                            | (if n.failure { NOTIFY_FAILURE } else { 0 })
                            | (if n.delay { NOTIFY_DELAY } else { 0 })
                    }),
                    orcpt: r.orcpt.clone(),
                })
                .collect(),
            body: match t.body {
                None | Some(Body::SevenBit) => 0,
                Some(Body::EightBitMime) => 1,
                Some(Body::BinaryMime) => 2,
            },
            smtputf8: t.smtputf8,
            ret: match t.ret {
                None => 0,
                Some(Ret::Full) => 1,
                Some(Ret::Hdrs) => 2,
            },
            envid: t.envid.clone(),
            client_addr: self.tx.peer.remote.to_string(),
            helo: t.helo.clone(),
            arrival_unix_ms: unix_ms(self.now),
            site: site.unwrap_or_default(),
        }
    }
}

/// Milliseconds since the Unix epoch.
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
