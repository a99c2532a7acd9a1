//! `cargo +nightly fuzz run mpp_answer`: see `token_refresh_fuzz::mpp_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_refresh_fuzz::mpp_answer(data));
