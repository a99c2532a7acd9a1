//! [`PostgresIssuerStore`]: the issuer's pairs and authorization codes in PostgreSQL, so every
//! replica of a wallet (an Alipay+ MPP answering applyToken) shares rotation, the reuse window
//! and single-use codes.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{
    CodeGrant, CodeRecord, CodeRejection, CodeState, CodeVerdict, IssuerStore, PairRecord,
    PairState, RedeemOutcome, Redemption, Reuse, RotateOutcome, RotateRejection, RotateVerdict,
    Rotation, TokenHash,
};
use crate::error::StoreError;
use crate::postgres::{DbResult, Hidden, PostgresDatabase, bounded_transaction};
use crate::token_set::StoredTokenSet;

/// The schema version [`PostgresIssuerStore`] migrates its table to.
pub const ISSUER_SCHEMA_VERSION: i32 = 5;

/// An [`IssuerStore`] in PostgreSQL, shared by several issuer replicas.
///
/// One row per issued pair in `issuer_pairs`, in the [`PostgresDatabase`]'s schema (created
/// or migrated by [`open`](Self::open); its version is the `issuer` row of
/// `token_core_schema`):
///
/// ```sql
/// CREATE TABLE issuer_pairs (
///     refresh_hash       bytea PRIMARY KEY,     -- SHA-256 of the refresh token
///     access_hash        bytea NOT NULL UNIQUE, -- SHA-256 of the access token
///     subject            text NOT NULL,
///     issued_at          timestamptz NOT NULL,
///     access_expires_at  timestamptz NOT NULL,
///     refresh_expires_at timestamptz,
///     extras             json NOT NULL,         -- json since version 4 (jsonb before)
///     state              text NOT NULL,         -- 'active', 'replaced' or 'revoked'
///     state_at           timestamptz,           -- when replaced or revoked
///     successor          bytea,                 -- replaced: the successor's refresh_hash
///     reuse_until        timestamptz,           -- replaced: end of the reuse window
///     reuse_tokens       json,                  -- replaced: the successor as issued
///     client_id          text,                  -- since version 3: the client it was
///                                               -- issued to (NULL: none, any may refresh)
///     family             bytea NOT NULL);       -- since version 5: the refresh_hash of the
///                                               -- first pair of its line, kept by every
///                                               -- successor (what a replay revokes by)
///
/// CREATE TABLE issuer_codes (                   -- since version 2
///     code_hash      bytea PRIMARY KEY,         -- SHA-256 of the authorization code
///     client_id      text NOT NULL,
///     redirect_uri   text,
///     code_challenge text,                      -- S256
///     scope          text,
///     subject        text NOT NULL,
///     extras         json NOT NULL,             -- json since version 4
///     issued_at      timestamptz NOT NULL,
///     expires_at     timestamptz NOT NULL,
///     redeemed_at    timestamptz,               -- used up
///     pair           bytea);                    -- the refresh_hash of the pair it gave
///                                               -- (its family)
/// ```
///
/// Version 5 gave every pair its family: the migration names each line's first kept pair
/// the family of the pairs its `successor` column leads to, and each code the family of the
/// pair it names, in its one transaction. Stop every replica of an older version before the
/// first one of this version opens the store: an older one writes pairs without a family
/// (which the table refuses), and its purge moves a code's name along its line, from the
/// family to a later pair, after which a replay of that code revokes nothing.
///
/// Tokens are kept only as hashes, except a successor's tokens for the reuse window (needed
/// to answer the same pair again; [`purge`](IssuerStore::purge) removes them with the row).
/// [`rotate`](IssuerStore::rotate) runs in one transaction that locks the presented pair's
/// row (`SELECT ... FOR UPDATE`) and its successor's (`FOR SHARE`), so concurrent rotations
/// with one refresh token, on any replica, agree on one successor, and a used-up token's
/// refusal names its pair's family, read under that lock; a pair whose `client_id`
/// is not the presenting client's is refused in that transaction ([`PairRecord::verdict`]),
/// unchanged. A code redemption locks the code's row the same way, so one code gives at
/// most one pair. Those transactions bound, on the server, each wait for a lock and each
/// wait for the replica's next statement by what is left of the operation timeout: a
/// replica cut off mid-rotation (a network partition the server does not notice) does not
/// leave the row locked, and the token refused on every other replica, until TCP keepalive
/// ends its connection. Times are kept to the
/// microsecond. A [`purge`](IssuerStore::purge) deletes in batches, passes over rows a
/// transaction in flight holds, and never forgets what is still alive by the database's own
/// clock, whatever the replica's clock says.
///
/// **Names** (subjects, client ids, redirect URIs, challenges, scopes) are kept as
/// PostgreSQL `text`: one holding a NUL character, or a subject longer than
/// [`MAX_SUBJECT_BYTES`](Self::MAX_SUBJECT_BYTES) (the live-subject index's entry holds no
/// more), is refused with [`StoreError::Unsupported`] before any statement is sent: nothing
/// is written and no connection is closed (the sandbox answers it as a bad request, not a
/// server error). [`revoke_subject`](IssuerStore::revoke_subject) of such a subject revokes
/// nothing, as none can be stored. Extras (of a pair or a code) nested more than
/// [`MAX_EXTRAS_DEPTH`](Self::MAX_EXTRAS_DEPTH) levels deep are refused the same way: the
/// store could not read them back. The memory store takes such names and extras.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use token_core::issuer::{Issuer, IssuerConfig, PostgresIssuerStore};
/// use token_core::postgres::PostgresDatabase;
/// use token_core::clock::SystemClock;
///
/// let db = PostgresDatabase::builder("postgresql://wallet@127.0.0.1:5432/wallet")?.build()?;
/// let store = PostgresIssuerStore::open(&db).await?;
/// let config = IssuerConfig::default().with_reuse_window(std::time::Duration::from_secs(300));
/// let issuer = Issuer::new(Arc::new(store), Arc::new(SystemClock), config);
/// let issued = issuer.issue("customer-1", serde_json::json!({"customerId": "c-1"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresIssuerStore {
    db: PostgresDatabase,
    sql: Arc<Sql>,
}

impl fmt::Debug for PostgresIssuerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresIssuerStore")
            .field("db", &self.db)
            .finish()
    }
}

const COLUMNS: &str = "subject, access_hash, refresh_hash, issued_at, access_expires_at, \
     refresh_expires_at, extras, state, state_at, successor, reuse_until, reuse_tokens, \
     client_id, family";

/// What shows that a rotation landed: the presented pair replaced by this successor (its
/// refresh token's hash), or, for a refresh token kept, its access token renewed to this one.
enum Landed {
    Successor(TokenHash),
    Access(TokenHash),
}

/// A write's answer and what shows that it landed, noted just before its `COMMIT` is sent.
/// The connection failing (or the timeout coming) after that, the write may have landed:
/// answered as an outage, the client would present its used-up token or code again, refused
/// then as a replay (and the pair just issued revoked with it). So whether it landed is
/// looked at on another connection, waiting for the row while the transaction that sent it
/// is still open on the server, and if it did, its answer is given.
struct Committing<M, T>(std::sync::Mutex<Option<(M, T)>>);

impl<M, T> Committing<M, T> {
    fn new() -> Self {
        Self(std::sync::Mutex::new(None))
    }

    /// The write's `COMMIT` is about to be sent: `shows` tells that it landed.
    fn note(&self, shows: M, answer: T) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((shows, answer));
    }

    /// `result` as the write ended, unless it failed once its `COMMIT` was noted and
    /// `landed` finds that it landed: then the answer noted. `what` names the write in a
    /// warning if the look fails.
    async fn settle(
        self,
        result: Result<T, StoreError>,
        what: &str,
        landed: impl AsyncFnOnce(M) -> Result<bool, StoreError>,
    ) -> Result<T, StoreError> {
        let noted = self.0.into_inner().unwrap_or_else(|e| e.into_inner());
        match (result, noted) {
            (Err(error @ StoreError::Backend { .. }), Some((shows, answer))) => {
                match landed(shows).await {
                    Ok(true) => Ok(answer),
                    Ok(false) => Err(error),
                    Err(looked) => {
                        tracing::warn!(error = %looked, what, "could not look whether a write landed");
                        Err(error)
                    }
                }
            }
            (result, _) => result,
        }
    }
}

struct Sql {
    insert: String,
    by_access: String,
    by_refresh: String,
    lock_refresh: String,
    share_refresh: String,
    set_state: String,
    renew_access: String,
    revoke: String,
    revoke_subject: String,
    live_subject: String,
    revoke_family: String,
    live_family: String,
    purge: String,
    purge_horizon: String,
    insert_code: String,
    lock_code: String,
    use_code: String,
    purge_codes: String,
    end_subject_codes: String,
}

/// How many rows one purge statement deletes at most.
const PURGE_BATCH: i64 = 1000;
/// How many batches one purge of a table runs at most.
const MAX_PURGE_BATCHES: usize = 10_000;
/// How many times one `revoke_subject` revokes at most (see there).
const MAX_REVOKE_PASSES: usize = 100;

const CODE_COLUMNS: &str = "code_hash, client_id, redirect_uri, code_challenge, scope, subject, \
     extras, issued_at, expires_at, redeemed_at, pair";

impl Sql {
    /// Every statement.
    fn all(&self) -> [&str; 19] {
        [
            &self.insert,
            &self.by_access,
            &self.by_refresh,
            &self.lock_refresh,
            &self.share_refresh,
            &self.set_state,
            &self.renew_access,
            &self.revoke,
            &self.revoke_subject,
            &self.live_subject,
            &self.revoke_family,
            &self.live_family,
            &self.purge,
            &self.purge_horizon,
            &self.insert_code,
            &self.lock_code,
            &self.use_code,
            &self.purge_codes,
            &self.end_subject_codes,
        ]
    }

