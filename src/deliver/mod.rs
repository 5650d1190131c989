//! Delivery: the pure decisions (next hop, bounce text) and the delivery services.
//!
//! Layer 0 pieces: `route` (where a recipient goes next), `bounce` (RFC 3464 reports),
//! `dest` (destination queues and connection limits of outbound delivery) and `outcome`
//! (what the remote replies mean per recipient).
//! Layer 2: `task` (what crosses between the delivery threads), `resolve` (the DNS thread
//! pool turning a route into connection targets), `outbound` (a `net::Service` driving
//! `smtp::client::ClientSession`s on the shared I/O core), `local_worker` (Drop folder
//! writes on their own thread).

pub mod bounce;
pub mod dest;
pub mod local_worker;
pub mod outbound;
pub mod outcome;
pub mod resolve;
pub mod route;
pub mod task;
