//! The store contract, written once and run on SQLite and on a real PostgreSQL: each case is a
//! test of its own on each dialect (`sqlite::tokens`, `postgres::tokens`, …) on a fresh
//! database, so the first failure does not hide the rest.
//!
//! PostgreSQL comes from `BYOK_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test works in a schema of its own and drops it. If the server cannot be reached the
//! test fails: it never skips silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod tls;

use std::path::PathBuf;

use byok_store::SqlStore;
use sqlx::Connection;

/// A fresh SQLite file.
struct Sqlite {
    store: SqlStore,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sqlite {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("byok.db");
        let store = SqlStore::sqlite(&path).await.expect("sqlite");
        Self { store, path, _dir: dir }
    }

    async fn reopen(&self) -> SqlStore {
        SqlStore::sqlite(&self.path).await.expect("reopen")
    }
}

/// A fresh, empty schema on the test server, dropped when the test ends (passed or not).
struct PgSchema {
    base: String,
    url: String,
    schema: String,
}

/// A store on a fresh schema.
struct Postgres {
    store: SqlStore,
    db: PgSchema,
}

fn postgres_base() -> String {
    std::env::var("BYOK_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn admin(base: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test (set BYOK_TEST_POSTGRES_URL): {e}"))
}

impl PgSchema {
    async fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let base = postgres_base();
        let mut admin = admin(&base).await;
        let schema = format!(
            "byok_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("create schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Self { base, url, schema }
    }
}

impl Postgres {
    async fn new() -> Self {
        let db = PgSchema::new().await;
        let store = SqlStore::connect(&db.url).await.expect("postgres store");
        Self { store, db }
    }

    async fn reopen(&self) -> SqlStore {
        SqlStore::connect(&self.db.url).await.expect("reconnect")
    }

    /// The path of a table's file in the server's data directory, after a checkpoint wrote the
    /// dirty pages to it.
    async fn table_file(&self, table: &str) -> Option<String> {
        let mut admin = sqlx::AnyConnection::connect(&self.db.base).await.ok()?;
        sqlx::query("CHECKPOINT").execute(&mut admin).await.ok()?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT current_setting('data_directory') || '/' || pg_relation_filepath('{}.{table}') AS path",
            self.db.schema
        )))
        .fetch_one(&mut admin)
        .await
        .ok()?;
        sqlx::Row::try_get(&row, "path").ok()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        // Drop runs outside any async context we may block: a thread of its own with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let mut admin = admin(&base).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!("NOTE: could not drop the test schema {}", self.schema);
        }
    }
}

/// Each named case of `contract` as a test on each dialect.
macro_rules! on_every_dialect {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::Sqlite::new().await;
                    crate::contract::$case(&db.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::Postgres::new().await;
                    crate::contract::$case(&db.store).await;
                }
            )*
        }
    };
}

on_every_dialect!(
    tenants_and_lifecycle,
    provider_keys,
    tokens,
    settings,
    alerts,
    holds,
    tickets,
    audit_chain,
    audit_views,
    tenants_by_account,
    key_changes,
    aws_identities,
    webhooks,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lease_is_always_held_by_its_one_node() {
    contract::lease(&Sqlite::new().await.store, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lease_has_one_holder_at_a_time() {
    contract::lease(&Postgres::new().await.store, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_reconnect() {
    // The file is the state: a new connection sees everything.
    let db = Sqlite::new().await;
    contract::written_before_reconnect(&db.store).await;
    contract::survives_reconnect(&db.reopen().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_reconnect() {
    let db = Postgres::new().await;
    contract::written_before_reconnect(&db.store).await;
    contract::survives_reconnect(&db.reopen().await).await;
}

/// Shredding holds in the live database: the destroyed tenant's wrapped keys are in no file of
/// the table any more (checked where this machine can read the server's data directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_destroyed_keys_leave_the_table_file() {
    let db = Postgres::new().await;
    contract::destroyed(&db.store).await;
    let path = db.table_file("wrapped_keys").await.expect("the table's file");
    match std::fs::read(&path) {
        Ok(bytes) => assert!(!bytes.windows(8).any(|w| w == b"wrapped-"), "a destroyed key's bytes are still in {path}"),
        Err(e) => eprintln!("NOTE: cannot read {path} ({e}): the on-disk shredding check needs the server on this machine"),
    }
}

/// The open-snapshot repro: a REPEATABLE READ transaction on another table, open across a
/// destruction, keeps the erasure from being proven until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_erasure_waits_for_old_snapshots() {
    let db = Postgres::new().await;
    let mut report = sqlx::AnyConnection::connect(&db.db.url).await.expect("a second connection");
    let hold = async {
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ").execute(&mut report).await.expect("begin");
        sqlx::query("SELECT count(*) FROM tickets").fetch_one(&mut report).await.expect("snapshot");
    };
    hold.await;
    let file = async |needle: &[u8]| -> Option<bool> {
        let bytes = std::fs::read(db.table_file("wrapped_keys").await?).ok()?;
        Some(bytes.windows(needle.len()).any(|w| w == needle))
    };
    let release = async {
        sqlx::query("COMMIT").execute(&mut report).await.expect("commit");
    };
    contract::erasure_waits_for_old_snapshots(&db.store, std::future::ready(()), release, file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations_on_purpose() {
    let dir = tempfile::tempdir().expect("dir");
    contract::migrations_on_purpose(&format!("sqlite://{}?mode=rwc", dir.path().join("byok.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_on_purpose() {
    let db = PgSchema::new().await;
    contract::migrations_on_purpose(&db.url).await;
}
