//! Benchmarks: numbers, printed, for `BENCHMARKS.md`. Not tests: nothing here asserts a time.
//!
//! ```text
//! cargo run --release -p examples --example bench -- all
//! cargo run --release -p examples --example bench -- access-token | middleware | herd | sessions | decode
//! TOKEN_TEST_POSTGRES_URL=postgresql://... cargo run --release -p examples --example bench -- postgres
//! ```
//!
//! - `access-token`: `TokenManager::access_token` on a fresh token, ns per call on 1 and on 16
//!   tasks, beside a `Mutex<HashMap>` and an `RwLock<HashMap>` cache in the same run.
//! - `middleware`: requests per second through `BearerAuth` and through plain reqwest (the
//!   same bearer header set by hand) to the same loopback sandbox `/api/` route, and the ratio.
//! - `herd`: 10,000 concurrent callers on an expired token over the loopback socket: the
//!   refresh calls the sandbox saw (must be 1) and the callers' p50/p99 wait.
//! - `sessions`: 1,000,000 sessions in a `MemoryStore`, then in a manager (its cache and its
//!   store): live heap bytes per session (a counting allocator), RSS growth per session
//!   (`/proc/self/statm`), and the lookup time. Each part runs in a child process so one
//!   part's freed memory does not hide the next part's growth.
//! - `decode`: `codec::decode_response` of each provider's seed answer, ns per response.
//! - `postgres`: `PostgresStore` round trips against the server at `TOKEN_TEST_POSTGRES_URL`
//!   (`source .ci/postgres.sh && postgres_start` starts one on 127.0.0.1): `save` of a new
//!   session, `load`, compare-and-swap `save`, `acquire_lease` and `release_lease`, each µs per
//!   call (p50/p99) on one task, then calls per second on 16 tasks. Skipped, with a message,
//!   without the variable. Not part of `all`: it needs the server.
//!
//! A debug build runs the same code on a hundredth of the work, so CI can build and even run
//! it quickly; its numbers mean nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use token_core::codec::{Endpoint, decode_response};
use token_core::middleware::BearerAuth;
use token_core::postgres::PostgresDatabase;
use token_core::sandbox::oauth::{RefreshGrant, TOKEN_PATH};
use token_core::sandbox::{Sandbox, SandboxOAuth};
use token_core::store::{
    Lease, MemoryStore, PostgresStore, SessionKey, StoredRecord, TokenStore, Version,
};
use token_core::{AccessToken, ManualClock, RefreshToken, StoredTokenSet, TokenManager, TokenSet};

/// Counts live heap bytes, so the sessions benchmark measures exactly what it keeps.
struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the same arguments; the counter only observes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Work is divided by this in a debug build.
const DEBUG_DIVISOR: usize = if cfg!(debug_assertions) { 100 } else { 1 };

fn scaled(n: usize) -> usize {
    (n / DEBUG_DIVISOR).max(1)
}

