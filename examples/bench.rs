//! Benchmarks: numbers, printed, for `BENCHMARKS.md`. Not tests: nothing here asserts a time.
//!
//! ```text
//! cargo run --release -p examples --example bench -- all
//! cargo run --release -p examples --example bench -- access-token | scale | memory | insert | middleware | herd | decode
//! TOKEN_TEST_POSTGRES_URL=postgresql://... cargo run --release -p examples --example bench -- postgres
//! ```
//!
//! Every timed part runs its contenders interleaved (A, B, C, A, B, C, ...) for several
//! rounds and prints the median round of each, as CPU time per operation (the process's CPU
//! clock, all threads, so a busy neighbour on the machine does not count) and wall time per
//! operation. The 1-minute load average is printed with each part.
//!
//! - `access-token`: `access_token` by name on a fresh token, one hot session among 1,000, on
//!   1, 2 and 16 tasks, beside a `Mutex<HashMap<String, AccessToken>>`, a bare papaya map and
//!   the floor (an `AtomicU64` load plus an `Arc` clone).
//! - `scale`: `access_token` of a random session among 100,000 and 1,000,000, beside a
//!   `Mutex<HashMap>` and a bare papaya map of the same names.
//! - `memory`: 1,000,000 sessions in a manager and its `MemoryStore`, in the store alone and
//!   in a plain `HashMap<Box<str>, Record>`: live heap bytes and live allocations per session
//!   (a counting allocator), each in a child process of its own.
//! - `insert`: `insert` of an existing session beside a `Mutex<HashMap>` insert.
//! - `middleware`: `BearerAuth`'s own work per request (a chain that answers without the
//!   network, beside the same chain with a static header, and with a static header and a
//!   pass-through layer: what any reqwest-middleware layer costs), then requests to a minimal
//!   loopback HTTP server through `BearerAuth` and through raw reqwest with a static header:
//!   p50 latency and throughput at concurrency 1 and 16.
//! - `herd`: 10,000 concurrent callers on an expired token over the loopback socket: the
//!   refresh calls the sandbox saw (must be 1) and the callers' p50/p99 wait.
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
use std::future::Future;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use token_core::codec::{Endpoint, decode_response};
use token_core::middleware::BearerAuth;
use token_core::oauth::{RefreshTokenGrant, TOKEN_PATH};
use token_core::postgres::PostgresDatabase;
use token_core::sandbox::{Sandbox, SandboxOAuth};
use token_core::store::{
    Lease, MemoryStore, PostgresStore, SessionKey, StoredRecord, TokenStore, Version,
};
use token_core::{
    clock::ManualClock, manager::TokenManager, secret::AccessToken, secret::RefreshToken,
    token_set::StoredTokenSet, token_set::TokenSet,
};

/// Counts live heap bytes and live allocations, so the memory part measures exactly what
/// each structure keeps. Only in the memory part's processes ([`COUNTING`]): elsewhere two
/// atomic read-modify-writes per allocation and per free would be a tax on every contender,
/// heavier on the one that allocates more, and no part of what a user's program pays.
struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Set first thing in a memory part's process; the counts are only read as differences
/// between two moments after that (an allocation made before and freed between them would
/// be taken off without having been added, which the parts do not do).
static COUNTING: AtomicBool = AtomicBool::new(false);

fn counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

// SAFETY: every call forwards to `System` with the same arguments; the counters only observe.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && counting() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && counting() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        if counting() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_ALLOCS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && counting() {
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

/// Rounds of each interleaved comparison; the median round is printed.
const ROUNDS: usize = 5;

type BenchResult = Result<(), String>;

