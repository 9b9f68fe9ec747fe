//! The data plane: encrypt, decrypt and rewrap a tenant's records with its tenant keys, from
//! this node's cache or unwrapped now (one KMS call per generation however many requests
//! wait), and the cache's sync with decisions other nodes made.
//!
//! New records are sealed under the current generation; a record opens under the generation
//! its header names, unless that generation is retired (`generation_retired`).
//!
//! A definitive denial seen here does not run the probe inside the user's request: the tenant
//! goes to the monitor's "probe now" queue and the request is answered at once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use byok_domain::{RecordGeneration, Tenant, TenantId, TenantState};
use byok_envelope::{EnvelopeError, Plaintext, RecordSealer, TenantKey};
use byok_kms::{AccessError, Purpose};
use byok_store::WrappedKey;

use crate::broker::Broker;
use crate::cache::{CachedKey, TenantKeys};
use crate::error::BrokerError;

impl Broker {
    /// Seals `plaintext` for the tenant under its current key generation, bound to `context`
    /// (the caller's record id).
    pub async fn encrypt(&self, id: &TenantId, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, BrokerError> {
        let keys = self.keys(id).await?;
        Ok(keys.writer().ok_or(BrokerError::NoWrappedKey)?.seal(context, plaintext)?)
    }

    /// Opens a record sealed by [`encrypt`](Self::encrypt) for the same tenant and context,
    /// under whichever generation sealed it (if it is not retired).
    pub async fn decrypt(&self, id: &TenantId, context: &[u8], record: &[u8]) -> Result<Plaintext, BrokerError> {
        Ok(self.reader(id, record).await?.open(context, record)?)
    }

    /// Opens a record and seals it again under the current generation, with the same context:
    /// the plaintext never leaves the broker (and is wiped when dropped here).
    ///
    /// While the tenant adopts the customer's keys, a record moved off a generation older than
    /// the adoption's first is counted toward the adoption's progress.
    pub async fn rewrap(&self, id: &TenantId, context: &[u8], record: &[u8]) -> Result<Vec<u8>, BrokerError> {
        let plaintext = self.decrypt(id, context, record).await?;
        let keys = self.keys(id).await?;
        let sealed = keys.writer().ok_or(BrokerError::NoWrappedKey)?.seal(context, plaintext.as_slice())?;
        if let Some(first) = keys.adopted_from {
            if byok_envelope::generation_of(record).is_ok_and(|g| g < first) && keys.generations.current >= first {
                self.adoption_tally.count(id);
            }
        }
        Ok(sealed)
    }

    /// The tenant's unwrapped keys: from this node's cache, or unwrapped now.
    pub async fn keys(&self, id: &TenantId) -> Result<Arc<TenantKeys>, BrokerError> {
        let (keys, hit) = match self.cache.get_or_load(id, || self.load_keys(id)).await {
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
        Ok(keys)
    }

    /// The sealer that opens `record`, by the generation its header names.
    async fn reader(&self, id: &TenantId, record: &[u8]) -> Result<Arc<RecordSealer>, BrokerError> {
        let generation = byok_envelope::generation_of(record)?;
        let mut keys = self.keys(id).await?;
        if keys.generations.judge(generation) == RecordGeneration::Unknown {
            // Newer than this node knows: another node may have rotated before this one heard.
            // The store says (one read; a forged header costs no unwrap); reload only if so.
            let newest = self.tenant(id).await?.keys.current;
            if generation <= newest {
                self.cache.purge_if(id, &keys);
                keys = self.keys(id).await?;
            }
        }
        let g = keys.generations;
        match g.judge(generation) {
            RecordGeneration::Opens => keys.sealers.get(&generation).cloned().ok_or(BrokerError::NoWrappedKey),
            RecordGeneration::Retired => Err(BrokerError::GenerationRetired { tenant: id.clone(), generation, min: g.min_decryption }),
            RecordGeneration::Unknown => Err(EnvelopeError::WrongKeyGeneration { found: generation, expected: g.current }.into()),
        }
    }

    /// Unwraps every generation that still opens records (the current one last).
    async fn load_keys(&self, id: &TenantId) -> Result<CachedKey, BrokerError> {
        let tenant = self.tenant(id).await?;
        match tenant.state {
            TenantState::Active => {}
            TenantState::Onboarding => return Err(BrokerError::NotActive { tenant: id.clone(), state: "onboarding" }),
            TenantState::Revoked { deadline, .. } => return Err(BrokerError::Revoked { tenant: id.clone(), deadline }),
            TenantState::Destroyed { .. } => return Err(BrokerError::Destroyed(id.clone())),
        }
        let wrapped = self.store.wrapped_keys(id).await?;
        let mut sealers = BTreeMap::new();
        for generation in tenant.keys.readable().rev() {
            let key = self.unwrap_generation(&tenant, &wrapped, generation, Purpose::Data).await?;
            sealers.insert(generation, Arc::new(RecordSealer::new(id.as_str(), key, generation)?));
        }
        let adopted_from = tenant.binding.adoption.as_ref().map(|a| a.first_generation);
        let keys = TenantKeys { generations: tenant.keys, sealers, adopted_from };
        Ok(CachedKey { keys: Arc::new(keys), unwrapped_at: self.clock.now() })
    }

    /// One generation's tenant key, from the nearest region that answers; a transient failure
    /// moves on to the next region.
    pub(crate) async fn unwrap_generation(
        &self,
        tenant: &Tenant,
        wrapped: &[WrappedKey],
        generation: u32,
        purpose: Purpose,
    ) -> Result<TenantKey, BrokerError> {
        let id = &tenant.id;
        let mut transient: Option<AccessError> = None;
        for region_key in &tenant.binding.keys {
            let Some(w) = wrapped.iter().find(|w| w.region == region_key.region && w.generation == generation) else { continue };
            // The provider's own layer failing is an outage on the provider's side: the next
            // region is tried, and at worst the answer is "key service unavailable".
            let inner = match self.open_layer(id, &w.wrapped).await {
                Ok(inner) => inner,
                Err(e) => {
                    tracing::error!(tenant = %id, region = %region_key.region, error = %e, "the provider-held key layer failed");
                    transient = Some(e);
                    continue;
                }
            };
            let result = self.kms.unwrap(&tenant.binding, &region_key.region, id, &inner, purpose).await;
            self.metrics.kms("Decrypt", &result);
            self.audit_key_use(id, purpose, &region_key.region, "Decrypt", &result, generation).await;
            match result {
                Ok(key) => return Ok(key),
                Err(e) if e.is_transient() => transient = Some(e),
                // Provider-held keys are the provider's own: their refusal is its outage ("key
                // service unavailable"), never the customer's denial.
                Err(e) if tenant.binding.mode.is_provider() => {
                    tracing::error!(tenant = %id, region = %region_key.region, error = %e, "a provider-held key refused the provider");
                    transient = Some(AccessError::Provider { message: format!("the provider-held key refused the provider: {e}") });
                }
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
