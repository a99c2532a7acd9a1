//! One replica of a service, for the multi-process tests of the PostgreSQL token store
//! (`tests/tests/postgres.rs`): a `TokenManager` over a `PostgresStore`, refreshing against a
//! sandbox started by the test process.
//!
//! ```text
//! pg_replica --db URL --schema NAME --base-url URL --session NAME --tasks N --lease-ttl-ms MS
//! ```
//!
//! Protocol on stdout, one line each: `ready` once the store is open; then it waits for a line
//! `go` on stdin; `lease acquired` whenever this replica takes the refresh lease and `lease waiting` whenever
//! another replica holds it; at the end
//! `tasks ok=N err=N distinct=N`, `error <message>` per failed task (messages hold no secret),
//! and `final <access fingerprint> <refresh fingerprint>` for the session's set. Fingerprints
//! are the first 16 hex digits of the token's SHA-256, never the token. Exits 0 when every
//! task got a token; when stdin closes early (the test went away) or after a bound, it exits.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::time::Duration;

use async_trait::async_trait;
use token_core::issuer::TokenHash;
use token_core::postgres::PostgresDatabase;
use token_core::sandbox::SandboxOAuth;
use token_core::store::{
    Lease, PostgresStore, SessionKey, StoredRecord, TokenStore, Version, Versioned,
};
use token_core::{error::StoreError, manager::ManagerConfig, manager::TokenManager};

/// The longest a replica runs before giving up.
const DEADLINE: Duration = Duration::from_secs(90);

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The test reads lines as they come: flush each one.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fingerprint(token: &str) -> String {
    TokenHash::of(token).to_hex()[..16].to_owned()
}

/// The store, announcing on stdout every lease this replica takes.
struct Announcing(PostgresStore);

#[async_trait]
impl TokenStore for Announcing {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.0.load(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.0.save(key, record, expected).await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.0.delete(key, expected).await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let lease = self.0.acquire_lease(key, holder, ttl).await?;
        match lease {
            Lease::Acquired => say("lease acquired"),
            _ => say("lease waiting"),
        }
        Ok(lease)
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        self.0.release_lease(key, holder).await
    }
}

fn args() -> HashMap<String, String> {
    let mut args = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let (Some(name), Some(value)) = (it.next(), it.next()) {
        args.insert(name.trim_start_matches("--").to_owned(), value);
    }
    args
}

fn arg<'a>(args: &'a HashMap<String, String>, name: &str) -> &'a str {
    args.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("pg_replica: missing --{name}"))
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(async {
        match tokio::time::timeout(DEADLINE, run(&args)).await {
            Ok(code) => code,
            Err(_) => {
                say("error the replica ran out of time");
                3
            }
        }
    });
    std::process::exit(code);
}

async fn run(args: &HashMap<String, String>) -> i32 {
    let db = PostgresDatabase::builder(arg(args, "db"))
        .expect("a valid database URL")
        .schema(arg(args, "schema"))
        .application_name("pg_replica")
        .max_connections(4)
        .build()
        .expect("a valid schema");
    let store = PostgresStore::open(&db).await.expect("the store opens");
    let base_url = url::Url::parse(arg(args, "base-url")).expect("a valid base URL");
    let session = arg(args, "session").to_owned();
    let tasks: usize = arg(args, "tasks").parse().expect("a number of tasks");
    let ttl = Duration::from_millis(arg(args, "lease-ttl-ms").parse().expect("a ttl in ms"));
    let manager = TokenManager::builder(SandboxOAuth::new(base_url))
        .store(Announcing(store))
        .config(ManagerConfig::default().with_lease_ttl(ttl))
        .build()
        .expect("a manager");

    // Wait for the word, then keep watching stdin: the test closing it means it went away.
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::stdin().lock().lines();
        if let Some(Ok(line)) = lines.next()
            && line.trim() == "go"
        {
            let _ = go_tx.send(());
        }
        for _ in lines.by_ref() {}
        std::process::exit(4);
    });
    say("ready");
    if go_rx.await.is_err() {
        return 4;
    }

    let mut running = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let manager = manager.clone();
        let session = session.clone();
        running.spawn(async move { manager.access_token(&session).await });
    }
    let (mut ok, mut failed, mut distinct) = (0, 0, BTreeSet::new());
    while let Some(result) = running.join_next().await {
        match result {
            Ok(Ok(token)) => {
                ok += 1;
                distinct.insert(fingerprint(token.expose_secret()));
            }
            Ok(Err(error)) => {
                failed += 1;
                say(&format!("error {error}"));
            }
            Err(panic) => {
                failed += 1;
                say(&format!("error task failed: {panic}"));
            }
        }
    }
    say(&format!(
        "tasks ok={ok} err={failed} distinct={}",
        distinct.len()
    ));
    match manager.token_set(&session).await {
        Ok(set) => {
            let refresh = set
                .refresh_token
                .as_ref()
                .map_or_else(|| "none".to_owned(), |t| fingerprint(t.expose_secret()));
            say(&format!(
                "final {} {refresh}",
                fingerprint(set.access_token.expose_secret())
            ));
        }
        Err(error) => say(&format!("error final: {error}")),
    }
    if failed == 0 { 0 } else { 1 }
}
