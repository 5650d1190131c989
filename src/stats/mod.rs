//! Performance counters: per-thread blocks of atomics, merged on read (STYLE 25).
//!
//! WHAT: every thread that counts owns an `Arc<CounterBlock>` (one per site for the inbound
//! workers) and is the only writer of it: `fetch_add(Relaxed)` on an uncontended cache line,
//! no shared write on the hot path. The blocks are registered once, at thread start, in the
//! global [`Registry`] (one `parking_lot::Mutex<Vec<..>>`, touched only then and on read).
//! A read ([`Registry::snapshot`]) sums the blocks and merges the per-thread hdrhistograms
//! into a [`Snapshot`], which the pure renderers in `render.rs` turn into Prometheus text or
//! JSON. Names, units and docs live only in `names.rs`.
//!
//! Gauges are counters too: a gauge written by one thread (queue lengths: the queue runner)
//! is `set`; a gauge moved by many (connections current) is `add`/`sub` on the mover's own
//! block, and the wrapping sum over blocks is the level.
//!
//! TRUST: nothing from the network reaches this module.

pub mod names;
pub mod render;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

pub use names::{CATALOGUE, COUNTERS, Counter, HISTOGRAMS, Hist};
pub use render::{Snapshot, render_json, render_prometheus};

/// Significant digits kept by every histogram (0.1 % error).
const HIST_SIGFIG: u8 = 3;

/// A new, empty histogram for `h`.
fn new_histogram(h: &names::HistDef) -> Histogram<u64> {
    // Bounds are constants (1 ≤ max, sigfig 3): creation cannot fail.
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, h.max.max(2), HIST_SIGFIG).unwrap()
}

/// The counters and histograms of one thread (and site). Invariant: written by its owning
/// thread only; read by anyone. Aligned so two blocks never share a cache line.
#[repr(align(128))]
pub struct CounterBlock {
    /// One value per [`Counter`], indexed by `Counter as usize`.
    values: [AtomicU64; COUNTERS],
    /// One histogram per [`Hist`]. The lock is taken by the owner per record and by a reader
    /// per snapshot: uncontended except while the admin endpoint reads.
    hists: [Mutex<Histogram<u64>>; HISTOGRAMS.len()],
}

impl std::fmt::Debug for CounterBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterBlock").finish_non_exhaustive()
    }
}

impl Default for CounterBlock {
    fn default() -> Self {
        CounterBlock {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            hists: std::array::from_fn(|i| Mutex::new(new_histogram(&HISTOGRAMS[i]))),
        }
    }
}