    fn new(db: &PostgresDatabase) -> Self {
        let pairs = db.table("issuer_pairs");
        let codes = db.table("issuer_codes");
        // Revokes the live pairs `which` picks (by `$1`), at `$2`.
        let revoke = |which: &str| {
            format!(
                "UPDATE {pairs}
                 SET state = 'revoked', state_at = $2, successor = NULL, reuse_until = NULL,
                     reuse_tokens = NULL
                 WHERE {which} AND state = 'active'"
            )
        };
        // Whether `which` (by `$1`) picks a live pair.
        let live = |which: &str| {
            format!("SELECT 1 FROM {pairs} WHERE {which} AND state = 'active' LIMIT 1")
        };
        Self {
            insert_code: format!(
                "INSERT INTO {codes} ({CODE_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            lock_code: format!(
                "SELECT {CODE_COLUMNS} FROM {codes} WHERE code_hash = $1 FOR UPDATE"
            ),
            use_code: format!(
                "UPDATE {codes} SET redeemed_at = $2, pair = $3 WHERE code_hash = $1"
            ),
            // A pending code of the subject (`$1`) expires: it was issued before a logout
            // everywhere.
            end_subject_codes: format!(
                "UPDATE {codes} SET expires_at = issued_at
                 WHERE subject = $1 AND redeemed_at IS NULL AND expires_at > issued_at"
            ),
            // The same rule as `CodeRecord::is_dead`; a batch at a time (see `purge`).
            purge_codes: format!(
                "DELETE FROM {codes} WHERE code_hash IN (
                     SELECT code_hash FROM {codes} WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            insert: format!(
                "INSERT INTO {pairs} ({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ),
            by_access: format!("SELECT {COLUMNS} FROM {pairs} WHERE access_hash = $1"),
            by_refresh: format!("SELECT {COLUMNS} FROM {pairs} WHERE refresh_hash = $1"),
            lock_refresh: format!(
                "SELECT {COLUMNS} FROM {pairs} WHERE refresh_hash = $1 FOR UPDATE"
            ),
            share_refresh: format!(
                "SELECT {COLUMNS} FROM {pairs} WHERE refresh_hash = $1 FOR SHARE"
            ),
            set_state: format!(
                "UPDATE {pairs}
                 SET state = $2, state_at = $3, successor = $4, reuse_until = $5, reuse_tokens = $6
                 WHERE refresh_hash = $1"
            ),
            renew_access: format!(
                "UPDATE {pairs}
                 SET access_hash = $2, issued_at = $3, access_expires_at = $4
                 WHERE refresh_hash = $1"
            ),
            revoke: revoke("(refresh_hash = $1 OR access_hash = $1)"),
            revoke_subject: revoke("subject = $1"),
            live_subject: live("subject = $1"),
            revoke_family: revoke("family = $1"),
            live_family: live("family = $1"),
            // The same rule as `PairRecord::is_dead` (a code names its pair's family, which
            // outlives the pair); a batch at a time, passing over the rows a rotation in
            // flight holds (see `purge`).
            purge: format!(
                "DELETE FROM {pairs} WHERE refresh_hash IN (
                     SELECT refresh_hash FROM {pairs}
                     WHERE state = 'revoked'
                        OR (state = 'replaced' AND COALESCE(reuse_until, state_at) <= $1)
                        OR (state = 'active' AND refresh_expires_at <= $1
                            AND access_expires_at <= $1)
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            // A purge never forgets what is alive by the database's clock, the one clock
            // every replica shares (see `purge`).
            purge_horizon: "SELECT LEAST($1::timestamptz, now())".to_owned(),
        }
    }
}

fn migrations(db: &PostgresDatabase) -> Vec<String> {
    let pairs = db.table("issuer_pairs");
    let codes = db.table("issuer_codes");
    vec![
        format!(
            "CREATE TABLE {pairs} (
             refresh_hash       bytea PRIMARY KEY,
             access_hash        bytea NOT NULL UNIQUE,
             subject            text NOT NULL,
             issued_at          timestamptz NOT NULL,
             access_expires_at  timestamptz NOT NULL,
             refresh_expires_at timestamptz,
             extras             jsonb NOT NULL,
             state              text NOT NULL CHECK (state IN ('active', 'replaced', 'revoked')),
             state_at           timestamptz,
             successor          bytea,
             reuse_until        timestamptz,
             reuse_tokens       jsonb);
         CREATE INDEX issuer_pairs_live_subject ON {pairs} (subject) WHERE state = 'active';"
        ),
        format!(
            "CREATE TABLE {codes} (
                 code_hash      bytea PRIMARY KEY,
                 client_id      text NOT NULL,
                 redirect_uri   text,
                 code_challenge text,
                 scope          text,
                 subject        text NOT NULL,
                 extras         jsonb NOT NULL,
                 issued_at      timestamptz NOT NULL,
                 expires_at     timestamptz NOT NULL,
                 redeemed_at    timestamptz,
                 pair           bytea);
             CREATE INDEX issuer_codes_expiry ON {codes} (expires_at);"
        ),
        // Pairs from before it were issued without a client: NULL, refreshable by any.
        format!("ALTER TABLE {pairs} ADD COLUMN client_id text;"),
        // 4: `json`, which keeps extras as the text they were given: `jsonb` refuses the
        // NUL character (`\u0000`) that JSON allows, so every write of such extras failed.
        format!(
            "ALTER TABLE {pairs} ALTER COLUMN extras TYPE json USING extras::json,
                                 ALTER COLUMN reuse_tokens TYPE json USING reuse_tokens::json;
             ALTER TABLE {codes} ALTER COLUMN extras TYPE json USING extras::json;"
        ),
        // 5: each pair's family, so that a replay revokes the live pair by it instead of
        // following `successor` from a pair a purge may forget. A line's first kept pair
        // (no kept pair names it its successor) starts its family, and the pairs its
        // successors lead to join it; a code names the family of the pair it names (older
        // purges moved a code's name along the rotations).
        format!(
            "ALTER TABLE {pairs} ADD COLUMN family bytea;
             WITH RECURSIVE line (refresh_hash, family) AS (
                 SELECT refresh_hash, refresh_hash FROM {pairs} p
                 WHERE NOT EXISTS (SELECT 1 FROM {pairs} q WHERE q.successor = p.refresh_hash)
                 UNION
                 SELECT p.successor, line.family
                 FROM line JOIN {pairs} p ON p.refresh_hash = line.refresh_hash
                 WHERE p.successor IS NOT NULL)
             UPDATE {pairs} p SET family = line.family
             FROM line WHERE p.refresh_hash = line.refresh_hash;
             UPDATE {pairs} SET family = refresh_hash WHERE family IS NULL;
             ALTER TABLE {pairs} ALTER COLUMN family SET NOT NULL;
             CREATE INDEX issuer_pairs_live_family ON {pairs} (family) WHERE state = 'active';
             UPDATE {codes} c SET pair = p.family
             FROM {pairs} p WHERE c.pair = p.refresh_hash;"
        ),
    ]
}

impl PostgresIssuerStore {
    /// The most bytes (UTF-8) a subject may have.
    pub const MAX_SUBJECT_BYTES: usize = 2048;

    /// How deeply extras may nest arrays and objects (`{"a": [1]}` is 2 deep): what the store
    /// reads back. JSON is read at most 128 levels deep, and a successor's tokens, kept for the
    /// reuse window, hold their extras one level down.
    pub const MAX_EXTRAS_DEPTH: usize = 126;

    /// Opens the store in `db`'s schema, creating or migrating its table first.
    ///
    /// Every statement the store sends is then prepared once against the schema, so tables
    /// dropped or altered by hand under a recorded version fail here, as a typed error, not
    /// at the first call.
    pub async fn open(db: &PostgresDatabase) -> Result<Self, StoreError> {
        db.migrate("issuer", &migrations(db)).await?;
        let sql = Sql::new(db);
        db.prepare_all(&sql.all()).await?;
        Ok(Self {
            db: db.clone(),
            sql: Arc::new(sql),
        })
    }

    /// The database.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    /// Revokes, with `revoke` (its parameters `key` and `at`), every live pair that `live`
    /// (its parameter `key`) finds one of; returns how many.
    ///
    /// Each statement commits alone, and the passes are sent again when the server rolled
    /// one back for a rotation that committed first (a database `SERIALIZABLE` or
    /// `REPEATABLE READ` by default): the pairs revoked are counted across attempts.
    async fn revoke_live(
        &self,
        what: &str,
        revoke: &str,
        live: &str,
        key: &(dyn ToSql + Sync),
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let revoked = std::sync::atomic::AtomicU64::new(0);
        self.db
            .run_raced(what, || {
                async |client, _| {
                    // A rotation in flight when the update starts has locked the presented
                    // row and inserts its successor: the update waits for the row, finds it
                    // replaced and passes over it, and the successor is not among the rows
                    // its snapshot holds. Revoke again, each time with a newer snapshot,
                    // until none is live.
                    for _ in 0..MAX_REVOKE_PASSES {
                        let rows = client.execute(revoke, &[key, &at]).await.db(what)?;
                        revoked.fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
                        if client.query_opt(live, &[key]).await.db(what)?.is_none() {
                            break;
                        }
                    }
                    Ok(())
                }
            })
            .await?;
        Ok(usize::try_from(revoked.into_inner()).unwrap_or(usize::MAX))
    }

    /// The row `sql` finds for `hash`, read in a `READ COMMITTED` transaction whatever the
    /// database's default: a row waited for (locked by a transaction still open) is then read
    /// as that transaction left it, where `REPEATABLE READ` or `SERIALIZABLE` would fail with
    /// a serialization failure once it commits.
    async fn committed_row(
        &self,
        what: &str,
        sql: &str,
        hash: &TokenHash,
    ) -> Result<Option<Row>, StoreError> {
        self.db
            .run_bounded(what, async |client, budget| {
                let tx = bounded_transaction(client, budget, what).await?;
                let row = tx
                    .query_opt(sql, &[&hash.as_bytes().as_slice()])
                    .await
                    .db(what)?;
                tx.commit().await.db(what)?;
                Ok(row)
            })
            .await
    }

    /// Whether the rotation of the pair whose refresh token hashes to `presented` landed, as
    /// `landed` shows.
    async fn landed(&self, presented: &TokenHash, landed: Landed) -> Result<bool, StoreError> {
        let what = "rotate: look whether it landed";
        let row = self
            .committed_row(what, &self.sql.share_refresh, presented)
            .await?;
        let Some(record) = row.as_ref().map(record_of).transpose()? else {
            return Ok(false);
        };
        Ok(match landed {
            Landed::Successor(successor) => matches!(
                record.state,
                PairState::Replaced { successor: found, .. } if found == successor
            ),
            Landed::Access(access) => record.access_hash == access,
        })
    }

