//! Vault.ist sessions through the `TokenManager`, in the v3 and v2 shapes.
//!
//! `cargo run --example vaultist` runs against the Vault.ist sandbox on 127.0.0.1: a session
//! is refreshed in each shape, then an expired refresh token shows the re-auth signal.
//!
//! Against Vault.ist, set:
//! - `VAULTIST_PARTNER_ID` and `VAULTIST_REFRESH_TOKEN` (from Vault.ist's login): required;
//! - `VAULTIST_BASE_URL`: default `https://api.vault.sandbox.testessential.net`;
//! - `VAULTIST_MERCHANT_ID`: sent as `X-Merchant-ID`;
//! - `VAULTIST_API_VERSION`: `v3` (default) or `v2`;
//!
//! and the example refreshes once and prints the new expiry (never the tokens).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use token_core::expiry::format_rfc3339;
use token_core::{
    clock::ManualClock, manager::TokenManager, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_vaultist::{
    ApiVersion, REFRESH_PATH, Vaultist, VaultistConfig, VaultistExtras, sandbox,
};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let result = match (env("VAULTIST_PARTNER_ID"), env("VAULTIST_REFRESH_TOKEN")) {
        (Some(partner), Some(refresh)) => real_host(partner, refresh, env).await,
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
    partner: String,
    refresh: String,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), Failure> {
    let mut config = VaultistConfig::new(partner.parse()?);
    if env("VAULTIST_API_VERSION").as_deref() == Some("v2") {
        config = config.with_api_version(ApiVersion::V2);
    }
    if let Some(merchant) = env("VAULTIST_MERCHANT_ID") {
        config = config.with_merchant_id(merchant);
    }
    let base = env("VAULTIST_BASE_URL")
        .unwrap_or_else(|| "https://api.vault.sandbox.testessential.net".into());
    let manager = TokenManager::builder(Vaultist::new(base.parse()?, config)).build()?;
    manager
        .insert_refresh_token("partner", RefreshToken::new(refresh))
        .await?;
    let set = manager.token_set("partner").await?;
    println!(
        "refreshed: access token expires at {}, user {:?}",
        set.access_expires_at
            .map_or("(not said)".into(), format_rfc3339),
        set.extras.user_id
    );
    Ok(())
}

async fn in_sandbox() -> Result<(), Failure> {
    let clock = ManualClock::default();
    let issuer = sandbox::issuer_config().with_refresh_ttl(Some(Duration::from_secs(7200)));
    let partner = VaultistConfig::new(42).with_merchant_id("m-1");
    let sandbox = sandbox::start(Arc::new(clock.clone()), issuer, &partner).await?;
    for (step, version) in [(1, ApiVersion::V3), (2, ApiVersion::V2)] {
        let config = partner.clone().with_api_version(version);
        let manager = TokenManager::builder(Vaultist::new(sandbox.base_url(), config))
            .shared_client(sandbox.client())
            .clock(Arc::new(clock.clone()))
            .build()?;
        let issued = sandbox
            .issue_with("partner", serde_json::json!({"user_id": "usr:b06d9aaa"}))
            .await?;
        let mut first = TokenSet::<VaultistExtras>::from_stored(issued)?;
        first.refresh_expires_at = None; // Vault.ist does not say; its answer decides.
        manager.insert("partner", first).await?;
        manager.refresh_now("partner").await?;
        let set = manager.token_set("partner").await?;
        println!(
            "[{step}] {version:?} refresh: user {:?}, refresh calls: {}",
            set.extras.user_id.as_deref().unwrap_or("?"),
            sandbox.calls(REFRESH_PATH)
        );
        if version == ApiVersion::V2 {
            clock.advance(time::Duration::hours(3));
            let error = manager
                .refresh_now("partner")
                .await
                .err()
                .ok_or("an expired refresh token was accepted")?;
            println!(
                "[3] refresh token expired: {} (`{}`)",
                error.kind(),
                error.provider_code().unwrap_or("?")
            );
        }
    }
    Ok(())
}
