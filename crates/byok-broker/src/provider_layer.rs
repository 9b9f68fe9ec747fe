//! The provider-held layer, the broker's side (the key service's side is
//! `byok_kms::provider_layer`). Every customer-wrapped tenant key is encrypted once more, under a
//! key in the provider's own account made for that tenant and region, before it is stored:
//!
//! ```text
//! stored = MAGIC | u16 length of the provider key's ARN | ARN | Encrypt(provider key, customer-wrapped key)
//! ```
//!
//! At destruction those provider keys are disabled and scheduled for deletion, so that no copy
//! of the database taken before (a backup, a `pg_dump`, a replica, a dead tuple) can be
//! unwrapped afterwards, even with the customer's key re-enabled. A stored blob without the
//! magic is a customer-wrapped key as stored before this layer existed (or by a key service
//! without one, the test double): it is used as it is.
//!
//! Failures here are the provider's own, never a customer's decision: they are reported as
//! provider faults (`key service unavailable` on the data path, `unknown` in a probe) and never
//! count as a denial. Opened layers (customer-wrapped keys, useless without the customer's KMS)
//! are kept in memory per tenant, so a probe or a cache refill costs no provider call after the
//! first; they are forgotten with the tenant's cached key.

use byok_domain::{KeyArn, Region, TenantId};
use byok_kms::{AccessError, Fault};
use serde_json::json;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{AuditEvent, KeyEvent};

/// Marks a stored wrapped key sealed by the provider layer (version 1).
const MAGIC: &[u8] = b"byok-pl1";

