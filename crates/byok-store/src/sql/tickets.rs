//! [`crate::TicketStore`] on SQL: customers' tickets and their comments.

use async_trait::async_trait;
use byok_domain::{Author, TenantId, TicketStatus};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, corrupt, time_of};
use crate::{Comment, StoreError, Ticket, TicketStore};

pub(super) fn ticket_from_row(row: &AnyRow) -> Result<Ticket, StoreError> {
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

pub(super) fn comment_from_row(row: &AnyRow) -> Result<Comment, StoreError> {
    Ok(Comment {
        id: row.try_get("id")?,
        author: row.try_get::<String, _>("author")?.parse().map_err(|e| corrupt("comment", e))?,
        body: row.try_get("body")?,
        created_at: time_of(row, "created_at")?,
    })
}

#[async_trait]
impl TicketStore for SqlStore {
    /// One transaction: a span `store.open_ticket` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.open_ticket", level = "info", skip_all)]
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

    /// One transaction: a span `store.add_comment` (exported with `byok serve --otlp-endpoint`).
    #[tracing::instrument(name = "store.add_comment", level = "info", skip_all)]
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
