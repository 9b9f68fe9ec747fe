//! The broker's validated parameters.

use byok_domain::{ExternalId, Locations, Region, RoleArn};
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
    /// Consecutive definitive denials needed to revoke: 2 by default, so a first denial is
    /// confirmed by one immediate fresh re-probe before it acts.
    pub confirmations: u32,
    /// The provider's own canary: a role in the provider's account that trusts the provider
    /// exactly as customers' roles do, and a key it may use. Each pass proves it works before
    /// any denial may count. Without one, only `GetCallerIdentity` is checked.
    pub canary: Option<CanaryConfig>,
    /// When one pass's new denials are too many to believe.
    pub hold_threshold: HoldThreshold,
    /// How long a node trusts what it read about a token (revocations reach every node within it).
    pub token_cache_ttl: std::time::Duration,
    /// Write routine successful probes as one audit row per (tenant, region) per hour (with the
    /// count, first and last time) instead of one row each. Denials and everything else are
    /// always written in full.
    pub summarize_probes: bool,
    /// This node's name in the leader lease (and in `/healthz`).
    pub node_id: String,
    /// The leader lease's length; it is renewed every third of it, and a node stops its leader
    /// work after 80 % of it without a renewal, before anyone else can take it over.
    pub lease_ttl: std::time::Duration,
    /// Rotate each tenant key once its current generation is this old (the leader's monitor
    /// checks every pass); `None`: only on request (`byok tenant rotate`).
    pub rotate_after: Option<Duration>,
    /// How often the leader signs each tenant's grown history as a checkpoint its webhooks
    /// carry to the customer (see [`crate::audit_checkpoints`]).
    pub checkpoint_interval: Duration,
    /// Host names webhook endpoints may point at (`.example.com`: that domain and below);
    /// `None`: any host over HTTPS. Keeps tenant admins from aiming deliveries at the
    /// provider's internal network.
    pub webhook_hosts: Option<Vec<String>>,
    /// Email to tenants' contacts; `None`: no email (contacts cannot be set).
    pub smtp: Option<crate::email::SmtpConfig>,
}

/// Sign-in with AWS IAM, when enabled (see `crate::aws_sign_in`).
#[derive(Debug, Clone)]
pub struct AwsSignIn {
    /// The value `X-Byok-Server-Id` must carry, signed.
    pub server_id: String,
    /// How long a token issued at sign-in lasts.
    pub token_ttl: time::Duration,
    pub verifier: std::sync::Arc<dyn byok_kms::CallerIdentityVerifier>,
}

/// A random node name (`node-1a2b3c4d`) for a node that was not given one.
fn node_id() -> String {
    let mut b = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut b);
    format!("node-{}", hex::encode(b))
}

/// The provider-controlled role and key the canary uses.
#[derive(Clone)]
pub struct CanaryConfig {
    /// In the provider's own account; trusts the provider's principal with `external_id`.
    pub role_arn: RoleArn,
    pub external_id: ExternalId,
    /// The key: an ARN or an alias in the canary role's account (`alias/byok-canary`).
    pub key: String,
    pub region: Region,
    /// The key-policy canary, for customer-managed-key (CMK) tenants: the ARN or alias ARN of a
    /// key in `region`, in an account the provider controls, whose key policy grants the
    /// provider's principal exactly as CMK customers' keys do. Used by the provider's own
    /// identity, with no role, each pass. Required before a CMK tenant can be added.
    pub key_policy_key: Option<String>,
}

impl std::fmt::Debug for CanaryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryConfig")
            .field("role_arn", &self.role_arn)
            .field("key", &self.key)
            .field("region", &self.region)
            .field("key_policy_key", &self.key_policy_key)
            .finish_non_exhaustive()
    }
}

/// New denials in one pass are held, not revoked, when they are more than `tenants` *and* more
/// than `percent` % of the active tenants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldThreshold {
    pub tenants: usize,
    pub percent: f64,
}

impl HoldThreshold {
    /// Whether `denied` new denials among `active` tenants must wait for a person.
    pub fn holds(&self, denied: usize, active: usize) -> bool {
        denied > self.tenants && (denied as f64) * 100.0 > self.percent * (active as f64)
    }
}

impl Default for HoldThreshold {
    fn default() -> Self {
        Self { tenants: 3, percent: 5.0 }
    }
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
            confirmations: 2,
            canary: None,
            hold_threshold: HoldThreshold::default(),
            token_cache_ttl: std::time::Duration::from_secs(5),
            summarize_probes: true,
            node_id: node_id(),
            lease_ttl: std::time::Duration::from_secs(10),
            rotate_after: None,
            checkpoint_interval: Duration::hours(1),
            webhook_hosts: None,
            smtp: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_threshold_needs_both_the_count_and_the_share() {
        let t = HoldThreshold::default();
        assert!(!t.holds(3, 10), "three is never too many");
        assert!(t.holds(4, 10), "four of ten");
        assert!(!t.holds(4, 100), "four of a hundred is 4 %");
        assert!(t.holds(6, 100));
        assert!(!t.holds(1, 1));
    }
}
