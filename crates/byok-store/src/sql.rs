//! [`Store`] over SQLite or PostgreSQL. One SQL text serves both through sqlx's `Any` driver:
//! queries are written with `?` placeholders and numbered (`$1`, …) for PostgreSQL once.

use std::str::FromStr;

use async_trait::async_trait;
use byok_domain::{
    AlertKind, Author, Event, KeyGenerations, Region, Tenant, TenantBinding, TenantId, TenantState, TicketStatus, Transition,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::{Alert, ErasureProof, Hold, Notice, PendingErasure, ProviderKey, TenantCensus, TokenOrigin, TokenRecord, token_id};
use crate::{AuditEntry, Comment, KeyChange, Seal, ServiceReach, Store, StoreError, Ticket, TokenScope, WrappedKey};

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
        dialect.migrator().run(&pool).await?;
        Ok(Self { pool, dialect, url: url.to_string(), append_lock: Default::default() })
    }

    /// A SQLite store in a file (created if missing).
    pub async fn sqlite(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn sql(&self, text: &'static str) -> sqlx::AssertSqlSafe<String> {
        self.dialect.sql(text)
    }

    /// Records, inside the deleting transaction, that wrapped keys of `id` were deleted and
    /// their erasure is still to be proven ([`Store::prove_erasures`]).
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

fn provider_key_from_row(row: &AnyRow) -> Result<ProviderKey, StoreError> {
    let region: String = row.try_get("region")?;
    let deletion_date: Option<i64> = row.try_get("deletion_date")?;
    Ok(ProviderKey {
        region: region.parse().map_err(|e| corrupt("provider key", e))?,
        key_arn: row.try_get("key_arn")?,
        deletion_date: deletion_date.map(OffsetDateTime::from_unix_timestamp).transpose().map_err(|e| corrupt("provider key", e))?,
    })
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: what.to_string(), detail: detail.to_string() }
}

fn deadline(state: &TenantState) -> Option<i64> {
    match state {
        TenantState::Revoked { deadline, .. } => Some(deadline.unix_timestamp()),
        TenantState::Onboarding | TenantState::Active | TenantState::Destroyed { .. } => None,
    }
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    let id: String = row.try_get("id")?;
    let what = format!("tenant {id}");
    let created: i64 = row.try_get("created_at")?;
    Ok(Tenant {
        id: TenantId::from_str(&id).map_err(|e| corrupt(&what, e))?,
        location: row.try_get("location")?,
        binding: serde_json::from_str(&row.try_get::<String, _>("binding")?).map_err(|e| corrupt(&what, e))?,
        state: serde_json::from_str(&row.try_get::<String, _>("state")?).map_err(|e| corrupt(&what, e))?,
        keys: KeyGenerations {
            current: generation(row, "key_generation", &what)?,
            min_decryption: generation(row, "min_generation", &what)?,
            kept_from: generation(row, "keys_from", &what)?,
            rotated_at: OffsetDateTime::from_unix_timestamp(row.try_get::<Option<i64>, _>("key_rotated_at")?.unwrap_or(created))
                .map_err(|e| corrupt(&what, e))?,
        },
        version: row.try_get("version")?,
        created_at: OffsetDateTime::from_unix_timestamp(created).map_err(|e| corrupt(&what, e))?,
    })
}

/// Which of a tenant's wrapped keys to erase.
#[derive(Debug, Clone, Copy)]
enum Erase<'a> {
    All,
    /// Every generation below this one.
    Below(u32),
    /// Every generation's key in this region.
    Region(&'a Region),
}

fn generation(row: &AnyRow, column: &str, what: &str) -> Result<u32, StoreError> {
    u32::try_from(row.try_get::<i64, _>(column)?).map_err(|e| corrupt(what, e))
}

fn time_of(row: &AnyRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    let secs: i64 = row.try_get(column)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| corrupt(column, e))
}

fn ticket_from_row(row: &AnyRow) -> Result<Ticket, StoreError> {
    Ok(Ticket {
        id: row.try_get("id")?,
        tenant: row.try_get::<String, _>("tenant_id")?.parse().map_err(|e| corrupt("ticket", e))?,
        title: row.try_get("title")?,
        status: row.try_get::<String, _>("status")?.parse().map_err(|e| corrupt("ticket", e))?,
        reminders_sent: row.try_get("reminders_sent")?,
        created_at: time_of(row, "created_at")?,
        updated_at: time_of(row, "updated_at")?,
    })
}

