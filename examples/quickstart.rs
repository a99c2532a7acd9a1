//! A session's whole life, against the embedded sandbox: no setup, no network.
//!
//! `cargo run --example quickstart` prints one line per step, with the sandbox's call counts
//! as evidence, and exits 0 only if every step behaved as described.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use token_core::issuer::IssuerConfig;
use token_core::middleware::BearerAuth;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox, SandboxOAuth};
use token_core::{
    clock::ManualClock, error::ErrorKind, manager::Event, manager::ManagerConfig,
    manager::TokenManager, store::FileStore, token_set::TokenSet,
};

const SESSION: &str = "customer-42";
const REUSE_WINDOW: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(report) => {
            println!("\n{report}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("\nFAILED: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Counts steps and stops at the first one that did not behave as described.
struct Steps {
    done: Vec<&'static str>,
}

impl Steps {
    fn check(&mut self, name: &'static str, ok: bool, evidence: String) -> Result<(), String> {
        println!("[{}] {name:<48} {evidence}", if ok { "ok" } else { "!!" });
        if !ok {
            return Err(format!(
                "step `{name}` did not behave as described ({evidence})"
            ));
        }
        self.done.push(name);
        Ok(())
    }
}

struct World {
    sandbox: RunningSandbox,
    /// The provider's and the application's clock, moved forward by the steps.
    clock: ManualClock,
    store_dir: tempfile::TempDir,
}

impl World {
    fn advance(&self, by: Duration) {
        self.clock
            .advance(time::Duration::try_from(by).unwrap_or_default());
    }

    fn token_calls(&self) -> u64 {
        self.sandbox.calls(TOKEN_PATH)
    }

    fn manager(&self) -> Result<TokenManager<SandboxOAuth>, String> {
        let provider = SandboxOAuth::new(self.sandbox.base_url()).with_reuse_window(REUSE_WINDOW);
        TokenManager::builder(provider)
            .store(FileStore::open(self.store_dir.path()).map_err(|e| e.to_string())?)
            .clock(Arc::new(self.clock.clone()))
            .config(
                ManagerConfig::default()
                    .with_refresh_skew(Duration::from_secs(120), Duration::from_secs(30)),
            )
            .build()
            .map_err(|e| e.to_string())
    }
}

async fn run() -> Result<String, String> {
    let clock = ManualClock::default();
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .issuer_config(
            IssuerConfig::default()
                .with_access_ttl(Duration::from_secs(3600))
                .with_refresh_ttl(Some(Duration::from_secs(30 * 24 * 3600)))
                .with_reuse_window(REUSE_WINDOW),
        )
        .start()
        .await
        .map_err(|e| e.to_string())?;
    println!("sandbox provider listening on {}", sandbox.base_url());
    let world = World {
        sandbox,
        clock,
        store_dir: tempfile::tempdir().map_err(|e| e.to_string())?,
    };
    let mut steps = Steps { done: Vec::new() };
    let manager = world.manager()?;
    let mut events = manager.subscribe();
    // The sandbox is on loopback: no proxy from the environment in between.
    let client = reqwest::Client::builder().no_proxy().build();
    let api = reqwest_middleware::ClientBuilder::new(client.map_err(|e| e.to_string())?)
        .with(BearerAuth::new(manager.clone(), SESSION))
        .build();
    let balance = world.sandbox.url("/api/balance");
    let get = |api: reqwest_middleware::ClientWithMiddleware, url: reqwest::Url| async move {
        api.get(url)
            .send()
            .await
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    };

    // 1. First tokens: what an authorization-code exchange hands the application.
    let first = world
        .sandbox
        .issue(SESSION)
        .await
        .map_err(|e| e.to_string())?;
    let first = TokenSet::from_stored(first).map_err(|e| e.to_string())?;
    manager
        .insert(SESSION, first.clone())
        .await
        .map_err(|e| e.to_string())?;
    steps.check(
        "first tokens stored",
        true,
        format!("access token {}", first.access_token.fingerprint()),
    )?;

    // 2. API calls carry the bearer token; no refresh is needed.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(api.clone(), balance.clone()).await?);
    }
    steps.check(
        "3 API calls with the bearer token",
        statuses.iter().all(|s| *s == StatusCode::OK) && world.token_calls() == 0,
        format!(
            "api calls {}, refresh calls {}",
            world.sandbox.calls("/api/balance"),
            world.token_calls()
        ),
    )?;

    // 3. Near expiry: the caller keeps the valid token, one refresh runs in the background.
    world.advance(Duration::from_secs(3600 - 60));
    let served = manager
        .access_token(SESSION)
        .await
        .map_err(|e| e.to_string())?;
    let refreshed = wait_for(&mut events, |e| matches!(e, Event::Refreshed { .. })).await;
    let now = manager
        .access_token(SESSION)
        .await
        .map_err(|e| e.to_string())?;
    steps.check(
        "proactive refresh before expiry",
        served == first.access_token
            && refreshed
            && now != first.access_token
            && world.token_calls() == 1,
        format!(
            "served the old token once, then {}; refresh calls {}",
            now.fingerprint(),
            world.token_calls()
        ),
    )?;

    // 4. The provider refuses the token (revoked early, say): 401, one refresh, one resend.
    world
        .sandbox
        .fail_next("/api/balance", 1, Failure::new(StatusCode::UNAUTHORIZED));
    let before = world.token_calls();
    let status = get(api.clone(), balance.clone()).await?;
    steps.check(
        "401 answered by refresh and resend",
        status == StatusCode::OK && world.token_calls() == before + 1,
        format!("status {status}, refresh calls {}", world.token_calls()),
    )?;

    // 5. The rotated pair is on disk: a restarted application picks it up without a refresh.
    let rotated = manager
        .token_set(SESSION)
        .await
        .map_err(|e| e.to_string())?;
    let restarted = world.manager()?;
    let reloaded = restarted
        .token_set(SESSION)
        .await
        .map_err(|e| e.to_string())?;
    steps.check(
        "rotated pair persisted and reloaded",
        reloaded.refresh_token == rotated.refresh_token && world.token_calls() == before + 1,
        format!(
            "refresh token {} reloaded from {}",
            fp(&reloaded),
            world.store_dir.path().display()
        ),
    )?;
    drop(restarted);

    // 6. The refresh answer is lost after the provider rotated: retried inside the reuse window.
    world.advance(Duration::from_secs(3600));
    world.sandbox.drop_next(TOKEN_PATH, 1);
    let before = world.token_calls();
    let recovered = manager.access_token(SESSION).await;
    let grant = match &recovered {
        Ok(token) => world
            .sandbox
            .issuer()
            .authenticate(token.expose_secret())
            .await
            .is_ok(),
        Err(_) => false,
    };
    steps.check(
        "lost refresh answer recovered in the reuse window",
        grant && world.token_calls() == before + 2,
        format!(
            "refresh calls +{} (one lost, one retried), no re-auth",
            world.token_calls() - before
        ),
    )?;

    // 7. 100 concurrent API calls on an expired token share one refresh.
    world.advance(Duration::from_secs(3600));
    let before = world.token_calls();
    let api_before = world.sandbox.calls("/api/balance");
    let calls: Vec<_> = (0..100)
        .map(|_| tokio::spawn(get(api.clone(), balance.clone())))
        .collect();
    let mut all_ok = true;
    for call in calls {
        all_ok &= matches!(call.await, Ok(Ok(StatusCode::OK)));
    }
    steps.check(
        "100 concurrent calls share one refresh",
        all_ok && world.token_calls() == before + 1,
        format!(
            "api calls +{}, refresh calls +{}",
            world.sandbox.calls("/api/balance") - api_before,
            world.token_calls() - before
        ),
    )?;

    // 8. Past the refresh token's lifetime: re-authorization is required, and said once.
    world.advance(Duration::from_secs(31 * 24 * 3600));
    let before = world.token_calls();
    let error = manager.access_token(SESSION).await.err();
    let reauth = error.as_ref().and_then(|e| e.reauth()).cloned();
    let signalled = wait_for(&mut events, |e| matches!(e, Event::ReauthRequired(_))).await;
    steps.check(
        "expired refresh token surfaces re-auth",
        error
            .as_ref()
            .is_some_and(|e| e.kind() == ErrorKind::ReauthRequired)
            && signalled
            && reauth.is_some(),
        format!(
            "{}; refresh calls +{}",
            reauth
                .and_then(|r| r.authorize_url)
                .unwrap_or_else(|| "no authorize URL".into()),
            world.token_calls() - before
        ),
    )?;

    // A normal exit: refreshes still under way finish and are saved first.
    manager
        .shutdown(Duration::from_secs(5))
        .await
        .map_err(|e| format!("shutdown: {e}"))?;

    Ok(format!(
        "{} of 8 steps behaved as described; the sandbox saw {} refresh calls and {} API calls.",
        steps.done.len(),
        world.token_calls(),
        world.sandbox.calls("/api/balance")
    ))
}

fn fp<X>(set: &TokenSet<X>) -> String {
    set.refresh_token
        .as_ref()
        .map(|t| t.fingerprint().to_string())
        .unwrap_or_default()
}

/// Waits (bounded) for an event matching `want`.
async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if want(&event) {
            return true;
        }
    }
    false
}
