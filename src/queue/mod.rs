//! The queue: which message is delivered when.
//!
//! Layer 0 piece: `schedule` (the scheduler as a pure state machine fed `now`).
//! Layer 2: `runner` (the queue-runner thread) and `state` (the delivery-state files
//! beside the spool, for `queue list`).

pub mod listing;
pub mod runner;
pub mod schedule;
pub mod state;
