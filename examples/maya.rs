//! Maya Mini App customer sessions through the `TokenManager`: the Session URL, the app token
//! and the customer refresh.
//!
//! `cargo run --example maya` runs against Maya's sandbox on 127.0.0.1: Maya posts a
//! customer's tokens to the Session URL, the front-end redeems the `sessionId` once, the
//! session is refreshed with the partner's app token, and an expired refresh token shows the
//! re-auth signal with Maya Connect's authorize URL. Each step prints its evidence.
//!
//! Against Maya, set:
//! - `MAYA_CONFIG`: a JSON file with `MayaConfig`'s keys (see the `token-provider-maya` docs:
//!   `client_id`, `client_secret`, `connect_url`, optionally `api_url`, `refresh`, ...);
//!   alone, it obtains the app token (client credentials) and prints its expiry;
//! - `MAYA_REFRESH_TOKEN`: a customer's refresh token, to refresh it once as well;
//!
//! and the example prints expiries, never tokens.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use token_core::expiry::format_rfc3339;
use token_core::sandbox::Sandbox;
use token_core::{
    ClientSecret, Clock, IssuerConfig, ManualClock, RefreshToken, TokenManager, TokenSet,
};
use token_provider_maya::sandbox::{MayaSandbox, new_customer};
use token_provider_maya::{APP_SESSION, Maya, MayaConfig, RedeemError, SessionReceiver};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match std::env::var("MAYA_CONFIG") {
        Ok(path) => real_host(&path, std::env::var("MAYA_REFRESH_TOKEN").ok()).await,
        Err(_) => in_sandbox().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn real_host(path: &str, refresh_token: Option<String>) -> Result<(), Failure> {
    let config: MayaConfig = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let client = Arc::new(token_core::ReqwestClient::new()?);
    let maya = Maya::from_config(config, client.clone(), Arc::new(token_core::SystemClock))?;
    let app = maya.app_tokens().token_set(APP_SESSION).await?;
    println!(
        "app token obtained; expires at {}",
        app.access_expires_at
            .map_or("(not said)".into(), format_rfc3339)
    );
    let Some(refresh_token) = refresh_token else {
        return Ok(());
    };
    let manager = TokenManager::builder(maya).shared_client(client).build()?;
    let session = TokenSet::new("".into()).with_refresh_token(RefreshToken::new(refresh_token));
    manager.insert("customer", session).await?;
    manager.refresh_now("customer").await?;
    let set = manager.token_set("customer").await?;
    println!(
        "customer refreshed; access token expires at {}",
        set.access_expires_at
            .map_or("(not said)".into(), format_rfc3339)
    );
    Ok(())
}

fn check(step: &str, ok: bool, evidence: String) -> Result<(), Failure> {
    println!("[{}] {step:<52} {evidence}", if ok { "ok" } else { "!!" });
    if ok {
        Ok(())
    } else {
        Err(format!("step `{step}` did not behave as described ({evidence})").into())
    }
}

async fn in_sandbox() -> Result<(), Failure> {
    let manual = ManualClock::default();
    let maya = MayaSandbox::new("partner-1", ClientSecret::new("partner-secret"));
    let issuer = IssuerConfig::default().with_refresh_ttl(Some(Duration::from_secs(7200)));
    let sandbox = maya
        .routes(
            Sandbox::builder()
                .clock(Arc::new(manual.clone()))
                .issuer_config(issuer),
        )
        .start()
        .await?;
    let config = maya
        .config(&sandbox)
        .with_redirect_uri("https://partner.example/maya/callback");
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let provider = Maya::from_config(config, sandbox.client(), clock.clone())?;
    let manager = TokenManager::builder(provider)
        .shared_client(sandbox.client())
        .clock(clock.clone())
        .build()?;
    let receiver = SessionReceiver::new(manager.clone());
    let advance = |secs: i64| manual.advance(time::Duration::seconds(secs));

    // 1. Maya POSTs the customer's tokens to the Session URL.
    let post = new_customer(
        &sandbox,
        "customer-1",
        "https://partner.example/maya/session",
    )
    .await?;
    let answer = receiver.receive(post).await;
    let body: serde_json::Value = serde_json::from_slice(answer.body())?;
    let session_id = body["sessionId"].as_str().unwrap_or_default().to_owned();
    check(
        "Session URL answers a sessionId",
        answer.status() == 200 && session_id.len() == 36,
        format!(
            "HTTP {}, sessionId of {} chars",
            answer.status(),
            session_id.len()
        ),
    )?;

    // 2. The front-end redeems it once for the partner's user session.
    receiver.redeem(&session_id, "user-42").await?;
    let again = receiver.redeem(&session_id, "intruder").await;
    check(
        "a sessionId is redeemed only once",
        matches!(again, Err(RedeemError::AlreadyUsed)),
        format!(
            "second use: {}",
            again.err().map_or("accepted".into(), |e| e.to_string())
        ),
    )?;

    // 3. An hour later the customer's token is refreshed with the partner's app token.
    advance(3601);
    let token = manager.access_token("user-42").await?;
    check(
        "expired access token refreshed via POST /tokens",
        sandbox.calls("/tokens") == 1 && sandbox.calls("/token") == 1,
        format!(
            "/tokens calls: {}, app token (/token) calls: {}, accepted: {}",
            sandbox.calls("/tokens"),
            sandbox.calls("/token"),
            sandbox
                .issuer()
                .authenticate(token.expose_secret())
                .await
                .is_ok()
        ),
    )?;

    // 4. Left idle past the refresh token's life: re-auth, with the authorize URL.
    advance(3 * 3600);
    let error = manager
        .access_token("user-42")
        .await
        .err()
        .ok_or("the dead session still answered a token")?;
    let url = error.reauth().and_then(|r| r.authorize_url.clone());
    check(
        "an expired refresh token asks for re-auth",
        url.as_deref().is_some_and(|u| u.contains("state=user-42")),
        format!("{} -> {}", error.kind(), url.unwrap_or_default()),
    )?;
    println!("\nMaya sandbox: every step behaved as described.");
    Ok(())
}
