//! libFuzzer entry for [`mailroot_fuzz::config_toml`] (the body lives in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailroot_fuzz::config_toml(data));
