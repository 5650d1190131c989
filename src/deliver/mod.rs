//! Outbound delivery: the pure decisions (next hop, bounce text).
//!
//! Layer 0 pieces: `route` (where a recipient goes next) and `bounce` (RFC 3464 reports).

pub mod bounce;
pub mod route;
