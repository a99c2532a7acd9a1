//! The PostgreSQL test database: `TOKEN_TEST_POSTGRES_URL`, set by `.ci/postgres.sh`, which
//! starts a throwaway server on 127.0.0.1. Each test works in a schema of its own.
//!
//! Without a URL a test skips with a visible message, except in CI (`CI=true`, or
//! `TOKEN_TEST_REQUIRE_POSTGRES=1` as `.ci/run` sets), where it fails: CI cannot pass by not
//! running them. A URL that leads nowhere fails the test everywhere.

use std::time::Duration;

use time::OffsetDateTime;
use token_core::postgres::PostgresDatabase;

/// The test database's URL, or `None` (with a message on stderr) when `test` should skip.
pub fn test_url(test: &str) -> Option<String> {
    match std::env::var("TOKEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("TOKEN_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1");
            let ci = matches!(std::env::var("CI").as_deref(), Ok("true" | "1"));
            if required || ci {
                panic!(
                    "{test}: TOKEN_TEST_POSTGRES_URL is not set, and PostgreSQL tests must run \
                     here (CI={:?}, TOKEN_TEST_REQUIRE_POSTGRES={:?}); see .ci/postgres.sh",
                    std::env::var("CI").ok(),
                    std::env::var("TOKEN_TEST_REQUIRE_POSTGRES").ok()
                );
            }
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("{test}: skipped: TOKEN_TEST_POSTGRES_URL not set\n").as_bytes(),
            );
            None
        }
    }
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
