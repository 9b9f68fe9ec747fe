//! Webhook endpoints and their deliveries.

use serde::{Deserialize, Serialize};

/// `POST /v1/tenants/{id}/webhooks` and `POST /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewWebhookRequest {
    /// `https://…` (plain `http://` only to this machine).
    pub url: String,
    /// Event types to receive; empty or absent: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

/// An endpoint as listed (never its secrets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookInfo {
    pub id: String,
    /// Whose events; absent: the operator's endpoint (every tenant's and the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub url: String,
    /// Empty: all event types.
    pub events: Vec<String>,
    /// How many secrets sign now (2 during a rotation).
    pub secrets_in_force: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// An endpoint just added, or its secret just rotated: the secret is shown this once.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewWebhookResponse {
    pub webhook: WebhookInfo,
    /// `whsec_…`, for the Standard Webhooks libraries.
    pub secret: String,
}

impl std::fmt::Debug for NewWebhookResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhookResponse").field("webhook", &self.webhook).field("secret", &"** redacted **").finish()
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryInfo {
    /// The `webhook-id` every attempt carries (`evt_{seq}`).
    pub event_id: String,
    pub seq: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: time::OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// `GET` and `PUT /v1/tenants/{id}/contacts`: the addresses emailed about the tenant's
/// revocation, reminders, restoration and destruction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contacts {
    pub emails: Vec<String>,
}
