//! [`VaultistConfig`]: a Vault.ist partner, and the API version whose shapes it uses.
use serde::{Deserialize, Serialize};

/// A Vault.ist partner. See the crate docs for the JSON keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultistConfig {
    /// The partner id (the v3 `partnerId` header).
    pub partner_id: i32,
    /// Which request and error shape to use.
    #[serde(default)]
    pub api_version: ApiVersion,
    /// Sent as `X-Merchant-ID` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
}

impl VaultistConfig {
    /// Partner `partner_id` on the v3 API, no merchant id.
    pub fn new(partner_id: i32) -> Self {
        Self {
            partner_id,
            api_version: ApiVersion::V3,
            merchant_id: None,
        }
    }

    /// Uses `version`.
    pub fn with_api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = version;
        self
    }

    /// Sends `X-Merchant-ID: merchant_id`.
    pub fn with_merchant_id(mut self, merchant_id: impl Into<String>) -> Self {
        self.merchant_id = Some(merchant_id.into());
        self
    }
}

/// The Vault.ist API version whose refresh shape to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// Headers `partnerId` and `grantType`, body `{"refreshToken"}`.
    #[default]
    V3,
    /// Body `{"grant_type", "refresh_token"}`; answers carry `scope` and `user_id`.
    V2,
}
