//! `#[token_endpoint(config)]`: `new` with the required fields in order, a setter per
//! `Option` field, secrets and other types through `Into`, primitives as they are.
use std::time::Duration;

use token_core::{secret::ClientSecret, token_endpoint};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AppConfig {
    /// The app key.
    pub app_key: String,
    pub app_secret: ClientSecret,
    pub partner_id: u64,
    /// Sent when set.
    pub merchant_id: Option<String>,
    pub timeout: Option<Duration>,
    pub retries: Option<u8>,
    pub r#type: Option<String>,
}

// Nothing required: `new()`.
#[token_endpoint(config)]
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Optional {
    pub scope: Option<String>,
}

fn main() {
    let config = AppConfig::new("key", "secret", 42)
        .with_merchant_id("m-1")
        .with_timeout(Duration::from_secs(5))
        .with_retries(3)
        .with_type("shop");
    assert_eq!(config.app_key, "key");
    assert_eq!(config.app_secret, ClientSecret::new("secret"));
    assert!(!format!("{config:?}").contains("\"secret\""));
    assert_eq!(config.partner_id, 42);
    assert_eq!(config.merchant_id.as_deref(), Some("m-1"));
    assert_eq!(config.timeout, Some(Duration::from_secs(5)));
    assert_eq!(config.retries, Some(3));
    assert_eq!(config.r#type.as_deref(), Some("shop"));

    let plain = AppConfig::new(String::from("key"), ClientSecret::new("s"), 7);
    assert_eq!((plain.merchant_id, plain.timeout, plain.retries, plain.r#type), (None, None, None, None));

    assert_eq!(Optional::new(), Optional::default());
    assert_eq!(Optional::new().with_scope("read").scope.as_deref(), Some("read"));
}
