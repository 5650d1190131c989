//! libFuzzer entry for [`mailroot_fuzz::sasl_auth`] (the body lives in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailroot_fuzz::sasl_auth(data));
