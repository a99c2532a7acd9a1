//! [`Lazada`]: the signed refresh tied together for the manager.

use token_core::async_trait;
use token_core::{CallContext, Error, FromContext, Provider, RequestContext, TokenSet};
use url::Url;

use crate::config::LazadaConfig;
use crate::endpoints::{LazadaSeller, RefreshAccessToken};

/// Lazada's token service for every country: `https://auth.lazada.com/rest`.
pub const AUTH_URL: &str = "https://auth.lazada.com/rest";

/// Lazada at `base_url` ([`AUTH_URL`] in production): refreshes a seller's tokens; a refused
/// refresh token means the seller must authorize the app again.
///
/// ```
/// use token_core::Provider;
/// use token_provider_lazada::{AUTH_URL, Lazada, LazadaConfig};
///
/// let provider = Lazada::new(AUTH_URL.parse().unwrap(), LazadaConfig::new("123456", "secret"));
/// assert_eq!(provider.name(), "lazada");
/// assert!(!provider.can_issue());
/// ```
#[derive(Clone, Debug)]
pub struct Lazada {
    base_url: Url,
    config: LazadaConfig,
}

impl Lazada {
    /// The provider for the token service at `base_url`.
    pub fn new(base_url: Url, config: LazadaConfig) -> Self {
        Self { base_url, config }
    }

    /// The configuration.
    pub fn config(&self) -> &LazadaConfig {
        &self.config
    }
}

#[async_trait]
impl Provider for Lazada {
    type Extras = LazadaSeller;

    fn name(&self) -> &str {
        "lazada"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<LazadaSeller>,
    ) -> Result<TokenSet<LazadaSeller>, Error> {
        let context = RequestContext::for_refresh(&self.config, current).with_now(cx.now());
        let refresh = RefreshAccessToken::from_context(&context)?;
        cx.call(&self.base_url, &refresh).await
    }
}
