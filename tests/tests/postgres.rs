//! The PostgreSQL token store across processes: single refresh among replicas, a replica
//! killed mid-refresh, and the database going away mid-run.
//!
//! They need a server: `TOKEN_TEST_POSTGRES_URL`, or else the throwaway server this binary
//! starts from the PostgreSQL server binaries ([`token_test_support::pg::test_url`]). Without either they
//! are skipped with a message, except in CI (`CI=true` or `TOKEN_TEST_REQUIRE_POSTGRES=1`),
//! where they fail instead. Each test works in a schema of its own, so they run in parallel.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use token_core::clock::SystemClock;
use token_core::issuer::{Issuer, IssuerConfig, PostgresIssuerStore, TokenHash};
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxOAuth};
use token_core::store::{PostgresStore, SessionKey, TokenStore};
use token_core::{
    error::Error, error::ErrorKind, error::StoreError, manager::TokenManager,
    token_set::StoredTokenSet,
};

use token_core::manager::ManagerConfig;
use token_core::postgres::PostgresDatabase;
use token_core::store::{Lease, StoredRecord, Version, Versioned};
use token_core::token_set::TokenSet;
use token_test_support::pg::{
    PrivateServer, database, drop_schema, scalar, test_url, unique_schema,
};
use token_test_support::proxy::Proxy;
use token_test_support::stores::RecordingIssuerStore;

fn fingerprint(token: &str) -> String {
    TokenHash::of(token).to_hex()[..16].to_owned()
}

/// A first set from the sandbox, whose access token the clients believe has expired.
async fn expired_set(sandbox: &RunningSandbox, subject: &str) -> StoredTokenSet {
    let mut set = sandbox.issue(subject).await.unwrap();
    set.access_expires_at = Some(OffsetDateTime::now_utc() - time::Duration::minutes(1));
    set
}

/// Replicas (`pg_replica` processes) and their stdout lines, killed when dropped.
struct Replicas {
    children: Vec<(Child, Option<ChildStdin>)>,
    lines: mpsc::Receiver<(usize, String)>,
    seen: Vec<Vec<String>>,
}

impl Replicas {
    fn spawn(count: usize, args: &[(&str, String)]) -> Self {
        let (tx, lines) = mpsc::channel();
        let mut children = Vec::new();
        for index in 0..count {
            let mut command = Command::new(env!("CARGO_BIN_EXE_pg_replica"));
            for (name, value) in args {
                command.arg(format!("--{name}")).arg(value);
            }
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn pg_replica");
            let stdout = child.stdout.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send((index, line)).is_err() {
                        break;
                    }
                }
            });
            let stdin = child.stdin.take();
            children.push((child, stdin));
        }
        Self {
            children,
            lines,
            seen: vec![Vec::new(); count],
        }
    }

    /// Waits (bounded) for the next line; returns which replica said it.
    fn next_line(&mut self, bound: Duration) -> Option<(usize, String)> {
        // Blocking: give this worker's tasks (the sandbox's) to another thread meanwhile.
        let (index, line) = tokio::task::block_in_place(|| self.lines.recv_timeout(bound)).ok()?;
        self.seen[index].push(line.clone());
        Some((index, line))
    }

    /// Waits until every replica in `which` said `line`.
    fn wait_all(&mut self, which: &[usize], line: &str, bound: Duration) {
        let deadline = Instant::now() + bound;
        while !which
            .iter()
            .all(|&i| self.seen[i].iter().any(|l| l == line))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                self.next_line(left).is_some(),
                "replicas {which:?} did not all say `{line}` within {bound:?}: {:?}",
                self.seen
            );
        }
    }

    fn go(&mut self) {
        for (_, stdin) in &mut self.children {
            let stdin = stdin.as_mut().expect("stdin is open");
            stdin.write_all(b"go\n").unwrap();
            stdin.flush().unwrap();
        }
    }

    /// Waits (bounded) for replica `index` to exit; its exit code.
    fn wait_exit(&mut self, index: usize, bound: Duration) -> i32 {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.children[index].0.try_wait().unwrap() {
                // Collect what it said before exiting.
                while self.next_line(Duration::from_millis(200)).is_some() {}
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "replica {index} did not finish within {bound:?}: {:?}",
                self.seen[index]
            );
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(50)));
        }
    }

    fn final_line(&self, index: usize) -> String {
        self.seen[index]
            .iter()
            .find(|l| l.starts_with("final "))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "replica {index} printed no final set: {:?}",
                    self.seen[index]
                )
            })
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for (child, stdin) in &mut self.children {
            stdin.take();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Four replicas, many tasks each, one session whose access token has expired: exactly one
/// refresh reaches the provider, and every task of every process ends with the same new set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_refresh_an_expired_session_exactly_once() {
    let Some(url) = test_url("four_processes_refresh_an_expired_session_exactly_once") else {
        return;
    };
    const PROCESSES: usize = 4;
    const TASKS: usize = 40;
    let schema = unique_schema();
    let store = PostgresStore::open(&database(&url, &schema)).await.unwrap();
    let sandbox = Sandbox::builder().start().await.unwrap();
    let initial = expired_set(&sandbox, "customer-1").await;
    let key = SessionKey::new("sandbox-oauth", "customer-1");
    let v0 = store
        .save(&key, &initial.clone().into(), None)
        .await
        .unwrap();
    // The refresh takes a moment, so the replicas surely meet at the lease.
    sandbox.delay_next("/token", 1, Duration::from_millis(800));

    let mut replicas = Replicas::spawn(
        PROCESSES,
        &[
            ("db", url.clone()),
            ("schema", schema.clone()),
            ("base-url", sandbox.base_url().to_string()),
            ("session", "customer-1".to_owned()),
            ("tasks", TASKS.to_string()),
            ("lease-ttl-ms", "10000".to_owned()),
        ],
    );
    let all: Vec<usize> = (0..PROCESSES).collect();
    replicas.wait_all(&all, "ready", Duration::from_secs(60));
    replicas.go();
    for index in 0..PROCESSES {
        let code = replicas.wait_exit(index, Duration::from_secs(60));
        assert_eq!(code, 0, "replica {index}: {:?}", replicas.seen[index]);
        assert!(
            replicas.seen[index].contains(&format!("tasks ok={TASKS} err=0 distinct=1")),
            "replica {index}: {:?}",
            replicas.seen[index]
        );
    }

    assert_eq!(
        sandbox.calls("/token"),
        1,
        "exactly one refresh for all processes"
    );
    let waited = (0..PROCESSES)
        .filter(|&i| replicas.seen[i].iter().any(|l| l == "lease waiting"))
        .count();
    let took = (0..PROCESSES)
        .filter(|&i| replicas.seen[i].iter().any(|l| l == "lease acquired"))
        .count();
    eprintln!("{took} replica(s) took the lease, {waited} waited for another's");
    assert!(
        waited >= 1,
        "the replicas never met at the lease: {:?}",
        replicas.seen
    );
    let stored = store.load(&key).await.unwrap().unwrap();
    assert!(stored.version > v0);
    let new_access = stored.value.tokens().unwrap().access_token.expose_secret();
    assert_ne!(new_access, initial.access_token.expose_secret());
    let expected = format!(
        "final {} {}",
        fingerprint(new_access),
        fingerprint(
            stored
                .value
                .tokens()
                .unwrap()
                .refresh_token
                .as_ref()
                .unwrap()
                .expose_secret()
        )
    );
    for index in 0..PROCESSES {
        assert_eq!(replicas.final_line(index), expected, "replica {index}");
    }
    sandbox.issuer().authenticate(new_access).await.unwrap();
    drop(replicas);
    drop_schema(&url, &schema).await;
}

