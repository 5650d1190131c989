//! Inbound SMTP: drives `smtp::server::ServerSession` on `net`, streams DATA into the spool.
//!
//! `inbound` is the `net::Service` (one per worker); the pure relay and access decisions
//! it asks live in `crate::policy`.
pub mod auth;
pub mod inbound;

#[cfg(test)]
mod tests;