type BenchResult = Result<(), String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    if cfg!(debug_assertions) {
        println!("(debug build: a hundredth of the work; these numbers mean nothing)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("could not start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match which {
        "all" => runtime.block_on(async {
            access_token().await?;
            middleware().await?;
            herd().await?;
            decode();
            Ok(())
        }),
        "access-token" => runtime.block_on(access_token()),
        "middleware" => runtime.block_on(middleware()),
        "herd" => runtime.block_on(herd()),
        "decode" => {
            decode();
            Ok(())
        }
        "postgres" => runtime.block_on(postgres()),
        "sessions" => Ok(()),
        "sessions-store" => runtime.block_on(sessions_store()),
        "sessions-manager" => runtime.block_on(sessions_manager()),
        other => Err(format!(
            "unknown benchmark `{other}`: all, access-token, middleware, herd, sessions, decode, postgres"
        )),
    };
    // The sessions parts run in child processes (after the others, on a quieter heap).
    let result = result.and_then(|()| match which {
        "all" | "sessions" => sessions(),
        _ => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- helpers --------------------------------------------------------------------------------

fn ns_per(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Token-like values of realistic length (the issuer's are 46 characters).
struct TokenGen(u64);

impl TokenGen {
    fn next_u64(&mut self) -> u64 {
        // xorshift64*: cheap and deterministic; nothing here needs more.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn token(&mut self, prefix: &str) -> String {
        format!(
            "{prefix}{:016x}{:016x}{:011x}",
            self.next_u64(),
            self.next_u64(),
            self.next_u64() >> 20
        )
    }

    fn set(&mut self, now: time::OffsetDateTime) -> StoredTokenSet {
        let mut set = TokenSet::new(AccessToken::new(self.token("at_")))
            .with_refresh_token(RefreshToken::new(self.token("rt_")))
            .with_access_expires_at(now + time::Duration::hours(1))
            .with_token_type("Bearer")
            .with_extras(serde_json::Value::Null);
        set.refresh_expires_at = Some(now + time::Duration::days(30));
        set
    }
}

fn unused_provider() -> Result<SandboxOAuth, String> {
    // Nothing listens here: the benchmarks that use it never refresh.
    let url = url_parse("http://127.0.0.1:9/")?;
    Ok(SandboxOAuth::new(url))
}

fn url_parse(s: &str) -> Result<url::Url, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

// ---- access_token ---------------------------------------------------------------------------

/// The two baselines: a cache of access tokens behind one lock.
trait Cache: Send + Sync + 'static {
    fn get(&self, session: &str) -> Option<AccessToken>;
}

impl Cache for Mutex<HashMap<Arc<str>, AccessToken>> {
    fn get(&self, session: &str) -> Option<AccessToken> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .cloned()
    }
}

impl Cache for RwLock<HashMap<Arc<str>, AccessToken>> {
    fn get(&self, session: &str) -> Option<AccessToken> {
        self.read()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .cloned()
    }
}

const SESSIONS_IN_CACHE: usize = 1_000;
const HOT: &str = "customer-500";

async fn access_token() -> BenchResult {
    let now = time::OffsetDateTime::now_utc();
    let manager = TokenManager::builder(unused_provider()?)
        .build()
        .map_err(err)?;
    let mut tokens = TokenGen(0x9E37_79B9_7F4A_7C15);
    let mut map = HashMap::new();
    for i in 0..SESSIONS_IN_CACHE {
        let name = format!("customer-{i}");
        let set = tokens.set(now);
        map.insert(Arc::<str>::from(name.as_str()), set.access_token.clone());
        let set = TokenSet::from_stored(set).map_err(err)?;
        manager.insert(&name, set).await.map_err(err)?;
    }
    let mutex: Arc<Mutex<HashMap<Arc<str>, AccessToken>>> = Arc::new(Mutex::new(map.clone()));
    let rwlock: Arc<RwLock<HashMap<Arc<str>, AccessToken>>> = Arc::new(RwLock::new(map));

    println!(
        "\n## access_token() on a fresh token (one hot session among {SESSIONS_IN_CACHE}; ns per call, wall time / calls)"
    );
    for tasks in [1usize, 16] {
        let per_task = scaled(if tasks == 1 { 4_000_000 } else { 500_000 });
        // Warm up, then run each contender twice, alternating, and keep the better run.
        let mut best = [f64::MAX; 3];
        for _round in 0..2 {
            best[0] = best[0].min(run_manager(&manager, tasks, per_task).await?);
            best[1] = best[1].min(run_cache(mutex.clone(), tasks, per_task).await?);
            best[2] = best[2].min(run_cache(rwlock.clone(), tasks, per_task).await?);
        }
        println!(
            "{tasks:>2} task(s), {per_task} calls each: TokenManager {:>7.1} ns | Mutex<HashMap> {:>7.1} ns | RwLock<HashMap> {:>7.1} ns",
            best[0], best[1], best[2]
        );
    }
    // Where the manager's time goes: it reads the clock on every call (to compare expiry),
    // and looks the session up in a papaya map.
    let n = scaled(4_000_000);
    let clock = token_core::SystemClock;
    let started = Instant::now();
    for _ in 0..n {
        black_box(token_core::Clock::now(black_box(&clock)));
    }
    let clock_ns = ns_per(started.elapsed(), n);
    let map: papaya::HashMap<Arc<str>, AccessToken> = papaya::HashMap::new();
    for (name, token) in mutex.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        map.pin().insert(name.clone(), token.clone());
    }
    let started = Instant::now();
    for _ in 0..n {
        black_box(map.pin().get(black_box(HOT)).cloned());
    }
    let papaya_ns = ns_per(started.elapsed(), n);
    println!(
        "breakdown, 1 task: SystemClock::now() {clock_ns:.1} ns | papaya get + clone {papaya_ns:.1} ns"
    );
    Ok(())
}

async fn run_manager(
    manager: &TokenManager<SandboxOAuth>,
    tasks: usize,
    per_task: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    black_box(manager.access_token(black_box(HOT)).await?);
                }
                Ok::<_, token_core::Error>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await.map_err(err)?.map_err(err)?;
    }
    Ok(ns_per(started.elapsed(), tasks * per_task))
}

async fn run_cache<C: Cache>(cache: Arc<C>, tasks: usize, per_task: usize) -> Result<f64, String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    // An `async` boundary like the manager's, so both pay the same.
                    let token = async { cache.get(black_box(HOT)) }.await;
                    black_box(token.ok_or("missing")?);
                }
                Ok::<_, &'static str>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await.map_err(err)?.map_err(err)?;
    }
    Ok(ns_per(started.elapsed(), tasks * per_task))
}