const GROUPS: &str = "all, access-token, scale, memory, insert, middleware, herd, decode, postgres";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    COUNTING.store(which == "memory-child", Ordering::Relaxed);
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
            insert().await?;
            middleware().await?;
            herd().await?;
            decode();
            Ok(())
        }),
        "access-token" => runtime.block_on(access_token()),
        "insert" => runtime.block_on(insert()),
        "middleware" => runtime.block_on(middleware()),
        "herd" => runtime.block_on(herd()),
        "decode" => {
            decode();
            Ok(())
        }
        "postgres" => runtime.block_on(postgres()),
        "scale" | "memory" => Ok(()),
        "scale-child" => runtime.block_on(scale_child(&args)),
        "memory-child" => runtime.block_on(memory_child(&args)),
        other => Err(format!("unknown benchmark `{other}`: {GROUPS}")),
    };
    // The parts with a million sessions run in child processes (after the others, on a
    // quieter heap), so one part's freed memory does not hide the next part's growth.
    let result = result.and_then(|()| match which {
        "all" => scale().and_then(|()| memory()),
        "scale" => scale(),
        "memory" => memory(),
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ns_per(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

/// The CPU time this process has used, all threads.
#[cfg(unix)]
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Elsewhere: wall time since the first call (the numbers are then wall time twice).
#[cfg(not(unix))]
fn cpu_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

/// One round of one contender: CPU and wall time per operation, in ns.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    cpu: f64,
    wall: f64,
}

/// Runs `work` (which performs `ops` operations) and times it.
async fn timed<F: Future<Output = BenchResult>>(ops: usize, work: F) -> Result<Sample, String> {
    let (wall, cpu) = (Instant::now(), cpu_time());
    work.await?;
    let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
    Ok(Sample {
        cpu: cpu.as_nanos() as f64 / ops as f64,
        wall: wall.as_nanos() as f64 / ops as f64,
    })
}

/// The rounds of each contender, in the order they were added.
#[derive(Default)]
struct Table {
    rows: Vec<(String, Vec<Sample>)>,
}

impl Table {
    fn add(&mut self, name: &str, sample: Sample) {
        match self.rows.iter_mut().find(|(n, _)| n == name) {
            Some((_, samples)) => samples.push(sample),
            None => self.rows.push((name.to_owned(), vec![sample])),
        }
    }

    /// The median round of `name`.
    fn median(&self, name: &str) -> Sample {
        let Some((_, samples)) = self.rows.iter().find(|(n, _)| n == name) else {
            return Sample::default();
        };
        let mut cpu: Vec<f64> = samples.iter().map(|s| s.cpu).collect();
        let mut wall: Vec<f64> = samples.iter().map(|s| s.wall).collect();
        cpu.sort_by(f64::total_cmp);
        wall.sort_by(f64::total_cmp);
        Sample {
            cpu: cpu[cpu.len() / 2],
            wall: wall[wall.len() / 2],
        }
    }

    /// The median over rounds of `name`'s CPU time over `baseline`'s in the same round: the
    /// contenders of a round run one after the other, so a neighbour's burst that slows a
    /// whole round moves this less than the ratio of the two medians.
    fn paired(&self, name: &str, baseline: &str) -> f64 {
        let samples = |wanted: &str| {
            (self.rows.iter())
                .find(|(n, _)| n == wanted)
                .map_or(&[][..], |(_, samples)| &samples[..])
        };
        let mut ratios: Vec<f64> = (samples(name).iter().zip(samples(baseline)))
            .map(|(a, b)| a.cpu / b.cpu)
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// One line per contender: median CPU and wall ns per operation, and the CPU ratio to
    /// `baseline`.
    fn print(&self, baseline: &str) {
        let base = self.median(baseline).cpu;
        for (name, samples) in &self.rows {
            let m = self.median(name);
            println!(
                "  {name:<44} cpu {:>8.1} ns | wall {:>8.1} ns | {:>5.2}x {baseline} (median of {})",
                m.cpu,
                m.wall,
                m.cpu / base,
                samples.len()
            );
        }
    }
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

/// The length of the tokens `TokenGen` makes.
const TOKEN_LEN: usize = 46;

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

/// A manager (with its default `MemoryStore`) holding a fresh set for each of `names`.
async fn manager_with(
    names: &[String],
    tokens: &mut TokenGen,
) -> Result<(TokenManager<SandboxOAuth>, Vec<AccessToken>), String> {
    let now = time::OffsetDateTime::now_utc();
    let manager = TokenManager::builder(unused_provider()?)
        .build()
        .map_err(err)?;
    let mut access = Vec::with_capacity(names.len());
    for name in names {
        let set = tokens.set(now);
        access.push(set.access_token.clone());
        let set = TokenSet::from_stored(set).map_err(err)?;
        manager.insert(name, set).await.map_err(err)?;
    }
    Ok((manager, access))
}

/// Runs a child process of this bench with `args`.
fn child(args: &[&str]) -> BenchResult {
    let exe = std::env::current_exe().map_err(err)?;
    let status = std::process::Command::new(&exe)
        .args(args)
        .status()
        .map_err(err)?;
    if !status.success() {
        return Err(format!("`{}` failed: {status}", args.join(" ")));
    }
    Ok(())
}

// ---- access_token ---------------------------------------------------------------------------

/// Something that hands out a session's access token: the manager and its baselines.
trait Lookup: Clone + Send + Sync + 'static {
    fn get<'a>(&'a self, session: &'a str)
    -> impl Future<Output = Option<AccessToken>> + Send + 'a;
}

#[derive(Clone)]
struct ByName(TokenManager<SandboxOAuth>);

impl Lookup for ByName {
    async fn get(&self, session: &str) -> Option<AccessToken> {
        self.0.access_token(session).await.ok()
    }
}

#[derive(Clone)]
struct Handle(token_core::manager::SessionHandle<SandboxOAuth>);

impl Lookup for Handle {
    async fn get(&self, _: &str) -> Option<AccessToken> {
        self.0.access_token().await.ok()
    }
}

/// Two lookups asked in turn, each clone (each task) with its own turn: a handle read
/// after a read of another session, as a thread serving two providers' clients makes.
struct InTurn<L>(L, L, AtomicBool);

impl<L: Clone> Clone for InTurn<L> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1.clone(), AtomicBool::new(false))
    }
}

