//! One process of the chaos test (`tests/tests/chaos.rs`): a `TokenManager` over a store
//! shared with the other workers (a `FileStore` directory or a PostgreSQL schema), refreshing
//! a handful of sessions against the sandbox run by the test process.
//!
//! ```text
//! chaos_worker --index N --base-url URL --sessions s0,s1,... --seed N --lease-ttl-ms MS
//!              --panic-hook 0|1 --reuse-window-ms MS
//!              (--store file --dir DIR | --store postgres --db URL --schema NAME)
//! ```
//!
//! Every call to the sandbox carries an `x-chaos-worker: N` header, so the test knows whose
//! refresh answer it holds back (and which process to kill while it does).
//!
//! Commands on stdin, one per line: `go` (start calling), `refresh S` (force a refresh of
//! session S), `insert S SUBJECT SET` (insert SET, a stored set as one line of JSON issued
//! to SUBJECT by the test's sandbox, as S's set), `mark` (start the liveness window), `stop` (graceful shutdown, then exit 0).
//! When stdin closes early (the test went away) the worker exits at once.
//!
//! Lines on stdout, machine-readable, never a token (fingerprints are 16 hex digits of the
//! token's SHA-256):
//!
//! ```text
//! ready
//! event S refreshed V|-          event S adopted V          event S reauth -
//! event S refresh_failed - KIND  event S persist_failed -   event S persisted V
//! reauth-seen S V|- verdict|tokens:FP|absent|error:KIND   (the store, read after a re-auth)
//! fault hook-panic S                                       (the injected hook panic)
//! fail S KIND MESSAGE                                      (first failure of a kind per session)
//! refreshed-now S ok|err KIND     inserted S SUBJECT ok|err KIND MESSAGE
//! calls S ok=N err=N              live S ok|no LASTKIND    (calls since `mark`)
//! stopping                                               (callers gone, about to drain)
//! shutdown ok|err KIND MESSAGE
//! final S tokens V FP|verdict V|absent|error KIND          (the store after shutdown)
//! bye
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use token_core::issuer::TokenHash;
use token_core::postgres::PostgresDatabase;
use token_core::sandbox::SandboxOAuth;
use token_core::store::{PostgresStore, SessionKey, StoredRecord, TokenStore};
use token_core::transport::ReqwestClient;
use token_core::{
    error::Error, manager::Event, manager::ManagerConfig, manager::RetryPolicy,
    manager::TokenManager, store::FileStore, token_set::StoredTokenSet, token_set::TokenSet,
};

/// The provider name, the first half of every session key.
const PROVIDER: &str = "sandbox-oauth";
/// The longest a worker runs before giving up.
const DEADLINE: Duration = Duration::from_secs(150);
/// The longest one `access_token` call may take in the calling loops.
const CALL_BOUND: Duration = Duration::from_secs(30);
/// How long a graceful shutdown may wait for refreshes in flight.
const SHUTDOWN_WITHIN: Duration = Duration::from_secs(5);

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The test reads lines as they come: flush each one.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fingerprint(token: &str) -> String {
    TokenHash::of(token).to_hex()[..16].to_owned()
}

/// A one-line error text (messages hold no secret; newlines would break the protocol).
fn one_line(error: &Error) -> String {
    error.to_string().replace(['\n', '\r'], " ")
}

/// A small seeded generator (xorshift64*), so a `CHAOS_SEED` reproduces the call pattern.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
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
        .unwrap_or_else(|| panic!("chaos_worker: missing --{name}"))
}

/// What the calling loop of one session saw.
#[derive(Default)]
struct Calls {
    ok: u64,
    err: u64,
    /// A call succeeded since the last `mark`.
    ok_since_mark: bool,
    /// The kind of the last failure.
    last_err: Option<String>,
    /// The kinds already reported with a `fail` line.
    reported: HashSet<String>,
}

type Stats = Arc<Mutex<HashMap<String, Calls>>>;

fn stats_of<'a>(stats: &'a mut HashMap<String, Calls>, session: &str) -> &'a mut Calls {
    stats.entry(session.to_owned()).or_default()
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
                say("error the worker ran out of time");
                3
            }
        }
    });
    // The application's end: whatever still runs on its runtime is cut off here, as at a
    // process exit. (What the store holds is read afterwards, on a runtime of its own.)
    runtime.shutdown_background();
    if code == 0 {
        let after = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        after.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(20), final_lines(&args)).await;
        });
        say("bye");
    }
    std::process::exit(code);
}

