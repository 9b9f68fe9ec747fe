//! The data plane: encrypt and decrypt a tenant's records with its tenant key, from this node's
//! cache or unwrapped now (one KMS call however many requests wait), and the cache's sync with
//! decisions other nodes made.
//!
//! A definitive denial seen here does not run the probe inside the user's request: the tenant
//! goes to the monitor's "probe now" queue and the request is answered at once.

use std::collections::HashSet;
use std::sync::Arc;

use byok_domain::{TenantId, TenantState};
use byok_envelope::{Plaintext, RecordSealer};
use byok_kms::{AccessError, Purpose};

use crate::audit::AuditEvent;
use crate::broker::Broker;
use crate::cache::CachedKey;
use crate::error::BrokerError;

impl Broker {
    /// Seals `plaintext` for the tenant, bound to `context` (the caller's record id).
    pub async fn encrypt(&self, id: &TenantId, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, BrokerError> {
        Ok(self.sealer(id).await?.seal(context, plaintext)?)
    }

    /// Opens a record sealed by [`encrypt`](Self::encrypt) for the same tenant and context.
    pub async fn decrypt(&self, id: &TenantId, context: &[u8], record: &[u8]) -> Result<Plaintext, BrokerError> {
        Ok(self.sealer(id).await?.open(context, record)?)
    }

    /// The tenant's sealer: from this node's cache, or unwrapped now.
    pub async fn sealer(&self, id: &TenantId) -> Result<Arc<RecordSealer>, BrokerError> {
        let (sealer, hit) = match self.cache.get_or_load(id, || self.load_key(id)).await {
            Ok(found) => found,
            Err(denied @ BrokerError::KeyAccessDenied(_)) => {
                // The monitor checks every region afresh, at once, and revokes only if they agree.
                self.request_probe(id);
                return Err(denied);
            }
            Err(e) => return Err(e),
        };
        if hit {
            self.metrics.cache_hits.inc()
        } else {
            self.metrics.cache_misses.inc()
        };
        Ok(sealer)
    }

    async fn load_key(&self, id: &TenantId) -> Result<CachedKey, BrokerError> {
        let tenant = self.tenant(id).await?;
        match tenant.state {
            TenantState::Active => {}
            TenantState::Onboarding => return Err(BrokerError::NotActive { tenant: id.clone(), state: "onboarding" }),
            TenantState::Revoked { deadline, .. } => return Err(BrokerError::Revoked { tenant: id.clone(), deadline }),
            TenantState::Destroyed { .. } => return Err(BrokerError::Destroyed(id.clone())),
        }
        let wrapped = self.store.wrapped_keys(id).await?;
        let mut transient: Option<AccessError> = None;
        // Nearest region first; a transient failure moves on to the next region.
        for region_key in &tenant.binding.keys {
            let Some(w) = wrapped.iter().find(|w| w.region == region_key.region) else { continue };
            let result = self.kms.unwrap(&tenant.binding, &region_key.region, id, &w.wrapped, Purpose::Data).await;
            self.metrics.kms("Decrypt", &result);
            let outcome = match &result {
                Ok(_) => "ok".to_string(),
                Err(e) => e.to_string(),
            };
            self.audit(
                Some(id),
                AuditEvent::KeyUse(Purpose::Data),
                serde_json::json!({ "region": region_key.region, "operation": "Decrypt", "session": Purpose::Data.session_name(), "outcome": outcome }),
            )
            .await;
            match result {
                Ok(key) => {
                    let sealer = RecordSealer::new(id.as_str(), key, w.generation)?;
                    return Ok(CachedKey { sealer: Arc::new(sealer), unwrapped_at: self.clock.now() });
                }
                Err(e) if e.is_transient() => transient = Some(e),
                Err(e) => return Err(BrokerError::from_access(e)),
            }
        }
        Err(match transient {
            Some(e) => BrokerError::KeyServiceUnavailable(e),
            None => BrokerError::NoWrappedKey,
        })
    }

    /// Drops this node's cached keys of every tenant that is no longer active, whichever node
    /// decided it (several nodes share one PostgreSQL). Returns how many it dropped.
    pub async fn sync_cache(&self) -> Result<usize, BrokerError> {
        if self.cache.is_empty() {
            return Ok(0);
        }
        let inactive: HashSet<TenantId> = self.store.inactive_tenants().await?.into_iter().collect();
        let mut dropped = 0;
        for tenant in self.cache.tenants() {
            if inactive.contains(&tenant) {
                self.cache.purge(&tenant);
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// How many tenant keys this node holds.
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }
}
