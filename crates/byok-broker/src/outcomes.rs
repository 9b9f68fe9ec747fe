//! What the broker answers, as its own types: a check's regions, a verification, a
//! restoration, the customer's setup, a held revocation, the audit chain's check. Only
//! `byok-server`'s views turn these into the API's wire types, so the wire can change without
//! the decisions noticing, and the decisions compare typed values, never strings.

use byok_domain::{HeldRegion, Region, RegionResult, TenantId};
use byok_kms::Purpose;
use time::OffsetDateTime;

/// A tenant's latest region-by-region check on one node.
#[derive(Debug, Clone, PartialEq)]
pub struct LastCheck {
    pub at: OffsetDateTime,
    /// What the check was for (its STS session name says so on AWS's side).
    pub purpose: Purpose,
    pub regions: Vec<RegionResult>,
}

/// The answer to "ready to restore".
#[derive(Debug, Clone, PartialEq)]
pub struct Restoration {
    pub tenant: TenantId,
    /// Whether access is back.
    pub restored: bool,
    pub regions: Vec<RegionResult>,
    /// What the customer still has to do, region by region.
    pub missing: Vec<String>,
    /// The tenant was active already: nothing was checked or changed.
    pub already_active: bool,
}

/// One region's verification result.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionCheck {
    pub region: Region,
    pub ok: bool,
    pub key_arn: Option<String>,
    /// What is wrong and what the customer should do.
    pub problem: Option<String>,
}

/// The outcome of verifying a tenant's setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub tenant: TenantId,
    /// Whether the tenant is now active.
    pub ok: bool,
    /// The role: can it be assumed with the external id, and not without?
    pub trust_ok: bool,
    pub trust_problem: Option<String>,
    pub warnings: Vec<String>,
    pub regions: Vec<RegionCheck>,
}

/// What the customer runs in their AWS account.
#[derive(Debug, Clone, PartialEq)]
pub struct Instructions {
    pub tenant: TenantId,
    pub account_id: String,
    /// BYOK (a role) or CMK (key policies alone, with the context tag if any).
    pub mode: byok_domain::KeyMode,
    /// Who the key policies grant under CMK, and who the trust policy trusts under BYOK.
    pub provider_principal: String,
    /// The role, its external id and its trust policy: BYOK only.
    pub role_name: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub trust_policy: Option<serde_json::Value>,
    pub alias: String,
    pub regions: Vec<Region>,
    /// Each key's policy: the account administers, the role (BYOK) or the provider (CMK) only
    /// uses.
    pub key_policy: serde_json::Value,
    /// A bash script of `aws` CLI commands that performs the whole setup.
    pub commands: String,
    /// The same setup as a CloudFormation template (YAML), deployed once per region.
    pub cloudformation: String,
    /// The same setup as Terraform.
    pub terraform: String,
}

/// A revocation held for a person to release or dismiss.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRevocation {
    pub tenant: TenantId,
    /// When the denial was first seen: a release revokes as of then.
    pub detected_at: OffsetDateTime,
    /// What each denied region answered.
    pub regions: Vec<HeldRegion>,
}

/// The outcome of checking the whole audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    pub ok: bool,
    pub entries: i64,
    /// The last entry's hash: record it elsewhere to detect a cut-off tail later.
    pub head: String,
    pub first_bad: Option<i64>,
    pub problem: Option<String>,
}
