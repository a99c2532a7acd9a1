//! `#[token_endpoint]`: derives a provider endpoint's codecs and error mapping.
