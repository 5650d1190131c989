//! Delivery: the pure decisions (next hop, bounce text) and the delivery services.
//!
//! Layer 0 pieces: `route` (where a recipient goes next) and `bounce` (RFC 3464 reports).
//! Layer 2: `task` (what crosses between the delivery threads), `resolve` (the DNS thread
//! pool turning a route into connection targets), `outbound` (the mio event loop driving
//! `smtp::client::ClientSession`s), `local_worker` (Drop folder writes on their own thread).

pub mod bounce;
pub mod local_worker;
pub mod outbound;
pub mod resolve;
pub mod route;
pub mod task;