    /// Whether the code that hashes to `presented` was redeemed for the pair whose refresh
    /// token hashes to `pair`.
    async fn redeemed(&self, presented: &TokenHash, pair: &TokenHash) -> Result<bool, StoreError> {
        let what = "redeem a code: look whether it landed";
        let row = self
            .committed_row(what, &self.sql.lock_code, presented)
            .await?;
        let Some(code) = row.as_ref().map(code_of).transpose()? else {
            return Ok(false);
        };
        Ok(matches!(code.state, CodeState::Redeemed { pair: Some(found), .. } if found == *pair))
    }

    async fn find(
        &self,
        sql: &str,
        hash: &TokenHash,
        what: &str,
    ) -> Result<Option<PairRecord>, StoreError> {
        self.db
            .run(what, async |client| {
                let row = client
                    .query_opt(sql, &[&hash.as_bytes().as_slice()])
                    .await
                    .db(what)?;
                row.as_ref().map(record_of).transpose()
            })
            .await
    }
}

/// Refuses, before any statement is sent, a name `text` cannot hold (a NUL character:
/// 22021). Sent anyway, it would be a database error: a server error to the client, and a
/// closed connection.
fn storable_text(what: &str, name: &str) -> Result<(), StoreError> {
    match name.contains('\0') {
        true => Err(StoreError::Unsupported(format!(
            "postgres issuer: a {what} holding a NUL character, which PostgreSQL text cannot hold"
        ))),
        false => Ok(()),
    }
}

/// Refuses a subject the pairs' table cannot hold: a NUL character, or more bytes than the
/// live-subject index's entry holds (54000 past about 2.7 kB once compressed).
fn storable_subject(subject: &str) -> Result<(), StoreError> {
    storable_text("subject", subject)?;
    let bytes = subject.len();
    if bytes > PostgresIssuerStore::MAX_SUBJECT_BYTES {
        return Err(StoreError::Unsupported(format!(
            "postgres issuer: a subject of {bytes} bytes, more than the {} the store keeps",
            PostgresIssuerStore::MAX_SUBJECT_BYTES
        )));
    }
    Ok(())
}

/// Refuses extras nested deeper than [`PostgresIssuerStore::MAX_EXTRAS_DEPTH`]: written, they
/// could not be read back, and every read of their pair or code would fail as an outage.
fn storable_extras(extras: &serde_json::Value) -> Result<(), StoreError> {
    if crate::store::json::value_depth(extras) > PostgresIssuerStore::MAX_EXTRAS_DEPTH {
        return Err(StoreError::Unsupported(format!(
            "postgres issuer: extras nested more than {} levels deep, which the store \
             cannot read back",
            PostgresIssuerStore::MAX_EXTRAS_DEPTH
        )));
    }
    Ok(())
}

/// Refuses a pair whose names the table cannot hold (see [`storable_subject`]), or whose
/// extras it cannot read back ([`storable_extras`]).
fn storable_pair(record: &PairRecord) -> Result<(), StoreError> {
    storable_subject(&record.subject)?;
    storable_extras(&record.extras)?;
    record
        .client
        .as_deref()
        .map_or(Ok(()), |client| storable_text("client id", client))
}

/// Refuses a code whose names the table cannot hold, or whose extras it cannot read back;
/// its subject and extras are its pair's.
fn storable_code(grant: &CodeGrant) -> Result<(), StoreError> {
    storable_subject(&grant.subject)?;
    storable_extras(&grant.extras)?;
    storable_text("client id", &grant.client_id)?;
    for (what, name) in [
        ("redirect URI", &grant.redirect_uri),
        ("code challenge", &grant.code_challenge),
        ("scope", &grant.scope),
    ] {
        name.as_deref()
            .map_or(Ok(()), |name| storable_text(what, name))?;
    }
    Ok(())
}

/// The state columns of a record: state, state_at, successor, reuse_until, reuse_tokens.
struct StateColumns {
    state: &'static str,
    at: Option<OffsetDateTime>,
    successor: Option<Vec<u8>>,
    reuse_until: Option<OffsetDateTime>,
    reuse_tokens: Option<serde_json::Value>,
}

impl StateColumns {
    fn of(state: &PairState) -> Result<Self, StoreError> {
        Ok(match state {
            PairState::Active => Self {
                state: "active",
                at: None,
                successor: None,
                reuse_until: None,
                reuse_tokens: None,
            },
            PairState::Replaced {
                at,
                successor,
                reuse,
            } => Self {
                state: "replaced",
                at: Some(*at),
                successor: Some(successor.as_bytes().to_vec()),
                reuse_until: reuse.as_ref().map(|r| r.until),
                reuse_tokens: reuse
                    .as_ref()
                    .map(|r| serde_json::to_value(&r.tokens))
                    .transpose()
                    .map_err(|e| StoreError::Backend {
                        message: "postgres issuer: cannot encode the successor's tokens".to_owned(),
                        source: Some(Arc::new(e)),
                    })?,
            },
            PairState::Revoked { at } => Self {
                state: "revoked",
                at: Some(*at),
                successor: None,
                reuse_until: None,
                reuse_tokens: None,
            },
        })
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("postgres issuer: {what}"))
}

fn hash_of(bytes: Vec<u8>, what: &str) -> Result<TokenHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt(&format!("{what} is not a SHA-256 hash")))?;
    Ok(TokenHash::from_bytes(bytes))
}

fn record_of(row: &Row) -> Result<PairRecord, StoreError> {
    const READ: &str = "read a pair";
    let state: String = row.try_get("state").db(READ)?;
    let at: Option<OffsetDateTime> = row.try_get("state_at").db(READ)?;
    let state = match state.as_str() {
        "active" => PairState::Active,
        "replaced" => {
            let successor: Option<Vec<u8>> = row.try_get("successor").db(READ)?;
            let until: Option<OffsetDateTime> = row.try_get("reuse_until").db(READ)?;
            let tokens: Option<serde_json::Value> = row.try_get("reuse_tokens").db(READ)?;
            let reuse = match (until, tokens) {
                (Some(until), Some(tokens)) => Some(Reuse {
                    until,
                    // serde's message may quote a token: name only the kind of problem.
                    tokens: serde_json::from_value::<StoredTokenSet>(tokens).map_err(|e| {
                        corrupt(&format!(
                            "reuse_tokens is not a token set ({:?} error)",
                            e.classify()
                        ))
                    })?,
                }),
                _ => None,
            };
            PairState::Replaced {
                at: at.ok_or_else(|| corrupt("a replaced pair has no state_at"))?,
                successor: hash_of(
                    successor.ok_or_else(|| corrupt("a replaced pair has no successor"))?,
                    "successor",
                )?,
                reuse,
            }
        }
        "revoked" => PairState::Revoked {
            at: at.ok_or_else(|| corrupt("a revoked pair has no state_at"))?,
        },
        _ => return Err(corrupt("unknown state")),
    };
    Ok(PairRecord {
        client: row.try_get("client_id").db(READ)?,
        subject: row.try_get("subject").db(READ)?,
        access_hash: hash_of(row.try_get("access_hash").db(READ)?, "access_hash")?,
        refresh_hash: hash_of(row.try_get("refresh_hash").db(READ)?, "refresh_hash")?,
        family: hash_of(row.try_get("family").db(READ)?, "family")?,
        issued_at: row.try_get("issued_at").db(READ)?,
        access_expires_at: row.try_get("access_expires_at").db(READ)?,
        refresh_expires_at: row.try_get("refresh_expires_at").db(READ)?,
        extras: row.try_get("extras").db(READ)?,
        state,
    })
}

/// Inserts `record` through `client` (a connection or a transaction).
fn code_of(row: &Row) -> Result<CodeRecord, StoreError> {
    const READ: &str = "read a code";
    let code_hash: Vec<u8> = row.try_get("code_hash").db(READ)?;
    let redeemed_at: Option<OffsetDateTime> = row.try_get("redeemed_at").db(READ)?;
    let pair: Option<Vec<u8>> = row.try_get("pair").db(READ)?;
    let state = match redeemed_at {
        None => CodeState::Pending,
        Some(at) => CodeState::Redeemed {
            at,
            pair: pair.map(|pair| hash_of(pair, "pair")).transpose()?,
        },
    };
    Ok(CodeRecord {
        code_hash: hash_of(code_hash, "code_hash")?,
        grant: CodeGrant {
            client_id: row.try_get("client_id").db(READ)?,
            redirect_uri: row.try_get("redirect_uri").db(READ)?,
            code_challenge: row.try_get("code_challenge").db(READ)?,
            scope: row.try_get("scope").db(READ)?,
            subject: row.try_get("subject").db(READ)?,
            extras: row.try_get("extras").db(READ)?,
        },
        issued_at: row.try_get("issued_at").db(READ)?,
        expires_at: row.try_get("expires_at").db(READ)?,
        state,
    })
}

async fn insert_record(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
    record: &PairRecord,
) -> Result<(), StoreError> {
    let state = StateColumns::of(&record.state)?;
    let access = record.access_hash.as_bytes().as_slice();
    let refresh = record.refresh_hash.as_bytes().as_slice();
    let family = record.family.as_bytes().as_slice();
    let params: [&(dyn ToSql + Sync); 14] = [
        &record.subject,
        &access,
        &refresh,
        &record.issued_at,
        &record.access_expires_at,
        &record.refresh_expires_at,
        &record.extras,
        &state.state,
        &state.at,
        &state.successor,
        &state.reuse_until,
        &Hidden(&state.reuse_tokens),
        &record.client,
        &family,
    ];
    client.execute(sql, &params).await.db("insert a pair")?;
    Ok(())
}