/// `final` lines: what the store holds for every session once the manager is gone.
async fn final_lines(args: &HashMap<String, String>) {
    let store = open_store(args).await;
    for session in arg(args, "sessions").split(',') {
        let key = SessionKey::new(PROVIDER, session);
        let line = match store.load(&key).await {
            Ok(Some(record)) => match &record.value {
                StoredRecord::Tokens(set) => format!(
                    "tokens {} {}",
                    record.version,
                    set.refresh_token
                        .as_ref()
                        .map_or_else(|| "none".to_owned(), |t| fingerprint(t.expose_secret()))
                ),
                _ => format!("verdict {}", record.version),
            },
            Ok(None) => "absent".to_owned(),
            Err(error) => format!("error {}", Error::from(error).kind()),
        };
        say(&format!("final {session} {line}"));
    }
}

async fn open_store(args: &HashMap<String, String>) -> Arc<dyn TokenStore> {
    match arg(args, "store") {
        "file" => Arc::new(FileStore::open(arg(args, "dir")).expect("the file store opens")),
        "postgres" => {
            let db = PostgresDatabase::builder(arg(args, "db"))
                .expect("a valid database URL")
                .schema(arg(args, "schema"))
                .application_name("chaos_worker")
                .max_connections(4)
                .operation_timeout(Duration::from_secs(3))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("a valid schema");
            Arc::new(PostgresStore::open(&db).await.expect("the store opens"))
        }
        other => panic!("chaos_worker: unknown store {other}"),
    }
}

