//! libFuzzer entry for [`mailroot_fuzz::protolog_line`] (the body lives in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailroot_fuzz::protolog_line(data));
