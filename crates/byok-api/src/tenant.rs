//! Tenants: adding one, its status with the per-region checklist, the setup the customer runs,
//! the verification of that setup, and restoration.

use byok_domain::TenantState;
use serde::{Deserialize, Serialize};

/// `POST /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddTenantRequest {
    pub id: String,
    pub location: String,
    pub account_id: String,
    /// How the customer grants the provider its keys: `byok` (a role, the default) or `cmk`
    /// (key policies alone).
    #[serde(default, skip_serializing_if = "KeyModeName::is_byok")]
    pub mode: KeyModeName,
    /// A CMK tenant's context tag: 1 to 12 letters and digits, carried in the encryption
    /// context of every KMS call with its keys (so the customer's CloudTrail shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tag: Option<String>,
}

/// `POST /v1/provider-held-tenants`: a tenant on keys byok makes in the provider's own account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddProviderHeldTenantRequest {
    pub id: String,
    pub location: String,
}

/// A tenant's key mode, as the API names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyModeName {
    /// Role-based BYOK: the provider assumes the customer's role.
    #[default]
    Byok,
    /// Customer-managed keys: each key's policy grants the provider's own principal.
    Cmk,
    /// Provider-held keys: KMS keys in the provider's own account, until the customer brings
    /// theirs (`POST /v1/tenants/{id}/adopt`).
    Provider,
}

impl KeyModeName {
    pub fn is_byok(&self) -> bool {
        *self == KeyModeName::Byok
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            KeyModeName::Byok => "byok",
            KeyModeName::Cmk => "cmk",
            KeyModeName::Provider => "provider",
        }
    }
}

/// The answer to `POST /v1/tenants`: the admin token is shown this once.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewTenantResponse {
    pub tenant: TenantStatus,
    pub instructions: Instructions,
    pub admin_token: String,
}

impl std::fmt::Debug for NewTenantResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTenantResponse").field("tenant", &self.tenant).field("admin_token", &"** redacted **").finish_non_exhaustive()
    }
}

/// One region's key, as a tenant's status lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionStatus {
    pub region: String,
    pub key_arn: String,
}

/// A tenant as the API shows it (never a key, wrapped or not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantStatus {
    pub id: String,
    pub location: String,
    #[serde(flatten)]
    pub state: TenantState,
    pub account_id: String,
    /// `byok` or `cmk`.
    pub mode: KeyModeName,
    /// A CMK tenant's context tag, if it chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tag: Option<String>,
    /// The role the provider assumes (BYOK only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub legacy_trust: bool,
    pub regions: Vec<RegionStatus>,
    /// Its tenant key generations: which seals, which open, which are kept.
    pub keys: byok_domain::KeyGenerations,
    pub version: i64,
    pub created_at: String,
    /// The latest region-by-region check on this node (probe, restoration), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<LastCheck>,
}

/// `PUT /v1/tenants/{id}/min-decryption-generation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinDecryptionRequest {
    #[serde(deserialize_with = "crate::integral::u32")]
    pub generation: u32,
}

/// `POST /v1/tenants/{id}/rekey`: the customer's replacement key in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RekeyRequest {
    pub region: String,
    /// The new key's ARN, or an alias; by default the tenant's own alias (after the customer
    /// re-pointed it to the new key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `POST /v1/tenants/{id}/migration-setup` and `POST /v1/tenants/{id}/migrate`: moving an active
/// role-based tenant onto customer-managed keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// The mode to move to: `cmk` (the only move built).
    pub to: KeyModeName,
    /// The context tag from now on (1 to 12 letters and digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tag: Option<String>,
    /// `migrate` only: a region's new key (ARN or alias) where it is not the tenant's current
    /// key (by default each region keeps its key, once its policy grants the provider).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub keys: std::collections::BTreeMap<String, String>,
}

/// The answer to `POST /v1/tenants/{id}/migrate`: switched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrationResponse {
    pub tenant: TenantStatus,
    /// Each region's key now, and the generations rewrapped under it.
    pub regions: Vec<MigratedRegion>,
    /// From the first check to the switch.
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigratedRegion {
    pub region: String,
    pub key_arn: String,
    pub generations: Vec<u32>,
}

/// `POST /v1/tenants/{id}/adoption-setup` and `POST /v1/tenants/{id}/adopt`: moving a tenant on
/// provider-held keys onto the customer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptRequest {
    /// The customer's mode: `cmk` (key policies alone) or `byok` (a role).
    pub to: KeyModeName,
    /// The customer's AWS account.
    pub account_id: String,
    /// `cmk` only: the context tag (1 to 12 letters and digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tag: Option<String>,
    /// `adopt` only: a region's key (ARN or alias) where it is not found by the tenant's alias.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub keys: std::collections::BTreeMap<String, String>,
}

