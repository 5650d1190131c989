//! Inbound SMTP: drives `smtp::server::ServerSession` on `net`, streams DATA into the spool.
//!
//! `inbound` is the `net::Service` (one per worker); `policy` holds the pure relay and
//! access decisions it asks.
pub mod inbound;
pub mod policy;

#[cfg(test)]
mod tests;
