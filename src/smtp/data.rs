//! smtp::data
