//! Changing an active tenant's keys online: rotation (a new generation seals from now on, old
//! ones keep opening), retiring old generations (refused from then on) and shredding them, and
//! rekey (the customer's key in one region replaced, every generation rewrapped under it).
//!
//! Each change is one compare-and-set write of the tenant with its audit entry; every node
//! drops its cached keys when it commits, so the next request everywhere uses the new
//! generation. Nothing is written until every KMS call a change needs has succeeded: a
//! failure (or a crash) half-way leaves the tenant exactly as it was.

use byok_domain::{KeyArn, KeyGenerations, Region, Tenant, TenantId, TenantState};
use byok_envelope::TenantKey;
use byok_kms::{AccessError, Purpose};
use byok_store::{KeyChange, WrappedKey};
use serde_json::json;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{AuditEvent, KeyEvent};

/// Tenants whose aliases a pass looks at, round robin, in their probe's own session: at 10,000
/// tenants and a 60 s interval each tenant's aliases are looked at every 2.6 hours (one
/// DescribeKey per region, no extra AssumeRole); at one tenant, every pass.
pub const ALIAS_CHECKS_PER_PASS: usize = 64;

/// Scheduled rotations per pass: 10,000 tenants onboarded the same day come due together, and
/// their rotations (one KMS Encrypt per region each) are spread over passes instead of holding
/// one pass up.
pub const MAX_ROTATIONS_PER_PASS: usize = 256;

/// Why a wrapped key was not accepted (see [`Broker::wrap_checked`]).
pub(crate) enum WrapCheck {
    Encrypt(AccessError),
    Decrypt(AccessError),
    /// KMS answered, with other bytes than it was given.
    Mismatch,
    /// The provider-held layer failed (the provider's problem, never the customer's).
    Layer(BrokerError),
}

impl Broker {
    /// Wraps `key` under the region's key in `binding`, then unwraps it again and compares: a
    /// wrapped key is stored only once it is known to come back. Both calls are audited.
    pub(crate) async fn wrap_checked(
        &self,
        binding: &byok_domain::TenantBinding,
        region: &Region,
        id: &TenantId,
        key: &TenantKey,
        purpose: Purpose,
        generation: u32,
    ) -> Result<Vec<u8>, WrapCheck> {
        let wrapped = self.kms.wrap(binding, region, id, key, purpose).await;
        self.metrics.kms("Encrypt", &wrapped);
        self.audit_key_use(id, purpose, region, "Encrypt", &wrapped, generation).await;
        let wrapped = wrapped.map_err(WrapCheck::Encrypt)?;
        let back = self.kms.unwrap(binding, region, id, &wrapped, purpose).await;
        self.metrics.kms("Decrypt", &back);
        self.audit_key_use(id, purpose, region, "Decrypt", &back, generation).await;
        if back.map_err(WrapCheck::Decrypt)? != *key {
            return Err(WrapCheck::Mismatch);
        }
        self.seal_layer(id, region, wrapped).await.map_err(WrapCheck::Layer)
    }

    /// The tenant, if its keys may change now (it is active).
    pub(crate) async fn changeable(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        let tenant = self.tenant(id).await?;
        match tenant.state {
            TenantState::Active => Ok(tenant),
            ref other => Err(BrokerError::KeysFrozen { tenant: id.clone(), state: other.name() }),
        }
    }

    /// Writes a key change with its audit entry, and drops this node's cached keys (other
    /// nodes hear of it from the store).
    pub(crate) async fn write_change(
        &self,
        tenant: &Tenant,
        generations: &KeyGenerations,
        change: KeyChange<'_>,
        event: KeyEvent,
        detail: serde_json::Value,
    ) -> Result<Tenant, BrokerError> {
        let erases =
            matches!(change, KeyChange::Shred | KeyChange::Rekey { .. } | KeyChange::Migrate { .. } | KeyChange::FinishAdoption { .. });
        let seal = self.event_seal(&tenant.id, AuditEvent::Keys(event), detail);
        let result = self.store.change_keys(&tenant.id, tenant.version, generations, change, &seal).await;
        self.cache.purge(&tenant.id);
        let changed = result?;
        if erases {
            self.prove_erasures().await;
        }
        Ok(changed)
    }