#[async_trait]
impl IssuerStore for PostgresIssuerStore {
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError> {
        storable_pair(&record)?;
        self.db
            .run("insert a pair", async |client| {
                insert_record(client, &self.sql.insert, &record).await?;
                Ok(())
            })
            .await
    }

    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.find(&self.sql.by_access, access, "find a pair by access token")
            .await
    }

    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.find(
            &self.sql.by_refresh,
            refresh,
            "find a pair by refresh token",
        )
        .await
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let what = "rotate";
        let committing = Committing::new();
        let rotated = self
            .db
            .run_bounded(what, async |client, budget| {
                let tx = bounded_transaction(client, budget, what).await?;
                let presented = rotation.presented.as_bytes().as_slice();
                let Some(row) = tx
                    .query_opt(&self.sql.lock_refresh, &[&presented])
                    .await
                    .db(what)?
                else {
                    tx.commit().await.db(what)?;
                    return Ok(RotateOutcome::Rejected(RotateRejection::Unknown));
                };
                let mut current = record_of(&row)?;
                let successor = match &current.state {
                    PairState::Replaced { successor, .. } => tx
                        .query_opt(&self.sql.share_refresh, &[&successor.as_bytes().as_slice()])
                        .await
                        .db(what)?
                        .as_ref()
                        .map(record_of)
                        .transpose()?,
                    _ => None,
                };
                let verdict = current.verdict(rotation.client, successor.as_ref(), rotation.now);
                let outcome = match verdict {
                    RotateVerdict::Reject(rejection) => RotateOutcome::Rejected(rejection),
                    RotateVerdict::Reuse(tokens) => RotateOutcome::Reused {
                        subject: current.subject.clone(),
                        tokens,
                    },
                    RotateVerdict::Rotate => {
                        let minted = (rotation.mint)(&current);
                        if current.is_kept_by(&minted) {
                            let access = minted.record.access_hash.as_bytes().as_slice();
                            tx.execute(
                                &self.sql.renew_access,
                                &[
                                    &presented,
                                    &access,
                                    &minted.record.issued_at,
                                    &minted.record.access_expires_at,
                                ],
                            )
                            .await
                            .db(what)?;
                            let outcome = RotateOutcome::Rotated {
                                subject: current.subject.clone(),
                                tokens: minted.tokens,
                            };
                            committing
                                .note(Landed::Access(minted.record.access_hash), outcome.clone());
                            tx.commit().await.db(what)?;
                            return Ok(outcome);
                        }
                        insert_record(&tx, &self.sql.insert, &minted.record).await?;
                        current.replace_with(&minted, rotation.now, rotation.reuse_window);
                        let state = StateColumns::of(&current.state)?;
                        tx.execute(
                            &self.sql.set_state,
                            &[
                                &presented,
                                &state.state,
                                &state.at,
                                &state.successor,
                                &state.reuse_until,
                                &Hidden(&state.reuse_tokens),
                            ],
                        )
                        .await
                        .db(what)?;
                        let outcome = RotateOutcome::Rotated {
                            subject: current.subject.clone(),
                            tokens: minted.tokens,
                        };
                        committing.note(
                            Landed::Successor(minted.record.refresh_hash),
                            outcome.clone(),
                        );
                        outcome
                    }
                };
                tx.commit().await.db(what)?;
                Ok(outcome)
            })
            .await;
        committing
            .settle(rotated, what, async |landed| {
                self.landed(rotation.presented, landed).await
            })
            .await
    }

    async fn revoke(&self, token: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        // Sent again if the server rolled it back for a rotation of the same row that
        // committed first (a database `SERIALIZABLE` or `REPEATABLE READ` by default).
        self.db
            .run_raced("revoke", || {
                async |client, _| {
                    let rows = client
                        .execute(&self.sql.revoke, &[&token.as_bytes().as_slice(), &at])
                        .await
                        .db("revoke")?;
                    Ok(rows > 0)
                }
            })
            .await
    }

    async fn revoke_subject(&self, subject: &str, at: OffsetDateTime) -> Result<usize, StoreError> {
        if storable_subject(subject).is_err() {
            // No pair can have it.
            return Ok(0);
        }
        let sql = &self.sql;
        // The codes first: a redemption under way holds its code's row, so this waits for
        // it, and the pair it made is live by the time the pairs are revoked below.
        self.db
            .run("end a subject's codes", async |client| {
                (client.execute(&sql.end_subject_codes, &[&subject]).await)
                    .db("end a subject's codes")
            })
            .await?;
        self.revoke_live(
            "revoke a subject",
            &sql.revoke_subject,
            &sql.live_subject,
            &subject,
            at,
        )
        .await
    }

    async fn revoke_family(
        &self,
        family: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let family = family.as_bytes().as_slice();
        let sql = &self.sql;
        self.revoke_live(
            "revoke a family",
            &sql.revoke_family,
            &sql.live_family,
            &family,
            at,
        )
        .await
    }

    async fn insert_code(&self, record: CodeRecord) -> Result<(), StoreError> {
        let what = "insert a code";
        storable_code(&record.grant)?;
        self.db
            .run(what, async |client| {
                let grant = &record.grant;
                let (redeemed_at, pair) = match &record.state {
                    CodeState::Pending => (None, None),
                    CodeState::Redeemed { at, pair } => {
                        (Some(*at), pair.map(|p| p.as_bytes().to_vec()))
                    }
                };
                let params: [&(dyn ToSql + Sync); 11] = [
                    &record.code_hash.as_bytes().as_slice(),
                    &grant.client_id,
                    &grant.redirect_uri,
                    &grant.code_challenge,
                    &grant.scope,
                    &grant.subject,
                    &grant.extras,
                    &record.issued_at,
                    &record.expires_at,
                    &redeemed_at,
                    &pair,
                ];
                client
                    .execute(&self.sql.insert_code, &params)
                    .await
                    .db(what)?;
                Ok(())
            })
            .await
    }

    async fn redeem_code(&self, redemption: Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        let what = "redeem a code";
        // What shows that a redemption landed: the pair it recorded (its refresh token's hash).
        let committing = Committing::new();
        let redeemed = self
            .db
            .run_bounded(what, async |client, budget| {
                let tx = bounded_transaction(client, budget, what).await?;
                let presented = redemption.presented.as_bytes().as_slice();
                let Some(row) = tx
                    .query_opt(&self.sql.lock_code, &[&presented])
                    .await
                    .db(what)?
                else {
                    tx.commit().await.db(what)?;
                    return Ok(RedeemOutcome::Rejected(CodeRejection::Unknown));
                };
                let code = code_of(&row)?;
                let (pair, outcome) = match code.verdict(&redemption.exchange, redemption.now) {
                    CodeVerdict::Reject(rejection) => {
                        tx.commit().await.db(what)?;
                        return Ok(RedeemOutcome::Rejected(rejection));
                    }
                    CodeVerdict::Burn => (None, RedeemOutcome::Rejected(CodeRejection::Mismatch)),
                    CodeVerdict::Redeem => {
                        let minted = (redemption.mint)(&code);
                        insert_record(&tx, &self.sql.insert, &minted.record).await?;
                        (
                            Some(minted.record.refresh_hash),
                            RedeemOutcome::Redeemed {
                                subject: minted.record.subject,
                                tokens: minted.tokens,
                            },
                        )
                    }
                };
                let recorded = pair.map(|pair| pair.as_bytes().to_vec());
                tx.execute(
                    &self.sql.use_code,
                    &[&presented, &redemption.now, &recorded],
                )
                .await
                .db(what)?;
                if let Some(pair) = pair {
                    committing.note(pair, outcome.clone());
                }
                tx.commit().await.db(what)?;
                Ok(outcome)
            })
            .await;
        committing
            .settle(redeemed, what, async |pair| {
                self.redeemed(redemption.presented, &pair).await
            })
            .await
    }

    /// Deletes in batches of 1000 rows, each a statement of its own within the
    /// operation timeout, so a store that grew for long is purged however large, and passes
    /// over the rows other transactions hold (a rotation presenting a used-up token): one
    /// held row neither holds up the purge until the timeout nor makes it forget nothing. A
    /// row passed over is forgotten by the next purge.
    ///
    /// `now` is taken no later than the database's own clock: a replica whose clock runs far
    /// ahead (a VM resumed with a stale offset) would otherwise forget, for good, the pairs
    /// every other replica still accepts.
    async fn purge(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let now: OffsetDateTime = self
            .db
            .run("purge: read the clock", async |client| {
                let row = client
                    .query_one(&self.sql.purge_horizon, &[&now])
                    .await
                    .db("purge: read the clock")?;
                row.try_get(0).db("purge: read the clock")
            })
            .await?;
        let mut purged = 0;
        for (sql, what) in [
            (&self.sql.purge, "purge"),
            (&self.sql.purge_codes, "purge codes"),
        ] {
            // Bounded: rows that die while it runs are left to the next purge.
            for _ in 0..MAX_PURGE_BATCHES {
                let deleted = self
                    .db
                    .run(what, async |client| {
                        client.execute(sql, &[&now, &PURGE_BATCH]).await.db(what)
                    })
                    .await?;
                purged += usize::try_from(deleted).unwrap_or(usize::MAX);
                if deleted < PURGE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::clock::ManualClock;
    use crate::issuer::{Issued, Issuer, IssuerConfig, IssuerError, RefreshRotation};
    use crate::store::postgres::tests::{admin, db_isolated, drop_schema, test_db, test_url};

    const WINDOW: Duration = Duration::from_secs(300);

    /// Two issuers over two pools on one schema: two replicas of a wallet.
    async fn replicas(
        url: &str,
        window: Duration,
    ) -> (Issuer, Issuer, ManualClock, PostgresDatabase) {
        // Purged only when a test asks, so that it sees what each purge forgets.
        let config = IssuerConfig::default()
            .with_reuse_window(window)
            .with_purge_every(None);
        replicas_with(url, config).await
    }

    /// Replicas with a reuse window that revoke what descends from a used-up refresh token.
    async fn replicas_detecting_reuse(
        url: &str,
    ) -> (Issuer, Issuer, ManualClock, PostgresDatabase) {
        let config = IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_revoke_on_reuse(true)
            .with_purge_every(None);
        replicas_with(url, config).await
    }

    async fn replicas_with(
        url: &str,
        config: IssuerConfig,
    ) -> (Issuer, Issuer, ManualClock, PostgresDatabase) {
        let db = test_db(url, "token-core-test-issuer");
        let other = PostgresDatabase::builder(url)
            .unwrap()
            .schema(db.schema())
            .max_connections(4)
            .build()
            .unwrap();
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let a = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&db).await.unwrap()),
            Arc::new(clock.clone()),
            config.clone(),
        );
        let b = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&other).await.unwrap()),
            Arc::new(clock.clone()),
            config,
        );
        (a, b, clock, db)
    }

    fn refresh(issued: &Issued) -> String {
        issued
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_default()
    }

    fn access(issued: &Issued) -> String {
        issued.tokens.access_token.expose_secret().to_owned()
    }

    /// tokio-postgres logs every statement's parameters at debug level (through `log`, as
    /// `tracing-subscriber`'s `init` forwards it): no line shows the successor's tokens a
    /// rotation keeps for its reuse window.
    #[tokio::test]
    async fn the_driver_s_debug_log_shows_no_token_of_a_rotation() {
        let Some(url) = test_url("the_driver_s_debug_log_shows_no_token_of_a_rotation") else {
            return;
        };
        let captured = crate::test_logs::capture_logs();
        let (a, _, _, db) = replicas(&url, WINDOW).await;
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let next = a.refresh(&refresh(&first)).await.unwrap();
        drop_schema(&db).await;
        let text = captured.text();
        assert!(text.contains("executing statement"), "{text}");
        for token in [refresh(&next), access(&next)] {
            assert!(!text.contains(&token), "a token logged: {text}");
        }
    }

    /// Extras holding a NUL character (JSON allows `\u0000`, `jsonb` refuses it) are issued,
    /// rotated, answered again inside the reuse window and carried through a code exchange,
    /// as the memory store does: not a backend error on every write.
    #[tokio::test]
    async fn extras_holding_a_nul_character_are_issued_and_rotated() {
        let Some(url) = test_url("extras_holding_a_nul_character_are_issued_and_rotated") else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, WINDOW).await;
        let extras = serde_json::json!({"customerId": "c\u{0}1", "nested": ["\u{0}"]});
        carried_through(&a, &b, &extras).await;
        drop_schema(&db).await;
    }

    /// `extras`, issued by `a`, rotated by `b`, answered again by `a` inside the reuse
    /// window, read back by `b` with the access token, and carried through a code exchange.
    async fn carried_through(a: &Issuer, b: &Issuer, extras: &serde_json::Value) {
        let first = a.issue("alice", extras.clone()).await.unwrap();
        let second = b.refresh(&refresh(&first)).await.unwrap();
        assert_eq!(&second.tokens.extras, extras);
        let again = a.refresh(&refresh(&first)).await.unwrap();
        assert!(again.reused);
        assert_eq!(again.tokens, second.tokens);
        assert_eq!(
            &b.authenticate(&access(&second)).await.unwrap().extras,
            extras
        );
        let grant = CodeGrant::new("app-1", "bob").with_extras(extras.clone());
        let code = a.issue_code(grant).await.unwrap();
        let exchange = crate::issuer::CodeExchange::new("app-1");
        let exchanged = b.redeem_code(code.expose_secret(), exchange).await.unwrap();
        assert_eq!(&exchanged.tokens.extras, extras);
    }

    /// Extras nested deeper than the store can read back (JSON is read at most 128 levels
    /// deep, and a successor kept for the reuse window holds its extras one level down) are
    /// refused at the write, typed, like a name the tables cannot hold: written, every read
    /// of the pair failed as an outage, so its tokens were never accepted nor refreshed (and
    /// a code holding them never redeemed). Extras at the limit are issued, rotated, answered
    /// again inside the window and carried through a code exchange.
    #[tokio::test]
    async fn extras_nested_deeper_than_the_store_reads_back_are_refused_typed() {
        let Some(url) =
            test_url("extras_nested_deeper_than_the_store_reads_back_are_refused_typed")
        else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, WINDOW).await;
        let nested = |depth: usize| {
            let mut extras = serde_json::json!({"customerId": "c-1"});
            for level in 1..depth {
                extras = match level % 2 {
                    0 => serde_json::json!([extras]),
                    _ => serde_json::json!({"inner": extras}),
                };
            }
            extras
        };
        let deepest = PostgresIssuerStore::MAX_EXTRAS_DEPTH;
        let unsupported = |result: Result<(), IssuerError>, what: &str| match result {
            Err(IssuerError::Store(StoreError::Unsupported(_))) => {}
            other => panic!("{what}: {other:?}"),
        };
        let deep = nested(deepest + 1);
        unsupported(a.issue("alice", deep.clone()).await.map(drop), "issue");
        let grant = CodeGrant::new("app-1", "alice").with_extras(deep);
        unsupported(a.issue_code(grant).await.map(drop), "issue_code");

        carried_through(&a, &b, &nested(deepest)).await;
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn records_round_trip_and_rotation_follows_the_issuer_rules() {
        let Some(url) = test_url("records_round_trip_and_rotation_follows_the_issuer_rules") else {
            return;
        };
        let (a, b, clock, db) = replicas(&url, WINDOW).await;
        let first = a
            .issue("alice", serde_json::json!({"customerId": "c-1"}))
            .await
            .unwrap();
        // What one replica stored, the other reads back identically.
        let stored = b
            .store()
            .find_by_refresh(&TokenHash::of(&refresh(&first)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.subject, "alice");
        assert_eq!(stored.extras["customerId"], "c-1");
        assert_eq!(stored.state, PairState::Active);
        assert_eq!(
            Some(stored.access_expires_at),
            first.tokens.access_expires_at
        );
        assert_eq!(
            b.store()
                .find_by_access(&TokenHash::of(&access(&first)))
                .await
                .unwrap(),
            Some(stored)
        );
        assert_eq!(
            b.authenticate(&access(&first)).await.unwrap().subject,
            "alice"
        );

        // Rotate on one replica; the other answers the same successor within the window.
        let second = a.refresh(&refresh(&first)).await.unwrap();
        assert!(!second.reused);
        assert_eq!(second.tokens.extras["customerId"], "c-1");
        let again = b.refresh(&refresh(&first)).await.unwrap();
        assert!(again.reused);
        assert_eq!(again.tokens, second.tokens);
        assert!(matches!(
            b.authenticate(&access(&first)).await,
            Err(IssuerError::InvalidAccessToken)
        ));
        b.authenticate(&access(&second)).await.unwrap();

        // After the window the old token is used; once the successor rotates, too.
        clock.advance(time::Duration::try_from(WINDOW + Duration::from_secs(1)).unwrap());
        assert!(matches!(
            a.refresh(&refresh(&first)).await,
            Err(IssuerError::UsedRefreshToken)
        ));
        let third = b.refresh(&refresh(&second)).await.unwrap();
        assert!(matches!(
            a.refresh(&refresh(&second))
                .await
                .map(|i| i.tokens == third.tokens),
            Ok(true)
        ));
        assert!(matches!(
            a.refresh("rt_unknown").await,
            Err(IssuerError::InvalidRefreshToken)
        ));

        // Revocation by either token and by subject; expiry of refresh tokens.
        assert!(a.revoke(&access(&third)).await.unwrap());
        assert!(!b.revoke(&refresh(&third)).await.unwrap());
        assert!(matches!(
            b.refresh(&refresh(&third)).await,
            Err(IssuerError::InvalidRefreshToken)
        ));
        let x = a.issue("bob", serde_json::json!({})).await.unwrap();
        let _y = a.issue("bob", serde_json::json!({})).await.unwrap();
        assert_eq!(b.revoke_subject("bob").await.unwrap(), 2);
        assert!(b.refresh(&refresh(&x)).await.is_err());
        let old = a.issue("carol", serde_json::json!({})).await.unwrap();
        clock.advance(time::Duration::days(31));
        assert!(matches!(
            b.refresh(&refresh(&old)).await,
            Err(IssuerError::ExpiredRefreshToken)
        ));

        // Purge forgets every dead record and keeps the rest.
        let live = a.issue("dave", serde_json::json!({})).await.unwrap();
        let purged = a
            .store()
            .purge(crate::clock::Clock::now(&clock))
            .await
            .unwrap();
        assert!(purged >= 6, "{purged}");
        assert!(
            b.store()
                .find_by_refresh(&TokenHash::of(&refresh(&live)))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            b.store()
                .find_by_refresh(&TokenHash::of(&refresh(&first)))
                .await
                .unwrap()
                .is_none()
        );
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn concurrent_refreshes_on_two_replicas_agree_on_one_successor() {
        let Some(url) = test_url("concurrent_refreshes_on_two_replicas_agree_on_one_successor")
        else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, WINDOW).await;
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let issuer = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = refresh(&first);
            tasks.spawn(async move { issuer.refresh(&token).await });
        }
        let mut answers = Vec::new();
        while let Some(result) = tasks.join_next().await {
            answers.push(result.unwrap().unwrap());
        }
        assert_eq!(
            answers.iter().filter(|i| !i.reused).count(),
            1,
            "one rotation"
        );
        assert!(
            answers.iter().all(|i| i.tokens == answers[0].tokens),
            "one successor"
        );
        drop_schema(&db).await;
    }

    /// On a database whose transactions are `SERIALIZABLE` by default, a revoke racing the
    /// rotation of the same refresh token on another replica, and lookups beside them, are
    /// answered (the server's serialization failure had no effect and is sent again), never
    /// a store error the wallet's logout or the client would see as an outage.
    #[tokio::test]
    async fn on_a_serializable_database_a_revoke_racing_a_rotation_is_answered() {
        let Some(url) =
            test_url("on_a_serializable_database_a_revoke_racing_a_rotation_is_answered")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-issuer-serializable");
        PostgresIssuerStore::open(&db).await.unwrap();
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let replica = || {
            let db = db_isolated(&url, db.schema(), "serializable", 8);
            let config = IssuerConfig::default()
                .with_reuse_window(WINDOW)
                .with_purge_every(None);
            let clock = Arc::new(clock.clone());
            async move {
                Issuer::new(
                    Arc::new(PostgresIssuerStore::open(&db).await.unwrap()),
                    clock,
                    config,
                )
            }
        };
        let (a, b) = (replica().await, replica().await);
        let mut errors = Vec::new();
        for round in 0..20 {
            let subject = format!("user-{round}");
            let first = a.issue(&subject, serde_json::json!({})).await.unwrap();
            let token = refresh(&first);
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..10 {
                let (issuer, token, access, subject) = (
                    if i % 2 == 0 { a.clone() } else { b.clone() },
                    token.clone(),
                    access(&first),
                    subject.clone(),
                );
                tasks.spawn(async move {
                    match i % 5 {
                        0 | 1 => issuer
                            .refresh(&token)
                            .await
                            .err()
                            .filter(|e| {
                                !matches!(
                                    e,
                                    IssuerError::UsedRefreshToken
                                        | IssuerError::InvalidRefreshToken
                                )
                            })
                            .map(|e| format!("refresh: {e}")),
                        2 => issuer
                            .revoke(&token)
                            .await
                            .err()
                            .map(|e| format!("revoke: {e}")),
                        3 => issuer
                            .revoke(&access)
                            .await
                            .err()
                            .map(|e| format!("revoke access: {e}")),
                        _ => issuer
                            .revoke_subject(&subject)
                            .await
                            .err()
                            .map(|e| format!("revoke the subject: {e}")),
                    }
                });
            }
            while let Some(answer) = tasks.join_next().await {
                errors.extend(answer.unwrap());
            }
        }
        assert!(errors.is_empty(), "{errors:#?}");
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn without_a_window_concurrent_refreshes_rotate_exactly_once() {
        let Some(url) = test_url("without_a_window_concurrent_refreshes_rotate_exactly_once")
        else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, Duration::ZERO).await;
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let issuer = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = refresh(&first);
            tasks.spawn(async move { issuer.refresh(&token).await });
        }
        let (mut ok, mut used) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(_) => ok += 1,
                Err(IssuerError::UsedRefreshToken) => used += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!((ok, used), (1, 15));
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_kept_refresh_token_renews_the_access_token_in_place_on_every_replica() {
        let Some(url) =
            test_url("a_kept_refresh_token_renews_the_access_token_in_place_on_every_replica")
        else {
            return;
        };
        let config = IssuerConfig::default().with_refresh_rotation(RefreshRotation::KeepAndResend);
        let (a, b, clock, db) = replicas_with(&url, config).await;
        let first = a.issue("alice", serde_json::json!({"k": 1})).await.unwrap();
        clock.advance(time::Duration::seconds(60));
        let second = b.refresh(&refresh(&first)).await.unwrap();
        assert_eq!(refresh(&second), refresh(&first), "the same refresh token");
        assert_eq!(
            second.tokens.refresh_expires_at,
            first.tokens.refresh_expires_at
        );
        assert_ne!(access(&second), access(&first));
        assert!(a.authenticate(&access(&first)).await.is_err());
        assert_eq!(
            a.authenticate(&access(&second)).await.unwrap().extras,
            serde_json::json!({"k": 1})
        );
        // Concurrent refreshes with the kept token all succeed; one record, renewed in place.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let issuer = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = refresh(&first);
            tasks.spawn(async move { issuer.refresh(&token).await });
        }
        let mut last = Vec::new();
        while let Some(result) = tasks.join_next().await {
            last.push(access(&result.unwrap().unwrap()));
        }
        let live = futures_count(&a, &last).await;
        assert_eq!(live, 1, "exactly the latest access token is valid");
        let rows: i64 = db
            .run("count", async |client| {
                client
                    .query_one(
                        &format!("SELECT count(*) FROM {}", db.table("issuer_pairs")),
                        &[],
                    )
                    .await
                    .db("count")
            })
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1, "one record, replaced in place");
        assert!(b.revoke(&refresh(&first)).await.unwrap());
        assert!(matches!(
            a.refresh(&refresh(&first)).await,
            Err(IssuerError::InvalidRefreshToken)
        ));
        drop_schema(&db).await;
    }

    /// How many of `tokens` the issuer still accepts.
    async fn futures_count(issuer: &Issuer, tokens: &[String]) -> usize {
        let mut live = 0;
        for token in tokens {
            live += usize::from(issuer.authenticate(token).await.is_ok());
        }
        live
    }

    #[tokio::test]
    async fn authorization_codes_are_single_use_across_replicas() {
        let Some(url) = test_url("authorization_codes_are_single_use_across_replicas") else {
            return;
        };
        let (a, b, clock, db) = replicas(&url, WINDOW).await;
        use crate::issuer::code_tests as scenario;
        scenario::a_code_is_redeemed_once_and_a_replay_revokes_its_pair(&a, &b).await;
        scenario::a_code_is_refused_to_another_client_redirect_or_verifier(&a, &b).await;
        scenario::a_code_expires_by_the_issuers_clock(&a, &b, &clock).await;
        // The row keeps the hash and the binding, never the code.
        let code = a
            .issue_code(crate::issuer::CodeGrant::new("app-1", "alice"))
            .await
            .unwrap();
        let row = db
            .run("read", async |client| {
                client
                    .query_one(
                        &format!(
                            "SELECT code_hash, client_id, subject, redeemed_at IS NULL AS pending \
                             FROM {} WHERE code_hash = $1",
                            db.table("issuer_codes")
                        ),
                        &[&TokenHash::of(code.expose_secret()).as_bytes().as_slice()],
                    )
                    .await
                    .db("read")
            })
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>("client_id"), "app-1");
        assert!(row.get::<_, bool>("pending"));
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_logout_everywhere_ends_the_subjects_pending_codes_on_either_replica() {
        let Some(url) =
            test_url("a_logout_everywhere_ends_the_subjects_pending_codes_on_either_replica")
        else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, Duration::ZERO).await;
        crate::issuer::code_tests::a_logout_everywhere_ends_the_subjects_pending_codes(&a, &b)
            .await;
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_replayed_code_revokes_its_pair_after_a_purge_on_either_replica() {
        let Some(url) =
            test_url("a_replayed_code_revokes_its_pair_after_a_purge_on_either_replica")
        else {
            return;
        };
        let (a, b, clock, db) = replicas(&url, Duration::ZERO).await;
        crate::issuer::code_tests::a_replayed_code_revokes_its_pair_after_a_purge(&a, &b, &clock)
            .await;
        drop_schema(&db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_racing_the_clients_rotation_on_two_replicas_leaves_no_live_descendant() {
        let Some(url) = test_url(
            "a_replay_racing_the_clients_rotation_on_two_replicas_leaves_no_live_descendant",
        ) else {
            return;
        };
        let (a, b, clock, db) = replicas_detecting_reuse(&url).await;
        crate::issuer::tests::a_replay_racing_the_clients_rotation_leaves_no_live_descendant(
            &a, &b, &clock,
        )
        .await;
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_purge_keeps_a_used_up_refresh_token_recognised_for_the_grace_on_two_replicas() {
        let Some(url) = test_url(
            "a_purge_keeps_a_used_up_refresh_token_recognised_for_the_grace_on_two_replicas",
        ) else {
            return;
        };
        let config = IssuerConfig::default()
            .with_revoke_on_reuse(true)
            .with_purge_every(None);
        let (a, b, clock, db) = replicas_with(&url, config).await;
        crate::issuer::tests::a_purge_keeps_a_used_up_refresh_token_recognised_for_the_grace(
            &a, &b, &clock,
        )
        .await;
        drop_schema(&db).await;
    }

    /// A purge landing between a replay's verdict and its revocation: see the shared test.
    #[tokio::test]
    async fn a_purge_between_a_replays_verdict_and_its_revocation_leaves_no_live_pair() {
        let Some(url) =
            test_url("a_purge_between_a_replays_verdict_and_its_revocation_leaves_no_live_pair")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-issuer-purge-between");
        let store = PostgresIssuerStore::open(&db).await.unwrap();
        let faulty = Arc::new(crate::issuer::tests::Faulty::over(store));
        crate::issuer::tests::a_purge_landing_between_a_replays_verdict_and_its_revocation_leaves_no_live_pair(
            faulty,
        )
        .await;
        drop_schema(&db).await;
    }

    /// Two replicas whose clocks are 2 s apart: see the shared test.
    #[tokio::test]
    async fn a_purge_never_breaks_the_chain_from_a_kept_used_up_token_to_its_live_pair_on_two_replicas()
     {
        let Some(url) = test_url(
            "a_purge_never_breaks_the_chain_from_a_kept_used_up_token_to_its_live_pair_on_two_replicas",
        ) else {
            return;
        };
        let config = IssuerConfig::default()
            .with_revoke_on_reuse(true)
            .with_purge_every(None);
        let db = test_db(&url, "token-core-test-issuer");
        let other = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(db.schema())
            .max_connections(4)
            .build()
            .unwrap();
        let a_clock = ManualClock::new(datetime!(2026-01-01 00:00:02 UTC));
        let b_clock = ManualClock::new(datetime!(2026-01-01 00:00:00 UTC));
        let a = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&db).await.unwrap()),
            Arc::new(a_clock.clone()),
            config.clone(),
        );
        let b = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&other).await.unwrap()),
            Arc::new(b_clock.clone()),
            config,
        );
        crate::issuer::tests::a_purge_never_breaks_the_chain_from_a_kept_used_up_token_to_its_live_pair(
            &a, &a_clock, &b, &b_clock,
        )
        .await;
        drop_schema(&db).await;
    }

    /// "Log out everywhere" on one replica while the subject's pair rotates on another: once
    /// both have answered, no pair of the subject is live. The rotation has locked its row
    /// and is minting when the revoke starts; the revoke waits for the row, and must then
    /// revoke what the rotation made too (not only the rows it saw when it started).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revoking_a_subject_while_its_pair_rotates_leaves_no_live_pair() {
        let Some(url) = test_url("revoking_a_subject_while_its_pair_rotates_leaves_no_live_pair")
        else {
            return;
        };
        let (a, _b, clock, db) = replicas(&url, WINDOW).await;
        const REVOKER: &str = "token-core-test-subject-revoker";
        let revoker_db = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(db.schema())
            .application_name(REVOKER)
            .max_connections(1)
            .build()
            .unwrap();
        let revoker = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&revoker_db).await.unwrap()),
            Arc::new(clock.clone()),
            a.config().clone(),
        );
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let (minting, is_minting) = std::sync::mpsc::channel::<()>();
        let (go, may_go) = std::sync::mpsc::channel::<()>();
        let may_go = std::sync::Mutex::new(may_go);
        let rotating = {
            let a = a.clone();
            let presented = TokenHash::of(&refresh(&first));
            let now = crate::clock::Clock::now(&clock);
            tokio::spawn(async move {
                // Stops, the presented row locked, until the revoke waits for that row.
                let mint = |old: &PairRecord| {
                    tokio::task::block_in_place(|| {
                        minting.send(()).unwrap();
                        let may_go = may_go.lock().unwrap();
                        may_go.recv_timeout(Duration::from_secs(20)).unwrap();
                    });
                    a.mint(crate::issuer::Pair::of(old), now)
                };
                let rotation = Rotation {
                    presented: &presented,
                    client: None,
                    now,
                    reuse_window: WINDOW,
                    mint: &mint,
                };
                a.store().rotate(rotation).await
            })
        };
        tokio::task::spawn_blocking(move || is_minting.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap()
            .unwrap();
        let revoking = tokio::spawn(async move { revoker.revoke_subject("alice").await });
        let mut waiting = false;
        for _ in 0..400 {
            let row = db
                .run("watch", async |client| {
                    client
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity
                             WHERE application_name = $1 AND wait_event_type = 'Lock'",
                            &[&REVOKER],
                        )
                        .await
                        .db("watch")
                })
                .await
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                waiting = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(waiting, "the revoke never waited for the rotating row");
        go.send(()).unwrap();
        let rotated = rotating.await.unwrap().unwrap();
        let revoked = revoking.await.unwrap().unwrap();
        let RotateOutcome::Rotated { tokens, .. } = rotated else {
            panic!("the rotation did not rotate: {rotated:?}");
        };
        assert!(
            a.authenticate(tokens.access_token.expose_secret())
                .await
                .is_err(),
            "revoke_subject answered {revoked} revoked, and the pair the rotation made is live"
        );
        let next = tokens.refresh_token.as_ref().unwrap().expose_secret();
        assert!(a.refresh(next).await.is_err());
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn concurrent_redemptions_on_two_replicas_give_one_pair() {
        let Some(url) = test_url("concurrent_redemptions_on_two_replicas_give_one_pair") else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, WINDOW).await;
        for _ in 0..5 {
            crate::issuer::code_tests::concurrent_redemptions_of_one_code_give_one_pair(&a, &b)
                .await;
        }
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn revoking_a_refresh_token_inside_its_reuse_window_revokes_its_successor() {
        let Some(url) =
            test_url("revoking_a_refresh_token_inside_its_reuse_window_revokes_its_successor")
        else {
            return;
        };
        let (a, b, _clock, db) = replicas(&url, WINDOW).await;
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let lost = a.refresh(&refresh(&first)).await.unwrap();
        assert!(b.revoke(&refresh(&first)).await.unwrap());
        assert!(matches!(
            a.refresh(&refresh(&first)).await,
            Err(IssuerError::UsedRefreshToken)
        ));
        assert!(a.authenticate(&access(&lost)).await.is_err());
        assert!(!b.revoke(&refresh(&first)).await.unwrap(), "nothing left");
        drop_schema(&db).await;
    }

    /// A rotation in flight holds the row of the refresh token it was presented (here a
    /// used-up one, dead) while the purge runs: the purge forgets every other dead record
    /// without waiting for it, and that one the next time.
    #[tokio::test]
    async fn a_purge_skips_a_row_a_rotation_in_flight_holds_and_forgets_the_rest() {
        let Some(url) =
            test_url("a_purge_skips_a_row_a_rotation_in_flight_holds_and_forgets_the_rest")
        else {
            return;
        };
        let (a, _b, clock, db) = replicas(&url, Duration::ZERO).await;
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let mut pair = first.clone();
        for _ in 0..20 {
            pair = a.refresh(&refresh(&pair)).await.unwrap();
        }
        let holder = PostgresDatabase::builder(&url)
            .unwrap()
            .schema(db.schema())
            .max_connections(1)
            .build()
            .unwrap();
        let (locked, is_locked) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let lock = format!(
            "SELECT 1 FROM {} WHERE refresh_hash = $1 FOR UPDATE",
            db.table("issuer_pairs")
        );
        let hash = TokenHash::of(&refresh(&first)).as_bytes().to_vec();
        let holding = tokio::spawn(async move {
            holder
                .run("hold a row", async move |client| {
                    let tx = client.transaction().await.db("hold")?;
                    tx.query_one(&lock, &[&hash]).await.db("hold")?;
                    let _ = locked.send(());
                    let _ = released.await;
                    tx.rollback().await.db("hold")
                })
                .await
        });
        is_locked.await.unwrap();
        let store =
            PostgresIssuerStore::open(&db.clone().with_operation_timeout(Duration::from_secs(2)))
                .await
                .unwrap();
        let now = crate::clock::Clock::now(&clock);
        let purged = store.purge(now).await;
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();
        assert_eq!(purged.unwrap(), 19, "every dead record but the held one");
        assert_eq!(store.purge(now).await.unwrap(), 1, "and that one next time");
        a.authenticate(&access(&pair)).await.unwrap();
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_purge_of_more_dead_rows_than_a_batch_forgets_them_all() {
        let Some(url) = test_url("a_purge_of_more_dead_rows_than_a_batch_forgets_them_all") else {
            return;
        };
        let (a, _b, clock, db) = replicas(&url, Duration::ZERO).await;
        let live = a.issue("alice", serde_json::json!({})).await.unwrap();
        let dead = 2 * PURGE_BATCH + 7;
        admin(
            &db,
            &format!(
                "INSERT INTO {} ({COLUMNS})
                 SELECT 'bob', sha256(('a' || i)::bytea), sha256(('r' || i)::bytea), now(), now(),
                        NULL, '{{}}', 'revoked', now(), NULL, NULL, NULL, NULL,
                        sha256(('r' || i)::bytea)
                 FROM generate_series(1, {dead}) AS i",
                db.table("issuer_pairs")
            ),
        )
        .await;
        let purged = a
            .store()
            .purge(crate::clock::Clock::now(&clock))
            .await
            .unwrap();
        assert_eq!(purged, usize::try_from(dead).unwrap());
        a.authenticate(&access(&live)).await.unwrap();
        drop_schema(&db).await;
    }

    /// The database goes away while a client refreshes, and comes back: the refresh fails as
    /// the store's failure (never as a refusal of the token), and the client's retry with the
    /// same refresh token gets a pair, which a second retry (its answer lost too) gets again.
    #[tokio::test]
    async fn a_refresh_during_a_database_outage_is_not_a_refusal_and_its_retry_succeeds() {
        let Some(server) = crate::store::postgres_test_server::PrivateServer::start(
            "a_refresh_during_a_database_outage_is_not_a_refusal_and_its_retry_succeeds",
        ) else {
            return;
        };
        let db = PostgresDatabase::builder(server.url())
            .unwrap()
            .schema("issuer_outage")
            .max_connections(2)
            .operation_timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let config = IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_purge_every(None);
        let issuer = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&db).await.unwrap()),
            Arc::new(clock.clone()),
            config,
        );
        let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        server.stop("immediate");
        let failed = issuer.refresh(&refresh(&first)).await;
        assert!(
            matches!(&failed, Err(IssuerError::Store(StoreError::Backend { .. }))),
            "{failed:?}"
        );
        server.restart();
        let second = issuer.refresh(&refresh(&first)).await.unwrap();
        let again = issuer.refresh(&refresh(&first)).await.unwrap();
        assert_eq!(again.tokens, second.tokens);
        issuer.authenticate(&access(&second)).await.unwrap();
    }

    /// One replica's clock reads 40 days ahead (a VM resumed with a stale offset): its purge
    /// must not forget, for good, the live pairs every other replica still accepts.
    #[tokio::test]
    async fn a_replica_whose_clock_is_far_ahead_does_not_purge_live_pairs() {
        let Some(url) = test_url("a_replica_whose_clock_is_far_ahead_does_not_purge_live_pairs")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-issuer-ahead");
        let store: Arc<dyn IssuerStore> = Arc::new(PostgresIssuerStore::open(&db).await.unwrap());
        let config = IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_purge_every(None);
        let now = OffsetDateTime::now_utc();
        let right = Issuer::new(
            store.clone(),
            Arc::new(ManualClock::new(now)),
            config.clone(),
        );
        let ahead = Issuer::new(
            store,
            Arc::new(ManualClock::new(now + time::Duration::days(40))),
            config,
        );
        let live = right.issue("alice", serde_json::json!({})).await.unwrap();
        ahead.purge().await.unwrap();
        right.authenticate(&access(&live)).await.unwrap();
        right.refresh(&refresh(&live)).await.unwrap();
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn pairs_are_bound_to_their_client_across_replicas() {
        let Some(url) = test_url("pairs_are_bound_to_their_client_across_replicas") else {
            return;
        };
        let (a, b, clock, db) = replicas_detecting_reuse(&url).await;
        use crate::issuer::client_tests as scenario;
        scenario::a_pair_is_refreshed_only_by_the_client_it_was_issued_to(&a, &b).await;
        scenario::a_wrong_client_gets_no_reuse_answer_and_revokes_nothing(&a, &b, &clock).await;
        scenario::a_pair_is_revoked_only_by_the_client_it_was_issued_to(&a, &b).await;
        drop_schema(&db).await;
    }

    /// Names the tables cannot hold, as a hostile authorization request or a wallet's bug
    /// would send them: a NUL character in a subject, client id, redirect URI, challenge or
    /// scope (`text` refuses it: 22021), a subject too long for the live-subject index
    /// (54000). Each is refused typed ([`StoreError::Unsupported`]) before any statement is
    /// sent, not a database failure (a `server_error` answer, a pooled connection closed on
    /// every request); nothing is written, and names with quotes and semicolons are kept as
    /// they are.
    #[tokio::test]
    async fn names_the_tables_cannot_hold_are_refused_typed_and_quotes_are_kept() {
        let Some(url) =
            test_url("names_the_tables_cannot_hold_are_refused_typed_and_quotes_are_kept")
        else {
            return;
        };
        let (a, _b, _clock, db) = replicas(&url, WINDOW).await;
        a.issue("warm", serde_json::json!({})).await.unwrap();
        let open = db.pool().status().size;
        let long = crate::store::postgres::tests::random_text(16 * 1024);
        let unsupported = |result: Result<(), IssuerError>, what: &str| match result {
            Err(IssuerError::Store(StoreError::Unsupported(_))) => {}
            other => panic!("{what}: {other:?}"),
        };
        for subject in ["nul\0subject", long.as_str()] {
            unsupported(
                a.issue(subject, serde_json::json!({})).await.map(drop),
                "issue",
            );
            unsupported(
                a.issue_for("app-1", subject, serde_json::json!({}))
                    .await
                    .map(drop),
                "issue_for",
            );
            unsupported(
                a.issue_code(CodeGrant::new("app-1", subject))
                    .await
                    .map(drop),
                "issue_code",
            );
            assert_eq!(a.revoke_subject(subject).await.unwrap(), 0);
        }
        unsupported(
            a.issue_for("app\0", "alice", serde_json::json!({}))
                .await
                .map(drop),
            "a client id",
        );
        let nul = Some("x\0y".to_owned());
        for grant in [
            CodeGrant::new("app\0", "alice"),
            CodeGrant::new("app-1", "alice").with_redirect_uri(nul.clone()),
            CodeGrant::new("app-1", "alice").with_challenge(nul.clone()),
            CodeGrant::new("app-1", "alice").with_scope(nul.clone()),
        ] {
            unsupported(a.issue_code(grant).await.map(drop), "a code");
        }
        assert_eq!(db.pool().status().size, open, "a connection was closed");
        assert_eq!(
            crate::store::postgres::tests::rows(&db, "issuer_pairs").await,
            1
        );
        assert_eq!(
            crate::store::postgres::tests::rows(&db, "issuer_codes").await,
            0
        );

        // Quotes, semicolons and SQL are names like any other.
        let hostile = "a'); DROP TABLE issuer_pairs; --\"\\";
        let issued = a
            .issue_for(hostile, hostile, serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(issued.subject, hostile);
        let code = a
            .issue_code(CodeGrant::new(hostile, hostile).with_scope(Some(hostile.to_owned())))
            .await
            .unwrap();
        let redeemed = a
            .redeem_code(
                code.expose_secret(),
                crate::issuer::CodeExchange::new(hostile),
            )
            .await
            .unwrap();
        assert_eq!(redeemed.subject, hostile);
        a.refresh_for(&refresh(&issued), hostile).await.unwrap();
        assert_eq!(a.revoke_subject(hostile).await.unwrap(), 2);
        drop_schema(&db).await;
    }

    /// Replicas of a wallet starting together on an empty database, each opening the token
    /// store and the issuer's store at once (two components racing to create the schema and
    /// its version table): every open succeeds, each component's tables are made once, and
    /// both work.
    #[tokio::test]
    async fn the_store_and_the_issuer_migrating_at_once_on_an_empty_database() {
        let Some(url) = test_url("the_store_and_the_issuer_migrating_at_once_on_an_empty_database")
        else {
            return;
        };
        let db = test_db(&url, "token-core-test-both-migrate");
        let mut opens = tokio::task::JoinSet::new();
        for i in 0..8 {
            let db = PostgresDatabase::builder(&url)
                .unwrap()
                .schema(db.schema())
                .max_connections(1)
                .build()
                .unwrap();
            opens.spawn(async move {
                match i % 2 {
                    0 => crate::store::PostgresStore::open(&db).await.map(drop),
                    _ => PostgresIssuerStore::open(&db).await.map(drop),
                }
            });
        }
        while let Some(opened) = opens.join_next().await {
            opened.unwrap().unwrap();
        }
        assert_eq!(
            crate::store::postgres::tests::rows(&db, "token_core_schema").await,
            2
        );
        let issuer = Issuer::new(
            Arc::new(PostgresIssuerStore::open(&db).await.unwrap()),
            Arc::new(ManualClock::new(datetime!(2026-01-01 00:00 UTC))),
            IssuerConfig::default().with_purge_every(None),
        );
        let issued = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        issuer.refresh(&refresh(&issued)).await.unwrap();
        let store = crate::store::PostgresStore::open(&db).await.unwrap();
        use crate::store::TokenStore as _;
        assert!(
            store
                .load(&crate::store::SessionKey::new("p", "s"))
                .await
                .unwrap()
                .is_none()
        );
        drop_schema(&db).await;
    }

    #[tokio::test]
    async fn a_table_dropped_by_hand_is_a_typed_error_at_open() {
        let Some(url) = test_url("a_table_dropped_by_hand_is_a_typed_error_at_open") else {
            return;
        };
        let db = test_db(&url, "token-core-test-issuer-dropped");
        PostgresIssuerStore::open(&db).await.unwrap();
        admin(&db, &format!("DROP TABLE {}", db.table("issuer_codes"))).await;
        let err = PostgresIssuerStore::open(&db).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(err.to_string().contains("42P01"), "{err}");
        drop_schema(&db).await;
    }

    /// A store at version 4, before pairs had a family, holding a line rotated twice and a
    /// code whose name an older purge moved along its line (the pair it gave forgotten):
    /// the migration gives each line's pairs the family of its first kept pair, and the code
    /// that family, so that replaying the line's first refresh token, or the code, revokes
    /// the line's live pair.
    #[tokio::test]
    async fn migrating_from_version_4_gives_each_line_its_family() {
        let Some(url) = test_url("migrating_from_version_4_gives_each_line_its_family") else {
            return;
        };
        let db = test_db(&url, "token-core-test-issuer-family");
        db.migrate("issuer", &migrations(&db)[..4]).await.unwrap();
        let pairs = db.table("issuer_pairs");
        let pair = |name: &str, state: &str, successor: &str| {
            format!(
                "('alice', sha256('at_{name}'::bytea), sha256('rt_{name}'::bytea), now(),
                  now() + interval '1 hour', NULL, '{{}}', '{state}',
                  CASE WHEN '{state}' = 'active' THEN NULL ELSE now() END,
                  {successor}, NULL, NULL, CASE WHEN '{name}' LIKE 'b%' THEN 'app-1' END)"
            )
        };
        let next = |name: &str| format!("sha256('rt_{name}'::bytea)");
        admin(
            &db,
            &format!(
                "INSERT INTO {pairs} ({}) VALUES {}, {}, {}, {}, {}",
                COLUMNS.trim_end_matches(", family"),
                pair("a1", "replaced", &next("a2")),
                pair("a2", "replaced", &next("a3")),
                pair("a3", "active", "NULL"),
                pair("b2", "replaced", &next("b3")),
                pair("b3", "active", "NULL"),
            ),
        )
        .await;
        admin(
            &db,
            &format!(
                "INSERT INTO {} ({CODE_COLUMNS})
                 VALUES (sha256('ac_b'::bytea), 'app-1', NULL, NULL, NULL, 'alice', '{{}}',
                         now(), now() + interval '10 minutes', now(), {})",
                db.table("issuer_codes"),
                next("b2"),
            ),
        )
        .await;
        let store = PostgresIssuerStore::open(&db).await.unwrap();
        for (name, family) in [("a1", "a1"), ("a2", "a1"), ("a3", "a1"), ("b3", "b2")] {
            let record = store
                .find_by_refresh(&TokenHash::of(&format!("rt_{name}")))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                record.family,
                TokenHash::of(&format!("rt_{family}")),
                "{name}"
            );
        }
        let config = IssuerConfig::default()
            .with_revoke_on_reuse(true)
            .with_purge_every(None);
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        let issuer = Issuer::new(Arc::new(store), Arc::new(clock), config);
        issuer.authenticate("at_a3").await.unwrap();
        let replay = issuer.refresh("rt_a1").await;
        assert!(
            matches!(replay, Err(IssuerError::UsedRefreshToken)),
            "{replay:?}"
        );
        assert!(issuer.authenticate("at_a3").await.is_err());
        issuer.authenticate("at_b3").await.unwrap();
        let replay = issuer
            .redeem_code("ac_b", crate::issuer::CodeExchange::new("app-1"))
            .await;
        assert!(
            matches!(replay, Err(IssuerError::UsedAuthCode)),
            "{replay:?}"
        );
        assert!(issuer.authenticate("at_b3").await.is_err());
        drop_schema(&db).await;
    }

    /// A store at each older version, with a pair issued then, migrates to the current one:
    /// codes work, the old pair (issued before clients were recorded) is refreshed by any
    /// client with its extras, and new pairs are bound to theirs.
    #[tokio::test]
    async fn every_older_schema_migrates_to_the_current_one() {
        let Some(url) = test_url("every_older_schema_migrates_to_the_current_one") else {
            return;
        };
        let current = usize::try_from(ISSUER_SCHEMA_VERSION).unwrap();
        for version in 1..current {
            let db = test_db(&url, "token-core-test-issuer-old");
            assert_eq!(migrations(&db).len(), current);
            db.migrate("issuer", &migrations(&db)[..version])
                .await
                .unwrap();
            admin(
                &db,
                &format!(
                    "INSERT INTO {} (subject, access_hash, refresh_hash, issued_at,
                         access_expires_at, refresh_expires_at, extras, state)
                     VALUES ('alice', sha256('at_old'::bytea), sha256('rt_old'::bytea), now(),
                         now() + interval '1 hour', NULL, '{{\"customerId\": \"c-1\"}}', 'active')",
                    db.table("issuer_pairs")
                ),
            )
            .await;
            let store = PostgresIssuerStore::open(&db).await.unwrap();
            let clock = ManualClock::new(OffsetDateTime::now_utc());
            let issuer = Issuer::new(Arc::new(store), Arc::new(clock), IssuerConfig::default());
            let code = issuer
                .issue_code(crate::issuer::CodeGrant::new("app-1", "bob"))
                .await
                .unwrap();
            let exchange = crate::issuer::CodeExchange::new("app-1");
            let bound = issuer
                .redeem_code(code.expose_secret(), exchange)
                .await
                .unwrap();
            assert!(matches!(
                issuer.refresh_for(&refresh(&bound), "app-2").await,
                Err(IssuerError::InvalidRefreshToken)
            ));
            issuer.refresh_for(&refresh(&bound), "app-1").await.unwrap();
            let old = issuer.refresh_for("rt_old", "app-2").await.unwrap();
            assert_eq!(old.subject, "alice", "version {version}");
            assert_eq!(old.tokens.extras["customerId"], "c-1", "version {version}");
            issuer.refresh(&refresh(&old)).await.unwrap();
            drop_schema(&db).await;
        }
    }
}