/// The stored form of `outer`, sealed under `key`.
fn frame(key: &KeyArn, outer: &[u8]) -> Vec<u8> {
    let arn = key.as_str().as_bytes();
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + arn.len() + outer.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u16::try_from(arn.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(arn);
    out.extend_from_slice(outer);
    out
}

/// The provider key and the sealed bytes of a stored wrapped key, if it is sealed; `Err` when it
/// says it is but does not parse.
fn unframe(stored: &[u8]) -> Result<Option<(KeyArn, &[u8])>, AccessError> {
    let Some(rest) = stored.strip_prefix(MAGIC) else { return Ok(None) };
    let corrupt = || AccessError::Provider { message: "a stored wrapped key's provider layer does not parse".into() };
    let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(corrupt)?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (arn, outer) = (rest.get(..len).ok_or_else(corrupt)?, rest.get(len..).ok_or_else(corrupt)?);
    let arn: KeyArn = std::str::from_utf8(arn).ok().and_then(|a| a.parse().ok()).ok_or_else(corrupt)?;
    Ok(Some((arn, outer)))
}

/// A failure of the provider's own layer: never a customer's denial. A transient one stays
/// transient (retried, `key service unavailable`); anything else is the provider's fault.
fn layer_fault(e: AccessError) -> AccessError {
    match e {
        AccessError::Transient { .. } => e,
        AccessError::Denied { message, .. } | AccessError::Other { message, .. } | AccessError::Provider { message } => {
            AccessError::Provider { message: format!("the provider-held key layer failed: {message}") }
        }
        AccessError::Corrupt { region, message } => {
            AccessError::Provider { message: format!("the provider-held key layer in {region}: {message}") }
        }
    }
}

impl Broker {
    /// Seals a customer-wrapped tenant key for storage under the tenant's provider key in
    /// `region`, which is made at first use (one per tenant and region, recorded in the store;
    /// of two nodes making one at once, the first recorded is kept and the other deleted).
    pub(crate) async fn seal_layer(&self, tenant: &TenantId, region: &Region, inner: Vec<u8>) -> Result<Vec<u8>, BrokerError> {
        let key = match self.store.provider_key(tenant, region).await? {
            Some(key) if key.deletion_date.is_none() => key.key_arn,
            Some(_) => {
                return Err(BrokerError::KeyAccess(layer_fault(AccessError::Provider {
                    message: format!("the key of {tenant} in {region} is being deleted"),
                })));
            }
            None => match self.kms.create_provider_key(region, tenant).await.map_err(|e| BrokerError::from_access(layer_fault(e)))? {
                None => return Ok(inner),
                Some(created) => {
                    let recorded = self.store.add_provider_key(tenant, region, created.as_str(), self.clock.now()).await?;
                    if recorded.key_arn != created.as_str() {
                        if let Err(e) = self.kms.destroy_provider_key(&created).await {
                            tracing::warn!(key = %created, error = %e, "could not delete a provider key another node's made redundant");
                        }
                    }
                    recorded.key_arn
                }
            },
        };
        let key: KeyArn = key.parse().map_err(|_| {
            BrokerError::KeyAccess(AccessError::Provider { message: format!("the stored provider key {key} does not parse") })
        })?;
        let outer = self.kms.provider_seal(&key, tenant, &inner).await;
        self.metrics.kms("ProviderEncrypt", &outer);
        let outer = outer.map_err(|e| BrokerError::from_access(layer_fault(e)))?;
        // Checked before anything is stored, as every wrap is.
        if self.kms.provider_open(&key, tenant, &outer).await.map_err(|e| BrokerError::from_access(layer_fault(e)))? != inner {
            return Err(BrokerError::KeyAccess(AccessError::Provider {
                message: "the provider key did not give back what it encrypted".into(),
            }));
        }
        let stored = frame(&key, &outer);
        self.opened_layers.put(tenant, &stored, &inner);
        Ok(stored)
    }

    /// The customer-wrapped key inside a stored one (as it is, if it has no provider layer).
    pub(crate) async fn open_layer(&self, tenant: &TenantId, stored: &[u8]) -> Result<Vec<u8>, AccessError> {
        let Some((key, outer)) = unframe(stored)? else { return Ok(stored.to_vec()) };
        if let Some(inner) = self.opened_layers.get(tenant, stored) {
            return Ok(inner);
        }
        let inner = self.kms.provider_open(&key, tenant, outer).await;
        self.metrics.kms("ProviderDecrypt", &inner);
        let inner = inner.map_err(layer_fault)?;
        self.opened_layers.put(tenant, stored, &inner);
        Ok(inner)
    }

    /// Disables and schedules the deletion of the provider keys of destroyed tenants that are
    /// not scheduled yet (right after a destruction, and on every leader pass until each is).
    /// Returns how many are still not scheduled.
    pub async fn destroy_provider_layers(&self) -> usize {
        let due = match self.store.provider_keys_to_destroy().await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "could not list the provider keys to delete");
                return usize::MAX;
            }
        };
        let mut left = 0;
        for (tenant, key) in due {
            self.opened_layers.forget(&tenant);
            let result = match key.key_arn.parse::<KeyArn>() {
                Ok(arn) => self.kms.destroy_provider_key(&arn).await,
                Err(_) => Err(AccessError::Provider { message: format!("the stored provider key {} does not parse", key.key_arn) }),
            };
            self.metrics.kms("ProviderScheduleKeyDeletion", &result);
            match result {
                Ok(deletion_date) => {
                    if let Err(e) = self.store.provider_key_destroyed(&tenant, &key.region, deletion_date).await {
                        tracing::error!(tenant = %tenant, error = %e, "could not record a provider key's deletion");
                        left += 1;
                        continue;
                    }
                    self.audit(
                        Some(&tenant),
                        AuditEvent::Keys(KeyEvent::ProviderLayerDestroyed),
                        json!({ "region": key.region, "key": key.key_arn, "disabled": true, "deleted_on": deletion_date.unix_timestamp() }),
                    )
                    .await;
                }
                Err(e) => {
                    let fault = matches!(
                        e,
                        AccessError::Transient { fault: Fault::Throttled | Fault::ServerError | Fault::Network | Fault::Timeout, .. }
                    );
                    tracing::error!(tenant = %tenant, key = %key.key_arn, transient = fault, error = %e, "could not delete a destroyed tenant's provider key; tried again next pass");
                    left += 1;
                }
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_unsealed_blobs_pass_through() {
        let key: KeyArn = "arn:aws:kms:eu-west-1:279766244153:key/0b0b0b0b-1111-2222-3333-444455556666".parse().expect("arn");
        let stored = frame(&key, b"outer-bytes");
        let (back, outer) = unframe(&stored).expect("parses").expect("sealed");
        assert_eq!((back, outer), (key, &b"outer-bytes"[..]));
        assert_eq!(unframe(b"\x01\x02\x02\x00a customer blob").expect("parses"), None, "no magic: as stored before the layer");
        assert!(unframe(b"byok-pl1\x00\x40short").is_err(), "says sealed but cut short");
        let denial = AccessError::Denied { denial: byok_kms::Denial::KeyDisabled, region: None, message: "disabled".into() };
        assert!(matches!(layer_fault(denial), AccessError::Provider { .. }), "a provider key's denial is never the customer's");
    }
}