    /// Makes a new generation of the tenant key, wraps it under the customer's key in every
    /// region (each wrap checked by unwrapping it), and makes it the one new records are sealed
    /// under. Older generations keep
    /// opening records until retired.
    pub async fn rotate(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        let tenant = self.changeable(id).await?;
        let generations = tenant.keys.rotated(self.clock.now())?;
        let key = TenantKey::generate().ok_or(BrokerError::Rng)?;
        let mut wrapped = Vec::with_capacity(tenant.binding.keys.len());
        for region_key in &tenant.binding.keys {
            let w = self.wrap_checked(&tenant.binding, &region_key.region, id, &key, Purpose::Rotate, generations.current).await.map_err(
                |e| match e {
                    WrapCheck::Encrypt(e) | WrapCheck::Decrypt(e) => BrokerError::from_access(e),
                    WrapCheck::Mismatch => BrokerError::KeyAccess(AccessError::Corrupt {
                        region: region_key.region.clone(),
                        message: "KMS did not give back the tenant key it encrypted".into(),
                    }),
                    WrapCheck::Layer(e) => e,
                },
            )?;
            wrapped.push(WrappedKey {
                region: region_key.region.clone(),
                key_arn: region_key.key_arn.clone(),
                generation: generations.current,
                wrapped: w,
            });
        }
        let detail = json!({ "generation": generations.current, "previous": tenant.keys.current, "regions": tenant.binding.keys.len() });
        let tenant = self.write_change(&tenant, &generations, KeyChange::Rotate { keys: &wrapped }, KeyEvent::Rotated, detail).await?;
        tracing::info!(tenant = %id, generation = generations.current, "tenant key rotated");
        Ok(tenant)
    }

    /// Sets the minimum decryption generation: records of older generations are refused with
    /// `generation_retired` from now on (on every node). It can come down again until the
    /// retired generations are shredded.
    pub async fn set_min_decryption(&self, id: &TenantId, min: u32) -> Result<Tenant, BrokerError> {
        let tenant = self.changeable(id).await?;
        let generations = tenant.keys.with_min_decryption(min)?;
        let detail = json!({ "min_decryption": min, "previous": tenant.keys.min_decryption });
        self.write_change(&tenant, &generations, KeyChange::Retire, KeyEvent::MinDecryption, detail).await
    }

    /// Erases the wrapped keys of every generation below the minimum decryption generation:
    /// records of those generations can never be opened again, by anyone. The operator says
    /// when no record may need them any more.
    pub async fn shred_retired(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        let tenant = self.changeable(id).await?;
        let generations = tenant.keys.shredded();
        let detail = json!({ "erased_below": generations.kept_from, "previously_kept_from": tenant.keys.kept_from });
        self.write_change(&tenant, &generations, KeyChange::Shred, KeyEvent::Shredded, detail).await
    }

    /// Rotates the active tenants whose current generation is older than the configured period
    /// (`--rotate-after-days`), at most [`MAX_ROTATIONS_PER_PASS`] at a time; the leader's
    /// monitor calls it each pass. Returns how many rotated. A tenant that fails is logged and
    /// tried again next pass.
    pub async fn rotate_due(&self) -> Result<usize, BrokerError> {
        let Some(every) = self.config.rotate_after else { return Ok(0) };
        let now = self.clock.now();
        let mut rotated = 0;
        let due = self.store.tenants().await?.into_iter().filter(|t| t.state == TenantState::Active && t.keys.rotation_due(every, now));
        for tenant in due.take(MAX_ROTATIONS_PER_PASS) {
            match self.rotate(&tenant.id).await {
                Ok(_) => rotated += 1,
                Err(e) => tracing::warn!(tenant = %tenant.id, error = %e, "scheduled rotation failed; trying again next pass"),
            }
        }
        Ok(rotated)
    }