impl<L: Lookup> Lookup for InTurn<L> {
    async fn get(&self, session: &str) -> Option<AccessToken> {
        let second = !self.2.load(Ordering::Relaxed);
        self.2.store(second, Ordering::Relaxed);
        if second {
            self.1.get(session).await
        } else {
            self.0.get(session).await
        }
    }
}

/// The cache a user would write in five minutes.
#[derive(Clone)]
struct MutexMap(Arc<Mutex<HashMap<String, AccessToken>>>);

impl Lookup for MutexMap {
    async fn get(&self, session: &str) -> Option<AccessToken> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .cloned()
    }
}

/// A bare papaya map of the same names, filled with `insert`.
#[derive(Clone)]
struct Papaya(Arc<papaya::HashMap<String, AccessToken>>);

impl Lookup for Papaya {
    async fn get(&self, session: &str) -> Option<AccessToken> {
        self.0.pin().get(session).cloned()
    }
}

/// The floor of a fresh-token read: one atomic load (the expiry) and one `Arc` clone.
#[derive(Clone)]
struct Floor(Arc<(AtomicU64, AccessToken)>);

impl Lookup for Floor {
    async fn get(&self, _: &str) -> Option<AccessToken> {
        (self.0.0.load(Ordering::Acquire) > 1).then(|| self.0.1.clone())
    }
}

/// `tasks` tasks, each calling `lookup.get(session)` `per_task` times.
async fn hammer<L: Lookup>(
    lookup: &L,
    session: &'static str,
    tasks: usize,
    per_task: usize,
) -> Result<Sample, String> {
    timed(tasks * per_task, async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let lookup = lookup.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        if black_box(lookup.get(black_box(session)).await).is_none() {
                            return Err("missing".to_owned());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle.await.map_err(err)??;
        }
        Ok(())
    })
    .await
}

/// The same random sessions looked up one after another, on one task.
async fn lookups<L: Lookup>(
    lookup: &L,
    names: &[String],
    order: &[usize],
) -> Result<Sample, String> {
    timed(order.len(), async {
        for &i in order {
            if black_box(lookup.get(black_box(&names[i])).await).is_none() {
                return Err(format!("{} missing", names[i]));
            }
        }
        Ok(())
    })
    .await
}

