//! Refresh a provider's tokens once, by hand, through the `TokenManager` (so its retries and
//! error classification apply), and print the result as one JSON line.
//!
//! ```text
//! cargo run -q --example refresh -- --provider NAME --base-url URL --config FILE.json \
//!     --refresh-token T [--access-token T] [--reveal]
//! ```
//!
//! - `NAME`: `oauth2` (`--base-url` is the token endpoint's full URL; it sets the config's
//!   `token_url`), `paymentsgate`, `vaultist` or `vaultist-v2` (`vaultist` with `api_version`
//!   forced to `v2`), `maya` (`--base-url` is the Mini App host; the app token comes from the
//!   config's `connect_url`), `alipayplus` (`--base-url` is the applyToken host), `lazada`
//!   (`--base-url` is `https://auth.lazada.com/rest`; every refresh is signed with the
//!   config's `app_secret`) or `wechat` (`--base-url` is `https://api.weixin.qq.com`).
//! - `FILE.json`: the provider's config type as JSON; its keys are documented in the
//!   provider crate's docs (`OAuth2Config`, `PaymentsgateConfig`, `VaultistConfig`,
//!   `MayaConfig`, `AlipayPlusConfig`, `LazadaConfig`, `WeChatConfig`).
//! - `--access-token`: the current access token, for providers that send it on refresh
//!   (Paymentsgate's bearer header); without it none is sent.
//!
//! Success, exit 0: `{"ok":true,"access_token":"***","refresh_token":"***",
//! "access_expires_at":"2026-01-01T01:00:00Z","refresh_expires_at":null,"extras":{}}` (the
//! tokens themselves with `--reveal`). Failure, exit 2: `{"ok":false,"kind":"reauth_required",
//! "code":"invalid_grant","message":"..."}` with `kind` one of `reauth_required`, `transient`,
//! `outcome_unknown`, `misconfigured`, `rejected` (a config file that cannot be read is
//! `misconfigured`). `--help` or `-h`: the usage and these options on stdout, exit 0. Bad
//! arguments: the usage on stderr, exit 64.
//!
//! Adding a provider is one arm in `dispatch`: build the provider from `args.base_url` and
//! `args.config()` and hand it to `refresh`.

use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use token_core::expiry::format_rfc3339;
use token_core::{
    error::Error, manager::TokenManager, provider::Provider, secret::AccessToken,
    secret::RefreshToken, token_set::TokenSet,
};
use token_provider_alipayplus::{AlipayPlus, AlipayPlusConfig};
use token_provider_lazada::Lazada;
use token_provider_maya::{Maya, MayaConfig};
use token_provider_oauth2::OAuth2;
use token_provider_paymentsgate::Paymentsgate;
use token_provider_vaultist::{ApiVersion, Vaultist, VaultistConfig};
use token_provider_wechat::WeChat;

/// The usage message printed with exit code 64.
pub const USAGE: &str = "usage: refresh --provider \
oauth2|paymentsgate|vaultist|vaultist-v2|maya|alipayplus|lazada|wechat \
--base-url URL --config FILE.json --refresh-token T [--access-token T] [--reveal]";

/// What `--help` prints: the usage and what each option means.
pub const HELP: &str = "\
Refreshes a provider's tokens once through the TokenManager and prints one JSON line.

Options:
  --provider NAME       oauth2, paymentsgate, vaultist, vaultist-v2, maya, alipayplus,
                        lazada or wechat
  --base-url URL        the provider's host; for oauth2 the token endpoint's full URL,
                        for maya the Mini App host, for alipayplus the applyToken host
  --config FILE.json    the provider's config as JSON (keys: the provider crate's docs)
  --refresh-token T     the refresh token to use
  --access-token T      the current access token, for providers that send it on refresh
  --reveal              print the new tokens instead of ***
  -h, --help            this text

Exit codes: 0 refreshed, 2 failed (the JSON line says why), 64 bad arguments.";