    /// Chooses this pass's round of alias checks: the next [`ALIAS_CHECKS_PER_PASS`] of the
    /// active tenants, round robin. Their probes also ask where the alias points.
    pub(crate) fn plan_alias_round(&self, active: &[Tenant]) {
        let mut watch = self.aliases.lock();
        watch.round.clear();
        if active.is_empty() {
            return;
        }
        let start = watch.cursor % active.len();
        let n = ALIAS_CHECKS_PER_PASS.min(active.len());
        watch.cursor = start + n;
        let round: Vec<TenantId> = active.iter().cycle().skip(start).take(n).map(|t| t.id.clone()).collect();
        watch.round.extend(round);
    }

    /// Whether this tenant's probe should also look at its alias (once per round).
    pub(crate) fn take_alias_turn(&self, id: &TenantId) -> bool {
        self.aliases.lock().round.remove(id)
    }

    /// Keeps the regions whose alias names another key than the tenant's, for
    /// [`Self::follow_aliases`] (unless a rekey to that key was refused before).
    pub(crate) fn note_alias_targets(&self, tenant: &Tenant, targets: Vec<(Region, String)>) {
        let mut watch = self.aliases.lock();
        for (region, arn) in targets {
            let current = tenant.binding.key_for(&region).map(KeyArn::as_str);
            let seen = (tenant.id.clone(), region, arn);
            if current != Some(seen.2.as_str()) && !watch.refused.contains(&seen) {
                watch.moved.push(seen);
            }
        }
    }

    /// Follows customers who replaced a key by re-pointing its alias: each region the pass's
    /// probes found re-pointed is rekeyed to the alias's new key (verified, every generation
    /// rewrapped). A refused replacement is audited once and not tried again for that key;
    /// the old key stays in use. Returns how many regions were rekeyed.
    pub async fn follow_aliases(&self) -> usize {
        let moved = std::mem::take(&mut self.aliases.lock().moved);
        let mut rekeyed = 0;
        for (id, region, arn) in moved {
            tracing::info!(tenant = %id, %region, key = %arn, "the customer re-pointed the alias: rekeying");
            match self.rekey(&id, &region, Some(&arn)).await {
                Ok(_) => rekeyed += 1,
                Err(e) => {
                    tracing::warn!(tenant = %id, %region, error = %e, "rekey to the re-pointed alias refused; the old key stays in use");
                    if matches!(e, BrokerError::RekeyRefused { .. }) {
                        self.aliases.lock().refused.insert((id, region, arn));
                    }
                }
            }
        }
        rekeyed
    }

    /// Replaces the customer's key in `region` with `key_ref` (an ARN, or the tenant's alias
    /// after the customer re-pointed it). The new key is verified as onboarding verifies one
    /// (assume the role, describe, a real wrap and unwrap); every kept generation's tenant key
    /// is unwrapped and wrapped under the new key and checked; only then does one write swap
    /// the binding and the wrapped keys. Until then the old key stays the one in use (and its
    /// disabling still revokes). A refusal names the reason and changes nothing; AWS unreachable
    /// or throttling is 503 `key_service_unavailable`, to retry (never recorded as a refusal).
    pub async fn rekey(&self, id: &TenantId, region: &Region, key_ref: Option<&str>) -> Result<Tenant, BrokerError> {
        let tenant = self.changeable(id).await?;
        let alias = format!("{}{id}", self.config.alias_prefix);
        let key_ref = key_ref.unwrap_or(&alias);
        let refused = |reason: String| BrokerError::RekeyRefused { region: region.to_string(), reason };
        let Some(old_arn) = tenant.binding.key_for(region).cloned() else {
            let regions: Vec<&str> = tenant.binding.keys.iter().map(|k| k.region.as_str()).collect();
            return Err(refused(format!("the tenant has no key in {region} (its regions: {})", regions.join(", "))));
        };
        let result = self.rekey_checked(&tenant, region, key_ref, &old_arn).await;
        if let Err(e @ (BrokerError::RekeyRefused { .. } | BrokerError::KeyAccessDenied(_) | BrokerError::KeyAccess(_))) = &result {
            self.audit(
                Some(id),
                AuditEvent::Keys(KeyEvent::Rekeyed),
                json!({ "region": region, "key": key_ref, "outcome": "refused", "reason": e.to_string() }),
            )
            .await;
        }
        result
    }