const SESSIONS_IN_CACHE: usize = 1_000;
const HOT: &str = "customer-0000500";
/// A second session, read in turn with [`HOT`].
const OTHER: &str = "customer-0000501";

async fn access_token() -> BenchResult {
    let names = session_names(SESSIONS_IN_CACHE);
    let mut tokens = TokenGen(0x9E37_79B9_7F4A_7C15);
    let (manager, access) = manager_with(&names, &mut tokens).await?;
    let map: HashMap<String, AccessToken> = names.iter().cloned().zip(access).collect();
    let papaya = papaya::HashMap::new();
    for (name, token) in &map {
        papaya.pin().insert(name.clone(), token.clone());
    }
    let hot = map.get(HOT).ok_or("no hot session")?.clone();
    let floor = Floor(Arc::new((AtomicU64::new(u64::MAX), hot)));
    let by_name = ByName(manager.clone());
    let handle = Handle(manager.session(HOT));
    let other = map.get(OTHER).ok_or("no other session")?.clone();
    let floors = InTurn(
        floor.clone(),
        Floor(Arc::new((AtomicU64::new(u64::MAX), other))),
        AtomicBool::new(false),
    );
    let handles = InTurn(
        handle.clone(),
        Handle(manager.session(OTHER)),
        AtomicBool::new(false),
    );
    let mutex = MutexMap(Arc::new(Mutex::new(map)));
    let papaya = Papaya(Arc::new(papaya));

    println!(
        "\n## access_token() on a fresh token, one hot session among {SESSIONS_IN_CACHE} (load {})",
        load_average()
    );
    for tasks in [1usize, 2, 16] {
        let per_task = scaled(2_000_000) / tasks;
        let mut table = Table::default();
        // A warm-up round, not kept.
        hammer(&by_name, HOT, tasks, per_task / 10 + 1).await?;
        for _ in 0..ROUNDS {
            table.add(
                "TokenManager::access_token (by name)",
                hammer(&by_name, HOT, tasks, per_task).await?,
            );
            table.add(
                "Mutex<HashMap<String, AccessToken>>",
                hammer(&mutex, HOT, tasks, per_task).await?,
            );
            table.add(
                "papaya::HashMap get (bare)",
                hammer(&papaya, HOT, tasks, per_task).await?,
            );
            table.add(
                "floor: AtomicU64 load + Arc clone",
                hammer(&floor, HOT, tasks, per_task).await?,
            );
            table.add(
                "SessionHandle::access_token",
                hammer(&handle, HOT, tasks, per_task).await?,
            );
            table.add(
                "floor, two sessions in turn",
                hammer(&floors, HOT, tasks, per_task).await?,
            );
            table.add(
                "SessionHandle, two sessions in turn",
                hammer(&handles, HOT, tasks, per_task).await?,
            );
        }
        println!("{tasks} task(s), {per_task} calls each:");
        table.print("Mutex<HashMap<String, AccessToken>>");
        println!(
            "  SessionHandle / floor: {:.2}x; two sessions in turn: {:.2}x",
            table.median("SessionHandle::access_token").cpu
                / table.median("floor: AtomicU64 load + Arc clone").cpu,
            table.median("SessionHandle, two sessions in turn").cpu
                / table.median("floor, two sessions in turn").cpu
        );
    }
    // Where a call's time went before: the clock.
    let n = scaled(2_000_000);
    let clock: Arc<dyn token_core::clock::Clock> = Arc::new(token_core::clock::SystemClock);
    let sample = timed(n, async {
        for _ in 0..n {
            black_box(black_box(&clock).now());
        }
        Ok(())
    })
    .await?;
    println!(
        "  SystemClock::now() through Arc<dyn Clock>: cpu {:.1} ns",
        sample.cpu
    );
    let sample = timed(n, async {
        for _ in 0..n {
            black_box(black_box(&clock).now_nanos_at_least());
        }
        Ok(())
    })
    .await?;
    println!(
        "  SystemClock::now_nanos_at_least() through Arc<dyn Clock> (the fast path's): cpu {:.1} ns",
        sample.cpu
    );
    Ok(())
}