fn comment_from_row(row: &AnyRow) -> Result<Comment, StoreError> {
    Ok(Comment {
        id: row.try_get("id")?,
        author: row.try_get::<String, _>("author")?.parse().map_err(|e| corrupt("comment", e))?,
        body: row.try_get("body")?,
        created_at: time_of(row, "created_at")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        tenant: row.try_get("tenant_id")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        reason: row.try_get("reason")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
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

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let hash: String = row.try_get("hash")?;
    let scope: String = row.try_get("scope")?;
    let tenant: Option<String> = row.try_get("tenant_id")?;
    let reach: Option<String> = row.try_get("service_tenants")?;
    let scope = match (scope.as_str(), tenant) {
        ("operator", _) => TokenScope::Operator,
        ("service", _) => TokenScope::Service(match reach {
            None => ServiceReach::AllTenants,
            Some(list) => {
                ServiceReach::Tenants(list.split(',').map(|id| id.parse().map_err(|e| corrupt("token", e))).collect::<Result<_, _>>()?)
            }
        }),
        ("tenant", Some(id)) => TokenScope::TenantAdmin(id.parse().map_err(|e| corrupt("token", e))?),
        (other, _) => return Err(corrupt("token", format!("unknown scope '{other}'"))),
    };
    let origin = match row.try_get::<String, _>("origin")?.as_str() {
        "configured" => TokenOrigin::Configured,
        "issued" => TokenOrigin::Issued,
        other => return Err(corrupt("token", format!("unknown origin '{other}'"))),
    };
    Ok(TokenRecord {
        id: token_id(&hash),
        scope,
        origin,
        created_at: time_of(row, "created_at")?,
        expires_at: optional_time(row, "expires_at")?,
        revoked_at: optional_time(row, "revoked_at")?,
    })
}

fn origin_name(origin: TokenOrigin) -> &'static str {
    match origin {
        TokenOrigin::Configured => "configured",
        TokenOrigin::Issued => "issued",
    }
}

fn alert_from_row(row: &AnyRow) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: row.try_get("id")?,
        kind: row.try_get::<String, _>("kind")?.parse().map_err(|e| corrupt("alert", e))?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        status: row.try_get::<String, _>("status")?.parse().map_err(|e| corrupt("alert", e))?,
        opened_at: time_of(row, "opened_at")?,
        updated_at: time_of(row, "updated_at")?,
    })
}

fn hold_from_row(row: &AnyRow) -> Result<Hold, StoreError> {
    Ok(Hold {
        tenant: row.try_get::<String, _>("tenant_id")?.parse().map_err(|e| corrupt("hold", e))?,
        detected_at: time_of(row, "detected_at")?,
        detail: row.try_get("detail")?,
        created_at: time_of(row, "created_at")?,
    })
}

fn scope_parts(scope: &TokenScope) -> (&'static str, Option<String>) {
    match scope {
        TokenScope::Operator => ("operator", None),
        TokenScope::Service(_) => ("service", None),
        TokenScope::TenantAdmin(id) => ("tenant", Some(id.to_string())),
    }
}

/// A service token's tenants as stored (`None`: every tenant; not a service token: `None`).
fn service_tenants(scope: &TokenScope) -> Option<String> {
    match scope {
        TokenScope::Service(ServiceReach::Tenants(tenants)) => Some(tenants.iter().map(TenantId::as_str).collect::<Vec<_>>().join(",")),
        TokenScope::Service(ServiceReach::AllTenants) | TokenScope::Operator | TokenScope::TenantAdmin(_) => None,
    }
}

