//! Where SQLite and PostgreSQL differ, in one type: the URL, the migrations, the connection
//! set-up, placeholders, how audit appends are serialized, and what erasing needs afterwards.
//! Everything else in [`crate::sql`] is one SQL text for both.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// One file, one broker node (the embedded default).
    Sqlite,
    /// Several broker nodes sharing one server.
    Postgres,
}

impl Dialect {
    /// Which dialect a store URL speaks (`sqlite:…` or `postgres:…`/`postgresql:…`).
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Dialect::Postgres)
        } else {
            Err(StoreError::Corrupt { what: "store URL".into(), detail: format!("'{url}' is neither sqlite: nor postgres:") })
        }
    }

    pub fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// A connection pool with this dialect's per-connection settings.
    pub async fn connect(self, url: &str) -> Result<AnyPool, sqlx::Error> {
        match self {
            Dialect::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; the busy timeout waits out a writer.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Deleted rows (erased wrapped keys) are overwritten, not left in free pages.
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
            }
            // A database that does not answer fails a request in seconds (503 store_unavailable),
            // instead of holding it for the pool's default 30 s.
            Dialect::Postgres => {
                AnyPoolOptions::new().max_connections(16).acquire_timeout(std::time::Duration::from_secs(3)).connect(url).await
            }
        }
    }

    /// The query text for this dialect: `?` placeholders numbered (`$1`, …) for PostgreSQL.
    /// Only ever built from `'static` text, so nothing from outside reaches it (hence
    /// `AssertSqlSafe`).
    pub fn sql(self, text: &'static str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(match self {
            Dialect::Sqlite => text.to_string(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(text.len() + 8);
                let mut n = 0;
                for c in text.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        })
    }

    /// Whether audit appends must be serialized inside this process: SQLite's deferred
    /// transactions cannot wait out a concurrent writer when upgrading, so two appenders in one
    /// process would fail rather than queue. PostgreSQL locks the table instead
    /// ([`Self::append_lock_statement`]).
    pub fn serializes_in_process(self) -> bool {
        match self {
            Dialect::Sqlite => true,
            Dialect::Postgres => false,
        }
    }

    /// The statement that makes one audit appender wait for another, inside its transaction.
    pub fn append_lock_statement(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("LOCK TABLE audit_log IN EXCLUSIVE MODE"),
        }
    }

    /// Counts (as `n`) sqlx's record of applied migrations: 1 when the table exists.
    pub fn migration_record_exists_query(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Dialect::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        }
    }

    /// Whether several broker nodes may share this store (and so must elect a leader).
    pub fn shares_nodes(self) -> bool {
        match self {
            Dialect::Sqlite => false,
            Dialect::Postgres => true,
        }
    }

    /// How a change is published to the other nodes, inside the transaction that makes it.
    pub fn notify_statement(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT pg_notify($1, $2)"),
        }
    }

    /// The query for the database's own clock, shared by every node (unix seconds), where the
    /// dialect has one worth trusting over a node's: PostgreSQL. SQLite is one node's file.
    pub fn now_query(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)"),
        }
    }

    /// Records an erasure with the id of the current (deleting) transaction: on PostgreSQL a
    /// snapshot older than it may still see the deleted rows (and `VACUUM FULL` must then copy
    /// them); SQLite has no such snapshots.
    pub fn record_erasure_statement(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT INTO erasures (tenant_id, what, xid, created_at) VALUES (?, ?, 0, ?)",
            Dialect::Postgres => "INSERT INTO erasures (tenant_id, what, xid, created_at) VALUES (?, ?, txid_current(), ?)",
        }
    }

    /// What makes deleted key material leave the live database's files. SQLite: `secure_delete`
    /// overwrote the rows; checkpointing the WAL removes the log's copy of their pages (busy
    /// while a reader holds the log). PostgreSQL: the rows were overwritten with zeros before
    /// the delete, but MVCC keeps the old versions as dead tuples; `VACUUM FULL` rewrites the
    /// (small) table into a new file and removes the old one — but copies every row version
    /// that some open snapshot may still see, so it proves nothing while one older than the
    /// deleting transaction survives ([`Self::erasure_blockers`]). What backups keep is
    /// answered by the provider-held layer: see `docs/shredding.md`.
    pub fn after_erase(self) -> &'static str {
        match self {
            Dialect::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
            Dialect::Postgres => "VACUUM (FULL) wrapped_keys",
        }
    }

    /// PostgreSQL: what can still see row versions deleted by transaction `$1` — sessions of
    /// this database whose snapshot or own transaction is as old (`backend_xmin`, `backend_xid`:
    /// a `REPEATABLE READ` report, a running `pg_dump`), replication slots and standbys with
    /// `hot_standby_feedback` holding the horizon, prepared transactions — one line each, and
    /// sessions whose state this user may not read (then nothing can be proven: grant it
    /// `pg_read_all_stats`). Empty: a `VACUUM FULL` from now on leaves no copy behind.
    pub fn erasure_blockers(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(
                "WITH deleter AS (SELECT (CAST($1 AS BIGINT) % 4294967296)::text::xid AS x) \
                 SELECT 'session ' || pid || ' (' || COALESCE(application_name, '') || ', ' || COALESCE(state, '') || ')' AS what \
                   FROM pg_stat_activity, deleter \
                  WHERE datname = current_database() AND pid <> pg_backend_pid() \
                    AND ((backend_xmin IS NOT NULL AND age(backend_xmin) >= age(deleter.x)) \
                      OR (backend_xid IS NOT NULL AND age(backend_xid) >= age(deleter.x))) \
                 UNION ALL SELECT 'session ' || pid || ' (its state is hidden from this user: grant it pg_read_all_stats)' \
                   FROM pg_stat_activity WHERE datname = current_database() AND query = '<insufficient privilege>' \
                 UNION ALL SELECT 'replication slot ' || slot_name FROM pg_replication_slots, deleter \
                  WHERE xmin IS NOT NULL AND age(xmin) >= age(deleter.x) \
                 UNION ALL SELECT 'standby ' || COALESCE(application_name, '') || ' (hot_standby_feedback)' FROM pg_stat_replication, deleter \
                  WHERE backend_xmin IS NOT NULL AND age(backend_xmin) >= age(deleter.x) \
                 UNION ALL SELECT 'prepared transaction ' || gid FROM pg_prepared_xacts, deleter WHERE age(transaction) >= age(deleter.x)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_numbered_for_postgres_only() {
        assert_eq!(Dialect::Postgres.sql("a = ? AND b = ?").0, "a = $1 AND b = $2");
        assert_eq!(Dialect::Sqlite.sql("a = ? AND b = ?").0, "a = ? AND b = ?");
        assert_eq!(Dialect::of_url("postgresql://x").ok(), Some(Dialect::Postgres));
        assert!(Dialect::of_url("mysql://x").is_err());
    }
}
