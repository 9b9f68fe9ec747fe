//! [`crate::AuditStore`] on SQL: the hash-chained audit log and its checkpoints.

use async_trait::async_trait;
use byok_domain::TenantId;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, contended};
use crate::dialect::Dialect;
use crate::{AuditEntry, AuditFilter, AuditStore, Seal, StoreError};

pub(super) fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
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

impl SqlStore {
    /// One appender at a time: the in-process lock where the dialect needs it; otherwise the
    /// dialect's table lock inside the transaction.
    pub(super) async fn append_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if self.dialect.serializes_in_process() { Some(self.append_lock.lock().await) } else { None }
    }

    /// Chains and writes an audit entry inside `tx` (the caller holds [`Self::append_guard`]).
    pub(super) async fn append_in(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, seal: Seal<'_>) -> Result<AuditEntry, sqlx::Error> {
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
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, seal: Seal<'_>) -> Result<AuditEntry, StoreError> {
        let mut entries = self.append_audit_many(&[seal]).await?;
        entries.pop().ok_or_else(|| StoreError::Corrupt { what: "audit append".into(), detail: "no entry written".into() })
    }

    /// One transaction: a span `store.append_audit_many` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.append_audit_many", level = "info", skip_all)]
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

    /// One transaction: a span `store.prune_audit` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.prune_audit", level = "info", skip_all)]
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

    async fn newest_audit(&self, tenant: &TenantId) -> Result<Option<AuditEntry>, StoreError> {
        let row = sqlx::query(self.sql("SELECT * FROM audit_log WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1"))
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(audit_from_row).transpose()
    }

    async fn audit_page(&self, tenant: &TenantId, filter: &AuditFilter, before: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let reason = filter.reason.clone().unwrap_or_default();
        let rows = sqlx::query(self.sql(
            "SELECT * FROM audit_log WHERE tenant_id = ? AND seq < ? AND at >= ? AND at < ? \
             AND (? = '' OR reason = ? OR kind = ?) ORDER BY seq DESC LIMIT ?",
        ))
        .bind(tenant.as_str())
        .bind(before)
        .bind(filter.from.unwrap_or(i64::MIN))
        .bind(filter.to.unwrap_or(i64::MAX))
        .bind(reason.clone())
        .bind(reason.clone())
        .bind(reason)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn key_use_counts(&self, tenant: &TenantId, from: i64, to: i64, bucket: i64) -> Result<Vec<(i64, String, i64)>, StoreError> {
        if bucket <= 0 || to <= from {
            return Ok(Vec::new());
        }
        // Only a probe summary's detail is parsed (the LIKE spares every other row's JSON).
        let text = match self.dialect {
            Dialect::Sqlite => {
                "SELECT (at - ?) / ? AS bucket, reason, CAST(SUM(CASE WHEN detail LIKE '%\"summary\"%' \
                 THEN COALESCE(json_extract(detail, '$.summary.count'), 1) ELSE 1 END) AS BIGINT) AS n \
                 FROM audit_log WHERE tenant_id = ? AND kind = 'key_use' AND at >= ? AND at < ? GROUP BY bucket, reason ORDER BY bucket, reason"
            }
            Dialect::Postgres => {
                "SELECT (at - ?) / ? AS bucket, reason, CAST(SUM(CASE WHEN detail LIKE '%\"summary\"%' \
                 THEN COALESCE((detail::jsonb -> 'summary' ->> 'count')::bigint, 1) ELSE 1 END) AS BIGINT) AS n \
                 FROM audit_log WHERE tenant_id = ? AND kind = 'key_use' AND at >= ? AND at < ? GROUP BY bucket, reason ORDER BY bucket, reason"
            }
        };
        let rows =
            sqlx::query(self.sql(text)).bind(from).bind(bucket).bind(tenant.as_str()).bind(from).bind(to).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((from + row.try_get::<i64, _>("bucket")? * bucket, row.try_get("reason")?, row.try_get("n")?))).collect()
    }

    async fn sink_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        sqlx::query(self.sql("INSERT INTO audit_sink_cursors (sink, seq, updated_at) VALUES (?, 0, 0) ON CONFLICT DO NOTHING"))
            .bind(sink)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query(self.sql("SELECT seq FROM audit_sink_cursors WHERE sink = ?")).bind(sink).fetch_one(&self.pool).await?;
        Ok(row.try_get("seq")?)
    }

    async fn advance_sink_cursor(&self, sink: &str, from: i64, to: i64, at: OffsetDateTime) -> Result<bool, StoreError> {
        let moved = sqlx::query(self.sql("UPDATE audit_sink_cursors SET seq = ?, updated_at = ? WHERE sink = ? AND seq = ?"))
            .bind(to)
            .bind(at.unix_timestamp())
            .bind(sink)
            .bind(from)
            .execute(&self.pool)
            .await?;
        Ok(moved.rows_affected() == 1)
    }
}
