//! Checking a tenant's access region by region: the probe the monitor runs, the check a
//! data-path denial triggers, and the verification of a restoration.
//!
//! A check is one *fresh* AssumeRole per tenant (a trust-policy change does not end live
//! sessions on AWS, so a reused session proves nothing) — none for a key-policy (CMK) tenant,
//! whose keys the provider's own identity uses — then a real unwrap of the wrapped
//! tenant key in every region; DescribeKey only when an unwrap fails, to tell a disabled or
//! pending-deletion key (the customer's decision) from a key store that is merely unreachable.
//! For a tenant in `us` that is 3 calls in the customer's account per check, not 10. Only
//! definitive answers count: one denial in any region revokes; throttling, 5xx, timeouts and
//! dropped connections never do; and a provider-held tenant's keys are the provider's own, so
//! their denial is an outage, never a revocation.

use std::collections::HashMap;

use byok_domain::{Region, Tenant};
use byok_kms::{AccessError, Denial, Fault, KeyService, KeyState, Purpose, RoleSession};
use byok_store::WrappedKey;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::AuditEvent;
use crate::metrics::Metrics;
use crate::outcomes::LastCheck;
use crate::remedy;

use byok_domain::{RegionAccess, RegionResult};

fn outcome(region: &Region, result: Result<(), AccessError>, tenant: &Tenant) -> RegionResult {
    let access = match result {
        Ok(()) => RegionAccess::Ok,
        // Provider-held keys are the provider's own: no customer decided anything, so their
        // denial is the provider's outage, never a revocation.
        Err(AccessError::Denied { message, .. }) if tenant.binding.mode.is_provider() => {
            tracing::error!(tenant = %tenant.id, region = %region, message = %message, "a provider-held key refused the provider: the provider's own fault, not revoking");
            RegionAccess::Unknown {
                message: format!("the provider-held key refused the provider (a provider fault, never a revocation): {message}"),
            }
        }
        Err(AccessError::Denied { denial, message, .. }) => RegionAccess::Denied { denial, message },
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
        RegionAccess::Denied { denial, .. } => {
            let key = tenant.binding.key_for(region).map(|k| k.to_string());
            let role = tenant.binding.role().map(|(role, _)| role.name());
            Some(remedy::restore_step(*denial, region.as_str(), role, key.as_deref(), tenant.id.as_str()))
        }
        RegionAccess::Ok | RegionAccess::Unknown { .. } => None,
    };
    RegionResult { region: region.clone(), access, remedy, latency_ms: None }
}

/// Checks one region with the check's session: a real unwrap, and DescribeKey to classify a
/// failure.
async fn check_region(
    kms: &dyn KeyService,
    metrics: &Metrics,
    session: &RoleSession,
    tenant: &Tenant,
    wrapped: Option<&WrappedKey>,
    region: &Region,
) -> RegionResult {
    let started = std::time::Instant::now();
    let result = async {
        let key = tenant.binding.key_for(region).ok_or_else(|| AccessError::Denied {
            denial: Denial::KeyNotFound,
            region: Some(region.clone()),
            message: "no key bound for this region".into(),
        })?;
        let wrapped = wrapped
            .ok_or_else(|| AccessError::Other { code: "NoWrappedKey".into(), message: "no wrapped tenant key for this region".into() })?;
        let unwrapped = kms.unwrap_in(session, &tenant.binding, region, &tenant.id, &wrapped.wrapped).await;
        metrics.kms("Decrypt", &unwrapped);
        let failure = match unwrapped {
            Ok(_) => return Ok(()),
            Err(e @ (AccessError::Denied { .. } | AccessError::Transient { fault: Fault::KeyState, .. })) => e,
            Err(other) => return Err(other),
        };
        // The key's state decides what the failure means.
        let described = kms.describe_key_in(session, &tenant.binding, region, key.as_str()).await;
        metrics.kms("DescribeKey", &described);
        match described {
            Ok(status) if !status.enabled => {
                let denial = if status.state == KeyState::PendingDeletion { Denial::KeyPendingDeletion } else { Denial::KeyDisabled };
                Err(AccessError::Denied { denial, region: Some(region.clone()), message: format!("the key is {}", status.state) })
            }
            // Enabled: the unwrap's own answer stands (a key-policy denial is one; a
            // KMSInvalidStateException on an enabled key is a disconnected key store, transient).
            Ok(_) => Err(failure),
            Err(e @ AccessError::Denied { .. }) => Err(e),
            Err(_) => Err(failure),
        }
    }
    .await;
    let mut checked = outcome(region, result, tenant);
    checked.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    checked
}

