//! What this node knows of the provider's own identity, as of its last check (see
//! [`crate::provider`]).

use parking_lot::RwLock;
use time::OffsetDateTime;

/// What the node knows of the provider's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProviderHealth {
    /// False after a failed check, until one passes.
    pub healthy: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<OffsetDateTime>,
    /// Since when it has been failing.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<OffsetDateTime>,
}

/// The node's record of the last provider check.
#[derive(Debug, Default)]
pub(crate) struct HealthCell(RwLock<ProviderHealth>);

impl HealthCell {
    pub(crate) fn get(&self) -> ProviderHealth {
        self.0.read().clone()
    }

    pub(crate) fn set(&self, health: ProviderHealth) {
        *self.0.write() = health;
    }
}
