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
    /// The customer role's name (`byok-key-management` by default; any name works, e.g. `atlassian-key-management`).
    pub role_name: String,
    /// Prefix of the per-tenant key alias (`alias/byok-` → `alias/byok-acme`).
    pub alias_prefix: String,
    /// How long an unwrapped tenant key stays cached, counted from the unwrap.
    pub cache_ttl: Duration,
    /// Accept trust policies without an `sts:ExternalId` condition (with a warning).
    pub allow_legacy_trust: bool,
    /// From revocation to destruction.
    pub grace_period: Duration,
    /// How often the monitor probes every (tenant, region).
    pub monitor_interval: std::time::Duration,
    /// Probes in flight at once.
    pub monitor_concurrency: usize,
    /// Consecutive definitive denials needed to revoke (1: the first one).
    pub confirmations: u32,
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
            monitor_interval: std::time::Duration::from_secs(60),
            monitor_concurrency: 32,
            confirmations: 1,
        }
    }
}
