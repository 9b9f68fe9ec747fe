//! The provider's own identity, proven every pass before any denial may count: its credentials
//! resolve, `GetCallerIdentity` names the expected role, and the canary — a role in the
//! provider's own account that trusts the provider exactly as customers' roles do — is assumed
//! the same way, with the same code, and really wraps and unwraps with its key.
//!
//! A failure is a **provider fault**: an outage that alerts the operator (an error log, the
//! `byok_provider_healthy` gauge at 0, `/healthz` degraded, one open "Provider identity failing"
//! alert), never a customer's revocation.

use byok_domain::{AlertKind, KeyMode, RegionKey, TenantBinding, TenantId};
use byok_envelope::TenantKey;
use byok_kms::{AccessError, Denial, Purpose};

use crate::broker::Broker;
use crate::config::CanaryConfig;
use crate::error::ProviderFault;
pub use crate::provider_health::ProviderHealth;

/// The tenant id the canary's wrapped key is bound to (its encryption context).
fn canary_tenant() -> Option<TenantId> {
    crate::provider_setup::CANARY_TENANT.parse().ok()
}

/// Whether `caller` (a `GetCallerIdentity` ARN) is the provider's principal `expected` (a role
/// ARN): the role itself, or a session of it.
pub fn is_provider(caller: &str, expected: &byok_domain::RoleArn) -> bool {
    let session_prefix = format!("arn:aws:sts::{}:assumed-role/{}/", expected.account(), expected.name());
    caller == expected.as_str() || caller.starts_with(&session_prefix)
}

impl Broker {
    /// The node's view of the provider's identity, as of the last check.
    pub fn provider_health(&self) -> ProviderHealth {
        self.provider_health.get()
    }

    /// Proves the provider's identity works now; on failure, alerts and returns why.
    pub async fn check_provider(&self) -> Result<(), ProviderFault> {
        let result = self.prove_identity().await;
        self.metrics.kms("ProviderCheck", &result);
        let now = self.clock.now();
        let before = self.provider_health.get();
        match result {
            Ok(()) => {
                self.provider_health.set(ProviderHealth { healthy: true, reason: None, checked_at: Some(now), failing_since: None });
                self.metrics.provider_healthy.set(1);
                if !before.healthy && before.checked_at.is_some() {
                    tracing::warn!("provider identity works again; decisions resume");
                }
                match self.store.resolve_alert(AlertKind::ProviderIdentity, now).await {
                    Ok(Some(alert)) => tracing::warn!(alert = alert.id, "resolved: {}", alert.title),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "could not resolve the provider identity alert"),
                }
                Ok(())
            }
            Err(e) => {
                let reason = e.to_string();
                let failing_since = before.failing_since.or(Some(now));
                self.provider_health.set(ProviderHealth {
                    healthy: false,
                    reason: Some(reason.clone()),
                    checked_at: Some(now),
                    failing_since,
                });
                self.metrics.provider_healthy.set(0);
                tracing::error!(
                    reason = %reason,
                    "PROVIDER FAULT: the provider's own identity is failing; no tenant's access is judged until it works again (cached keys keep serving until their TTL)"
                );
                let title = format!("Provider identity failing: {reason}");
                let body = format!(
                    "The broker could not prove its own AWS identity works ({reason}). Until it does, no denial counts as a customer's \
                     revocation: no tenant changes state, no customer ticket is opened, nothing is destroyed. Data is served from \
                     cached keys until their TTL, then requests fail with key_service_unavailable. Check the provider role {} \
                     (it exists, its credentials refresh, no SCP, permissions boundary or session policy denies it) and the canary.",
                    self.config.provider_principal
                );
                if let Err(e) = self.store.open_alert(AlertKind::ProviderIdentity, &title, &body, now).await {
                    tracing::error!(error = %e, "could not open the provider identity alert");
                }
                Err(ProviderFault::Identity(e))
            }
        }
    }

    async fn prove_identity(&self) -> Result<(), AccessError> {
        let caller = self.kms.caller_identity().await?;
        if !is_provider(&caller, &self.config.provider_principal) {
            return Err(AccessError::Provider {
                message: format!("the broker runs as {caller}, not as the provider principal {}", self.config.provider_principal),
            });
        }
        match &self.config.canary {
            Some(canary) => prove_canary(self.kms.as_ref(), canary).await,
            None => Ok(()),
        }
    }
}

/// The canaries, used exactly as customers' keys are. The role canary: a fresh session of the
/// canary role, the key described (it must be enabled), a fresh key wrapped and unwrapped
/// under the canary's encryption context. Then, when configured, the key-policy canary: the
/// same with the provider's own identity on a key in another account whose key policy grants
/// it, as a CMK customer's does. The broker proves them every pass; `byok doctor` once.
pub async fn prove_canary(kms: &dyn byok_kms::KeyService, canary: &CanaryConfig) -> Result<(), AccessError> {
    let binding = TenantBinding {
        account: canary.role_arn.account(),
        role_arn: canary.role_arn.clone(),
        external_id: canary.external_id.clone(),
        keys: Vec::new(),
        legacy_trust: false,
        mode: KeyMode::Byok,
        adoption: None,
    };
    prove_key(kms, binding, &canary.key, canary, false).await?;
    let Some(key) = &canary.key_policy_key else { return Ok(()) };
    let account = key
        .split(':')
        .nth(4)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| canary_other(&format!("the key-policy canary {key} is not a key ARN or an alias ARN")))?;
    let binding = TenantBinding {
        account,
        role_arn: canary.role_arn.clone(),
        external_id: canary.external_id.clone(),
        keys: Vec::new(),
        legacy_trust: false,
        mode: KeyMode::Cmk { context_tag: crate::provider_setup::CANARY_CONTEXT_TAG.parse().ok() },
        adoption: None,
    };
    prove_key(kms, binding, key, canary, true).await
}

