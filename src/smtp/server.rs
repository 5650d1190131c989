//! smtp::server
