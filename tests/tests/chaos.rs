//! A bounded chaos test of the manager across OS processes (issue 11).
//!
//! Four `chaos_worker` processes (`tests/src/bin/chaos_worker.rs`) share one store, first a
//! `FileStore` directory, then one PostgreSQL schema, and keep eight sessions fresh against
//! one rotating issuer with no reuse window, served by the sandbox in this process. Access
//! tokens live 3 s, so sessions are refreshed every second or two. While they run the test
//! injects faults:
//!
//! - 503 answers with a long `Retry-After` (12 s, longer than the 5 s lease) and short ones;
//! - refresh answers held back after the issuer rotated, while a new set is `insert`ed for the
//!   same session (an insert racing a refresh), and while the workers shut down;
//! - a session revoked at the issuer (the one legitimate re-auth of the run);
//! - the PostgreSQL database going away for 3 s (a TCP proxy between workers and server is
//!   cut and restored; no privileges needed);
//! - one worker's `on_event` hook panicking once;
//! - normal shutdowns: every worker is told to stop and drains its manager.
//!
//! At the end the issuer's own records (every refresh token minted and every one presented,
//! see [`Ledger`]) and the store are checked:
//!
//! 1. no refresh token was presented twice;
//! 2. no re-auth was declared for a session the issuer had not refused (only the revoked
//!    session may be declared dead);
//! 3. no event was reported twice across processes (a `Refreshed` for one store version, two
//!    re-auth declarations for one session generation), and the revoked session's verdict is
//!    recorded in the store;
//! 4. nothing was lost: after the workers stopped, every session's stored refresh token is the
//!    newest one the issuer minted for the session's newest inserted generation, and the
//!    issuer still accepts it (a set inserted is never overwritten by an older refresh);
//! 5. no session is wedged: in the last seconds before the stop, every worker obtained a token
//!    for every live session.
//!
//! A second run on each store (`chaos_kill_*`, about 20 s each) kills workers outright
//! (SIGKILL: no drain, no save, no lease release) and starts a fresh process on the same
//! store in each one's place: some at random moments; two while they hold a session's lease
//! and the issuer has rotated their refresh token but before they saved the new pair (their
//! answer is held back; they are killed, then the answer is released to the dead process or
//! dropped); and one a moment (up to 40 ms) after its held answer is let go (as it saves or
//! publishes the pair, or releases the lease). A process killed before its save takes the
//! pair with it, which no manager can save: so this run's issuer has a reuse window, the
//! workers declare it, and invariant 1 becomes "no refresh token presented again after its
//! reuse window ended" (every later presentation was answered with the same successor).
//! Invariants 2 to 5 are unchanged: the successor that presents the dead one's token again
//! gets the pair back, saves it, and nothing is lost. Each death of a session's lease
//! holder delays that presentation by up to two lease lengths (2 s here: the lease lasts
//! out, then the next holder watches the store a lease length for a late save), and kills
//! may hit successive holders of one session, so the window (20 s) covers three deaths in a
//! row; one that covers fewer loses the pair when kills chain (as the provider would, past
//! its window).
//!
//! The counts and every violation are printed to stderr; the test fails on any violation.
//! The seed is printed; `CHAOS_SEED=<seed>` replays the same schedule (the processes' timing
//! still varies). `CHAOS_FAULTS=long503,short503,revoke,insert,outage,panic,stop,kill` (any
//! subset, or `none`) injects only some fault families (the first run knows every one but
//! `kill`; the kill run knows `kill` and `short503`), `CHAOS_WORKERS=N` changes the number of
//! processes, and `CHAOS_KILLS=N` the number of random kills in the kill run (3), to tell
//! which fault breaks which invariant.
//!
//! PostgreSQL: `TOKEN_TEST_POSTGRES_URL`, or else a throwaway server started from the
//! PostgreSQL server binaries (see `token_test_support::pg`); without either the PostgreSQL scenario
//! is skipped with a message, unless `TOKEN_TEST_REQUIRE_POSTGRES=1`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;
use token_core::codec::Endpoint;
use token_core::issuer::{
    CodeRecord, IssuerStore, MemoryIssuerStore, PairRecord, PairState, RedeemOutcome, Redemption,
    RotateOutcome, RotateRejection, Rotation, TokenHash,
};
use token_core::oauth::RefreshTokenGrant;
use token_core::postgres::PostgresDatabase;
use token_core::sandbox::oauth::TokenHandler;
use token_core::sandbox::{Failure, Handler, Sandbox, SandboxContext};
use token_core::store::{PostgresStore, SessionKey, StoredRecord};
use token_core::{error::StoreError, issuer::IssuerConfig, store::FileStore, store::TokenStore};
use token_test_support::lock;
use token_test_support::pg::test_url;
use token_test_support::proxy::Proxy;

/// How many worker processes (`CHAOS_WORKERS` overrides, 1 to 8).
const WORKERS: usize = 4;
/// Every fault family; `CHAOS_FAULTS` (a comma-separated list of these, or `none`) picks some.
const FAULTS: [&str; 8] = [
    "long503", "short503", "revoke", "insert", "outage", "panic", "stop", "kill",
];
const SESSIONS: usize = 8;
/// The session revoked at the issuer mid-run: the only one that may be declared dead.
const REVOKED: &str = "s0";
const PROVIDER: &str = "sandbox-oauth";
const ACCESS_TTL: Duration = Duration::from_secs(3);
const LEASE_TTL: Duration = Duration::from_secs(5);
/// Longer than the lease: a refresh waiting it out must not let another process refresh the
/// same token, nor use its own afterwards without a re-read.
const LONG_RETRY_AFTER: u64 = 12;
/// Faults are injected from `go` until this.
const CHAOS_UNTIL: Duration = Duration::from_secs(20);
/// A long Retry-After or an outage is not injected later than this.
const LATEST_LONG_FAULT: Duration = Duration::from_secs(15);
/// The liveness window starts here (after every long Retry-After has run out).
const MARK_AT: Duration = Duration::from_secs(30);
/// The workers are stopped here.
const STOP_AT: Duration = Duration::from_secs(35);
/// How long a held refresh answer is kept back at most.
const HOLD_MAX: Duration = Duration::from_secs(8);

/// Which of the two runs: the faults of issue 11 against an issuer with no reuse window, or
/// processes killed outright (`kill`) against one with a reuse window (a killed process
/// cannot save the pair the issuer rotated for it: only presenting its token again, inside
/// the window, gets that pair back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Faults,
    Kills,
}

