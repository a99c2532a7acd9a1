//! A WeChat user's web-authorization session through the `TokenManager`.
//!
//! `cargo run --example wechat` runs against the WeChat sandbox on 127.0.0.1: the session is
//! refreshed (WeChat keeps the refresh token), a busy answer (`errcode -1` on HTTP 200) is
//! retried, and 30 days after the authorization the refresh token times out (`42002`): the
//! re-auth signal.
//!
//! Against WeChat, set:
//! - `WECHAT_APPID` and `WECHAT_REFRESH_TOKEN` (from the code exchange): required;
//! - `WECHAT_BASE_URL`: default `https://api.weixin.qq.com`;
//!
//! and the example refreshes once and prints the new expiry and the `openid` (never the
//! tokens).

use std::process::ExitCode;
use std::sync::Arc;

use http::StatusCode;
use token_core::codec::Endpoint;
use token_core::expiry::format_rfc3339;
use token_core::sandbox::Failure;
use token_core::{
    clock::ManualClock, manager::TokenManager, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_wechat::{SnsRefreshToken, WeChat, WeChatConfig, WeChatUser, sandbox};

type Failed = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let result = match (env("WECHAT_APPID"), env("WECHAT_REFRESH_TOKEN")) {
        (Some(appid), Some(refresh)) => real_host(appid, refresh, env).await,
        _ => in_sandbox().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn real_host(
    appid: String,
    refresh: String,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), Failed> {
    let base = env("WECHAT_BASE_URL").unwrap_or_else(|| "https://api.weixin.qq.com".into());
    let provider = WeChat::new(base.parse()?, WeChatConfig::new(appid));
    let manager = TokenManager::builder(provider).build()?;
    manager
        .insert_refresh_token("user", RefreshToken::new(refresh))
        .await?;
    let set = manager.token_set("user").await?;
    println!(
        "refreshed: access token expires at {}, openid {:?}, scope {:?}",
        set.access_expires_at
            .map_or("(not said)".into(), format_rfc3339),
        set.extras.openid,
        set.scope
    );
    Ok(())
}

async fn in_sandbox() -> Result<(), Failed> {
    let clock = ManualClock::default();
    let config = WeChatConfig::new("wx520c15f417810387");
    let sandbox =
        sandbox::start(Arc::new(clock.clone()), sandbox::issuer_config(), &config).await?;
    let manager = TokenManager::builder(WeChat::new(sandbox.base_url(), config))
        .shared_client(sandbox.client())
        .clock(Arc::new(clock.clone()))
        .build()?;
    let issued = sandbox
        .issue_with(
            "user",
            serde_json::json!({"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}),
        )
        .await?;
    let first = TokenSet::<WeChatUser>::from_stored(issued)?;
    manager.insert("user", first.clone()).await?;

    manager.refresh_now("user").await?;
    let set = manager.token_set("user").await?;
    println!(
        "[1] refreshed: openid {}, refresh token kept: {}",
        set.extras.openid.as_deref().unwrap_or("?"),
        set.refresh_token == first.refresh_token
    );

    let busy = Failure::new(StatusCode::OK)
        .with_json(&serde_json::json!({"errcode": -1, "errmsg": "system error"}));
    sandbox.fail_next(SnsRefreshToken::PATH, 1, busy);
    manager.refresh_now("user").await?;
    println!(
        "[2] `errcode -1` on HTTP 200 retried: refresh calls so far {}",
        sandbox.calls(SnsRefreshToken::PATH)
    );

    clock.advance(time::Duration::days(31));
    let error = manager
        .refresh_now("user")
        .await
        .err()
        .ok_or("a timed-out refresh token was accepted")?;
    println!(
        "[3] 31 days later: {} (`{}`)",
        error.kind(),
        error.provider_code().unwrap_or("?")
    );
    Ok(())
}