/// A replica killed (SIGKILL) while it holds the lease and waits for the provider's answer:
/// the others wait for its lease to lapse, one refreshes with the refresh token still stored,
/// and no token is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_refresh_loses_no_token() {
    let Some(url) = test_url("a_replica_killed_mid_refresh_loses_no_token") else {
        return;
    };
    const PROCESSES: usize = 4;
    let schema = unique_schema();
    let store = PostgresStore::open(&database(&url, &schema)).await.unwrap();
    let sandbox = Sandbox::builder().start().await.unwrap();
    let initial = expired_set(&sandbox, "customer-2").await;
    let key = SessionKey::new("sandbox-oauth", "customer-2");
    store
        .save(&key, &initial.clone().into(), None)
        .await
        .unwrap();
    // The first refresh hangs (before the issuer sees it): its replica is killed meanwhile.
    sandbox.delay_next("/token", 1, Duration::from_secs(120));

    let mut replicas = Replicas::spawn(
        PROCESSES,
        &[
            ("db", url.clone()),
            ("schema", schema.clone()),
            ("base-url", sandbox.base_url().to_string()),
            ("session", "customer-2".to_owned()),
            ("tasks", "16".to_owned()),
            ("lease-ttl-ms", "3000".to_owned()),
        ],
    );
    let all: Vec<usize> = (0..PROCESSES).collect();
    replicas.wait_all(&all, "ready", Duration::from_secs(60));
    replicas.go();

    // Find the replica holding the lease, and wait until its refresh is in the sandbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match replicas.next_line(left) {
            Some((index, line)) if line == "lease acquired" => break index,
            Some(_) => {}
            None => panic!("no replica took the lease: {:?}", replicas.seen),
        }
    };
    for _ in 0..400 {
        if sandbox.calls("/token") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        sandbox.calls("/token"),
        1,
        "the victim's refresh is in flight"
    );
    replicas.children[victim].0.kill().unwrap(); // SIGKILL
    let status = replicas.children[victim].0.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    let killed_at = Instant::now();

    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    for &index in &survivors {
        let code = replicas.wait_exit(index, Duration::from_secs(60));
        assert_eq!(code, 0, "replica {index}: {:?}", replicas.seen[index]);
        assert!(
            replicas.seen[index].contains(&"tasks ok=16 err=0 distinct=1".to_owned()),
            "replica {index}: {:?}",
            replicas.seen[index]
        );
    }
    assert!(
        killed_at.elapsed() < Duration::from_secs(30),
        "the survivors carried on once the lease lapsed"
    );
    // The killed call plus exactly one more, by a survivor after the lease lapsed.
    assert_eq!(sandbox.calls("/token"), 2);
    let stored = store.load(&key).await.unwrap().unwrap();
    let access = stored.value.tokens().unwrap().access_token.expose_secret();
    let refresh = stored
        .value
        .tokens()
        .unwrap()
        .refresh_token
        .as_ref()
        .unwrap()
        .expose_secret();
    assert_ne!(access, initial.access_token.expose_secret());
    let expected = format!("final {} {}", fingerprint(access), fingerprint(refresh));
    for &index in &survivors {
        assert_eq!(replicas.final_line(index), expected, "replica {index}");
    }
    // Nothing was lost: the stored access token works and the stored refresh token refreshes.
    sandbox.issuer().authenticate(access).await.unwrap();
    sandbox.issuer().refresh(refresh).await.unwrap();
    drop(replicas);
    drop_schema(&url, &schema).await;
}