impl Run {
    /// The fault families this run may inject ([`fault`] asks `CHAOS_FAULTS` too).
    fn families(self) -> &'static [&'static str] {
        match self {
            Run::Faults => &FAULTS[..7],
            Run::Kills => &["kill", "short503"],
        }
    }

    fn reuse_window(self) -> Duration {
        match self {
            Run::Faults => Duration::ZERO,
            Run::Kills => KILL_REUSE_WINDOW,
        }
    }

    fn lease_ttl(self) -> Duration {
        match self {
            Run::Faults => LEASE_TTL,
            Run::Kills => KILL_LEASE_TTL,
        }
    }

    /// When the liveness window starts, and when the workers are stopped.
    fn mark_and_stop(self) -> (Duration, Duration) {
        match self {
            Run::Faults => (MARK_AT, STOP_AT),
            Run::Kills => (KILL_MARK_AT, KILL_STOP_AT),
        }
    }
}

/// The kill run's lease: short, so a killed holder's lease lapses soon.
const KILL_LEASE_TTL: Duration = Duration::from_secs(2);
/// The kill run's reuse window. Each process killed while it holds a session's lease
/// delays the next presentation of the session's refresh token by up to two lease lengths
/// (its lease lasts out, then its successor watches the store one more lease length for
/// its late save) and a poll; and the window runs from the rotation, not from a later
/// presentation answered inside it. Kills can land on successive holders of one session
/// (the successor of a killed holder killed in turn, while it waits), so the window covers
/// three such deaths in a row (about 15 s).
const KILL_REUSE_WINDOW: Duration = Duration::from_secs(20);
/// Random kills happen from `go` until this; a kill while holding is set up by then and
/// happens at most [`HOLDING_WAIT`] later.
const KILL_UNTIL: Duration = Duration::from_secs(6);
/// How long the kill run waits for the answer it holds back before it kills at random
/// instead.
const HOLDING_WAIT: Duration = Duration::from_secs(2);
/// After the last kill, two deaths in a row have been recovered from (about 10 s).
const KILL_MARK_AT: Duration = Duration::from_secs(17);
const KILL_STOP_AT: Duration = Duration::from_secs(20);

/// How many workers the kill run kills at random moments (`CHAOS_KILLS` overrides, up to 40).
fn random_kills() -> usize {
    std::env::var("CHAOS_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .min(40)
}

fn workers() -> usize {
    std::env::var("CHAOS_WORKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(WORKERS)
        .clamp(1, 8)
}

/// Whether the fault family `name` (one of [`FAULTS`]) is injected in this run.
fn fault(run: Run, name: &str) -> bool {
    debug_assert!(FAULTS.contains(&name));
    if !run.families().contains(&name) {
        return false;
    }
    match std::env::var("CHAOS_FAULTS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|f| f.trim() == name),
        _ => true,
    }
}

/// Straight to stderr: the harness captures `eprintln!` of passing tests, and CI should show
/// the counts either way.
fn report(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

fn fingerprint_of(hash: &TokenHash) -> String {
    hash.to_hex()[..16].to_owned()
}

/// The session a subject belongs to: subjects are `<session>/g<generation>`.
fn session_of(subject: &str) -> &str {
    subject.split('/').next().unwrap_or(subject)
}

// ---- the issuer's records -----------------------------------------------------------------

/// What the issuer answered one presented refresh token.
#[derive(Clone, Debug)]
struct Presented {
    hash: TokenHash,
    subject: Option<String>,
    outcome: &'static str,
    /// The worker process that presented it (see [`CALLER`]), and when.
    worker: Option<usize>,
    at: Instant,
}

tokio::task_local! {
    /// The worker process whose call the sandbox is answering (its `x-chaos-worker`
    /// header), for the [`Ledger`]'s records.
    static CALLER: Option<usize>;
}

#[derive(Clone, Default)]
struct LedgerLog {
    /// Every refresh token presented for rotation, in order.
    presented: Vec<Presented>,
    /// The subject of every refresh token minted.
    subject_of: HashMap<TokenHash, String>,
    /// The newest refresh token minted per subject.
    head: HashMap<String, TokenHash>,
    /// Refresh-token fingerprints (what workers print) to hashes.
    by_fingerprint: HashMap<String, TokenHash>,
    issued: u64,
    rotated: u64,
}

impl LedgerLog {
    fn minted(&mut self, subject: &str, hash: TokenHash) {
        self.subject_of.insert(hash, subject.to_owned());
        self.head.insert(subject.to_owned(), hash);
        self.by_fingerprint.insert(fingerprint_of(&hash), hash);
    }
}

/// The sandbox issuer's store: a [`MemoryIssuerStore`] that records every refresh token it
/// mints and every one presented to it, with the answer.
#[derive(Default)]
struct Ledger {
    inner: MemoryIssuerStore,
    log: Mutex<LedgerLog>,
}

impl Ledger {
    /// Whether the issuer would still rotate this refresh token.
    async fn accepts(&self, hash: &TokenHash) -> bool {
        match self.inner.find_by_refresh(hash).await {
            Ok(Some(record)) => {
                matches!(record.state, PairState::Active)
                    && record
                        .refresh_expires_at
                        .is_none_or(|at| at > OffsetDateTime::now_utc())
            }
            _ => false,
        }
    }
}

#[async_trait]
impl IssuerStore for Ledger {
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError> {
        {
            let mut log = lock(&self.log);
            log.issued += 1;
            log.minted(&record.subject, record.refresh_hash);
        }
        self.inner.insert(record).await
    }

    async fn insert_code(&self, record: CodeRecord) -> Result<(), StoreError> {
        self.inner.insert_code(record).await
    }

    async fn redeem_code(&self, redemption: Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        self.inner.redeem_code(redemption).await
    }

    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_access(access).await
    }

    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_refresh(refresh).await
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let presented = *rotation.presented;
        let outcome = self.inner.rotate(rotation).await?;
        let mut log = lock(&self.log);
        let subject = log.subject_of.get(&presented).cloned();
        let outcome_name = match &outcome {
            RotateOutcome::Rotated { subject, tokens } => {
                log.rotated += 1;
                if let Some(refresh) = &tokens.refresh_token {
                    log.minted(subject, TokenHash::of(refresh.expose_secret()));
                }
                "rotated"
            }
            RotateOutcome::Reused { .. } => "reused",
            RotateOutcome::Rejected(RotateRejection::Used { .. }) => "refused:used",
            RotateOutcome::Rejected(RotateRejection::Revoked) => "refused:revoked",
            RotateOutcome::Rejected(RotateRejection::Expired) => "refused:expired",
            RotateOutcome::Rejected(RotateRejection::Unknown) => "refused:unknown",
            _ => "other",
        };
        log.presented.push(Presented {
            hash: presented,
            subject,
            outcome: outcome_name,
            worker: CALLER.try_with(|w| *w).ok().flatten(),
            at: Instant::now(),
        });
        Ok(outcome)
    }

    async fn revoke(&self, token: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.revoke(token, at).await
    }

    async fn revoke_subject(&self, subject: &str, at: OffsetDateTime) -> Result<usize, StoreError> {
        self.inner.revoke_subject(subject, at).await
    }

    async fn revoke_family(
        &self,
        family: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.inner.revoke_family(family, at).await
    }
}

// ---- holding refresh answers back ---------------------------------------------------------

/// A refresh answer kept back after the issuer rotated; dropping `release` lets it go.
struct Held {
    session: String,
    /// The worker process whose call it answers (its `x-chaos-worker` header).
    worker: Option<usize>,
    release: tokio::sync::oneshot::Sender<()>,
}

/// Which sessions' next successful refresh answers to hold back, and where to report them.
#[derive(Clone)]
struct Gate {
    armed: Arc<Mutex<HashMap<String, u32>>>,
    held: tokio::sync::mpsc::UnboundedSender<Held>,
}

impl Gate {
    fn arm(&self, session: &str) {
        *lock(&self.armed).entry(session.to_owned()).or_insert(0) += 1;
    }

    fn disarm(&self, session: &str) {
        lock(&self.armed).remove(session);
    }

    fn take(&self, session: &str) -> bool {
        let mut armed = lock(&self.armed);
        match armed.get_mut(session) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// `POST /token`: the sandbox's own handler; an armed session's successful refresh is
    /// answered only when the test releases it (or after [`HOLD_MAX`]).
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: SandboxContext,
    ) -> http::Response<Vec<u8>> {
        let worker = request
            .headers()
            .get("x-chaos-worker")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut session = None;
        if let Ok(grant) = RefreshTokenGrant::decode_request(&request) {
            let hash = TokenHash::of(grant.refresh_token.expose_secret());
            if let Ok(Some(record)) = cx.issuer().store().find_by_refresh(&hash).await {
                session = Some(session_of(&record.subject).to_owned());
            }
        }
        let response = CALLER
            .scope(worker, TokenHandler::default().handle(request, &cx))
            .await;
        if let Some(session) = session
            && response.status().is_success()
            && self.take(&session)
        {
            let (release, released) = tokio::sync::oneshot::channel();
            let held = Held {
                session,
                worker,
                release,
            };
            if self.held.send(held).is_ok() {
                let _ = tokio::time::timeout(HOLD_MAX, released).await;
            }
        }
        response
    }
}

// ---- the database going away --------------------------------------------------------------

// ---- the workers --------------------------------------------------------------------------

/// One line a worker printed, when it arrived.
#[derive(Clone, Debug)]
struct Line {
    worker: usize,
    at: Instant,
    text: String,
}

/// One worker process.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    /// When the test killed it (SIGKILL) mid-run; a fresh process took its place.
    killed: Option<Instant>,
}

