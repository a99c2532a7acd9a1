//! A generic OAuth 2.0 server through the `TokenManager`: an authorization code with PKCE,
//! then refreshes.
//!
//! `cargo run --example oauth2` runs against the OAuth 2.0 sandbox on 127.0.0.1: it follows
//! the authorization URL (the sandbox approves at once), exchanges the code with its PKCE
//! verifier, and refreshes twice, printing each step.
//!
//! Against a real server, set all of:
//! - `OAUTH2_CONFIG`: a file with the `OAuth2Config` JSON (see the crate docs), its
//!   `token_url` the server's token endpoint;
//! - `OAUTH2_REFRESH_TOKEN`: a refresh token obtained by logging in;
//!
//! and the example refreshes once and prints the new expiry (never the tokens).

use std::process::ExitCode;
use std::sync::Arc;

use token_core::expiry::format_rfc3339;
use token_core::issuer::IssuerConfig;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::oauth::AUTHORIZE_PATH;
use token_core::{
    clock::SystemClock, manager::TokenManager, secret::AuthCode, secret::RefreshToken,
};
use token_provider_oauth2::{OAuth2, OAuth2Config};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let real = ["OAUTH2_CONFIG", "OAUTH2_REFRESH_TOKEN"].map(|k| std::env::var(k).ok());
    let result = match real {
        [Some(config), Some(refresh)] => real_server(&config, refresh).await,
        _ => sandbox().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn real_server(config: &str, refresh: String) -> Result<(), Failure> {
    let config: OAuth2Config = serde_json::from_str(&std::fs::read_to_string(config)?)?;
    let manager = TokenManager::builder(OAuth2::new(config)).build()?;
    manager
        .insert_refresh_token("example", RefreshToken::new(refresh))
        .await?;
    let set = manager.token_set("example").await?;
    println!(
        "refreshed: access token expires at {}, refresh token {}",
        set.access_expires_at
            .map_or("(not said)".into(), format_rfc3339),
        if set.refresh_token.is_some() {
            "kept or rotated"
        } else {
            "absent"
        },
    );
    Ok(())
}

async fn sandbox() -> Result<(), Failure> {
    let sandbox =
        token_provider_oauth2::sandbox::start(Arc::new(SystemClock), IssuerConfig::default())
            .await?;
    let config = OAuth2Config::new("app-1", sandbox.url(TOKEN_PATH))
        .with_client_secret("s3cret".into())
        .with_authorize_url(sandbox.url(AUTHORIZE_PATH))
        .with_redirect_uri("https://app.example/callback")
        .with_scope("payments");
    let manager = TokenManager::builder(OAuth2::new(config))
        .shared_client(sandbox.client())
        .build()?;

    // 1. Send the user to the authorization URL; the callback brings a code back.
    let authorization = manager.provider().authorization_request("customer-7")?;
    println!("[1] authorize at {}", authorization.url);
    let mut request = http::Request::new(Vec::new());
    *request.uri_mut() = authorization.url.as_str().parse()?;
    let answer = sandbox.client().send(request).await?;
    let callback: url::Url = answer
        .headers()
        .get(http::header::LOCATION)
        .ok_or("no redirect")?
        .to_str()?
        .parse()?;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| AuthCode::new(v.into_owned()))
        .ok_or("no code")?;
    println!("[2] callback {}?code=…&state=customer-7", callback.path());

    // 2. Exchange the code with the PKCE verifier and store the set.
    let cx = manager.call_context("customer-7");
    let set = manager
        .provider()
        .exchange_code(&cx, &code, Some(&authorization.verifier))
        .await?;
    manager.insert("customer-7", set).await?;
    println!(
        "[3] code exchanged: {} token call",
        sandbox.calls(TOKEN_PATH)
    );

    // 3. Refresh (rotating the refresh token each time).
    for round in 1..=2 {
        let before = manager.token_set("customer-7").await?.refresh_token;
        manager.refresh_now("customer-7").await?;
        let after = manager.token_set("customer-7").await?.refresh_token;
        println!(
            "[{}] refreshed, refresh token rotated: {}, token calls: {}",
            3 + round,
            before != after,
            sandbox.calls(TOKEN_PATH)
        );
    }
    let token = manager.access_token("customer-7").await?;
    sandbox.issuer().authenticate(token.expose_secret()).await?;
    println!("[6] the provider accepts the current access token");
    Ok(())
}
