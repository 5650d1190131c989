//! smtp::command
