//! An event loop's side of the protocol log: lines are formatted into one buffer per site
//! and handed to the `protocol-log` thread once per pass ([`LogSink::flush`]) with
//! `try_send` on a bounded channel. Never blocks: when the channel is full (the disk or
//! the thread fell behind) the pass's lines are dropped and counted
//! (`mailroot_protocol_log_dropped_total{site}`), and a warning is logged at most once per
//! [`DROP_WARN_INTERVAL_MS`] for the whole relay.
//!
//! Memory: buffers come back from the log thread on a second channel and are reused, so
//! the steady state allocates nothing per pass; a dropped batch's buffer is kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::format::{Record, write_line};
use crate::eventlog::EventLog;
use crate::eventlog::event::Event;
use crate::stats::{Counter, CounterBlock};

/// At most one "lines dropped" warning per this many ms (all workers together).
pub const DROP_WARN_INTERVAL_MS: u64 = 10_000;

/// The lines of one site from one event-loop pass.
#[derive(Debug)]
pub struct LogBatch {
    /// Site index (`config.sites`).
    pub site: usize,
    /// Whole lines, each ending in CRLF.
    pub lines: Vec<u8>,
    /// How many lines.
    pub count: u64,
}

/// Shared by every sink: when the last drop warning was logged, and drops since then.
#[derive(Debug, Default)]
pub struct DropWarn {
    /// Wall clock (ms) of the last warning; 0 = never.
    last_ms: AtomicU64,
    /// Lines dropped since the last warning.
    since: AtomicU64,
    /// Where each warning is also reported as a `log.protocol_dropped` event (`None` in
    /// unit tests without an event log).
    events: Option<EventLog>,
}

impl DropWarn {
    /// A drop warning that also reports to `events`.
    pub fn with_events(events: EventLog) -> Self {
        DropWarn { events: Some(events), ..DropWarn::default() }
    }
}

/// What every sink of one relay shares (cloned into each worker).
#[derive(Clone, Debug)]
pub struct SinkParts {
    /// Batches to the log thread (bounded).
    pub(super) tx: Sender<LogBatch>,
    /// Emptied buffers back from the log thread.
    pub(super) free: Receiver<Vec<u8>>,
    /// Sites that log (index = site); set by a configuration reload
    /// (`ProtoLogControl::reconfigure`), read once per new session.
    pub(super) enabled: Arc<[AtomicBool]>,
    /// The relay-wide drop warning.
    pub(super) warn: Arc<DropWarn>,
}

/// One flag per site, as `enabled` says.
#[must_use]
pub fn flags(enabled: &[bool]) -> Arc<[AtomicBool]> {
    enabled.iter().map(|&e| AtomicBool::new(e)).collect()
}

/// One site's buffer in a sink.
#[derive(Debug, Default)]
struct SiteBuf {
    /// Lines formatted in this pass.
    lines: Vec<u8>,
    /// How many.
    count: u64,
}

/// One event loop's protocol-log buffers (see the module docs).
#[derive(Debug)]
pub struct LogSink {
    /// The shared parts.
    parts: SinkParts,
    /// Per site (index = site).
    bufs: Vec<SiteBuf>,
    /// stats: the worker's counter block per site, for the drop counter.
    stats: Vec<Arc<CounterBlock>>,
}

impl LogSink {
    /// A sink whose drops are counted in `stats` (the worker's block per site).
    #[must_use]
    pub fn new(parts: SinkParts, stats: Vec<Arc<CounterBlock>>) -> LogSink {
        let bufs = parts.enabled.iter().map(|_| SiteBuf::default()).collect();
        LogSink { parts, bufs, stats }
    }

    /// Site `site` writes a protocol log.
    #[must_use]
    pub fn enabled(&self, site: usize) -> bool {
        self.parts.enabled.get(site).is_some_and(|e| e.load(Ordering::Relaxed))
    }

    /// Format `r` into site `site`'s buffer (ignored if the site does not log).
    pub fn write(&mut self, site: usize, r: &Record<'_>) {
        if !self.enabled(site) {
            return;
        }
        let Some(b) = self.bufs.get_mut(site) else { return };
        if b.lines.capacity() == 0
            && let Ok(v) = self.parts.free.try_recv()
        {
            b.lines = v;
        }
        write_line(r, &mut b.lines);
        b.count += 1;
    }

