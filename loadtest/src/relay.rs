//! `relay` mode: source -> target server -> in-process sink, end to end.
//!
//! It starts a sink on a loopback port, runs `source` against `--server` (which must relay
//! everything to that port; for mailroot: `[relay] smart_host = "[127.0.0.1]:PORT"`), then
//! waits until the sink has seen every accepted message (bounded by `--wait-seconds`).
//! Messages are matched by their `X-Loadtest-Id: <run>.<seq>` header: the source notes when
//! it wrote each message's end-of-data, the sink when it read it. The report adds the
//! end-to-end rate (accepted messages over the time from the start until the last one
//! reached the sink) and the spool-to-sink latency percentiles (sink arrival minus source
//! end-of-data).
//!
//! SECURITY: both the server and the sink are loopback only (see `target.rs`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sink::{self, SinkOptions, SinkReport};
use crate::source::{self, SourceOptions, SourceReport};
use crate::stats::{Latency, json_f64, per_second};

/// How often the main thread checks whether every message arrived.
const ARRIVAL_POLL: Duration = Duration::from_millis(20);

/// Send and arrival times per message number, shared by the source and the sink.
pub(crate) struct Tracker {
    /// Run nonce: messages with another run in their header are not ours.
    run: u64,
    /// Time origin of the `*_ns` values.
    origin: Instant,
    /// Per message: nanoseconds since `origin` + 1 when its end-of-data was written (0: not).
    sent_ns: Vec<AtomicU64>,
    /// Per message: nanoseconds since `origin` + 1 when the sink read it (0: not yet).
    arrived_ns: Vec<AtomicU64>,
    /// Distinct messages of this run that reached the sink.
    matched: AtomicU64,
    /// Arrivals of a message that had already arrived.
    duplicates: AtomicU64,
    /// Arrivals without a valid id of this run.
    foreign: AtomicU64,
}

impl Tracker {
    /// A tracker for `messages` message numbers of run `run`.
    pub(crate) fn new(run: u64, messages: u64) -> Self {
        let n = usize::try_from(messages).unwrap_or(usize::MAX);
        let zeros = || (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Tracker {
            run,
            origin: Instant::now(),
            sent_ns: zeros(),
            arrived_ns: zeros(),
            matched: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
        }
    }

    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
            + 1
    }

    /// The source wrote message `seq`'s end-of-data at `at`.
    pub(crate) fn sent(&self, seq: u64, at: Instant) {
        if let Some(slot) = usize::try_from(seq).ok().and_then(|i| self.sent_ns.get(i)) {
            slot.store(self.stamp(at), Ordering::Relaxed);
        }
    }