/// The worker processes, their stdout lines and the held answers; killed when dropped.
///
/// A worker is named by its process number (in spawn order: what its lines and its calls
/// carry); the `slots` are the places a killed worker's successor takes over.
struct Rig {
    run: Run,
    args: Vec<(&'static str, String)>,
    workers: Vec<Worker>,
    /// The process in each slot now.
    slots: Vec<usize>,
    tx: tokio::sync::mpsc::UnboundedSender<Line>,
    lines: tokio::sync::mpsc::UnboundedReceiver<Line>,
    held: tokio::sync::mpsc::UnboundedReceiver<Held>,
    /// Held answers not yet released.
    holding: Vec<Held>,
    seen: Vec<Line>,
}

impl Rig {
    fn spawn(
        run: Run,
        args: Vec<(&'static str, String)>,
        held: tokio::sync::mpsc::UnboundedReceiver<Held>,
    ) -> Self {
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let mut rig = Self {
            run,
            args,
            workers: Vec::new(),
            slots: Vec::new(),
            tx,
            lines,
            held,
            holding: Vec::new(),
            seen: Vec::new(),
        };
        for _ in 0..workers() {
            let index = rig.start_process();
            rig.slots.push(index);
        }
        rig
    }

    /// Starts a worker process; its process number.
    fn start_process(&mut self) -> usize {
        let index = self.workers.len();
        let mut command = Command::new(env!("CARGO_BIN_EXE_chaos_worker"));
        command
            .arg("--index")
            .arg(index.to_string())
            // Worker 1's hook panics once.
            .arg("--panic-hook")
            .arg(if index == 1 && fault(self.run, "panic") {
                "1"
            } else {
                "0"
            })
            .env("RUST_BACKTRACE", "0");
        for (name, value) in &self.args {
            let value = if *name == "seed" {
                format!("{}", value.parse::<u64>().unwrap() ^ (index as u64 + 1))
            } else {
                value.clone()
            };
            command.arg(format!("--{name}")).arg(value);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chaos_worker");
        let stdout = child.stdout.take().unwrap();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                if std::env::var_os("CHAOS_TRACE").is_some() {
                    report(&format!("[w{index}] {text}\n"));
                }
                let line = Line {
                    worker: index,
                    at: Instant::now(),
                    text,
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        self.workers.push(Worker {
            child,
            stdin,
            killed: None,
        });
        index
    }

    /// The slot process `worker` is in, if it is still in one.
    fn slot_of(&self, worker: usize) -> Option<usize> {
        self.slots.iter().position(|&w| w == worker)
    }

    /// Arms the gate for `session`, asks the worker in slot `asked` to refresh it, and waits
    /// (at most [`HOLDING_WAIT`]) for a refresh answer of it to be held: that answer, and
    /// the slot of the worker it answers.
    async fn hold_answer(
        &mut self,
        gate: &Gate,
        session: &str,
        asked: usize,
    ) -> Option<(Held, usize)> {
        gate.arm(session);
        self.send(asked, &format!("refresh {session}"));
        let held = self.wait_held(session, HOLDING_WAIT).await;
        gate.disarm(session);
        if !held {
            return None;
        }
        let at = self.holding.iter().position(|h| h.session == session)?;
        let holder = self.holding.remove(at);
        match holder.worker.and_then(|w| self.slot_of(w)) {
            Some(slot) => Some((holder, slot)),
            None => {
                self.holding.push(holder);
                None
            }
        }
    }

    /// Kills the worker in `slot` outright (SIGKILL: no drain, no save, no lease release)
    /// and starts a fresh process in its place, told to `go` once it is ready. Whether the
    /// successor became ready in time.
    async fn kill_and_replace(&mut self, slot: usize) -> bool {
        let killed = &mut self.workers[self.slots[slot]];
        killed.stdin.take();
        // `Child::kill` is SIGKILL on Unix.
        let _ = killed.child.kill();
        let _ = killed.child.wait();
        killed.killed = Some(Instant::now());
        let index = self.start_process();
        self.slots[slot] = index;
        let ready = self
            .wait_line(Duration::from_secs(30), |l| {
                l.worker == index && l.text == "ready"
            })
            .await
            .is_some();
        self.send(slot, "go");
        ready
    }

    /// Sends `command` to the worker in `slot`.
    fn send(&mut self, slot: usize, command: &str) {
        if let Some(stdin) = self.workers[self.slots[slot]].stdin.as_mut() {
            // A worker that died cannot be told anything; its absence is reported at the end.
            let _ = stdin.write_all(format!("{command}\n").as_bytes());
            let _ = stdin.flush();
        }
    }

    fn send_all(&mut self, command: &str) {
        for slot in 0..self.slots.len() {
            self.send(slot, command);
        }
    }

    fn record(&mut self, line: Line) -> Line {
        self.seen.push(line.clone());
        line
    }

    /// Collects lines and held answers until `deadline`.
    async fn pump_until(&mut self, deadline: Instant) {
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            tokio::select! {
                line = self.lines.recv() => match line {
                    Some(line) => { self.record(line); }
                    None => { tokio::time::sleep(left).await; }
                },
                held = self.held.recv() => {
                    if let Some(held) = held { self.holding.push(held); }
                }
                _ = tokio::time::sleep(left) => {}
            }
        }
    }

    /// Waits (bounded) for a line matching `want` from any worker; returns it.
    async fn wait_line(&mut self, bound: Duration, want: impl Fn(&Line) -> bool) -> Option<Line> {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            tokio::select! {
                line = self.lines.recv() => {
                    let line = self.record(line?);
                    if want(&line) {
                        return Some(line);
                    }
                }
                held = self.held.recv() => {
                    if let Some(held) = held { self.holding.push(held); }
                }
                _ = tokio::time::sleep(left) => return None,
            }
        }
    }

    /// Waits (bounded) until every worker in a slot printed a line equal to `text`.
    async fn wait_all(&mut self, text: &str, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            let missing = (self.slots.iter())
                .filter(|&&w| !self.seen.iter().any(|l| l.worker == w && l.text == text))
                .count();
            if missing == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.wait_line(left, |l| l.text == text).await.is_none() {
                return false;
            }
        }
    }

