//! Support tickets as the API shows them.

use byok_domain::{Author, TenantId, TicketStatus};
use serde::{Deserialize, Serialize};

use crate::tenant::Restoration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: i64,
    pub tenant: TenantId,
    pub title: String,
    pub status: TicketStatus,
    pub reminders_sent: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: i64,
    pub author: Author,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// `GET /v1/tickets/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketDetail {
    pub ticket: Ticket,
    pub comments: Vec<Comment>,
}

/// `POST /v1/tickets/{id}/comments`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    pub body: String,
}

/// The answer to a comment: a customer's "ready" carries the restoration's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentResponse {
    pub comment: Comment,
    pub restoration: Option<Restoration>,
}
