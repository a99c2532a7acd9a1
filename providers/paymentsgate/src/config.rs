//! [`PaymentsgateConfig`]: a Paymentsgate service account.

use serde::{Deserialize, Serialize};
use token_core::secret::ClientSecret;

/// A Paymentsgate service account. See the crate docs for the JSON keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PaymentsgateConfig {
    /// The service account id.
    pub account_id: String,
    /// The Base64 of the account's PEM public key.
    pub public_key: ClientSecret,
    /// Whether the refresh call carries `Authorization: Bearer <access token>`.
    #[serde(default = "yes")]
    pub refresh_bearer: bool,
}

fn yes() -> bool {
    true
}

impl PaymentsgateConfig {
    /// An account, refreshing with the bearer header as documented.
    pub fn new(account_id: impl Into<String>, public_key: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            public_key: ClientSecret::new(public_key),
            refresh_bearer: true,
        }
    }

    /// Sets whether the refresh call carries `Authorization: Bearer <access token>` (the
    /// official Node and PHP clients send none).
    pub fn with_refresh_bearer(mut self, refresh_bearer: bool) -> Self {
        self.refresh_bearer = refresh_bearer;
        self
    }
}
