//! Relay and access decisions as pure functions of (config, client address, envelope).
