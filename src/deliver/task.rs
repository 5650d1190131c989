//! Compatibility path (issue 13): the delivery message types moved to `deliver::inbox`
//! (`Task`, `OutboundTask`, `Target`) and `queue::inbox` (`TaskReport`, `RcptOutcome`,
//! beside their receiver). `deliver/outbound.rs` and `deliver/outcome.rs` still name them
//! `super::task::…`; remove this file when they import the inboxes.
//!
//! Layer 0: re-exports only.

pub use super::inbox::{OutboundTask, Target, Task};
pub use crate::queue::inbox::{RcptOutcome, TaskReport};
