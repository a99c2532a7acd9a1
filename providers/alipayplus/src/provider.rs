//! [`AlipayPlus`]: refreshes with applyToken `REFRESH_TOKEN`, signed, and exchanges
//! authorization codes with applyToken `AUTHORIZATION_CODE`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use token_core::{
    codec::FromContext, codec::RequestContext, error::Error, provider::CallContext,
    provider::Provider, secret::AuthCode, token_set::TokenSet,
};

use crate::config::AlipayPlusConfig;
use crate::endpoints::{AlipayExtras, ApplyToken, ApplyTokenByCode};
use crate::signature::Rsa256Signer;

/// Alipay+ applyToken sessions.
///
/// Refresh sends applyToken `REFRESH_TOKEN`, signed with RSA256, and verifies the answer's
/// signature. A `U` answer or a lost answer is retried with the same refresh token inside the
/// reuse window (default 5 minutes, as Alipay+ recommends to MPPs). The first tokens come
/// from [`apply_token_by_code`](Self::apply_token_by_code); insert them with
/// [`TokenManager::insert`](token_core::manager::TokenManager::insert).
///
/// ```no_run
/// use std::sync::Arc;
/// use token_core::{secret::AuthCode, manager::TokenManager};
/// use token_provider_alipayplus::{AlipayPlus, AlipayPlusConfig};
///
/// # async fn run(config: AlipayPlusConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let alipay = AlipayPlus::new(config)?;
/// let manager = TokenManager::builder(alipay).build()?;
/// let first = manager
///     .provider()
///     .apply_token_by_code(&manager.call_context("user-42"), &AuthCode::new("code-from-consent"))
///     .await?;
/// manager.insert("user-42", first).await?;
/// let token = manager.access_token("user-42").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AlipayPlus {
    config: Arc<AlipayPlusConfig>,
    signer: Arc<Rsa256Signer>,
}

impl AlipayPlus {
    /// A provider for `config`, reading its keys.
    pub fn new(config: AlipayPlusConfig) -> Result<Self, Error> {
        let signer = config
            .signer()
            .map_err(|e| Error::Config(format!("Alipay+ keys: {e}")))?;
        Ok(Self::with_signer(config, signer))
    }

    /// A provider for `config` with a signer built elsewhere.
    pub fn with_signer(config: AlipayPlusConfig, signer: Rsa256Signer) -> Self {
        Self {
            config: Arc::new(config),
            signer: Arc::new(signer),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AlipayPlusConfig {
        &self.config
    }

    /// applyToken `AUTHORIZATION_CODE`: the first token set of a user who consented.
    pub async fn apply_token_by_code(
        &self,
        cx: &CallContext,
        auth_code: &AuthCode,
    ) -> Result<TokenSet<AlipayExtras>, Error> {
        let context = RequestContext::new(&*self.config).with_auth_code(auth_code, None);
        let apply = ApplyTokenByCode::from_context(&context)?;
        cx.call_signed(&self.config.base_url, &apply, &*self.signer)
            .await
    }
}

#[async_trait]
impl Provider for AlipayPlus {
    type Extras = AlipayExtras;

    fn name(&self) -> &str {
        "alipayplus"
    }

    fn client_id(&self) -> Option<String> {
        Some(self.config.client_id.clone())
    }

    fn reuse_window(&self) -> Duration {
        self.config.reuse_window()
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<AlipayExtras>,
    ) -> Result<TokenSet<AlipayExtras>, Error> {
        let apply = ApplyToken::from_context(&RequestContext::for_refresh(&*self.config, current))?;
        let mut set = cx
            .call_signed(&self.config.base_url, &apply, &*self.signer)
            .await?;
        // Both fields are optional in the answer: one it leaves out (or writes blank: an
        // empty id is no id) has not changed, and the session keeps its value (the session
        // still belongs to the same customer), as a `#[token(keep)]` extra is kept.
        let kept = &current.extras;
        let extras = &mut set.extras;
        if names_nothing(extras.customer_id.as_deref()) {
            extras.customer_id.clone_from(&kept.customer_id);
        }
        if names_nothing(extras.user_login_id.as_deref()) {
            extras.user_login_id.clone_from(&kept.user_login_id);
        }
        Ok(set)
    }

    fn authorize_url(&self, session: &str) -> Option<String> {
        let mut url = self.config.authorize_url.clone()?;
        url.query_pairs_mut().append_pair("state", session);
        Some(url.into())
    }
}

/// Whether an answer's extras field names nothing: absent, or blank text.
fn names_nothing(field: Option<&str>) -> bool {
    field.is_none_or(|text| text.trim().is_empty())
}
