//! PostgreSQL as token-core uses it (feature `postgres`): a [`PostgresDatabase`] (a
//! `deadpool-postgres` pool, a schema and an operation timeout) shared by the
//! [`PostgresStore`](crate::store::PostgresStore) and the
//! [`PostgresIssuerStore`](crate::issuer::PostgresIssuerStore), and the one place that runs
//! their statements: within the timeout, errors mapped without secrets, and a connection in
//! an unknown state never reused.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{CancelToken, Socket};

use crate::error::StoreError;

pub use deadpool_postgres;

/// A statement parameter that holds tokens (a stored record, a rotated pair's successor
/// tokens): sent as `T`, shown by `Debug` as `<hidden>`. tokio-postgres writes every
/// statement's parameters through `Debug` to the `log` crate at debug level, and an
/// application that logs its dependencies at that level (`tracing-subscriber`'s `init`
/// forwards `log` records) would otherwise log the tokens in the clear.
pub(crate) struct Hidden<T>(pub(crate) T);

impl<T> fmt::Debug for Hidden<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl<T: ToSql> ToSql for Hidden<T> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A condition for a statement's `WHERE` that bounds its own row-lock waits on the server
/// to `$n` milliseconds: it sets `lock_timeout` for the statement's transaction alone
/// (`set_config(.., true)`, undone at its end, so neither a shared pool nor a
/// transaction-pooling proxy keeps it), before the statement locks any row.
pub(crate) fn lock_bound(n: usize) -> String {
    format!("set_config('lock_timeout', ${n}::bigint::text, true) IS NOT NULL")
}

/// Opens a transaction on `client` that the server itself bounds however its client fares:
/// each of its waits for a lock, and each wait for the client's next statement, lasts at
/// most `budget` milliseconds (`SET LOCAL`: nothing outlives the transaction). A client cut
/// off mid-transaction (a network partition the server does not notice, for as long as TCP
/// keepalive takes) would otherwise leave it open, its rows and tables locked, and every
/// other replica waiting on them; it now ends `budget` after the last statement.
///
/// `READ COMMITTED` whatever the database's default: each statement then reads what was
/// committed before it, as every transaction here is written to, so one that waited for a
/// lock (a migration another replica was making, a row another rotation held) reads what
/// the holder wrote, not what its snapshot from before the wait held.
pub(crate) async fn bounded_transaction<'a>(
    client: &'a mut deadpool_postgres::Client,
    budget: i64,
    what: &str,
) -> Result<deadpool_postgres::Transaction<'a>, StoreError> {
    let tx = (client.build_transaction())
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .db(what)?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {budget}; \
         SET LOCAL idle_in_transaction_session_timeout = {budget}"
    ))
    .await
    .db(what)?;
    Ok(tx)
}

/// The schema used when none is configured.
pub const DEFAULT_SCHEMA: &str = "token_core";

const DEFAULT_MAX_CONNECTIONS: usize = 8;
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_APPLICATION_NAME: &str = "token-core";
/// The longest an operation still running at its timeout is given to end once cancelled.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Sends the server a request to cancel what a connection is running (through the TLS
/// connector of the pool when it has one).
type Canceller = Arc<
    dyn Fn(CancelToken) -> Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>
        + Send
        + Sync,
>;

fn cancel_in_the_clear() -> Canceller {
    Arc::new(|token: CancelToken| {
        Box::pin(async move { token.cancel_query(tokio_postgres::NoTls).await })
    })
}

/// A PostgreSQL database as token-core uses it: a pool of connections, a schema and an
/// operation timeout. Cheap to clone; clones share the pool. Give one to
/// [`PostgresStore::open`](crate::store::PostgresStore::open) and, on a wallet, to
/// [`PostgresIssuerStore::open`](crate::issuer::PostgresIssuerStore::open).
///
/// Made from a URL ([`builder`](Self::builder): a pool of its own, connected lazily) or from
/// the application's own `deadpool-postgres` pool ([`from_pool`](Self::from_pool)). A
/// connection whose operation failed or timed out is closed rather than returned to the
/// pool, so after the database went away and came back the next operation simply connects
/// again. Every operation, waiting for a connection included, is bounded by the
/// [operation timeout](Self::with_operation_timeout); a statement still running then is
/// cancelled on the server and given up to 2 s more to end, so that an operation that failed
/// has no later effect (keep the manager's
/// [`store_timeout`](crate::manager::ManagerConfig::store_timeout) above both). Error
/// messages never contain the connection's password, and the parameters that hold tokens
/// show as `<hidden>` in the driver's debug log of each statement.
#[derive(Clone)]
pub struct PostgresDatabase {
    inner: Arc<Database>,
}

