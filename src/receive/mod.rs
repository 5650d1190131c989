//! Inbound SMTP: drives `smtp::server::ServerSession` on `net`, streams DATA into the spool.
//!
//! `inbound` is the `net::Service` (one per worker); the pure relay and access decisions
//! it asks live in `crate::policy` (`policy` here is a compatibility re-export).
pub mod inbound;
#[doc(hidden)]
pub mod policy;

#[cfg(test)]
mod tests;
