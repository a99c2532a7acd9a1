//! [`LazadaConfig`]: the app's key and secret, as the Lazada Open Platform console shows them.

use serde::Deserialize;
use token_core::{secret::ClientSecret, token_endpoint};

/// A Lazada Open Platform app. See the crate docs for the JSON keys.
#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LazadaConfig {
    /// The App Key, sent as `app_key`.
    pub app_key: String,
    /// The App Secret: the key of every request's HMAC-SHA256 `sign`, never sent.
    pub app_secret: ClientSecret,
}