struct Database {
    pool: Pool,
    schema: String,
    operation_timeout: Duration,
    canceller: Canceller,
}

impl fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("schema", &self.inner.schema)
            .field("max_connections", &self.inner.pool.status().max_size)
            .field("operation_timeout", &self.inner.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`PostgresDatabase`] with a pool of its own. Made by
/// [`PostgresDatabase::builder`].
pub struct PostgresDatabaseBuilder {
    config: tokio_postgres::Config,
    schema: String,
    max_connections: usize,
    operation_timeout: Duration,
    manager: Option<(Manager, Canceller)>,
}

impl fmt::Debug for PostgresDatabaseBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres' `Config` redacts the password in `Debug`.
        f.debug_struct("PostgresDatabaseBuilder")
            .field("config", &self.config)
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresDatabase {
    /// Starts configuring a database from a libpq-style URL or key-value string
    /// (`postgresql://user:password@127.0.0.1:5432/db`). Nothing connects yet.
    ///
    /// ```
    /// use token_core::postgres::PostgresDatabase;
    /// let db = PostgresDatabase::builder("postgresql://app:secret@127.0.0.1:5432/app")
    ///     .unwrap()
    ///     .schema("tokens")
    ///     .max_connections(4)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(db.schema(), "tokens");
    /// assert!(!format!("{db:?}").contains("secret"));
    /// assert!(PostgresDatabase::builder("postgresql://x:secret@[bad").unwrap_err().to_string().find("secret").is_none());
    /// ```
    pub fn builder(url: &str) -> Result<PostgresDatabaseBuilder, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| StoreError::Backend {
            // The parser's own message may quote the string, password included.
            message: "postgres: the connection string is not valid".to_owned(),
            source: None,
        })?;
        Ok(Self::builder_from_config(config))
    }

    /// Starts configuring a database from a tokio-postgres `Config`.
    pub fn builder_from_config(mut config: tokio_postgres::Config) -> PostgresDatabaseBuilder {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(DEFAULT_APPLICATION_NAME);
        }
        PostgresDatabaseBuilder {
            config,
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            manager: None,
        }
    }

    /// A database over the application's own `deadpool-postgres` pool, in the default
    /// schema with the default operation timeout (10 s). A statement still running at the
    /// timeout is cancelled through a connection in the clear (the pool's TLS connector is
    /// not known here): where the server requires TLS the cancel fails, and the connection
    /// is only closed (the token store's statements that may wait for a locked row still
    /// stop waiting by the timeout, on the server). Its connections are shared with the
    /// rest of the application; token-core's statements name their schema, so the pool's
    /// `search_path` does not matter.
    ///
    /// ```
    /// use token_core::postgres::{PostgresDatabase, deadpool_postgres};
    /// let mut config = deadpool_postgres::Config::new();
    /// config.url = Some("postgresql://app@127.0.0.1:5432/app".into());
    /// let pool = config
    ///     .create_pool(Some(deadpool_postgres::Runtime::Tokio1), tokio_postgres::NoTls)
    ///     .unwrap();
    /// let db = PostgresDatabase::from_pool(pool).with_schema("tokens").unwrap();
    /// assert_eq!(db.schema(), "tokens");
    /// ```
    pub fn from_pool(pool: Pool) -> Self {
        Self {
            inner: Arc::new(Database {
                pool,
                schema: DEFAULT_SCHEMA.to_owned(),
                operation_timeout: DEFAULT_OPERATION_TIMEOUT,
                canceller: cancel_in_the_clear(),
            }),
        }
    }

    /// The same pool with its tables in `schema`: an ASCII letter or `_`, then letters,
    /// digits or `_`, at most 63 characters. Created if absent.
    pub fn with_schema(self, schema: impl Into<String>) -> Result<Self, StoreError> {
        let schema = schema.into();
        if !valid_identifier(&schema) {
            return Err(StoreError::Backend {
                message: format!(
                    "postgres: `{schema}` is not a schema name token-core accepts \
                     ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)"
                ),
                source: None,
            });
        }
        Ok(self.rebuilt(|db| db.schema = schema))
    }

    /// How long one operation (waiting for and making a connection included) may take
    /// before it fails with [`StoreError::Backend`] (default 10 s).
    pub fn with_operation_timeout(self, timeout: Duration) -> Self {
        self.rebuilt(|db| db.operation_timeout = timeout)
    }

    fn rebuilt(self, change: impl FnOnce(&mut Database)) -> Self {
        let mut db = Database {
            pool: self.inner.pool.clone(),
            schema: self.inner.schema.clone(),
            operation_timeout: self.inner.operation_timeout,
            canceller: self.inner.canceller.clone(),
        };
        change(&mut db);
        Self {
            inner: Arc::new(db),
        }
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The pool (to run the application's own statements on the same connections).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// How many connections are open and idle in the pool right now.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.status().available
    }

    /// Runs `operation` on a connection of the pool, within the operation timeout. The
    /// connection goes back to the pool only when `operation` succeeded or failed with
    /// something other than [`StoreError::Backend`] (a conflict, a corrupt record); after a
    /// database error or the timeout it is closed, so a connection in an unknown state
    /// (mid-transaction, a statement in flight) is never reused.
    ///
    /// An operation still running at the timeout is cancelled on the server, and given up
    /// to [`CANCEL_GRACE`] (and at most the timeout again) to end: closing the connection
    /// alone would leave its statement running on the server (waiting for a row another
    /// transaction locked, say), to land after its caller was told it failed: a lease
    /// release then takes away a lease granted since, a save overwrites what was saved
    /// since. An operation that completed despite the cancel answers what it did; one the
    /// cancel cannot reach (the server is gone) fails when the grace is over. The same when
    /// the caller drops this future before it ends: the connection is closed and what it
    /// runs cancelled (in the background), never handed to the next caller.
    pub(crate) async fn run<T>(
        &self,
        what: &str,
        operation: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run_bounded(what, async |client, _| operation(client).await)
            .await
    }

    /// [`run`](Self::run), telling `operation` how many milliseconds of the operation
    /// timeout are left once it has its connection (at least 1, at most `i32::MAX`): the bound its statements
    /// give their own row-lock waits on the server ([`lock_bound`]), so that a statement
    /// whose cancel cannot reach the server (no new connection gets through, a pool without
    /// the TLS connector) still stops waiting by the caller's deadline, and does not land
    /// after its caller was told it failed.
    pub(crate) async fn run_bounded<T>(
        &self,
        what: &str,
        operation: impl AsyncFnOnce(&mut deadpool_postgres::Client, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = self.deadline();
        self.run_until(what, deadline, operation).await
    }

    /// [`run_bounded`](Self::run_bounded), with the operation timeout ending at `deadline`.
    async fn run_until<T>(
        &self,
        what: &str,
        deadline: tokio::time::Instant,
        operation: impl AsyncFnOnce(&mut deadpool_postgres::Client, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let timed_out = || StoreError::Backend {
            message: format!(
                "postgres: {what}: no answer within {:?}",
                self.inner.operation_timeout
            ),
            source: None,
        };
        let client = tokio::time::timeout_at(deadline, self.inner.pool.get())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| pool_error(what, e))?;
        let cancel = client.cancel_token();
        // Dropped before the end (its caller gave up), it closes the connection and cancels
        // what it runs.
        let mut in_flight = InFlight {
            client: Some(client),
            canceller: self.inner.canceller.clone(),
        };
        let mut cancelled = false;
        let result = {
            let Some(client) = in_flight.client.as_mut() else {
                return Err(timed_out());
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // At most the largest `lock_timeout` (and `idle_in_transaction_session_timeout`)
            // the server takes, `INT_MAX` milliseconds: a longer operation timeout (an
            // application's "no timeout") would otherwise have every bounded statement
            // refused as an invalid parameter.
            let budget = i64::try_from(left.as_millis())
                .unwrap_or(i64::MAX)
                .clamp(1, i64::from(i32::MAX));
            let operation = operation(client, budget);
            tokio::pin!(operation);
            match tokio::time::timeout_at(deadline, &mut operation).await {
                Ok(result) => result,
                Err(_) => {
                    cancelled = true;
                    let grace = CANCEL_GRACE.min(self.inner.operation_timeout);
                    let settled = tokio::time::timeout(grace, async {
                        (self.inner.canceller)(cancel).await.ok()?;
                        Some(operation.await)
                    })
                    .await;
                    match settled {
                        // It ended despite the cancel: what it did is what it answers.
                        Ok(Some(answer)) if !matches!(answer, Err(StoreError::Backend { .. })) => {
                            answer
                        }
                        // Cancelled, or the cancel could not reach the server.
                        _ => Err(timed_out()),
                    }
                }
            }
        };
        // A connection sent a cancel is not reused even when its operation ended well: the
        // cancel may reach the server late, and stop the next caller's statement.
        if let Some(client) = in_flight.client.take()
            && (cancelled || matches!(result, Err(StoreError::Backend { .. })))
        {
            drop(deadpool_postgres::Object::take(client));
        }
        result
    }

    /// [`run_bounded`](Self::run_bounded) of the operation `attempt` makes, made again (a
    /// few times, all within one operation timeout) while it fails because a concurrent
    /// transaction won a race the server settled by rolling this one back: a serialization
    /// failure (on a database whose transactions are `REPEATABLE READ` or `SERIALIZABLE` by
    /// default, a write to a row another transaction changed meanwhile fails so) or a
    /// deadlock. Such a failure had no effect, and the next attempt sees what the winner
    /// wrote (a compare-and-swap's conflict, a lease another holder has). For operations
    /// whose statements each either fail without effect or write nothing before the next
    /// one runs.
    pub(crate) async fn run_raced<T, Op>(
        &self,
        what: &str,
        attempt: impl Fn() -> Op,
    ) -> Result<T, StoreError>
    where
        Op: AsyncFnOnce(&mut deadpool_postgres::Client, i64) -> Result<T, StoreError>,
    {
        let deadline = self.deadline();
        let mut tries = 0;
        loop {
            match self.run_until(what, deadline, attempt()).await {
                Err(error)
                    if tries < RACED_TRIES
                        && tokio::time::Instant::now() < deadline
                        && rolled_back_by_a_race(&error) =>
                {
                    tries += 1;
                }
                answer => return answer,
            }
        }
    }

    /// When an operation starting now times out: at the operation timeout, or, for one too
    /// long for an instant to hold (an application's "no timeout", `Duration::MAX`), in
    /// thirty years.
    fn deadline(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        (now.checked_add(self.inner.operation_timeout))
            .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
    }

    /// `name` in this database's schema, quoted: `"schema".name`.
    pub(crate) fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.inner.schema)
    }

    /// Prepares each of `statements` once against the schema: tables dropped or altered by
    /// hand under a recorded version fail here, as a typed error, not at a later call.
    pub(crate) async fn prepare_all(&self, statements: &[&str]) -> Result<(), StoreError> {
        self.run("check the schema", async |client| {
            for statement in statements {
                client.prepare(statement).await.db("check the schema")?;
            }
            Ok(())
        })
        .await
    }

    /// Brings `component`'s tables to `migrations.len()`: step `i` (0-based) migrates from
    /// version `i` to `i + 1`. Runs in one transaction under an advisory lock per schema, so
    /// concurrent openers migrate once.
    pub(crate) async fn migrate(
        &self,
        component: &str,
        migrations: &[String],
    ) -> Result<(), StoreError> {
        let target = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
        let schema = &self.inner.schema;
        self.run_bounded("migrate", async |client, budget| {
            let tx = bounded_transaction(client, budget, "migrate").await?;
            let lock_key = format!("token-core:{schema}");
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
                .await
                .db("migrate: lock")?;
            let exists = tx
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[schema])
                .await
                .db("migrate: find the schema")?
                .is_some();
            if !exists {
                tx.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                    .await
                    .db("migrate: create the schema")?;
            }
            let versions = self.table("token_core_schema");
            // Made only if absent: `CREATE TABLE IF NOT EXISTS` needs the right to create in
            // the schema even when the table is there, and a service may run as a role that
            // only reads and writes tables an administrator made and migrated.
            let made = tx
                .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&versions])
                .await
                .db("migrate: find the schema version table")?
                .try_get::<_, bool>(0)
                .db("migrate: find the schema version table")?;
            if !made {
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {versions} (
                        component   text PRIMARY KEY,
                        version     integer NOT NULL,
                        migrated_at timestamptz NOT NULL DEFAULT now())"
                ))
                .await
                .db("migrate: create the schema version table")?;
            }
            let current: i32 = tx
                .query_opt(
                    &format!("SELECT version FROM {versions} WHERE component = $1"),
                    &[&component],
                )
                .await
                .db("migrate: read the schema version")?
                .map(|row| row.try_get(0))
                .transpose()
                .db("migrate: read the schema version")?
                .unwrap_or(0);
            if current > target {
                return Err(StoreError::Backend {
                    message: format!(
                        "postgres: the `{component}` tables are at schema version {current}, \
                         newer than this library's {target}; upgrade token-core"
                    ),
                    source: None,
                });
            }
            for (step, sql) in migrations.iter().enumerate().skip(current.max(0) as usize) {
                tx.batch_execute(sql)
                    .await
                    .db(&format!("migrate `{component}` to version {}", step + 1))?;
            }
            if current < target {
                tx.execute(
                    &format!(
                        "INSERT INTO {versions} (component, version) VALUES ($1, $2)
                         ON CONFLICT (component)
                         DO UPDATE SET version = EXCLUDED.version, migrated_at = now()"
                    ),
                    &[&component, &target],
                )
                .await
                .db("migrate: record the schema version")?;
            }
            tx.commit().await.db("migrate: commit")
        })
        .await
    }
}

