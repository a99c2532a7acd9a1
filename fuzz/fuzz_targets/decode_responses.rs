//! `cargo +nightly fuzz run decode_responses`: see `token_refresh_fuzz::decode_responses`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_refresh_fuzz::decode_responses(data));
