//! Read deadlines of one inbound connection: the slowloris defence.
//!
//! WHAT: an idle timer re-armed by every read never cuts a client that trickles one byte a
//! second. So the inbound timeouts are *deadlines*, as Postfix's `smtpd_per_request_deadline`
//! and `smtpd_min_data_rate` make them:
//! - **Commands** (`command_timeout`): from our last reply the client has this long to
//!   complete its next command line; bytes of an unfinished line (or of an over-long one
//!   being discarded) do not extend it. Every reply starts a new one.
//! - **Content** (`data_timeout`, `min_data_rate`): inside DATA/BDAT content the client holds
//!   a credit of time, `data_timeout` at the start; waiting spends it and each byte received
//!   earns `1/min_data_rate` s back, never above `data_timeout`. So a client that sends
//!   nothing for `data_timeout` is cut, and so is one whose average rate stays below
//!   `min_data_rate` (after about `data_timeout` × rate / (rate − its rate)).
//!   `min_data_rate = 0` makes it a plain idle timer again.
//! - **Handshakes and the PROXY header**: one deadline from their start.
//!
//! When the deadline passes the worker's timer fires and the session answers `421 4.4.2`
//! and closes (`Inbound::timed_out`); open content is aborted, nothing is stored.
//!
//! TIME: pure; `now` comes from the worker's pass (`Service::begin_pass`). The worker re-arms
//! its timer after every pass from [`ReadDeadline::remaining_ms`], i.e. always to the same
//! absolute instant unless this module moved it.

use std::time::{Duration, Instant};

use crate::config::Limits;

/// When the connection's current wait ends (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ReadDeadline {
    /// The instant the timer fires. Invariant: at most the current phase's timeout after
    /// the `now` of the last update.
    at: Instant,
}

impl ReadDeadline {
    /// A deadline `ms` from `now` (a greeting, a reply, a handshake start).
    pub(super) fn after(now: Instant, ms: u64) -> ReadDeadline {
        ReadDeadline { at: now + Duration::from_millis(ms) }
    }

    /// Update after the session consumed `consumed` bytes in one read at `now`.
    /// `was_in_data` / `in_data`: the session read content before / after; `replied`: it
    /// wrote a reply in this read.
    pub(super) fn after_read(
        &mut self,
        now: Instant,
        l: &Limits,
        consumed: usize,
        (was_in_data, in_data): (bool, bool),
        replied: bool,
    ) {
        if in_data && !was_in_data {
            *self = ReadDeadline::after(now, l.data_timeout_ms); // content starts now
        } else if in_data {
            let cap = now + Duration::from_millis(l.data_timeout_ms);
            self.at = match l.min_data_rate_bytes_per_s {
                0 => cap,
                rate => {
                    let earned_ns = (consumed as u128) * 1_000_000_000 / u128::from(rate);
                    let earned = Duration::from_nanos(u64::try_from(earned_ns).unwrap_or(u64::MAX));
                    self.at.checked_add(earned).map_or(cap, |at| at.min(cap))
                }
            };
        } else if replied || was_in_data {
            *self = ReadDeadline::after(now, l.command_timeout_ms); // the next command's turn
        }
    }

    /// Milliseconds left at `now` (0 when passed).
    pub(super) fn remaining_ms(&self, now: Instant) -> u64 {
        let left = self.at.saturating_duration_since(now).as_millis();
        u64::try_from(left).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(command_ms: u64, data_ms: u64, rate: u64) -> Limits {
        let sys = crate::config::SystemDefaults { hostname: "t.test".into(), cores: 1 };
        let mut l = crate::config::Config::embedded_default(&sys).limits;
        l.command_timeout_ms = command_ms;
        l.data_timeout_ms = data_ms;
        l.min_data_rate_bytes_per_s = rate;
        l
    }

    /// One read: `(at_ms, consumed, (was_in_data, in_data), replied)`.
    type Read = (u64, usize, (bool, bool), bool);

    /// Feed `reads`; the remaining ms after each, seen at that read's instant.
    fn run(l: &Limits, reads: &[Read]) -> Vec<u64> {
        let t0 = Instant::now();
        let mut d = ReadDeadline::after(t0, l.command_timeout_ms);
        reads
            .iter()
            .map(|&(ms, n, phase, replied)| {
                let now = t0 + Duration::from_millis(ms);
                d.after_read(now, l, n, phase, replied);
                d.remaining_ms(now)
            })
            .collect()
    }

    const CMD: (bool, bool) = (false, false);
    const DATA: (bool, bool) = (true, true);

    #[test]
    fn command_bytes_without_a_reply_do_not_extend_it() {
        let l = limits(5_000, 60_000, 500);
        // One byte a second, no line end: the deadline stays where the greeting put it.
        let got =
            run(&l, &[(1_000, 0, CMD, false), (2_000, 0, CMD, false), (4_900, 0, CMD, false)]);
        assert_eq!(got, [4_000, 3_000, 100]);
        // A reply (a complete command) starts a new one.
        assert_eq!(run(&l, &[(4_000, 6, CMD, true), (8_000, 0, CMD, false)]), [5_000, 1_000]);
    }

    #[test]
    fn content_credit_follows_the_rate_and_is_capped() {
        let l = limits(5_000, 10_000, 500);
        let cases: &[(&[Read], &[u64])] = &[
            // DATA accepted: content starts with the whole credit.
            (&[(1_000, 6, (false, true), true)], &[10_000]),
            // 1 byte/s earns 2 ms a second: the credit drains by 998 ms a second.
            (
                &[(0, 6, (false, true), true), (1_000, 1, DATA, false), (2_000, 1, DATA, false)],
                &[10_000, 9_002, 8_004],
            ),
            // Fast content never earns more than the cap.
            (&[(0, 6, (false, true), true), (1_000, 1 << 20, DATA, false)], &[10_000, 10_000]),
            // Exactly the rate: the credit holds.
            (&[(0, 6, (false, true), true), (1_000, 500, DATA, false)], &[10_000, 10_000]),
            // End of content: the next command's deadline.
            (&[(0, 6, (false, true), true), (1_000, 3, (true, false), false)], &[10_000, 5_000]),
        ];
        for (reads, want) in cases {
            assert_eq!(run(&l, reads), *want, "{reads:?}");
        }
    }

    #[test]
    fn rate_zero_is_an_idle_timer() {
        let l = limits(5_000, 10_000, 0);
        let got = run(&l, &[(0, 6, (false, true), true), (9_000, 1, DATA, false)]);
        assert_eq!(got, [10_000, 10_000]);
    }

    #[test]
    fn a_trickle_is_cut_within_about_the_timeout() {
        // 1 byte/s against 500 B/s and 10 s: cut after 10 s * 500/499 ≈ 10.02 s.
        let l = limits(5_000, 10_000, 500);
        let t0 = Instant::now();
        let mut d = ReadDeadline::after(t0, 5_000);
        d.after_read(t0, &l, 6, (false, true), true);
        let mut s = 0;
        while d.remaining_ms(t0 + Duration::from_secs(s)) > 0 {
            s += 1;
            d.after_read(t0 + Duration::from_secs(s), &l, 1, DATA, false);
            assert!(s < 100, "never cut");
        }
        assert_eq!(s, 11);
    }
}
