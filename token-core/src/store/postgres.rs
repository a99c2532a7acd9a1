//! The PostgreSQL store: token sets, versions and refresh leases in one database, shared by
//! every replica of a service.
//!
//! See [`PostgresStore`] for the tables.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Lease, SessionKey, StoredRecord, TokenStore, Unreadable, Version, Versioned};
use crate::error::StoreError;
use crate::postgres::{DbResult, Hidden, PostgresDatabase, lock_bound};

/// The schema version [`PostgresStore`] migrates its tables to.
pub const TOKEN_STORE_SCHEMA_VERSION: i32 = 4;

/// Keeps token sets in PostgreSQL, so several replicas of a service share every session,
/// with a refresh lease per session so exactly one replica refreshes it at a time.
///
/// **Saves** are compare-and-swap in one statement (`UPDATE ... WHERE version = $expected`,
/// or `INSERT ... ON CONFLICT DO NOTHING` when the record should be absent); versions come
/// from one sequence, so they increase for a key and never repeat, even after a delete.
/// [`open`](Self::open) moves that sequence up to the highest version the table holds if it
/// is behind (rows restored from another database, or written by hand).
///
/// **Leases** are rows with an expiry computed on the database's clock (replicas' clocks may
/// differ): [`acquire_lease`](TokenStore::acquire_lease) takes the row if it is absent,
/// lapsed, or already this holder's (which extends it), in one `INSERT ... ON CONFLICT DO
/// UPDATE ... WHERE`; otherwise it answers [`Lease::HeldByOther`] with the time left. A
/// replica that crashes mid-refresh leaves its lease to lapse after its ttl (at most 1000
/// years: a longer one, up to `Duration::MAX`, lasts that long). Each row keeps its ttl and
/// the instant it was counted from, so that if the database's clock goes back, a lease
/// still lapses at most its ttl after it is next looked at (by `acquire_lease`, which then
/// answers at most the ttl as the time left, or by
/// [`lapsed_leases`](TokenStore::lapsed_leases)), not the size of the step later; as the
/// file store does. A row of schema version 3, or written by a process of that release
/// still running beside this one, has no ttl of its own and lasts as it says. `delete`
/// removes a lapsed lease with the record, and keeps a live one until its holder releases
/// it. The
/// [`TokenManager`](crate::manager::TokenManager) re-reads the session after taking the lease and
/// adopts a newer version instead of refreshing with a stale refresh token.
///
/// **Tables**, in one schema (`token_core` unless [configured](crate::postgres::PostgresDatabaseBuilder::schema)),
/// created and migrated by [`open`](Self::open) under a transaction-scoped advisory lock, so
/// replicas starting together migrate once; `token_core_schema` records each component's
/// schema version, and a newer version than this library knows is refused. Tables already
/// at this version are opened without creating anything, so a service may run as a role
/// that only reads and writes them (`SELECT`, `INSERT`, `UPDATE`, `DELETE` on the tables,
/// `USAGE` and `SELECT` on the sequence), an administrator having made them:
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
///     record     json NOT NULL,            -- a StoredRecord, tokens in the clear
///     updated_at timestamptz NOT NULL DEFAULT now(),
///     PRIMARY KEY (provider, session));
/// CREATE TABLE token_leases (
///     provider   text NOT NULL,
///     session    text NOT NULL,
///     holder     text NOT NULL,
///     expires_at timestamptz NOT NULL,     -- the database's clock, not the replicas'
///     ttl_from   timestamptz,              -- expires_at = ttl_from + ttl, unless written
///     ttl        interval,                 --   by version 3's release: then no cap
///     PRIMARY KEY (provider, session));
/// ```
///
/// **Names** are kept as PostgreSQL `text` (in a UTF-8 database), with provider and session
/// as the primary key: a provider, session or lease holder name holding a NUL character,
/// or a provider and session name longer together than [`MAX_KEY_BYTES`](Self::MAX_KEY_BYTES)
/// (2048 bytes, well inside what the key's index entry holds), is refused with
/// [`StoreError::Unsupported`] before any statement is sent: nothing is read or written, no
/// connection is closed, and the manager gives up on it rather than retry it as an outage.
/// The file and memory stores take such names; records themselves may hold any string,
/// NUL characters included (the column is `json`, kept as the text it was saved as).
///
/// Every failure of the database is a [`StoreError::Backend`] (a lost connection, a refused
/// one, a timeout); the connection is then dropped and the next call connects again. A
/// statement the server rolls back because a concurrent one won a race (a serialization
/// failure, on a database whose transactions are `REPEATABLE READ` or `SERIALIZABLE` by
/// default; a deadlock) is no failure: it had no effect, and is sent again, so writers
/// racing on one session get [`StoreError::Conflict`] or [`Lease::HeldByOther`] whatever the
/// database's default isolation. A
/// statement still running at the timeout (waiting for a row another transaction holds
/// locked) is cancelled on the server before the call fails: a call that failed has no
/// later effect, and its connection is not reused. A call its caller drops (an outer
/// timeout shorter than the operation timeout) is cancelled too, in the background: until
/// the cancel arrives its statement may still complete. The statements that may wait for
/// a locked row (saves, deletes, lease grants and releases) also bound that wait on the
/// server by what is left of the operation timeout (a `lock_timeout` of their own
/// transaction), so that none lands after its operation timeout, even when the cancel
/// cannot reach the server: a release landing late would take away the lease its holder
/// was granted again since.
///
/// ```no_run
/// # async fn run() -> Result<(), token_core::error::StoreError> {
/// use token_core::postgres::PostgresDatabase;
/// use token_core::store::{PostgresStore, SessionKey, TokenStore};
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
    delete_content: String,
    acquire: String,
    release: String,
    lapsed: String,
}

impl Sql {
    /// Every statement.
    fn all(&self) -> [&str; 10] {
        [
            &self.load,
            &self.version_of,
            &self.insert,
            &self.update,
            &self.delete_any,
            &self.delete_at,
            &self.delete_content,
            &self.acquire,
            &self.release,
            &self.lapsed,
        ]
    }

    fn new(db: &PostgresDatabase) -> Self {
        let sets = db.table("token_sets");
        let leases = db.table("token_leases");
        let next_version = format!("nextval('{}')", db.table("token_set_versions"));
        let key = "provider = $1 AND session = $2";
        // Every statement that may wait for a row another transaction holds bounds that
        // wait by its last parameter (see `lock_bound`).
        Self {
            // As the text it was saved as: parsed here, so that whatever it holds is a
            // Corrupt record, never a driver's deserializing error (a Backend outage).
            load: format!("SELECT version, record::text FROM {sets} WHERE {key}"),
            version_of: format!("SELECT version FROM {sets} WHERE {key}"),
            insert: format!(
                "INSERT INTO {sets} (provider, session, version, record)
                 SELECT $1::text, $2::text, {next_version}, $3::json WHERE {}
                 ON CONFLICT (provider, session) DO NOTHING
                 RETURNING version",
                lock_bound(4)
            ),
            update: format!(
                "UPDATE {sets} SET version = {next_version}, record = $3, updated_at = now()
                 WHERE {key} AND version = $4 AND {}
                 RETURNING version",
                lock_bound(5)
            ),
            // A lease outlives its session only while its holder may still be refreshing
            // it (as in the file store): a lapsed one goes with the record, or the table
            // would keep a row for every session ever removed whose lease was not released.
            delete_any: deleting(&sets, &leases, key, "", 3),
            delete_at: deleting(&sets, &leases, key, " AND version = $3", 4),
            // An unreadable record without a usable version, by the digest of its text.
            delete_content: deleting(
                &sets,
                &leases,
                key,
                " AND version < 0 AND sha256(convert_to(record::text, 'UTF8')) = $3",
                4,
            ),
            // One statement: take the lease if free, lapsed or ours; otherwise cut it to its
            // ttl from now if the clock went back since it was written, and read how long the
            // other holder keeps it (the outer SELECT sees the row as it was before). `now` is
            // read once: the new row's `ttl_from`. Taken over only if the row was there to be
            // replaced (updated, not inserted: `xmax` is 0 on a row this statement inserted):
            // a holder's row deleted after the statement began (a release it waited for) is
            // in its snapshot (`old`), but was given back, not left to lapse.
            acquire: {
                let now = "EXCLUDED.ttl_from";
                let free = format!("(l.expires_at <= {now} OR l.holder = EXCLUDED.holder)");
                format!(
                    "WITH old AS (SELECT holder FROM {leases} WHERE {key}),
                     taken AS (
                         INSERT INTO {leases} AS l
                             (provider, session, holder, expires_at, ttl_from, ttl)
                         SELECT $1::text, $2::text, $3::text, n.now + n.ttl, n.now, n.ttl
                         FROM (SELECT clock_timestamp() AS now,
                                      make_interval(secs => $4::float8) AS ttl) AS n
                         WHERE {}
                         ON CONFLICT (provider, session) DO UPDATE
                             SET holder = CASE WHEN {free} THEN EXCLUDED.holder ELSE l.holder END,
                                 expires_at = CASE WHEN {free} THEN EXCLUDED.expires_at
                                                   ELSE {now} + l.ttl END,
                                 ttl = CASE WHEN {free} THEN EXCLUDED.ttl ELSE l.ttl END,
                                 ttl_from = {now}
                             WHERE {free} OR {}
                         RETURNING holder, xmax = 0 AS inserted)
                     SELECT EXISTS (SELECT 1 FROM taken WHERE holder = $3),
                            (SELECT GREATEST(0, EXTRACT(EPOCH FROM {} - clock_timestamp())
                                                  * 1000000)::bigint
                             FROM {leases} WHERE {key}),
                            EXISTS (SELECT 1 FROM old WHERE holder <> $3)
                                AND NOT EXISTS (SELECT 1 FROM taken WHERE inserted)",
                    lock_bound(5),
                    stretched("l.", now),
                    lease_end("", "clock_timestamp()"),
                )
            },
            release: format!(
                "DELETE FROM {leases} WHERE {key} AND holder = $3 AND {}",
                lock_bound(4)
            ),
            // A lease row that lapsed a lease length ago or more without a record beside it
            // was left by a holder that died after its session was removed (a delete keeps
            // a live lease, for its holder): deleted, or every such death would leave a row
            // for good. No take-over waits on it any more (it watches a lease length).
            // Looked at, a lease lasts at most its ttl from now (as `acquire_lease` has it):
            // one stretched by a clock that went back is cut to that (rows another
            // transaction holds locked are being taken or given back, and are skipped, so
            // nothing here waits), or a holder that died before the step would be listed
            // only the size of the step later. Then the latest lapsed first (a recent death
            // is the one whose pair may still come back), and only sessions with a record:
            // stale rows never crowd them out.
            lapsed: format!(
                "WITH n AS (SELECT clock_timestamp() AS now),
                 stretched AS (
                     SELECT x.provider, x.session FROM {leases} x, n
                     WHERE x.provider = $1 AND {}
                     LIMIT {listed} FOR UPDATE OF x SKIP LOCKED),
                 cut AS (
                     UPDATE {leases} l SET expires_at = n.now + l.ttl, ttl_from = n.now
                     FROM n, stretched s
                     WHERE l.provider = s.provider AND l.session = s.session AND {}),
                 stale AS (
                     SELECT x.provider, x.session FROM {leases} x, n
                     WHERE x.provider = $1 AND {}
                     LIMIT {listed} FOR UPDATE OF x SKIP LOCKED),
                 gone AS (
                     DELETE FROM {leases} l USING stale s
                     WHERE l.provider = s.provider AND l.session = s.session)
                 SELECT l.session FROM {leases} l JOIN {sets} s USING (provider, session)
                 WHERE l.provider = $1 AND l.expires_at <= clock_timestamp()
                 ORDER BY l.expires_at DESC LIMIT {listed}",
                stretched("x.", "n.now"),
                stretched("l.", "n.now"),
                stale_lease("x.", &sets, "n.now"),
                listed = super::LAPSED_LEASES_LISTED
            ),
        }
    }
}