/// A provider-held key and when AWS deletes it (RFC 3339; absent if scheduling failed and
/// finishing the adoption will try again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderKeyDeletion {
    pub key_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
}

/// The answer to `POST /v1/tenants/{id}/adopt`: switched onto the customer's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdoptionResponse {
    pub tenant: TenantStatus,
    /// Each region's customer key, with the generations rewrapped under it (the fresh one last).
    pub regions: Vec<MigratedRegion>,
    /// The fresh generation, made under the customer's keys alone: rewrap records onto it.
    pub first_generation: u32,
    pub provider_keys: Vec<ProviderKeyDeletion>,
    /// From the first check to the switch.
    pub elapsed_ms: u64,
}

/// The answer to `POST /v1/tenants/{id}/adopt/finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishedAdoptionResponse {
    pub tenant: TenantStatus,
    /// Generations retired and shredded.
    pub shredded: Vec<u32>,
    pub provider_keys: Vec<ProviderKeyDeletion>,
}

/// `GET /v1/adoptions`: tenants on provider-held keys, and tenants moving onto their customer's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdoptionReport {
    /// Tenants still on provider-held keys.
    pub waiting: u64,
    /// Tenants switched whose records are still moving (the adoption not finished).
    pub adopting: u64,
    /// Records rewrapped off provider-held generations, by every node.
    pub records_rewrapped: u64,
    /// Records per second, summed over the adopting tenants.
    pub rate_per_s: f64,
    pub tenants: Vec<AdoptionTenant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdoptionTenant {
    pub tenant: String,
    /// `provider` (waiting) or `adopting`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_generation: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<String>,
    pub records_rewrapped: u64,
    pub rate_per_s: f64,
}

/// What the customer runs in their AWS account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instructions {
    pub tenant: String,
    pub account_id: String,
    /// `byok` or `cmk`.
    #[serde(default)]
    pub mode: KeyModeName,
    /// A CMK tenant's context tag, shown back for the customer to confirm: it is fixed once
    /// the tenant is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tag: Option<String>,
    /// The provider's principal: what the trust policy (BYOK) or the key policies (CMK) name.
    #[serde(default)]
    pub provider_principal: String,
    /// The role, its external id and its trust policy: BYOK only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub alias: String,
    pub regions: Vec<String>,
    /// The role's trust policy, as JSON (BYOK only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_policy: Option<serde_json::Value>,
    /// Each key's policy, as JSON: the account administers, the role (BYOK) or the provider
    /// (CMK) only uses.
    #[serde(default)]
    pub key_policy: serde_json::Value,
    /// A bash script of `aws` CLI commands that performs the whole setup.
    pub commands: String,
    /// The same setup as a CloudFormation template (YAML), deployed once per region.
    #[serde(default)]
    pub cloudformation: String,
    /// The same setup as Terraform.
    #[serde(default)]
    pub terraform: String,
}

/// One region's verification result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionCheck {
    pub region: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
    /// What is wrong and what the customer should do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The outcome of `tenant verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub tenant: String,
    /// Whether the tenant is now active.
    pub ok: bool,
    /// The role: can it be assumed with the external id, and not without?
    pub trust_ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_problem: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub regions: Vec<RegionCheck>,
}

/// What one region's access check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RegionAccess {
    /// Assumed, key enabled, unwrap worked.
    Ok,
    /// The customer withdrew access here.
    Denied { denial: DenialKind, message: String },
    /// AWS did not answer definitively; says nothing about the customer.
    Unknown { message: String },
}

/// The kind of a definitive denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialKind {
    TrustPolicy,
    KeyDisabled,
    KeyPendingDeletion,
    KeyNotFound,
    KeyPolicy,
    IncorrectKey,
}

/// One region's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionResult {
    pub region: String,
    #[serde(flatten)]
    pub access: RegionAccess,
    /// What to do, when denied (the customer guide's step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// How long the region's check took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

/// A tenant's latest region-by-region check on one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastCheck {
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    /// The STS session name the check used (`byok-probe`, `byok-restore`, …).
    pub purpose: String,
    pub regions: Vec<RegionResult>,
}

/// The answer to "ready to restore".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restoration {
    pub tenant: String,
    /// Whether access is back.
    pub restored: bool,
    pub regions: Vec<RegionResult>,
    /// What the customer still has to do, region by region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// The tenant was active already: nothing was checked or changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_results_round_trip_through_their_flattened_tag() {
        let r = RegionResult {
            region: "eu-west-1".into(),
            access: RegionAccess::Denied { denial: DenialKind::KeyDisabled, message: "disabled".into() },
            remedy: Some("steps 9-12".into()),
            latency_ms: Some(12),
        };
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["result"], "denied");
        assert_eq!(json["denial"], "key_disabled");
        assert_eq!(serde_json::from_value::<RegionResult>(json).expect("back"), r);
    }
}