impl SqlStore {
    /// One appender at a time: the in-process lock where the dialect needs it; otherwise the
    /// dialect's table lock inside the transaction.
    async fn append_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if self.dialect.serializes_in_process() { Some(self.append_lock.lock().await) } else { None }
    }

    /// Chains and writes an audit entry inside `tx` (the caller holds [`Self::append_guard`]).
    async fn append_in(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, seal: Seal<'_>) -> Result<AuditEntry, sqlx::Error> {
        if let Some(lock) = self.dialect.append_lock_statement() {
            sqlx::query(lock).execute(&mut **tx).await?;
        }
        let mut last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut **tx).await?;
        if last.is_none() {
            // Everything was pruned: the chain goes on from the checkpoint.
            last = sqlx::query("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetch_optional(&mut **tx).await?;
        }
        let (seq, prev): (i64, String) = match last {
            Some(row) => (row.try_get::<i64, _>("seq")? + 1, row.try_get("hash")?),
            None => (1, String::new()),
        };
        let entry = seal(seq, &prev);
        sqlx::query(
            self.sql("INSERT INTO audit_log (seq, tenant_id, at, kind, reason, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(entry.seq)
        .bind(entry.tenant.clone())
        .bind(entry.at)
        .bind(entry.kind.clone())
        .bind(entry.reason.clone())
        .bind(entry.detail.clone())
        .bind(entry.prev_hash.clone())
        .bind(entry.hash.clone())
        .execute(&mut **tx)
        .await?;
        Ok(entry)
    }

    async fn insert_keys(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &TenantId, keys: &[WrappedKey]) -> Result<(), sqlx::Error> {
        for key in keys {
            sqlx::query(self.sql("INSERT INTO wrapped_keys (tenant_id, region, key_arn, generation, wrapped) VALUES (?, ?, ?, ?, ?)"))
                .bind(id.as_str())
                .bind(key.region.as_str())
                .bind(key.key_arn.as_str())
                .bind(i64::from(key.generation))
                .bind(key.wrapped.clone())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Overwrites, then deletes, the tenant's wrapped keys that `which` selects: the bytes are
    /// zeros in the row versions that remain until the rewrite. Returns how many went.
    async fn erase_keys(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &TenantId, which: Erase<'_>) -> Result<u64, sqlx::Error> {
        const ZEROS: [u8; 184] = [0; 184];
        let (update, delete) = match which {
            Erase::All => {
                ("UPDATE wrapped_keys SET wrapped = ?, key_arn = '' WHERE tenant_id = ?", "DELETE FROM wrapped_keys WHERE tenant_id = ?")
            }
            Erase::Below(_) => (
                "UPDATE wrapped_keys SET wrapped = ?, key_arn = '' WHERE tenant_id = ? AND generation < ?",
                "DELETE FROM wrapped_keys WHERE tenant_id = ? AND generation < ?",
            ),
            Erase::Region(_) => (
                "UPDATE wrapped_keys SET wrapped = ?, key_arn = '' WHERE tenant_id = ? AND region = ?",
                "DELETE FROM wrapped_keys WHERE tenant_id = ? AND region = ?",
            ),
        };
        let bind = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| match which {
            Erase::All => q,
            Erase::Below(g) => q.bind(i64::from(g)),
            Erase::Region(r) => q.bind(r.as_str().to_string()),
        };
        bind(sqlx::query(self.sql(update)).bind(ZEROS.to_vec()).bind(id.to_string())).execute(&mut **tx).await?;
        Ok(bind(sqlx::query(self.sql(delete)).bind(id.to_string())).execute(&mut **tx).await?.rows_affected())
    }

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

#[async_trait]
impl Store for SqlStore {
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let binding = serde_json::to_string(&tenant.binding).map_err(|e| corrupt("binding", e))?;
        let state = serde_json::to_string(&tenant.state).map_err(|e| corrupt("state", e))?;
        let result = sqlx::query(self.sql(
            "INSERT INTO tenants (id, location, binding, state, state_name, deadline, version, created_at, account_id, key_generation, min_generation, keys_from, key_rotated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(tenant.id.as_str())
        .bind(&tenant.location)
        .bind(binding)
        .bind(state)
        .bind(tenant.state.name())
        .bind(deadline(&tenant.state))
        .bind(tenant.version)
        .bind(tenant.created_at.unix_timestamp())
        .bind(tenant.binding.account.as_str())
        .bind(i64::from(tenant.keys.current))
        .bind(i64::from(tenant.keys.min_decryption))
        .bind(i64::from(tenant.keys.kept_from))
        .bind(tenant.keys.rotated_at.unix_timestamp())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::AlreadyExists(tenant.id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(self.sql("SELECT * FROM tenants WHERE id = ?")).bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn tenants_in_account(&self, account: &byok_domain::AccountId) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT * FROM tenants WHERE account_id = ? ORDER BY id"))
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn inactive_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM tenants WHERE state_name <> 'active' ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(|row| row.try_get::<String, _>("id")?.parse().map_err(|e| corrupt("tenant id", e))).collect()
    }

    async fn set_state(&self, id: &TenantId, expected: i64, transition: &Transition, audit: Seal<'_>) -> Result<Tenant, StoreError> {
        match transition.event() {
            Event::RevocationDetected { .. } | Event::HoldReleased { .. } | Event::Restored { .. } => {}
            Event::Verified | Event::DeadlinePassed { .. } => {
                return Err(StoreError::WrongTransition { method: "set_state", event: transition.event().name() });
            }
        }
        let _guard = self.append_guard().await;
        let mut tx = self.pool.begin().await?;
        let tenant = self.cas_state(&mut tx, id, expected, transition).await?;
        self.append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(tenant)
    }

    async fn activate(
        &self,
        id: &TenantId,
        expected: i64,
        binding: &TenantBinding,
        keys: &[WrappedKey],
        transition: &Transition,
        audit: Seal<'_>,
    ) -> Result<Tenant, StoreError> {
        if transition.event() != Event::Verified {
            return Err(StoreError::WrongTransition { method: "activate", event: transition.event().name() });
        }
        let binding_json = serde_json::to_string(binding).map_err(|e| corrupt("binding", e))?;
        let _guard = self.append_guard().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(self.sql("UPDATE tenants SET binding = ?, account_id = ? WHERE id = ? AND version = ?"))
            .bind(binding_json)
            .bind(binding.account.as_str())
            .bind(id.as_str())
            .bind(expected)
            .execute(&mut *tx)
            .await?;
        let mut tenant = self.cas_state(&mut tx, id, expected, transition).await?;
        tenant.binding = binding.clone();
        sqlx::query(self.sql("DELETE FROM wrapped_keys WHERE tenant_id = ?")).bind(id.as_str()).execute(&mut *tx).await?;
        self.insert_keys(&mut tx, id, keys).await?;
        self.append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(tenant)
    }

    async fn destroy(&self, id: &TenantId, expected: i64, transition: &Transition, audit: Seal<'_>) -> Result<Tenant, StoreError> {
        if !matches!(transition.event(), Event::DeadlinePassed { .. }) {
            return Err(StoreError::WrongTransition { method: "destroy", event: transition.event().name() });
        }
        let guard = self.append_guard().await;
        let mut tx = self.pool.begin().await?;
        let tenant = self.cas_state(&mut tx, id, expected, transition).await?;
        self.erase_keys(&mut tx, id, Erase::All).await?;
        self.record_erasure(&mut tx, id, "destroyed").await?;
        self.append_in(&mut tx, audit).await?;
        tx.commit().await?;
        drop(guard);
        Ok(tenant)
    }

    async fn wrapped_keys(&self, id: &TenantId) -> Result<Vec<WrappedKey>, StoreError> {
        let rows = sqlx::query(
            self.sql("SELECT region, key_arn, generation, wrapped FROM wrapped_keys WHERE tenant_id = ? ORDER BY generation, region"),
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let what = format!("wrapped key of {id}");
                Ok(WrappedKey {
                    region: row.try_get::<String, _>("region")?.parse().map_err(|e| corrupt(&what, e))?,
                    key_arn: row.try_get::<String, _>("key_arn")?.parse().map_err(|e| corrupt(&what, e))?,
                    generation: u32::try_from(row.try_get::<i64, _>("generation")?).map_err(|e| corrupt(&what, e))?,
                    wrapped: row.try_get("wrapped")?,
                })
            })
            .collect()
    }

    async fn change_keys(
        &self,
        id: &TenantId,
        expected: i64,
        generations: &KeyGenerations,
        change: KeyChange<'_>,
        audit: Seal<'_>,
    ) -> Result<Tenant, StoreError> {
        let guard = self.append_guard().await;
        let mut tx = self.pool.begin().await?;
        let binding = match change {
            KeyChange::Rekey { binding, .. } => Some(serde_json::to_string(binding).map_err(|e| corrupt("binding", e))?),
            _ => None,
        };
        let updated = sqlx::query(self.sql(
            "UPDATE tenants SET key_generation = ?, min_generation = ?, keys_from = ?, key_rotated_at = ?, \
             binding = COALESCE(?, binding), version = version + 1 WHERE id = ? AND version = ? AND state_name = 'active'",
        ))
        .bind(i64::from(generations.current))
        .bind(i64::from(generations.min_decryption))
        .bind(i64::from(generations.kept_from))
        .bind(generations.rotated_at.unix_timestamp())
        .bind(binding)
        .bind(id.as_str())
        .bind(expected)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let exists = sqlx::query(self.sql("SELECT 1 FROM tenants WHERE id = ?")).bind(id.as_str()).fetch_optional(&mut *tx).await?;
            return Err(if exists.is_some() {
                StoreError::Conflict { id: id.clone(), expected }
            } else {
                StoreError::NotFound(id.clone())
            });
        }
        match change {
            KeyChange::Rotate { keys } => self.insert_keys(&mut tx, id, keys).await?,
            KeyChange::Retire => {}
            KeyChange::Shred => {
                if self.erase_keys(&mut tx, id, Erase::Below(generations.kept_from)).await? > 0 {
                    self.record_erasure(&mut tx, id, "shredded").await?;
                }
            }
            KeyChange::Rekey { region, keys, .. } => {
                if self.erase_keys(&mut tx, id, Erase::Region(region)).await? > 0 {
                    self.record_erasure(&mut tx, id, "rekeyed").await?;
                }
                self.insert_keys(&mut tx, id, keys).await?;
            }
        }
        let row = sqlx::query(self.sql("SELECT * FROM tenants WHERE id = ?")).bind(id.as_str()).fetch_one(&mut *tx).await?;
        if let Some(notify) = self.dialect.notify_statement() {
            sqlx::query(notify).bind(CHANNEL).bind(format!("tenant:{id}")).execute(&mut *tx).await?;
        }
        self.append_in(&mut tx, audit).await?;
        tx.commit().await?;
        drop(guard);
        tenant_from_row(&row)
    }

    async fn put_token(
        &self,
        hash: &str,
        scope: &TokenScope,
        origin: TokenOrigin,
        at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<TokenRecord, StoreError> {
        let (kind, tenant) = scope_parts(scope);
        sqlx::query(self.sql(
            "INSERT INTO tokens (hash, scope, tenant_id, created_at, expires_at, origin, service_tenants) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(hash)
        .bind(kind)
        .bind(tenant)
        .bind(at.unix_timestamp())
        .bind(expires_at.map(OffsetDateTime::unix_timestamp))
        .bind(origin_name(origin))
        .bind(service_tenants(scope))
        .execute(&self.pool)
        .await?;
        Ok(TokenRecord { id: token_id(hash), scope: scope.clone(), origin, created_at: at, expires_at, revoked_at: None })
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(self.sql("SELECT * FROM tokens WHERE hash = ?")).bind(hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at DESC, hash").fetch_all(&self.pool).await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<Notice>> {
        if !self.dialect.shares_nodes() {
            return None;
        }
        let url = self.url.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "cannot LISTEN for changes; retrying");
                        } else {
                            // Anything missed while (re)connecting is caught by the 1 s poll.
                            if tx.send(Notice::Resync).await.is_err() {
                                return;
                            }
                            loop {
                                match listener.recv().await {
                                    Ok(n) => {
                                        let notice = match n.payload().split_once(':') {
                                            Some(("tenant", id)) => id.parse().map(Notice::Tenant).unwrap_or(Notice::Resync),
                                            Some(("tokens", _)) => Notice::Tokens,
                                            _ => Notice::Resync,
                                        };
                                        if tx.send(notice).await.is_err() {
                                            return;
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "change notifications interrupted; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect to listen for changes; retrying"),
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        Some(rx)
    }

    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let pattern = format!("{id}%");
        let done = sqlx::query(self.sql("UPDATE tokens SET revoked_at = ? WHERE hash LIKE ? AND revoked_at IS NULL"))
            .bind(at.unix_timestamp())
            .bind(pattern)
            .execute(&self.pool)
            .await?;
        self.notify_tokens().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_tokens_like(
        &self,
        scope: &TokenScope,
        origin: TokenOrigin,
        keep: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let (kind, tenant) = scope_parts(scope);
        let done = sqlx::query(self.sql(
            "UPDATE tokens SET revoked_at = ? WHERE scope = ? AND COALESCE(tenant_id, '') = ? AND COALESCE(service_tenants, '') = ? \
             AND origin = ? AND hash <> ? AND revoked_at IS NULL",
        ))
        .bind(at.unix_timestamp())
        .bind(kind)
        .bind(tenant.unwrap_or_default())
        .bind(service_tenants(scope).unwrap_or_default())
        .bind(origin_name(origin))
        .bind(keep.unwrap_or_default())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            self.notify_tokens().await?;
        }
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn open_alert(&self, kind: AlertKind, title: &str, body: &str, at: OffsetDateTime) -> Result<Option<Alert>, StoreError> {
        let inserted = sqlx::query(
            self.sql("INSERT INTO alerts (kind, title, body, status, opened_at, updated_at) VALUES (?, ?, ?, 'open', ?, ?) RETURNING *"),
        )
        .bind(kind.as_str())
        .bind(title)
        .bind(body)
        .bind(at.unix_timestamp())
        .bind(at.unix_timestamp())
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(row) => Ok(Some(alert_from_row(&row)?)),
            // The unique index: one is open already.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn resolve_alert(&self, kind: AlertKind, at: OffsetDateTime) -> Result<Option<Alert>, StoreError> {
        let row =
            sqlx::query(self.sql("UPDATE alerts SET status = 'resolved', updated_at = ? WHERE kind = ? AND status = 'open' RETURNING *"))
                .bind(at.unix_timestamp())
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    async fn alerts(&self, open_only: bool) -> Result<Vec<Alert>, StoreError> {
        let rows = if open_only {
            sqlx::query("SELECT * FROM alerts WHERE status = 'open' ORDER BY id DESC").fetch_all(&self.pool).await?
        } else {
            sqlx::query("SELECT * FROM alerts ORDER BY id DESC").fetch_all(&self.pool).await?
        };
        rows.iter().map(alert_from_row).collect()
    }

    async fn prove_erasures(&self) -> Result<ErasureProof, StoreError> {
        let rows = sqlx::query("SELECT id, tenant_id, what, xid FROM erasures ORDER BY id").fetch_all(&self.pool).await?;
        let mut pending = Vec::new();
        let (mut last, mut newest_xid) = (0i64, 0i64);
        for row in &rows {
            let tenant: String = row.try_get("tenant_id")?;
            pending.push(PendingErasure { tenant: tenant.parse().map_err(|e| corrupt("erasure", e))?, what: row.try_get("what")? });
            last = last.max(row.try_get("id")?);
            newest_xid = newest_xid.max(row.try_get("xid")?);
        }
        if pending.is_empty() {
            return Ok(ErasureProof::default());
        }
        let unproven = |reason: String| Ok(ErasureProof { proven: Vec::new(), pending: pending.clone(), reason: Some(reason) });
        // PostgreSQL: nothing may still see the deleted versions, or VACUUM FULL copies them.
        let blockers = |pool: &sqlx::AnyPool| {
            let pool = pool.clone();
            async move {
                match self.dialect.erasure_blockers() {
                    None => Ok::<Vec<String>, sqlx::Error>(Vec::new()),
                    Some(query) => {
                        sqlx::query(query).bind(newest_xid).fetch_all(&pool).await?.iter().map(|r| r.try_get::<String, _>("what")).collect()
                    }
                }
            }
        };
        let before = blockers(&self.pool).await?;
        if !before.is_empty() {
            return unproven(format!("older snapshots can still see the deleted keys: {}", before.join("; ")));
        }
        let answer = sqlx::query(self.dialect.after_erase()).fetch_all(&self.pool).await?;
        // wal_checkpoint answers (busy, log frames, checkpointed frames); VACUUM nothing.
        if answer.first().and_then(|r| r.try_get::<i64, _>(0).ok()).unwrap_or(0) != 0 {
            return unproven(
                "a reader holds SQLite's write-ahead log: its copy of the erased pages stays until a checkpoint completes".into(),
            );
        }
        let after = blockers(&self.pool).await?;
        if !after.is_empty() {
            return unproven(format!("a snapshot older than the erasure appeared during the rewrite: {}", after.join("; ")));
        }
        sqlx::query(self.sql("DELETE FROM erasures WHERE id <= ?")).bind(last).execute(&self.pool).await?;
        Ok(ErasureProof { proven: pending, pending: Vec::new(), reason: None })
    }

    async fn provider_key(&self, tenant: &TenantId, region: &Region) -> Result<Option<ProviderKey>, StoreError> {
        let row = sqlx::query(self.sql("SELECT region, key_arn, deletion_date FROM provider_keys WHERE tenant_id = ? AND region = ?"))
            .bind(tenant.as_str())
            .bind(region.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider_key_from_row).transpose()
    }

    async fn add_provider_key(
        &self,
        tenant: &TenantId,
        region: &Region,
        key_arn: &str,
        at: OffsetDateTime,
    ) -> Result<ProviderKey, StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO provider_keys (tenant_id, region, key_arn, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, region) DO NOTHING",
        ))
        .bind(tenant.as_str())
        .bind(region.as_str())
        .bind(key_arn)
        .bind(at.unix_timestamp())
        .execute(&self.pool)
        .await?;
        self.provider_key(tenant, region)
            .await?
            .ok_or_else(|| corrupt("provider key", format!("{tenant} {region} vanished after it was written")))
    }

    async fn provider_keys_to_destroy(&self) -> Result<Vec<(TenantId, ProviderKey)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.tenant_id, p.region, p.key_arn, p.deletion_date FROM provider_keys p JOIN tenants t ON t.id = p.tenant_id \
             WHERE t.state_name = 'destroyed' AND p.deletion_date IS NULL ORDER BY p.tenant_id, p.region",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let tenant: String = row.try_get("tenant_id")?;
                Ok((tenant.parse().map_err(|e| corrupt("provider key", e))?, provider_key_from_row(row)?))
            })
            .collect()
    }

    async fn provider_key_destroyed(&self, tenant: &TenantId, region: &Region, deletion_date: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(self.sql("UPDATE provider_keys SET deletion_date = ? WHERE tenant_id = ? AND region = ?"))
            .bind(deletion_date.unix_timestamp())
            .bind(tenant.as_str())
            .bind(region.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn tenant_census(&self) -> Result<TenantCensus, StoreError> {
        let rows = sqlx::query("SELECT state_name, COUNT(*) AS n, MIN(deadline) AS next FROM tenants GROUP BY state_name")
            .fetch_all(&self.pool)
            .await?;
        let mut census = TenantCensus::default();
        for row in &rows {
            let state: String = row.try_get("state_name")?;
            census.by_state.insert(state.clone(), row.try_get("n")?);
            if state == "revoked" {
                let next: Option<i64> = row.try_get("next")?;
                census.next_deadline = next.map(OffsetDateTime::from_unix_timestamp).transpose().map_err(|e| corrupt("deadline", e))?;
            }
        }
        Ok(census)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(self.sql("SELECT value FROM cluster_settings WHERE name = ?")).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn setting_or_insert(&self, name: &str, value: &str, at: OffsetDateTime) -> Result<String, StoreError> {
        sqlx::query(self.sql("INSERT INTO cluster_settings (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"))
            .bind(name)
            .bind(value)
            .bind(at.unix_timestamp())
            .execute(&self.pool)
            .await?;
        self.setting(name).await?.ok_or_else(|| corrupt("cluster setting", format!("{name} vanished after it was written")))
    }

    async fn hold(&self, hold: &Hold) -> Result<bool, StoreError> {
        let inserted = sqlx::query(self.sql("INSERT INTO holds (tenant_id, detected_at, detail, created_at) VALUES (?, ?, ?, ?)"))
            .bind(hold.tenant.as_str())
            .bind(hold.detected_at.unix_timestamp())
            .bind(&hold.detail)
            .bind(hold.created_at.unix_timestamp())
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let rows = sqlx::query("SELECT * FROM holds ORDER BY detected_at, tenant_id").fetch_all(&self.pool).await?;
        rows.iter().map(hold_from_row).collect()
    }

    async fn remove_hold(&self, tenant: &TenantId) -> Result<Option<Hold>, StoreError> {
        let row = sqlx::query(self.sql("DELETE FROM holds WHERE tenant_id = ? RETURNING *"))
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(hold_from_row).transpose()
    }

    async fn acquire_lease(&self, holder: &str, ttl: std::time::Duration) -> Result<Option<OffsetDateTime>, StoreError> {
        if !self.dialect.shares_nodes() {
            return Ok(Some(OffsetDateTime::now_utc() + ttl));
        }
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, valid_until) VALUES ('leader', $1, now() + make_interval(secs => CAST($2 AS DOUBLE PRECISION))) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, valid_until = EXCLUDED.valid_until \
             WHERE leases.holder = EXCLUDED.holder OR leases.valid_until < now() \
             RETURNING CAST(EXTRACT(EPOCH FROM valid_until) * 1000 AS BIGINT) AS until_ms",
        )
        .bind(holder)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let ms: i64 = r.try_get("until_ms")?;
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| corrupt("lease", e))
        })
        .transpose()
    }

    async fn lease_holder(&self) -> Result<Option<(String, OffsetDateTime)>, StoreError> {
        if !self.dialect.shares_nodes() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT holder, CAST(EXTRACT(EPOCH FROM valid_until) * 1000 AS BIGINT) AS until_ms FROM leases WHERE name = 'leader' AND valid_until > now()",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let ms: i64 = r.try_get("until_ms")?;
            let until = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| corrupt("lease", e))?;
            Ok((r.try_get::<String, _>("holder")?, until))
        })
        .transpose()
    }

    async fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
        if self.dialect.shares_nodes() {
            sqlx::query("DELETE FROM leases WHERE name = 'leader' AND holder = $1").bind(holder).execute(&self.pool).await?;
        }
        Ok(())
    }

    async fn now(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let Some(query) = self.dialect.now_query() else { return Ok(None) };
        let row = sqlx::query(query).fetch_one(&self.pool).await?;
        let secs: i64 = row.try_get(0)?;
        Ok(Some(OffsetDateTime::from_unix_timestamp(secs).map_err(|e| corrupt("the database clock", e))?))
    }

    async fn open_ticket(&self, tenant: &TenantId, title: &str, body: &str, at: OffsetDateTime) -> Result<Ticket, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(self.sql(
            "INSERT INTO tickets (tenant_id, title, status, reminders_sent, created_at, updated_at) VALUES (?, ?, 'open', 0, ?, ?) RETURNING *",
        ))
        .bind(tenant.as_str())
        .bind(title)
        .bind(at.unix_timestamp())
        .bind(at.unix_timestamp())
        .fetch_one(&mut *tx)
        .await;
        let row = match row {
            Ok(row) => row,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(StoreError::TicketExists(tenant.clone())),
            Err(e) => return Err(e.into()),
        };
        let ticket = ticket_from_row(&row)?;
        sqlx::query(self.sql("INSERT INTO ticket_comments (ticket_id, author, body, created_at) VALUES (?, 'byok', ?, ?)"))
            .bind(ticket.id)
            .bind(body)
            .bind(at.unix_timestamp())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ticket)
    }

    async fn tickets(&self, tenant: Option<&TenantId>) -> Result<Vec<Ticket>, StoreError> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(self.sql("SELECT * FROM tickets WHERE tenant_id = ? ORDER BY id DESC"))
                    .bind(t.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query("SELECT * FROM tickets ORDER BY id DESC").fetch_all(&self.pool).await?,
        };
        rows.iter().map(ticket_from_row).collect()
    }

    async fn ticket(&self, id: i64) -> Result<Option<(Ticket, Vec<Comment>)>, StoreError> {
        let Some(row) = sqlx::query(self.sql("SELECT * FROM tickets WHERE id = ?")).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let comments =
            sqlx::query(self.sql("SELECT * FROM ticket_comments WHERE ticket_id = ? ORDER BY id")).bind(id).fetch_all(&self.pool).await?;
        Ok(Some((ticket_from_row(&row)?, comments.iter().map(comment_from_row).collect::<Result<_, _>>()?)))
    }

    async fn add_comment(&self, ticket: i64, author: Author, body: &str, at: OffsetDateTime) -> Result<Comment, StoreError> {
        let mut tx = self.pool.begin().await?;
        let touched = sqlx::query(self.sql("UPDATE tickets SET updated_at = ? WHERE id = ?"))
            .bind(at.unix_timestamp())
            .bind(ticket)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NoTicket(ticket));
        }
        let row =
            sqlx::query(self.sql("INSERT INTO ticket_comments (ticket_id, author, body, created_at) VALUES (?, ?, ?, ?) RETURNING *"))
                .bind(ticket)
                .bind(author.as_str())
                .bind(body)
                .bind(at.unix_timestamp())
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        comment_from_row(&row)
    }

    async fn append_audit(&self, seal: Seal<'_>) -> Result<AuditEntry, StoreError> {
        let mut entries = self.append_audit_many(&[seal]).await?;
        entries.pop().ok_or_else(|| StoreError::Corrupt { what: "audit append".into(), detail: "no entry written".into() })
    }

    async fn append_audit_many(&self, seals: &[Seal<'_>]) -> Result<Vec<AuditEntry>, StoreError> {
        if seals.is_empty() {
            return Ok(Vec::new());
        }
        let _guard = self.append_guard().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result: Result<Vec<AuditEntry>, sqlx::Error> = async {
                let mut tx = self.pool.begin().await?;
                let mut entries = Vec::with_capacity(seals.len());
                for seal in seals {
                    entries.push(self.append_in(&mut tx, *seal).await?);
                }
                tx.commit().await?;
                Ok(entries)
            }
            .await;
            match result {
                Ok(entries) => return Ok(entries),
                // Another process sharing the database: wait a little and try again.
                Err(e) if attempt < 20 && contended(&e) => tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn audit_checkpoint(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetch_optional(&self.pool).await?;
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?))).transpose()
    }

    async fn prune_audit(&self, through: i64, hash: &str, at: OffsetDateTime) -> Result<Option<usize>, StoreError> {
        let _guard = self.append_guard().await;
        let mut tx = self.pool.begin().await?;
        // Appenders wait: none may read the last entry while it is being pruned.
        if let Some(lock) = self.dialect.append_lock_statement() {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        let found = sqlx::query(self.sql("SELECT hash FROM audit_log WHERE seq = ?")).bind(through).fetch_optional(&mut *tx).await?;
        let matches = match found {
            Some(row) => {
                let stored: String = row.try_get("hash")?;
                stored.len() == hash.len() && bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), hash.as_bytes()))
            }
            None => false,
        };
        if !matches {
            return Ok(None);
        }
        sqlx::query(self.sql("INSERT INTO audit_checkpoints (seq, hash, pruned_at) VALUES (?, ?, ?)"))
            .bind(through)
            .bind(hash)
            .bind(at.unix_timestamp())
            .execute(&mut *tx)
            .await?;
        let pruned = sqlx::query(self.sql("DELETE FROM audit_log WHERE seq <= ?")).bind(through).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(usize::try_from(pruned.rows_affected()).unwrap_or(usize::MAX)))
    }

    async fn audit(&self, tenant: Option<&TenantId>, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(self.sql("SELECT * FROM audit_log WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?"))
                    .bind(t.as_str())
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(self.sql("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"))
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(audit_from_row).collect()
    }

    async fn claim_reminder(&self, ticket: i64, expected: i64, due: i64, at: OffsetDateTime) -> Result<bool, StoreError> {
        let claimed = sqlx::query(self.sql("UPDATE tickets SET reminders_sent = ?, updated_at = ? WHERE id = ? AND reminders_sent = ?"))
            .bind(due)
            .bind(at.unix_timestamp())
            .bind(ticket)
            .bind(expected)
            .execute(&self.pool)
            .await?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn update_ticket(
        &self,
        ticket: i64,
        status: TicketStatus,
        reminders_sent: Option<i64>,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            self.sql("UPDATE tickets SET status = ?, reminders_sent = COALESCE(?, reminders_sent), updated_at = ? WHERE id = ?"),
        )
        .bind(status.as_str())
        .bind(reminders_sent)
        .bind(at.unix_timestamp())
        .bind(ticket)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NoTicket(ticket));
        }
        Ok(())
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
