//! [`Store`](crate::Store) over SQLite or PostgreSQL. One SQL text serves both through sqlx's `Any` driver:
//! queries are written with `?` placeholders and numbered (`$1`, …) for PostgreSQL once.

use byok_domain::{Tenant, TenantId, Transition};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::{AutoMigrate, MigrationStatus, StoreError};

mod alerts;
mod audit;
mod cluster;
mod keys;
mod tenants;
mod tickets;
mod tokens;
mod webhooks;

use keys::Erase;
use tenants::{deadline, tenant_from_row};

/// The PostgreSQL channel changes are published on.
const CHANNEL: &str = "byok_changes";

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// For the change listener's own connection.
    url: String,
    /// Serializes audit appends in this process where the dialect needs it (SQLite).
    append_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore {
    /// Connects (`sqlite://PATH?mode=rwc` or `postgres://…`) and runs the dialect's migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, AutoMigrate::Yes).await
    }

    /// Connects; starts only on a schema this byok may serve on, applying pending migrations
    /// when `auto` says so (see [`crate::migrations`]).
    pub async fn open(url: &str, auto: AutoMigrate) -> Result<Self, StoreError> {
        let store = Self::unprepared(url).await?;
        crate::migrations::prepare(&store.pool, store.dialect, auto).await?;
        Ok(store)
    }

    /// Connects without looking at or changing the schema: for `byok migrate`.
    pub async fn unprepared(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let url = &loopback_without_tls(url);
        if let Some(host) = unverified_remote_host(url) {
            tracing::warn!(
                host = %host,
                "PostgreSQL on another host without sslmode=verify-full (or verify-ca): the connection may be plaintext or to an \
                 impostor; set sslmode=verify-full&sslrootcert=CA.pem in the store URL"
            );
        }
        let pool = dialect.connect(url).await?;
        Ok(Self { pool, dialect, url: url.to_string(), append_lock: Default::default() })
    }

    /// A SQLite store in a file (created if missing).
    pub async fn sqlite(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Where this database's schema stands against this byok.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        crate::migrations::status(&self.pool, self.dialect).await
    }

    /// Applies the pending migrations (never on a newer or half-migrated schema); what was applied.
    pub async fn migrate_up(&self) -> Result<Vec<crate::Migration>, StoreError> {
        let before = self.migration_status().await?;
        if !before.failed.is_empty() {
            return Err(crate::SchemaProblem::Failed(before.failed).into());
        }
        if !before.unknown.is_empty() {
            return Err(crate::SchemaProblem::Newer(before.unknown).into());
        }
        self.dialect.migrator().run(&self.pool).await?;
        Ok(before.pending)
    }

    fn sql(&self, text: &'static str) -> sqlx::AssertSqlSafe<String> {
        self.dialect.sql(text)
    }

    /// Records, inside the deleting transaction, that wrapped keys of `id` were deleted and
    /// their erasure is still to be proven ([`crate::KeyStore::prove_erasures`]).
    async fn record_erasure(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &TenantId, what: &str) -> Result<(), sqlx::Error> {
        sqlx::query(self.sql(self.dialect.record_erasure_statement()))
            .bind(id.as_str())
            .bind(what)
            .bind(OffsetDateTime::now_utc().unix_timestamp())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn notify_tokens(&self) -> Result<(), StoreError> {
        if let Some(notify) = self.dialect.notify_statement() {
            sqlx::query(notify).bind(CHANNEL).bind("tokens:").execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// A `postgres://` URL to this machine that says nothing of TLS gets `sslmode=disable`: its
/// traffic never leaves the machine, and a TLS handshake per pooled connection only slows it
/// (`prefer`, PostgreSQL's default, would negotiate one without verifying anything). Any
/// `sslmode` given is kept; other hosts keep `prefer` (and are warned about, below).
fn loopback_without_tls(url: &str) -> String {
    let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else { return url.to_string() };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let loopback = host_port.starts_with("localhost") || host_port.starts_with("127.") || host_port.starts_with("[::1]");
    if !loopback || url.contains("sslmode=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

/// The host of a `postgres://` URL that is not this machine and is not verified by TLS
/// (`sslmode=verify-full` or `verify-ca`); `None` otherwise.
fn unverified_remote_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://"))?;
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let local = host.is_empty() || host == "localhost" || host.starts_with("127.") || host == "::1" || host.starts_with('/');
    let verified = query.split('&').any(|kv| kv == "sslmode=verify-full" || kv == "sslmode=verify-ca");
    (!local && !verified).then(|| host.to_string())
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: what.to_string(), detail: detail.to_string() }
}

fn generation(row: &AnyRow, column: &str, what: &str) -> Result<u32, StoreError> {
    u32::try_from(row.try_get::<i64, _>(column)?).map_err(|e| corrupt(what, e))
}

fn time_of(row: &AnyRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    let secs: i64 = row.try_get(column)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| corrupt(column, e))
}

/// Whether an error means another writer got there first (retry), not a failure.
fn contended(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation() || db.message().contains("locked") || db.message().contains("busy"),
        _ => false,
    }
}

fn optional_time(row: &AnyRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let secs: Option<i64> = row.try_get(column)?;
    secs.map(|s| OffsetDateTime::from_unix_timestamp(s).map_err(|e| corrupt(column, e))).transpose()
}

impl SqlStore {
    /// Runs a compare-and-set state update inside `tx` (the version, and the transition's
    /// starting state); returns the updated tenant.
    async fn cas_state(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &TenantId,
        expected: i64,
        transition: &Transition,
    ) -> Result<Tenant, StoreError> {
        let state = transition.to();
        let state_json = serde_json::to_string(&state).map_err(|e| corrupt("state", e))?;
        let updated = sqlx::query(self.sql(
            "UPDATE tenants SET state = ?, state_name = ?, deadline = ?, version = version + 1 WHERE id = ? AND version = ? AND state_name = ?",
        ))
        .bind(state_json)
        .bind(state.name())
        .bind(deadline(&state))
        .bind(id.as_str())
        .bind(expected)
        .bind(transition.from().name())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            let exists = sqlx::query(self.sql("SELECT 1 FROM tenants WHERE id = ?")).bind(id.as_str()).fetch_optional(&mut **tx).await?;
            return Err(if exists.is_some() {
                StoreError::Conflict { id: id.clone(), expected }
            } else {
                StoreError::NotFound(id.clone())
            });
        }
        let row = sqlx::query(self.sql("SELECT * FROM tenants WHERE id = ?")).bind(id.as_str()).fetch_one(&mut **tx).await?;
        // Other nodes hear of it when the transaction commits (and not if it rolls back).
        if let Some(notify) = self.dialect.notify_statement() {
            sqlx::query(notify).bind(CHANNEL).bind(format!("tenant:{id}")).execute(&mut **tx).await?;
        }
        tenant_from_row(&row)
    }
}

