//! The queue: which message is delivered when, and what happens when it cannot be.
//!
//! Layer 0 pieces: `schedule` (the scheduler as a pure state machine fed `now`), `park`
//! (the messages the runner keeps out of memory beyond `[delivery] active_limit`).
//! Layer 2: `runner` (the queue-runner thread: arrivals, scheduler, cross-offs, channels),
//! `bounce` (the bounce service the runner calls: NDRs/DSNs into the spool, Badmail),
//! `inbox` (the message types of the runner's channels, which senders may import).
//! The delivery-state files and the `queue list` view are mechanisms over `Queue/`:
//! `spool::state` and `spool::listing`.

pub mod bounce;
pub mod inbox;
pub mod park;
pub mod runner;
pub mod schedule;
