//! [`Vaultist`]: the refresh of the configured API version, for the manager.

use token_core::async_trait;
use token_core::{
    codec::FromContext, codec::RequestContext, error::Error, provider::CallContext,
    provider::Provider, token_set::TokenSet,
};
use url::Url;

use crate::config::{ApiVersion, VaultistConfig};
use crate::endpoints::{RefreshV2, RefreshV3, VaultistExtras};

/// Vault.ist at `base_url`. It cannot obtain tokens without the user's login: a dead refresh
/// token is a re-auth signal.
///
/// ```
/// use token_core::provider::Provider;
/// use token_provider_vaultist::{Vaultist, VaultistConfig};
///
/// let provider = Vaultist::new("https://api.vault.ist".parse().unwrap(), VaultistConfig::new(42));
/// assert_eq!(provider.name(), "vaultist");
/// assert!(!provider.can_issue());
/// ```
///
/// Its `Debug` shows the base URL without its password and query
/// ([`url_shown`](token_core::redact::url_shown)).
#[derive(Clone)]
pub struct Vaultist {
    base_url: Url,
    config: VaultistConfig,
}

impl std::fmt::Debug for Vaultist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vaultist")
            .field("base_url", &token_core::redact::url_shown(&self.base_url))
            .field("config", &self.config)
            .finish()
    }
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

    fn client_id(&self) -> Option<String> {
        Some(self.config.partner_id.to_string())
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
        // v3 answers (and v2 answers without one, or with a blank one: an empty id is no
        // id) carry no `user_id`: the session keeps its own.
        Ok(match set.extras.user_id.as_deref() {
            Some(user) if !user.trim().is_empty() => set,
            _ => set.with_extras(current.extras.clone()),
        })
    }
}