    /// Waits (bounded) until an answer for `session` is held back.
    async fn wait_held(&mut self, session: &str, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            if self.holding.iter().any(|h| h.session == session) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            tokio::select! {
                line = self.lines.recv() => if let Some(line) = line { self.record(line); },
                held = self.held.recv() => if let Some(held) = held { self.holding.push(held); },
                _ = tokio::time::sleep(left) => return false,
            }
        }
    }

    /// Lets every held answer go.
    fn release_all(&mut self) {
        for held in self.holding.drain(..) {
            let _ = held.release.send(());
        }
    }

    /// Waits (bounded) for every worker to exit, collecting what they print; their exit codes
    /// by process number (`None`: still running at the bound, then killed; -1: killed by a
    /// signal, as the test kills mid-run).
    async fn wait_exits(&mut self, bound: Duration) -> Vec<Option<i32>> {
        let deadline = Instant::now() + bound;
        let mut codes = vec![None; self.workers.len()];
        loop {
            for (worker, code) in codes.iter_mut().enumerate() {
                if code.is_none()
                    && let Ok(Some(status)) = self.workers[worker].child.try_wait()
                {
                    *code = Some(status.code().unwrap_or(-1));
                }
            }
            if codes.iter().all(Option::is_some) || Instant::now() >= deadline {
                break;
            }
            self.pump_until(Instant::now() + Duration::from_millis(50))
                .await;
        }
        // What they printed last.
        self.pump_until(Instant::now() + Duration::from_millis(300))
            .await;
        codes
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.release_all();
        for worker in &mut self.workers {
            worker.stdin.take();
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }
}

// ---- one scenario -------------------------------------------------------------------------

enum Backend {
    File {
        dir: std::path::PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
        proxy: Proxy,
    },
}

#[derive(Clone, Copy, Debug)]
enum Action {
    LongRetryAfter,
    ShortFailures,
    Revoke,
    InsertRace,
    DatabaseOutage,
    /// A worker killed at a random moment.
    Kill,
    /// A worker killed while it holds a session's lease and the issuer has rotated its
    /// refresh token, before it could save the new pair (its answer is held back).
    KillHolding,
    /// A worker killed a moment (up to 40 ms) after its held answer was let go.
    KillSaving,
}

/// What the schedule did.
struct Injected {
    long_retry_after: u32,
    short_failures: u32,
    revoked: Option<Instant>,
    races_set_up: u32,
    races_missed: u32,
    inserts_ok: u32,
    inserts_failed: u32,
    inserts_unanswered: u32,
    outages: u32,
    /// Workers killed at a random moment.
    kills: u32,
    /// Workers killed while their refresh answer was held; of those, answers then released
    /// (to a dead process) rather than dropped.
    kills_holding: u32,
    kills_released: u32,
    /// Workers killed a moment after their held answer was let go.
    kills_saving: u32,
    /// Kills while holding that were not set up (no answer held in time; a plain kill then).
    kills_missed: u32,
    /// Successors that did not say `ready` in time.
    slow_successors: u32,
    /// Sessions whose refresh answer was held back when the workers were stopped.
    in_flight_at_stop: Vec<String>,
    skipped_late: u32,
    late: Duration,
    /// When the workers were told to go.
    go: Instant,
}

fn seed() -> u64 {
    match std::env::var("CHAOS_SEED") {
        Ok(seed) if !seed.is_empty() => seed.parse().expect("CHAOS_SEED is a u64"),
        _ => {
            let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
            nanos ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

fn schedule(rng: &mut StdRng, postgres: bool, run: Run) -> Vec<(Duration, Action)> {
    let fault = |name| fault(run, name);
    let mut at = |from: u64, to: u64| Duration::from_millis(rng.random_range(from..=to));
    // Every time is drawn whether or not its fault is on, so a seed means one schedule.
    let mut actions = Vec::new();
    if run == Run::Kills {
        let until = KILL_UNTIL.as_millis() as u64;
        for action in [Action::KillHolding, Action::KillHolding, Action::KillSaving] {
            let time = at(1_000, until - HOLDING_WAIT.as_millis() as u64);
            if fault("kill") {
                actions.push((time, action));
            }
        }
        for _ in 0..random_kills() {
            let time = at(500, until);
            if fault("kill") {
                actions.push((time, Action::Kill));
            }
        }
        for _ in 0..2 {
            let time = at(1_000, until);
            if fault("short503") {
                actions.push((time, Action::ShortFailures));
            }
        }
        actions.sort_by_key(|(at, _)| *at);
        return actions;
    }
    for _ in 0..2 {
        let time = at(2_000, 12_000);
        if fault("long503") {
            actions.push((time, Action::LongRetryAfter));
        }
    }
    let time = at(4_000, 8_000);
    if fault("revoke") {
        actions.push((time, Action::Revoke));
    }
    for _ in 0..3 {
        let time = at(1_000, 18_000);
        if fault("short503") {
            actions.push((time, Action::ShortFailures));
        }
    }
    for _ in 0..4 {
        let time = at(2_000, 18_000);
        if fault("insert") {
            actions.push((time, Action::InsertRace));
        }
    }
    let time = at(6_000, 14_000);
    if postgres && fault("outage") {
        actions.push((time, Action::DatabaseOutage));
    }
    actions.sort_by_key(|(at, _)| *at);
    assert!(actions.iter().all(|(at, _)| *at <= CHAOS_UNTIL));
    actions
}

/// Runs one scenario; returns its report and whether every invariant held.
async fn scenario(
    run: Run,
    name: &str,
    test: &str,
    backend: Backend,
    store: Arc<dyn TokenStore>,
) -> (String, bool) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    report(&format!(
        "chaos[{name}]: seed {seed} (replay: CHAOS_SEED={seed} cargo test -p tests --all-features --test chaos -- {test})\n"
    ));

    let ledger = Arc::new(Ledger::default());
    let (held_tx, held_rx) = tokio::sync::mpsc::unbounded_channel();
    let gate = Gate {
        armed: Arc::new(Mutex::new(HashMap::new())),
        held: held_tx,
    };
    let sandbox = {
        let gate = gate.clone();
        Sandbox::builder()
            .issuer_config(
                IssuerConfig::default()
                    .with_access_ttl(ACCESS_TTL)
                    .with_reuse_window(run.reuse_window()),
            )
            .issuer_store(ledger.clone())
            .route(
                http::Method::POST,
                "/token",
                move |request: http::Request<Vec<u8>>, cx: SandboxContext| {
                    let gate = gate.clone();
                    async move { gate.handle(request, cx).await }
                },
            )
            .start()
            .await
            .unwrap()
    };

    // Every session starts at generation 0, issued to `<session>/g0`.
    let sessions: Vec<String> = (0..SESSIONS).map(|i| format!("s{i}")).collect();
    for session in &sessions {
        let set = sandbox.issue(&format!("{session}/g0")).await.unwrap();
        store
            .save(
                &SessionKey::new(PROVIDER, session.as_str()),
                &set.into(),
                None,
            )
            .await
            .unwrap();
    }

    let mut args = vec![
        ("base-url", sandbox.base_url().to_string()),
        ("sessions", sessions.join(",")),
        ("seed", seed.to_string()),
        ("lease-ttl-ms", run.lease_ttl().as_millis().to_string()),
        (
            "reuse-window-ms",
            run.reuse_window().as_millis().to_string(),
        ),
    ];
    match &backend {
        Backend::File { dir } => {
            args.push(("store", "file".into()));
            args.push(("dir", dir.display().to_string()));
        }
        Backend::Postgres {
            url, schema, proxy, ..
        } => {
            let mut through = url::Url::parse(url).unwrap();
            through.set_host(Some("127.0.0.1")).unwrap();
            through.set_port(Some(proxy.addr.port())).unwrap();
            args.push(("store", "postgres".into()));
            args.push(("db", through.to_string()));
            args.push(("schema", schema.clone()));
        }
    }
    let mut rig = Rig::spawn(run, args, held_rx);
    assert!(
        rig.wait_all("ready", Duration::from_secs(60)).await,
        "chaos[{name}]: the workers did not all start: {:?}",
        rig.seen
    );
    rig.send_all("go");
    let go = Instant::now();

    // The faults.
    let mut injected = Injected {
        long_retry_after: 0,
        short_failures: 0,
        revoked: None,
        races_set_up: 0,
        races_missed: 0,
        inserts_ok: 0,
        inserts_failed: 0,
        inserts_unanswered: 0,
        outages: 0,
        kills: 0,
        kills_holding: 0,
        kills_released: 0,
        kills_saving: 0,
        kills_missed: 0,
        slow_successors: 0,
        in_flight_at_stop: Vec::new(),
        skipped_late: 0,
        late: Duration::ZERO,
        go,
    };
    let mut next_generation = 1u32;
    for (at, action) in schedule(&mut rng, matches!(backend, Backend::Postgres { .. }), run) {
        rig.pump_until(go + at).await;
        injected.late = injected.late.max(go.elapsed().saturating_sub(at));
        match action {
            // Late (an earlier action took long): the retry would run into the liveness
            // window; leave it out.
            Action::LongRetryAfter | Action::DatabaseOutage if go.elapsed() > LATEST_LONG_FAULT => {
                injected.skipped_late += 1;
            }
            Action::LongRetryAfter => {
                sandbox.fail_next(
                    "/token",
                    1,
                    Failure::service_unavailable().with_retry_after(LONG_RETRY_AFTER),
                );
                injected.long_retry_after += 1;
            }
            Action::ShortFailures => {
                sandbox.fail_next(
                    "/token",
                    2,
                    Failure::service_unavailable().with_retry_after(1),
                );
                injected.short_failures += 2;
            }
            Action::Revoke => {
                // Before the call: no refusal of the revoked pair can come earlier.
                let at = Instant::now();
                let revoked = sandbox
                    .issuer()
                    .revoke_subject(&format!("{REVOKED}/g0"))
                    .await
                    .unwrap();
                if revoked > 0 {
                    injected.revoked = Some(at);
                }
            }
            Action::InsertRace => {
                // A refresh of the session is under way (the issuer has rotated, its answer
                // is held back) when a new set is inserted for it; then the answer arrives.
                let session = sessions[rng.random_range(1..SESSIONS)].clone();
                gate.arm(&session);
                rig.send(
                    rng.random_range(0..workers()),
                    &format!("refresh {session}"),
                );
                if rig.wait_held(&session, Duration::from_secs(6)).await {
                    injected.races_set_up += 1;
                } else {
                    injected.races_missed += 1;
                }
                gate.disarm(&session);
                let subject = format!("{session}/g{next_generation}");
                next_generation += 1;
                // A new authorization: a pair issued to `subject`, for no client in
                // particular (the workers refresh without client authentication), handed to
                // a worker to insert, as an application hands over a login.
                let login = sandbox.issue(&subject).await.unwrap();
                let login = serde_json::to_string(&login).unwrap();
                rig.send(
                    rng.random_range(0..workers()),
                    &format!("insert {session} {subject} {login}"),
                );
                let prefix = format!("inserted {session} {subject} ");
                match rig
                    .wait_line(Duration::from_secs(10), |l| l.text.starts_with(&prefix))
                    .await
                {
                    Some(line) if line.text.ends_with(" ok") => injected.inserts_ok += 1,
                    Some(_) => injected.inserts_failed += 1,
                    None => injected.inserts_unanswered += 1,
                }
                rig.release_all();
            }
            Action::DatabaseOutage => {
                if let Backend::Postgres { proxy, .. } = &backend {
                    proxy.down();
                    rig.pump_until(Instant::now() + Duration::from_secs(3))
                        .await;
                    proxy.restore();
                    injected.outages += 1;
                }
            }
            Action::Kill => {
                let slot = rng.random_range(0..workers());
                injected.kills += 1;
                if !rig.kill_and_replace(slot).await {
                    injected.slow_successors += 1;
                }
            }
            Action::KillHolding | Action::KillSaving => {
                // A refresh is asked of some worker; whichever worker's refresh of the
                // session the issuer answers first (it rotated), its answer is held back.
                let session = sessions[rng.random_range(0..SESSIONS)].clone();
                let release = rng.random_bool(0.5);
                let asked = rng.random_range(0..workers());
                let fallback = rng.random_range(0..workers());
                let saving_for = Duration::from_millis(rng.random_range(0..=40));
                let (holder, slot) = match rig.hold_answer(&gate, &session, asked).await {
                    Some((holder, slot)) => (Some(holder), slot),
                    None => {
                        injected.kills_missed += 1;
                        (None, fallback)
                    }
                };
                match (action, holder) {
                    // That worker is killed: it holds the lease and a pair nobody saved. The
                    // answer then goes to a dead process, or is never sent.
                    (Action::KillHolding, Some(holder)) => {
                        injected.kills_holding += 1;
                        if !rig.kill_and_replace(slot).await {
                            injected.slow_successors += 1;
                        }
                        if release {
                            injected.kills_released += 1;
                            let _ = holder.release.send(());
                        }
                    }
                    // The answer is let go, and the worker killed a moment later: as it
                    // reads, saves or publishes the pair, or releases the lease.
                    (_, Some(holder)) => {
                        injected.kills_saving += 1;
                        let _ = holder.release.send(());
                        rig.pump_until(Instant::now() + saving_for).await;
                        if !rig.kill_and_replace(slot).await {
                            injected.slow_successors += 1;
                        }
                    }
                    (_, None) => {
                        if !rig.kill_and_replace(slot).await {
                            injected.slow_successors += 1;
                        }
                    }
                }
            }
        }
    }
    let (mark_at, stop_at) = run.mark_and_stop();
    assert!(
        go.elapsed() < mark_at,
        "chaos[{name}]: the fault schedule overran the liveness window ({:?})",
        go.elapsed()
    );
    rig.release_all();

    // Quiet: every session should recover; then the liveness window.
    rig.pump_until(go + mark_at).await;
    rig.send_all("mark");
    rig.pump_until(go + stop_at).await;

    // Shutdown while refreshes are in flight: hold two sessions' answers, stop every worker,
    // and let the answers go once the workers are draining.
    let mut stop_sessions = Vec::new();
    while stop_sessions.len() < 2 {
        let session = sessions[rng.random_range(1..SESSIONS)].clone();
        if !stop_sessions.contains(&session) {
            stop_sessions.push(session);
        }
    }
    if !fault(run, "stop") {
        stop_sessions.clear();
    }
    for session in &stop_sessions {
        gate.arm(session);
    }
    for session in &stop_sessions {
        if rig.wait_held(session, Duration::from_secs(5)).await {
            injected.in_flight_at_stop.push(session.clone());
        }
        gate.disarm(session);
    }
    rig.send_all("stop");
    rig.wait_all("stopping", Duration::from_secs(15)).await;
    rig.release_all();
    let codes = rig.wait_exits(Duration::from_secs(20)).await;
    rig.release_all();
    let ran_for = go.elapsed();

    let verdict = check(
        run,
        name,
        &rig,
        &ledger,
        store.as_ref(),
        &sessions,
        &injected,
        &codes,
        ran_for,
    )
    .await;
    drop(rig);
    sandbox.shutdown().await;
    report(&format!(
        "chaos[{name}]: done in {:.1}s\n",
        started.elapsed().as_secs_f64()
    ));
    verdict
}

/// One violation of an invariant, for the report.
struct Violations {
    name: &'static str,
    items: Vec<String>,
}

impl Violations {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            items: Vec::new(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn check(
    run: Run,
    name: &str,
    rig: &Rig,
    ledger: &Ledger,
    store: &dyn TokenStore,
    sessions: &[String],
    injected: &Injected,
    codes: &[Option<i32>],
    ran_for: Duration,
) -> (String, bool) {
    let mut refreshed: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut refreshes = 0u64;
    let mut adoptions = 0u64;
    let mut reauth_events = 0u64;
    let mut failed_kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut call_failures: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut hook_panics = 0u64;
    // Re-auth declarations: each `event S reauth` line, with what the worker then found in
    // the store (its next `reauth-seen S` line).
    let mut declarations: Vec<(&Line, String, String, String)> = Vec::new();
    let mut live: Vec<(usize, String, String, String)> = Vec::new();
    let mut finished = vec![false; codes.len()];
    let mut shutdowns: BTreeMap<String, u64> = BTreeMap::new();
    // Each session's newest generation successfully inserted (0: the first set).
    let mut generation: HashMap<String, u32> = HashMap::new();
    for line in &rig.seen {
        let words: Vec<&str> = line.text.split_whitespace().collect();
        match words.as_slice() {
            ["event", session, "refreshed", version] => {
                refreshes += 1;
                if *version != "-" {
                    refreshed
                        .entry(((*session).to_owned(), (*version).to_owned()))
                        .or_default()
                        .push(line.worker);
                }
            }
            ["event", _, "adopted", _] => adoptions += 1,
            ["event", session, "reauth", _] => {
                reauth_events += 1;
                declarations.push((line, (*session).to_owned(), "?".into(), "?".into()));
            }
            ["event", _, "refresh_failed", _, kind] => {
                *failed_kinds.entry((*kind).to_owned()).or_default() += 1;
            }
            ["reauth-seen", session, version, what] => {
                if let Some(declaration) = declarations
                    .iter_mut()
                    .find(|(l, s, v, _)| l.worker == line.worker && s == session && v == "?")
                {
                    declaration.2 = (*version).to_owned();
                    declaration.3 = (*what).to_owned();
                }
            }
            ["fault", "hook-panic", _] => hook_panics += 1,
            ["fail", session, kind, ..] => {
                call_failures
                    .entry((*kind).to_owned())
                    .or_default()
                    .insert((*session).to_owned());
            }
            ["live", session, state, kind] => live.push((
                line.worker,
                (*session).to_owned(),
                (*state).to_owned(),
                (*kind).to_owned(),
            )),
            ["shutdown", outcome, ..] => *shutdowns.entry((*outcome).to_owned()).or_default() += 1,
            ["inserted", session, subject, "ok"] => {
                let g = subject.rsplit("/g").next().and_then(|g| g.parse().ok());
                let newest = generation.entry((*session).to_owned()).or_default();
                *newest = (*newest).max(g.unwrap_or(0));
            }
            ["bye"] => finished[line.worker] = true,
            _ => {}
        }
    }
    let log = lock(&ledger.log).clone();

    // (1) No refresh token presented twice; with a reuse window (the kill run), none
    // presented again after its window ended: every later presentation got the same
    // successor back (`reused`).
    let mut twice = Violations::new(if run.reuse_window().is_zero() {
        "(1) refresh token presented twice"
    } else {
        "(1) refresh token presented again after its reuse window (or after its successor was spent)"
    });
    let mut by_hash: HashMap<TokenHash, Vec<&Presented>> = HashMap::new();
    for presented in &log.presented {
        by_hash.entry(presented.hash).or_default().push(presented);
    }
    let within_window = |p: &&Vec<&Presented>| {
        !run.reuse_window().is_zero() && p[1..].iter().all(|p| p.outcome == "reused")
    };
    let reused = by_hash
        .values()
        .filter(|p| p.len() > 1)
        .filter(within_window)
        .map(|p| p.len() - 1)
        .sum::<usize>();
    let mut repeated: Vec<_> = by_hash
        .values()
        .filter(|p| p.len() > 1 && !within_window(p))
        .collect();
    repeated.sort_by_key(|p| p[0].subject.clone());
    let mut presented_twice = 0;
    for presentations in repeated {
        presented_twice += presentations.len() - 1;
        let since_go = |at: Instant| at.saturating_duration_since(injected.go).as_secs_f64();
        let outcomes: Vec<String> = (presentations.iter())
            .map(|p| match p.worker {
                Some(w) => format!("{} (w{w} +{:.1}s)", p.outcome, since_go(p.at)),
                None => format!("{} (+{:.1}s)", p.outcome, since_go(p.at)),
            })
            .collect();
        let (first, last) = (
            presentations[0].at,
            presentations[presentations.len() - 1].at,
        );
        // Kills from shortly before the first presentation to the last.
        let kills: Vec<String> = (rig.workers.iter().enumerate())
            .filter_map(|(w, worker)| worker.killed.map(|at| (w, at)))
            .filter(|(_, at)| *at + run.lease_ttl() * 2 >= first && *at <= last)
            .map(|(w, at)| format!("w{w} +{:.1}s", since_go(at)))
            .collect();
        twice.items.push(format!(
            "{} rt#{} presented {}x: {}{}",
            presentations[0].subject.as_deref().unwrap_or("?"),
            &fingerprint_of(&presentations[0].hash)[..8],
            presentations.len(),
            outcomes.join(", "),
            if kills.is_empty() {
                String::new()
            } else {
                format!("; killed meanwhile: {}", kills.join(", "))
            }
        ));
    }

    // (2) and (3): re-auth declarations. Only the revoked session may be declared dead, once,
    // after the issuer refused its head; the store then holds the verdict.
    let mut false_reauth =
        Violations::new("(2) re-auth declared though the issuer had not refused the session");
    let mut duplicated = Violations::new("(3) event reported twice across processes");
    // The session revoked at the issuer, if it was.
    let revoked = injected.revoked.map(|_| REVOKED);
    let revoked_refused = log
        .presented
        .iter()
        .any(|p| p.outcome == "refused:revoked" && p.subject.as_deref() == Some("s0/g0"));
    let mut legit_taken = false;
    let mut declared: HashSet<(String, String)> = HashSet::new();
    for (line, session, version, what) in &declarations {
        let holds_valid = match what.strip_prefix("tokens:") {
            Some(fp) => match log.by_fingerprint.get(fp) {
                Some(hash) => ledger.accepts(hash).await,
                None => false,
            },
            None => false,
        };
        let after_revoke = injected.revoked.is_some_and(|at| line.at >= at);
        let first_of_its_kind = declared.insert((session.clone(), version.clone()));
        if Some(session.as_str()) == revoked && revoked_refused && after_revoke && !holds_valid {
            if legit_taken {
                duplicated.items.push(format!(
                    "worker {} declared re-auth for {session} again (store then at v{version}, {what})",
                    line.worker
                ));
            } else {
                legit_taken = true;
            }
            continue;
        }
        false_reauth.items.push(format!(
            "worker {} declared re-auth for {session}; the store then held v{version} {what}{}",
            line.worker,
            if holds_valid {
                " (a pair the issuer still accepts)"
            } else {
                ""
            }
        ));
        if !first_of_its_kind && version != "?" {
            duplicated.items.push(format!(
                "worker {} declared re-auth for {session} again, with the store at the same v{version}",
                line.worker
            ));
        }
    }
    for ((session, version), workers) in &refreshed {
        if workers.len() > 1 {
            duplicated.items.push(format!(
                "Refreshed {session} v{version} reported by workers {workers:?}"
            ));
        }
    }

    // (4) Nothing lost: the store holds the newest pair of the newest generation.
    let mut lost =
        Violations::new("(4) stored pair not the newest the issuer issued (lost or overwritten)");
    for session in sessions {
        let key = SessionKey::new(PROVIDER, session.as_str());
        let record = store.load(&key).await;
        if Some(session.as_str()) == revoked {
            match &record {
                Ok(Some(r)) if r.value.reauth().is_some() => {}
                other => duplicated.items.push(format!(
                    "the revoked session {session} has no re-auth verdict in the store: {}",
                    describe(other)
                )),
            }
            if !legit_taken && revoked_refused {
                false_reauth.items.push(format!(
                    "no worker declared the re-auth of the revoked session {session}"
                ));
            }
            continue;
        }
        let subject = format!(
            "{session}/g{}",
            generation.get(session).copied().unwrap_or(0)
        );
        let Some(head) = log.head.get(&subject) else {
            lost.items
                .push(format!("{session}: the issuer never issued {subject}"));
            continue;
        };
        let stored = match &record {
            Ok(Some(r)) => r.value.tokens().and_then(|set| set.refresh_token.as_ref()),
            _ => None,
        };
        let Some(stored) = stored else {
            lost.items.push(format!(
                "{session}: the store holds {} where the issuer's newest is {subject} rt#{}",
                describe(&record),
                &fingerprint_of(head)[..8]
            ));
            continue;
        };
        let stored = TokenHash::of(stored.expose_secret());
        if stored == *head {
            if !ledger.accepts(head).await {
                lost.items.push(format!(
                    "{session}: the stored newest pair of {subject} is no longer accepted"
                ));
            }
            continue;
        }
        let problem = match log.subject_of.get(&stored) {
            Some(s) if *s == subject => "a newer pair of the same generation was not persisted",
            Some(s) if session_of(s) == session => "an older generation overwrote the inserted set",
            Some(_) => "another session's pair",
            None => "a pair the issuer never issued",
        };
        let stored_subject = log.subject_of.get(&stored).cloned().unwrap_or_default();
        let at_stop = if injected.in_flight_at_stop.contains(session) {
            " (a refresh of it was in flight at the stop)"
        } else {
            ""
        };
        lost.items.push(format!(
            "{session}: stored {stored_subject} rt#{}, newest {subject} rt#{}: {problem}{at_stop}",
            &fingerprint_of(&stored)[..8],
            &fingerprint_of(head)[..8]
        ));
    }

    // (5) No session wedged.
    let mut wedged = Violations::new("(5) session wedged (no token in the liveness window)");
    for (worker, session, state, kind) in &live {
        if Some(session.as_str()) != revoked && state != "ok" {
            wedged.items.push(format!(
                "worker {worker} got no token for {session} (last failure: {kind})"
            ));
        }
    }

    // The run itself.
    let mut broken = Vec::new();
    for (worker, code) in codes.iter().enumerate() {
        if rig.workers[worker].killed.is_some() {
            continue;
        }
        if *code != Some(0) || !finished[worker] {
            broken.push(format!(
                "worker {worker} exited with {code:?} (finished: {})",
                finished[worker]
            ));
        }
    }

    let all = [&twice, &false_reauth, &duplicated, &lost, &wedged];
    let mut text = String::new();
    let _ = writeln!(
        text,
        "chaos[{name}]: {} workers ({} processes in all), {SESSIONS} sessions, reuse window {:?}, faults {}, ran {:.1}s (schedule late by at most {:.1}s)",
        rig.slots.len(),
        codes.len(),
        run.reuse_window(),
        match FAULTS
            .iter()
            .filter(|f| fault(run, f))
            .copied()
            .collect::<Vec<_>>()
        {
            on if on.is_empty() => "none".to_owned(),
            on => on.join(","),
        },
        ran_for.as_secs_f64(),
        injected.late.as_secs_f64()
    );
    let _ = writeln!(
        text,
        "  counts: refreshes {refreshes} (issuer: {} rotations, {} pairs issued, {} presentations refused, {reused} answered again inside the reuse window), adoptions {adoptions}, re-auth events {reauth_events}, refresh failures {failed_kinds:?}",
        log.rotated,
        log.issued,
        log.presented
            .iter()
            .filter(|p| p.outcome.starts_with("refused"))
            .count()
    );
    let _ = writeln!(
        text,
        "  faults: 503 Retry-After {LONG_RETRY_AFTER}s x{}, 503 Retry-After 1s x{}, revoked session {REVOKED} {}, insert races {} set up + {} missed (inserts {} ok, {} failed, {} unanswered), database outages {}, hook panics {hook_panics}, long faults left out as late {}, refreshes in flight at the stop {:?} (workers' shutdown: {shutdowns:?})",
        injected.long_retry_after,
        injected.short_failures,
        if injected.revoked.is_some() {
            "yes"
        } else {
            "no"
        },
        injected.races_set_up,
        injected.races_missed,
        injected.inserts_ok,
        injected.inserts_failed,
        injected.inserts_unanswered,
        injected.outages,
        injected.skipped_late,
        injected.in_flight_at_stop,
    );
    if run == Run::Kills {
        let _ = writeln!(
            text,
            "  kills: {} at random, {} holding a lease and a rotated pair not yet saved ({} of their answers then released, the rest dropped), {} just after their answer was let go, {} holding kills not set up, {} successors slow to start",
            injected.kills,
            injected.kills_holding,
            injected.kills_released,
            injected.kills_saving,
            injected.kills_missed,
            injected.slow_successors,
        );
    }
    if !call_failures.is_empty() {
        let _ = writeln!(text, "  callers saw failures: {call_failures:?}");
    }
    let _ = writeln!(text, "  invariants:");
    for violations in &all {
        let count = if violations.name.starts_with("(1)") {
            presented_twice
        } else {
            violations.items.len()
        };
        let _ = writeln!(text, "    {}: {} violation(s)", violations.name, count);
        for item in violations.items.iter().take(12) {
            let _ = writeln!(text, "      - {item}");
        }
        if violations.items.len() > 12 {
            let _ = writeln!(text, "      - ... {} more", violations.items.len() - 12);
        }
    }
    for item in &broken {
        let _ = writeln!(text, "  run: {item}");
    }
    let ok = all.iter().all(|v| v.items.is_empty()) && broken.is_empty();
    let _ = writeln!(
        text,
        "chaos[{name}]: {}",
        if ok {
            "every invariant held"
        } else {
            "INVARIANTS VIOLATED"
        }
    );
    (text, ok)
}

fn describe(
    record: &Result<Option<token_core::store::Versioned<StoredRecord>>, StoreError>,
) -> String {
    match record {
        Ok(Some(r)) if r.value.reauth().is_some() => format!("a re-auth verdict (v{})", r.version),
        Ok(Some(r)) => format!("tokens (v{})", r.version),
        Ok(None) => "nothing".to_owned(),
        Err(error) => format!("an error ({error})"),
    }
}

// ---- the tests ----------------------------------------------------------------------------

/// The scenarios take the two cores for themselves: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn temp_dir() -> std::path::PathBuf {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("chaos-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn file_store(run: Run, name: &str, test: &str) {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::open(&dir).unwrap());
    let backend = Backend::File { dir: dir.clone() };
    let (text, ok) = scenario(run, name, test, backend, store).await;
    report(&text);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{text}");
}

async fn drop_schema(url: &str, schema: &str) {
    let Ok((client, connection)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return;
    };
    let connection = tokio::spawn(connection);
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await;
    drop(client);
    let _ = connection.await;
}

async fn postgres_store(run: Run, name: &str, test: &str) {
    let Some(url) = test_url(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let parsed = url::Url::parse(&url).unwrap();
    let host = parsed
        .host_str()
        .expect("TOKEN_TEST_POSTGRES_URL has a TCP host to put the proxy in front of")
        .to_owned();
    let proxy = Proxy::start(format!("{host}:{}", parsed.port().unwrap_or(5432))).await;
    let schema = format!(
        "tc_chaos_{}_{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let db = PostgresDatabase::builder(&url)
        .unwrap()
        .schema(&schema)
        .max_connections(2)
        .build()
        .unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(PostgresStore::open(&db).await.unwrap());
    let backend = Backend::Postgres {
        url: url.clone(),
        schema: schema.clone(),
        proxy,
    };
    let (text, ok) = scenario(run, name, test, backend, store).await;
    report(&text);
    drop_schema(&url, &schema).await;
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_file_store() {
    file_store(Run::Faults, "file", "chaos_file_store").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_postgres_store() {
    postgres_store(Run::Faults, "postgres", "chaos_postgres_store").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_file_store() {
    file_store(Run::Kills, "kill-file", "chaos_kill_file_store").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_postgres_store() {
    postgres_store(Run::Kills, "kill-postgres", "chaos_kill_postgres_store").await;
}
