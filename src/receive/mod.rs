//! Inbound SMTP: drives `smtp::server::ServerSession` on `net`, streams DATA into the spool.
pub mod policy;
