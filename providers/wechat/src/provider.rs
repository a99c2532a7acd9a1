//! [`WeChat`]: the refresh, for the manager.

use token_core::async_trait;
use token_core::{CallContext, Error, FromContext, Provider, RequestContext, TokenSet};
use url::Url;

use crate::config::WeChatConfig;
use crate::endpoints::{SnsRefreshToken, WeChatUser};

/// WeChat at `base_url` (`https://api.weixin.qq.com`). It cannot obtain tokens without the
/// user's authorization: a dead refresh token is a re-auth signal.
///
/// ```
/// use token_core::Provider;
/// use token_provider_wechat::{WeChat, WeChatConfig};
///
/// let provider = WeChat::new("https://api.weixin.qq.com".parse().unwrap(), WeChatConfig::new("wx1"));
/// assert_eq!(provider.name(), "wechat");
/// assert!(!provider.can_issue());
/// ```
#[derive(Clone, Debug)]
pub struct WeChat {
    base_url: Url,
    config: WeChatConfig,
}

impl WeChat {
    /// The provider for the API at `base_url`.
    pub fn new(base_url: Url, config: WeChatConfig) -> Self {
        Self { base_url, config }
    }

    /// The configuration.
    pub fn config(&self) -> &WeChatConfig {
        &self.config
    }
}

#[async_trait]
impl Provider for WeChat {
    type Extras = WeChatUser;

    fn name(&self) -> &str {
        "wechat"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<WeChatUser>,
    ) -> Result<TokenSet<WeChatUser>, Error> {
        let refresh =
            SnsRefreshToken::from_context(&RequestContext::for_refresh(&self.config, current))?;
        let mut set = cx.call(&self.base_url, &refresh).await?;
        // The refresh answer names the user by `openid` only: the session keeps its `unionid`.
        if set.extras.unionid.is_none() {
            set.extras.unionid = current.extras.unionid.clone();
        }
        Ok(set)
    }
}
