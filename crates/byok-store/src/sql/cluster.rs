//! [`crate::ClusterStore`] on SQL: what the nodes sharing the store agree on: the leader lease, change notices, cluster settings, the clock.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;

use super::{CHANNEL, SqlStore, corrupt};
use crate::{ClusterStore, Notice, StoreError};

#[async_trait]
impl ClusterStore for SqlStore {
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

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        // A database put back from an older backup under a running node: it must not write to
        // a schema older than its code.
        let newest = crate::migrations::newest_applied(&self.pool, self.dialect).await?;
        let missing: Vec<_> = crate::migrations::known(self.dialect).into_iter().filter(|m| m.version > newest).collect();
        if !missing.is_empty() {
            return Err(crate::SchemaProblem::Pending(missing).into());
        }
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
}
