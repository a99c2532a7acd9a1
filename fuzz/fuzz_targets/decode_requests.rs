//! `cargo +nightly fuzz run decode_requests`: see `token_refresh_fuzz::decode_requests`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_refresh_fuzz::decode_requests(data));