// ---- scale ----------------------------------------------------------------------------------

fn scale() -> BenchResult {
    for n in [100_000usize, 1_000_000] {
        child(&["scale-child", &scaled(n).to_string()])?;
    }
    Ok(())
}

async fn scale_child(args: &[String]) -> BenchResult {
    let n: usize = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .ok_or("scale-child needs a session count")?;
    let names = session_names(n);
    let mut tokens = TokenGen(0x0123_4567_89AB_CDEF);
    let (manager, access) = manager_with(&names, &mut tokens).await?;
    let map: HashMap<String, AccessToken> = names.iter().cloned().zip(access).collect();
    let papaya = papaya::HashMap::new();
    for (name, token) in &map {
        papaya.pin().insert(name.clone(), token.clone());
    }
    let by_name = ByName(manager.clone());
    let mutex = MutexMap(Arc::new(Mutex::new(map)));
    let papaya = Papaya(Arc::new(papaya));
    let order = lookup_order(n, scaled(1_000_000).min(n));

    println!(
        "\n## access_token() of a random session among {n}, one task, {} lookups per round (load {})",
        order.len(),
        load_average()
    );
    let mut table = Table::default();
    // More rounds than elsewhere: a round's time is mostly cache misses, which a neighbour's
    // use of the shared cache moves.
    for _ in 0..2 * ROUNDS - 1 {
        table.add(
            "TokenManager::access_token (by name)",
            lookups(&by_name, &names, &order).await?,
        );
        table.add(
            "Mutex<HashMap<String, AccessToken>>",
            lookups(&mutex, &names, &order).await?,
        );
        table.add(
            "papaya::HashMap get (bare)",
            lookups(&papaya, &names, &order).await?,
        );
    }
    table.print("Mutex<HashMap<String, AccessToken>>");
    let (manager, papaya) = (
        "TokenManager::access_token (by name)",
        "papaya::HashMap get (bare)",
    );
    println!(
        "  TokenManager / bare papaya get: {:.2}x (medians); {:.2}x (median of the rounds' ratios)",
        table.median(manager).cpu / table.median(papaya).cpu,
        table.paired(manager, papaya)
    );
    Ok(())
}

// ---- insert ---------------------------------------------------------------------------------

async fn insert() -> BenchResult {
    let names = session_names(SESSIONS_IN_CACHE);
    let mut tokens = TokenGen(0x5151_7A7A_0101_FEFE);
    let (manager, _) = manager_with(&names, &mut tokens).await?;
    let now = time::OffsetDateTime::now_utc();
    let sets: Vec<TokenSet<serde_json::Value>> =
        (0..names.len()).map(|_| tokens.set(now)).collect();
    let mutex: Mutex<HashMap<String, TokenSet<serde_json::Value>>> =
        Mutex::new(names.iter().cloned().zip(sets.iter().cloned()).collect());
    let order = lookup_order(names.len(), scaled(200_000));

    println!(
        "\n## insert of an existing session, among {SESSIONS_IN_CACHE}, one task, {} inserts per round (load {})",
        order.len(),
        load_average()
    );
    let mut table = Table::default();
    for _ in 0..ROUNDS {
        let sample = timed(order.len(), async {
            for &i in &order {
                let set = TokenSet::from_stored(sets[i].clone()).map_err(err)?;
                manager.insert(&names[i], set).await.map_err(err)?;
            }
            Ok(())
        })
        .await?;
        table.add("TokenManager::insert (and its MemoryStore)", sample);
        let sample = timed(order.len(), async {
            for &i in &order {
                let set = TokenSet::from_stored(sets[i].clone()).map_err(err)?;
                let old = mutex
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(names[i].clone(), set);
                drop(black_box(old));
            }
            Ok(())
        })
        .await?;
        table.add("Mutex<HashMap<String, TokenSet>> insert", sample);
    }
    table.print("Mutex<HashMap<String, TokenSet>> insert");
    Ok(())
}

// ---- middleware -----------------------------------------------------------------------------

