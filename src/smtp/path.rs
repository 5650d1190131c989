//! smtp::path
