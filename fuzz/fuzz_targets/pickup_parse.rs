//! libFuzzer entry for [`mailroot_fuzz::pickup_parse`] (the body lives in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailroot_fuzz::pickup_parse(data));
