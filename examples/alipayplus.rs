//! Alipay+ applyToken through the `TokenManager`, signed both ways, against an MPP.
//!
//! `cargo run --example alipayplus` runs against the sandbox MPP on 127.0.0.1 (sandbox RSA
//! keys): a user consents and the code is exchanged, the session is refreshed, a `U` answer
//! is recovered by sending the same request again inside the 5-minute reuse window, and an
//! expired refresh token shows the re-auth signal. Each step prints its evidence.
//!
//! Against Alipay+ (or a real MPP), set:
//! - `ALIPAYPLUS_CONFIG`: a JSON file with `AlipayPlusConfig`'s keys (see the
//!   `token-provider-alipayplus` docs: `client_id`, `psp_id`, `private_key_file`,
//!   `server_public_key_file`, optionally `base_url`, `acquirer_id`, ...);
//! - and one of `ALIPAYPLUS_AUTH_CODE` (exchanged with `AUTHORIZATION_CODE`) or
//!   `ALIPAYPLUS_REFRESH_TOKEN` (refreshed once with `REFRESH_TOKEN`);
//!
//! and the example prints expiries and `customerId`, never tokens.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use token_core::expiry::format_rfc3339;
use token_core::sandbox::Sandbox;
use token_core::{
    clock::ManualClock, manager::TokenManager, secret::AuthCode, secret::RefreshToken,
};
use token_provider_alipayplus::sandbox::AlipayPlusSandbox;
use token_provider_alipayplus::{AlipayExtras, AlipayPlus, AlipayPlusConfig};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match std::env::var("ALIPAYPLUS_CONFIG") {
        Ok(path) => real_host(&path).await,
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

async fn real_host(path: &str) -> Result<(), Failure> {
    let config: AlipayPlusConfig = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let manager = TokenManager::builder(AlipayPlus::new(config)?).build()?;
    let env = |key: &str| std::env::var(key).ok();
    let set = match (env("ALIPAYPLUS_AUTH_CODE"), env("ALIPAYPLUS_REFRESH_TOKEN")) {
        (Some(code), _) => {
            let cx = manager.call_context("user");
            let set = manager
                .provider()
                .apply_token_by_code(&cx, &AuthCode::new(code))
                .await?;
            println!("authorization code exchanged");
            set
        }
        (None, Some(refresh)) => {
            manager
                .insert_refresh_token("user", RefreshToken::new(refresh))
                .await?;
            println!("refreshed");
            manager.token_set("user").await?
        }
        (None, None) => {
            return Err("set ALIPAYPLUS_AUTH_CODE or ALIPAYPLUS_REFRESH_TOKEN".into());
        }
    };
    let at = |t: Option<time::OffsetDateTime>| t.map_or("(not said)".into(), format_rfc3339);
    println!(
        "access token expires at {}, refresh token at {}, customerId {:?}",
        at(set.access_expires_at),
        at(set.refresh_expires_at),
        set.extras.customer_id
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
    const APPLY: &str = "/aps/api/v1/authorizations/applyToken";
    let clock = ManualClock::default();
    let mpp = AlipayPlusSandbox::new();
    let issuer =
        AlipayPlusSandbox::issuer_config().with_refresh_ttl(Some(Duration::from_secs(7200)));
    let sandbox = mpp
        .routes(
            Sandbox::builder()
                .clock(Arc::new(clock.clone()))
                .issuer_config(issuer),
        )
        .start()
        .await?;
    let config = mpp
        .config(&sandbox)
        .with_authorize_url("https://merchant.example/alipayplus/consent".parse()?);
    let manager = TokenManager::builder(AlipayPlus::new(config)?)
        .shared_client(sandbox.client())
        .clock(Arc::new(clock.clone()))
        .build()?;
    let advance = |secs: i64| clock.advance(time::Duration::seconds(secs));

    // 1. The user consents at the MPP; the client exchanges the code (signed both ways).
    let extras = AlipayExtras {
        customer_id: Some("2789808900000000000000001".into()),
        user_login_id: Some("62-***2736".into()),
    };
    let code = mpp.authorize(&sandbox, "user-42", extras.clone()).await?;
    let first = manager
        .provider()
        .apply_token_by_code(&manager.call_context("user-42"), &code)
        .await?;
    check(
        "AUTHORIZATION_CODE gives the first pair",
        first.extras == extras && first.refresh_expires_at.is_some(),
        format!("customerId {:?}", first.extras.customer_id),
    )?;
    manager.insert("user-42", first.clone()).await?;

    // 2. An hour later: REFRESH_TOKEN, a new pair, the old one invalid.
    advance(3601);
    let second = manager.token_set("user-42").await?;
    let old_dead = sandbox
        .issuer()
        .authenticate(first.access_token.expose_secret())
        .await
        .is_err();
    check(
        "REFRESH_TOKEN rotates the pair",
        second.refresh_token != first.refresh_token && old_dead,
        format!(
            "applyToken calls: {}, old access token refused: {old_dead}",
            sandbox.calls(APPLY)
        ),
    )?;

    // 3. The MPP rotates but answers `U`: the same request again gets the same pair.
    advance(3601);
    mpp.answer_unknown_next(1);
    let token = manager.access_token("user-42").await?;
    let accepted = sandbox
        .issuer()
        .authenticate(token.expose_secret())
        .await
        .is_ok();
    check(
        "a `U` answer is recovered inside the reuse window",
        accepted && sandbox.calls(APPLY) == 4,
        format!(
            "applyToken calls: {}, token accepted: {accepted}",
            sandbox.calls(APPLY)
        ),
    )?;

    // 4. Left idle past the refresh token's life: the expired refresh token is tried once
    // (the MPP decides, not the local clock), the MPP refuses it, and that is re-auth.
    advance(3 * 3600);
    let error = manager
        .access_token("user-42")
        .await
        .err()
        .ok_or("the dead session still answered a token")?;
    let url = error.reauth().and_then(|r| r.authorize_url.clone());
    check(
        "an expired refresh token asks for re-auth",
        url.is_some() && sandbox.calls(APPLY) == 5,
        format!("{} -> {}", error.kind(), url.unwrap_or_default()),
    )?;
    println!("\nAlipay+ sandbox: every step behaved as described.");
    Ok(())
}
