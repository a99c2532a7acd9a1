//! The PostgreSQL store: token sets, versions and refresh leases in one database, shared by
//! every replica of a service.
//!
//! See [`PostgresStore`] for the tables.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls, Socket};

use super::{Lease, SessionKey, StoredRecord, TokenStore, Version, Versioned};
use crate::error::StoreError;

/// The schema used when none is configured.
pub const DEFAULT_SCHEMA: &str = "token_core";

/// The schema version [`PostgresStore`] migrates its tables to.
pub const TOKEN_STORE_SCHEMA_VERSION: i32 = 2;

const DEFAULT_MAX_CONNECTIONS: usize = 8;
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_APPLICATION_NAME: &str = "token-core";

type ConnectFuture = Pin<Box<dyn Future<Output = Result<Client, tokio_postgres::Error>> + Send>>;
type Connector = Arc<dyn Fn(tokio_postgres::Config) -> ConnectFuture + Send + Sync>;

/// A PostgreSQL database as token-core uses it: a connection URL, a schema and a small pool
/// of connections. Cheap to clone; clones share the pool. Give one to [`PostgresStore::open`]
/// and, on a wallet, to [`PostgresIssuerStore::open`](crate::issuer::PostgresIssuerStore::open).
///
/// Connections are made lazily, at most [`max_connections`](PostgresDatabaseBuilder::max_connections)
/// at once. A connection that failed in any way is closed rather than reused, so after the
/// database went away and came back the next operation simply connects again. Every
/// operation is bounded by the [operation timeout](PostgresDatabaseBuilder::operation_timeout).
/// Error messages never contain the connection's password.
#[derive(Clone)]
pub struct PostgresDatabase {
    pool: Arc<Pool>,
}

impl fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("schema", &self.pool.schema)
            .field("max_connections", &self.pool.max_connections)
            .field("operation_timeout", &self.pool.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`PostgresDatabase`]. Made by [`PostgresDatabase::builder`].
pub struct PostgresDatabaseBuilder {
    config: tokio_postgres::Config,
    schema: String,
    max_connections: usize,
    operation_timeout: Duration,
    connector: Connector,
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
    /// use token_core::store::PostgresDatabase;
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
            connector: Arc::new(|config| connect_with(config, NoTls)),
        }
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.pool.schema
    }

    /// How many connections are open and idle in the pool right now.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle().len()
    }

    /// Takes a connection: an idle one that is still open, or a new one.
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        let permit = Arc::clone(&self.pool.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend {
                message: "postgres: the connection pool is closed".to_owned(),
                source: None,
            })?;
        let idle = loop {
            let Some(client) = self.pool.idle().pop() else {
                break None;
            };
            if !client.is_closed() {
                break Some(client);
            }
        };
        let client = match idle {
            Some(client) => client,
            None => (self.pool.connector)(self.pool.config.clone())
                .await
                .map_err(|e| db_error("connect", &e))?,
        };
        Ok(Conn {
            client: Some(client),
            pool: Arc::clone(&self.pool),
            _permit: permit,
        })
    }

    /// Runs `operation` within the operation timeout. A connection it holds when the time is
    /// up is dropped (closed), never reused.
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.pool.operation_timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Backend {
                message: format!(
                    "postgres: {what}: no answer within {:?}",
                    self.pool.operation_timeout
                ),
                source: None,
            }),
        }
    }

    /// `name` in this database's schema, quoted: `"schema".name`.
    pub(crate) fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.pool.schema)
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
        self.bounded("migrate", async {
            let mut conn = self.conn().await?;
            let tx = conn
                .client()
                .transaction()
                .await
                .map_err(|e| db_error("migrate", &e))?;
            let lock_key = format!("token-core:{}", self.pool.schema);
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
                .await
                .map_err(|e| db_error("migrate: lock", &e))?;
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                    &[&self.pool.schema],
                )
                .await
                .map_err(|e| db_error("migrate: find the schema", &e))?
                .is_some();
            if !exists {
                tx.batch_execute(&format!("CREATE SCHEMA \"{}\"", self.pool.schema))
                    .await
                    .map_err(|e| db_error("migrate: create the schema", &e))?;
            }
            let versions = self.table("token_core_schema");
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {versions} (
                    component   text PRIMARY KEY,
                    version     integer NOT NULL,
                    migrated_at timestamptz NOT NULL DEFAULT now())"
            ))
            .await
            .map_err(|e| db_error("migrate: create the schema version table", &e))?;
            let current: i32 = tx
                .query_opt(
                    &format!("SELECT version FROM {versions} WHERE component = $1"),
                    &[&component],
                )
                .await
                .map_err(|e| db_error("migrate: read the schema version", &e))?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(|e| db_error("migrate: read the schema version", &e))?
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
                tx.batch_execute(sql).await.map_err(|e| {
                    db_error(
                        &format!("migrate `{component}` to version {}", step + 1),
                        &e,
                    )
                })?;
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
                .map_err(|e| db_error("migrate: record the schema version", &e))?;
            }
            tx.commit()
                .await
                .map_err(|e| db_error("migrate: commit", &e))?;
            conn.done();
            Ok(())
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

    /// How long one operation (connecting included) may take before it fails with
    /// [`StoreError::Backend`] (default 10 s).
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
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        self.connector = Arc::new(move |config| connect_with(config, tls.clone()));
        self
    }

    /// The database. Fails only on an invalid schema name; nothing connects yet.
    pub fn build(self) -> Result<PostgresDatabase, StoreError> {
        if !valid_identifier(&self.schema) {
            return Err(StoreError::Backend {
                message: format!(
                    "postgres: `{}` is not a schema name token-core accepts \
                     ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)",
                    self.schema
                ),
                source: None,
            });
        }
        Ok(PostgresDatabase {
            pool: Arc::new(Pool {
                config: self.config,
                schema: self.schema,
                max_connections: self.max_connections,
                operation_timeout: self.operation_timeout,
                connector: self.connector,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(self.max_connections)),
            }),
        })
    }
}