    /// The sink read a message with id `(run, seq)` at `at`.
    pub(crate) fn arrived(&self, run: u64, seq: u64, at: Instant) {
        let slot = usize::try_from(seq).ok().and_then(|i| self.arrived_ns.get(i));
        match slot {
            Some(slot) if run == self.run => {
                if slot
                    .compare_exchange(0, self.stamp(at), Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    self.matched.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                self.foreign.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Distinct messages of this run seen by the sink.
    pub(crate) fn matched(&self) -> u64 {
        self.matched.load(Ordering::Relaxed)
    }

    /// Spool-to-sink latencies of every matched message, and the latest arrival (seconds
    /// since `origin`).
    fn latencies(&self) -> (Latency, f64) {
        let mut l = Latency::new();
        let mut last = 0u64;
        for (s, a) in self.sent_ns.iter().zip(&self.arrived_ns) {
            let (s, a) = (s.load(Ordering::Relaxed), a.load(Ordering::Relaxed));
            if a == 0 {
                continue;
            }
            last = last.max(a - 1);
            if s != 0 {
                l.record(Duration::from_nanos(a.saturating_sub(s)));
            }
        }
        (l, last as f64 / 1e9)
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("run", &self.run).field("matched", &self.matched).finish()
    }
}

/// What `relay` was asked to do.
pub(crate) struct RelayOptions {
    /// The source side (its `tracker` is filled in here).
    pub(crate) source: SourceOptions,
    /// The sink side (its `tracker` is filled in here).
    pub(crate) sink: SinkOptions,
    /// How long to wait after the source finished for the last messages.
    pub(crate) wait: Duration,
}

/// The result of a relay run.
pub(crate) struct RelayReport {
    /// The source's own report.
    source: SourceReport,
    /// The sink's counts.
    sink: SinkReport,
    /// Messages the server accepted.
    accepted: u64,
    /// Distinct messages that reached the sink.
    matched: u64,
    /// Messages that reached the sink twice or more (extra copies).
    duplicates: u64,
    /// Messages at the sink without an id of this run.
    foreign: u64,
    /// Seconds from the start until the last message reached the sink.
    e2e_s: f64,
    /// True if `--wait-seconds` ran out before every accepted message arrived.
    timed_out: bool,
    /// Spool-to-sink latency.
    latency: Latency,
}

/// Run the relay test.
pub(crate) fn run(mut o: RelayOptions) -> std::io::Result<RelayReport> {
    let tracker = Arc::new(Tracker::new(o.source.run, o.source.messages));
    o.sink.tracker = Some(Arc::clone(&tracker));
    o.source.tracker = Some(Arc::clone(&tracker));
    let sink = sink::start(&o.sink)?;
    let source = source::run(o.source);
    let accepted = source.accepted();
    let deadline = Instant::now() + o.wait;
    let timed_out = loop {
        if tracker.matched() >= accepted {
            break false;
        }
        if Instant::now() >= deadline {
            break true;
        }
        std::thread::sleep(ARRIVAL_POLL);
    };
    let (latency, last_s) = tracker.latencies();
    Ok(RelayReport {
        sink: sink.report(if timed_out { "wait-seconds" } else { "all arrived" }),
        source,
        accepted,
        matched: tracker.matched(),
        duplicates: tracker.duplicates.load(Ordering::Relaxed),
        foreign: tracker.foreign.load(Ordering::Relaxed),
        e2e_s: last_s,
        timed_out,
        latency,
    })
}

impl RelayReport {
    /// Exit status: 0 if every accepted message arrived (and some were accepted), else 1.
    pub(crate) fn exit_code(&self) -> i32 {
        if self.accepted > 0 && !self.timed_out { 0 } else { 1 }
    }

    /// End-to-end messages per second.
    fn e2e_rate(&self) -> f64 {
        per_second(self.matched, self.e2e_s)
    }

    /// Human-readable report: the source's, the sink's, then the end-to-end lines.
    pub(crate) fn to_text(&self) -> String {
        let mut t = self.source.to_text();
        t.push_str(&self.sink.to_text());
        let _ = writeln!(
            t,
            "end to end: {} of {} accepted messages reached the sink{} ({} duplicate, {} foreign); \
             last after {:.3} s: {:.1} msgs/s",
            self.matched,
            self.accepted,
            if self.timed_out { " before --wait-seconds ran out" } else { "" },
            self.duplicates,
            self.foreign,
            self.e2e_s,
            self.e2e_rate()
        );
        if self.timed_out && self.matched == 0 {
            let _ = writeln!(
                t,
                "nothing arrived: does the server relay to the sink ({})? mailroot: [relay] \
                 smart_host = \"[127.0.0.1]:PORT\"; a server that failed to reach the sink \
                 earlier may be waiting for its retry schedule",
                self.sink.listen()
            );
        }
        let p = self.latency.percentiles_us().map(|us| us as f64 / 1000.0);
        let _ = writeln!(
            t,
            "spool-to-sink ms (source end-of-data -> sink end-of-data): p50 {:.3} p90 {:.3} \
             p99 {:.3} p99.9 {:.3} max {:.3}",
            p[0], p[1], p[2], p[3], p[4]
        );
        t
    }

    /// One JSON object on one line.
    pub(crate) fn to_json(&self) -> String {
        let [p50, p90, p99, p999, max] = self.latency.percentiles_us();
        format!(
            "{{\"mode\":\"relay\",\"accepted\":{},\"arrived\":{},\"duplicates\":{},\"foreign\":{},\
             \"timed_out\":{},\"e2e_s\":{},\"e2e_msgs_per_s\":{},\"spool_to_sink_us\":{{\"count\":{},\
             \"p50\":{p50},\"p90\":{p90},\"p99\":{p99},\"p99_9\":{p999},\"max\":{max}}},\
             \"source\":{},\"sink\":{}}}",
            self.accepted,
            self.matched,
            self.duplicates,
            self.foreign,
            self.timed_out,
            json_f64(self.e2e_s),
            json_f64(self.e2e_rate()),
            self.latency.count(),
            self.source.to_json(),
            self.sink.to_json()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_matches_and_measures() {
        let t = Tracker::new(9, 3);
        let t0 = t.origin;
        t.sent(0, t0 + Duration::from_millis(1));
        t.sent(1, t0 + Duration::from_millis(2));
        t.arrived(9, 0, t0 + Duration::from_millis(11));
        t.arrived(9, 1, t0 + Duration::from_millis(32));
        t.arrived(9, 1, t0 + Duration::from_millis(40)); // duplicate
        t.arrived(8, 2, t0 + Duration::from_millis(40)); // other run
        t.arrived(9, 99, t0 + Duration::from_millis(40)); // out of range
        assert_eq!(t.matched(), 2);
        assert_eq!(t.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(t.foreign.load(Ordering::Relaxed), 2);
        let (l, last) = t.latencies();
        assert_eq!(l.count(), 2);
        let [p50, _, _, _, max] = l.percentiles_us();
        assert!((9_990..=10_010).contains(&p50), "{p50}");
        assert!((29_900..=30_100).contains(&max), "{max}");
        assert!((last - 0.032).abs() < 1e-6, "{last}");
    }
}
