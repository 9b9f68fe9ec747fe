//! The schema on purpose: migrations pending, applied, newer than this byok, or half-applied.

use byok_store::StoreError;

/// One statement on the database at `url`, beside the store (what another node, a newer
/// release or a restore would leave behind).
async fn raw(url: &str, dialect: byok_store::Dialect, text: &'static str) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("a second connection");
    sqlx::query(dialect.sql(text)).execute(&mut conn).await.unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// Migrations on purpose, from an empty database at `url`: nothing applied is all pending; a
/// node that may not migrate refuses to start and says what to run; `migrate_up` applies them
/// once; a schema a newer byok migrated keeps an already running node serving but is never
/// started on; a schema older than the running node's code makes it not ready; a half-applied
/// migration stops everything.
pub async fn migrations_on_purpose(url: &str) {
    use byok_store::prelude::*;
    use byok_store::{AutoMigrate, SchemaProblem, SqlStore};
    let empty = SqlStore::unprepared(url).await.expect("connect");
    let dialect = empty.dialect();
    let known = byok_store::migrations::known(dialect);
    let status = empty.migration_status().await.expect("status");
    assert_eq!((status.applied.len(), status.unknown.len(), status.failed.len()), (0, 0, 0), "{status:?}");
    assert_eq!(status.pending, known, "everything is pending on an empty database");
    assert!(!status.is_current());

    let refused = SqlStore::open(url, AutoMigrate::No).await.err().expect("refused");
    assert!(matches!(&refused, StoreError::Schema(SchemaProblem::Pending(p)) if *p == known), "{refused:?}");
    assert!(refused.to_string().contains("byok migrate up"), "{refused}");
    assert_eq!(empty.migration_status().await.expect("status").pending, known, "a refusal applies nothing");

    assert_eq!(empty.migrate_up().await.expect("up"), known, "what was applied");
    assert!(empty.migrate_up().await.expect("again").is_empty(), "nothing twice");
    let store = SqlStore::open(url, AutoMigrate::No).await.expect("current: it starts");
    assert!(store.migration_status().await.expect("status").is_current());
    store.ping().await.expect("ready");

    // A newer byok migrated the database: this node keeps serving, a restart of it is refused.
    raw(
        url,
        dialect,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from a newer release', TRUE, '00', 0)",
    )
    .await;
    store.ping().await.expect("a running node stays ready on a newer (additive) schema");
    store.tenants().await.expect("and serves");
    let newer = SqlStore::open(url, AutoMigrate::Yes).await.err().expect("never started on a newer schema");
    assert!(matches!(&newer, StoreError::Schema(SchemaProblem::Newer(v)) if v[0].version == 99999), "{newer:?}");
    assert!(newer.to_string().contains("newer than this byok"), "{newer}");
    assert!(matches!(store.migrate_up().await, Err(StoreError::Schema(SchemaProblem::Newer(_)))), "nor migrated from an older byok");
    assert_eq!(store.migration_status().await.expect("status").unknown.len(), 1);
    raw(url, dialect, "DELETE FROM _sqlx_migrations WHERE version = 99999").await;

    // The record says the newest migration is missing (a restore from an older backup): the
    // running node is not ready, and says why.
    raw(url, dialect, "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 1").await;
    assert!(matches!(SqlStore::open(url, AutoMigrate::Yes).await, Err(StoreError::Schema(SchemaProblem::Failed(_)))));
    assert_eq!(store.migration_status().await.expect("status").failed.len(), 1);
    raw(url, dialect, "UPDATE _sqlx_migrations SET success = TRUE WHERE version = 1").await;
    let latest = byok_store::migrations::latest(dialect);
    assert!(latest > 1);
    raw(url, dialect, "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)").await;
    let not_ready = store.ping().await.err().expect("not ready");
    assert!(matches!(&not_ready, StoreError::Schema(SchemaProblem::Pending(p)) if p[0].version == latest), "{not_ready:?}");
}