fn connect_with<T>(config: tokio_postgres::Config, tls: T) -> ConnectFuture
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    Box::pin(async move {
        let (client, connection) = config.connect(tls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %DatabaseError::of(&error), "postgres connection ended");
            }
        });
        Ok(client)
    })
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

struct Pool {
    config: tokio_postgres::Config,
    schema: String,
    max_connections: usize,
    operation_timeout: Duration,
    connector: Connector,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    fn idle(&self) -> MutexGuard<'_, Vec<Client>> {
        // The vector is only pushed and popped: a panic cannot leave it inconsistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection taken from the pool. Back to the pool only through [`Conn::done`]; dropped
/// otherwise (an error, a timeout, a cancelled caller), which closes it, so a connection in
/// an unknown state (mid-transaction) is never reused.
pub(crate) struct Conn {
    client: Option<Client>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    /// The client.
    pub(crate) fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a connection has its client until `done` consumes it")
    }

    /// The operation finished cleanly: the connection may be reused.
    pub(crate) fn done(mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            self.pool.idle().push(client);
        }
    }
}

/// What a database failure says, without anything that could hold a secret: the driver's
/// kind of failure, the SQLSTATE and the server's primary message (never its `DETAIL`, which
/// can quote a row), or the I/O error.
#[derive(Clone, Debug)]
pub(crate) struct DatabaseError {
    text: String,
    connection_lost: bool,
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
        Self {
            text,
            connection_lost: error.is_closed(),
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

/// A [`StoreError::Backend`] for a failed database call.
pub(crate) fn db_error(what: &str, error: &tokio_postgres::Error) -> StoreError {
    let cause = DatabaseError::of(error);
    StoreError::Backend {
        message: format!("postgres: {what}: {cause}"),
        source: Some(Arc::new(cause)),
    }
}

/// Keeps token sets in PostgreSQL, so several replicas of a service share every session,
/// with a refresh lease per session so exactly one replica refreshes it at a time.
///
/// **Saves** are compare-and-swap in one statement (`UPDATE ... WHERE version = $expected`,
/// or `INSERT ... ON CONFLICT DO NOTHING` when the record should be absent); versions come
/// from one sequence, so they increase for a key and never repeat, even after a delete.
///
/// **Leases** are rows with an expiry computed on the database's clock (replicas' clocks may
/// differ): [`acquire_lease`](TokenStore::acquire_lease) takes the row if it is absent,
/// lapsed, or already this holder's (which extends it), in one `INSERT ... ON CONFLICT DO
/// UPDATE ... WHERE`; otherwise it answers [`Lease::HeldByOther`] with the time left. A
/// replica that crashes mid-refresh leaves its lease to lapse after its ttl. The
/// [`TokenManager`](crate::TokenManager) re-reads the session after taking the lease and
/// adopts a newer version instead of refreshing with a stale refresh token.
///
/// **Tables**, in one schema (`token_core` unless [configured](PostgresDatabaseBuilder::schema)),
/// created and migrated by [`open`](Self::open) under a transaction-scoped advisory lock, so
/// replicas starting together migrate once; `token_core_schema` records each component's
/// schema version, and a newer version than this library knows is refused:
///
/// ```sql
/// CREATE TABLE token_core_schema (         -- one row per component and its schema version
///     component   text PRIMARY KEY,        -- 'token_store', 'issuer'
///     version     integer NOT NULL,
///     migrated_at timestamptz NOT NULL DEFAULT now());
/// CREATE SEQUENCE token_set_versions;      -- versions: never repeat, even after a delete
/// CREATE TABLE token_sets (
///     provider   text NOT NULL,
///     session    text NOT NULL,
///     version    bigint NOT NULL,
///     record     jsonb NOT NULL,           -- a StoredRecord, tokens in the clear
///     updated_at timestamptz NOT NULL DEFAULT now(),
///     PRIMARY KEY (provider, session));
/// CREATE TABLE token_leases (
///     provider   text NOT NULL,
///     session    text NOT NULL,
///     holder     text NOT NULL,
///     expires_at timestamptz NOT NULL,     -- the database's clock, not the replicas'
///     PRIMARY KEY (provider, session));
/// ```
///
/// Every failure of the database is a [`StoreError::Backend`] (a lost connection, a refused
/// one, a timeout); the connection is then dropped and the next call connects again.
///
/// ```no_run
/// # async fn run() -> Result<(), token_core::StoreError> {
/// use token_core::store::{PostgresDatabase, PostgresStore, SessionKey, TokenStore};
/// let db = PostgresDatabase::builder("postgresql://app@127.0.0.1:5432/app")?.build()?;
/// let store = PostgresStore::open(&db).await?; // creates or migrates the tables
/// let key = SessionKey::new("vaultist", "customer-1");
/// assert!(store.load(&key).await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    db: PostgresDatabase,
    sql: Arc<Sql>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("db", &self.db)
            .finish()
    }
}

