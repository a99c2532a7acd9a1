//! Maya Mini App customer sessions through the `TokenManager`: the Session URL, the app token
//! and the customer refresh, on two replicas of a partner back-end.
//!
//! `cargo run --example maya` runs against Maya's sandbox on 127.0.0.1 with two replicas, each
//! with its own `TokenManager` and `SessionReceiver` over one shared store, as behind a load
//! balancer: Maya posts a customer's tokens to the Session URL on replica A and, having lost
//! the answer, again on replica B (same `sessionId`); the front-end redeems the `sessionId`
//! once on B; A refreshes the session with the partner's app token; and an expired refresh
//! token shows the re-auth signal with Maya Connect's authorize URL. Each step prints its
//! evidence. The shared store is a `PostgresStore` when `TOKEN_TEST_POSTGRES_URL` is set (in
//! a schema of its own, dropped at the end), otherwise two `FileStore`s on one temporary
//! directory (two processes on one machine).
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
use token_core::postgres::PostgresDatabase;
use token_core::sandbox::{RunningSandbox, Sandbox};
use token_core::store::{FileStore, PostgresStore, TokenStore};
use token_core::{
    clock::Clock, clock::ManualClock, issuer::IssuerConfig, manager::TokenManager,
    secret::ClientSecret, secret::RefreshToken,
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
    let client = Arc::new(token_core::transport::ReqwestClient::new()?);
    let maya = Maya::from_config(
        config,
        client.clone(),
        Arc::new(token_core::clock::SystemClock),
    )?;
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
    manager
        .insert_refresh_token("customer", RefreshToken::new(refresh_token))
        .await?;
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

/// The store every replica opens: PostgreSQL, or a directory on this machine.
enum SharedStore {
    Postgres { url: String, schema: String },
    Directory(tempfile::TempDir),
}

impl SharedStore {
    fn choose() -> Result<Self, Failure> {
        Ok(match std::env::var("TOKEN_TEST_POSTGRES_URL") {
            Ok(url) => Self::Postgres {
                url,
                schema: format!("maya_example_{}", std::process::id()),
            },
            Err(_) => Self::Directory(tempfile::tempdir()?),
        })
    }

    /// What one replica opens at start-up: its own pool, or its own handle on the directory.
    async fn open(&self) -> Result<Arc<dyn TokenStore>, Failure> {
        Ok(match self {
            Self::Postgres { url, schema } => {
                let db = PostgresDatabase::builder(url)?.schema(schema).build()?;
                Arc::new(PostgresStore::open(&db).await?)
            }
            Self::Directory(dir) => Arc::new(FileStore::open(dir.path())?),
        })
    }

    fn describe(&self) -> String {
        match self {
            Self::Postgres { schema, .. } => format!("PostgresStore, schema {schema}"),
            Self::Directory(_) => "FileStore, one directory".into(),
        }
    }

    async fn remove(self) -> Result<(), Failure> {
        if let Self::Postgres { url, schema } = &self {
            examples::drop_schema(url, schema).await?;
        }
        Ok(())
    }
}

async fn in_sandbox() -> Result<(), Failure> {
    let store = SharedStore::choose()?;
    let result = two_replicas(&store).await;
    store.remove().await?;
    result
}

/// One replica of the partner's back-end: its own manager and receiver over the shared store.
async fn replica(
    sandbox: &RunningSandbox,
    config: &MayaConfig,
    store: &SharedStore,
    clock: &Arc<dyn Clock>,
) -> Result<SessionReceiver, Failure> {
    let provider = Maya::from_config(config.clone(), sandbox.client(), clock.clone())?;
    let manager = TokenManager::builder(provider)
        .shared_store(store.open().await?)
        .shared_client(sandbox.client())
        .clock(clock.clone())
        .build()?;
    Ok(SessionReceiver::new(manager))
}

async fn two_replicas(store: &SharedStore) -> Result<(), Failure> {
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
    let replica_a = replica(&sandbox, &config, store, &clock).await?;
    let replica_b = replica(&sandbox, &config, store, &clock).await?;
    let advance = |secs: i64| manual.advance(time::Duration::seconds(secs));
    println!("two replicas over one store ({})", store.describe());

    // 1. Maya POSTs the customer's tokens to the Session URL; the balancer picks replica A.
    let post = new_customer(
        &sandbox,
        "customer-1",
        "https://partner.example/maya/session",
    )
    .await?;
    let retry = {
        let mut retry = http::Request::new(post.body().clone());
        *retry.method_mut() = post.method().clone();
        *retry.headers_mut() = post.headers().clone();
        retry
    };
    let answer = replica_a.receive(post).await;
    let session_id = session_id_of(&answer)?;
    check(
        "Session URL answers a sessionId (replica A)",
        answer.status() == 200 && session_id.len() == 36,
        format!(
            "HTTP {}, sessionId of {} chars",
            answer.status(),
            session_id.len()
        ),
    )?;

    // 2. Maya lost the answer and posts again; the balancer picks replica B.
    let again = replica_b.receive(retry).await;
    check(
        "Maya's retry on replica B: the same sessionId",
        again.status() == 200 && session_id_of(&again)? == session_id,
        format!("HTTP {}, same sessionId", again.status()),
    )?;

    // 3. The front-end redeems it once for the partner's user session, on replica B.
    replica_b.redeem(&session_id, "user-42").await?;
    let again = replica_a.redeem(&session_id, "intruder").await;
    check(
        "a sessionId is redeemed only once (B, then A)",
        matches!(again, Err(RedeemError::AlreadyUsed)),
        format!(
            "second use: {}",
            again.err().map_or("accepted".into(), |e| e.to_string())
        ),
    )?;

    // 4. An hour later replica A refreshes the customer's token with the partner's app token.
    advance(3601);
    let manager = replica_a.manager();
    let token = manager.access_token("user-42").await?;
    check(
        "expired access token refreshed via POST /tokens (A)",
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

    // 5. Left idle past the refresh token's life: re-auth, with the authorize URL.
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

fn session_id_of(answer: &http::Response<Vec<u8>>) -> Result<String, Failure> {
    let body: serde_json::Value = serde_json::from_slice(answer.body())?;
    Ok(body["sessionId"].as_str().unwrap_or_default().to_owned())
}