/// Every region of a tenant, in the location's order, with one fresh session for them all;
/// and, given the tenant's alias, where it points in each region, asked in the same session (a
/// customer who replaced a key re-points the alias; see [`crate::rotation`]). A region whose
/// alias could not be described is left out.
pub async fn check_tenant(
    kms: &dyn KeyService,
    metrics: &Metrics,
    tenant: &Tenant,
    wrapped: &[WrappedKey],
    layer_failures: &HashMap<Region, AccessError>,
    purpose: Purpose,
    alias: Option<&str>,
) -> (Vec<RegionResult>, Vec<(Region, String)>) {
    let started = std::time::Instant::now();
    let session = kms.assume_session(&tenant.binding, purpose).await;
    // A key-policy (CMK) tenant's check assumes nothing: no AssumeRole to count.
    if tenant.binding.role().is_some() {
        metrics.kms("AssumeRole", &session);
    }
    let session = match session {
        Ok(session) => session,
        // The role refused (or could not be reached): every region says so.
        Err(e) => {
            let latency = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            let results = tenant
                .binding
                .keys
                .iter()
                .map(|k| RegionResult { latency_ms: latency, ..outcome(&k.region, Err(e.clone()), tenant) })
                .collect();
            return (results, Vec::new());
        }
    };
    let mut results = Vec::with_capacity(tenant.binding.keys.len());
    for key in &tenant.binding.keys {
        // The current generation's key: the one every new record depends on.
        let w = wrapped.iter().find(|w| w.region == key.region && w.generation == tenant.keys.current);
        let checked = match layer_failures.get(&key.region) {
            Some(failure) => outcome(&key.region, Err(failure.clone()), tenant),
            None => check_region(kms, metrics, &session, tenant, w, &key.region).await,
        };
        results.push(checked);
    }
    let mut targets = Vec::new();
    if let Some(alias) = alias {
        for key in &tenant.binding.keys {
            let described = kms.describe_key_in(&session, &tenant.binding, &key.region, alias).await;
            metrics.kms("DescribeKey", &described);
            if let Ok(status) = described {
                targets.push((key.region.clone(), status.arn));
            }
        }
    }
    (results, targets)
}

impl Broker {
    /// Checks every region of the tenant for `purpose`, audits each region's key use, and
    /// keeps the result as the tenant's latest check on this node.
    pub(crate) async fn check(&self, tenant: &Tenant, purpose: Purpose) -> Result<Vec<RegionResult>, BrokerError> {
        // The current generation's keys, their provider layer opened (a layer that fails is the
        // provider's outage: that region is "unknown", never a denial).
        let mut wrapped = Vec::new();
        let mut layer_failures = HashMap::new();
        for mut w in self.store.wrapped_keys(&tenant.id).await?.into_iter().filter(|w| w.generation == tenant.keys.current) {
            match self.open_layer(&tenant.id, &w.wrapped).await {
                Ok(inner) => {
                    w.wrapped = inner;
                    wrapped.push(w);
                }
                Err(e) => {
                    layer_failures.insert(w.region.clone(), e);
                }
            }
        }
        // A probe of a tenant in this pass's round of alias checks also asks where its alias
        // points, in the probe's own session (no extra AssumeRole).
        let alias = (purpose == Purpose::Probe && !tenant.binding.mode.is_provider() && self.take_alias_turn(&tenant.id))
            .then(|| format!("{}{}", self.config.alias_prefix, tenant.id));
        let (regions, targets) =
            check_tenant(self.kms.as_ref(), &self.metrics, tenant, &wrapped, &layer_failures, purpose, alias.as_deref()).await;
        self.note_alias_targets(tenant, targets);
        for r in &regions {
            let routine = purpose == Purpose::Probe && r.access == RegionAccess::Ok && self.config.summarize_probes;
            if routine {
                self.summarize_probe(&tenant.id, r.region.as_str());
                continue;
            }
            self.audit(
                Some(&tenant.id),
                AuditEvent::KeyUse(purpose),
                serde_json::json!({ "region": r.region, "access": r.access, "session": purpose.session_name() }),
            )
            .await;
        }
        self.record_check(&tenant.id, LastCheck { at: self.clock.now(), purpose, regions: regions.clone() });
        Ok(regions)
    }
}
