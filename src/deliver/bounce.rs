//! Compatibility path (issue 13): NDR/DSN composition moved to `crate::dsn` (pure, layer 0),
//! its spooling and Badmail to the bounce service `queue::bounce`. Kept only because the
//! current `tests/architecture.rs` lists this path; remove with that entry.
//!
//! Layer 0: re-exports only.

pub use crate::dsn::*;
