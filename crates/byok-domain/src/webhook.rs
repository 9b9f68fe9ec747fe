//! Webhook endpoints and their deliveries: where byok tells a customer's (or the operator's)
//! systems what happened, signed per the Standard Webhooks specification.

use time::OffsetDateTime;

use crate::TenantId;

/// The event types an endpoint can ask for.
pub const EVENT_TYPES: &[&str] = &[
    "tenant.revoked",
    "tenant.reminder",
    "tenant.restored",
    "tenant.destroyed",
    "restoration.refused",
    "key.rotated",
    "key.rekeyed",
    "hold.opened",
    "hold.dismissed",
    "hold.cleared",
    "hold.released",
    "webhook.test",
];

/// A signing secret (`whsec_` and base64 of its bytes), and until when it still signs (an old
/// one during a rotation).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookSecret {
    pub secret: String,
    /// Unix seconds; `None`: until replaced.
    pub until: Option<i64>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecret").field("secret", &"** redacted **").field("until", &self.until).finish()
    }
}

/// An endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    /// Whose events; `None`: the operator's endpoint, for every tenant's and its own.
    pub tenant: Option<TenantId>,
    pub url: String,
    /// Event types it receives; empty: all.
    pub events: Vec<String>,
    pub secrets: Vec<WebhookSecret>,
    pub created_at: OffsetDateTime,
}

impl Webhook {
    /// Whether this endpoint receives an event of `kind` about `tenant`.
    pub fn wants(&self, kind: &str, tenant: Option<&TenantId>) -> bool {
        let whose = match (&self.tenant, tenant) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
            (Some(_), None) => false,
        };
        whose && (self.events.is_empty() || self.events.iter().any(|e| e == kind))
    }

    /// The secrets that still sign at `now`.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &WebhookSecret> {
        self.secrets.iter().filter(move |s| s.until.is_none_or(|until| until > now.unix_timestamp()))
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up on after a day of attempts: `redeliver` puts it back.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = crate::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            other => Err(crate::UnknownName(other.to_string(), "delivery status")),
        }
    }
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub webhook: String,
    /// The audit entry it tells of: the event's id is `evt_{seq}`.
    pub seq: i64,
    pub tenant: Option<TenantId>,
    pub event_type: String,
    /// The exact body every attempt sends.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Delivery {
    /// The Standard Webhooks message id: the same on every attempt.
    pub fn message_id(&self) -> String {
        format!("evt_{}", self.seq)
    }
}

/// What one attempt ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; tried again then.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Failed for the last time.
    Dead {
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(tenant: Option<&str>, events: &[&str]) -> Webhook {
        Webhook {
            id: "wh_1".into(),
            tenant: tenant.map(|t| t.parse().expect("id")),
            url: "https://example.com".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            secrets: Vec::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_endpoint_gets_its_own_tenants_events_of_the_kinds_it_asked_for() {
        let acme: TenantId = "acme".parse().expect("id");
        let globex: TenantId = "globex".parse().expect("id");
        assert!(hook(Some("acme"), &[]).wants("tenant.revoked", Some(&acme)));
        assert!(!hook(Some("acme"), &[]).wants("tenant.revoked", Some(&globex)));
        assert!(!hook(Some("acme"), &[]).wants("hold.opened", None), "the operator's own events are not a tenant's");
        assert!(!hook(Some("acme"), &["tenant.restored"]).wants("tenant.revoked", Some(&acme)));
        assert!(hook(None, &[]).wants("tenant.revoked", Some(&globex)) && hook(None, &[]).wants("hold.opened", None));
    }

    #[test]
    fn an_old_secret_signs_until_its_end() {
        let mut h = hook(None, &[]);
        h.secrets =
            vec![WebhookSecret { secret: "whsec_new".into(), until: None }, WebhookSecret { secret: "whsec_old".into(), until: Some(100) }];
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).expect("t");
        assert_eq!(h.signing_secrets(at(99)).count(), 2);
        assert_eq!(h.signing_secrets(at(100)).count(), 1);
    }
}