impl CounterBlock {
    /// Add `n` to counter `c`.
    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        self.values[c as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Add one to counter `c`.
    #[inline]
    pub fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Take one from gauge `c` (wrapping: the sum over blocks is what counts).
    #[inline]
    pub fn dec(&self, c: Counter) {
        self.values[c as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// Set gauge `c` (only for a gauge one thread owns entirely).
    #[inline]
    pub fn set(&self, c: Counter, v: u64) {
        self.values[c as usize].store(v, Ordering::Relaxed);
    }

    /// Record `v` (in the histogram's recorded unit) into `h`; clamped to its range.
    #[inline]
    pub fn record(&self, h: Hist, v: u64) {
        let def = h.def();
        self.hists[h as usize].lock().saturating_record(v.clamp(1, def.max));
    }

    /// The current value of `c` in this block.
    pub fn value(&self, c: Counter) -> u64 {
        self.values[c as usize].load(Ordering::Relaxed)
    }
}

/// A value read from elsewhere at snapshot time (e.g. the resolver's own query count).
type Source = Box<dyn Fn() -> u64 + Send + Sync>;

/// Every registered block. Locked only at thread start and on read.
pub struct Registry {
    /// (site name for per-site blocks, block), in registration order.
    blocks: Mutex<Vec<(Option<String>, Arc<CounterBlock>)>>,
    /// Counters whose value lives in another module's atomic.
    sources: Mutex<Vec<(Counter, Source)>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("blocks", &self.blocks.lock().len()).finish()
    }
}

/// The process-wide registry.
static GLOBAL: Registry = Registry::new();

impl Registry {
    /// An empty registry.
    pub const fn new() -> Registry {
        Registry { blocks: Mutex::new(Vec::new()), sources: Mutex::new(Vec::new()) }
    }

    /// The process-wide registry the server's threads register in.
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    /// A new block for a thread that counts site-independent things.
    pub fn block(&self) -> Arc<CounterBlock> {
        let b = Arc::new(CounterBlock::default());
        self.blocks.lock().push((None, Arc::clone(&b)));
        b
    }

    /// A new block for the per-site counters of site `site`.
    pub fn site_block(&self, site: &str) -> Arc<CounterBlock> {
        let b = Arc::new(CounterBlock::default());
        self.blocks.lock().push((Some(site.to_string()), Arc::clone(&b)));
        b
    }

    /// Read counter `c` from `f` at every snapshot (added to the blocks' sum).
    pub fn add_source(&self, c: Counter, f: impl Fn() -> u64 + Send + Sync + 'static) {
        self.sources.lock().push((c, Box::new(f)));
    }

    /// Sum every block and merge every histogram.
    pub fn snapshot(&self) -> Snapshot {
        let blocks: Vec<_> = self.blocks.lock().clone();
        let mut snap = Snapshot::empty();
        for (site, b) in &blocks {
            let vals: Vec<u64> =
                (0..COUNTERS).map(|i| b.values[i].load(Ordering::Relaxed)).collect();
            if let Some(site) = site {
                let k = match snap.sites.iter().position(|s| s == site) {
                    Some(k) => k,
                    None => {
                        snap.sites.push(site.clone());
                        snap.per_site.push(vec![0; COUNTERS]);
                        snap.sites.len() - 1
                    }
                };
                add_into(&mut snap.per_site[k], &vals);
            }
            add_into(&mut snap.totals, &vals);
            for (i, h) in b.hists.iter().enumerate() {
                // Same bounds everywhere: `add` cannot fail.
                let _ = snap.hists[i].add(&*h.lock());
            }
        }
        for (c, f) in self.sources.lock().iter() {
            let v = f();
            snap.totals[*c as usize] = snap.totals[*c as usize].wrapping_add(v);
        }
        snap
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// `acc[i] += v[i]` (wrapping: gauges moved by several threads may be "negative" per block).
fn add_into(acc: &mut [u64], v: &[u64]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a = a.wrapping_add(*x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_merge_on_read() {
        let r = Registry::new();
        let w0 = r.site_block("default");
        let w1 = r.site_block("default");
        let other = r.site_block("second");
        let runner = r.block();
        w0.add(Counter::MessagesReceived, 3);
        w1.add(Counter::MessagesReceived, 4);
        other.inc(Counter::MessagesReceived);
        // A connection accepted on one worker's block and counted down there.
        w0.inc(Counter::InboundConnections);
        w1.inc(Counter::InboundConnections);
        w1.dec(Counter::InboundConnections);
        w0.dec(Counter::InboundConnections);
        w0.inc(Counter::InboundConnections);
        runner.set(Counter::RetryQueueLength, 9);
        runner.set(Counter::RetryQueueLength, 5);
        r.add_source(Counter::DnsQueries, || 11);
        w0.record(Hist::CommitBatch, 10);
        w1.record(Hist::CommitBatch, 30);
        runner.record(Hist::CommitBatch, 20);
        let s = r.snapshot();
        assert_eq!(s.sites, vec!["default".to_string(), "second".to_string()]);
        let cases: &[(Counter, u64)] = &[
            (Counter::MessagesReceived, 8),
            (Counter::InboundConnections, 1),
            (Counter::RetryQueueLength, 5),
            (Counter::DnsQueries, 11),
            (Counter::NdrsGenerated, 0),
        ];
        for (c, want) in cases {
            assert_eq!(s.total(*c), *want, "{c:?}");
        }
        assert_eq!(s.per_site[0][Counter::MessagesReceived as usize], 7);
        assert_eq!(s.per_site[1][Counter::MessagesReceived as usize], 1);
        let h = &s.hists[Hist::CommitBatch as usize];
        assert_eq!((h.len(), h.min(), h.max()), (3, 10, 30));
        assert_eq!(h.value_at_quantile(0.5), 20);
    }

    #[test]
    fn record_clamps() {
        let b = CounterBlock::default();
        b.record(Hist::CommitBatch, 0);
        b.record(Hist::CommitBatch, u64::MAX);
        let h = b.hists[Hist::CommitBatch as usize].lock();
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
    }
}
