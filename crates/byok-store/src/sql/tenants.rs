//! [`crate::TenantStore`] on SQL: tenants and their lifecycle state, changed only by compare-and-set on a version.

use std::str::FromStr;

use async_trait::async_trait;
use byok_domain::{Event, KeyGenerations, Tenant, TenantBinding, TenantId, TenantState, Transition};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{Erase, SqlStore, corrupt, generation};
use crate::{Seal, StoreError, TenantCensus, TenantStore, WrappedKey};

pub(super) fn deadline(state: &TenantState) -> Option<i64> {
    match state {
        TenantState::Revoked { deadline, .. } => Some(deadline.unix_timestamp()),
        TenantState::Onboarding | TenantState::Active | TenantState::Destroyed { .. } => None,
    }
}

pub(super) fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
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

#[async_trait]
impl TenantStore for SqlStore {
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

    /// One transaction: a span `store.set_state` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.set_state", level = "info", skip_all)]
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

    /// One transaction: a span `store.activate` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.activate", level = "info", skip_all)]
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

    /// One transaction: a span `store.destroy` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.destroy", level = "info", skip_all)]
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
}
