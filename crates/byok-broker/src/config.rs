//! The broker's validated parameters.

use byok_domain::{Locations, RoleArn};
use time::Duration;

/// Everything the broker is configured with, validated once at start-up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Locations and their regions.
    pub locations: Locations,
    /// The provider's principal, named in every customer's trust policy.
    pub provider_principal: RoleArn,
    /// The customer role's name (`byok-key-management`; the seed's is `atlassian-key-management`).
    pub role_name: String,
    /// Prefix of the per-tenant key alias (`alias/byok-` → `alias/byok-acme`).
    pub alias_prefix: String,
    /// How long an unwrapped tenant key stays cached, counted from the unwrap.
    pub cache_ttl: Duration,
    /// Accept trust policies without an `sts:ExternalId` condition (with a warning).
    pub allow_legacy_trust: bool,
    /// From revocation to destruction.
    pub grace_period: Duration,
}

impl BrokerConfig {
    pub fn new(provider_principal: RoleArn) -> Self {
        Self {
            locations: Locations::default(),
            provider_principal,
            role_name: "byok-key-management".into(),
            alias_prefix: "alias/byok-".into(),
            cache_ttl: Duration::minutes(5),
            allow_legacy_trust: false,
            grace_period: Duration::days(15),
        }
    }
}