/// The end of a chain that answers 200 at once, without the network: what is left of a
/// request's cost is the middleware's own.
struct Answer;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Answer {
    async fn handle(
        &self,
        request: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if !request.headers().contains_key(http::header::AUTHORIZATION) {
            return Err(reqwest_middleware::Error::middleware(
                std::io::Error::other("no Authorization header"),
            ));
        }
        Ok(reqwest::Response::from(http::Response::new("")))
    }
}

/// A middleware that passes the request on untouched: what any reqwest-middleware layer
/// costs (its boxed future, the chain's dispatch), the floor of `BearerAuth`'s own work.
struct PassThrough;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for PassThrough {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(request, extensions).await
    }
}

/// Sends `n` requests made by `request`, one after the other.
async fn sends(n: usize, request: impl Fn() -> reqwest_middleware::RequestBuilder) -> BenchResult {
    for _ in 0..n {
        black_box(request().send().await.map_err(err)?);
    }
    Ok(())
}

/// A minimal HTTP/1.1 server on 127.0.0.1: answers every request `200 OK` with a two-byte
/// body, keeping the connection.
async fn minimal_server() -> Result<url::Url, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let address = listener.local_addr().map_err(err)?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::with_capacity(4096);
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(read) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 || buffer.len() > 1 << 20 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    // Requests without a body: one answer per blank line.
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url_parse(&format!("http://{address}/api/balance"))
}

async fn middleware() -> BenchResult {
    let names = [String::from("bench")];
    let mut tokens = TokenGen(0xABCD_EF01_2345_6789);
    let (manager, access) = manager_with(&names, &mut tokens).await?;
    let static_header = {
        let mut value =
            http::HeaderValue::try_from(format!("Bearer {}", access[0].expose_secret()))
                .map_err(err)?;
        value.set_sensitive(true);
        value
    };

    // BearerAuth's own work: two chains that end in `Answer`.
    let with_auth = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), "bench"))
        .with(Answer)
        .build();
    let without = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(Answer)
        .build();
    let pass_through = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PassThrough)
        .with(Answer)
        .build();
    let url = url_parse("http://127.0.0.1:9/api/balance")?;
    let n = scaled(200_000);
    println!(
        "\n## BearerAuth's own work: a chain that answers without the network, one task, {n} requests per round (load {})",
        load_average()
    );
    let mut table = Table::default();
    let with_static_header = |client: &reqwest_middleware::ClientWithMiddleware| {
        client
            .get(url.clone())
            .header(http::header::AUTHORIZATION, static_header.clone())
    };
    for _ in 0..ROUNDS {
        let sample = timed(n, sends(n, || with_auth.get(url.clone()))).await?;
        table.add("BearerAuth + answer", sample);
        let no_resend = || {
            with_auth
                .get(url.clone())
                .with_extension(token_core::middleware::NoResend)
        };
        let sample = timed(n, sends(n, no_resend)).await?;
        table.add("BearerAuth, NoResend request + answer", sample);
        let sample = timed(n, sends(n, || with_static_header(&without))).await?;
        table.add("static header + answer", sample);
        let sample = timed(n, sends(n, || with_static_header(&pass_through))).await?;
        table.add("static header + pass-through layer + answer", sample);
    }
    table.print("static header + answer");
    println!(
        "  BearerAuth's own work: {:.0} ns of CPU per request",
        table.median("BearerAuth + answer").cpu - table.median("static header + answer").cpu
    );
    println!(
        "  of which any middleware layer's cost (a pass-through layer): {:.0} ns",
        table
            .median("static header + pass-through layer + answer")
            .cpu
            - table.median("static header + answer").cpu
    );

    // Against a minimal loopback server.
    let url = minimal_server().await?;
    let plain = reqwest::Client::new();
    let through = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), "bench"))
        .build();
    let layered = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PassThrough)
        .build();
    let layered = Client::Layered(layered, static_header.clone());
    for concurrency in [1usize, 16] {
        let per_task = scaled(if concurrency == 1 { 5_000 } else { 20_000 }) / concurrency;
        // Warm both connection pools.
        send_all(
            &Client::Plain(plain.clone(), static_header.clone()),
            &url,
            concurrency,
            50,
        )
        .await?;
        send_all(&Client::Through(through.clone()), &url, concurrency, 50).await?;
        send_all(&layered, &url, concurrency, 50).await?;
        let (mut plain_runs, mut through_runs, mut layered_runs) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            plain_runs.push(
                send_all(
                    &Client::Plain(plain.clone(), static_header.clone()),
                    &url,
                    concurrency,
                    per_task,
                )
                .await?,
            );
            through_runs.push(
                send_all(
                    &Client::Through(through.clone()),
                    &url,
                    concurrency,
                    per_task,
                )
                .await?,
            );
            layered_runs.push(send_all(&layered, &url, concurrency, per_task).await?);
        }
        let median = |runs: &mut Vec<(Duration, f64)>| {
            runs.sort_by(|a, b| a.1.total_cmp(&b.1));
            runs[runs.len() / 2]
        };
        let (plain_p50, plain_rate) = median(&mut plain_runs);
        let (through_p50, through_rate) = median(&mut through_runs);
        let (layered_p50, layered_rate) = median(&mut layered_runs);
        println!(
            "minimal loopback server, concurrency {concurrency}, {} requests per round (load {}):",
            per_task * concurrency,
            load_average()
        );
        println!(
            "  raw reqwest, static header   p50 {:>6.1} µs | {plain_rate:>8.0} req/s",
            us(plain_p50)
        );
        println!(
            "  through BearerAuth           p50 {:>6.1} µs | {through_rate:>8.0} req/s | p50 {:+.2} µs, throughput {:.3}x (median of {ROUNDS})",
            us(through_p50),
            us(through_p50) - us(plain_p50),
            through_rate / plain_rate
        );
        println!(
            "  reqwest-middleware, a pass-through layer, static header p50 {:>6.1} µs | {layered_rate:>8.0} req/s | p50 {:+.2} µs, throughput {:.3}x",
            us(layered_p50),
            us(layered_p50) - us(plain_p50),
            layered_rate / plain_rate
        );
    }
    Ok(())
}

