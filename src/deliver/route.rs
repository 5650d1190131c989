//! Compatibility path (issue 13): next-hop selection and the loop checks moved to
//! `plan::route` (the pure delivery planner's home). `deliver/outbound.rs` still names
//! them `super::route::…`; remove this file when it imports `crate::plan::route`.
//!
//! Layer 0: re-exports only.

pub use crate::plan::route::*;
