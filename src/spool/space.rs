//! Free-space check of the spool's filesystem (`statvfs`), cached for a short while.
//!
//! TRUST: the OS's numbers. This is advisory (used to answer 452 4.3.1 at MAIL before a
//! message is even started); the hard guarantee is that blocks are reserved with `fallocate`
//! before anything is written, so a full disk gives `NoSpace`, never SIGBUS or a torn record.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::FREE_SPACE_CACHE_MS;
use super::map;

/// Marker for "never measured".
const NEVER: u64 = u64::MAX;

/// Cached `available >= min_free_bytes`.
pub(crate) struct FreeSpace {
    /// The directory measured.
    dir: PathBuf,
    /// Threshold in bytes (a reload may change it: [`FreeSpace::set_min_free_bytes`]).
    min_free_bytes: AtomicU64,
    /// Time origin for `checked_at_ms`.
    origin: Instant,
    /// Milliseconds since `origin` of the last reading, or `NEVER`.
    checked_at_ms: AtomicU64,
    /// Result of the last reading.
    ok: AtomicBool,
}

impl FreeSpace {
    /// A cache that measures `dir` against `min_free_bytes`.
    pub(crate) fn new(dir: PathBuf, min_free_bytes: u64) -> FreeSpace {
        FreeSpace {
            dir,
            min_free_bytes: AtomicU64::new(min_free_bytes),
            origin: Instant::now(),
            checked_at_ms: AtomicU64::new(NEVER),
            ok: AtomicBool::new(false),
        }
    }

    /// A new threshold; the next check (not the cached answer) uses it.
    pub(crate) fn set_min_free_bytes(&self, bytes: u64) {
        self.min_free_bytes.store(bytes, Ordering::Relaxed);
        self.checked_at_ms.store(NEVER, Ordering::Relaxed);
    }

    /// The threshold in bytes.
    pub(crate) fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes.load(Ordering::Relaxed)
    }

    /// The cached answer, refreshed when older than [`FREE_SPACE_CACHE_MS`].
    pub(crate) fn has_free_space(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NEVER - 1);
        let at = self.checked_at_ms.load(Ordering::Relaxed);
        if at != NEVER && now.saturating_sub(at) < FREE_SPACE_CACHE_MS {
            return self.ok.load(Ordering::Relaxed);
        }
        let ok = match map::available_bytes(&self.dir) {
            Ok(avail) => avail >= self.min_free_bytes.load(Ordering::Relaxed),
            Err(e) => {
                log::warn!("spool: statvfs {}: {e}", self.dir.display());
                false
            }
        };
        self.ok.store(ok, Ordering::Relaxed);
        self.checked_at_ms.store(now, Ordering::Relaxed);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FreeSpace::new(dir.path().into(), 0).has_free_space());
        assert!(!FreeSpace::new(dir.path().into(), u64::MAX).has_free_space());
        assert!(!FreeSpace::new("/nonexistent/x".into(), 0).has_free_space());
    }
}
