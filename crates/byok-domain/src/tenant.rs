//! A tenant and its binding to the customer's AWS account.

use serde::{Deserialize, Serialize};

use crate::generations::KeyGenerations;
use crate::ids::{AccountId, ContextTag, ExternalId, KeyArn, Region, RoleArn, TenantId};
use crate::lifecycle::TenantState;

/// One region's KMS key for a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionKey {
    pub region: Region,
    pub key_arn: KeyArn,
}

/// How the customer grants the provider its keys: the vendor's two models.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyMode {
    /// Role-based BYOK (the seed's procedure): the customer's IAM role trusts the provider's
    /// principal with the tenant's external id; the provider assumes it, and each key's policy
    /// grants the role.
    #[default]
    Byok,
    /// Customer-managed keys by key policy alone: no role, no AssumeRole; each key's policy
    /// grants the provider's own principal, only under the tenant's encryption context (which
    /// carries the customer's context tag, if they chose one).
    Cmk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_tag: Option<ContextTag>,
    },
    /// Provider-held keys: one KMS key per region in the **provider's own account**, made by
    /// byok for the tenant, used by the provider's own principal. What a tenant has before the
    /// customer brings keys of their own; no customer can revoke it, so no denial of these keys
    /// is ever a revocation (it is the provider's own fault). `byok tenant adopt` moves the
    /// tenant onto the customer's keys.
    Provider,
}

impl KeyMode {
    /// `byok` or `cmk`, as the API and the CLI name it.
    pub fn name(&self) -> &'static str {
        match self {
            KeyMode::Byok => "byok",
            KeyMode::Cmk { .. } => "cmk",
            KeyMode::Provider => "provider",
        }
    }

    /// Whether the keys are the provider's own (no customer can revoke them).
    pub fn is_provider(&self) -> bool {
        matches!(self, KeyMode::Provider)
    }

    pub fn is_byok(&self) -> bool {
        matches!(self, KeyMode::Byok)
    }

    /// The customer's context tag (CMK only).
    pub fn context_tag(&self) -> Option<&ContextTag> {
        match self {
            KeyMode::Cmk { context_tag } => context_tag.as_ref(),
            KeyMode::Byok | KeyMode::Provider => None,
        }
    }
}

/// How the provider reaches the tenant's keys: which role to assume with which external id
/// (BYOK) or none (CMK), and which key in each region. Set at onboarding; a region's key
/// changes only by rekey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantBinding {
    pub account: AccountId,
    /// The role the provider assumes. Under [`KeyMode::Cmk`] there is none to assume: the
    /// value is the name a BYOK setup would have used, never called (see
    /// [`TenantBinding::role`]).
    pub role_arn: RoleArn,
    pub external_id: ExternalId,
    /// In the location's order: the nearest region first.
    pub keys: Vec<RegionKey>,
    /// The operator accepted a trust policy without an `sts:ExternalId` condition.
    pub legacy_trust: bool,
    /// BYOK unless the tenant was added as CMK. Bindings written before CMK existed have no
    /// `mode` and are BYOK.
    #[serde(default, skip_serializing_if = "KeyMode::is_byok")]
    pub mode: KeyMode,
    /// Set when the tenant moved from provider-held keys onto the customer's (`byok tenant
    /// adopt`), until the adoption is finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<Adoption>,
}

/// A tenant's move from provider-held keys onto the customer's, between the switch and its
/// finish. At the switch every kept generation was rewrapped under the customer's keys and a
/// fresh generation, made under the customer's keys only, became the one that seals. Records
/// sealed before it are moved onto it with `rewrap`; finishing retires and shreds the older
/// generations and schedules the provider-held keys' deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    /// The first generation that never existed under the provider's keys.
    pub first_generation: u32,
    /// The provider-held keys the tenant used before, deleted when the adoption finishes.
    pub provider_keys: Vec<KeyArn>,
    #[serde(with = "time::serde::rfc3339")]
    pub switched_at: time::OffsetDateTime,
}

impl TenantBinding {
    pub fn key_for(&self, region: &Region) -> Option<&KeyArn> {
        self.keys.iter().find(|k| &k.region == region).map(|k| &k.key_arn)
    }

    /// The role the provider assumes, and its external id: `None` for a key-policy (CMK)
    /// tenant, whose keys the provider's own principal uses.
    pub fn role(&self) -> Option<(&RoleArn, &ExternalId)> {
        self.mode.is_byok().then_some((&self.role_arn, &self.external_id))
    }
}

/// A tenant as the broker stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub location: String,
    pub binding: TenantBinding,
    pub state: TenantState,
    /// Its tenant key generations.
    pub keys: KeyGenerations,
    /// Bumped by every change; writes compare-and-set on it.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(mode: KeyMode) -> TenantBinding {
        TenantBinding {
            account: "111122223333".parse().expect("account"),
            role_arn: "arn:aws:iam::111122223333:role/byok-key-management".parse().expect("role"),
            external_id: "byok-0123456789".parse().expect("external id"),
            keys: Vec::new(),
            legacy_trust: false,
            mode,
            adoption: None,
        }
    }

    #[test]
    fn a_binding_stored_before_cmk_reads_as_byok_and_byok_writes_as_before() {
        let old = r#"{"account":"111122223333","role_arn":"arn:aws:iam::111122223333:role/byok-key-management","external_id":"byok-0123456789","keys":[],"legacy_trust":false}"#;
        let read: TenantBinding = serde_json::from_str(old).expect("old binding");
        assert_eq!(read, binding(KeyMode::Byok));
        assert!(read.role().is_some());
        assert_eq!(serde_json::to_string(&read).expect("json"), old, "a BYOK binding is written exactly as before");
    }

    #[test]
    fn a_cmk_binding_keeps_its_context_tag_and_has_no_role() {
        let cmk = binding(KeyMode::Cmk { context_tag: Some("Acme01".parse().expect("tag")) });
        let json = serde_json::to_string(&cmk).expect("json");
        assert!(json.contains(r#""mode":{"kind":"cmk","context_tag":"Acme01"}"#), "{json}");
        let back: TenantBinding = serde_json::from_str(&json).expect("back");
        assert_eq!(back, cmk);
        assert_eq!((back.role(), back.mode.name()), (None, "cmk"));
        assert_eq!(back.mode.context_tag().map(ContextTag::as_str), Some("Acme01"));
        let bad = json.replace("Acme01", "not-a-tag!");
        assert!(serde_json::from_str::<TenantBinding>(&bad).is_err(), "a stored tag is validated when read");
    }

    #[test]
    fn a_provider_binding_has_no_role_and_keeps_its_adoption() {
        let mut provider = binding(KeyMode::Provider);
        let json = serde_json::to_string(&provider).expect("json");
        assert!(json.contains(r#""mode":{"kind":"provider"}"#), "{json}");
        assert!(!json.contains("adoption"), "no adoption is written until there is one: {json}");
        let back: TenantBinding = serde_json::from_str(&json).expect("back");
        assert_eq!((back.role(), back.mode.name(), back.mode.is_provider()), (None, "provider", true));
        provider.mode = KeyMode::Cmk { context_tag: None };
        provider.adoption = Some(Adoption {
            first_generation: 3,
            provider_keys: vec!["arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("arn")],
            switched_at: time::OffsetDateTime::UNIX_EPOCH,
        });
        let back: TenantBinding = serde_json::from_str(&serde_json::to_string(&provider).expect("json")).expect("back");
        assert_eq!(back, provider);
    }
}
