//! Inbound SMTP: drives `smtp::server::ServerSession` on `net`, streams DATA into the spool.
//!
//! `inbound` is the `net::Service` (one per worker); the pure relay and access decisions
//! it asks live in `crate::policy`. `auth` is SMTP AUTH's password check: the
//! `auth-verifier` thread (argon2, off the event loops) and each worker's side of it;
//! `tls` holds the sites' certificates (STARTTLS, implicit TLS, SIGHUP reload);
//! `inbound::protolog` turns each session's transcript into W3C protocol-log lines.
pub mod auth;
pub mod inbound;
mod received;
mod shared;
pub mod tls;

#[cfg(test)]
mod tests;