struct Sql {
    load: String,
    version_of: String,
    insert: String,
    update: String,
    delete_any: String,
    delete_at: String,
    acquire: String,
    release: String,
}

impl Sql {
    fn new(db: &PostgresDatabase) -> Self {
        let sets = db.table("token_sets");
        let leases = db.table("token_leases");
        let next_version = format!("nextval('{}')", db.table("token_set_versions"));
        let key = "provider = $1 AND session = $2";
        Self {
            load: format!("SELECT version, record FROM {sets} WHERE {key}"),
            version_of: format!("SELECT version FROM {sets} WHERE {key}"),
            insert: format!(
                "INSERT INTO {sets} (provider, session, version, record)
                 VALUES ($1, $2, {next_version}, $3)
                 ON CONFLICT (provider, session) DO NOTHING
                 RETURNING version"
            ),
            update: format!(
                "UPDATE {sets} SET version = {next_version}, record = $3, updated_at = now()
                 WHERE {key} AND version = $4
                 RETURNING version"
            ),
            delete_any: format!("DELETE FROM {sets} WHERE {key} RETURNING version"),
            delete_at: format!("DELETE FROM {sets} WHERE {key} AND version = $3 RETURNING version"),
            // One statement: take the lease if free, lapsed or ours; otherwise read how long
            // the other holder keeps it (the outer SELECT sees the row as it was before).
            acquire: format!(
                "WITH old AS (SELECT holder FROM {leases} WHERE {key}),
                 taken AS (
                     INSERT INTO {leases} AS l (provider, session, holder, expires_at)
                     VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))
                     ON CONFLICT (provider, session) DO UPDATE
                         SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                         WHERE l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
                     RETURNING 1)
                 SELECT EXISTS (SELECT 1 FROM taken),
                        (SELECT GREATEST(0, EXTRACT(EPOCH FROM expires_at - clock_timestamp())
                                              * 1000000)::bigint
                         FROM {leases} WHERE {key}),
                        EXISTS (SELECT 1 FROM old WHERE holder <> $3)"
            ),
            release: format!("DELETE FROM {leases} WHERE {key} AND holder = $3"),
        }
    }
}

