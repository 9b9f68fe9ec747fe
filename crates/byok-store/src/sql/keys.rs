//! [`crate::KeyStore`] on SQL: wrapped tenant keys of every generation, their erasure, and the provider-held keys sealing them.

use async_trait::async_trait;
use byok_domain::{KeyGenerations, Region, Tenant, TenantId};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{CHANNEL, SqlStore, corrupt, tenant_from_row};
use crate::{AdoptionProgress, ErasureProof, KeyChange, KeyStore, PendingErasure, ProviderKey, Seal, StoreError, WrappedKey};

pub(super) fn provider_key_from_row(row: &AnyRow) -> Result<ProviderKey, StoreError> {
    let region: String = row.try_get("region")?;
    let deletion_date: Option<i64> = row.try_get("deletion_date")?;
    Ok(ProviderKey {
        region: region.parse().map_err(|e| corrupt("provider key", e))?,
        key_arn: row.try_get("key_arn")?,
        deletion_date: deletion_date.map(OffsetDateTime::from_unix_timestamp).transpose().map_err(|e| corrupt("provider key", e))?,
    })
}

/// Which of a tenant's wrapped keys to erase.
#[derive(Debug, Clone, Copy)]
pub(super) enum Erase<'a> {
    All,
    /// Every generation below this one.
    Below(u32),
    /// Every generation's key in this region.
    Region(&'a Region),
}

impl SqlStore {
    pub(super) async fn insert_keys(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &TenantId,
        keys: &[WrappedKey],
    ) -> Result<(), sqlx::Error> {
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
    pub(super) async fn erase_keys(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &TenantId,
        which: Erase<'_>,
    ) -> Result<u64, sqlx::Error> {
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
}

#[async_trait]
impl KeyStore for SqlStore {
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

    /// One transaction: a span `store.change_keys` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.change_keys", level = "info", skip_all)]
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
            KeyChange::Rekey { binding, .. } | KeyChange::Migrate { binding, .. } | KeyChange::FinishAdoption { binding } => {
                Some(serde_json::to_string(binding).map_err(|e| corrupt("binding", e))?)
            }
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
            KeyChange::Migrate { keys, .. } => {
                if self.erase_keys(&mut tx, id, Erase::All).await? > 0 {
                    self.record_erasure(&mut tx, id, "migrated").await?;
                }
                self.insert_keys(&mut tx, id, keys).await?;
            }
            KeyChange::FinishAdoption { .. } => {
                if self.erase_keys(&mut tx, id, Erase::Below(generations.kept_from)).await? > 0 {
                    self.record_erasure(&mut tx, id, "adoption finished").await?;
                }
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

    async fn note_adoption_rewraps(&self, tenant: &TenantId, records: u64, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO adoption_progress (tenant_id, records, first_at, last_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (tenant_id) DO UPDATE SET records = adoption_progress.records + excluded.records, last_at = excluded.last_at",
        ))
        .bind(tenant.as_str())
        .bind(i64::try_from(records).unwrap_or(i64::MAX))
        .bind(at.unix_timestamp())
        .bind(at.unix_timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn adoption_progress(&self) -> Result<Vec<AdoptionProgress>, StoreError> {
        let rows = sqlx::query("SELECT tenant_id, records, first_at, last_at FROM adoption_progress ORDER BY tenant_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let tenant: String = row.try_get("tenant_id")?;
                let at = |column: &str| -> Result<OffsetDateTime, StoreError> {
                    OffsetDateTime::from_unix_timestamp(row.try_get(column)?).map_err(|e| corrupt("adoption progress", e))
                };
                Ok(AdoptionProgress {
                    tenant: tenant.parse().map_err(|e| corrupt("adoption progress", e))?,
                    records: u64::try_from(row.try_get::<i64, _>("records")?).unwrap_or(0),
                    first_at: at("first_at")?,
                    last_at: at("last_at")?,
                })
            })
            .collect()
    }
}
