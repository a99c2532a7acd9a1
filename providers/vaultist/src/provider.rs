//! [`Vaultist`]: the refresh of the configured API version, for the manager, and its config.

use serde::{Deserialize, Serialize};
use token_core::async_trait;
use token_core::{CallContext, Error, FromContext, Provider, RequestContext, TokenSet};
use url::Url;

use crate::endpoints::{RefreshV2, RefreshV3, VaultistExtras};

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

/// Vault.ist at `base_url`. It cannot obtain tokens without the user's login: a dead refresh
/// token is a re-auth signal.
///
/// ```
/// use token_core::Provider;
/// use token_provider_vaultist::{Vaultist, VaultistConfig};
///
/// let provider = Vaultist::new("https://api.vault.ist".parse().unwrap(), VaultistConfig::new(42));
/// assert_eq!(provider.name(), "vaultist");
/// assert!(!provider.can_issue());
/// ```
#[derive(Clone, Debug)]
pub struct Vaultist {
    base_url: Url,
    config: VaultistConfig,
}

impl Vaultist {
    /// The provider for the API at `base_url`.
    pub fn new(base_url: Url, config: VaultistConfig) -> Self {
        Self { base_url, config }
    }

    /// The configuration.
    pub fn config(&self) -> &VaultistConfig {
        &self.config
    }
}

#[async_trait]
impl Provider for Vaultist {
    type Extras = VaultistExtras;

    fn name(&self) -> &str {
        "vaultist"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<VaultistExtras>,
    ) -> Result<TokenSet<VaultistExtras>, Error> {
        let context = RequestContext::for_refresh(&self.config, current);
        let set = match self.config.api_version {
            ApiVersion::V3 => {
                cx.call(&self.base_url, &RefreshV3::from_context(&context)?)
                    .await?
            }
            ApiVersion::V2 => {
                cx.call(&self.base_url, &RefreshV2::from_context(&context)?)
                    .await?
            }
        };
        // v3 answers (and v2 answers without one) carry no `user_id`: the session keeps its own.
        Ok(match set.extras.user_id {
            Some(_) => set,
            None => set.with_extras(current.extras.clone()),
        })
    }
}