impl PostgresDatabaseBuilder {
    /// The schema for every table (default [`DEFAULT_SCHEMA`]): an ASCII letter or `_`, then
    /// letters, digits or `_`, at most 63 characters. Created if absent.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections open at once (default 8, at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long one operation (waiting for and making a connection included) may take
    /// before it fails with [`StoreError::Backend`] (default 10 s).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How long making one connection may take (default 5 s, or the URL's `connect_timeout`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout(timeout);
        self
    }

    /// The `application_name` the server shows for these connections (default
    /// `token-core`, or the URL's).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.config.application_name(name);
        self
    }

    /// Connects through TLS with `tls` (a tokio-postgres TLS connector such as
    /// `postgres-native-tls` or `tokio-postgres-rustls`) instead of in the clear.
    pub fn tls<T>(mut self, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let canceller: Canceller = {
            let tls = tls.clone();
            Arc::new(move |token: CancelToken| {
                let tls = tls.clone();
                Box::pin(async move { token.cancel_query(tls).await })
            })
        };
        self.manager = Some((
            Manager::from_config(self.config.clone(), tls, manager_config()),
            canceller,
        ));
        self
    }

    /// The database. Fails only on an invalid schema name; nothing connects yet.
    pub fn build(self) -> Result<PostgresDatabase, StoreError> {
        let (manager, canceller) = self.manager.unwrap_or_else(|| {
            (
                Manager::from_config(self.config, tokio_postgres::NoTls, manager_config()),
                cancel_in_the_clear(),
            )
        });
        let pool = Pool::builder(manager)
            .max_size(self.max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend {
                message: format!("postgres: cannot make the connection pool: {e}"),
                source: None,
            })?;
        PostgresDatabase::from_pool(pool)
            .with_schema(self.schema)
            .map(|db| {
                db.with_operation_timeout(self.operation_timeout)
                    .rebuilt(|db| db.canceller = canceller)
            })
    }
}

