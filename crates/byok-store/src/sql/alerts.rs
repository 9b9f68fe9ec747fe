//! [`crate::AlertStore`] on SQL: the operator's alerts and held revocations.

use async_trait::async_trait;
use byok_domain::{AlertKind, TenantId};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, corrupt, time_of};
use crate::{Alert, AlertStore, Hold, StoreError};

pub(super) fn alert_from_row(row: &AnyRow) -> Result<Alert, StoreError> {
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

pub(super) fn hold_from_row(row: &AnyRow) -> Result<Hold, StoreError> {
    Ok(Hold {
        tenant: row.try_get::<String, _>("tenant_id")?.parse().map_err(|e| corrupt("hold", e))?,
        detected_at: time_of(row, "detected_at")?,
        regions: serde_json::from_str(&row.try_get::<String, _>("detail")?).map_err(|e| corrupt("hold", e))?,
        created_at: time_of(row, "created_at")?,
    })
}

#[async_trait]
impl AlertStore for SqlStore {
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

    async fn hold(&self, hold: &Hold) -> Result<bool, StoreError> {
        let detail = serde_json::to_string(&hold.regions).map_err(|e| corrupt("hold", e))?;
        let inserted = sqlx::query(self.sql("INSERT INTO holds (tenant_id, detected_at, detail, created_at) VALUES (?, ?, ?, ?)"))
            .bind(hold.tenant.as_str())
            .bind(hold.detected_at.unix_timestamp())
            .bind(detail)
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
}
