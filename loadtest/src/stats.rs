//! Latency histograms, error tables and report output (text and JSON).
//!
//! Each session thread owns its own `Stats` (nothing shared on the hot path); the main thread
//! merges them at the end. Latencies are recorded in microseconds in hdrhistogram with 3
//! significant digits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency the histograms track, in microseconds (one hour); larger values saturate.
const MAX_TRACKED_LATENCY_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histograms.
const HISTOGRAM_SIGFIG: u8 = 3;

/// The measured stages of a session, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// TCP connect until the 220 greeting has arrived (with `--implicit-tls`, the
    /// handshake before the greeting included).
    Connect,
    /// The TLS handshake alone: ClientHello sent until the handshake finished (STARTTLS
    /// or implicit TLS only; with implicit TLS it includes the wait for the server to
    /// accept the connection, which STARTTLS has in `Connect`).
    Handshake,
    /// EHLO sent until its final 250 line has arrived.
    Ehlo,
    /// The end-of-data `.` sent until its 250 arrived (the server's commit latency).
    EndOfData,
    /// MAIL sent until the end-of-data 250 arrived (one whole accepted transaction).
    Transaction,
    /// Open loop only: the message's due time until its end-of-data 250 arrived (includes
    /// waiting for a free session, so queueing shows).
    Scheduled,
}

impl Stage {
    /// Every stage, in report order.
    pub(crate) const ALL: [Stage; 6] = [
        Stage::Connect,
        Stage::Handshake,
        Stage::Ehlo,
        Stage::EndOfData,
        Stage::Transaction,
        Stage::Scheduled,
    ];

    /// Name used in the text and JSON reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Handshake => "tls",
            Stage::Ehlo => "ehlo",
            Stage::EndOfData => "eod",
            Stage::Transaction => "txn",
            Stage::Scheduled => "sched",
        }
    }
}

/// One latency histogram in microseconds.
pub(crate) struct Latency(Histogram<u64>);

impl Latency {
    /// An empty histogram with the crate-wide bounds.
    pub(crate) fn new() -> Self {
        // The bounds are constants that satisfy hdrhistogram's preconditions (low >= 1,
        // high >= 2 * low, sigfig <= 5), so this cannot fail.
        #[allow(clippy::expect_used)]
        let h = Histogram::new_with_bounds(1, MAX_TRACKED_LATENCY_US, HISTOGRAM_SIGFIG)
            .expect("constant histogram bounds are valid");
        Latency(h)
    }

    /// Record one duration (saturating at the tracked maximum, rounded up to >= 1 µs).
    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(us);
    }

    /// Add every sample of `other` to `self`.
    pub(crate) fn merge(&mut self, other: &Latency) {
        // Both have identical bounds, so `add` cannot run out of range.
        let _ = self.0.add(&other.0);
    }

    /// Number of samples.
    pub(crate) fn count(&self) -> u64 {
        self.0.len()
    }

    /// (p50, p90, p99, p99.9, max) in microseconds; all zero when empty.
    pub(crate) fn percentiles_us(&self) -> [u64; 5] {
        if self.0.is_empty() {
            return [0; 5];
        }
        [
            self.0.value_at_quantile(0.5),
            self.0.value_at_quantile(0.9),
            self.0.value_at_quantile(0.99),
            self.0.value_at_quantile(0.999),
            self.0.max(),
        ]
    }
}

/// Everything one session thread (or the merged run) counted.
pub(crate) struct Stats {
    /// Transactions whose end-of-data got a 250.
    pub(crate) accepted: u64,
    /// Transactions that ended any other way (refusal, I/O error, connect failure).
    pub(crate) failed: u64,
    /// Message bytes (content, without the final `.`) of accepted transactions.
    pub(crate) accepted_bytes: u64,
    /// Connections that reached the EHLO 250.
    pub(crate) connections: u64,
    /// Failure counts keyed by "STAGE CODE" ("RCPT 554") or an I/O error key.
    pub(crate) errors: BTreeMap<String, u64>,
    /// True if some EHLO reply lacked PIPELINING while `--pipelining` was asked for.
    pub(crate) pipelining_refused: bool,
    /// TLS handshakes finished (STARTTLS or implicit TLS).
    pub(crate) handshakes: u64,
    /// Of those, resumed sessions (only with `--tls-resume`).
    pub(crate) resumed: u64,
    /// Protocol version and cipher suite of the first handshake ("TLSv1_3 TLS13_...").
    pub(crate) tls: Option<String>,
    /// One histogram per `Stage`, indexed by `Stage as usize`.
    latency: [Latency; 6],
}

impl Stats {
    /// All zero.
    pub(crate) fn new() -> Self {
        Stats {
            accepted: 0,
            failed: 0,
            accepted_bytes: 0,
            connections: 0,
            errors: BTreeMap::new(),
            pipelining_refused: false,
            handshakes: 0,
            resumed: 0,
            tls: None,
            latency: std::array::from_fn(|_| Latency::new()),
        }
    }

    /// Count one error under `key`.
    pub(crate) fn error(&mut self, key: String) {
        *self.errors.entry(key).or_insert(0) += 1;
    }

    /// Record a latency sample for `stage`.
    pub(crate) fn record(&mut self, stage: Stage, d: Duration) {
        self.latency[stage as usize].record(d);
    }

    /// The histogram for `stage`.
    pub(crate) fn latency(&self, stage: Stage) -> &Latency {
        &self.latency[stage as usize]
    }

    /// Fold another thread's counts into this one.
    pub(crate) fn merge(&mut self, other: &Stats) {
        self.accepted += other.accepted;
        self.failed += other.failed;
        self.accepted_bytes += other.accepted_bytes;
        self.connections += other.connections;
        self.pipelining_refused |= other.pipelining_refused;
        self.handshakes += other.handshakes;
        self.resumed += other.resumed;
        if self.tls.is_none() {
            self.tls.clone_from(&other.tls);
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            mine.merge(theirs);
        }
    }
}

/// Escape `s` as the inside of a JSON string (RFC 8259 §7).
pub(crate) fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `{"k":v,...}` for an error table.
pub(crate) fn json_errors(errors: &BTreeMap<String, u64>) -> String {
    let body: Vec<String> =
        errors.iter().map(|(k, v)| format!("\"{}\":{v}", json_escape(k))).collect();
    format!("{{{}}}", body.join(","))
}

/// A float formatted for JSON (finite; NaN/inf become 0).
pub(crate) fn json_f64(x: f64) -> String {
    if x.is_finite() { format!("{x:.3}") } else { "0".to_owned() }
}

/// `x / secs`, or 0 when no time elapsed.
pub(crate) fn per_second(x: u64, secs: f64) -> f64 {
    if secs > 0.0 { x as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let cases = [("a", "a"), ("a\"b", "a\\\"b"), ("x\\y", "x\\\\y"), ("\u{1}", "\\u0001")];
        for (input, want) in cases {
            assert_eq!(json_escape(input), want);
        }
    }

    #[test]
    fn percentiles_and_merge() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for us in 1..=1000 {
            a.record(Duration::from_micros(us));
        }
        b.record(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        let [p50, _, _, _, max] = a.percentiles_us();
        assert!((495..=505).contains(&p50), "{p50}");
        assert!((1_999_000..=2_001_000).contains(&max), "{max}");
        assert_eq!(Latency::new().percentiles_us(), [0; 5]);
    }
}
