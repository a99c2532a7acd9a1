//! [`Paymentsgate`]: issue and refresh tied together for the manager.

use token_core::async_trait;
use token_core::{
    codec::FromContext, codec::RequestContext, error::Error, provider::CallContext,
    provider::Provider, token_set::NoExtras, token_set::TokenSet,
};
use url::Url;

use crate::config::PaymentsgateConfig;
use crate::endpoints::{IssueServiceToken, RefreshServiceToken};

/// Paymentsgate at `base_url`: issues with the account credentials and refreshes; the
/// manager issues anew when a refresh is refused.
///
/// ```
/// use token_core::provider::Provider;
/// use token_provider_paymentsgate::{Paymentsgate, PaymentsgateConfig};
///
/// let provider = Paymentsgate::new(
///     "https://secure.sandbox.paymentsgate.io".parse().unwrap(),
///     PaymentsgateConfig::new("acct-1", "key"),
/// );
/// assert_eq!(provider.name(), "paymentsgate");
/// assert!(provider.can_issue());
/// ```
///
/// Its `Debug` shows the base URL without its password and query
/// ([`url_shown`](token_core::redact::url_shown)).
#[derive(Clone)]
pub struct Paymentsgate {
    base_url: Url,
    config: PaymentsgateConfig,
}

impl std::fmt::Debug for Paymentsgate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paymentsgate")
            .field("base_url", &token_core::redact::url_shown(&self.base_url))
            .field("config", &self.config)
            .finish()
    }
}

impl Paymentsgate {
    /// The provider for the API at `base_url`.
    pub fn new(base_url: Url, config: PaymentsgateConfig) -> Self {
        Self { base_url, config }
    }

    /// The configuration.
    pub fn config(&self) -> &PaymentsgateConfig {
        &self.config
    }
}

#[async_trait]
impl Provider for Paymentsgate {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "paymentsgate"
    }

    fn client_id(&self) -> Option<String> {
        Some(self.config.account_id.clone())
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let mut context = RequestContext::for_refresh(&self.config, current);
        // No bearer when turned off, or when the session has no access token to send (none
        // yet, or one that could not be sent: the manager sets such a token aside, empty).
        if !self.config.refresh_bearer || current.access_token.expose_secret().is_empty() {
            context.access_token = None;
        }
        let refresh = RefreshServiceToken::from_context(&context)?;
        cx.call(&self.base_url, &refresh).await
    }

    fn can_issue(&self) -> bool {
        true
    }

    async fn issue(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        let issue = IssueServiceToken::from_context(&RequestContext::new(&self.config))?;
        cx.call(&self.base_url, &issue).await
    }
}
