//! Checking a tenant's access region by region: the probe the monitor runs, the check a
//! data-path denial triggers, and the verification of a restoration.
//!
//! A probe is always a *fresh* AssumeRole (a trust-policy change does not end live sessions on
//! AWS), DescribeKey, and a real unwrap of the tenant's wrapped key. Only definitive answers
//! count: one denial in any region revokes; throttling, 5xx, timeouts and dropped connections
//! never do.

use byok_domain::{Region, Tenant};
use byok_kms::{AccessError, Denial, KeyService, KeyState, Purpose};
use byok_store::WrappedKey;

use crate::audit::AuditEvent;
use crate::broker::{Broker, LastCheck};
use crate::error::BrokerError;
use crate::metrics::Metrics;
use crate::remedy;

pub use byok_api::{DenialKind, RegionAccess, RegionResult};

/// [`Denial`] as the API shows it.
pub fn denial_kind(d: Denial) -> DenialKind {
    match d {
        Denial::TrustPolicy => DenialKind::TrustPolicy,
        Denial::KeyDisabled => DenialKind::KeyDisabled,
        Denial::KeyPendingDeletion => DenialKind::KeyPendingDeletion,
        Denial::KeyNotFound => DenialKind::KeyNotFound,
        Denial::KeyPolicy => DenialKind::KeyPolicy,
        Denial::IncorrectKey => DenialKind::IncorrectKey,
    }
}

fn outcome(region: &Region, result: Result<(), AccessError>, role_name: &str) -> RegionResult {
    let access = match result {
        Ok(()) => RegionAccess::Ok,
        Err(AccessError::Denied { denial, message, .. }) => RegionAccess::Denied { denial: denial_kind(denial), message },
        Err(transient @ AccessError::Transient { .. }) => RegionAccess::Unknown { message: transient.to_string() },
        // An answer that is neither a denial nor a known fault (an unknown code, the provider's
        // credentials refused, a wrapped key that does not decrypt): never a revocation, and
        // worth a person's look.
        Err(other) => {
            tracing::error!(region = %region, error = %other, "unexpected AWS answer while checking access: not a denial, not revoking");
            RegionAccess::Unknown { message: other.to_string() }
        }
    };
    let remedy = match &access {
        RegionAccess::Denied { denial, .. } => Some(remedy::restore_step(*denial, region.as_str(), role_name)),
        RegionAccess::Ok | RegionAccess::Unknown { .. } => None,
    };
    RegionResult { region: region.to_string(), access, remedy, latency_ms: None }
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
    let started = std::time::Instant::now();
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
            let denial = if status.state == KeyState::PendingDeletion { Denial::KeyPendingDeletion } else { Denial::KeyDisabled };
            return Err(AccessError::Denied { denial, region: Some(region.clone()), message: format!("the key is {}", status.state) });
        }
        let wrapped = wrapped
            .ok_or_else(|| AccessError::Other { code: "NoWrappedKey".into(), message: "no wrapped tenant key for this region".into() })?;
        let unwrapped = kms.unwrap(&tenant.binding, region, &tenant.id, &wrapped.wrapped, purpose).await;
        metrics.kms("Decrypt", &unwrapped);
        unwrapped.map(|_| ())
    }
    .await;
    let mut checked = outcome(region, result, tenant.binding.role_arn.name());
    checked.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    checked
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

impl Broker {
    /// Checks every region of the tenant for `purpose`, audits each region's key use, and
    /// keeps the result as the tenant's latest check on this node.
    pub(crate) async fn check(&self, tenant: &Tenant, purpose: Purpose) -> Result<Vec<RegionResult>, BrokerError> {
        let wrapped = self.store.wrapped_keys(&tenant.id).await?;
        let regions = check_tenant(self.kms.as_ref(), &self.metrics, tenant, &wrapped, purpose).await;
        for r in &regions {
            self.audit(
                Some(&tenant.id),
                AuditEvent::KeyUse(purpose),
                serde_json::json!({ "region": r.region, "access": r.access, "session": purpose.session_name() }),
            )
            .await;
        }
        self.record_check(
            &tenant.id,
            LastCheck { at: self.clock.now(), purpose: purpose.session_name().to_string(), regions: regions.clone() },
        );
        Ok(regions)
    }
}