fn migrations(db: &PostgresDatabase) -> Vec<String> {
    let versions = db.table("token_set_versions");
    let sets = db.table("token_sets");
    let leases = db.table("token_leases");
    vec![
        format!(
            "CREATE SEQUENCE {versions} AS bigint;
         CREATE TABLE {sets} (
             provider   text NOT NULL,
             session    text NOT NULL,
             version    bigint NOT NULL,
             token_set  jsonb NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (provider, session));
         CREATE TABLE {leases} (
             provider   text NOT NULL,
             session    text NOT NULL,
             holder     text NOT NULL,
             expires_at timestamptz NOT NULL,
             PRIMARY KEY (provider, session));"
        ),
        // 2: a record is tokens or a re-auth verdict, tagged by `kind`.
        format!(
            "ALTER TABLE {sets} RENAME COLUMN token_set TO record;
             UPDATE {sets} SET record = jsonb_build_object('kind', 'tokens') || record
                 WHERE NOT record ? 'kind';"
        ),
    ]
}

impl PostgresStore {
    /// Opens the store in `db`'s schema, creating or migrating its tables first.
    pub async fn open(db: &PostgresDatabase) -> Result<Self, StoreError> {
        db.migrate("token_store", &migrations(db)).await?;
        Ok(Self {
            db: db.clone(),
            sql: Arc::new(Sql::new(db)),
        })
    }

    /// Connects to `url` with the default schema and pool, and opens the store.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(&PostgresDatabase::builder(url)?.build()?).await
    }

    /// The database (to share its pool with a
    /// [`PostgresIssuerStore`](crate::issuer::PostgresIssuerStore)).
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    async fn found(
        &self,
        conn: &mut Conn,
        key: &SessionKey,
    ) -> Result<Option<Version>, StoreError> {
        let row = conn
            .client()
            .query_opt(&self.sql.version_of, &[&key.provider(), &key.session()])
            .await
            .map_err(|e| db_error("read the version", &e))?;
        row.map(|row| version_of(&row, 0, key)).transpose()
    }
}

fn version_of(
    row: &tokio_postgres::Row,
    column: usize,
    key: &SessionKey,
) -> Result<Version, StoreError> {
    let version: i64 = row
        .try_get(column)
        .map_err(|e| db_error("read the version", &e))?;
    Version::try_from(version).map_err(|_| {
        StoreError::Corrupt(format!(
            "postgres: the record of {key} has a negative version"
        ))
    })
}