// ---- middleware -----------------------------------------------------------------------------

async fn middleware() -> BenchResult {
    let sandbox = Sandbox::builder().start().await.map_err(err)?;
    let first = sandbox.issue("bench").await.map_err(err)?;
    let token = first.access_token.expose_secret().to_owned();
    let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .build()
        .map_err(err)?;
    manager
        .insert("bench", TokenSet::from_stored(first).map_err(err)?)
        .await
        .map_err(err)?;
    let plain = reqwest::Client::new();
    let through = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), "bench"))
        .build();
    let url = sandbox.url("/api/balance");
    const CONCURRENCY: usize = 16;
    let total = scaled(20_000);
    let per_task = total / CONCURRENCY;

    println!(
        "\n## BearerAuth middleware vs plain reqwest, loopback sandbox GET /api/balance, {CONCURRENCY} concurrent, {} requests per run",
        per_task * CONCURRENCY
    );
    // Warm both connection pools.
    let warm = per_task.min(200);
    run_plain(&plain, &url, &token, CONCURRENCY, warm).await?;
    run_through(&through, &url, CONCURRENCY, warm).await?;
    let (mut best_plain, mut best_through) = (0f64, 0f64);
    for _round in 0..3 {
        best_plain = best_plain.max(run_plain(&plain, &url, &token, CONCURRENCY, per_task).await?);
        best_through = best_through.max(run_through(&through, &url, CONCURRENCY, per_task).await?);
    }
    println!(
        "plain reqwest {best_plain:>8.0} req/s | through BearerAuth {best_through:>8.0} req/s | ratio {:.3} (best of 3 alternating runs)",
        best_through / best_plain
    );
    if sandbox.calls(TOKEN_PATH) != 0 {
        return Err("the middleware refreshed a fresh token".into());
    }
    Ok(())
}

async fn run_plain(
    client: &reqwest::Client,
    url: &url::Url,
    token: &str,
    concurrency: usize,
    per_task: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, token) = (client.clone(), url.clone(), token.to_owned());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let response = client.get(url.clone()).bearer_auth(&token).send().await?;
                    if !response.status().is_success() {
                        return Ok(Some(response.status()));
                    }
                    black_box(response.bytes().await?);
                }
                Ok::<_, reqwest::Error>(None)
            })
        })
        .collect();
    for handle in handles {
        if let Some(status) = handle.await.map_err(err)?.map_err(err)? {
            return Err(format!("plain request answered {status}"));
        }
    }
    Ok((concurrency * per_task) as f64 / started.elapsed().as_secs_f64())
}

async fn run_through(
    client: &reqwest_middleware::ClientWithMiddleware,
    url: &url::Url,
    concurrency: usize,
    per_task: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let response = client.get(url.clone()).send().await.map_err(err)?;
                    if !response.status().is_success() {
                        return Ok(Some(response.status()));
                    }
                    black_box(response.bytes().await.map_err(err)?);
                }
                Ok::<_, String>(None)
            })
        })
        .collect();
    for handle in handles {
        if let Some(status) = handle.await.map_err(err)?? {
            return Err(format!("request through the middleware answered {status}"));
        }
    }
    Ok((concurrency * per_task) as f64 / started.elapsed().as_secs_f64())
}