/// How many times [`PostgresDatabase::run_raced`] makes an operation again after a race
/// the server rolled it back for.
const RACED_TRIES: u32 = 8;

/// Whether `error` is a transaction the server rolled back because a concurrent one won a
/// race (a serialization failure or a deadlock): it had no effect.
fn rolled_back_by_a_race(error: &StoreError) -> bool {
    match error {
        StoreError::Backend {
            source: Some(source),
            ..
        } => source
            .downcast_ref::<DatabaseError>()
            .is_some_and(|cause| cause.rolled_back),
        _ => false,
    }
}

/// A connection in use by an operation. Dropped with it (the operation's caller gave up: an
/// outer timeout, a `select!`), it must not go back to the pool, where the next caller's
/// statements would queue behind the abandoned one: it is closed, and what it runs is
/// cancelled on the server (a statement waiting for a locked row would otherwise land after
/// its caller gave up).
struct InFlight {
    client: Option<deadpool_postgres::Client>,
    canceller: Canceller,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let cancel = client.cancel_token();
        drop(deadpool_postgres::Object::take(client));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let canceller = self.canceller.clone();
            runtime.spawn(tokio::time::timeout(CANCEL_GRACE, async move {
                canceller(cancel).await
            }));
        }
    }
}

/// A connection is checked for being open before reuse; one that failed was closed.
fn manager_config() -> ManagerConfig {
    ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    }
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// What a database failure says, without anything that could hold a secret: the driver's
/// kind of failure, the SQLSTATE and the server's primary message (never its `DETAIL`, which
/// can quote a row), or the I/O error.
#[derive(Clone, Debug)]
pub(crate) struct DatabaseError {
    text: String,
    connection_lost: bool,
    /// A serialization failure or a deadlock: the transaction was rolled back.
    rolled_back: bool,
}

