//! `cargo +nightly fuzz run decode_errors`: see `token_refresh_fuzz::decode_errors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_refresh_fuzz::decode_errors(data));
