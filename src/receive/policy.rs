//! Compatibility path (issue 13): the relay and access decisions moved to
//! `crate::policy::access` (and "is this domain local?" to `crate::policy::domain`). Kept
//! only because the current `tests/architecture.rs` lists this path; remove with that entry.
//!
//! Layer 0: re-exports only.

pub use crate::policy::access::*;
