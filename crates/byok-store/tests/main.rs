//! The store contract, written once and run on SQLite and on a real PostgreSQL.
//!
//! PostgreSQL comes from `BYOK_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each run works in a schema of its own and drops it. If the server cannot be reached the
//! test fails: it never skips silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod tls;

use byok_store::SqlStore;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("byok.db");
    let store = SqlStore::sqlite(&path).await.expect("sqlite");
    contract::run(&store).await;
    contract::lease(&store, false).await;
    contract::aws_identities(&store).await;
    drop(store);
    // The file is the state: a new connection sees everything.
    let again = SqlStore::sqlite(&path).await.expect("reopen");
    contract::survives_reconnect(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_postgres() {
    let base = std::env::var("BYOK_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test (set BYOK_TEST_POSTGRES_URL): {e}"));
    let schema = format!("byok_test_{}_{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000);
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = SqlStore::connect(&url).await.expect("postgres store");
    contract::run(&store).await;
    contract::lease(&store, true).await;
    contract::aws_identities(&store).await;
    // Shredding holds in the live database: the destroyed tenant's wrapped keys are in no file
    // of the table any more (checked where this machine can read the server's data directory).
    // Dirty pages reach the table's file at a checkpoint.
    sqlx::query("CHECKPOINT").execute(&mut admin).await.expect("checkpoint");
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT current_setting('data_directory') || '/' || pg_relation_filepath('{schema}.wrapped_keys') AS path"
    )))
    .fetch_one(&mut admin)
    .await
    .expect("the table's file");
    let path: String = sqlx::Row::try_get(&row, "path").expect("path");
    match std::fs::read(&path) {
        Ok(bytes) => assert!(!bytes.windows(8).any(|w| w == b"wrapped-"), "a destroyed key's bytes are still in {path}"),
        Err(e) => eprintln!("NOTE: cannot read {path} ({e}): the on-disk shredding check needs the server on this machine"),
    }

    drop(store);
    let again = SqlStore::connect(&url).await.expect("reconnect");
    contract::survives_reconnect(&again).await;
    // The open-snapshot repro: a REPEATABLE READ transaction on another table, open across a
    // destruction, keeps the erasure from being proven until it ends.
    let mut report = sqlx::AnyConnection::connect(&url).await.expect("a second connection");
    let hold = async {
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ").execute(&mut report).await.expect("begin");
        sqlx::query("SELECT count(*) FROM tickets").fetch_one(&mut report).await.expect("snapshot");
    };
    hold.await;
    let file = {
        let admin_url = base.clone();
        let schema = schema.clone();
        async move |needle: &[u8]| -> Option<bool> {
            let mut admin = sqlx::AnyConnection::connect(&admin_url).await.ok()?;
            sqlx::query("CHECKPOINT").execute(&mut admin).await.ok()?;
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT current_setting('data_directory') || '/' || pg_relation_filepath('{schema}.wrapped_keys') AS path"
            )))
            .fetch_one(&mut admin)
            .await
            .ok()?;
            let path: String = sqlx::Row::try_get(&row, "path").ok()?;
            let bytes = std::fs::read(path).ok()?;
            Some(bytes.windows(needle.len()).any(|w| w == needle))
        }
    };
    let release = async {
        sqlx::query("COMMIT").execute(&mut report).await.expect("commit");
    };
    contract::erasure_waits_for_old_snapshots(&again, std::future::ready(()), release, file).await;
    drop(again);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await.expect("drop schema");
}