// ---- herd -----------------------------------------------------------------------------------

async fn herd() -> BenchResult {
    const CALLERS: usize = 10_000;
    let clock = ManualClock::default();
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .map_err(err)?;
    let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .clock(Arc::new(clock.clone()))
        .build()
        .map_err(err)?;
    let first = sandbox.issue("herd").await.map_err(err)?;
    let old = first.access_token.clone();
    manager
        .insert("herd", TokenSet::from_stored(first).map_err(err)?)
        .await
        .map_err(err)?;
    // Expire the access token for the manager and the issuer alike.
    clock.advance(time::Duration::seconds(3601));

    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS + 1));
    let handles: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (manager, barrier) = (manager.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let started = Instant::now();
                let token = manager.access_token("herd").await;
                (started, Instant::now(), token)
            })
        })
        .collect();
    let started = Instant::now();
    barrier.wait().await;
    let mut waits = Vec::with_capacity(CALLERS);
    let mut finished = Vec::with_capacity(CALLERS);
    let mut distinct = std::collections::HashSet::new();
    for handle in handles {
        let (called, done, token) = handle.await.map_err(err)?;
        let wait = done - called;
        finished.push(done);
        let token = token.map_err(err)?;
        distinct.insert(token.fingerprint().to_string());
        if token == old {
            return Err("a caller got the expired token".into());
        }
        waits.push(wait);
    }
    let all_done = started.elapsed();
    waits.sort_unstable();
    // From the release of the barrier to each caller's answer, whenever it got to call.
    let mut since_release: Vec<Duration> = finished.iter().map(|&done| done - started).collect();
    since_release.sort_unstable();
    let refreshes = sandbox.calls(TOKEN_PATH);
    println!(
        "\n## herd: {CALLERS} concurrent callers on an expired token (loopback socket, multi-thread runtime, 2 workers)"
    );
    println!(
        "refresh calls seen by the sandbox: {refreshes} | distinct tokens handed out: {}",
        distinct.len(),
    );
    println!(
        "each caller's access_token() wait: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(percentile(&waits, 0.50)),
        ms(percentile(&waits, 0.99)),
        ms(waits.last().copied().unwrap_or_default()),
    );
    println!(
        "from the release of all {CALLERS} to each answer: p50 {:.3} ms, p99 {:.3} ms | all answered in {:.3} ms",
        ms(percentile(&since_release, 0.50)),
        ms(percentile(&since_release, 0.99)),
        ms(all_done)
    );
    if refreshes != 1 || distinct.len() != 1 {
        return Err(format!(
            "the herd caused {refreshes} refresh calls and {} distinct tokens (want 1 and 1)",
            distinct.len()
        ));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---- sessions -------------------------------------------------------------------------------

fn sessions() -> BenchResult {
    let exe = std::env::current_exe().map_err(err)?;
    println!("\n## sessions held in memory (each part in its own process)");
    for part in ["sessions-store", "sessions-manager"] {
        let status = std::process::Command::new(&exe)
            .arg(part)
            .status()
            .map_err(err)?;
        if !status.success() {
            return Err(format!("`{part}` failed: {status}"));
        }
    }
    Ok(())
}

/// Resident set size in bytes, from `/proc/self/statm` (Linux); `None` elsewhere.
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

struct Footprint {
    live: usize,
    rss: Option<usize>,
}

impl Footprint {
    fn now() -> Self {
        Self {
            live: LIVE_BYTES.load(Ordering::Relaxed),
            rss: rss_bytes(),
        }
    }

    fn per_session_since(&self, before: &Footprint, n: usize) -> String {
        let live = self.live.saturating_sub(before.live) as f64 / n as f64;
        let rss = match (self.rss, before.rss) {
            (Some(after), Some(before)) => {
                format!("{:.0}", after.saturating_sub(before) as f64 / n as f64)
            }
            _ => "n/a".into(),
        };
        format!("{live:.0} B live heap, {rss} B RSS growth")
    }
}

fn session_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("customer-{i:07}")).collect()
}