impl DatabaseError {
    pub(crate) fn of(error: &tokio_postgres::Error) -> Self {
        let text = if let Some(db) = error.as_db_error() {
            format!("{} {}: {}", db.code().code(), db.severity(), db.message())
        } else {
            let kind = error.to_string();
            let io = std::error::Error::source(error)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(|io| format!(": {io}"))
                .unwrap_or_default();
            format!("{kind}{io}")
        };
        use tokio_postgres::error::SqlState;
        let rolled_back = error.code().is_some_and(|code| {
            *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        });
        Self {
            text,
            connection_lost: error.is_closed(),
            rolled_back,
        }
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if self.connection_lost && !self.text.contains("connection closed") {
            f.write_str(" (connection closed)")?;
        }
        Ok(())
    }
}

impl std::error::Error for DatabaseError {}

/// Maps a database call's error to [`StoreError::Backend`], naming what failed:
/// `client.query_opt(..).await.db("load")?`.
pub(crate) trait DbResult<T> {
    /// The value, or a [`StoreError::Backend`] for `what`.
    fn db(self, what: &str) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for Result<T, tokio_postgres::Error> {
    fn db(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|error| backend(what, &error))
    }
}

fn backend(what: &str, error: &tokio_postgres::Error) -> StoreError {
    let cause = DatabaseError::of(error);
    StoreError::Backend {
        message: format!("postgres: {what}: {cause}"),
        source: Some(Arc::new(cause)),
    }
}

