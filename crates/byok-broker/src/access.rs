//! Checking a tenant's access region by region: the probe the monitor runs, the check a
//! data-path denial triggers, and the verification of a restoration.
//!
//! A probe is always a *fresh* AssumeRole (a trust-policy change does not end live sessions on
//! AWS), DescribeKey, and a real unwrap of the tenant's wrapped key. Only definitive answers
//! count: one denial in any region revokes; throttling, 5xx, timeouts and dropped connections
//! never do.

use byok_domain::{Region, Tenant};
use byok_kms::{AccessError, Denial, KeyService, Purpose};
use byok_store::WrappedKey;
use serde::Serialize;

use crate::metrics::Metrics;

/// What one region's check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RegionAccess {
    /// Assumed, key enabled, unwrap worked.
    Ok,
    /// The customer withdrew access here.
    Denied { denial: DenialKind, message: String },
    /// AWS did not answer definitively; says nothing about the customer.
    Unknown { message: String },
}

/// [`Denial`] as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialKind {
    TrustPolicy,
    KeyDisabled,
    KeyPendingDeletion,
    KeyNotFound,
    KeyPolicy,
    IncorrectKey,
}

impl From<Denial> for DenialKind {
    fn from(d: Denial) -> Self {
        match d {
            Denial::TrustPolicy => DenialKind::TrustPolicy,
            Denial::KeyDisabled => DenialKind::KeyDisabled,
            Denial::KeyPendingDeletion => DenialKind::KeyPendingDeletion,
            Denial::KeyNotFound => DenialKind::KeyNotFound,
            Denial::KeyPolicy => DenialKind::KeyPolicy,
            Denial::IncorrectKey => DenialKind::IncorrectKey,
        }
    }
}

impl DenialKind {
    /// The step of the restoration procedure (`shared/seed/restore-byok-access.txt`) that
    /// undoes this denial.
    pub fn remedy(self, region: &str, role_name: &str) -> String {
        match self {
            DenialKind::TrustPolicy => format!(
                "steps 3-8: in IAM, role {role_name}, Trust relationships, change the provider's statement from Deny to Allow (aws iam update-assume-role-policy --role-name {role_name} --policy-document file://trust-policy.json)"
            ),
            DenialKind::KeyDisabled => format!(
                "steps 9-12: in the KMS console for {region}, select the key and Key actions > Enable (aws kms enable-key --region {region} --key-id KEY)"
            ),
            DenialKind::KeyPendingDeletion => format!(
                "the key in {region} is scheduled for deletion: cancel it first (aws kms cancel-key-deletion --region {region} --key-id KEY), then steps 9-12 to enable it"
            ),
            DenialKind::KeyNotFound => format!(
                "the key in {region} does not exist in that region: make sure you are in {region} (step 9); a deleted key cannot be restored"
            ),
            DenialKind::KeyPolicy => format!(
                "the key policy in {region} no longer lets the role {role_name} use the key: restore the key policy statement for the role"
            ),
            DenialKind::IncorrectKey => {
                format!("the key in {region} is not the key the tenant was set up with: point the alias back at the original key")
            }
        }
    }
}

/// One region's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RegionResult {
    pub region: String,
    #[serde(flatten)]
    pub access: RegionAccess,
    /// What to do, when denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

fn outcome(region: &Region, result: Result<(), AccessError>, role_name: &str) -> RegionResult {
    let access = match result {
        Ok(()) => RegionAccess::Ok,
        Err(AccessError::Denied { denial, message, .. }) => RegionAccess::Denied { denial: denial.into(), message },
        Err(other) => RegionAccess::Unknown { message: other.to_string() },
    };
    let remedy = match &access {
        RegionAccess::Denied { denial, .. } => Some(denial.remedy(region.as_str(), role_name)),
        RegionAccess::Ok | RegionAccess::Unknown { .. } => None,
    };
    RegionResult { region: region.to_string(), access, remedy }
}

/// Checks one region with fresh sessions: AssumeRole, DescribeKey, unwrap.
pub async fn check_region(
    kms: &dyn KeyService,
    metrics: &Metrics,
    tenant: &Tenant,
    wrapped: Option<&WrappedKey>,
    region: &Region,
    purpose: Purpose,
) -> RegionResult {
    let result = async {
        let assumed = kms.assume_fresh(&tenant.binding, purpose, true).await;
        metrics.kms("AssumeRole", &assumed);
        assumed?;
        let key = tenant.binding.key_for(region).ok_or_else(|| AccessError::Denied {
            denial: Denial::KeyNotFound,
            region: Some(region.clone()),
            message: "no key bound for this region".into(),
        })?;
        let described = kms.describe_key(&tenant.binding, region, key.as_str(), purpose).await;
        metrics.kms("DescribeKey", &described);
        let status = described?;
        if !status.enabled {
            let denial = if status.state == "PendingDeletion" { Denial::KeyPendingDeletion } else { Denial::KeyDisabled };
            return Err(AccessError::Denied { denial, region: Some(region.clone()), message: format!("the key is {}", status.state) });
        }
        let wrapped = wrapped
            .ok_or_else(|| AccessError::Other { code: "NoWrappedKey".into(), message: "no wrapped tenant key for this region".into() })?;
        let unwrapped = kms.unwrap(&tenant.binding, region, &tenant.id, &wrapped.wrapped, purpose).await;
        metrics.kms("Decrypt", &unwrapped);
        unwrapped.map(|_| ())
    }
    .await;
    outcome(region, result, tenant.binding.role_arn.name())
}

/// Every region of a tenant, in the location's order.
pub async fn check_tenant(
    kms: &dyn KeyService,
    metrics: &Metrics,
    tenant: &Tenant,
    wrapped: &[WrappedKey],
    purpose: Purpose,
) -> Vec<RegionResult> {
    let mut results = Vec::with_capacity(tenant.binding.keys.len());
    for key in &tenant.binding.keys {
        let w = wrapped.iter().find(|w| w.region == key.region);
        results.push(check_region(kms, metrics, tenant, w, &key.region, purpose).await);
    }
    results
}