    /// Hand this pass's lines to the log thread (never blocks). `now_ms`: the wall clock,
    /// for the drop warning's rate limit.
    pub fn flush(&mut self, now_ms: u64) {
        for (site, b) in self.bufs.iter_mut().enumerate() {
            if b.count == 0 {
                continue;
            }
            let batch = LogBatch { site, lines: std::mem::take(&mut b.lines), count: b.count };
            b.count = 0;
            let back = match self.parts.tx.try_send(batch) {
                Ok(()) => continue,
                Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => back,
            };
            // stats: the lines are lost, never waited for.
            if let Some(s) = self.stats.get(site) {
                s.add(Counter::ProtocolLogDropped, back.count);
            }
            b.lines = back.lines;
            b.lines.clear();
            warn_dropped(&self.parts.warn, back.count, now_ms);
        }
    }
}

/// Count `n` dropped lines and warn if no warning was logged in the last interval.
fn warn_dropped(w: &DropWarn, n: u64, now_ms: u64) {
    w.since.fetch_add(n, Ordering::Relaxed);
    let last = w.last_ms.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last) < DROP_WARN_INTERVAL_MS && last != 0 {
        return;
    }
    if w.last_ms.compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let since = w.since.swap(0, Ordering::Relaxed);
        log::warn!(
            "protocol log fell behind: {since} lines dropped (mailroot_protocol_log_dropped_total); \
             the SMTP sessions did not wait"
        );
        if let Some(events) = &w.events {
            // `emit` is a `try_send`: the worker never waits for the event log either.
            events.emit(Event::ProtocolLogDropped { site: None, lines: since });
        }
    }
}

impl Drop for LogSink {
    /// The worker's last pass may not reach `flush`: hand over what is left.
    fn drop(&mut self) {
        self.flush(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Registry;

    fn record() -> Record<'static> {
        Record {
            unix_ms: 0,
            client: "127.0.0.1".parse().unwrap(),
            username: None,
            site: "s",
            computer: "c",
            server: "127.0.0.1:25".parse().unwrap(),
            method: "NOOP",
            query: b"",
            status: 250,
            sc_bytes: 1,
            cs_bytes: Some(6),
            time_taken_ms: 0,
        }
    }

    #[test]
    fn full_channel_drops_and_counts_without_blocking() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (_free_tx, free) = crossbeam_channel::bounded(4);
        let (events, events_thread) = crate::eventlog::spawn(crate::eventlog::EventLogOptions {
            path: None,
            max_size_bytes: 0,
            keep: 0,
        })
        .unwrap();
        let warn = Arc::new(DropWarn::with_events(events.clone()));
        let parts = SinkParts { tx, free, enabled: flags(&[true, false]), warn };
        let block = Registry::global().site_block("protolog-sink-test");
        let mut sink = LogSink::new(parts, vec![Arc::clone(&block), Arc::clone(&block)]);
        sink.write(0, &record());
        sink.write(0, &record());
        sink.write(1, &record()); // site 1 does not log
        sink.flush(1_000);
        let b = rx.try_recv().unwrap();
        assert_eq!((b.site, b.count), (0, 2));
        assert_eq!(b.lines.iter().filter(|&&c| c == b'\n').count(), 2);
        // Fill the channel, then one more pass: dropped and counted, not waited for.
        sink.write(0, &record());
        sink.flush(2_000);
        for _ in 0..3 {
            sink.write(0, &record());
        }
        sink.flush(3_000);
        assert_eq!(block.value(Counter::ProtocolLogDropped), 3);
        assert_eq!(rx.try_recv().unwrap().count, 1);
        assert!(rx.try_recv().is_err());
        // The warning's rate limit: one per interval.
        assert_eq!(sink.parts.warn.last_ms.load(Ordering::Relaxed), 3_000);
        sink.write(0, &record());
        sink.write(0, &record());
        sink.flush(4_000); // fits (the channel was drained)
        sink.write(0, &record());
        sink.flush(5_000); // dropped, no new warning yet
        assert_eq!(sink.parts.warn.last_ms.load(Ordering::Relaxed), 3_000);
        assert_eq!(sink.parts.warn.since.load(Ordering::Relaxed), 1);
        assert_eq!(block.value(Counter::ProtocolLogDropped), 4);
        // The one warning so far was also a `log.protocol_dropped` event with its count.
        drop(sink);
        events_thread.stop_and_join();
        let recent = events.recent(10);
        assert_eq!(recent.len(), 1, "{recent:?}");
        assert!(recent[0].contains(r#""event":"log.protocol_dropped""#), "{}", recent[0]);
        assert!(recent[0].contains(r#""lines":3"#), "{}", recent[0]);
    }
}