/// Positions to look up, spread over the whole key space.
fn lookup_order(n: usize, lookups: usize) -> Vec<usize> {
    let mut tokens = TokenGen(0xD1B5_4A32_D192_ED03);
    (0..lookups)
        .map(|_| (tokens.next_u64() % n as u64) as usize)
        .collect()
}

async fn sessions_store() -> BenchResult {
    let n = scaled(1_000_000);
    let now = time::OffsetDateTime::now_utc();
    let names = session_names(n);
    let mut tokens = TokenGen(0x0123_4567_89AB_CDEF);
    let provider: Arc<str> = Arc::from("bench");
    let before = Footprint::now();
    let store = MemoryStore::new();
    let filling = Instant::now();
    for name in &names {
        let key = SessionKey::new(provider.clone(), name.as_str());
        store
            .save(&key, &tokens.set(now).into(), None)
            .await
            .map_err(err)?;
    }
    let fill = filling.elapsed();
    let after = Footprint::now();

    let order = lookup_order(n, scaled(1_000_000));
    let keys: Vec<SessionKey> = order
        .iter()
        .map(|&i| SessionKey::new(provider.clone(), names[i].as_str()))
        .collect();
    let started = Instant::now();
    for key in &keys {
        black_box(
            store
                .load(black_box(key))
                .await
                .map_err(err)?
                .ok_or("missing")?,
        );
    }
    let lookup = ns_per(started.elapsed(), keys.len());
    println!(
        "MemoryStore, {n} sessions: {} per session | save {:.0} ns/session | load (random key, clones the record) {lookup:.0} ns",
        after.per_session_since(&before, n),
        ns_per(fill, n),
    );
    Ok(())
}

async fn sessions_manager() -> BenchResult {
    let n = scaled(1_000_000);
    let now = time::OffsetDateTime::now_utc();
    let names = session_names(n);
    let mut tokens = TokenGen(0x0123_4567_89AB_CDEF);
    let before = Footprint::now();
    let manager = TokenManager::builder(unused_provider()?)
        .build()
        .map_err(err)?;
    let filling = Instant::now();
    for name in &names {
        let set = TokenSet::from_stored(tokens.set(now)).map_err(err)?;
        manager.insert(name, set).await.map_err(err)?;
    }
    let fill = filling.elapsed();
    let after = Footprint::now();

    let order = lookup_order(n, scaled(1_000_000));
    let started = Instant::now();
    for &i in &order {
        black_box(
            manager
                .access_token(black_box(&names[i]))
                .await
                .map_err(err)?,
        );
    }
    let lookup = ns_per(started.elapsed(), order.len());
    println!(
        "TokenManager (cache + its MemoryStore), {n} sessions: {} per session | insert {:.0} ns/session | access_token (random session) {lookup:.0} ns",
        after.per_session_since(&before, n),
        ns_per(fill, n),
    );
    // The same random lookups in a bare papaya map of the same names, for comparison.
    let map: papaya::HashMap<Arc<str>, u64> = papaya::HashMap::new();
    for (i, name) in names.iter().enumerate() {
        map.pin().insert(Arc::from(name.as_str()), i as u64);
    }
    let started = Instant::now();
    for &i in &order {
        black_box(map.pin().get(black_box(names[i].as_str())).copied());
    }
    println!(
        "breakdown: a bare papaya::HashMap<Arc<str>, u64> of the same {n} names, random get {:.0} ns",
        ns_per(started.elapsed(), order.len())
    );
    Ok(())
}

// ---- postgres -------------------------------------------------------------------------------

/// Concurrent tasks of the throughput part (the pool has as many connections).
const PG_TASKS: usize = 16;