fn lease_seconds(ttl: Duration) -> f64 {
    // Whole microseconds, the database's resolution.
    ttl.as_micros() as f64 / 1e6
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.db
            .bounded("load", async {
                let mut conn = self.db.conn().await?;
                let row = conn
                    .client()
                    .query_opt(&self.sql.load, &[&key.provider(), &key.session()])
                    .await
                    .map_err(|e| db_error("load", &e))?;
                conn.done();
                let Some(row) = row else { return Ok(None) };
                let version = version_of(&row, 0, key)?;
                let value: serde_json::Value = row.try_get(1).map_err(|e| db_error("load", &e))?;
                // serde's message may quote a value: name only the kind of problem.
                let value = serde_json::from_value(value).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "postgres: the record of {key} is not a session record ({:?} error)",
                        e.classify()
                    ))
                })?;
                Ok(Some(Versioned { version, value }))
            })
            .await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        let value = serde_json::to_value(record).map_err(|e| StoreError::Backend {
            message: format!("postgres: cannot encode the record of {key}"),
            source: Some(Arc::new(e)),
        })?;
        self.db
            .bounded("save", async {
                let mut conn = self.db.conn().await?;
                let (provider, session) = (key.provider(), key.session());
                let result = match expected {
                    None => {
                        let row = conn
                            .client()
                            .query_opt(&self.sql.insert, &[&provider, &session, &value])
                            .await
                            .map_err(|e| db_error("save", &e))?;
                        match row {
                            Some(row) => Ok(version_of(&row, 0, key)?),
                            None => Err(StoreError::Conflict {
                                expected,
                                found: self.found(&mut conn, key).await?,
                            }),
                        }
                    }
                    Some(version) => {
                        // A version beyond i64 was never issued here: it cannot match.
                        let row = match i64::try_from(version) {
                            Ok(at) => conn
                                .client()
                                .query_opt(&self.sql.update, &[&provider, &session, &value, &at])
                                .await
                                .map_err(|e| db_error("save", &e))?,
                            Err(_) => None,
                        };
                        match row {
                            Some(row) => Ok(version_of(&row, 0, key)?),
                            None => Err(StoreError::Conflict {
                                expected,
                                found: self.found(&mut conn, key).await?,
                            }),
                        }
                    }
                };
                conn.done();
                result
            })
            .await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.db
            .bounded("delete", async {
                let mut conn = self.db.conn().await?;
                let (provider, session) = (key.provider(), key.session());
                let result = match expected {
                    None => {
                        let rows = conn
                            .client()
                            .execute(&self.sql.delete_any, &[&provider, &session])
                            .await
                            .map_err(|e| db_error("delete", &e))?;
                        Ok(rows > 0)
                    }
                    Some(version) => {
                        let rows = match i64::try_from(version) {
                            Ok(at) => conn
                                .client()
                                .execute(&self.sql.delete_at, &[&provider, &session, &at])
                                .await
                                .map_err(|e| db_error("delete", &e))?,
                            Err(_) => 0,
                        };
                        if rows > 0 {
                            Ok(true)
                        } else {
                            match self.found(&mut conn, key).await? {
                                None => Ok(false),
                                found => Err(StoreError::Conflict { expected, found }),
                            }
                        }
                    }
                };
                conn.done();
                result
            })
            .await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let seconds = lease_seconds(ttl);
        self.db
            .bounded("acquire the lease", async {
                let mut conn = self.db.conn().await?;
                let row = conn
                    .client()
                    .query_one(
                        &self.sql.acquire,
                        &[&key.provider(), &key.session(), &holder, &seconds],
                    )
                    .await
                    .map_err(|e| db_error("acquire the lease", &e))?;
                conn.done();
                let acquired: bool = row
                    .try_get(0)
                    .map_err(|e| db_error("acquire the lease", &e))?;
                if acquired {
                    // Another holder's row was there: its lease lapsed unreleased.
                    let taken_over: bool = row
                        .try_get(2)
                        .map_err(|e| db_error("acquire the lease", &e))?;
                    return Ok(if taken_over {
                        Lease::TakenOver
                    } else {
                        Lease::Acquired
                    });
                }
                // No row in the statement's snapshot: another holder took it just now.
                let remaining: Option<i64> = row
                    .try_get(1)
                    .map_err(|e| db_error("acquire the lease", &e))?;
                let remaining = remaining.map_or(ttl, |micros| {
                    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
                });
                Ok(Lease::HeldByOther { remaining })
            })
            .await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        self.db
            .bounded("release the lease", async {
                let mut conn = self.db.conn().await?;
                conn.client()
                    .execute(
                        &self.sql.release,
                        &[&key.provider(), &key.session(), &holder],
                    )
                    .await
                    .map_err(|e| db_error("release the lease", &e))?;
                conn.done();
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{AccessToken, RefreshToken, TokenSet};

    pub(crate) use crate::store::postgres_test_server::test_url;

    /// A database on a schema of its own, dropped by [`drop_schema`].
    pub(crate) fn test_db(url: &str, application_name: &str) -> PostgresDatabase {
        let schema = format!("tc_test_{}", uuid::Uuid::new_v4().simple());
        PostgresDatabase::builder(url)
            .unwrap()
            .schema(schema)
            .application_name(application_name)
            .max_connections(4)
            .operation_timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    pub(crate) async fn admin(db: &PostgresDatabase, sql: &str) {
        let mut conn = db.conn().await.unwrap();
        conn.client().batch_execute(sql).await.unwrap();
        conn.done();
    }

    pub(crate) async fn drop_schema(db: &PostgresDatabase) {
        admin(
            db,
            &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", db.schema()),
        )
        .await;
    }

    fn set(token: &str) -> StoredRecord {
        TokenSet::<serde_json::Value>::new(AccessToken::new(token))
            .with_refresh_token(RefreshToken::new(format!("rt-{token}")))
            .to_stored()
            .unwrap()
            .into()
    }

    #[tokio::test]
    async fn save_is_compare_and_swap_and_versions_never_repeat() {
        let Some(url) = test_url("save_is_compare_and_swap_and_versions_never_repeat") else {
            return;
        };
        let db = test_db(&url, "token-core-test-cas");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "s");
        assert!(store.load(&key).await.unwrap().is_none());
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let err = store.save(&key, &set("b"), None).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { expected: None, found: Some(v) } if v == v1),
            "{err:?}"
        );
        let v2 = store.save(&key, &set("b"), Some(v1)).await.unwrap();
        assert!(v2 > v1);
        let err = store.save(&key, &set("c"), Some(v1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { expected: Some(e), found: Some(f) } if e == v1 && f == v2),
            "a stale version must lose: {err:?}"
        );
        assert!(matches!(
            store.save(&key, &set("c"), Some(u64::MAX)).await,
            Err(StoreError::Conflict { .. })
        ));
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.version, v2);
        assert_eq!(loaded.value, set("b"));

        // Delete at a stale version loses; at the current one wins; versions go on.
        assert!(matches!(
            store.delete(&key, Some(v1)).await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(store.delete(&key, Some(v2)).await.unwrap());
        assert!(!store.delete(&key, None).await.unwrap());
        assert!(!store.delete(&key, Some(v2)).await.unwrap());
        assert!(matches!(
            store.save(&key, &set("d"), Some(v2)).await,
            Err(StoreError::Conflict {
                expected: Some(_),
                found: None
            })
        ));
        let v3 = store.save(&key, &set("d"), None).await.unwrap();
        assert!(v3 > v2, "versions never repeat after a delete");

        // Another store over the same schema (another replica) sees the same record.
        let other = PostgresStore::open(&db.clone()).await.unwrap();
        assert_eq!(other.load(&key).await.unwrap().unwrap().version, v3);
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn concurrent_saves_at_one_version_have_exactly_one_winner() {
        let Some(url) = test_url("concurrent_saves_at_one_version_have_exactly_one_winner") else {
            return;
        };
        let db = test_db(&url, "token-core-test-cas-race");
        let stores = [
            PostgresStore::open(&db).await.unwrap(),
            PostgresStore::open(&test_db_same_schema(&url, &db))
                .await
                .unwrap(),
        ];
        let key = SessionKey::new("p", "race");
        let base = stores[0].save(&key, &set("base"), None).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let store = stores[i % 2].clone();
            let key = key.clone();
            tasks.spawn(async move { store.save(&key, &set(&format!("w{i}")), Some(base)).await });
        }
        let mut won = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(version) => won.push(version),
                Err(StoreError::Conflict {
                    expected: Some(e),
                    found: Some(_),
                }) => assert_eq!(e, base),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(won.len(), 1, "exactly one writer wins the CAS");
        assert_eq!(stores[1].load(&key).await.unwrap().unwrap().version, won[0]);
        drop_schema(&db).await;
    }

    fn test_db_same_schema(url: &str, db: &PostgresDatabase) -> PostgresDatabase {
        PostgresDatabase::builder(url)
            .unwrap()
            .schema(db.schema())
            .max_connections(4)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_lease_excludes_others_until_released_or_lapsed() {
        let Some(url) = test_url("a_lease_excludes_others_until_released_or_lapsed") else {
            return;
        };
        let db = test_db(&url, "token-core-test-lease");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "leased");
        let long = Duration::from_secs(60);
        assert_eq!(
            store.acquire_lease(&key, "a", long).await.unwrap(),
            Lease::Acquired
        );
        match store.acquire_lease(&key, "b", long).await.unwrap() {
            Lease::HeldByOther { remaining } => {
                assert!(
                    remaining > Duration::from_secs(50) && remaining <= long,
                    "{remaining:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        // The holder may take it again (extending it); others may not release it.
        assert_eq!(
            store.acquire_lease(&key, "a", long).await.unwrap(),
            Lease::Acquired
        );
        store.release_lease(&key, "b").await.unwrap();
        assert!(matches!(
            store.acquire_lease(&key, "b", long).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        // Leases are per session.
        let other_key = SessionKey::new("p", "other");
        assert_eq!(
            store.acquire_lease(&other_key, "b", long).await.unwrap(),
            Lease::Acquired
        );
        store.release_lease(&key, "a").await.unwrap();
        assert_eq!(
            store.acquire_lease(&key, "b", long).await.unwrap(),
            Lease::Acquired
        );

        // A short lease lapses by itself (its holder crashed): another holder gets it.
        let crashed = SessionKey::new("p", "crashed");
        let ttl = Duration::from_millis(300);
        let started = std::time::Instant::now();
        assert_eq!(
            store.acquire_lease(&crashed, "dead", ttl).await.unwrap(),
            Lease::Acquired
        );
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(polls <= 200, "the lease never lapsed");
            match store.acquire_lease(&crashed, "alive", ttl).await.unwrap() {
                Lease::Acquired => panic!("the dead holder's lapsed lease is taken over"),
                Lease::TakenOver => break,
                Lease::HeldByOther { remaining } => {
                    assert!(remaining <= ttl);
                    tokio::time::sleep(remaining.min(Duration::from_millis(50))).await;
                }
            }
        }
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "lapsed too early"
        );
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn concurrent_lease_requests_have_exactly_one_winner() {
        let Some(url) = test_url("concurrent_lease_requests_have_exactly_one_winner") else {
            return;
        };
        let db = test_db(&url, "token-core-test-lease-race");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "contended");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12 {
            let store = store.clone();
            let key = key.clone();
            tasks.spawn(async move {
                store
                    .acquire_lease(&key, &format!("h{i}"), Duration::from_secs(30))
                    .await
            });
        }
        let mut acquired = 0;
        while let Some(result) = tasks.join_next().await {
            if result.unwrap().unwrap() == Lease::Acquired {
                acquired += 1;
            }
        }
        assert_eq!(acquired, 1);
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn the_schema_is_created_once_and_versioned() {
        let Some(url) = test_url("the_schema_is_created_once_and_versioned") else {
            return;
        };
        let db = test_db(&url, "token-core-test-migrate");
        // Replicas starting together: every open succeeds, the tables are made once.
        let mut opens = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let db = test_db_same_schema(&url, &db);
            opens.spawn(async move { PostgresStore::open(&db).await.map(|_| ()) });
        }
        while let Some(result) = opens.join_next().await {
            result.unwrap().unwrap();
        }
        let mut conn = db.conn().await.unwrap();
        let version: i32 = conn
            .client()
            .query_one(
                &format!(
                    "SELECT version FROM {} WHERE component = 'token_store'",
                    db.table("token_core_schema")
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, TOKEN_STORE_SCHEMA_VERSION);
        // A schema from a newer library is refused, not damaged.
        conn.client()
            .execute(
                &format!(
                    "UPDATE {} SET version = 99 WHERE component = 'token_store'",
                    db.table("token_core_schema")
                ),
                &[],
            )
            .await
            .unwrap();
        conn.done();
        let err = PostgresStore::open(&db).await.unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_corrupt_record_is_typed_and_quotes_nothing() {
        let Some(url) = test_url("a_corrupt_record_is_typed_and_quotes_nothing") else {
            return;
        };
        let db = test_db(&url, "token-core-test-corrupt");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "corrupt");
        admin(
            &db,
            &format!(
                "INSERT INTO {} (provider, session, version, record)
                 VALUES ('p', 'corrupt', 1, '{{\"access_token\": 42, \"x\": \"LEAKME\"}}')",
                db.table("token_sets")
            ),
        )
        .await;
        let err = store.load(&key).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("LEAKME"));
        assert!(
            store.delete(&key, None).await.unwrap(),
            "a corrupt record can be cleared"
        );
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn killed_connections_give_typed_errors_and_the_store_reconnects() {
        let Some(url) = test_url("killed_connections_give_typed_errors_and_the_store_reconnects")
        else {
            return;
        };
        let app = format!("token-core-test-kill-{}", uuid::Uuid::new_v4().simple());
        let db = test_db(&url, &app);
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "survives");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        assert!(db.idle_connections() > 0);

        // Hold a connection mid-query while the server terminates every one of ours.
        let slow = {
            let db = db.clone();
            tokio::spawn(async move {
                db.bounded("sleep", async {
                    let mut conn = db.conn().await?;
                    conn.client()
                        .batch_execute("SELECT pg_sleep(30)")
                        .await
                        .map_err(|e| db_error("sleep", &e))?;
                    conn.done();
                    Ok(())
                })
                .await
            })
        };
        let killer = test_db_same_schema(&url, &db);
        let mut killed = 0;
        for _ in 0..100 {
            let mut conn = killer.conn().await.unwrap();
            let row = conn
                .client()
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE application_name = $1 AND state = 'active'",
                    &[&app],
                )
                .await
                .unwrap();
            conn.done();
            killed = row.get::<_, i64>(0);
            if killed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(killed > 0, "the sleeping query never showed up");
        let err = slow.await.unwrap().unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(err.to_string().contains("postgres: sleep: 57P01"), "{err}");

        // Kill the idle ones too; the next calls connect again.
        let mut conn = killer.conn().await.unwrap();
        conn.client()
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        conn.done();
        let mut loaded = None;
        for _ in 0..3 {
            match store.load(&key).await {
                Ok(found) => {
                    loaded = found;
                    break;
                }
                Err(StoreError::Backend { .. }) => continue,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(loaded.expect("the store reconnected").version, v1);
        store.save(&key, &set("b"), Some(v1)).await.unwrap();
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn errors_never_contain_the_password() {
        // Nothing listens on port 9 of 127.0.0.1 (discard): connecting fails at once.
        let db = PostgresDatabase::builder(
            "postgresql://user:hunter2-pw@127.0.0.1:9/db?connect_timeout=2",
        )
        .unwrap()
        .build()
        .unwrap();
        let err = PostgresStore::open(&db).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        let mut shown = format!("{err} {err:?} {db:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            shown.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(shown.contains("connect"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let err =
            PostgresDatabase::builder("host=127.0.0.1 password=hunter2 port=notaport").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"));
        assert!(
            PostgresDatabase::builder("postgresql://u@h/db")
                .unwrap()
                .schema("bad\"; DROP")
                .build()
                .is_err()
        );
    }
}