/// Whether a lease row (its columns prefixed by `r`: a table alias and a dot, or nothing)
/// lapses later than its ttl from `now`: the database's clock went back since it was
/// written. Only a row this schema version wrote (`ttl_from + ttl = expires_at`) is known
/// to: one of schema version 3, or written by a process of that release (which sets
/// `expires_at` alone), has no ttl of its own and lasts as it says.
fn stretched(r: &str, now: &str) -> String {
    format!("({r}ttl_from + {r}ttl = {r}expires_at AND {r}expires_at > {now} + {r}ttl)")
}

/// Whether a lease row (its columns prefixed by `r`, as for [`stretched`]) lapsed a lease
/// length or more before `now` and no record of `sets` is beside it. A row written without a
/// ttl (schema version 3) is never such a row; one a process of that release took over keeps
/// the ttl of the lease it replaced, and is judged by it (no record is beside it, so nothing
/// can be recovered from it either way).
fn stale_lease(r: &str, sets: &str, now: &str) -> String {
    format!(
        "({r}expires_at + {r}ttl <= {now} AND NOT EXISTS
             (SELECT 1 FROM {sets} t WHERE t.provider = {r}provider AND t.session = {r}session))"
    )
}

/// When a lease row (as for [`stretched`]) ends, looked at `now`: its expiry, or its ttl from
/// `now` if that comes first (the clock went back since it was written).
fn lease_end(r: &str, now: &str) -> String {
    format!(
        "LEAST({r}expires_at,
               CASE WHEN {r}ttl_from + {r}ttl = {r}expires_at THEN {now} + {r}ttl END)"
    )
}

/// Deletes the record of the key (`key`, and `condition` on the record), and its lease if
/// that lapsed, waiting for a locked row up to parameter `bound`'s milliseconds; returns the
/// deleted record's version.
fn deleting(sets: &str, leases: &str, key: &str, condition: &str, bound: usize) -> String {
    let bound = lock_bound(bound);
    format!(
        "WITH gone AS (DELETE FROM {sets} WHERE {key}{condition} AND {bound} RETURNING version),
         lapsed AS (DELETE FROM {leases} WHERE {key} AND expires_at <= clock_timestamp()
                        AND EXISTS (SELECT 1 FROM gone))
         SELECT version FROM gone"
    )
}

/// Moves the version sequence up to the highest version the table holds, if it is behind
/// (rows restored from another database, or written by hand): saves numbered from the
/// sequence would otherwise go back below a record's version, and then repeat one. Under a
/// lock that keeps every save out meanwhile (their statements take the table's row lock
/// before they draw a version), so a version drawn concurrently is never set back.
async fn catch_up_versions(db: &PostgresDatabase) -> Result<(), StoreError> {
    let (versions, sets) = (db.table("token_set_versions"), db.table("token_sets"));
    let what = "catch the version sequence up";
    db.run_bounded(what, async |client, budget| {
        let tx = crate::postgres::bounded_transaction(client, budget, what).await?;
        tx.batch_execute(&format!(
            "LOCK TABLE {sets} IN SHARE ROW EXCLUSIVE MODE;
             SELECT setval('{versions}', top)
               FROM (SELECT max(version) AS top FROM {sets}) AS highest
              WHERE top > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                             FROM {versions});"
        ))
        .await
        .db(what)?;
        tx.commit().await.db(what)
    })
    .await
}

/// Deletes lease rows, of any provider, that lapsed a lease length ago or more without a
/// record beside them ([`stale_lease`]), as a look for lapsed leases does for its provider:
/// a deployment whose managers never look (a provider without a reuse window) would keep
/// such a row for good. Rows other transactions hold locked are skipped; at most
/// [`STALE_LEASES_AT_OPEN`] rows, so a store opened over years of them is not held up.
async fn remove_stale_leases(db: &PostgresDatabase) -> Result<(), StoreError> {
    let (leases, sets) = (db.table("token_leases"), db.table("token_sets"));
    let what = "remove lapsed leases without a record";
    let sql = format!(
        "WITH stale AS (
             SELECT x.provider, x.session FROM {leases} x WHERE {}
             LIMIT {STALE_LEASES_AT_OPEN} FOR UPDATE OF x SKIP LOCKED)
         DELETE FROM {leases} l USING stale s
         WHERE l.provider = s.provider AND l.session = s.session",
        stale_lease("x.", &sets, "clock_timestamp()")
    );
    db.run_bounded(what, async |client, budget| {
        let tx = crate::postgres::bounded_transaction(client, budget, what).await?;
        tx.execute(&sql, &[]).await.db(what)?;
        tx.commit().await.db(what)
    })
    .await
}

/// The most stale lease rows [`PostgresStore::open`] deletes.
const STALE_LEASES_AT_OPEN: usize = 10_000;

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
        // 3: `json`, which keeps a record as the text it was given: `jsonb` refuses the
        // `\u0000` of a string holding a NUL character (a provider's answer may carry one).
        // Nothing queries into the column from here on: jsonb operators stay above.
        format!("ALTER TABLE {sets} ALTER COLUMN record TYPE json USING record::json;"),
        // 4: a lease keeps its ttl, and the instant it was counted from, so that one
        // stretched by the database's clock going back lasts at most its ttl once looked
        // at. Rows already there, and those a process of the previous release writes
        // (`expires_at` alone), hold none that fits (`ttl_from + ttl <> expires_at`): they
        // last as they say, as before.
        format!("ALTER TABLE {leases} ADD COLUMN ttl_from timestamptz, ADD COLUMN ttl interval;"),
    ]
}

impl PostgresStore {
    /// The most bytes (UTF-8) a provider and a session name may have together.
    pub const MAX_KEY_BYTES: usize = 2048;

