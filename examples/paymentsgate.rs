//! A Paymentsgate service account through the `TokenManager`: issued, refreshed, and issued
//! anew when a refresh is refused.
//!
//! `cargo run --example paymentsgate` runs against the Paymentsgate sandbox on 127.0.0.1.
//!
//! Against Paymentsgate, set:
//! - `PAYMENTSGATE_ACCOUNT_ID` and `PAYMENTSGATE_PUBLIC_KEY` (the Base64 of the account's PEM
//!   public key): both required;
//! - `PAYMENTSGATE_BASE_URL`: default `https://secure.sandbox.paymentsgate.io`;
//! - `PAYMENTSGATE_REFRESH_BEARER=false` to refresh without the bearer header;
//!
//! and the example issues a pair, refreshes it once and prints the expiries (never the tokens).

use std::process::ExitCode;
use std::sync::Arc;

use token_core::expiry::format_rfc3339;
use token_core::{clock::SystemClock, manager::Event, manager::TokenManager};
use token_provider_paymentsgate::{
    ISSUE_PATH, Paymentsgate, PaymentsgateConfig, REFRESH_PATH, sandbox,
};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let result = match (
        env("PAYMENTSGATE_ACCOUNT_ID"),
        env("PAYMENTSGATE_PUBLIC_KEY"),
    ) {
        (Some(account), Some(key)) => {
            let base = env("PAYMENTSGATE_BASE_URL")
                .unwrap_or_else(|| "https://secure.sandbox.paymentsgate.io".into());
            let config = PaymentsgateConfig::new(account, key).with_refresh_bearer(
                env("PAYMENTSGATE_REFRESH_BEARER").as_deref() != Some("false"),
            );
            real_host(&base, config).await
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

async fn real_host(base: &str, config: PaymentsgateConfig) -> Result<(), Failure> {
    let manager = TokenManager::builder(Paymentsgate::new(base.parse()?, config)).build()?;
    let issued = manager.token_set("service").await?;
    println!(
        "issued: expires at {}",
        issued
            .access_expires_at
            .map_or("(not said)".into(), format_rfc3339)
    );
    manager.refresh_now("service").await?;
    let refreshed = manager.token_set("service").await?;
    println!(
        "refreshed: expires at {}",
        refreshed
            .access_expires_at
            .map_or("(not said)".into(), format_rfc3339)
    );
    Ok(())
}

async fn in_sandbox() -> Result<(), Failure> {
    let account = PaymentsgateConfig::new("acct-1", "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K");
    let sandbox = sandbox::start(Arc::new(SystemClock), sandbox::issuer_config(), &account).await?;
    let manager = TokenManager::builder(Paymentsgate::new(sandbox.base_url(), account))
        .shared_client(sandbox.client())
        .build()?;
    let mut events = manager.subscribe();

    let set = manager.token_set("service").await?;
    println!(
        "[1] issued with the account credentials (JWT, expires {}); issue calls: {}",
        set.access_expires_at.map_or("?".into(), format_rfc3339),
        sandbox.calls(ISSUE_PATH)
    );
    manager.refresh_now("service").await?;
    println!(
        "[2] refreshed with the bearer header; refresh calls: {}",
        sandbox.calls(REFRESH_PATH)
    );

    // The provider forgets the pair: the refresh is refused (401) and a new pair is issued.
    let current = manager.token_set("service").await?;
    sandbox
        .issuer()
        .revoke(
            current
                .refresh_token
                .ok_or("no refresh token")?
                .expose_secret(),
        )
        .await?;
    manager.refresh_now("service").await?;
    let reissued = std::iter::from_fn(|| events.try_recv().ok())
        .any(|e| matches!(e, Event::Refreshed { issued: true, .. }));
    println!(
        "[3] refused refresh answered by issuing anew: {reissued}; issue calls: {}, refresh calls: {}",
        sandbox.calls(ISSUE_PATH),
        sandbox.calls(REFRESH_PATH)
    );
    if !reissued || sandbox.calls(ISSUE_PATH) != 2 {
        return Err("the refused refresh was not answered by issuing".into());
    }
    Ok(())
}