/// The database goes away mid-run: every store call and the manager fail with typed,
/// secret-free errors; when it comes back, the same store and manager carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_gives_typed_errors_and_the_store_recovers() {
    let test = "the_database_going_away_gives_typed_errors_and_the_store_recovers";
    let Some(url) = test_url(test) else {
        return;
    };
    let mut through_proxy = url::Url::parse(&url).unwrap();
    let Some(host) = through_proxy.host_str().map(str::to_owned) else {
        eprintln!("{test}: skipped: TOKEN_TEST_POSTGRES_URL has no TCP host to proxy");
        return;
    };
    let upstream = format!("{host}:{}", through_proxy.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    through_proxy.set_host(Some("127.0.0.1")).unwrap();
    through_proxy.set_port(Some(proxy.addr.port())).unwrap();
    const PASSWORD: &str = "pw-must-not-leak-7f3a";
    if through_proxy.password().is_none() {
        // The test server trusts local connections; the password is only there to be hidden.
        through_proxy.set_password(Some(PASSWORD)).unwrap();
    }
    let password = through_proxy.password().unwrap().to_owned();

    let schema = unique_schema();
    let db = database(through_proxy.as_str(), &schema);
    let store = PostgresStore::open(&db).await.unwrap();
    let sandbox = Sandbox::builder().start().await.unwrap();
    let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .store(store.clone())
        .build()
        .unwrap();
    let first = sandbox.issue("customer-3").await.unwrap();
    manager
        .insert(
            "customer-3",
            token_core::token_set::TokenSet::from_stored(first).unwrap(),
        )
        .await
        .unwrap();
    let key = SessionKey::new("sandbox-oauth", "customer-3");
    let v1 = store.load(&key).await.unwrap().unwrap().version;

    proxy.down();
    let mut shown = String::new();
    let check = |error: &StoreError, shown: &mut String| {
        assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
        // Positive control: the text searched below is the store's account of the failure.
        assert!(
            error.to_string().starts_with("store: postgres: "),
            "{error}"
        );
        let mut text = format!("{error} {error:?}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        shown.push_str(&text);
    };
    check(&store.load(&key).await.unwrap_err(), &mut shown);
    check(
        &store
            .save(
                &key,
                &sandbox.issue("other").await.unwrap().into(),
                Some(v1),
            )
            .await
            .unwrap_err(),
        &mut shown,
    );
    check(
        &store
            .acquire_lease(&key, "me", Duration::from_secs(5))
            .await
            .unwrap_err(),
        &mut shown,
    );
    check(&store.delete(&key, Some(v1)).await.unwrap_err(), &mut shown);
    let error = manager.refresh_now("customer-3").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(
        matches!(error, Error::Store(StoreError::Backend { .. })),
        "{error:?}"
    );
    shown.push_str(&format!("{error} {error:?}"));
    // The password looked for is there to be found, in the URL the store was given.
    assert!(password.len() >= 8 && through_proxy.as_str().contains(&password));
    assert!(!shown.contains(&password), "a password leaked: {shown}");
    assert!(
        !shown.contains("rt_") && !shown.contains("at_"),
        "a token leaked: {shown}"
    );
    assert_eq!(
        sandbox.calls("/token"),
        0,
        "nothing refreshed without the lease"
    );

    // The database comes back: the same store reconnects, the manager carries on.
    proxy.restore();
    let mut recovered = None;
    for _ in 0..100 {
        match store.load(&key).await {
            Ok(record) => {
                recovered = record;
                break;
            }
            Err(StoreError::Backend { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        recovered.expect("the store recovered").version,
        v1,
        "nothing lost"
    );
    // A pooled connection may still be finding out that the outage killed it.
    let mut refreshed = None;
    for _ in 0..100 {
        match manager.refresh_now("customer-3").await {
            Ok(token) => {
                refreshed = Some(token);
                break;
            }
            Err(token_core::error::Error::Store(StoreError::Backend { .. })) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    let token = refreshed.expect("the manager carried on");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert!(stored.version > v1);
    assert_eq!(stored.value.tokens().unwrap().access_token, token);
    assert_eq!(sandbox.calls("/token"), 1);
    drop(manager);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// Where in a refresh [`StopsTheServer`] stops the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Once the lease is taken, before the session is read again and the provider called.
    Lease,
    /// After the provider rotated the pair, before the new pair is saved.
    Save,
    /// While the save's statement runs (waiting for the row, which another transaction
    /// holds locked).
    SaveInFlight,
}

/// A `PostgresStore` whose server is stopped (really: `pg_ctl stop`) at one point of the
/// first refresh once armed; every call is then made to the stopped server.
struct StopsTheServer {
    inner: PostgresStore,
    server: std::sync::Arc<PrivateServer>,
    phase: Phase,
    mode: &'static str,
    armed: std::sync::Arc<AtomicBool>,
    /// The `application_name` of the store's connections.
    app: String,
}

impl StopsTheServer {
    fn trip(&self, phase: Phase) {
        if self.phase == phase && self.armed.swap(false, Ordering::SeqCst) {
            tokio::task::block_in_place(|| self.server.stop(self.mode));
        }
    }

    /// Saves while another transaction holds the row locked, and stops the server once the
    /// save's statement waits for it.
    async fn save_in_flight(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        let url = self.server.url().to_owned();
        let (locker, connection) = locking(
            &url,
            &format!(
                "BEGIN; SELECT 1 FROM \"{}\".token_sets WHERE session = '{}' FOR UPDATE",
                self.inner.database().schema(),
                key.session()
            ),
        )
        .await;
        let stopper = {
            let (server, mode, app) = (self.server.clone(), self.mode, self.app.clone());
            tokio::spawn(async move {
                for _ in 0..400 {
                    let waiting = scalar(
                        &url,
                        &format!(
                            "SELECT count(*) FROM pg_stat_activity
                             WHERE application_name = '{app}' AND wait_event_type = 'Lock'"
                        ),
                    )
                    .await;
                    if waiting > 0 {
                        tokio::task::spawn_blocking(move || server.stop(mode))
                            .await
                            .unwrap();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("the save never waited for the locked row");
            })
        };
        let saved = self.inner.save(key, record, expected).await;
        stopper.await.unwrap();
        drop(locker);
        let _ = connection.await;
        saved
    }
}

#[async_trait::async_trait]
impl TokenStore for StopsTheServer {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.inner.load(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        if self.phase == Phase::SaveInFlight && self.armed.swap(false, Ordering::SeqCst) {
            return self.save_in_flight(key, record, expected).await;
        }
        self.trip(Phase::Save);
        self.inner.save(key, record, expected).await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.inner.delete(key, expected).await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let lease = self.inner.acquire_lease(key, holder, ttl).await;
        if matches!(lease, Ok(Lease::Acquired | Lease::TakenOver)) {
            self.trip(Phase::Lease);
        }
        lease
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(key, holder).await
    }
}

/// The PostgreSQL server stopped (`fast`: clients told, then cut; `immediate`: as in a
/// crash) in the middle of a refresh, and started again: every call ends with a typed error
/// or the new token within the store timeout, the same store and manager carry on without a
/// restart, the provider sees each refresh token once, and the rotated pair ends in the
/// database (saved in the background once the server is back, when the stop came between the
/// rotation and the save).
async fn the_server_stopped_mid_refresh(test: &str, phase: Phase, mode: &'static str) {
    let Some(server) = PrivateServer::start(test) else {
        return;
    };
    let server = std::sync::Arc::new(server);
    let schema = unique_schema();
    let app = format!("token-test-stop-{}", std::process::id());
    let db = PostgresDatabase::builder(server.url())
        .unwrap()
        .schema(&schema)
        .application_name(&app)
        .max_connections(2)
        .operation_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let postgres = PostgresStore::open(&db).await.unwrap();
    let armed = std::sync::Arc::new(AtomicBool::new(false));
    let store = StopsTheServer {
        inner: postgres.clone(),
        server: server.clone(),
        phase,
        mode,
        armed: armed.clone(),
        app,
    };
    let issuer = std::sync::Arc::new(RecordingIssuerStore::default());
    let sandbox = Sandbox::builder()
        .issuer_store(issuer.clone())
        .start()
        .await
        .unwrap();
    let store_timeout = Duration::from_secs(5);
    let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .store(store)
        .config(
            ManagerConfig::default()
                .with_store_timeout(store_timeout)
                .with_lease_ttl(Duration::from_secs(3)),
        )
        .build()
        .unwrap();
    let session = "customer-stop";
    let initial = expired_set(&sandbox, session).await;
    manager
        .insert(session, TokenSet::from_stored(initial.clone()).unwrap())
        .await
        .unwrap();
    let key = SessionKey::new("sandbox-oauth", session);
    let v0 = postgres.load(&key).await.unwrap().unwrap().version;

    armed.store(true, Ordering::SeqCst);
    let started = Instant::now();
    // Bounded by the stop itself (pg_ctl waits for it) plus the store calls' timeouts.
    let first = tokio::time::timeout(Duration::from_secs(90), manager.access_token(session))
        .await
        .expect("the call ended");
    assert!(!armed.load(Ordering::SeqCst), "the server was stopped");
    let elapsed = started.elapsed();
    let in_memory = match phase {
        Phase::Lease => {
            let error = first.unwrap_err();
            assert!(
                matches!(error, Error::Store(StoreError::Backend { .. })),
                "{error:?}"
            );
            assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
            assert_eq!(
                sandbox.calls("/token"),
                0,
                "no token sent without the store"
            );
            None
        }
        // The provider rotated: the new pair is used from memory, unsaved.
        Phase::Save | Phase::SaveInFlight => Some(first.expect("the rotated pair, kept in memory")),
    };
    eprintln!("{test}: the call ended after {elapsed:?}");
    // Every call while the server is down ends within the store timeout, with a typed error.
    for _ in 0..3 {
        let started = Instant::now();
        let answer = postgres.load(&key).await;
        assert!(
            matches!(answer, Err(StoreError::Backend { .. })),
            "{answer:?}"
        );
        assert!(started.elapsed() < store_timeout, "{:?}", started.elapsed());
    }

    tokio::task::block_in_place(|| server.restart());

    let token = match in_memory {
        Some(token) => token,
        None => {
            // The same manager carries on; the pool may still find out that its connections
            // died with the server (one failed call per pooled connection at most).
            let mut refreshed = None;
            for _ in 0..5 {
                match manager.access_token(session).await {
                    Ok(token) => {
                        refreshed = Some(token);
                        break;
                    }
                    Err(error @ Error::Store(StoreError::Backend { .. })) => {
                        eprintln!("{test}: after the restart: {error}");
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
            refreshed.expect("the manager carried on after the restart")
        }
    };
    // The new pair reaches the database (in the background when its save had failed).
    let mut stored = None;
    for _ in 0..200 {
        if let Ok(Some(found)) = postgres.load(&key).await
            && found.version > v0
        {
            stored = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the rotated pair was saved once the server was back");
    let tokens = stored.value.tokens().unwrap();
    assert_eq!(tokens.access_token, token);
    assert_eq!(sandbox.calls("/token"), 1, "one refresh in all");
    assert!(
        issuer.refusals.lock().unwrap().is_empty(),
        "a refresh token was presented twice"
    );
    assert_eq!(*issuer.reused.lock().unwrap(), 0);
    assert_eq!(*issuer.rotated.lock().unwrap(), 1);
    // Nothing lost: what is stored works.
    sandbox
        .issuer()
        .authenticate(tokens.access_token.expose_secret())
        .await
        .unwrap();
    sandbox
        .issuer()
        .refresh(tokens.refresh_token.as_ref().unwrap().expose_secret())
        .await
        .unwrap();
    manager.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_fast_once_the_lease_is_taken() {
    the_server_stopped_mid_refresh(
        "the_server_stopped_fast_once_the_lease_is_taken",
        Phase::Lease,
        "fast",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_immediately_once_the_lease_is_taken() {
    the_server_stopped_mid_refresh(
        "the_server_stopped_immediately_once_the_lease_is_taken",
        Phase::Lease,
        "immediate",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_fast_between_the_rotation_and_the_save() {
    the_server_stopped_mid_refresh(
        "the_server_stopped_fast_between_the_rotation_and_the_save",
        Phase::Save,
        "fast",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_immediately_between_the_rotation_and_the_save() {
    the_server_stopped_mid_refresh(
        "the_server_stopped_immediately_between_the_rotation_and_the_save",
        Phase::Save,
        "immediate",
    )
    .await;
}

/// Many sessions refreshing at once through two managers (two replicas), each with a pool of
/// two connections, the provider slower than a lease (1 s): the lease renewals wait for a
/// connection behind every other statement, and must still come in time (a lease that
/// lapses lets the other replica spend the same refresh token); nothing deadlocks, every
/// call ends with the new token, and each session is refreshed once.
///
/// `TOKEN_TEST_PG_SESSIONS` sets how many (default 200). From about 700 on two cores the
/// queue for a connection outlasts the lease: grants answered later than a lease length
/// after they were asked for are not trusted, most calls fail with `RefreshAborted` (typed,
/// and no refresh token is presented twice), so the test fails there: the lease must be
/// longer than the longest wait for a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_sessions_through_two_small_pools_refresh_once_each() {
    let test = "hundreds_of_sessions_through_two_small_pools_refresh_once_each";
    let Some(url) = test_url(test) else {
        return;
    };
    let sessions: usize = std::env::var("TOKEN_TEST_PG_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let schema = unique_schema();
    let pool_of_two = || {
        PostgresDatabase::builder(&url)
            .unwrap()
            .schema(&schema)
            .max_connections(2)
            .operation_timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let stores = [
        PostgresStore::open(&pool_of_two()).await.unwrap(),
        PostgresStore::open(&pool_of_two()).await.unwrap(),
    ];
    let issuer = std::sync::Arc::new(RecordingIssuerStore::default());
    let sandbox = Sandbox::builder()
        .issuer_store(issuer.clone())
        .start()
        .await
        .unwrap();
    // Longer than a connection's queue on two busy cores (other builds beside the tests).
    let lease_ttl = Duration::from_secs(3);
    let managers: Vec<_> = stores
        .iter()
        .map(|store| {
            TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
                .store(store.clone())
                .config(
                    ManagerConfig::default()
                        .with_lease_ttl(lease_ttl)
                        .with_store_timeout(Duration::from_secs(20)),
                )
                .build()
                .unwrap()
        })
        .collect();
    let mut initial = Vec::new();
    for i in 0..sessions {
        let name = format!("customer-{i}");
        let set = expired_set(&sandbox, &name).await;
        let key = SessionKey::new("sandbox-oauth", name.as_str());
        stores[0]
            .save(&key, &set.clone().into(), None)
            .await
            .unwrap();
        initial.push(set);
    }
    // Every refresh outlives a lease: only renewals keep it.
    sandbox.delay_next("/token", u32::try_from(sessions).unwrap(), 2 * lease_ttl);

    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..sessions {
        for (m, manager) in managers.iter().enumerate() {
            let manager = manager.clone();
            calls.spawn(async move {
                let answer = manager.access_token(&format!("customer-{i}")).await;
                (i, m, answer)
            });
        }
    }
    let mut tokens: Vec<Vec<String>> = vec![Vec::new(); sessions];
    let mut failures = Vec::new();
    let all = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(joined) = calls.join_next().await {
            let (i, m, answer) = joined.unwrap();
            match answer {
                Ok(token) => tokens[i].push(token.expose_secret().to_owned()),
                Err(error) => failures.push(format!("customer-{i} via manager {m}: {error}")),
            }
        }
    })
    .await;
    assert!(all.is_ok(), "calls still waiting after 120 s (a deadlock?)");
    eprintln!("{test}: {sessions} sessions in {:?}", started.elapsed());
    let refusals = issuer.refusals.lock().unwrap().len();
    let reused = *issuer.reused.lock().unwrap();
    assert_eq!(
        (refusals, reused),
        (0, 0),
        "refresh tokens presented twice (a lease lapsed?); failures: {failures:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} calls failed, {} refreshes; the first: {:?}",
        failures.len(),
        2 * sessions,
        sandbox.calls("/token"),
        failures.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(sandbox.calls("/token"), sessions as u64, "one refresh each");
    for (i, seen) in tokens.iter().enumerate() {
        let key = SessionKey::new("sandbox-oauth", format!("customer-{i}"));
        let stored = stores[1].load(&key).await.unwrap().unwrap();
        let access = stored.value.tokens().unwrap().access_token.expose_secret();
        assert_ne!(access, initial[i].access_token.expose_secret());
        assert!(seen.iter().all(|t| t == access), "customer-{i}");
    }
    for manager in &managers {
        manager.shutdown(Duration::from_secs(10)).await.unwrap();
    }
    drop_schema(&url, &schema).await;
}

/// The session's row locked by another transaction for longer than the store's timeouts
/// while a refresh saves: the call still ends (the rotated pair from memory) within the
/// store timeout, the save is retried in the background under the lease, and once the lock
/// goes the pair is in the database; the refresh token was presented once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_locked_past_the_store_timeout_delays_the_save_and_loses_nothing() {
    let test = "a_row_locked_past_the_store_timeout_delays_the_save_and_loses_nothing";
    let Some(url) = test_url(test) else {
        return;
    };
    let schema = unique_schema();
    let app = format!("token-test-locked-{}", std::process::id());
    let db = PostgresDatabase::builder(&url)
        .unwrap()
        .schema(&schema)
        .application_name(&app)
        .max_connections(2)
        .operation_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let store = PostgresStore::open(&db).await.unwrap();
    let issuer = std::sync::Arc::new(RecordingIssuerStore::default());
    let sandbox = Sandbox::builder()
        .issuer_store(issuer.clone())
        .start()
        .await
        .unwrap();
    let store_timeout = Duration::from_secs(3);
    let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .store(store.clone())
        .config(
            ManagerConfig::default()
                .with_store_timeout(store_timeout)
                .with_lease_ttl(Duration::from_secs(3)),
        )
        .build()
        .unwrap();
    let session = "customer-locked";
    let key = SessionKey::new("sandbox-oauth", session);
    let v0 = store
        .save(&key, &expired_set(&sandbox, session).await.into(), None)
        .await
        .unwrap();

    let (locker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM \"{schema}\".token_sets WHERE session = '{session}' FOR UPDATE"
        ))
        .await
        .unwrap();
    let started = Instant::now();
    let token = tokio::time::timeout(4 * store_timeout, manager.access_token(session))
        .await
        .expect("the call ended")
        .expect("the rotated pair, from memory");
    assert!(
        started.elapsed() < 2 * store_timeout,
        "{:?}",
        started.elapsed()
    );
    // The background save waits for the row, and is cancelled at each timeout: see it wait
    // (from another connection: the locker's transaction sees one snapshot of the activity).
    let mut waited = false;
    for _ in 0..200 {
        let waiting = scalar(
            &url,
            &format!(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = '{app}' AND wait_event_type = 'Lock'"
            ),
        )
        .await;
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waited, "no save waited for the locked row");
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().version,
        v0,
        "nothing saved through the lock"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    drop(locker);
    let _ = connection.await;

    let mut stored = None;
    for _ in 0..200 {
        let found = store.load(&key).await.unwrap().unwrap();
        if found.version > v0 {
            stored = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the pair was saved once the lock went");
    assert_eq!(stored.value.tokens().unwrap().access_token, token);
    assert_eq!(sandbox.calls("/token"), 1);
    assert!(issuer.refusals.lock().unwrap().is_empty());
    assert_eq!(*issuer.reused.lock().unwrap(), 0);
    manager.shutdown(Duration::from_secs(10)).await.unwrap();
    drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_fast_during_the_save() {
    the_server_stopped_mid_refresh(
        "the_server_stopped_fast_during_the_save",
        Phase::SaveInFlight,
        "fast",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_immediately_during_the_save() {
    the_server_stopped_mid_refresh(
        "the_server_stopped_immediately_during_the_save",
        Phase::SaveInFlight,
        "immediate",
    )
    .await;
}

/// The network to the database drops every packet (connections stay open and silent, no
/// reset): no call hangs on a dead connection; each store call ends with a typed error
/// within the operation timeout and the grace to cancel, the manager's within its store
/// timeout, no token is sent; when the network is back the same store and manager carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_network_never_hangs_a_call() {
    let test = "a_silent_network_never_hangs_a_call";
    let operation_timeout = Duration::from_secs(1);
    let Some((url, schema, proxy, store, _direct)) = behind_a_proxy(test, operation_timeout).await
    else {
        return;
    };
    let db = store.database().clone();
    let sandbox = Sandbox::builder().start().await.unwrap();
    let store_timeout = Duration::from_secs(5);
    let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .store(store.clone())
        .config(ManagerConfig::default().with_store_timeout(store_timeout))
        .build()
        .unwrap();
    let session = "customer-silent";
    let key = SessionKey::new("sandbox-oauth", session);
    let v1 = store
        .save(&key, &expired_set(&sandbox, session).await.into(), None)
        .await
        .unwrap();
    assert!(db.idle_connections() > 0, "a pooled connection to freeze");

    proxy.freeze();
    // The operation timeout, the cancel's grace (2 s), and a margin.
    let bound = operation_timeout + Duration::from_secs(3);
    let timed = async |name: &str,
                       call: std::pin::Pin<
        Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>,
    >| {
        let started = Instant::now();
        let answer = tokio::time::timeout(2 * bound, call).await;
        let took = started.elapsed();
        let answer = answer.unwrap_or_else(|_| panic!("{name} hung on a silent connection"));
        assert!(
            matches!(answer, Err(StoreError::Backend { .. })),
            "{name}: {answer:?}"
        );
        assert!(took < bound, "{name} took {took:?}");
    };
    timed("load", Box::pin(async { store.load(&key).await.map(drop) })).await;
    timed(
        "save",
        Box::pin(async {
            let set = sandbox.issue("other").await.unwrap();
            store.save(&key, &set.into(), Some(v1)).await.map(drop)
        }),
    )
    .await;
    timed(
        "lease",
        Box::pin(async {
            store
                .acquire_lease(&key, "me", Duration::from_secs(5))
                .await
                .map(drop)
        }),
    )
    .await;
    timed(
        "release",
        Box::pin(async { store.release_lease(&key, "me").await }),
    )
    .await;
    let started = Instant::now();
    let error = tokio::time::timeout(4 * store_timeout, manager.access_token(session))
        .await
        .expect("the manager's call ended")
        .unwrap_err();
    assert!(
        started.elapsed() < store_timeout + bound,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert_eq!(
        sandbox.calls("/token"),
        0,
        "no token sent without the lease"
    );

    // The network comes back (the frozen connections die): everything carries on.
    proxy.down();
    proxy.restore();
    let mut token = None;
    for _ in 0..20 {
        match manager.access_token(session).await {
            Ok(found) => {
                token = Some(found);
                break;
            }
            Err(Error::Store(StoreError::Backend { .. })) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    let token = token.expect("the manager carried on");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.value.tokens().unwrap().access_token, token);
    assert_eq!(sandbox.calls("/token"), 1);
    manager.shutdown(Duration::from_secs(10)).await.unwrap();
    drop(manager);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// A connection of its own that has run `sql` (a transaction that locks rows, left open),
/// and the task driving it.
async fn locking(
    url: &str,
    sql: &str,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (locker, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    locker.batch_execute(sql).await.unwrap();
    (locker, connection)
}

/// A store and a direct one over the same schema: `store` goes through `proxy` (which
/// loses answers), `direct` straight to the server (to see what really happened).
async fn behind_a_proxy(
    test: &str,
    operation_timeout: Duration,
) -> Option<(String, String, Proxy, PostgresStore, PostgresStore)> {
    let url = test_url(test)?;
    let mut through_proxy = url::Url::parse(&url).unwrap();
    let Some(host) = through_proxy.host_str().map(str::to_owned) else {
        eprintln!("{test}: skipped: TOKEN_TEST_POSTGRES_URL has no TCP host to proxy");
        return None;
    };
    let proxy = Proxy::start(format!("{host}:{}", through_proxy.port().unwrap_or(5432))).await;
    through_proxy.set_host(Some("127.0.0.1")).unwrap();
    through_proxy.set_port(Some(proxy.addr.port())).unwrap();
    let schema = unique_schema();
    let db = PostgresDatabase::builder(through_proxy.as_str())
        .unwrap()
        .schema(&schema)
        .max_connections(2)
        .operation_timeout(operation_timeout)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let store = PostgresStore::open(&db).await.unwrap();
    let direct = PostgresStore::open(&database(&url, &schema)).await.unwrap();
    Some((url, schema, proxy, store, direct))
}

/// Waits (a second at most) until the proxy says the answer it was asked to lose or hold
/// was: `what` otherwise.
async fn heard_within_a_second(heard: tokio::sync::oneshot::Receiver<()>, what: &str) {
    tokio::time::timeout(Duration::from_secs(1), heard)
        .await
        .expect(what)
        .unwrap();
}

/// A manager of the sandbox's sessions over `store`, its store calls bounded by 5 s.
fn manager_over(
    sandbox: &RunningSandbox,
    store: &PostgresStore,
    lease_ttl: Duration,
) -> TokenManager<SandboxOAuth> {
    TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .store(store.clone())
        .config(
            ManagerConfig::default()
                .with_store_timeout(Duration::from_secs(5))
                .with_lease_ttl(lease_ttl),
        )
        .build()
        .unwrap()
}

/// An issuer over the PostgreSQL database `db`, on the system clock.
async fn issuer_on(db: &PostgresDatabase, config: IssuerConfig) -> Issuer {
    let store = PostgresIssuerStore::open(db).await.unwrap();
    Issuer::new(Arc::new(store), Arc::new(SystemClock), config)
}

/// Runs `call` with the answer of its statement tagged `tag` lost after the server
/// committed it: the call fails with a typed error within its timeout, and the loss did
/// happen.
async fn answer_lost<T: std::fmt::Debug>(
    proxy: &Proxy,
    tag: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) {
    let heard = proxy.lose_next_answer(tag);
    let answer = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call ended");
    assert!(
        matches!(answer, Err(StoreError::Backend { .. })),
        "{tag}: {answer:?}"
    );
    heard_within_a_second(heard, "the answer was lost").await;
}

/// Every store call whose statement committed but whose answer never came back (the
/// connection died in between): the call fails typed, and the next call on the same store
/// (connecting again) finds what it did: a save's version as the conflict's `found` and its
/// record in the store, the lease granted to the same holder again (not held by another,
/// not a take-over), the lease released, the record deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_answer_is_lost_after_the_commit_is_found_done_by_the_next() {
    let test = "a_call_whose_answer_is_lost_after_the_commit_is_found_done_by_the_next";
    let Some((url, schema, proxy, store, direct)) =
        behind_a_proxy(test, Duration::from_secs(2)).await
    else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let key = SessionKey::new("p", "lost-answers");
    let (a, b): (StoredRecord, StoredRecord) = (
        sandbox.issue("a").await.unwrap().into(),
        sandbox.issue("b").await.unwrap().into(),
    );

    answer_lost(&proxy, "INSERT", store.save(&key, &a, None)).await;
    let v1 = direct
        .load(&key)
        .await
        .unwrap()
        .expect("the insert committed");
    assert_eq!(v1.value, a);
    match store.save(&key, &a, None).await {
        Err(StoreError::Conflict {
            expected: None,
            found: Some(found),
        }) => assert_eq!(found, v1.version),
        other => panic!("{other:?}"),
    }

    answer_lost(&proxy, "UPDATE", store.save(&key, &b, Some(v1.version))).await;
    let v2 = store.load(&key).await.unwrap().expect("kept");
    assert_eq!(v2.value, b, "the update committed");
    match store.save(&key, &b, Some(v1.version)).await {
        Err(StoreError::Conflict {
            found: Some(found), ..
        }) => assert_eq!(found, v2.version),
        other => panic!("{other:?}"),
    }

    let long = Duration::from_secs(60);
    answer_lost(&proxy, "SELECT", store.acquire_lease(&key, "me", long)).await;
    assert!(
        matches!(
            direct.acquire_lease(&key, "other", long).await.unwrap(),
            Lease::HeldByOther { .. }
        ),
        "the lease was granted"
    );
    assert_eq!(
        store.acquire_lease(&key, "me", long).await.unwrap(),
        Lease::Acquired,
        "the holder's next try has it"
    );

    answer_lost(&proxy, "DELETE", store.release_lease(&key, "me")).await;
    assert_eq!(
        direct.acquire_lease(&key, "other", long).await.unwrap(),
        Lease::Acquired,
        "the release committed"
    );
    direct.release_lease(&key, "other").await.unwrap();

    // `delete` answers the deleted version (`SELECT` from the `DELETE`).
    answer_lost(&proxy, "SELECT", store.delete(&key, Some(v2.version))).await;
    assert!(direct.load(&key).await.unwrap().is_none(), "deleted");
    assert!(!store.delete(&key, Some(v2.version)).await.unwrap());
    drop(store);
    drop(direct);
    drop_schema(&url, &schema).await;
}

/// A refresh whose save committed, its answer lost: the caller gets the new token all the
/// same, the store holds that pair (the manager's save again finds its own pair there and
/// adopts it), the provider saw one refresh, no re-auth. Then a refresh whose lease grant's
/// answer is lost: the session is not wedged for the lease's length (the next refresh takes
/// the lease its holder already has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_recovers_from_a_save_or_a_lease_grant_whose_answer_was_lost() {
    let test = "a_manager_recovers_from_a_save_or_a_lease_grant_whose_answer_was_lost";
    let Some((url, schema, proxy, store, direct)) =
        behind_a_proxy(test, Duration::from_secs(2)).await
    else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let manager = manager_over(&sandbox, &store, Duration::from_secs(60));
    let session = "customer-lost-answer";
    let key = SessionKey::new("sandbox-oauth", session);
    direct
        .save(&key, &expired_set(&sandbox, session).await.into(), None)
        .await
        .unwrap();

    let heard = proxy.lose_next_answer("UPDATE");
    let token = tokio::time::timeout(Duration::from_secs(20), manager.access_token(session))
        .await
        .expect("the call ended")
        .expect("the new token, saved or not");
    heard_within_a_second(heard, "the save's answer was lost").await;
    let stored = direct.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.value.tokens().unwrap().access_token, token);
    assert_eq!(sandbox.calls("/token"), 1);
    // The manager's save in the background finds its pair there, adopts it and lets the
    // lease go: another replica gets the lease well before its length.
    let mut released = false;
    for _ in 0..100 {
        match direct
            .acquire_lease(&key, "another-replica", Duration::from_secs(1))
            .await
            .unwrap()
        {
            Lease::HeldByOther { .. } => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => {
                released = true;
                break;
            }
        }
    }
    assert!(released, "the lease was never released");
    direct.release_lease(&key, "another-replica").await.unwrap();
    assert_eq!(manager.access_token(session).await.unwrap(), token);
    assert_eq!(
        direct.load(&key).await.unwrap().unwrap().version,
        stored.version
    );

    // The lease grant of a forced refresh is lost (the first `SELECT` a refresh of a
    // session in memory sends is its lease's).
    let heard = proxy.lose_next_answer("SELECT");
    let started = Instant::now();
    let first = manager.refresh_now(session).await;
    heard_within_a_second(heard, "an answer was lost").await;
    let renewed = match first {
        Ok(renewed) => renewed,
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
            manager.refresh_now(session).await.unwrap()
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "wedged for {:?}",
        started.elapsed()
    );
    assert_ne!(renewed, token);
    assert_eq!(sandbox.calls("/token"), 2);
    let stored = direct.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.value.tokens().unwrap().access_token, renewed);
    manager.shutdown(Duration::from_secs(10)).await.unwrap();
    drop(manager);
    drop(store);
    drop(direct);
    drop_schema(&url, &schema).await;
}

/// Rows locked by another transaction past the operation timeout while a holder releases
/// its lease, saves and deletes, and no new connection gets through to the server then (a
/// firewall that lets established connections through, a listener out of descriptors): the
/// cancel, which needs a connection of its own, cannot reach the server. Each call fails
/// typed within its bound, and has no later effect once the lock goes: a release landing
/// late would take away the lease its holder was granted again meanwhile (another replica
/// then takes it while the holder still refreshes), a save would overwrite what was saved
/// since, a delete would remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_cancel_cannot_reach_the_server_has_no_later_effect() {
    let test = "a_call_whose_cancel_cannot_reach_the_server_has_no_later_effect";
    let timeout = Duration::from_millis(500);
    let Some((url, schema, proxy, store, direct)) = behind_a_proxy(test, timeout).await else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let key = SessionKey::new("p", "uncancellable");
    let long = Duration::from_secs(60);
    assert_eq!(
        store.acquire_lease(&key, "me", long).await.unwrap(),
        Lease::Acquired
    );
    let kept: StoredRecord = sandbox.issue("kept").await.unwrap().into();
    let v1 = store.save(&key, &kept, None).await.unwrap();
    let (locker, connection) = locking(
        &url,
        &format!(
            "BEGIN;
             SELECT 1 FROM \"{schema}\".token_leases WHERE session = 'uncancellable' FOR UPDATE;
             SELECT 1 FROM \"{schema}\".token_sets WHERE session = 'uncancellable' FOR UPDATE;"
        ),
    )
    .await;

    proxy.refuse_new();
    let late: StoredRecord = sandbox.issue("late").await.unwrap().into();
    let bound = 2 * timeout + Duration::from_secs(1);
    let started = Instant::now();
    let error = store.release_lease(&key, "me").await.unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    let error = store.save(&key, &late, Some(v1)).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    let error = store.delete(&key, Some(v1)).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    assert!(started.elapsed() < 3 * bound, "{:?}", started.elapsed());
    proxy.restore();

    locker.batch_execute("ROLLBACK").await.unwrap();
    // Whatever the server still had of those calls has run by now, or never will.
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE '%{schema}%' AND pid <> pg_backend_pid()"
    );
    for _ in 0..100 {
        if scalar(&url, &waiting).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        matches!(
            direct.acquire_lease(&key, "another", long).await.unwrap(),
            Lease::HeldByOther { .. }
        ),
        "the release that failed let go of the lease after all"
    );
    let stored = direct
        .load(&key)
        .await
        .unwrap()
        .expect("the delete that failed deleted");
    assert_eq!(
        (stored.version, stored.value),
        (v1, kept),
        "the save that failed was saved after all"
    );
    drop(locker);
    let _ = connection.await;
    drop(store);
    drop(direct);
    drop_schema(&url, &schema).await;
}

/// An issuer replica's rotation cut off from the database mid-transaction, its row locked
/// (a network partition the server does not notice: the connection stays open on its side,
/// for as long as TCP keepalive takes, hours by default): the replica's call fails typed
/// within its timeout, and another replica presenting the same refresh token is not locked
/// out with it: the server ends the orphaned transaction by the first one's deadline, and
/// the second rotates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_cut_off_mid_transaction_does_not_lock_the_token_out() {
    use token_core::clock::ManualClock;
    use token_core::issuer::IssuerError;

    let test = "a_rotation_cut_off_mid_transaction_does_not_lock_the_token_out";
    let timeout = Duration::from_millis(500);
    let Some((url, schema, proxy, store, _direct)) = behind_a_proxy(test, timeout).await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let config = IssuerConfig::default()
        .with_reuse_window(Duration::from_secs(300))
        .with_purge_every(None);
    let cut_off = Issuer::new(
        Arc::new(PostgresIssuerStore::open(store.database()).await.unwrap()),
        clock.clone(),
        config.clone(),
    );
    // Its operation timeout (5 s) is well past the other's.
    let other = Issuer::new(
        Arc::new(
            PostgresIssuerStore::open(&database(&url, &schema))
                .await
                .unwrap(),
        ),
        clock,
        config,
    );
    let first = other.issue("alice", serde_json::json!({})).await.unwrap();
    let refresh = first.tokens.refresh_token.unwrap();

    // The answer to the rotation's `SELECT ... FOR UPDATE` never comes back.
    let heard = proxy.freeze_at_next_answer("SELECT");
    let started = Instant::now();
    let failed = cut_off.refresh(refresh.expose_secret()).await;
    assert!(
        matches!(failed, Err(IssuerError::Store(StoreError::Backend { .. }))),
        "{failed:?}"
    );
    assert!(started.elapsed() < 2 * timeout + Duration::from_secs(1));
    heard_within_a_second(heard, "the rotation's answer was held").await;

    let started = Instant::now();
    let rotated = other.refresh(refresh.expose_secret()).await;
    let took = started.elapsed();
    proxy.down();
    let rotated = rotated.expect("the other replica rotates");
    assert!(!rotated.reused);
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(cut_off);
    drop(other);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// A lease taken over from a holder that let it lapse (it lost the database mid-refresh,
/// the refresh token spent, its pair not saved yet), the grant's answer lost: the next
/// refresh is granted the lease its holder already has, and the provider refuses the
/// token the lapsed holder spent. That refusal is no verdict before the lapsed holder's
/// save has been watched for, as after any take-over: the holder saves its pair a moment
/// later, and the refresh takes it, no re-auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_over_whose_grant_answer_was_lost_still_waits_for_the_lapsed_holder_s_save() {
    let test = "a_take_over_whose_grant_answer_was_lost_still_waits_for_the_lapsed_holder_s_save";
    let Some((url, schema, proxy, store, direct)) =
        behind_a_proxy(test, Duration::from_secs(2)).await
    else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let lease_ttl = Duration::from_secs(4);
    let manager = manager_over(&sandbox, &store, lease_ttl);
    let session = "customer-lost-take-over";
    let key = SessionKey::new("sandbox-oauth", session);
    let first = sandbox.issue(session).await.unwrap();
    let v0 = direct
        .save(&key, &first.clone().into(), None)
        .await
        .unwrap();
    // In memory here (its access token fresh): a forced refresh's first `SELECT` is its
    // lease's.
    manager.access_token(session).await.unwrap();

    // The holder that lost the database: it took the lease, spent the refresh token, and
    // its lease lapsed before it could save.
    let short = Duration::from_millis(300);
    let dead = direct
        .acquire_lease(&key, "lost-the-db", short)
        .await
        .unwrap();
    assert_eq!(dead, Lease::Acquired);
    let spent = first
        .refresh_token
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let successor = sandbox.issuer().refresh(&spent).await.unwrap().tokens;
    for _ in 0..200 {
        if !direct
            .lapsed_leases("sandbox-oauth")
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        direct.lapsed_leases("sandbox-oauth").await.unwrap(),
        [session]
    );

    // The take-over is granted; its answer is lost.
    let heard = proxy.lose_next_answer("SELECT");
    let error = manager.refresh_now(session).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    heard_within_a_second(heard, "the grant's answer was lost").await;
    let mut refresh = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now(session).await }
    });
    // The spent token is presented and refused.
    for _ in 0..500 {
        if sandbox.calls("/token") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sandbox.calls("/token"), 1, "the spent token was presented");
    if let Ok(early) = tokio::time::timeout(lease_ttl / 2, &mut refresh).await {
        panic!("answered before the lapsed holder's save was watched for: {early:?}");
    }
    // The lapsed holder gets the database back, and saves.
    direct
        .save(&key, &successor.clone().into(), Some(v0))
        .await
        .unwrap();
    let token = refresh.await.unwrap().expect("the lapsed holder's pair");
    assert_eq!(token, successor.access_token);
    assert_eq!(sandbox.calls("/token"), 1);
    manager.shutdown(Duration::from_secs(10)).await.unwrap();
    drop(manager);
    drop(store);
    drop(direct);
    drop_schema(&url, &schema).await;
}

/// An issuer replica's rotation whose `COMMIT` answer is lost (the rotation landed): the
/// replica finds it landed and answers the successor, and a retry of the same refresh token
/// (the client's answer lost in turn) is answered the same successor inside the reuse
/// window, not refused as a replay (which, detecting reuse, would revoke that successor),
/// and the successor rotates on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_commit_answer_was_lost_is_answered_again_inside_the_window() {
    let test = "a_rotation_whose_commit_answer_was_lost_is_answered_again_inside_the_window";
    let Some((url, schema, proxy, store, _direct)) =
        behind_a_proxy(test, Duration::from_secs(2)).await
    else {
        return;
    };
    let config = IssuerConfig::default()
        .with_reuse_window(Duration::from_secs(300))
        .with_revoke_on_reuse(true)
        .with_purge_every(None);
    let issuer = issuer_on(store.database(), config).await;
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let refresh = first.tokens.refresh_token.unwrap();
    let heard = proxy.lose_next_answer("COMMIT");
    let landed = issuer.refresh(refresh.expose_secret()).await.unwrap();
    assert!(!landed.reused);
    heard_within_a_second(heard, "the rotation's answer was lost").await;
    let again = issuer.refresh(refresh.expose_secret()).await.unwrap();
    assert!(again.reused, "answered as the rotation that landed");
    assert_eq!(again.tokens.refresh_token, landed.tokens.refresh_token);
    let next = again.tokens.refresh_token.unwrap();
    assert!(!issuer.refresh(next.expose_secret()).await.unwrap().reused);
    drop(issuer);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// An issuer replica's rotation whose `COMMIT` answer is lost (the rotation landed) under
/// the default configuration, without a reuse window: the used-up token cannot be answered
/// again, so the rotation must not be answered as an outage (which the client retries with
/// that token, refused then as a replay, and, detecting reuse, the new pair revoked with
/// it): the issuer looks whether its commit landed and answers the pair it minted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_commit_answer_was_lost_without_a_window_answers_the_pair_it_committed() {
    let test =
        "a_rotation_whose_commit_answer_was_lost_without_a_window_answers_the_pair_it_committed";
    let Some((url, schema, proxy, store, _direct)) =
        behind_a_proxy(test, Duration::from_secs(2)).await
    else {
        return;
    };
    let config = IssuerConfig::default()
        .with_revoke_on_reuse(true)
        .with_purge_every(None);
    let issuer = issuer_on(store.database(), config).await;
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let refresh = first.tokens.refresh_token.unwrap();
    let heard = proxy.lose_next_answer("COMMIT");
    let rotated = issuer.refresh(refresh.expose_secret()).await;
    heard_within_a_second(heard, "the rotation's answer was lost").await;
    let rotated = rotated.expect("the rotation that landed is answered");
    assert!(!rotated.reused);
    issuer
        .authenticate(rotated.tokens.access_token.expose_secret())
        .await
        .expect("the pair answered is the live one");
    let next = rotated.tokens.refresh_token.unwrap();
    assert!(!issuer.refresh(next.expose_secret()).await.unwrap().reused);
    drop(issuer);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// An issuer replica's redemption of an authorization code whose `COMMIT` answer is lost
/// (the redemption landed): the replica finds it landed and answers the pair it issued.
/// Answered as an outage, the client would present the code again, used up by then: refused
/// as a replay, and the pair issued for it revoked (a login lost to a database hiccup).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_whose_commit_answer_was_lost_answers_the_pair_it_committed() {
    use token_core::issuer::{CodeExchange, CodeGrant};
    let test = "a_redemption_whose_commit_answer_was_lost_answers_the_pair_it_committed";
    let Some((url, schema, proxy, store, _direct)) =
        behind_a_proxy(test, Duration::from_secs(2)).await
    else {
        return;
    };
    let issuer = issuer_on(
        store.database(),
        IssuerConfig::default().with_purge_every(None),
    )
    .await;
    let code = issuer
        .issue_code(CodeGrant::new("app-1", "alice"))
        .await
        .unwrap();
    let heard = proxy.lose_next_answer("COMMIT");
    let redeemed = issuer
        .redeem_code(code.expose_secret(), CodeExchange::new("app-1"))
        .await;
    heard_within_a_second(heard, "the redemption's answer was lost").await;
    let redeemed = redeemed.expect("the redemption that landed is answered");
    assert_eq!(redeemed.subject, "alice");
    issuer
        .authenticate(redeemed.tokens.access_token.expose_secret())
        .await
        .expect("the pair answered is live");
    let refresh = redeemed.tokens.refresh_token.unwrap();
    let next = issuer.refresh_for(refresh.expose_secret(), "app-1").await;
    assert!(!next.unwrap().reused);
    drop(issuer);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// An issuer replica's rotation whose connection dies while its `COMMIT` is still running on
/// the server (the transaction open, its row locked), on a database whose transactions are
/// `REPEATABLE READ` unless they say otherwise: the look whether it landed waits for that
/// row, and once the commit lands, answers the pair it minted, as on any database, not a
/// serialization failure answered as an outage (which the client retries with the used-up
/// token, refused as a replay, and the new pair revoked with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_commit_was_still_running_as_its_connection_died_is_answered_on_a_repeatable_read_database()
 {
    let test = "a_rotation_whose_commit_was_still_running_as_its_connection_died_is_answered_on_a_repeatable_read_database";
    commit_running_as_the_connection_dies(
        test,
        "issuer_pairs",
        "FOR SHARE",
        async |issuer| {
            let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
            first.tokens.refresh_token.unwrap().expose_secret().to_owned()
        },
        |issuer, refresh| async move {
            (issuer.refresh(&refresh).await).map(|issued| issued.tokens)
        },
    )
    .await;
}

/// As the test above, for the redemption of an authorization code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_whose_commit_was_still_running_as_its_connection_died_is_answered_on_a_repeatable_read_database()
 {
    use token_core::issuer::{CodeExchange, CodeGrant};
    let test = "a_redemption_whose_commit_was_still_running_as_its_connection_died_is_answered_on_a_repeatable_read_database";
    commit_running_as_the_connection_dies(
        test,
        "issuer_codes",
        "FOR UPDATE",
        async |issuer| {
            let code = issuer.issue_code(CodeGrant::new("app-1", "alice"));
            code.await.unwrap().expose_secret().to_owned()
        },
        |issuer, code| async move {
            (issuer.redeem_code(&code, CodeExchange::new("app-1")).await)
                .map(|redeemed| redeemed.tokens)
        },
    )
    .await;
}

/// An issuer on a `REPEATABLE READ` database behind a proxy; `prepare` issues what `call`
/// presents. Its `COMMIT` waits on the server (a deferred trigger on `table` waits for a lock
/// this test holds) while the proxy cuts its connection; once the look whether it landed
/// waits for the row (a statement `FOR SHARE` or `FOR UPDATE`, `lock`), the commit goes on.
/// The call must answer the pair it committed, and that pair must be live.
async fn commit_running_as_the_connection_dies<Call>(
    test: &str,
    table: &str,
    lock: &str,
    prepare: impl AsyncFnOnce(&token_core::issuer::Issuer) -> String,
    call: impl FnOnce(token_core::issuer::Issuer, String) -> Call,
) where
    Call: std::future::Future<Output = Result<StoredTokenSet, token_core::issuer::IssuerError>>
        + Send
        + 'static,
{
    let Some(url) = test_url(test) else {
        return;
    };
    let mut through_proxy = url::Url::parse(&url).unwrap();
    let Some(host) = through_proxy.host_str().map(str::to_owned) else {
        eprintln!("{test}: skipped: TOKEN_TEST_POSTGRES_URL has no TCP host to proxy");
        return;
    };
    let proxy = Proxy::start(format!("{host}:{}", through_proxy.port().unwrap_or(5432))).await;
    through_proxy.set_host(Some("127.0.0.1")).unwrap();
    through_proxy.set_port(Some(proxy.addr.port())).unwrap();
    let schema = unique_schema();
    let mut config: tokio_postgres::Config = through_proxy.as_str().parse().unwrap();
    config.options("-c default_transaction_isolation=repeatable\\ read");
    // Told from another test's statements by its name.
    config.application_name(&schema);
    let db = PostgresDatabase::builder_from_config(config)
        .schema(&schema)
        // One connection: the look whether the call landed makes a new one, rather than
        // take one the proxy cut that the pool has not seen closed yet.
        .max_connections(1)
        .operation_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let config = IssuerConfig::default()
        .with_revoke_on_reuse(true)
        .with_purge_every(None);
    let issuer = issuer_on(&db, config).await;
    let presented = prepare(&issuer).await;
    // A commit that waits, on the server, for a lock this test holds.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let key = scalar(&url, &format!("SELECT hashtext('{schema}')::bigint")).await;
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION \"{schema}\".held() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER held AFTER UPDATE ON \"{schema}\".{table}
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"{schema}\".held();
             SELECT pg_advisory_lock({key});"
        ))
        .await
        .unwrap();
    let waiting = async |query: String| {
        for _ in 0..500 {
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock' AND query LIKE $1
                       AND application_name = $2",
                    &[&query, &schema],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no statement like {query} waits");
    };
    let answer = tokio::spawn(call(issuer.clone(), presented));
    waiting("COMMIT".to_owned()).await;
    // The connection dies under the running commit; the look comes on a new one.
    proxy.cut_open();
    waiting(format!("%{lock}")).await;
    admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
        .await
        .unwrap();
    let answer = answer.await.unwrap();
    admin
        .batch_execute(&format!("DROP TRIGGER held ON \"{schema}\".{table}"))
        .await
        .unwrap();
    let tokens = answer.expect("the call that landed is answered");
    issuer
        .authenticate(tokens.access_token.expose_secret())
        .await
        .expect("the pair answered is the live one");
    drop(issuer);
    drop(db);
    drop_schema(&url, &schema).await;
}