#[cfg(test)]
mod tests {
    use super::unverified_remote_host;

    #[test]
    fn a_remote_postgres_without_verified_tls_is_named() {
        assert_eq!(unverified_remote_host("postgres://u@db.internal:5432/byok"), Some("db.internal".into()));
        assert_eq!(unverified_remote_host("postgres://u@db.internal/byok?sslmode=require"), Some("db.internal".into()));
        assert_eq!(unverified_remote_host("postgres://u@db.internal/byok?sslmode=verify-full&sslrootcert=ca.pem"), None);
        assert_eq!(unverified_remote_host("postgres://u@127.0.0.1:5432/test"), None);
        assert_eq!(unverified_remote_host("postgresql://u@[::1]:5432/test"), None);
        assert_eq!(unverified_remote_host("sqlite://byok.db?mode=rwc"), None);
    }

    #[test]
    fn loopback_without_a_tls_setting_goes_without_tls() {
        use super::loopback_without_tls as f;
        assert_eq!(f("postgres://u@127.0.0.1:5432/test"), "postgres://u@127.0.0.1:5432/test?sslmode=disable");
        assert_eq!(f("postgres://u@localhost/test?options=x"), "postgres://u@localhost/test?options=x&sslmode=disable");
        assert_eq!(f("postgres://u@localhost/test?sslmode=require"), "postgres://u@localhost/test?sslmode=require", "kept as given");
        assert_eq!(f("postgres://u@db.internal/test"), "postgres://u@db.internal/test", "another host: untouched");
        assert_eq!(f("sqlite://byok.db?mode=rwc"), "sqlite://byok.db?mode=rwc");
    }
}
