//! Inbound SMTP: drives `smtp::server::ServerSession` on `net`, streams DATA into the spool.
//!
//! `inbound` is the `net::Service` (one per worker); the pure relay and access decisions
//! it asks live in `crate::policy`; `tls` holds the sites' certificates (STARTTLS,
//! implicit TLS, SIGHUP reload).
pub mod inbound;
pub mod tls;

#[cfg(test)]
mod tests;