/// The session the one-off refresh is stored under (in memory only).
const SESSION: &str = "refresh-example";

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = run(std::env::args().skip(1).collect()).await;
    if let Some(line) = &outcome.stdout {
        println!("{line}");
    }
    if let Some(text) = &outcome.stderr {
        eprintln!("{text}");
    }
    ExitCode::from(outcome.code)
}

/// What the command prints and its exit code.
#[derive(Debug)]
pub struct Outcome {
    /// 0 refreshed (or `--help`), 2 failed, 64 bad arguments.
    pub code: u8,
    /// The JSON line, or the help text.
    pub stdout: Option<String>,
    /// The usage message.
    pub stderr: Option<String>,
}

/// Runs the command with `args` (without the program name).
pub async fn run(args: Vec<String>) -> Outcome {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Outcome {
            code: 0,
            stdout: Some(format!("{USAGE}\n\n{HELP}")),
            stderr: None,
        };
    }
    let args = match Args::parse(&args) {
        Ok(args) => args,
        Err(problem) => return usage(&problem),
    };
    match dispatch(&args).await {
        Ok(line) => Outcome {
            code: 0,
            stdout: Some(line.to_string()),
            stderr: None,
        },
        Err(outcome) => outcome,
    }
}

/// One arm per provider: build it from the base URL and its config, then [`refresh`].
async fn dispatch(args: &Args) -> Result<Value, Outcome> {
    let base = args.base_url.clone();
    match args.provider.as_str() {
        "oauth2" => {
            // `--base-url` is the token URL: it sets the config's `token_url`.
            let mut config = args.config_json()?;
            if let Some(keys) = config.as_object_mut() {
                keys.insert("token_url".into(), base.as_str().into());
            }
            refresh(OAuth2::new(args.fit(config)?), args).await
        }
        "paymentsgate" => refresh(Paymentsgate::new(base, args.config()?), args).await,
        "vaultist" => refresh(Vaultist::new(base, args.config()?), args).await,
        "vaultist-v2" => {
            let config = args.config::<VaultistConfig>()?;
            refresh(
                Vaultist::new(base, config.with_api_version(ApiVersion::V2)),
                args,
            )
            .await
        }
        "maya" => {
            let config = args.config::<MayaConfig>()?.with_api_url(base);
            let client = std::sync::Arc::new(
                token_core::transport::ReqwestClient::new().map_err(|e| failure(&e))?,
            );
            let clock = std::sync::Arc::new(token_core::clock::SystemClock);
            let maya = Maya::from_config(config, client, clock).map_err(|e| failure(&e))?;
            refresh(maya, args).await
        }
        "alipayplus" => {
            let config = args.config::<AlipayPlusConfig>()?.with_base_url(base);
            refresh(AlipayPlus::new(config).map_err(|e| failure(&e))?, args).await
        }
        "lazada" => refresh(Lazada::new(base, args.config()?), args).await,
        "wechat" => refresh(WeChat::new(base, args.config()?), args).await,
        other => Err(usage(&format!("unknown provider `{other}`"))),
    }
}

/// Stores the given tokens as a session, refreshes it once and describes the new set.
async fn refresh<P: Provider>(provider: P, args: &Args) -> Result<Value, Outcome> {
    let refreshed = async {
        let manager = TokenManager::builder(provider).build()?;
        let access = AccessToken::new(args.access_token.clone().unwrap_or_default());
        let current = TokenSet::<P::Extras>::new(access)
            .with_refresh_token(RefreshToken::new(args.refresh_token.clone()));
        manager.insert(SESSION, current).await?;
        manager.refresh_now(SESSION).await?;
        manager.token_set(SESSION).await
    };
    let set = refreshed.await.map_err(|error: Error| failure(&error))?;
    let shown = |secret: &str| match args.reveal {
        true => Value::from(secret),
        false => Value::from("***"),
    };
    Ok(json!({
        "ok": true,
        "access_token": shown(set.access_token.expose_secret()),
        "refresh_token": set.refresh_token.as_ref().map(|t| shown(t.expose_secret())),
        "access_expires_at": set.access_expires_at.map(format_rfc3339),
        "refresh_expires_at": set.refresh_expires_at.map(format_rfc3339),
        "extras": serde_json::to_value(&set.extras).unwrap_or(Value::Null),
    }))
}