async fn postgres() -> BenchResult {
    let Ok(url) = std::env::var("TOKEN_TEST_POSTGRES_URL") else {
        println!(
            "\n## PostgresStore: skipped: TOKEN_TEST_POSTGRES_URL is not set \
             (`source .ci/postgres.sh && postgres_start` starts a server on 127.0.0.1)"
        );
        return Ok(());
    };
    let schema = format!("bench_{}", std::process::id());
    let db = PostgresDatabase::builder(&url)
        .map_err(err)?
        .schema(&schema)
        .max_connections(PG_TASKS)
        .application_name("bench")
        .build()
        .map_err(err)?;
    let store = PostgresStore::open(&db).await.map_err(err)?;
    let result = postgres_round_trips(&store).await;
    examples::drop_schema(&url, &schema).await.map_err(err)?;
    result
}

async fn postgres_round_trips(store: &PostgresStore) -> BenchResult {
    let n = scaled(2_000);
    let now = time::OffsetDateTime::now_utc();
    let mut tokens = TokenGen(0x9E37_79B9_7F4A_7C16);
    let keys: Vec<SessionKey> = session_names(n)
        .into_iter()
        .map(|name| SessionKey::new("bench", name))
        .collect();
    let sets: Vec<StoredRecord> = (0..n).map(|_| tokens.set(now).into()).collect();
    // Warm the pool's connection and the server's plans.
    let warm = SessionKey::new("bench", "warm-up");
    for _ in 0..50 {
        black_box(store.load(&warm).await.map_err(err)?);
    }

    println!(
        "\n## PostgresStore round trips, {n} sessions (loopback server, one task; µs per call)"
    );
    let mut versions: Vec<Version> = Vec::with_capacity(n);
    let mut insert = Vec::with_capacity(n);
    for (key, set) in keys.iter().zip(&sets) {
        let started = Instant::now();
        versions.push(store.save(key, set, None).await.map_err(err)?);
        insert.push(started.elapsed());
    }
    let order = lookup_order(n, n);
    let mut load = Vec::with_capacity(n);
    for &i in &order {
        let started = Instant::now();
        let record = store.load(&keys[i]).await.map_err(err)?.ok_or("missing")?;
        load.push(started.elapsed());
        if record.version != versions[i] {
            return Err(format!("{} loaded at another version", keys[i]));
        }
    }
    let mut update = Vec::with_capacity(n);
    for &i in &order {
        let started = Instant::now();
        versions[i] = store
            .save(&keys[i], &sets[i], Some(versions[i]))
            .await
            .map_err(err)?;
        update.push(started.elapsed());
    }
    let (mut acquire, mut release) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for &i in &order {
        let started = Instant::now();
        let lease = store
            .acquire_lease(&keys[i], "bench", Duration::from_secs(30))
            .await
            .map_err(err)?;
        acquire.push(started.elapsed());
        if !matches!(lease, Lease::Acquired) {
            return Err(format!("{}: the lease was not granted: {lease:?}", keys[i]));
        }
        let started = Instant::now();
        store.release_lease(&keys[i], "bench").await.map_err(err)?;
        release.push(started.elapsed());
    }
    for (what, mut times) in [
        ("save, a new session (INSERT)", insert),
        ("load (random session)", load),
        ("save at the loaded version (compare and swap)", update),
        ("acquire_lease", acquire),
        ("release_lease", release),
    ] {
        times.sort_unstable();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        println!(
            "{what:<46} mean {:>7.1} µs | p50 {:>7.1} µs | p99 {:>7.1} µs",
            us(mean),
            us(percentile(&times, 0.50)),
            us(percentile(&times, 0.99)),
        );
    }

    // Throughput: PG_TASKS tasks, each on its own slice of the sessions.
    let store = Arc::new(store.clone());
    let per_task = n / PG_TASKS;
    let keys = Arc::new(keys);
    let sets = Arc::new(sets);
    let mut line = format!("{PG_TASKS} tasks, {per_task} calls each:");
    for cas in [false, true] {
        let started = Instant::now();
        let handles: Vec<_> = (0..PG_TASKS)
            .map(|t| {
                let (store, keys, sets) = (store.clone(), keys.clone(), sets.clone());
                tokio::spawn(async move {
                    for i in t * per_task..(t + 1) * per_task {
                        let record = store.load(&keys[i]).await?.ok_or_else(|| {
                            token_core::StoreError::Corrupt(format!("{} is missing", keys[i]))
                        })?;
                        if cas {
                            store.save(&keys[i], &sets[i], Some(record.version)).await?;
                        }
                    }
                    Ok::<_, token_core::StoreError>(())
                })
            })
            .collect();
        for handle in handles {
            handle.await.map_err(err)?.map_err(err)?;
        }
        let rate = (PG_TASKS * per_task) as f64 / started.elapsed().as_secs_f64();
        let what = if cas { "load + CAS save" } else { "load" };
        line.push_str(&format!(" {what} {rate:>7.0}/s |"));
    }
    println!("{}", line.trim_end_matches(" |"));
    Ok(())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---- decode ---------------------------------------------------------------------------------

/// An HTTP 200 JSON answer with `body`.
fn answer(body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn bench_decode<E: Endpoint>(name: &str, response: &http::Response<Vec<u8>>) {
    let now = time::OffsetDateTime::now_utc();
    if let Err(e) = decode_response::<E>(response, now, &[]) {
        println!("{name:<44} does not decode: {e}");
        return;
    }
    let n = scaled(200_000);
    let started = Instant::now();
    for _ in 0..n {
        let _ = black_box(decode_response::<E>(black_box(response), now, &[]));
    }
    println!(
        "{name:<44} {:>7.0} ns/response ({} bytes)",
        ns_per(started.elapsed(), n),
        response.body().len()
    );
}

/// RFC 6749 section 5.1's example answer, with realistic token lengths.
const RFC6749_ANSWER: &str = r#"{
  "access_token": "at_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5",
  "token_type": "Bearer",
  "expires_in": 3600,
  "refresh_token": "rt_dGhpcyBpcyBhIHJlZnJlc2ggdG9rZW4gZm9yIHRoZSBiZW5jaA",
  "scope": "payments:read payments:write"
}"#;

/// Maya's Mini App `/tokens` answer (the forum seed's shape).
const MAYA_ANSWER: &str = r#"{
  "accessToken": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0b21lciJ9.bWluaS1hcHAtYWNjZXNz",
  "refreshToken": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0b21lciJ9.bWluaS1hcHAtcmVmcmVzaA",
  "expiresAt": 1767229200
}"#;