/// A connection could not be had from the pool: the database refused or could not be
/// reached (the cause as [`DatabaseError`]), or the pool is closed.
fn pool_error(what: &str, error: deadpool_postgres::PoolError) -> StoreError {
    let message = match error {
        deadpool_postgres::PoolError::Backend(error) => {
            return backend(&format!("{what}: connect"), &error);
        }
        deadpool_postgres::PoolError::Closed => "the connection pool is closed".to_owned(),
        other => format!("no connection: {other}"),
    };
    StoreError::Backend {
        message: format!("postgres: {what}: {message}"),
        source: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `sql` as one batch (test setup and teardown).
    pub(crate) async fn admin(db: &PostgresDatabase, sql: &str) {
        db.run("admin", async |client| {
            client.batch_execute(sql).await.db("admin")
        })
        .await
        .unwrap();
    }

    #[test]
    fn schema_names_are_checked() {
        let db = |schema: &str| {
            PostgresDatabase::builder("postgresql://app@127.0.0.1/app")
                .unwrap()
                .schema(schema)
                .build()
        };
        assert!(db("tokens_1").is_ok());
        assert!(db("_t").is_ok());
        for bad in ["", "1tokens", "a-b", "a\"; DROP", &"x".repeat(64)] {
            assert!(db(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
