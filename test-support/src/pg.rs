//! The PostgreSQL test database: `TOKEN_TEST_POSTGRES_URL`, or else a throwaway server that
//! this test binary starts (once) from the PostgreSQL server binaries and stops when it exits
//! ([`test_url`], shared with token-core's own tests). Each test works in a schema of its own.
//!
//! Without a URL and without server binaries a test skips (a banner says so once), except
//! in CI (`CI=true`, or `TOKEN_TEST_REQUIRE_POSTGRES=1` as `.ci/run` sets), where it fails:
//! CI cannot pass by not running them. A URL that leads nowhere fails the test everywhere.

use std::time::Duration;

use time::OffsetDateTime;
use token_core::postgres::PostgresDatabase;

#[path = "../../token-core/src/store/postgres_test_server.rs"]
mod server;

pub use server::PrivateServer;

/// The test database's URL, or `None` when `test` should skip (see the module docs).
pub fn test_url(test: &str) -> Option<String> {
    server::test_url(test)
}

/// A schema name no other test run uses.
pub fn unique_schema() -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("tc_it_{}_{}", std::process::id(), nanos)
}

/// A small pool in `schema`, with short timeouts: a test fails fast when the server is gone.
pub fn database(url: &str, schema: &str) -> PostgresDatabase {
    PostgresDatabase::builder(url)
        .expect("a PostgreSQL URL")
        .schema(schema)
        .max_connections(4)
        .operation_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a pool")
}

/// Removes `schema` and everything in it.
pub async fn drop_schema(url: &str, schema: &str) {
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    admin(url, |client| async move {
        client
            .batch_execute(&drop)
            .await
            .expect("the schema is dropped");
    })
    .await;
}

/// The one `bigint` that `query` answers.
pub async fn scalar(url: &str, query: &str) -> i64 {
    admin(url, |client| async move {
        let row = client
            .query_one(query, &[])
            .await
            .expect("the query answers");
        row.try_get(0).expect("a bigint")
    })
    .await
}

/// Runs `work` on a connection of its own, closed afterwards.
async fn admin<T, F>(url: &str, work: impl FnOnce(tokio_postgres::Client) -> F) -> T
where
    F: std::future::Future<Output = T>,
{
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the test database accepts a connection");
    let connection = tokio::spawn(connection);
    let answer = work(client).await;
    let _ = connection.await;
    answer
}