    async fn rekey_checked(&self, tenant: &Tenant, region: &Region, key_ref: &str, old_arn: &KeyArn) -> Result<Tenant, BrokerError> {
        let id = &tenant.id;
        let refused = |reason: String| BrokerError::RekeyRefused { region: region.to_string(), reason };
        let described = self.kms.describe_key(&tenant.binding, region, key_ref, Purpose::Rekey).await;
        self.metrics.kms("DescribeKey", &described);
        // AWS away or throttling is an outage to retry, not the customer's key refusing.
        let status = described.map_err(|e| {
            if e.is_transient() { BrokerError::from_access(e) } else { refused(format!("{key_ref} could not be described: {e}")) }
        })?;
        let new_arn: KeyArn = status.arn.parse().map_err(|e| refused(format!("{key_ref} does not name a usable key: {e}")))?;
        if new_arn.region() != *region {
            return Err(refused(format!("{new_arn} is in {}, not {region}", new_arn.region())));
        }
        if new_arn.account() != tenant.binding.account {
            return Err(refused(format!(
                "{new_arn} is in account {}, not the tenant's account {}",
                new_arn.account(),
                tenant.binding.account
            )));
        }
        if !status.enabled {
            return Err(refused(format!("{new_arn} is {:?}, not enabled", status.state)));
        }
        if new_arn == *old_arn {
            return Err(refused(format!("{new_arn} is already the tenant's key in {region}")));
        }
        let mut binding = tenant.binding.clone();
        for k in &mut binding.keys {
            if k.region == *region {
                k.key_arn = new_arn.clone();
            }
        }
        let wrapped = self.store.wrapped_keys(id).await?;
        let mut rewrapped = Vec::new();
        let kept = tenant.keys.kept_from..=tenant.keys.current;
        for generation in kept.clone() {
            // From whichever region answers: every region wraps the same tenant key.
            let key = self.unwrap_generation(tenant, &wrapped, generation, Purpose::Rekey).await?;
            let w = self.wrap_checked(&binding, region, id, &key, Purpose::Rekey, generation).await.map_err(|e| match e {
                WrapCheck::Encrypt(e) | WrapCheck::Decrypt(e) if e.is_transient() => BrokerError::from_access(e),
                WrapCheck::Encrypt(e) => refused(format!("{new_arn} refused to encrypt: {e}")),
                WrapCheck::Decrypt(e) => refused(format!("{new_arn} refused to decrypt what it encrypted: {e}")),
                WrapCheck::Mismatch => refused(format!("{new_arn} did not give back what it encrypted")),
                WrapCheck::Layer(e) => e,
            })?;
            rewrapped.push(WrappedKey { region: region.clone(), key_arn: new_arn.clone(), generation, wrapped: w });
        }
        let detail = json!({
            "region": region, "previous_key": old_arn, "key": new_arn, "outcome": "rekeyed",
            "generations": kept.collect::<Vec<_>>(),
        });
        let change = KeyChange::Rekey { binding: &binding, region, keys: &rewrapped };
        let updated = self.write_change(tenant, &tenant.keys, change, KeyEvent::Rekeyed, detail).await?;
        tracing::info!(tenant = %id, %region, key = %new_arn, "customer key replaced; every generation rewrapped");
        Ok(updated)
    }
}