    /// Opens the store in `db`'s schema, creating or migrating its tables first.
    ///
    /// Every statement the store sends is then prepared once against the schema, so tables
    /// dropped or altered by hand under a recorded version fail here, as a typed error, not
    /// at the first call.
    ///
    /// It also deletes the lease rows that lapsed a lease length ago or more with no record
    /// beside them (their holder died after the session was removed), up to ten thousand.
    pub async fn open(db: &PostgresDatabase) -> Result<Self, StoreError> {
        db.migrate("token_store", &migrations(db)).await?;
        let sql = Sql::new(db);
        db.prepare_all(&sql.all()).await?;
        catch_up_versions(db).await?;
        remove_stale_leases(db).await?;
        Ok(Self {
            db: db.clone(),
            sql: Arc::new(sql),
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

    /// The version stored for `key` now: what a compare-and-swap that lost found.
    async fn found(
        &self,
        client: &mut deadpool_postgres::Client,
        key: &SessionKey,
    ) -> Result<Option<Version>, StoreError> {
        let row = client
            .query_opt(&self.sql.version_of, &[&key.provider(), &key.session()])
            .await
            .db("read the version")?;
        row.map(|row| version_of(&row, 0, key)).transpose()
    }
}

fn version_of(
    row: &tokio_postgres::Row,
    column: usize,
    key: &SessionKey,
) -> Result<Version, StoreError> {
    let version: i64 = row.try_get(column).db("read the version")?;
    Version::try_from(version).map_err(|_| {
        StoreError::Corrupt(format!(
            "postgres: the record of {key} has a negative version"
        ))
    })
}

/// Refuses, before any statement is sent, a key the tables cannot hold: `text` takes no NUL
/// character (22021), and the primary key's index entry no longer names than
/// [`PostgresStore::MAX_KEY_BYTES`] (54000 past about 2.7 kB once compressed). Sent anyway,
/// either would be a database error: a [`StoreError::Backend`] the manager retries as an
/// outage, and a closed connection.
fn storable(key: &SessionKey) -> Result<(), StoreError> {
    let (provider, session) = (key.provider(), key.session());
    for (what, name) in [("provider", provider), ("session", session)] {
        if name.contains('\0') {
            return Err(holds_nul(what));
        }
    }
    let bytes = provider.len() + session.len();
    if bytes > PostgresStore::MAX_KEY_BYTES {
        return Err(StoreError::Unsupported(format!(
            "postgres: a provider and session name of {bytes} bytes together, more than the \
             {} the store keeps",
            PostgresStore::MAX_KEY_BYTES
        )));
    }
    Ok(())
}

/// Refuses a key or a lease holder name the tables cannot hold (see [`storable`]).
fn storable_lease(key: &SessionKey, holder: &str) -> Result<(), StoreError> {
    storable(key)?;
    match holder.contains('\0') {
        true => Err(holds_nul("lease holder")),
        false => Ok(()),
    }
}

fn holds_nul(what: &str) -> StoreError {
    StoreError::Unsupported(format!(
        "postgres: a {what} name holding a NUL character, which PostgreSQL text cannot hold"
    ))
}

/// The longest lease the database is asked for: a longer ttl (up to `Duration::MAX`, which
/// the file and memory stores grant as "never lapses") would put its expiry past what a
/// `timestamptz` holds, or its remaining microseconds past a `bigint`.
const MAX_LEASE: Duration = Duration::from_secs(1000 * 366 * 86_400);

fn lease_seconds(ttl: Duration) -> f64 {
    // Whole microseconds, the database's resolution.
    ttl.min(MAX_LEASE).as_micros() as f64 / 1e6
}

impl PostgresStore {
    /// `key`'s row (its version and record, unread), if any.
    async fn load_row(&self, key: &SessionKey) -> Result<Option<tokio_postgres::Row>, StoreError> {
        storable(key)?;
        self.db
            .run_raced("load", || {
                async |client, _| {
                    client
                        .query_opt(&self.sql.load, &[&key.provider(), &key.session()])
                        .await
                        .db("load")
                }
            })
            .await
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        let Some(row) = self.load_row(key).await? else {
            return Ok(None);
        };
        let version = version_of(&row, 0, key)?;
        let text: String = row.try_get(1).db("load")?;
        // serde's message may quote a value: name only the kind of problem.
        let value = super::json::from_slice(text.as_bytes()).map_err(|e| {
            StoreError::Corrupt(format!(
                "postgres: the record of {key} is not a session record ({:?} error)",
                e.classify()
            ))
        })?;
        Ok(Some(Versioned { version, value }))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        storable(key)?;
        let value = serde_json::to_value(record).map_err(|e| StoreError::Backend {
            message: format!("postgres: cannot encode the record of {key}"),
            source: Some(Arc::new(e)),
        })?;
        if super::json::value_depth(&value) > super::json::MAX_DEPTH {
            // `load` would refuse it: keep the record that loads.
            return Err(StoreError::Unsupported(format!(
                "postgres: the record of {key} would be nested more than {} deep, which this \
                 store does not load",
                super::json::MAX_DEPTH
            )));
        }
        let (provider, session, value) = (key.provider(), key.session(), Hidden(value));
        self.db
            .run_raced("save", || {
                async |client, bound| {
                    let row = match expected {
                        None => client
                            .query_opt(&self.sql.insert, &[&provider, &session, &value, &bound])
                            .await
                            .db("save")?,
                        // A version beyond i64 was never issued here: it cannot match.
                        Some(version) => match i64::try_from(version) {
                            Ok(at) => client
                                .query_opt(
                                    &self.sql.update,
                                    &[&provider, &session, &value, &at, &bound],
                                )
                                .await
                                .db("save")?,
                            Err(_) => None,
                        },
                    };
                    match row {
                        Some(row) => version_of(&row, 0, key),
                        None => Err(StoreError::Conflict {
                            expected,
                            found: self.found(client, key).await?,
                        }),
                    }
                }
            })
            .await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        storable(key)?;
        let (provider, session) = (key.provider(), key.session());
        self.db
            .run_raced("delete", || {
                async |client, bound| {
                    let Some(version) = expected else {
                        let rows = client
                            .execute(&self.sql.delete_any, &[&provider, &session, &bound])
                            .await
                            .db("delete")?;
                        return Ok(rows > 0);
                    };
                    let rows = match i64::try_from(version) {
                        Ok(at) => client
                            .execute(&self.sql.delete_at, &[&provider, &session, &at, &bound])
                            .await
                            .db("delete")?,
                        Err(_) => 0,
                    };
                    if rows > 0 {
                        return Ok(true);
                    }
                    match self.found(client, key).await? {
                        None => Ok(false),
                        found => Err(StoreError::Conflict { expected, found }),
                    }
                }
            })
            .await
    }

    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        let Some(row) = self.load_row(key).await? else {
            return Ok(None);
        };
        let text: String = row.try_get(1).db("load")?;
        let readable = super::json::from_slice::<StoredRecord>(text.as_bytes()).is_ok();
        Ok(match version_of(&row, 0, key) {
            Ok(_) if readable => None,
            // The version column, readable whatever the record holds, names it.
            Ok(version) => Some(Unreadable::at_version(version)),
            // A negative version (written by hand): named by its content.
            Err(_) => Some(Unreadable::with_content(text.as_bytes())),
        })
    }

    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        // A version is never reused, and the record at one never changes.
        let expected = match &seen.0 {
            super::Identity::Version(version) => *version,
            super::Identity::Content(digest) => {
                storable(key)?;
                let (provider, session, digest) = (key.provider(), key.session(), &digest[..]);
                return self
                    .db
                    .run_raced("delete", || {
                        async |client, bound| {
                            let sql = &self.sql.delete_content;
                            let rows = client
                                .execute(sql, &[&provider, &session, &digest, &bound])
                                .await
                                .db("delete")?;
                            Ok(rows > 0)
                        }
                    })
                    .await;
            }
            // Nothing this store answers: it cannot tell the record from a later one.
            super::Identity::Unidentified => {
                storable(key)?;
                return Ok(false);
            }
        };
        match self.delete(key, Some(expected)).await {
            Err(StoreError::Conflict { .. }) => Ok(false),
            deleted => deleted,
        }
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        storable_lease(key, holder)?;
        let what = "acquire the lease";
        let seconds = lease_seconds(ttl);
        let row = self
            .db
            .run_raced(what, || {
                async |client, bound| {
                    client
                        .query_one(
                            &self.sql.acquire,
                            &[&key.provider(), &key.session(), &holder, &seconds, &bound],
                        )
                        .await
                        .db(what)
                }
            })
            .await?;
        let acquired: bool = row.try_get(0).db(what)?;
        if acquired {
            // Another holder's row was there: its lease lapsed unreleased.
            let taken_over: bool = row.try_get(2).db(what)?;
            return Ok(if taken_over {
                Lease::TakenOver
            } else {
                Lease::Acquired
            });
        }
        // No row in the statement's snapshot: another holder took it just now.
        let remaining: Option<i64> = row.try_get(1).db(what)?;
        let remaining = remaining.map_or(ttl, |micros| {
            Duration::from_micros(u64::try_from(micros).unwrap_or(0))
        });
        Ok(Lease::HeldByOther { remaining })
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        storable_lease(key, holder)?;
        let what = "release the lease";
        self.db
            .run_raced(what, || {
                async |client, bound| {
                    client
                        .execute(
                            &self.sql.release,
                            &[&key.provider(), &key.session(), &holder, &bound],
                        )
                        .await
                        .db(what)
                        .map(drop)
                }
            })
            .await
    }

    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let what = "list lapsed leases";
        if provider.contains('\0') {
            return Ok(Vec::new());
        }
        let rows = self
            .db
            .run_raced(what, || {
                async |client, _| client.query(&self.sql.lapsed, &[&provider]).await.db(what)
            })
            .await?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0).db(what))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::{secret::AccessToken, secret::RefreshToken, token_set::TokenSet};

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

    /// A connection to `schema` whose transactions are `isolation` (`serializable`,
    /// `repeatable read`) unless they say otherwise, as a database with
    /// `ALTER DATABASE .. SET default_transaction_isolation` has them.
    pub(crate) fn db_isolated(
        url: &str,
        schema: &str,
        isolation: &str,
        max_connections: usize,
    ) -> PostgresDatabase {
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.options(format!(
            "-c default_transaction_isolation={}",
            isolation.replace(' ', "\\ ")
        ));
        PostgresDatabase::builder_from_config(config)
            .schema(schema)
            .max_connections(max_connections)
            .operation_timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    pub(crate) use crate::postgres::tests::admin;

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

    /// Tables made and migrated by an administrator, the service running as a role that may
    /// read and write them but create nothing (no `CREATE` on the schema): the store opens,
    /// as nothing needs making, and works.
    #[tokio::test]
    async fn a_role_that_may_only_read_and_write_the_migrated_tables_opens_the_store() {
        let Some(url) =
            test_url("a_role_that_may_only_read_and_write_the_migrated_tables_opens_the_store")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-least-privilege");
        PostgresStore::open(&db).await.unwrap();
        let (schema, role) = (
            db.schema(),
            format!("tc_app_{}", uuid::Uuid::new_v4().simple()),
        );
        admin(
            &db,
            &format!(
                "CREATE ROLE {role} LOGIN;
                 GRANT USAGE ON SCHEMA \"{schema}\" TO {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{schema}\" TO {role};
                 GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA \"{schema}\" TO {role};"
            ),
        )
        .await;
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.user(&role);
        let app = PostgresDatabase::builder_from_config(config)
            .schema(schema)
            .max_connections(2)
            .build()
            .unwrap();
        let opened = PostgresStore::open(&app).await;
        let outcome = match &opened {
            Ok(store) => {
                let key = SessionKey::new("p", "least-privilege");
                let version = store.save(&key, &set("a"), None).await;
                let lease = store
                    .acquire_lease(&key, "h", Duration::from_secs(30))
                    .await;
                let loaded = store.load(&key).await;
                let loaded = loaded.ok().flatten().map(|l| l.value);
                Some((version.is_ok(), lease.ok(), loaded))
            }
            Err(_) => None,
        };
        drop((opened.as_ref().ok(), app));
        admin(&db, &format!("DROP OWNED BY {role}; DROP ROLE {role};")).await;
        drop_schema(&db).await;
        assert!(opened.is_ok(), "{opened:?}");
        assert_eq!(outcome, Some((true, Some(Lease::Acquired), Some(set("a")))));
    }

    /// A database whose transactions are serializable unless they say otherwise: replicas
    /// starting together still migrate once, and every one opens (one that waited for
    /// another's migration reads what it made, not the tables as they were before).
    #[tokio::test]
    async fn replicas_opening_together_on_a_serializable_database_all_open() {
        let Some(url) = test_url("replicas_opening_together_on_a_serializable_database_all_open")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-serializable-open");
        for isolation in ["repeatable read", "serializable"] {
            drop_schema(&db).await;
            let mut opens = tokio::task::JoinSet::new();
            for _ in 0..6 {
                let db = db_isolated(&url, db.schema(), isolation, 1);
                opens.spawn(async move { PostgresStore::open(&db).await.map(|_| ()) });
            }
            while let Some(opened) = opens.join_next().await {
                let opened = opened.unwrap();
                assert!(opened.is_ok(), "{isolation}: {opened:?}");
            }
        }
        drop_schema(&db).await;
    }

    /// A database whose transactions are serializable unless they say otherwise
    /// (`ALTER DATABASE .. SET default_transaction_isolation`, as some deployments have it):
    /// writers racing on one session still get what the store promises, one winner and a
    /// `Conflict` (or `HeldByOther`) for every other, never a serialization failure as an
    /// outage (a replica's callers would get a transient error instead of waiting for the
    /// lease holder's pair).
    #[tokio::test]
    async fn racing_writers_on_a_serializable_database_get_conflicts_not_outages() {
        let Some(url) =
            test_url("racing_writers_on_a_serializable_database_get_conflicts_not_outages")
        else {
            return;
        };
        let serializable = |schema: &str| db_isolated(&url, schema, "serializable", 8);
        let db = test_db(&url, "token-core-test-serializable");
        PostgresStore::open(&db).await.unwrap();
        let stores = [
            PostgresStore::open(&serializable(db.schema()))
                .await
                .unwrap(),
            PostgresStore::open(&serializable(db.schema()))
                .await
                .unwrap(),
        ];
        for round in 0..5 {
            let key = SessionKey::new("p", format!("race-{round}"));
            let base = stores[0].save(&key, &set("base"), None).await.unwrap();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..16 {
                let (store, key) = (stores[i % 2].clone(), key.clone());
                tasks.spawn(async move {
                    let lease = store
                        .acquire_lease(&key, &format!("h{i}"), Duration::from_secs(30))
                        .await;
                    let saved = store.save(&key, &set(&format!("w{i}")), Some(base)).await;
                    (lease, saved)
                });
            }
            let (mut granted, mut won) = (0, 0);
            while let Some(result) = tasks.join_next().await {
                let (lease, saved) = result.unwrap();
                match lease {
                    Ok(Lease::Acquired) => granted += 1,
                    Ok(Lease::HeldByOther { .. }) => {}
                    other => panic!("round {round}: a lease request answered {other:?}"),
                }
                match saved {
                    Ok(_) => won += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(other) => panic!("round {round}: a save answered {other:?}"),
                }
            }
            assert_eq!((granted, won), (1, 1), "round {round}");
        }
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
    async fn lapsed_leases_lists_the_provider_s_leases_that_lapsed_unreleased() {
        let name = "lapsed_leases_lists_the_provider_s_leases_that_lapsed_unreleased";
        let Some(url) = test_url(name) else {
            return;
        };
        let db = test_db(&url, "token-core-test-lapsed");
        let store = PostgresStore::open(&db).await.unwrap();
        let (short, long) = (Duration::from_millis(200), Duration::from_secs(60));
        for (provider, session, ttl, saved) in [
            ("p", "gone", short, true),
            ("p", "live", long, true),
            ("q", "other", short, true),
            ("p", "released", short, true),
            ("p", "no record", short, false),
        ] {
            let key = SessionKey::new(provider, session);
            if saved {
                store.save(&key, &set("rt"), None).await.unwrap();
            }
            store.acquire_lease(&key, "h", ttl).await.unwrap();
        }
        store
            .release_lease(&SessionKey::new("p", "released"), "h")
            .await
            .unwrap();
        // The database's clock: polled, bounded, until both short leases lapsed ("other"
        // was taken after "gone", so it may lapse a poll later).
        let (mut lapsed, mut other) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            lapsed = store.lapsed_leases("p").await.unwrap();
            other = store.lapsed_leases("q").await.unwrap();
            if !lapsed.is_empty() && !other.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(lapsed, ["gone"]);
        assert_eq!(other, ["other"]);
        assert!(store.lapsed_leases("p\0").await.unwrap().is_empty());
    }

    /// The ttl of the leases below that lapse.
    const LAPSING: Duration = Duration::from_millis(200);

    /// Three leases held by a holder that died: that of session `removed` of `provider`,
    /// removed while it held it, and those of provider `p`'s sessions `recorded` (beside a
    /// record) and `live` (a minute long); the first two lapse within [`LAPSING`]. Returns
    /// the removed session's key.
    async fn leases_of_a_dead_holder(
        store: &PostgresStore,
        db: &PostgresDatabase,
        provider: &str,
    ) -> SessionKey {
        let removed = SessionKey::new(provider, "removed");
        store.save(&removed, &set("rt"), None).await.unwrap();
        store
            .acquire_lease(&removed, "dead", LAPSING)
            .await
            .unwrap();
        assert!(store.delete(&removed, None).await.unwrap());
        let live = Duration::from_secs(60);
        for (session, ttl, saved) in [("recorded", LAPSING, true), ("live", live, false)] {
            let key = SessionKey::new("p", session);
            if saved {
                store.save(&key, &set("rt"), None).await.unwrap();
            }
            store.acquire_lease(&key, "dead", ttl).await.unwrap();
        }
        assert_eq!(rows(db, "token_leases").await, 3);
        removed
    }

    /// Runs `look` until a lease row of the three of [`leases_of_a_dead_holder`] goes,
    /// polling (bounded) on the database's clock until one lapsed a lease length ago: the
    /// rows left after the last look.
    async fn until_a_lease_goes(db: &PostgresDatabase, mut look: impl AsyncFnMut()) -> i64 {
        let mut left = 3;
        for _ in 0..200 {
            look().await;
            left = rows(db, "token_leases").await;
            if left < 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        left
    }

    /// A lease row left to lapse without a record (its holder died after the session was
    /// removed while the lease was live, which a delete keeps for its holder) is deleted at
    /// a look for lapsed leases of its provider once it lapsed a lease length ago: kept,
    /// every such death would leave a row for good. One beside a record, and a live one, stay.
    #[tokio::test]
    async fn a_lapsed_lease_without_a_record_goes_a_lease_length_later() {
        let name = "a_lapsed_lease_without_a_record_goes_a_lease_length_later";
        let Some(url) = test_url(name) else {
            return;
        };
        let db = test_db(&url, "token-core-test-stale-lease");
        let store = PostgresStore::open(&db).await.unwrap();
        let removed = leases_of_a_dead_holder(&store, &db, "p").await;
        let mut listed = Vec::new();
        let left = until_a_lease_goes(&db, async || {
            listed = store.lapsed_leases("p").await.unwrap();
        })
        .await;
        assert_eq!(left, 2, "a lease without a record is kept for good");
        assert_eq!(listed, ["recorded"]);
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["recorded"]);
        assert_eq!(
            store.acquire_lease(&removed, "h", LAPSING).await.unwrap(),
            Lease::Acquired
        );
        drop_schema(&db).await;
    }

    /// As above, for a deployment whose managers never look for lapsed leases (a provider
    /// without a reuse window): opening the store (a process starting) deletes such a row,
    /// of any provider, once it lapsed a lease length ago; one beside a record, and a live
    /// one, stay.
    #[tokio::test]
    async fn a_lapsed_lease_without_a_record_goes_when_the_store_is_opened() {
        let name = "a_lapsed_lease_without_a_record_goes_when_the_store_is_opened";
        let Some(url) = test_url(name) else {
            return;
        };
        let db = test_db(&url, "token-core-test-stale-lease-open");
        let store = PostgresStore::open(&db).await.unwrap();
        leases_of_a_dead_holder(&store, &db, "other-provider").await;
        let left = until_a_lease_goes(&db, async || {
            PostgresStore::open(&db).await.unwrap();
        })
        .await;
        assert_eq!(left, 2, "a lease without a record is kept for good");
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["recorded"]);
        drop_schema(&db).await;
    }

    /// More lapsed leases than one answer lists: those that lapsed last come first (one
    /// left for good long ago must not hide a recent death, still recoverable).
    #[tokio::test]
    async fn lapsed_leases_lists_those_that_lapsed_last_first() {
        let Some(url) = test_url("lapsed_leases_lists_those_that_lapsed_last_first") else {
            return;
        };
        let db = test_db(&url, "token-core-test-lapsed-order");
        let store = PostgresStore::open(&db).await.unwrap();
        let (count, expected) = super::super::lapsed_last_first();
        // Only sessions with a record are listed.
        for n in 0..count {
            let key = SessionKey::new("p", format!("s{n}"));
            store.save(&key, &set("rt"), None).await.unwrap();
        }
        for n in 0..count {
            let key = SessionKey::new("p", format!("s{n}"));
            // Granted one after the other: each expires after the one before.
            let ttl = Duration::from_millis(100);
            store.acquire_lease(&key, "h", ttl).await.unwrap();
        }
        let last = format!("s{}", count - 1);
        // The database's clock: polled until the last one lapsed, bounded.
        let mut lapsed = Vec::new();
        for _ in 0..200 {
            lapsed = store.lapsed_leases("p").await.unwrap();
            if lapsed.contains(&last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(lapsed, expected);
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

    /// Leaves the lease row of `session` (provider `p`) as a database clock that read an
    /// hour ahead when it was granted, and has since stepped back, would leave it: every
    /// instant the store wrote in it (whatever the schema calls them) an hour later.
    async fn granted_an_hour_ahead(db: &PostgresDatabase, session: &str) {
        admin(
            db,
            &format!(
                "DO $$ DECLARE c text; BEGIN
                   FOR c IN SELECT column_name FROM information_schema.columns
                            WHERE table_schema = '{schema}' AND table_name = 'token_leases'
                              AND data_type = 'timestamp with time zone' LOOP
                     EXECUTE format('UPDATE {leases} SET %I = %I + interval ''1 hour''
                                     WHERE provider = ''p'' AND session = ''{session}''', c, c);
                   END LOOP;
                 END $$;",
                schema = db.schema(),
                leases = db.table("token_leases").replace('\'', "''"),
            ),
        )
        .await;
    }

    /// A lease granted while the database's clock read an hour ahead, the clock then
    /// stepped back: another holder is told it is held for at most its ttl, not an hour and
    /// its ttl, and takes it over one ttl later (a holder that died just before the step
    /// does not block the session for an hour).
    #[tokio::test]
    async fn a_lease_stretched_by_a_clock_stepped_back_lasts_at_most_its_ttl() {
        let Some(url) = test_url("a_lease_stretched_by_a_clock_stepped_back_lasts_at_most_its_ttl")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-lease-stepped-back");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "stepped");
        let ttl = Duration::from_millis(500);
        assert_eq!(
            store.acquire_lease(&key, "dead", ttl).await.unwrap(),
            Lease::Acquired
        );
        granted_an_hour_ahead(&db, "stepped").await;
        let started = std::time::Instant::now();
        match store.acquire_lease(&key, "alive", ttl).await.unwrap() {
            Lease::HeldByOther { remaining } => {
                assert!(
                    remaining <= ttl,
                    "held for {remaining:?}, its ttl is {ttl:?}"
                )
            }
            other => panic!("a live lease is not free: {other:?}"),
        }
        // The database's clock: polled, bounded, until the lease lapses.
        loop {
            match store.acquire_lease(&key, "alive", ttl).await.unwrap() {
                Lease::TakenOver => break,
                Lease::HeldByOther { remaining } => {
                    assert!(remaining <= ttl, "held for {remaining:?}");
                    assert!(
                        started.elapsed() < ttl + Duration::from_secs(5),
                        "the stretched lease never lapsed"
                    );
                    tokio::time::sleep(remaining.min(Duration::from_millis(50))).await;
                }
                Lease::Acquired => panic!("the dead holder's lease was not seen"),
            }
        }
        assert!(
            started.elapsed() >= ttl - Duration::from_millis(100),
            "lapsed too early"
        );
        drop_schema(&db).await;
    }

    /// `lapsed_leases` holds a lease to the same bound (as the file store does): a holder
    /// that died just before the database's clock stepped back an hour is listed one ttl
    /// after the first look, not an hour later (long after a provider's reuse window for
    /// the pair it may have spent).
    #[tokio::test]
    async fn a_dead_holder_is_listed_one_ttl_after_a_clock_stepped_back() {
        let Some(url) = test_url("a_dead_holder_is_listed_one_ttl_after_a_clock_stepped_back")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-lapsed-stepped-back");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "stepped");
        let ttl = Duration::from_millis(500);
        store.save(&key, &set("rt"), None).await.unwrap();
        assert_eq!(
            store.acquire_lease(&key, "dead", ttl).await.unwrap(),
            Lease::Acquired
        );
        granted_an_hour_ahead(&db, "stepped").await;
        let started = std::time::Instant::now();
        assert!(
            store.lapsed_leases("p").await.unwrap().is_empty(),
            "looked at: live"
        );
        // The database's clock: polled, bounded, until the lease is listed.
        let mut listed = Vec::new();
        while started.elapsed() < ttl + Duration::from_secs(5) {
            listed = store.lapsed_leases("p").await.unwrap();
            if !listed.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(listed, ["stepped"], "not listed within its ttl and 5s");
        assert!(
            started.elapsed() >= ttl - Duration::from_millis(100),
            "listed too early"
        );
        drop_schema(&db).await;
    }

    /// `bytes` of random hex: incompressible for an index's compression.
    pub(crate) fn random_text(bytes: usize) -> String {
        let mut text = String::new();
        while text.len() < bytes {
            text.push_str(&uuid::Uuid::new_v4().simple().to_string());
        }
        text.truncate(bytes);
        text
    }

    /// How many rows `table` of `db`'s schema holds.
    pub(crate) async fn rows(db: &PostgresDatabase, table: &str) -> i64 {
        let table = db.table(table);
        db.run("count", async |client| {
            let row = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .db("count")?;
            row.try_get::<_, i64>(0).db("count")
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_deleted_session_leaves_no_lapsed_lease_row_and_keeps_a_live_one() {
        let Some(url) =
            test_url("a_deleted_session_leaves_no_lapsed_lease_row_and_keeps_a_live_one")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-lease-delete");
        let store = PostgresStore::open(&db).await.unwrap();
        // Sessions made and removed for good, each of whose refresh lease lapsed unreleased
        // (a replica killed mid-refresh, a release that failed): nothing is left of them.
        let short = Duration::from_millis(1);
        for i in 0..50 {
            let key = SessionKey::new("p", format!("gone-{i}"));
            store.save(&key, &set("a"), None).await.unwrap();
            store.acquire_lease(&key, "dead", short).await.unwrap();
        }
        // The database's clock passes the leases' expiry (nothing else waits on this).
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..50 {
            let key = SessionKey::new("p", format!("gone-{i}"));
            assert!(store.delete(&key, None).await.unwrap());
        }
        assert_eq!(rows(&db, "token_sets").await, 0);
        assert_eq!(
            rows(&db, "token_leases").await,
            0,
            "lapsed lease rows of deleted sessions stay for good"
        );
        // A live lease outlives the delete: its holder may still be refreshing the session
        // (as in the file store); it releases it, and then nothing is left either.
        let live = SessionKey::new("p", "live");
        store.save(&live, &set("a"), None).await.unwrap();
        store
            .acquire_lease(&live, "alive", Duration::from_secs(30))
            .await
            .unwrap();
        assert!(store.delete(&live, None).await.unwrap());
        assert!(matches!(
            store
                .acquire_lease(&live, "other", Duration::from_secs(30))
                .await
                .unwrap(),
            Lease::HeldByOther { .. }
        ));
        store.release_lease(&live, "alive").await.unwrap();
        assert_eq!(rows(&db, "token_leases").await, 0);
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

    /// A lease given back while another holder's request for it waits on its row (the
    /// release's transaction not committed yet): the request is granted as a lease nobody
    /// holds, not taken over from a holder that let it lapse. Taken over, its manager would
    /// wait a lease length for a save that came already, and ask the provider again for the
    /// pair saved.
    #[tokio::test]
    async fn a_lease_released_while_a_request_waits_on_its_row_is_acquired_not_taken_over() {
        let name = "a_lease_released_while_a_request_waits_on_its_row_is_acquired_not_taken_over";
        let Some(url) = test_url(name) else {
            return;
        };
        let app = format!(
            "token-core-test-release-race-{}",
            uuid::Uuid::new_v4().simple()
        );
        let db = test_db(&url, &app);
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "released");
        let ttl = Duration::from_secs(60);
        let first = store.acquire_lease(&key, "first", ttl).await.unwrap();
        assert_eq!(first, Lease::Acquired);
        // The first holder's release, as the server runs it: its row deleted, not committed.
        let other = test_db_same_schema(&url, &db);
        let releaser = other.pool().get().await.unwrap();
        releaser
            .batch_execute(&format!(
                "BEGIN; DELETE FROM {} WHERE provider = 'p' AND session = 'released' \
                 AND holder = 'first'",
                db.table("token_leases")
            ))
            .await
            .unwrap();
        let asking = tokio::spawn({
            let (store, key) = (store.clone(), key.clone());
            async move { store.acquire_lease(&key, "second", ttl).await }
        });
        let waits = activity_until(&other, &app, "wait_event_type = 'Lock'", true).await;
        assert!(waits, "the request waits for the lease's row");
        releaser.batch_execute("COMMIT").await.unwrap();
        let second = asking.await.unwrap().unwrap();
        assert_eq!(
            second,
            Lease::Acquired,
            "the first holder released its lease"
        );
        drop(releaser);
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_lease_as_long_as_a_duration_holds_is_granted_and_excludes_others() {
        let Some(url) =
            test_url("a_lease_as_long_as_a_duration_holds_is_granted_and_excludes_others")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-lease-forever");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "forever");
        // What the file and memory stores grant too: "never lapses", not a database error.
        assert_eq!(
            store.acquire_lease(&key, "a", Duration::MAX).await.unwrap(),
            Lease::Acquired
        );
        match store.acquire_lease(&key, "b", Duration::MAX).await.unwrap() {
            Lease::HeldByOther { remaining } => {
                assert!(
                    remaining > Duration::from_secs(50 * 365 * 86_400),
                    "{remaining:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store.acquire_lease(&key, "a", Duration::MAX).await.unwrap(),
            Lease::Acquired
        );
        drop_schema(&db).await;
    }

    /// A StoredRecord whose JSON holds `\u0000` (a provider's answer with a NUL character in
    /// any string) is saved and loaded as it was, as the file and memory stores do (`jsonb`
    /// refused that escape: every save failed, and the rotated pair was never persisted).
    #[tokio::test]
    async fn a_record_holding_a_nul_character_is_saved_and_loaded() {
        let Some(url) = test_url("a_record_holding_a_nul_character_is_saved_and_loaded") else {
            return;
        };
        let db = test_db(&url, "token-core-test-nul");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "nul");
        let record = set("at-\0-1");
        let saved = store.save(&key, &record, None).await;
        let loaded = store.load(&key).await;
        drop_schema(&db).await;
        let version = saved.unwrap();
        let loaded = loaded.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (version, record));
    }

    /// A set-aside pair (the empty access token expired at the epoch) whose refresh token
    /// holds CR, LF, NUL and DEL, saved by one process and read by another on the same
    /// database, then replaced by that process's compare-and-swap save: kept byte for byte.
    #[tokio::test]
    async fn a_set_aside_pair_with_a_control_character_refresh_token_crosses_processes() {
        let Some(url) =
            test_url("a_set_aside_pair_with_a_control_character_refresh_token_crosses_processes")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-set-aside");
        let one = PostgresStore::open(&db).await.unwrap();
        let other = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "set-aside");
        let record: StoredRecord = TokenSet::<serde_json::Value>::new(AccessToken::new(""))
            .with_refresh_token(RefreshToken::new("rt-\r\n\0\u{7f}-1"))
            .with_access_expires_at(time::OffsetDateTime::UNIX_EPOCH)
            .to_stored()
            .unwrap()
            .into();
        let outcome = async {
            let version = one.save(&key, &record, None).await?;
            let loaded = other.load(&key).await?;
            let next = set("at-2\0");
            let replaced = other.save(&key, &next, Some(version)).await?;
            let stale = one.save(&key, &record, Some(version)).await;
            let last = one.load(&key).await?;
            Ok::<_, StoreError>((version, loaded, next, replaced, stale, last))
        }
        .await;
        drop_schema(&db).await;
        let (version, loaded, next, replaced, stale, last) = outcome.unwrap();
        let loaded = loaded.unwrap();
        assert_eq!((loaded.version, &loaded.value), (version, &record));
        assert!(stale.is_err(), "a stale save loses: {stale:?}");
        let last = last.unwrap();
        assert_eq!((last.version, last.value), (replaced, next));
    }

    /// Names the tables cannot hold (a NUL character in a provider, session or holder name,
    /// which `text` refuses; provider and session names too long for the primary key's index
    /// entry) are refused with a typed error before any statement is sent: not a Backend
    /// error (an outage to the manager, retried), no connection closed, nothing changed. A
    /// key at the limit, of incompressible text, is kept.
    #[tokio::test]
    async fn names_the_tables_cannot_hold_are_refused_typed_and_change_nothing() {
        let Some(url) =
            test_url("names_the_tables_cannot_hold_are_refused_typed_and_change_nothing")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-names");
        let store = PostgresStore::open(&db).await.unwrap();
        let fine = SessionKey::new("p", "fine");
        let v1 = store.save(&fine, &set("a"), None).await.unwrap();
        let open = db.pool().status().size;
        let random = random_text;
        let too_long = random(PostgresStore::MAX_KEY_BYTES);
        let refused = [
            SessionKey::new("p", "nul-\0-session"),
            SessionKey::new("p\0", "s"),
            SessionKey::new("p", too_long.as_str()),
            SessionKey::new("p", "x".repeat(PostgresStore::MAX_KEY_BYTES)),
        ];
        let long = Duration::from_secs(60);
        for key in &refused {
            let errors = [
                store.save(key, &set("b"), None).await.err(),
                store.save(key, &set("b"), Some(v1)).await.err(),
                store.load(key).await.err(),
                store.delete(key, None).await.err(),
                store.acquire_lease(key, "h", long).await.err(),
                store.release_lease(key, "h").await.err(),
            ];
            for err in errors {
                let err = err.expect("refused");
                assert!(
                    matches!(err, StoreError::Unsupported(_)),
                    "{key:?}: {err:?}"
                );
                assert_eq!(crate::error::Error::from(err).kind(), ErrorKind::Rejected);
            }
        }
        for err in [
            store.acquire_lease(&fine, "h\0", long).await.err(),
            store.release_lease(&fine, "h\0").await.err(),
        ] {
            let err = err.expect("refused");
            assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
        }
        assert_eq!(db.pool().status().size, open, "a connection was closed");
        let loaded = store.load(&fine).await.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (v1, set("a")));
        assert_eq!(
            store.acquire_lease(&fine, "h", long).await.unwrap(),
            Lease::Acquired,
            "a refused holder took no lease"
        );

        // At the limit, incompressible: kept, leased, loaded.
        let edge = SessionKey::new("p", random(PostgresStore::MAX_KEY_BYTES - 1));
        let version = store.save(&edge, &set("edge"), None).await.unwrap();
        assert_eq!(
            store.acquire_lease(&edge, "h", long).await.unwrap(),
            Lease::Acquired
        );
        let loaded = store.load(&edge).await.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (version, set("edge")));
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
        let versions = db.table("token_core_schema");
        let version: i32 = db
            .run("read", async |client| {
                client
                    .query_one(
                        &format!("SELECT version FROM {versions} WHERE component = 'token_store'"),
                        &[],
                    )
                    .await
                    .db("read")
            })
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, TOKEN_STORE_SCHEMA_VERSION);
        // A schema from a newer library is refused, not damaged.
        admin(
            &db,
            &format!("UPDATE {versions} SET version = 99 WHERE component = 'token_store'"),
        )
        .await;
        let err = PostgresStore::open(&db).await.unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
        drop_schema(&db).await;
    }

    /// The tables of an older library (schema version 1: `token_set`, records without a
    /// `kind`) migrate at open, two processes opening at once, and keep their records; tables
    /// missing under a recorded version, or present without one, give typed errors.
    #[tokio::test]
    async fn an_older_or_damaged_schema_at_start_migrates_or_fails_typed() {
        let Some(url) = test_url("an_older_or_damaged_schema_at_start_migrates_or_fails_typed")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-old-schema");
        db.migrate("token_store", &migrations(&db)[..1])
            .await
            .unwrap();
        let StoredRecord::Tokens(tokens) = set("old") else {
            unreachable!()
        };
        admin(
            &db,
            &format!(
                "INSERT INTO {} (provider, session, version, token_set) VALUES ('p', 'old', 7, '{}')",
                db.table("token_sets"),
                serde_json::to_string(&tokens).unwrap()
            ),
        )
        .await;
        let other = test_db_same_schema(&url, &db);
        let (a, b) = tokio::join!(PostgresStore::open(&db), PostgresStore::open(&other));
        let (store, _) = (a.unwrap(), b.unwrap());
        let key = SessionKey::new("p", "old");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (7, set("old")));

        // A table dropped by hand under a recorded version: a typed error at open, no
        // panic, and the store already open fails typed too.
        admin(&db, &format!("DROP TABLE {}", db.table("token_sets"))).await;
        let err = PostgresStore::open(&db).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(err.to_string().contains("42P01"), "{err}");
        let err = store.load(&key).await.unwrap_err();
        assert!(err.to_string().contains("42P01"), "{err}");

        // Tables without a version (made by hand, or the version row deleted): typed error.
        admin(
            &db,
            &format!(
                "DELETE FROM {}; CREATE TABLE {} (x int)",
                db.table("token_core_schema"),
                db.table("token_sets")
            ),
        )
        .await;
        let err = PostgresStore::open(&db).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("migrate `token_store` to version 1"),
            "{err}"
        );
        drop_schema(&db).await;
    }

    /// Tables of the previous schema version (2: `record jsonb`) migrate at open, two
    /// processes opening at once: their records and versions are kept, the column becomes
    /// `json`, and a record holding a NUL character can then be saved over one of them.
    #[tokio::test]
    async fn a_version_2_schema_migrates_to_json_and_keeps_its_records() {
        let Some(url) = test_url("a_version_2_schema_migrates_to_json_and_keeps_its_records")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-v2-schema");
        db.migrate("token_store", &migrations(&db)[..2])
            .await
            .unwrap();
        let verdict = StoredRecord::Reauth(crate::store::ReauthVerdict::new(
            Some("invalid_grant".into()),
            "refused",
            time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        ));
        let records = [("kept", 7_i64, set("old")), ("verdict", 9, verdict)];
        let insert = format!(
            "INSERT INTO {} (provider, session, version, record) VALUES ('p', $1, $2, $3::jsonb)",
            db.table("token_sets")
        );
        for (session, version, record) in &records {
            let json = serde_json::to_value(record).unwrap();
            db.run("insert", async |client| {
                client
                    .execute(&insert, &[session, version, &json])
                    .await
                    .db("insert")
            })
            .await
            .unwrap();
        }
        let other = test_db_same_schema(&url, &db);
        let (a, b) = tokio::join!(PostgresStore::open(&db), PostgresStore::open(&other));
        let (store, _) = (a.unwrap(), b.unwrap());
        for (session, version, record) in &records {
            let loaded = store
                .load(&SessionKey::new("p", *session))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((loaded.version, &loaded.value), (*version as u64, record));
        }
        let (column, recorded): (String, i32) = db
            .run("read", async |client| {
                let row = client
                    .query_one(
                        &format!(
                            "SELECT (SELECT data_type FROM information_schema.columns
                                     WHERE table_schema = $1 AND table_name = 'token_sets'
                                       AND column_name = 'record'),
                                    (SELECT version FROM {} WHERE component = 'token_store')",
                            db.table("token_core_schema")
                        ),
                        &[&db.schema()],
                    )
                    .await
                    .db("read")?;
                Ok((row.get(0), row.get(1)))
            })
            .await
            .unwrap();
        assert_eq!(
            (column.as_str(), recorded),
            ("json", TOKEN_STORE_SCHEMA_VERSION)
        );
        let key = SessionKey::new("p", "kept");
        let nul = set("at-\0-2");
        let saved = store.save(&key, &nul, Some(7)).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (saved, nul));
        drop_schema(&db).await;
    }

    /// The server closes connections idle too long (`idle_session_timeout`, as a proxy or a
    /// firewall would): the next call after a long quiet spell connects again rather than
    /// failing on the closed one.
    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let Some(url) = test_url("a_connection_the_server_closed_while_idle_is_not_reused") else {
            return;
        };
        let app = format!("token-core-test-idle-{}", uuid::Uuid::new_v4().simple());
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.options("-c idle_session_timeout=200");
        let db = PostgresDatabase::builder_from_config(config)
            .schema(format!("tc_test_{}", uuid::Uuid::new_v4().simple()))
            .application_name(&app)
            .max_connections(2)
            .build()
            .unwrap();
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "idle");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let watcher = test_db_same_schema(&url, &db);
        for round in 0..3 {
            // Wait (bounded) until the server has closed every connection of ours.
            let mut closed = false;
            for _ in 0..200 {
                let open: i64 = watcher
                    .run("watch", async |client| {
                        client
                            .query_one(
                                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                                &[&app],
                            )
                            .await
                            .db("watch")
                    })
                    .await
                    .unwrap()
                    .get(0);
                if open == 0 {
                    closed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert!(closed, "the server never closed the idle connections");
            let loaded = store.load(&key).await;
            assert_eq!(
                loaded.map(|found| found.map(|f| f.version)).ok(),
                Some(Some(v1)),
                "round {round}: the call after a quiet spell failed"
            );
        }
        drop_schema(&watcher).await;
    }

    /// The connection of a process creating the tables is killed by the server
    /// (`pg_terminate_backend`) mid-transaction, its tables made and its version not yet
    /// recorded: it fails with a typed error, leaves nothing half-made, and the next open
    /// creates everything.
    #[tokio::test]
    async fn a_migration_killed_mid_transaction_leaves_nothing_half_made() {
        let Some(url) = test_url("a_migration_killed_mid_transaction_leaves_nothing_half_made")
        else {
            return;
        };
        let app = format!("token-core-test-mig-kill-{}", uuid::Uuid::new_v4().simple());
        let db = test_db(&url, &app);
        // The schema and its version table, without the store's tables.
        db.migrate("other", &[]).await.unwrap();
        let versions = db.table("token_core_schema");
        let other = test_db_same_schema(&url, &db);
        // Another transaction is recording the store's version: the opener's own recording,
        // its last step, waits for it.
        let locker = other.pool().get().await.unwrap();
        locker
            .batch_execute(&format!(
                "BEGIN; INSERT INTO {versions} (component, version) VALUES ('token_store', 0)"
            ))
            .await
            .unwrap();
        let opening = {
            let db = db.clone();
            tokio::spawn(async move { PostgresStore::open(&db).await.map(drop) })
        };
        let mut killed = false;
        for _ in 0..400 {
            let row = other
                .run("kill", async |client| {
                    client
                        .query_one(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                             WHERE application_name = $1 AND wait_event_type = 'Lock'",
                            &[&app],
                        )
                        .await
                        .db("kill")
                })
                .await
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                killed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(killed, "the opener never waited for the lock");
        let err = tokio::time::timeout(Duration::from_secs(10), opening)
            .await
            .expect("the killed open ended at once")
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(err.to_string().contains("57P01"), "{err}");
        locker.batch_execute("ROLLBACK").await.unwrap();
        drop(locker);
        let tables: i64 = other
            .run("count", async |client| {
                client
                    .query_one(
                        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $1 AND c.relname LIKE 'token_%'",
                        &[&db.schema()],
                    )
                    .await
                    .db("count")
            })
            .await
            .unwrap()
            .get(0);
        // The version table (and its index) alone: the killed transaction made nothing.
        assert_eq!(tables, 2, "tables left half-made");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "after");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, v1);
        drop_schema(&db).await;
    }

    /// A call dropped by its caller (an outer timeout, a `select!`) while its statement waits
    /// for a row another transaction holds: its connection is not handed to the next caller
    /// (whose statement would queue behind the abandoned one), and the abandoned statement
    /// is cancelled, not left to land once the lock goes.
    #[tokio::test]
    async fn a_call_dropped_mid_statement_leaves_neither_its_connection_nor_its_statement() {
        let Some(url) = test_url(
            "a_call_dropped_mid_statement_leaves_neither_its_connection_nor_its_statement",
        ) else {
            return;
        };
        let app = format!("token-core-test-dropped-{}", uuid::Uuid::new_v4().simple());
        let db = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(format!("tc_test_{}", uuid::Uuid::new_v4().simple()))
            .application_name(&app)
            .max_connections(1)
            .operation_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "dropped");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let other = test_db_same_schema(&url, &db);
        let locker = other.pool().get().await.unwrap();
        locker
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM {} WHERE provider = 'p' AND session = 'dropped' FOR UPDATE",
                db.table("token_sets"),
            ))
            .await
            .unwrap();
        let dropped = tokio::time::timeout(
            Duration::from_millis(300),
            store.save(&key, &set("abandoned"), Some(v1)),
        )
        .await;
        assert!(
            dropped.is_err(),
            "the save waited for the lock: {dropped:?}"
        );

        // The next caller is answered while the lock is still held: queued behind the
        // abandoned statement, it would have waited for the lock until its timeout, an
        // error. (No timing is asserted: a new connection under load may take a while.)
        let loaded = store.load(&SessionKey::new("p", "elsewhere")).await;
        assert!(matches!(loaded, Ok(None)), "{loaded:?}");

        // The abandoned statement is cancelled while the lock is still held (the cancel is
        // sent in the background: until it arrives the statement would take the lock if it
        // went, as the lock's own bound lets it).
        wait_until_idle(&other, &app).await;
        locker.batch_execute("ROLLBACK").await.unwrap();
        drop(locker);
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().version,
            v1,
            "the abandoned save was saved after all"
        );
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

    /// Writes a row by hand, as an administrator (or a damaged restore) would.
    async fn put_raw(
        db: &PostgresDatabase,
        session: &str,
        version: i64,
        json: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (provider, session, version, record)
             VALUES ('p', $1, $2, $3::text::json)
             ON CONFLICT (provider, session) DO UPDATE
             SET version = EXCLUDED.version, record = EXCLUDED.record",
            db.table("token_sets")
        );
        db.run("raw", async |c| {
            c.execute(&sql, &[&session, &version, &json])
                .await
                .db("raw")
        })
        .await
        .map(drop)
    }

    /// An unreadable record is removed only while it is the one read: a login saved over it
    /// since (by another process) is kept by a delete that lands after it.
    #[tokio::test]
    async fn an_unreadable_record_is_removed_only_while_it_is_the_one_read() {
        let Some(url) = test_url("an_unreadable_record_is_removed_only_while_it_is_the_one_read")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-unreadable");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "unreadable");
        let damage = async |version: u64| {
            let version = i64::try_from(version).unwrap();
            put_raw(&db, "unreadable", version, r#"{"kind": "pending"}"#)
                .await
                .unwrap();
        };
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        // Versions past the store's sequence, as no save of this test reaches them.
        let damaged = 1 << 40;
        damage(damaged).await;
        let seen = store.unreadable(&key).await.unwrap().unwrap();
        assert_eq!(seen, Unreadable::at_version(damaged));
        // Another process replaces it with a login: the delete of what was read keeps it.
        let login = store
            .save(&key, &set("login"), Some(damaged))
            .await
            .unwrap();
        assert_ne!(login, damaged);
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        assert!(!store.delete_unreadable(&key, &seen).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, login);
        // Another unreadable record (a newer release's login) is kept too.
        damage(damaged + 1).await;
        assert!(!store.delete_unreadable(&key, &seen).await.unwrap());
        let now = store.unreadable(&key).await.unwrap().unwrap();
        assert!(store.delete_unreadable(&key, &now).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
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
                db.run("sleep", async |client| {
                    client
                        .batch_execute("SELECT pg_sleep(30)")
                        .await
                        .db("sleep")
                })
                .await
            })
        };
        let killer = test_db_same_schema(&url, &db);
        let mut killed = 0;
        for _ in 0..100 {
            let row = killer
                .run("kill", async |client| {
                    client
                        .query_one(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                             WHERE application_name = $1 AND state = 'active'",
                            &[&app],
                        )
                        .await
                        .db("kill")
                })
                .await
                .unwrap();
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
        killer
            .run("kill", async |client| {
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1",
                        &[&app],
                    )
                    .await
                    .db("kill")
            })
            .await
            .unwrap();
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

    /// Waits (bounded) until no statement of `app` is running on the server: an abandoned
    /// one has either finished or been cancelled.
    async fn wait_until_idle(killer: &PostgresDatabase, app: &str) {
        if !activity_until(killer, app, "state = 'active'", false).await {
            panic!("a statement of {app} is still running");
        }
    }

    /// Waits (bounded) until some connection of `app` is (`present`) or none is in the
    /// state `condition` (on `pg_stat_activity`) says; whether it came.
    async fn activity_until(
        watcher: &PostgresDatabase,
        app: &str,
        condition: &str,
        present: bool,
    ) -> bool {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND {condition}"
        );
        for _ in 0..400 {
            let found: i64 = watcher
                .run("watch", async |client| {
                    client.query_one(&sql, &[&app]).await.db("watch")
                })
                .await
                .unwrap()
                .get(0);
            if (found > 0) == present {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// A row locked by another transaction for longer than the operation timeout: the
    /// calls waiting for it fail with a typed error within the timeout, and, having failed,
    /// have no effect once the lock goes (the server does not go on with a statement whose
    /// caller gave up: a lease release landing later would take away a lease granted after
    /// it, a save landing later would overwrite what was saved after it).
    #[tokio::test]
    async fn a_call_that_timed_out_on_a_locked_row_has_no_later_effect() {
        let Some(url) = test_url("a_call_that_timed_out_on_a_locked_row_has_no_later_effect")
        else {
            return;
        };
        let app = format!("token-core-test-locked-{}", uuid::Uuid::new_v4().simple());
        let timeout = Duration::from_millis(500);
        let db = test_db(&url, &app).with_operation_timeout(timeout);
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "locked");
        let long = Duration::from_secs(60);
        assert_eq!(
            store.acquire_lease(&key, "me", long).await.unwrap(),
            Lease::Acquired
        );
        let v1 = store.save(&key, &set("a"), None).await.unwrap();

        // Another transaction (another application's, an administrator's) locks both rows.
        let other = test_db_same_schema(&url, &db);
        let locker = other.pool().get().await.unwrap();
        locker
            .batch_execute(&format!(
                "BEGIN;
                 SELECT 1 FROM {} WHERE provider = 'p' AND session = 'locked' FOR UPDATE;
                 SELECT 1 FROM {} WHERE provider = 'p' AND session = 'locked' FOR UPDATE;",
                db.table("token_leases"),
                db.table("token_sets"),
            ))
            .await
            .unwrap();

        let started = std::time::Instant::now();
        let err = store.release_lease(&key, "me").await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        let err = store.save(&key, &set("late"), Some(v1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(
            started.elapsed() < 2 * (timeout + Duration::from_secs(2)),
            "each call ended within its timeout (and the grace to settle it): {:?}",
            started.elapsed()
        );

        // The lock goes; whatever the server still had of those calls has ended.
        locker.batch_execute("ROLLBACK").await.unwrap();
        drop(locker);
        wait_until_idle(&other, &app).await;
        assert!(
            matches!(
                store.acquire_lease(&key, "another", long).await.unwrap(),
                Lease::HeldByOther { .. }
            ),
            "the release that failed let go of the lease after all"
        );
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().version,
            v1,
            "the save that failed was saved after all"
        );
        drop_schema(&db).await;
    }

    /// The server paused (`SIGSTOP` of every process: a frozen VM or container) with
    /// connections open, a lease held and a record saved: every call (on a pooled
    /// connection, or on a new one the kernel accepts and nobody answers) fails typed within
    /// the timeout and the cancel's grace; once the server resumes, the same store answers
    /// at once (no connection left stuck in the pool), and what the failed calls asked for
    /// was not done: the record and the lease are as they were.
    #[tokio::test]
    async fn a_paused_server_gives_typed_errors_in_bounded_time_and_nothing_after() {
        let Some(server) = crate::store::postgres_test_server::PrivateServer::start(
            "a_paused_server_gives_typed_errors_in_bounded_time_and_nothing_after",
        ) else {
            return;
        };
        let timeout = Duration::from_millis(500);
        let db = PostgresDatabase::builder(server.url())
            .unwrap()
            .schema("paused")
            .max_connections(2)
            .operation_timeout(timeout)
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "paused");
        let long = Duration::from_secs(60);
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        assert_eq!(
            store.acquire_lease(&key, "me", long).await.unwrap(),
            Lease::Acquired
        );

        server.pause();
        // The timeout, the cancel's grace (at most the timeout again), and a margin.
        let bound = 2 * timeout + Duration::from_millis(500);
        let mut errors = Vec::new();
        for call in 0..6 {
            let started = std::time::Instant::now();
            let answer = match call {
                0 => store.load(&key).await.map(drop),
                1 => store.save(&key, &set("b"), Some(v1)).await.map(drop),
                2 => store.acquire_lease(&key, "other", long).await.map(drop),
                3 => store.release_lease(&key, "me").await,
                4 => store.delete(&key, None).await.map(drop),
                _ => store
                    .save(&SessionKey::new("p", "new"), &set("c"), None)
                    .await
                    .map(drop),
            };
            let took = started.elapsed();
            assert!(took < bound, "call {call} took {took:?}");
            errors.push(answer.unwrap_err());
        }
        for error in &errors {
            assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
        }
        server.resume();

        // Answered (within the operation timeout, or it would be an error): no connection
        // left waiting on the paused server is handed out again.
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (v1, set("a")));
        assert!(
            store
                .load(&SessionKey::new("p", "new"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            matches!(
                store.acquire_lease(&key, "other", long).await.unwrap(),
                Lease::HeldByOther { .. }
            ),
            "the lease is still held"
        );
        assert_eq!(
            store.acquire_lease(&key, "me", long).await.unwrap(),
            Lease::Acquired
        );
        store.save(&key, &set("b"), Some(v1)).await.unwrap();
    }

    /// Every connection of a small pool busy past the operation timeout (many sessions
    /// refreshing at once): a call waiting for one fails typed within the timeout, and the
    /// pool serves again once they are free.
    #[tokio::test]
    async fn a_call_waiting_for_a_busy_pool_fails_typed_within_the_timeout() {
        let Some(url) = test_url("a_call_waiting_for_a_busy_pool_fails_typed_within_the_timeout")
        else {
            return;
        };
        let timeout = Duration::from_millis(400);
        let db = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(format!("tc_test_{}", uuid::Uuid::new_v4().simple()))
            .max_connections(1)
            .operation_timeout(timeout)
            .build()
            .unwrap();
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "busy");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let busy = {
            let db = db.clone();
            tokio::spawn(async move {
                db.run("busy", async |client| {
                    client.batch_execute("SELECT pg_sleep(5)").await.db("busy")
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let started = std::time::Instant::now();
        let mut waiting = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (store, key) = (store.clone(), key.clone());
            waiting.spawn(async move {
                match i % 2 {
                    0 => store.load(&key).await.map(drop),
                    _ => store
                        .acquire_lease(&key, "h", Duration::from_secs(60))
                        .await
                        .map(drop),
                }
            });
        }
        let mut failed = 0;
        while let Some(answer) = waiting.join_next().await {
            match answer.unwrap() {
                Err(StoreError::Backend { message, .. }) => {
                    assert!(message.contains("no answer within"), "{message}");
                    failed += 1;
                }
                // Those that got the connection after the busy one gave up.
                Ok(()) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(failed > 0, "nobody waited for the pool");
        assert!(
            started.elapsed() < 2 * timeout + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(
            busy.await.unwrap(),
            Err(StoreError::Backend { .. })
        ));
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.version, v1);
        drop_schema(&db).await;
    }

    /// An operation timeout longer than the server's largest `lock_timeout` (`INT_MAX`
    /// milliseconds, some 24.8 days: an application that means "no timeout") still opens,
    /// saves, deletes and leases: the server-side bound is capped, not refused.
    #[tokio::test]
    async fn an_operation_timeout_of_a_month_still_works() {
        let Some(url) = test_url("an_operation_timeout_of_a_month_still_works") else {
            return;
        };
        let db = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(format!("tc_test_{}", uuid::Uuid::new_v4().simple()))
            .max_connections(2)
            .operation_timeout(Duration::from_secs(30 * 24 * 3600))
            .build()
            .unwrap();
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "a-month");
        let version = store.save(&key, &set("a"), None).await.unwrap();
        let version = store.save(&key, &set("b"), Some(version)).await.unwrap();
        let long = Duration::from_secs(60);
        assert_eq!(
            store.acquire_lease(&key, "me", long).await.unwrap(),
            Lease::Acquired
        );
        store.release_lease(&key, "me").await.unwrap();
        assert!(store.delete(&key, Some(version)).await.unwrap());
        drop_schema(&db).await;
    }

    /// An operation timeout as long as a `Duration` holds (an application's "no timeout"):
    /// every call works, none panics on a deadline past what an instant holds.
    #[tokio::test]
    async fn an_operation_timeout_as_long_as_a_duration_holds_works() {
        let Some(url) = test_url("an_operation_timeout_as_long_as_a_duration_holds_works") else {
            return;
        };
        let db = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(format!("tc_test_{}", uuid::Uuid::new_v4().simple()))
            .max_connections(2)
            .operation_timeout(Duration::MAX)
            .build()
            .unwrap();
        let opened = tokio::spawn(async move {
            let store = PostgresStore::open(&db).await?;
            let key = SessionKey::new("p", "no-timeout");
            let version = store.save(&key, &set("a"), None).await?;
            let lease = store
                .acquire_lease(&key, "me", Duration::from_secs(60))
                .await?;
            store.release_lease(&key, "me").await?;
            let loaded = store.load(&key).await?.map(|loaded| loaded.value);
            let deleted = store.delete(&key, Some(version)).await?;
            drop_schema(&db).await;
            Ok::<_, StoreError>((lease, loaded, deleted))
        })
        .await;
        assert!(opened.is_ok(), "a call panicked");
        let (lease, loaded, deleted) = opened.unwrap().unwrap();
        assert_eq!(
            (lease, loaded, deleted),
            (Lease::Acquired, Some(set("a")), true)
        );
    }

    /// Names with quotes, semicolons, backslashes and SQL in them are kept as they are.
    #[tokio::test]
    async fn names_with_quotes_and_sql_are_kept_as_they_are() {
        let Some(url) = test_url("names_with_quotes_and_sql_are_kept_as_they_are") else {
            return;
        };
        let db = test_db(&url, "token-core-test-quotes");
        let store = PostgresStore::open(&db).await.unwrap();
        let hostile = "x'); DROP TABLE token_sets; --\"\\$1 \u{1F600}";
        let key = SessionKey::new(hostile, hostile);
        let version = store.save(&key, &set("a"), None).await.unwrap();
        let long = Duration::from_secs(60);
        assert_eq!(
            store.acquire_lease(&key, hostile, long).await.unwrap(),
            Lease::Acquired
        );
        assert!(matches!(
            store.acquire_lease(&key, "other", long).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!((loaded.version, loaded.value), (version, set("a")));
        assert!(
            store
                .load(&SessionKey::new("x", "x"))
                .await
                .unwrap()
                .is_none()
        );
        store.release_lease(&key, hostile).await.unwrap();
        assert!(store.delete(&key, Some(version)).await.unwrap());
        assert_eq!(rows(&db, "token_leases").await, 0);
        drop_schema(&db).await;
    }

    /// Leases of the previous schema version (3: no ttl) migrate at open and last as they
    /// say; a process of that release (its lease statement as it sent it) still running
    /// beside one that migrated takes leases the new one honours, even one it took over
    /// from a lease of the new release (whose ttl is then not its own): none is cut short.
    #[tokio::test]
    async fn leases_of_the_previous_schema_version_last_as_they_say() {
        let Some(url) = test_url("leases_of_the_previous_schema_version_last_as_they_say") else {
            return;
        };
        let db = test_db(&url, "token-core-test-v3-leases");
        db.migrate("token_store", &migrations(&db)[..3])
            .await
            .unwrap();
        let leases = db.table("token_leases");
        admin(
            &db,
            &format!(
                "INSERT INTO {leases} (provider, session, holder, expires_at)
                 VALUES ('p', 'kept', 'old', clock_timestamp() + interval '1 hour')"
            ),
        )
        .await;
        let store = PostgresStore::open(&db).await.unwrap();
        let ttl = Duration::from_millis(500);
        let held = |lease: Lease| match lease {
            Lease::HeldByOther { remaining } => remaining,
            other => panic!("{other:?}"),
        };
        let kept = SessionKey::new("p", "kept");
        let remaining = held(store.acquire_lease(&kept, "new", ttl).await.unwrap());
        assert!(remaining > Duration::from_secs(3500), "{remaining:?}");
        assert!(store.lapsed_leases("p").await.unwrap().is_empty());
        let remaining = held(store.acquire_lease(&kept, "new", ttl).await.unwrap());
        assert!(remaining > Duration::from_secs(3500), "cut: {remaining:?}");

        // The previous release's lease statement, as it sent it.
        let old_acquire = format!(
            "WITH old AS (SELECT holder FROM {leases} WHERE provider = $1 AND session = $2),
             taken AS (
                 INSERT INTO {leases} AS l (provider, session, holder, expires_at)
                 SELECT $1::text, $2::text, $3::text,
                        clock_timestamp() + make_interval(secs => $4::float8)
                 WHERE {}
                 ON CONFLICT (provider, session) DO UPDATE
                     SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                     WHERE l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
                 RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM taken)",
            lock_bound(5)
        );
        let old_acquire = async |session: &str, seconds: f64| -> bool {
            db.run("old", async |client| {
                let row = client
                    .query_one(&old_acquire, &[&"p", &session, &"old", &seconds, &5000_i64])
                    .await
                    .db("old")?;
                row.try_get(0).db("old")
            })
            .await
            .unwrap()
        };
        // A lease of its own, new.
        assert!(old_acquire("fresh", 3600.0).await);
        let fresh = SessionKey::new("p", "fresh");
        let remaining = held(store.acquire_lease(&fresh, "new", ttl).await.unwrap());
        assert!(remaining > Duration::from_secs(3500), "{remaining:?}");
        // One the new release held, lapsed, taken over for an hour: the row still holds
        // the short ttl of the lease before, which is not this one's.
        let taken = SessionKey::new("p", "taken");
        assert_eq!(
            store
                .acquire_lease(&taken, "new", Duration::from_millis(1))
                .await
                .unwrap(),
            Lease::Acquired
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(old_acquire("taken", 3600.0).await);
        let remaining = held(store.acquire_lease(&taken, "new", ttl).await.unwrap());
        assert!(remaining > Duration::from_secs(3500), "{remaining:?}");
        assert!(store.lapsed_leases("p").await.unwrap().is_empty());
        let remaining = held(store.acquire_lease(&taken, "new", ttl).await.unwrap());
        assert!(remaining > Duration::from_secs(3500), "cut: {remaining:?}");
        drop_schema(&db).await;
    }

    /// A process of the previous release (schema version 2: `record jsonb`, its statements
    /// as they were) still running beside one that migrated the tables to version 3
    /// (`json`): its saves and loads keep working on the migrated table, and what each
    /// writes the other reads.
    #[tokio::test]
    async fn a_process_of_the_previous_schema_version_keeps_working_beside_the_new_one() {
        let Some(url) =
            test_url("a_process_of_the_previous_schema_version_keeps_working_beside_the_new_one")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-old-beside-new");
        let store = PostgresStore::open(&db).await.unwrap();
        let (sets, versions) = (db.table("token_sets"), db.table("token_set_versions"));
        // The previous release's statements, as it sent them.
        let old_insert = format!(
            "INSERT INTO {sets} (provider, session, version, record)
             VALUES ($1, $2, nextval('{versions}'), $3)
             ON CONFLICT (provider, session) DO NOTHING
             RETURNING version"
        );
        let old_update = format!(
            "UPDATE {sets} SET version = nextval('{versions}'), record = $3, updated_at = now()
             WHERE provider = $1 AND session = $2 AND version = $4
             RETURNING version"
        );
        let old_load =
            format!("SELECT version, record FROM {sets} WHERE provider = $1 AND session = $2");
        let key = SessionKey::new("p", "old-beside-new");
        let record = serde_json::to_value(set("old")).unwrap();
        let old_version: i64 = db
            .run("old", async |client| {
                let row = client
                    .query_one(&old_insert, &[&"p", &"old-beside-new", &record])
                    .await
                    .db("old")?;
                row.try_get(0).db("old")
            })
            .await
            .unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.value, set("old"));
        let new_version = store
            .save(&key, &set("new"), Some(loaded.version))
            .await
            .unwrap();
        assert!(new_version > u64::try_from(old_version).unwrap());
        let (version, value): (i64, serde_json::Value) = db
            .run("old", async |client| {
                let row = client
                    .query_one(&old_load, &[&"p", &"old-beside-new"])
                    .await
                    .db("old")?;
                Ok((row.try_get(0).db("old")?, row.try_get(1).db("old")?))
            })
            .await
            .unwrap();
        assert_eq!(u64::try_from(version).unwrap(), new_version);
        assert_eq!(value, serde_json::to_value(set("new")).unwrap());
        let newer = serde_json::to_value(set("old-again")).unwrap();
        db.run("old", async |client| {
            client
                .query_one(&old_update, &[&"p", &"old-beside-new", &newer, &version])
                .await
                .db("old")
        })
        .await
        .unwrap();
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().value,
            set("old-again")
        );
        drop_schema(&db).await;
    }

    /// tokio-postgres logs every statement's parameters at debug level (through `log`, as
    /// `tracing-subscriber`'s `init` forwards it): no line shows a token the store saves.
    #[tokio::test]
    async fn the_driver_s_debug_log_shows_no_token_saved() {
        let Some(url) = test_url("the_driver_s_debug_log_shows_no_token_saved") else {
            return;
        };
        let captured = crate::test_logs::capture_logs();
        let db = test_db(&url, "token-core-test-driver-log");
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "logged");
        let v1 = store.save(&key, &set("logged-1"), None).await.unwrap();
        store.save(&key, &set("logged-2"), Some(v1)).await.unwrap();
        drop_schema(&db).await;
        let text = captured.text();
        assert!(text.contains("executing statement"), "{text}");
        assert!(!text.contains("logged-"), "a token logged: {text}");
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

    #[tokio::test]
    async fn an_applications_own_pool_serves_the_store_and_the_application() {
        let Some(url) = test_url("an_applications_own_pool_serves_the_store_and_the_application")
        else {
            return;
        };
        let mut config = deadpool_postgres::Config::new();
        config.url = Some(url.clone());
        let pool = config
            .create_pool(
                Some(deadpool_postgres::Runtime::Tokio1),
                tokio_postgres::NoTls,
            )
            .unwrap();
        let schema = format!("tc_test_{}", uuid::Uuid::new_v4().simple());
        let db = PostgresDatabase::from_pool(pool.clone())
            .with_schema(schema)
            .unwrap();
        let store = PostgresStore::open(&db).await.unwrap();
        let key = SessionKey::new("p", "shared-pool");
        let version = store.save(&key, &set("a"), None).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, version);
        // The application keeps using its pool, and sees the store's table through it.
        let app = pool.get().await.unwrap();
        let rows: i64 = app
            .query_one(
                &format!("SELECT count(*) FROM {}", db.table("token_sets")),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
        drop(app);
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_connection_whose_statement_failed_is_closed_not_reused() {
        let Some(url) = test_url("a_connection_whose_statement_failed_is_closed_not_reused") else {
            return;
        };
        let db = test_db(&url, "token-core-test-discard");
        let store = PostgresStore::open(&db).await.unwrap();
        store.load(&SessionKey::new("p", "warm")).await.unwrap();
        let open = db.pool().status().size;
        assert!(open >= 1);
        // A transaction left open by a failed statement must not reach the next caller.
        let err = db
            .run("fail", async |client| {
                client.batch_execute("BEGIN").await.db("begin")?;
                client
                    .batch_execute("SELECT no_such_column")
                    .await
                    .db("fail")
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("postgres: fail: 42703"), "{err}");
        assert_eq!(
            db.pool().status().size,
            open - 1,
            "the connection was closed"
        );
        // On the reused connection this would fail: "current transaction is aborted".
        db.run("probe", async |client| {
            client.batch_execute("SELECT 1").await.db("probe")
        })
        .await
        .unwrap();
        drop_schema(&db).await;
    }

    /// Records written by hand (an administrator, a damaged restore).
    mod by_hand {
        use super::*;

        const GUARD: Duration = Duration::from_secs(60);

        async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
            tokio::time::timeout(GUARD, f)
                .await
                .unwrap_or_else(|_| panic!("{what} hung"))
        }

        /// A row written ahead of the version sequence (a restore from another database, a
        /// hand insert): a store opened afterwards numbers its saves above it, so versions of
        /// a key never go back, nor repeat after a delete.
        #[tokio::test]
        async fn versions_never_go_back_past_a_row_written_ahead_of_the_sequence() {
            let Some(url) =
                test_url("versions_never_go_back_past_a_row_written_ahead_of_the_sequence")
            else {
                return;
            };
            let db = test_db(&url, "token-core-test-ahead");
            PostgresStore::open(&db).await.unwrap();
            let ahead = 1_000_000;
            put_raw(
                &db,
                "restored",
                ahead,
                &serde_json::to_string(&set("a")).unwrap(),
            )
            .await
            .unwrap();
            let store = PostgresStore::open(&test_db_same_schema(&url, &db))
                .await
                .unwrap();
            let key = SessionKey::new("p", "restored");
            let at = Version::try_from(ahead).unwrap();
            let saved = store.save(&key, &set("b"), Some(at)).await.unwrap();
            assert!(saved > at, "{saved} after {at}");
            assert!(store.delete(&key, Some(saved)).await.unwrap());
            let again = store.save(&key, &set("c"), None).await.unwrap();
            assert!(again > saved, "{again} after {saved}");
            drop_schema(&db).await;
        }

        /// JSON the `json` column takes, edited in by hand, that is no session record: load
        /// answers Corrupt (not Backend, which the manager retries as an outage for ever),
        /// quoting nothing, and `unreadable` identifies it so it can be cleared.
        #[tokio::test]
        async fn hostile_json_is_corrupt_and_identified_never_backend() {
            let Some(url) = test_url("hostile_json_is_corrupt_and_identified_never_backend") else {
                return;
            };
            let db = test_db(&url, "token-core-test-hostile-json");
            let store = PostgresStore::open(&db).await.unwrap();
            let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
            let cases: Vec<(&str, String)> = vec![
                ("scalar", "\"SECRET-AT\"".into()),
                ("array", "[1, \"SECRET-AT\"]".into()),
                ("null", "null".into()),
                (
                    "wrong-kind",
                    r#"{"kind": "SECRET-AT", "access_token": "SECRET-AT"}"#.into(),
                ),
                (
                    "wrong-type",
                    r#"{"kind": "tokens", "access_token": ["SECRET-AT"]}"#.into(),
                ),
                (
                    "big-number",
                    r#"{"kind": "tokens", "access_token": "SECRET-AT", "n": 1e400}"#.into(),
                ),
                (
                    "deep",
                    format!(r#"{{"kind": "tokens", "access_token": "SECRET-AT", "x": {deep}}}"#),
                ),
                (
                    "surrogate",
                    r#"{"kind": "tokens", "access_token": "SECRET-AT\ud800"}"#.into(),
                ),
            ];
            let mut failures = Vec::new();
            for (i, (session, json)) in cases.iter().enumerate() {
                let version = 1_000_000 + i as i64;
                (put_raw(&db, session, version, json).await)
                    .unwrap_or_else(|e| panic!("{session}: the column refused it: {e}"));
                let key = SessionKey::new("p", *session);
                let loaded = guard("load", store.load(&key)).await;
                match &loaded {
                    Err(StoreError::Corrupt(m)) if !m.contains("SECRET") => {}
                    other => failures.push(format!("{session}: load answered {other:?}")),
                }
                if let Err(e) = &loaded {
                    let shown = format!("{e} {e:?}");
                    if shown.contains("SECRET") {
                        failures.push(format!("{session}: the error quotes the record: {shown}"));
                    }
                }
                let seen = guard("unreadable", store.unreadable(&key)).await;
                match seen {
                    Ok(Some(u)) if u == Unreadable::at_version(version as u64) => {
                        if !guard("delete", store.delete_unreadable(&key, &u))
                            .await
                            .unwrap()
                        {
                            failures.push(format!("{session}: delete_unreadable kept it"));
                        }
                    }
                    other => failures.push(format!("{session}: unreadable answered {other:?}")),
                }
            }
            drop_schema(&db).await;
            assert!(failures.is_empty(), "{failures:#?}");
        }

        /// The store saves only what it loads back, however deep
        /// (`json::saves_only_what_loads`).
        #[tokio::test]
        async fn a_record_saves_only_if_it_loads_back_however_deep() {
            let Some(url) = test_url("a_record_saves_only_if_it_loads_back_however_deep") else {
                return;
            };
            let db = test_db(&url, "token-core-test-deep");
            let store = PostgresStore::open(&db).await.unwrap();
            crate::store::json::saves_only_what_loads(&store).await;
            drop_schema(&db).await;
        }

        /// A record the store cannot identify (a version written negative by hand): two
        /// processes see it; one clears it and saves a login; the other's late
        /// `delete_unreadable` must not remove that login (the file store compares content,
        /// the memory store removes nothing unidentified).
        #[tokio::test]
        async fn a_late_delete_of_an_unidentified_record_keeps_the_login_saved_since() {
            let Some(url) =
                test_url("a_late_delete_of_an_unidentified_record_keeps_the_login_saved_since")
            else {
                return;
            };
            let db = test_db(&url, "token-core-test-unidentified");
            let one = PostgresStore::open(&db).await.unwrap();
            let other = PostgresStore::open(&test_db_same_schema(&url, &db))
                .await
                .unwrap();
            let json = serde_json::to_string(&set("old")).unwrap();
            put_raw(&db, "neg", -5, &json).await.unwrap();
            let key = SessionKey::new("p", "neg");
            assert!(matches!(one.load(&key).await, Err(StoreError::Corrupt(_))));
            let seen_one = one.unreadable(&key).await.unwrap().expect("unreadable");
            let seen_other = other.unreadable(&key).await.unwrap().expect("unreadable");
            assert!(other.delete_unreadable(&key, &seen_other).await.unwrap());
            let login = other.save(&key, &set("login"), None).await.unwrap();
            let late = one.delete_unreadable(&key, &seen_one).await.unwrap();
            let now = one.load(&key).await.unwrap().map(|v| v.version);
            drop_schema(&db).await;
            assert!(
                !late,
                "the late delete of {seen_one:?} removed the login saved since"
            );
            assert_eq!(now, Some(login));
        }
    }
}