async fn run(args: &HashMap<String, String>) -> i32 {
    let index: u64 = arg(args, "index").parse().expect("an index");
    let seed: u64 = arg(args, "seed").parse().expect("a seed");
    let base_url = url::Url::parse(arg(args, "base-url")).expect("a valid base URL");
    let sessions: Vec<String> = arg(args, "sessions")
        .split(',')
        .map(str::to_owned)
        .collect();
    let lease_ttl = Duration::from_millis(arg(args, "lease-ttl-ms").parse().expect("ms"));
    let panic_hook = arg(args, "panic-hook") == "1";
    let reuse_window = Duration::from_millis(arg(args, "reuse-window-ms").parse().expect("ms"));
    let store = open_store(args).await;

    // Events are printed by the hook, in the task where they happen. One worker's hook
    // panics once (after printing), on its first refresh: a fault the manager must survive.
    let panic_armed = Arc::new(AtomicBool::new(panic_hook));
    let (reauth_tx, mut reauth_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let hook = {
        let panic_armed = panic_armed.clone();
        move |event: &Event| {
            let version = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            let session = event.session().to_owned();
            match event {
                Event::Refreshed { version: v, .. } => {
                    say(&format!("event {session} refreshed {}", version(*v)));
                    if panic_armed.swap(false, Ordering::SeqCst) {
                        say(&format!("fault hook-panic {session}"));
                        panic!("chaos_worker: the on_event hook panics once (injected fault)");
                    }
                }
                Event::Adopted { version: v, .. } => {
                    say(&format!("event {session} adopted {v}"));
                }
                Event::ReauthRequired(_) => {
                    say(&format!("event {session} reauth -"));
                    let _ = reauth_tx.send(session);
                }
                Event::RefreshFailed { kind, .. } => {
                    say(&format!("event {session} refresh_failed - {kind}"));
                }
                Event::PersistFailed { .. } => say(&format!("event {session} persist_failed -")),
                Event::Persisted { version: v, .. } => {
                    say(&format!("event {session} persisted {v}"));
                }
                _ => say(&format!("event {session} other -")),
            }
        }
    };
    let config = ManagerConfig::default()
        .with_refresh_skew(Duration::from_millis(1000), Duration::from_millis(500))
        .with_lease_ttl(lease_ttl)
        .with_failure_cooldown(Duration::from_millis(500))
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
                .with_deadline(Duration::from_secs(20)),
        );
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-chaos-worker",
        http::HeaderValue::from_str(&index.to_string()).expect("a header value"),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("an HTTP client");
    let manager =
        TokenManager::builder(SandboxOAuth::new(base_url.clone()).with_reuse_window(reuse_window))
            .client(ReqwestClient::from_client(client))
            .shared_store(store.clone())
            .config(config)
            .on_event(hook)
            .build()
            .expect("a manager");

    // After a re-auth, what does the store hold? (Tells a verdict shared by every process
    // from one declared while a valid pair was stored.)
    let reauth_reader = {
        let store = store.clone();
        tokio::spawn(async move {
            while let Some(session) = reauth_rx.recv().await {
                let key = SessionKey::new(PROVIDER, session.as_str());
                let seen = match store.load(&key).await {
                    Ok(Some(record)) => match &record.value {
                        StoredRecord::Tokens(set) => format!(
                            "{} tokens:{}",
                            record.version,
                            set.refresh_token.as_ref().map_or_else(
                                || "none".to_owned(),
                                |t| fingerprint(t.expose_secret())
                            )
                        ),
                        _ => format!("{} verdict", record.version),
                    },
                    Ok(None) => "- absent".to_owned(),
                    Err(error) => format!("- error:{}", Error::from(error).kind()),
                };
                say(&format!("reauth-seen {session} {seen}"));
            }
        })
    };

    // Commands from the test, read on a thread of their own; stdin closing means the test
    // went away.
    let (commands_tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if commands_tx.send(line.trim().to_owned()).is_err() {
                return;
            }
        }
        std::process::exit(4);
    });
    say("ready");
    match commands.recv().await.as_deref() {
        Some("go") => {}
        _ => return 4,
    }

    let stats: Stats = Arc::new(Mutex::new(HashMap::new()));
    let mark = Arc::new(AtomicU64::new(0));
    let mut loops = tokio::task::JoinSet::new();
    for (n, session) in sessions.iter().enumerate() {
        let manager = manager.clone();
        let session = session.clone();
        let stats = stats.clone();
        let mark = mark.clone();
        let mut rng = Rng::new(seed ^ (index << 32) ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9));
        loops.spawn(async move {
            let started = Instant::now();
            let mut seen_mark = 0;
            while started.elapsed() < DEADLINE {
                let result = tokio::time::timeout(CALL_BOUND, manager.access_token(&session)).await;
                let now_mark = mark.load(Ordering::SeqCst);
                {
                    let mut all = stats.lock().unwrap_or_else(|p| p.into_inner());
                    let calls = stats_of(&mut all, &session);
                    if now_mark != seen_mark {
                        // A call that started before the mark does not count for the window.
                        seen_mark = now_mark;
                        calls.ok_since_mark = false;
                        calls.last_err = None;
                    } else {
                        match &result {
                            Ok(Ok(_)) => {
                                calls.ok += 1;
                                calls.ok_since_mark = true;
                            }
                            Ok(Err(error)) => {
                                calls.err += 1;
                                let kind = error.kind().to_string();
                                if calls.reported.insert(kind.clone()) {
                                    say(&format!("fail {session} {kind} {}", one_line(error)));
                                }
                                calls.last_err = Some(kind);
                            }
                            Err(_) => {
                                calls.err += 1;
                                if calls.reported.insert("timeout".into()) {
                                    say(&format!(
                                        "fail {session} timeout the call took over {CALL_BOUND:?}"
                                    ));
                                }
                                calls.last_err = Some("timeout".into());
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.range(80, 200))).await;
            }
        });
    }

    let mut side_tasks = tokio::task::JoinSet::new();
    loop {
        let Some(command) = commands.recv().await else {
            return 4;
        };
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["refresh", session] => {
                let manager = manager.clone();
                let session = (*session).to_owned();
                side_tasks.spawn(async move {
                    match manager.refresh_now(&session).await {
                        Ok(_) => say(&format!("refreshed-now {session} ok")),
                        Err(error) => say(&format!("refreshed-now {session} err {}", error.kind())),
                    }
                });
            }
            ["insert", session, subject, login] => {
                let manager = manager.clone();
                let session = (*session).to_owned();
                let subject = (*subject).to_owned();
                let login = serde_json::from_str::<StoredTokenSet>(login)
                    .and_then(TokenSet::from_stored)
                    .map_err(|e| Error::Config(format!("not a stored set: {e}")));
                side_tasks.spawn(async move {
                    let result = match login {
                        Ok(set) => manager.insert(&session, set).await,
                        Err(error) => Err(error),
                    };
                    match result {
                        Ok(()) => say(&format!("inserted {session} {subject} ok")),
                        Err(error) => say(&format!(
                            "inserted {session} {subject} err {} {}",
                            error.kind(),
                            one_line(&error)
                        )),
                    }
                });
            }
            ["mark"] => {
                mark.fetch_add(1, Ordering::SeqCst);
            }
            ["stop"] => break,
            _ => say(&format!("error unknown command {command:?}")),
        }
    }

    // A normal shutdown: the callers go away, then the manager drains.
    loops.abort_all();
    while loops.join_next().await.is_some() {}
    side_tasks.abort_all();
    while side_tasks.join_next().await.is_some() {}
    say("stopping");
    // The graceful shutdown: no new refresh, those in flight finished and persisted.
    match manager.shutdown(SHUTDOWN_WITHIN).await {
        Ok(()) => say("shutdown ok"),
        Err(error) => say(&format!(
            "shutdown err {} {}",
            error.kind(),
            one_line(&error)
        )),
    }
    {
        let all = stats.lock().unwrap_or_else(|p| p.into_inner());
        for session in &sessions {
            let (ok, err, live, last) = all.get(session).map_or((0, 0, false, None), |c| {
                (c.ok, c.err, c.ok_since_mark, c.last_err.clone())
            });
            say(&format!("calls {session} ok={ok} err={err}"));
            say(&format!(
                "live {session} {} {}",
                if live { "ok" } else { "no" },
                last.unwrap_or_else(|| "-".to_owned())
            ));
        }
    }
    reauth_reader.abort();
    0
}
