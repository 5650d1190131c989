//! The queue: which message is delivered when.
//!
//! Layer 0 piece: `schedule` (the scheduler as a pure state machine fed `now`).

pub mod schedule;