/// The Alipay+ seed document's applyToken answer, verbatim.
const ALIPAYPLUS_ANSWER: &str = r#"{
"result": {
"resultCode": "SUCCESS",
"resultMessage": "success",
"resultStatus": "S"
},
"accessToken": "281010033AB2F588D14B43238637264FCA5AAF35",
"accessTokenExpiryTime": "2022-06-06T12:12:12+08:00",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"refreshTokenExpiryTime": "2022-06-08T12:12:12+08:00",
"customerId":"2789808900000000000000001",
"userLoginId":"62-***2736"
}"#;

/// The Paymentsgate seed's answer (a JWT access token whose `exp` is not needed here).
const PAYMENTSGATE_ANSWER: &str = r#"{
  "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhY2N0LTEifQ.c2lnbmF0dXJl",
  "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl",
  "expires_in": 3600
}"#;

/// The Vault.ist v3 seed's answer, verbatim.
const VAULTIST_ANSWER: &str = r#"{
  "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
  "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
  "expires_in": 3600,
  "token_type": "Bearer"
}"#;

fn decode() {
    println!("\n## decode_response of each provider's seed answer (single thread)");
    bench_decode::<RefreshGrant>("token-core sandbox RFC 6749", &answer(RFC6749_ANSWER));
    bench_decode::<token_provider_oauth2::RefreshTokenGrant>(
        "oauth2 RefreshTokenGrant",
        &answer(RFC6749_ANSWER),
    );
    bench_decode::<token_provider_maya::MiniAppRefresh>(
        "maya MiniAppRefresh",
        &answer(MAYA_ANSWER),
    );
    bench_decode::<token_provider_alipayplus::ApplyToken>(
        "alipayplus ApplyToken (no signature check)",
        &answer(ALIPAYPLUS_ANSWER),
    );
    bench_decode::<token_provider_paymentsgate::RefreshServiceToken>(
        "paymentsgate RefreshServiceToken",
        &answer(PAYMENTSGATE_ANSWER),
    );
    bench_decode::<token_provider_vaultist::RefreshV3>(
        "vaultist RefreshV3",
        &answer(VAULTIST_ANSWER),
    );
}