fn failure(error: &Error) -> Outcome {
    let line = json!({
        "ok": false,
        "kind": error.kind().as_str(),
        "code": error.provider_code(),
        "message": error.to_string(),
    });
    Outcome {
        code: 2,
        stdout: Some(line.to_string()),
        stderr: None,
    }
}

fn usage(problem: &str) -> Outcome {
    Outcome {
        code: 64,
        stdout: None,
        stderr: Some(format!("refresh: {problem}\n{USAGE}")),
    }
}

/// The parsed command line. Its `Debug` shows neither the tokens nor the base URL's
/// password and query.
pub struct Args {
    /// `--provider`.
    pub provider: String,
    /// `--base-url`.
    pub base_url: url::Url,
    /// `--config`.
    pub config: std::path::PathBuf,
    /// `--refresh-token`.
    pub refresh_token: String,
    /// `--access-token`.
    pub access_token: Option<String>,
    /// `--reveal`.
    pub reveal: bool,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use token_core::redact::{REDACTED, url_shown};
        f.debug_struct("Args")
            .field("provider", &self.provider)
            .field("base_url", &url_shown(&self.base_url))
            .field("config", &self.config)
            .field("refresh_token", &REDACTED)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| REDACTED),
            )
            .field("reveal", &self.reveal)
            .finish()
    }
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let (mut provider, mut base_url, mut config) = (None, None, None);
        let (mut refresh_token, mut access_token, mut reveal) = (None, None, false);
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            if flag == "--reveal" {
                reveal = true;
                continue;
            }
            let slot = match flag.as_str() {
                "--provider" => &mut provider,
                "--base-url" => &mut base_url,
                "--config" => &mut config,
                "--refresh-token" => &mut refresh_token,
                "--access-token" => &mut access_token,
                other => return Err(format!("unknown argument `{other}`")),
            };
            let value = rest
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            if slot.replace(value.clone()).is_some() {
                return Err(format!("`{flag}` given twice"));
            }
        }
        let required = |value: Option<String>, flag: &str| {
            value.ok_or_else(|| format!("`{flag}` is required"))
        };
        let base_url = required(base_url, "--base-url")?;
        Ok(Self {
            provider: required(provider, "--provider")?,
            base_url: url::Url::parse(&base_url)
                .map_err(|e| format!("`--base-url {base_url}` is not a URL: {e}"))?,
            config: required(config, "--config")?.into(),
            refresh_token: required(refresh_token, "--refresh-token")?,
            access_token,
            reveal,
        })
    }

    /// Reads the provider's config type from the `--config` file; a file that cannot be
    /// read or does not fit is a `misconfigured` failure.
    pub fn config<C: DeserializeOwned>(&self) -> Result<C, Outcome> {
        self.fit(self.config_json()?)
    }

    /// The `--config` file as JSON.
    pub fn config_json(&self) -> Result<Value, Outcome> {
        let shown = self.config.display();
        let text = std::fs::read_to_string(&self.config).map_err(|e| {
            failure(&Error::Config(format!(
                "cannot read the config file {shown}: {e}"
            )))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            failure(&Error::Config(format!(
                "the config file {shown} is not JSON: {e}"
            )))
        })
    }

    /// `config` read as the provider's config type.
    pub fn fit<C: DeserializeOwned>(&self, config: Value) -> Result<C, Outcome> {
        serde_json::from_value(config).map_err(|e| {
            failure(&Error::Config(format!(
                "the config file {} does not fit: {e}",
                self.config.display()
            )))
        })
    }
}