#[derive(Clone)]
enum Client {
    Plain(reqwest::Client, http::HeaderValue),
    /// reqwest-middleware with a pass-through layer, the header set by the caller.
    Layered(reqwest_middleware::ClientWithMiddleware, http::HeaderValue),
    Through(reqwest_middleware::ClientWithMiddleware),
}

impl Client {
    async fn get(&self, url: &url::Url) -> Result<reqwest::Response, String> {
        match self {
            Self::Plain(client, header) => client
                .get(url.clone())
                .header(http::header::AUTHORIZATION, header.clone())
                .send()
                .await
                .map_err(err),
            Self::Layered(client, header) => client
                .get(url.clone())
                .header(http::header::AUTHORIZATION, header.clone())
                .send()
                .await
                .map_err(err),
            Self::Through(client) => client.get(url.clone()).send().await.map_err(err),
        }
    }
}

/// `concurrency` tasks sending `per_task` requests each: the p50 latency of a request and
/// the requests per second.
async fn send_all(
    client: &Client,
    url: &url::Url,
    concurrency: usize,
    per_task: usize,
) -> Result<(Duration, f64), String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let sent = Instant::now();
                    let response = client.get(&url).await?;
                    if !response.status().is_success() {
                        return Err(format!("answered {}", response.status()));
                    }
                    black_box(response.bytes().await.map_err(err)?);
                    latencies.push(sent.elapsed());
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(concurrency * per_task);
    for handle in handles {
        latencies.extend(handle.await.map_err(err)??);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok((percentile(&latencies, 0.5), rate))
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

// ---- memory ---------------------------------------------------------------------------------

fn memory() -> BenchResult {
    let n = scaled(1_000_000);
    println!(
        "\n## memory: {n} sessions, two {TOKEN_LEN}-character tokens each (each part in its own process; load {})",
        load_average()
    );
    for part in ["manager", "store", "baseline"] {
        child(&["memory-child", part, &n.to_string()])?;
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
    allocs: usize,
    rss: Option<usize>,
}

impl Footprint {
    fn now() -> Self {
        Self {
            live: LIVE_BYTES.load(Ordering::Relaxed),
            allocs: LIVE_ALLOCS.load(Ordering::Relaxed),
            rss: rss_bytes(),
        }
    }

    fn per_session_since(&self, before: &Footprint, n: usize) -> String {
        let live = self.live.wrapping_sub(before.live) as f64 / n as f64;
        let allocs = self.allocs.wrapping_sub(before.allocs) as f64 / n as f64;
        let rss = match (self.rss, before.rss) {
            (Some(after), Some(before)) => {
                format!("{:.0}", after.saturating_sub(before) as f64 / n as f64)
            }
            _ => "n/a".into(),
        };
        format!(
            "{live:>5.0} B live heap ({:>4.0} B beyond the token bytes), {allocs:>4.1} allocations, {rss:>5} B RSS growth per session",
            live - (2 * TOKEN_LEN) as f64
        )
    }
}

/// The compact record a user would keep: the two tokens, both expiries and a version.
#[allow(dead_code)]
struct Record {
    access_token: AccessToken,
    refresh_token: RefreshToken,
    access_expires_at: i64,
    refresh_expires_at: i64,
    version: u64,
}

async fn memory_child(args: &[String]) -> BenchResult {
    let part = args.get(1).map(String::as_str).unwrap_or("");
    let n: usize = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .ok_or("memory-child needs a part and a session count")?;
    let names = session_names(n);
    let now = time::OffsetDateTime::now_utc();
    // The tokens are made while counting (they are kept) and subtracted in the report.
    let mut tokens = TokenGen(0x0123_4567_89AB_CDEF);
    let mut sets = std::iter::repeat_with(move || tokens.set(now));
    let (what, footprint, before) = match part {
        "manager" => {
            let before = Footprint::now();
            let manager = TokenManager::builder(unused_provider()?)
                .build()
                .map_err(err)?;
            for (name, set) in names.iter().zip(&mut sets) {
                let set = TokenSet::from_stored(set).map_err(err)?;
                manager.insert(name, set).await.map_err(err)?;
            }
            let after = Footprint::now();
            black_box(&manager);
            ("TokenManager (cache + its MemoryStore)", after, before)
        }
        "store" => {
            let provider: Arc<str> = Arc::from("bench");
            let before = Footprint::now();
            let store = MemoryStore::new();
            for (name, set) in names.iter().zip(&mut sets) {
                let key = SessionKey::new(provider.clone(), name.as_str());
                store.save(&key, &set.into(), None).await.map_err(err)?;
            }
            let after = Footprint::now();
            black_box(&store);
            ("MemoryStore alone", after, before)
        }
        "baseline" => {
            let before = Footprint::now();
            let mut map: HashMap<Box<str>, Record> = HashMap::new();
            for (name, set) in names.iter().zip(&mut sets) {
                let record = Record {
                    access_token: set.access_token,
                    refresh_token: set.refresh_token.ok_or("no refresh token")?,
                    access_expires_at: set.access_expires_at.map_or(0, |at| at.unix_timestamp()),
                    refresh_expires_at: set.refresh_expires_at.map_or(0, |at| at.unix_timestamp()),
                    version: 1,
                };
                map.insert(name.as_str().into(), record);
            }
            let after = Footprint::now();
            black_box(&map);
            ("HashMap<Box<str>, Record> (baseline)", after, before)
        }
        other => return Err(format!("unknown memory part `{other}`")),
    };
    println!("  {what:<40} {}", footprint.per_session_since(&before, n));
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
                            token_core::error::StoreError::Corrupt(format!(
                                "{} is missing",
                                keys[i]
                            ))
                        })?;
                        if cas {
                            store.save(&keys[i], &sets[i], Some(record.version)).await?;
                        }
                    }
                    Ok::<_, token_core::error::StoreError>(())
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
    bench_decode::<RefreshTokenGrant>("oauth RefreshTokenGrant", &answer(RFC6749_ANSWER));
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
