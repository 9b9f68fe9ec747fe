//! Support tickets' own small state (who wrote a comment, where a ticket stands) and the
//! operator's alerts.

use serde::{Deserialize, Serialize};

use crate::TenantId;

/// Where a revocation ticket stands.
///
/// `Open` (revocation under way) → `Resolved` (access restored) or `Closed` (destroyed);
/// a resolved ticket is reopened by a new revocation of the same tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Resolved,
    Closed,
}

/// Who wrote a ticket comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    /// The broker itself (opening text, answers, reminders).
    Byok,
    /// The tenant's admin.
    Customer,
    /// The provider's operator.
    Operator,
}

/// What an operator alert is about. At most one alert of each kind is open at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The provider's own identity failed its canary: an outage, never a customer's revocation.
    ProviderIdentity,
    /// Too many tenants were denied at once: their revocations wait for a person.
    RevocationsHeld,
    /// A held revocation has waited for a person more than a day.
    HoldOverdue,
    /// Deleted wrapped keys could not be proven gone from the database's files.
    ErasurePending,
    /// Webhook deliveries were given up on after a day of attempts.
    WebhookDeadLetters,
}

/// Where an operator alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Resolved,
}

/// A stored value that is not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a known {1}")]
pub struct UnknownName(pub String, pub &'static str);

macro_rules! names {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s { $($name => Ok($ty::$variant),)+ other => Err(UnknownName(other.to_string(), $what)) }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(TicketStatus, "ticket status", Open => "open", Resolved => "resolved", Closed => "closed");
names!(Author, "comment author", Byok => "byok", Customer => "customer", Operator => "operator");
names!(AlertKind, "alert kind", ProviderIdentity => "provider_identity", RevocationsHeld => "revocations_held", HoldOverdue => "hold_overdue", ErasurePending => "erasure_pending", WebhookDeadLetters => "webhook_dead_letters");
names!(AlertStatus, "alert status", Open => "open", Resolved => "resolved");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in [TicketStatus::Open, TicketStatus::Resolved, TicketStatus::Closed] {
            assert_eq!(s.as_str().parse::<TicketStatus>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).expect("json"), format!("\"{s}\""));
        }
        for a in [Author::Byok, Author::Customer, Author::Operator] {
            assert_eq!(a.as_str().parse::<Author>(), Ok(a));
            assert_eq!(serde_json::to_string(&a).expect("json"), format!("\"{a}\""));
        }
        assert!("pending".parse::<TicketStatus>().is_err());
    }
}

/// A support ticket ("BYOK revocation started for AWS account …", `docs/customer-guide.md`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// One comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Comment {
    pub id: i64,
    pub author: Author,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// An operator alert ("Provider identity failing: …").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    pub title: String,
    pub body: String,
    pub status: AlertStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}
