//! Migrations on purpose: what a database has applied, what this byok would apply, and whether
//! a node may start on it. A schema newer than this byok knows (another node was upgraded and
//! migrated) is never started on: this node's code might not write what the new one expects.
//! Pending migrations are applied at start unless the operator asked to apply them on purpose
//! (`byok serve --no-auto-migrate`, then `byok migrate up`).
//!
//! The record is sqlx's own `_sqlx_migrations` table, so the migrator and this view agree.

use sqlx::{AnyPool, Row};

use crate::StoreError;
use crate::dialect::Dialect;

/// One migration, by its number and its file's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub description: String,
}

impl std::fmt::Display for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04} {}", self.version, self.description)
    }
}

/// Where a database's schema stands against this byok.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied, and known to this byok.
    pub applied: Vec<Migration>,
    /// Known to this byok, not applied yet.
    pub pending: Vec<Migration>,
    /// Applied by a newer byok: this one does not know them.
    pub unknown: Vec<Migration>,
    /// Started and never finished (a migration that failed half-way): a person must look.
    pub failed: Vec<Migration>,
}

impl MigrationStatus {
    /// Whether this byok may serve on the schema as it is.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.failed.is_empty()
    }
}

/// Whether a node applies pending migrations when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoMigrate {
    /// Apply them (the default: a single node, or the first node of an upgrade).
    #[default]
    Yes,
    /// Refuse to start, naming them (`byok migrate up` applies them on purpose).
    No,
}

/// Why a node may not start on this schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaProblem {
    #[error(
        "the database's schema is newer than this byok knows (applied by a newer release: {}); upgrade this node's byok, \
         never start an older one on a migrated database",
        list(.0)
    )]
    Newer(Vec<Migration>),
    #[error("migrations are pending ({}); apply them with `byok migrate up` (or start without --no-auto-migrate)", list(.0))]
    Pending(Vec<Migration>),
    #[error("a migration started and did not finish ({}): restore the database from its backup or repair it by hand", list(.0))]
    Failed(Vec<Migration>),
}

fn list(migrations: &[Migration]) -> String {
    migrations.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The migrations this byok knows for a dialect.
pub fn known(dialect: Dialect) -> Vec<Migration> {
    dialect
        .migrator()
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| Migration { version: m.version, description: m.description.to_string() })
        .collect()
}

/// The newest migration this byok knows.
pub fn latest(dialect: Dialect) -> i64 {
    known(dialect).iter().map(|m| m.version).max().unwrap_or(0)
}

/// Where the database behind `pool` stands.
pub async fn status(pool: &AnyPool, dialect: Dialect) -> Result<MigrationStatus, StoreError> {
    let known = known(dialect);
    let recorded: Vec<(Migration, bool)> = if record_exists(pool, dialect).await? {
        // (Cast: the Any driver does not decode SQLite booleans.)
        sqlx::query("SELECT version, description, CAST(success AS INTEGER) AS succeeded FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                let m = Migration { version: row.try_get("version")?, description: row.try_get("description")? };
                Ok((m, row.try_get::<i64, _>("succeeded")? != 0))
            })
            .collect::<Result<_, sqlx::Error>>()?
    } else {
        Vec::new()
    };
    let mut status = MigrationStatus::default();
    for (m, success) in &recorded {
        if !success {
            status.failed.push(m.clone());
        } else if known.iter().any(|k| k.version == m.version) {
            status.applied.push(m.clone());
        } else {
            status.unknown.push(m.clone());
        }
    }
    status.pending = known.into_iter().filter(|k| !recorded.iter().any(|(m, _)| m.version == k.version)).collect();
    Ok(status)
}

/// The newest migration applied successfully (0 for none): a cheap check a readiness probe can
/// make on every call.
pub async fn newest_applied(pool: &AnyPool, dialect: Dialect) -> Result<i64, StoreError> {
    if !record_exists(pool, dialect).await? {
        return Ok(0);
    }
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS newest FROM _sqlx_migrations WHERE success").fetch_one(pool).await?;
    Ok(row.try_get("newest")?)
}

async fn record_exists(pool: &AnyPool, dialect: Dialect) -> Result<bool, StoreError> {
    let row = sqlx::query(dialect.migration_record_exists_query()).fetch_one(pool).await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Whether a node may start, applying pending migrations when `auto` says so: the problem that
/// stops it, if any.
pub(crate) async fn prepare(pool: &AnyPool, dialect: Dialect, auto: AutoMigrate) -> Result<(), StoreError> {
    let status = status(pool, dialect).await?;
    if !status.failed.is_empty() {
        return Err(SchemaProblem::Failed(status.failed).into());
    }
    if !status.unknown.is_empty() {
        return Err(SchemaProblem::Newer(status.unknown).into());
    }
    match (status.pending.is_empty(), auto) {
        (true, _) => Ok(()),
        (false, AutoMigrate::Yes) => Ok(dialect.migrator().run(pool).await?),
        (false, AutoMigrate::No) => Err(SchemaProblem::Pending(status.pending).into()),
    }
}
