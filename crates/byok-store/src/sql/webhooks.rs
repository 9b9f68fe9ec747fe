//! [`crate::WebhookStore`] on SQL: endpoints, the dispatcher's cursor over the audit log, and
//! deliveries.

use async_trait::async_trait;
use byok_domain::{Attempt, Delivery, DeliveryStatus, TenantId, Webhook, WebhookSecret};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, corrupt, time_of};
use crate::{NewDelivery, StoreError, WebhookStore};

fn webhook_from_row(row: &AnyRow) -> Result<Webhook, StoreError> {
    let tenant: Option<String> = row.try_get("tenant_id")?;
    let events: String = row.try_get("events")?;
    let secrets: String = row.try_get("secrets")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        tenant: tenant.map(|t| t.parse().map_err(|e| corrupt("webhook", e))).transpose()?,
        url: row.try_get("url")?,
        events: if events == "*" { Vec::new() } else { events.split(' ').map(str::to_string).collect() },
        secrets: serde_json::from_str::<Vec<WebhookSecret>>(&secrets).map_err(|e| corrupt("webhook", e))?,
        created_at: time_of(row, "created_at")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    let tenant: Option<String> = row.try_get("tenant_id")?;
    Ok(Delivery {
        webhook: row.try_get("webhook_id")?,
        seq: row.try_get("seq")?,
        tenant: tenant.map(|t| t.parse::<TenantId>().map_err(|e| corrupt("delivery", e))).transpose()?,
        event_type: row.try_get("event_type")?,
        body: row.try_get("body")?,
        status: row.try_get::<String, _>("status")?.parse().map_err(|e| corrupt("delivery", e))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).map_err(|e| corrupt("delivery", e))?,
        next_attempt_at: time_of(row, "next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: time_of(row, "created_at")?,
        updated_at: time_of(row, "updated_at")?,
    })
}

fn secrets_json(secrets: &[WebhookSecret]) -> Result<String, StoreError> {
    serde_json::to_string(secrets).map_err(|e| corrupt("webhook", e))
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn put_webhook(&self, w: &Webhook) -> Result<(), StoreError> {
        sqlx::query(self.sql("INSERT INTO webhooks (id, tenant_id, url, events, secrets, created_at) VALUES (?, ?, ?, ?, ?, ?)"))
            .bind(&w.id)
            .bind(w.tenant.as_ref().map(|t| t.to_string()))
            .bind(&w.url)
            .bind(if w.events.is_empty() { "*".to_string() } else { w.events.join(" ") })
            .bind(secrets_json(&w.secrets)?)
            .bind(w.created_at.unix_timestamp())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        let row = sqlx::query(self.sql("SELECT * FROM webhooks WHERE id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    async fn webhooks(&self, tenant: Option<&TenantId>) -> Result<Vec<Webhook>, StoreError> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(self.sql("SELECT * FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id"))
                    .bind(t.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query("SELECT * FROM webhooks ORDER BY created_at, id").fetch_all(&self.pool).await?,
        };
        rows.iter().map(webhook_from_row).collect()
    }

    async fn set_webhook_secrets(&self, id: &str, secrets: &[WebhookSecret]) -> Result<bool, StoreError> {
        let done = sqlx::query(self.sql("UPDATE webhooks SET secrets = ? WHERE id = ?"))
            .bind(secrets_json(secrets)?)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One transaction: a span `store.remove_webhook` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.remove_webhook", level = "info", skip_all)]
    async fn remove_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(self.sql("DELETE FROM webhook_deliveries WHERE webhook_id = ?")).bind(id).execute(&mut *tx).await?;
        let done = sqlx::query(self.sql("DELETE FROM webhooks WHERE id = ?")).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn webhook_cursor(&self) -> Result<i64, StoreError> {
        // The first time, the log's end: endpoints hear of what happens from now on. (`WHERE
        // TRUE`: SQLite would read `ON CONFLICT` after a bare SELECT as a join's ON.)
        sqlx::query(
            "INSERT INTO webhook_cursor (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log WHERE TRUE ON CONFLICT DO NOTHING",
        )
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT seq FROM webhook_cursor WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(row.try_get("seq")?)
    }

    /// One transaction: a span `store.enqueue_deliveries` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.enqueue_deliveries", level = "info", skip_all)]
    async fn enqueue_deliveries(&self, from: i64, to: i64, deliveries: &[NewDelivery], at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(self.sql("UPDATE webhook_cursor SET seq = ? WHERE id = 1 AND seq = ?"))
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        for d in deliveries {
            sqlx::query(self.sql(
                "INSERT INTO webhook_deliveries (webhook_id, seq, tenant_id, event_type, body, status, attempts, next_attempt_at, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(&d.webhook)
            .bind(d.seq)
            .bind(d.tenant.as_ref().map(|t| t.to_string()))
            .bind(&d.event_type)
            .bind(&d.body)
            .bind(at.unix_timestamp())
            .bind(at.unix_timestamp())
            .bind(at.unix_timestamp())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn next_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.* FROM webhook_deliveries d JOIN (SELECT webhook_id, MIN(seq) AS seq FROM webhook_deliveries \
             WHERE status = 'pending' GROUP BY webhook_id) first ON d.webhook_id = first.webhook_id AND d.seq = first.seq \
             ORDER BY d.next_attempt_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(&self, webhook: &str, seq: i64, attempt: &Attempt, at: OffsetDateTime) -> Result<(), StoreError> {
        let (status, next, error) = match attempt {
            Attempt::Delivered => (DeliveryStatus::Delivered, at, None),
            Attempt::Retry { at: next, error } => (DeliveryStatus::Pending, *next, Some(error.as_str())),
            Attempt::Dead { error } => (DeliveryStatus::Dead, at, Some(error.as_str())),
        };
        sqlx::query(self.sql(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? \
             WHERE webhook_id = ? AND seq = ?",
        ))
        .bind(status.as_str())
        .bind(next.unix_timestamp())
        .bind(error)
        .bind(at.unix_timestamp())
        .bind(webhook)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn deliveries(&self, webhook: &str, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?"))
            .bind(webhook)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn redeliver(&self, webhook: &str, seq: i64, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(self.sql(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, created_at = ?, last_error = NULL, updated_at = ? \
             WHERE webhook_id = ? AND seq = ?",
        ))
        .bind(at.unix_timestamp())
        .bind(at.unix_timestamp())
        .bind(at.unix_timestamp())
        .bind(webhook)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn dead_deliveries(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'dead'").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }
}
