//! Who may do what on the admin listener: the bearer-token rules, as pure functions of
//! the configuration and the request's `Authorization` header.
//!
//! SECURITY:
//! - reading (GET): open on a loopback listener; off loopback the token is required (the
//!   configuration refuses a non-loopback listener without one);
//! - changing state (POST): the token is required whenever one is configured, on any
//!   listener. Without a token, POSTs are refused (403) unless the listener is on loopback
//!   *and* `[admin] allow_unauthenticated_loopback_control = true`.
//!
//! The token is compared in constant time (length aside) so response timing does not
//! leak it byte by byte.

use std::time::{Duration, Instant};

/// Shortest time between two `admin.refused` events.
pub(super) const REFUSAL_EVENT_INTERVAL: Duration = Duration::from_secs(1);

/// Rate limit of the `admin.refused` events: one per [`REFUSAL_EVENT_INTERVAL`], the
/// refusals in between counted and reported with the next one.
#[derive(Debug, Default)]
pub(super) struct RefusalLog {
    /// When the last event was written.
    last: Option<Instant>,
    /// Refusals since then that were not written.
    unlogged: u64,
}

impl RefusalLog {
    /// A refusal at `now`: `Some(refusals left out before it)` if it is to be written.
    pub(super) fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < REFUSAL_EVENT_INTERVAL => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

/// What the listener demands, fixed at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Policy {
    /// The configured token.
    pub(super) token: Option<String>,
    /// The listener is on a loopback address.
    pub(super) loopback: bool,
    /// `[admin] allow_unauthenticated_loopback_control`.
    pub(super) open_loopback_control: bool,
}

/// A refusal: HTTP status and the reason shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    /// 401 (no or wrong token) or 403 (control not allowed without a token).
    pub(super) status: u16,
    /// Why, for the client and the event log.
    pub(super) reason: &'static str,
}

impl Policy {
    /// May a request with this `Authorization` header value read (`write` false) or
    /// change state (`write` true)?
    pub(super) fn check(&self, authorization: Option<&str>, write: bool) -> Result<(), Refusal> {
        let presented = authorization.and_then(|h| h.strip_prefix("Bearer "));
        match &self.token {
            Some(token) => {
                if !write && self.loopback {
                    return Ok(());
                }
                if presented.is_some_and(|p| same(p.as_bytes(), token.as_bytes())) {
                    Ok(())
                } else {
                    Err(Refusal { status: 401, reason: "bearer token required" })
                }
            }
            None if !write => Ok(()),
            None if self.loopback && self.open_loopback_control => Ok(()),
            None => Err(Refusal {
                status: 403,
                reason: "state-changing requests need [admin] token (or \
                         allow_unauthenticated_loopback_control on a loopback listener)",
            }),
        }
    }
}

/// Equal byte strings, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_events_are_rate_limited() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut log = RefusalLog::default();
        // (time ms, expected)
        let cases =
            [(0, Some(0)), (10, None), (999, None), (1000, Some(2)), (1500, None), (3000, Some(1))];
        for (t, want) in cases {
            assert_eq!(log.admit(ms(t)), want, "at {t} ms");
        }
    }

    #[test]
    fn rules() {
        let p = |token: Option<&str>, loopback, open| Policy {
            token: token.map(str::to_owned),
            loopback,
            open_loopback_control: open,
        };
        // (policy, Authorization, write, expected status: 0 = allowed)
        let cases = [
            (p(None, true, false), None, false, 0),
            (p(None, true, false), None, true, 403),
            (p(None, true, false), Some("Bearer x"), true, 403),
            (p(None, true, true), None, true, 0),
            (p(Some("s3cret"), true, false), None, false, 0),
            (p(Some("s3cret"), true, false), None, true, 401),
            (p(Some("s3cret"), true, true), None, true, 401),
            (p(Some("s3cret"), true, false), Some("Bearer s3cret"), true, 0),
            (p(Some("s3cret"), true, false), Some("Bearer s3cre"), true, 401),
            (p(Some("s3cret"), true, false), Some("Bearer s3cretX"), true, 401),
            (p(Some("s3cret"), true, false), Some("s3cret"), true, 401),
            (p(Some("s3cret"), false, false), None, false, 401),
            (p(Some("s3cret"), false, false), Some("Bearer s3cret"), false, 0),
        ];
        for (policy, auth, write, want) in cases {
            let got = policy.check(auth, write).map_or_else(|r| r.status, |()| 0);
            assert_eq!(got, want, "{policy:?} {auth:?} write={write}");
        }
    }
}
