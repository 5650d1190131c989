//! Policy: the domain questions every service asks, each with one pure answer.
//!
//! * [`domain`]: "is this domain local?", "which `[[domain]]` rule applies?", "which
//!   domain is this recipient in?";
//! * [`access`]: "may this client connect?", "may this client relay to this domain?"
//!   (RCPT TO);
//! * [`size`]: "how big may a message be?" (SMTP `SIZE`, DATA/BDAT, Pickup files).
//!
//! Layer 0: functions of (configuration, values) only; no I/O, no clock. `size` imports
//! nothing, so the pure `smtp` core may ask it; `access` uses `smtp::path` and
//! `smtp::reply` types (no file imports in both directions).

pub mod access;
pub mod domain;
pub mod size;