fn canary_other(message: &str) -> AccessError {
    AccessError::Other { code: "Canary".into(), message: message.into() }
}

/// One canary key proven with one session (the canary role's, or the provider's own for the
/// key-policy canary), as a tenant's check is. A denial here is the provider's own canary
/// refusing, said as such (never "the customer's role").
async fn prove_key(
    kms: &dyn byok_kms::KeyService,
    mut binding: TenantBinding,
    key_ref: &str,
    canary: &CanaryConfig,
    key_policy: bool,
) -> Result<(), AccessError> {
    let tenant = canary_tenant().ok_or_else(|| canary_other("the canary's tenant id does not parse"))?;
    let failed = |e| canary_failure(e, canary, key_policy);
    let session = kms.assume_session(&binding, Purpose::Canary).await.map_err(failed)?;
    let status = kms.describe_key_in(&session, &binding, &canary.region, key_ref).await.map_err(failed)?;
    if !status.enabled {
        return Err(canary_other(&format!("the canary key {} is {}", status.arn, status.state)));
    }
    let key_arn = status.arn.parse().map_err(|_| canary_other(&format!("the canary key's ARN {} does not parse", status.arn)))?;
    binding.keys.push(RegionKey { region: canary.region.clone(), key_arn });
    let key = TenantKey::generate().ok_or_else(|| canary_other("the system random number generator failed"))?;
    let wrapped = kms.wrap_in(&session, &binding, &canary.region, &tenant, &key).await.map_err(failed)?;
    let back = kms.unwrap_in(&session, &binding, &canary.region, &tenant, &wrapped).await.map_err(failed)?;
    if back != key {
        return Err(canary_other("the canary key did not give back what it encrypted"));
    }
    Ok(())
}

/// A denial met while proving a canary, in the canary's own words: the provider's role and
/// keys, not a customer's.
fn canary_failure(e: AccessError, canary: &CanaryConfig, key_policy: bool) -> AccessError {
    let AccessError::Denied { denial, message, .. } = e else { return e };
    let (role, region) = (&canary.role_arn, &canary.region);
    let (key, user) = match (&canary.key_policy_key, key_policy) {
        (Some(key), true) => (format!("the key-policy canary key {key}"), "the provider's own principal"),
        _ => (format!("the canary key {}", canary.key), "the canary role"),
    };
    let what = match denial {
        Denial::TrustPolicy => {
            format!("the canary role {role} refused to be assumed by the provider (its trust policy, or the provider's own permissions)")
        }
        Denial::KeyDisabled => format!("{key} in {region} is disabled"),
        Denial::KeyPendingDeletion => format!("{key} in {region} is pending deletion"),
        Denial::KeyNotFound => format!("{key} in {region} does not exist"),
        Denial::KeyPolicy => {
            format!("{key} in {region} does not allow {user} (its key policy, or the provider's own permissions)")
        }
        Denial::IncorrectKey => format!("{key} in {region} is not the key it wrapped under"),
    };
    AccessError::Provider { message: format!("{what}: {message}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_denial_never_speaks_of_a_customer() {
        let canary = CanaryConfig {
            role_arn: "arn:aws:iam::279766244153:role/byok-canary".parse().expect("arn"),
            external_id: "canary-external-id-0001".parse().expect("external id"),
            key: "alias/byok-canary".into(),
            region: byok_domain::Region::us_east_1(),
            key_policy_key: Some("arn:aws:kms:us-east-1:279766244153:alias/byok-canary-cmk".into()),
        };
        for key_policy in [false, true] {
            for denial in [Denial::TrustPolicy, Denial::KeyDisabled, Denial::KeyPendingDeletion, Denial::KeyNotFound, Denial::KeyPolicy] {
                let e = canary_failure(AccessError::Denied { denial, region: None, message: "refused".into() }, &canary, key_policy)
                    .to_string();
                assert!(e.contains("canary") && !e.contains("customer"), "{e}");
            }
        }
        let e = canary_failure(AccessError::Denied { denial: Denial::KeyPolicy, region: None, message: "no".into() }, &canary, true);
        assert!(e.to_string().contains("key-policy canary") && e.to_string().contains("provider's own principal"), "{e}");
        let transient = AccessError::Transient { fault: byok_kms::Fault::Throttled, region: None, message: "slow".into() };
        assert_eq!(canary_failure(transient.clone(), &canary, false), transient);
    }

    #[test]
    fn the_provider_is_its_role_or_a_session_of_it() {
        let role: byok_domain::RoleArn = "arn:aws:iam::279766244153:role/Cryptor-OSB-Provider".parse().expect("arn");
        assert!(is_provider("arn:aws:iam::279766244153:role/Cryptor-OSB-Provider", &role));
        assert!(is_provider("arn:aws:sts::279766244153:assumed-role/Cryptor-OSB-Provider/byok-broker", &role));
        assert!(!is_provider("arn:aws:sts::279766244153:assumed-role/Cryptor-OSB-Provider-2/x", &role));
        assert!(!is_provider("arn:aws:sts::111122223333:assumed-role/Cryptor-OSB-Provider/x", &role));
        assert!(!is_provider("arn:aws:iam::279766244153:root", &role));
    }
}
