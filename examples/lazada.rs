//! A Lazada seller session through the `TokenManager`: every refresh is an HMAC-SHA256
//! signed request, declared with `#[token_endpoint]`.
//!
//! `cargo run --example lazada` runs against the Lazada sandbox on 127.0.0.1: a seller's
//! session is refreshed (signed, verified by the sandbox, rotated), then a wrong app secret
//! shows the bad-signature refusal and an expired refresh token the re-auth signal.
//!
//! Against Lazada, set:
//! - `LAZADA_APP_KEY`, `LAZADA_APP_SECRET` and `LAZADA_REFRESH_TOKEN` (from the seller's
//!   authorization, `/auth/token/create`): required;
//! - `LAZADA_BASE_URL`: default `https://auth.lazada.com/rest`;
//!
//! and the example refreshes once and prints the new expiry and the seller's account
//! platform (never the tokens).

use std::process::ExitCode;
use std::sync::Arc;

use token_core::codec::Endpoint;
use token_core::expiry::format_rfc3339;
use token_core::{
    clock::ManualClock, manager::TokenManager, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_lazada::{
    AUTH_URL, Lazada, LazadaConfig, LazadaSeller, RefreshAccessToken, sandbox,
};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let credentials = (
        env("LAZADA_APP_KEY"),
        env("LAZADA_APP_SECRET"),
        env("LAZADA_REFRESH_TOKEN"),
    );
    let result = match credentials {
        (Some(key), Some(secret), Some(refresh)) => {
            let base = env("LAZADA_BASE_URL").unwrap_or_else(|| AUTH_URL.into());
            real_host(LazadaConfig::new(key, secret), &base, refresh).await
        }
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

async fn real_host(config: LazadaConfig, base: &str, refresh: String) -> Result<(), Failure> {
    let manager = TokenManager::builder(Lazada::new(base.parse()?, config)).build()?;
    manager
        .insert_refresh_token("seller", RefreshToken::new(refresh))
        .await?;
    let set = manager.token_set("seller").await?;
    println!(
        "refreshed: access token expires at {}, account platform {:?}",
        set.access_expires_at
            .map_or("(not said)".into(), format_rfc3339),
        set.extras.account_platform
    );
    Ok(())
}

async fn in_sandbox() -> Result<(), Failure> {
    let clock = ManualClock::default();
    let app = LazadaConfig::new("123456", "helloworld");
    let sandbox = sandbox::start(Arc::new(clock.clone()), sandbox::issuer_config(), &app).await?;
    let manager = |config: LazadaConfig| {
        TokenManager::builder(Lazada::new(sandbox.base_url(), config))
            .shared_client(sandbox.client())
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let seller = manager(app.clone())?;
    let first = TokenSet::<LazadaSeller>::from_stored(sandbox.issue("seller").await?)?;
    seller.insert("seller", first.clone()).await?;
    seller.refresh_now("seller").await?;
    let second = seller.token_set("seller").await?;
    println!(
        "[1] signed refresh: rotated {}, refresh calls: {}",
        second.refresh_token != first.refresh_token,
        sandbox.calls(RefreshAccessToken::PATH)
    );

    let wrong = manager(LazadaConfig::new("123456", "not-the-secret"))?;
    wrong.insert("seller", second).await?;
    let error = wrong
        .refresh_now("seller")
        .await
        .err()
        .ok_or("a wrong signature was accepted")?;
    println!(
        "[2] wrong app secret: {} (`{}`)",
        error.kind(),
        error.provider_code().unwrap_or("?")
    );

    clock.advance(time::Duration::days(181));
    let error = seller
        .refresh_now("seller")
        .await
        .err()
        .ok_or("an expired refresh token was accepted")?;
    println!(
        "[3] refresh token expired: {} (`{}`)",
        error.kind(),
        error.provider_code().unwrap_or("?")
    );
    Ok(())
}
