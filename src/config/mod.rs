//! Configuration: plain, validated, immutable once built.
//! (Owned by the config/cli helper; see contracts.)

/// Placeholder until the config module lands.
pub struct Config;
