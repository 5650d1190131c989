//! The durable queue in `Queue/`: mmap'd segment files, group commit, recovery.
pub mod format;
