//! The provider's configuration as an integrator writes it (JSON).

use serde::{Deserialize, Serialize};
use token_core::token_endpoint;

/// A WeChat Official Account (or Open Platform app). See the crate docs for the JSON keys.
///
/// ```
/// use token_provider_wechat::WeChatConfig;
///
/// let config: WeChatConfig = serde_json::from_str(r#"{"appid": "wx520c15f417810387"}"#)?;
/// assert_eq!(config, WeChatConfig::new("wx520c15f417810387"));
/// assert!(serde_json::from_str::<WeChatConfig>(r#"{"appid": "wx1", "secret": "s"}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeChatConfig {
    /// The `appid` the refresh token was issued to.
    pub appid: String,
}
