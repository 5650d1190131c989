//! The delivery planner: what one delivery attempt looks like, decided from values alone.
//!
//! What: for one scheduler job (a queued message, one destination domain, some of its
//! recipients) and the message content, [`plan`] decides
//! * the hop count: more `Received:` fields than `[relay] max_hop_count` is a routing loop,
//!   every recipient fails at once with 5.4.6 ([`Plan::RoutingLoop`]);
//! * the next hop ([`route::route`]: local Drop folder, domain rule, host table, smart
//!   host, MX);
//! * the envelope to send ([`Job`]): the reverse path masqueraded with `[relay]
//!   masquerade_domain` for remote routes only (first hop; Drop files keep the original),
//!   the recipients with their DSN parameters, BODY, SMTPUTF8, SIZE, RET, ENVID.
//!
//! The queue runner reads the content once out of the spool, asks the planner, and hands
//! the result to the delivery threads; the planner owns no thread, file or socket.
//!
//! Trust: the envelope and the content come from our spool (the header fields were written
//! by clients and are only counted); the configuration is trusted.
//!
//! Layer 0: bytes, configuration and values in, values out; no I/O, no clock.
//! Standards: RFC 5321 §6.3 (loop detection), §3.9 / §4.1.1.2 (reverse path),
//! RFC 3461 §4 (NOTIFY, ORCPT, RET, ENVID carried on), RFC 1870 (SIZE), RFC 6152 (BODY).

pub mod route;

use crate::config::Config;
use crate::smtp::client::{Job, JobRecipient};
use crate::smtp::command::{Notify, Ret};
use crate::spool::format::{Envelope, NOTIFY_DELAY, NOTIFY_FAILURE, NOTIFY_NEVER, NOTIFY_SUCCESS};
use route::Route;

/// What to do with one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send `job` along `route`.
    Deliver {
        /// The next hop (`Route::Local`: the Drop folder).
        route: Route,
        /// The envelope to send, one `JobRecipient` per requested recipient index that
        /// exists in the envelope, in the order asked.
        job: Job,
    },
    /// The message has more `Received:` fields than `max_hop_count`: fail every recipient
    /// with [`route::LOOP_STATUS`] and [`route::HOP_LOOP_TEXT`] instead of sending it.
    RoutingLoop {
        /// The limit it went over (`[relay] max_hop_count`), for the log line.
        max_hop_count: u32,
    },
}

/// Plan the attempt to deliver `content` (the message as spooled) to the recipients
/// `rcpts` (indexes into `env.recipients`) in `domain`. See the module doc.
#[must_use]
pub fn plan(cfg: &Config, env: &Envelope, domain: &str, rcpts: &[u32], content: &[u8]) -> Plan {
    let max_hop_count = cfg.relay.max_hop_count;
    if route::too_many_hops(content, max_hop_count) {
        return Plan::RoutingLoop { max_hop_count };
    }
    let route = route::route(cfg, domain);
    let reverse_path = if matches!(route, Route::Local { .. }) {
        env.reverse_path.clone()
    } else {
        masquerade(&env.reverse_path, cfg.relay.masquerade_domain.as_deref())
    };
    let recipients: Vec<JobRecipient> = rcpts
        .iter()
        .filter_map(|&i| env.recipients.get(i as usize))
        .map(|r| JobRecipient {
            forward_path: r.forward_path.clone(),
            notify: notify_of(r.notify),
            orcpt: r.orcpt.clone(),
        })
        .collect();
    let job = Job {
        reverse_path,
        recipients,
        body_8bit: env.body != 0,
        smtputf8: env.smtputf8,
        size: content.len() as u64,
        ret: ret_of(env.ret),
        envid: env.envid.clone(),
    };
    Plan::Deliver { route, job }
}

/// `reverse_path` with its domain replaced by `masquerade` (the null path stays null).
#[must_use]
pub fn masquerade(reverse_path: &str, masquerade: Option<&str>) -> String {
    match (reverse_path.rsplit_once('@'), masquerade) {
        (Some((local, _)), Some(d)) => format!("{local}@{d}"),
        _ => reverse_path.to_owned(),
    }
}

/// NOTIFY bits as stored in the spool (`NOTIFY_*`) as the DSN type (`None` when the
/// client gave no NOTIFY).
#[must_use]
pub fn notify_of(bits: u8) -> Option<Notify> {
    (bits != 0).then_some(Notify {
        never: bits & NOTIFY_NEVER != 0,
        success: bits & NOTIFY_SUCCESS != 0,
        failure: bits & NOTIFY_FAILURE != 0,
        delay: bits & NOTIFY_DELAY != 0,
    })
}

/// RET as stored in the spool (0 none, 1 FULL, 2 HDRS).
#[must_use]
pub fn ret_of(b: u8) -> Option<Ret> {
    match b {
        1 => Some(Ret::Full),
        2 => Some(Ret::Hdrs),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
