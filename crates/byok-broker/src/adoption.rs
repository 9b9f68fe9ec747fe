//! Adoption: a tenant on provider-held keys ([`KeyMode::Provider`]) moves onto keys the customer
//! holds (CMK by key policy, or BYOK with a role), online.
//!
//! 1. [`Broker::adoption_setup`] prints the customer's setup for the target mode, exactly as
//!    onboarding in that mode would.
//! 2. [`Broker::adopt`] checks the customer's keys (each region described and used by the path
//!    the target mode uses; for BYOK the role first, with and without the external id), unwraps
//!    every kept generation by the provider-held path and wraps it under the customer's keys,
//!    makes a **fresh generation under the customer's keys alone** (it never existed under the
//!    provider's), and switches binding, generations and every wrapped key in one
//!    compare-and-set write. Until that write the tenant is served from the provider-held keys
//!    exactly as before; a refusal, a crash or the caller going away before it changes nothing
//!    (that is the abort). After it, the provider-held keys are disabled and scheduled for
//!    deletion, so no copy of the database from before can be unwrapped without the customer.
//! 3. Records sealed before the switch are moved onto the fresh generation with `rewrap` (single
//!    or `rewrap/batch`); each node counts them ([`crate::adoption_tally`]) into the store, and
//!    [`Broker::adoptions`] reports the fleet: tenants waiting, adopting and their records
//!    rewrapped and rate.
//! 4. [`Broker::finish_adoption`] retires and shreds every generation older than the fresh one
//!    (the operator says when the records have moved, as for `shred-retired`): from then on
//!    every readable record depends on a key that only ever existed under the customer's keys.

use byok_domain::{AccountId, Adoption, KeyArn, KeyMode, Region, RegionKey, Tenant, TenantBinding, TenantId};
use byok_envelope::TenantKey;
use byok_kms::{AccessError, Purpose};
use byok_store::{KeyChange, WrappedKey};
use serde_json::json;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{AuditEvent, KeyEvent};
use crate::migration::{refused, wrap_refused};
use crate::outcomes::Instructions;
use crate::setup;

/// What an adoption's switch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub tenant: TenantId,
    pub mode: KeyMode,
    pub account: AccountId,
    /// Each region's customer key.
    pub regions: Vec<(Region, KeyArn)>,
    /// Generations rewrapped from the provider-held keys.
    pub rewrapped: Vec<u32>,
    /// The fresh generation, made under the customer's keys alone: records move onto it.
    pub first_generation: u32,
    /// The provider-held keys, and when AWS deletes each (`None`: scheduling failed; finishing
    /// tries again).
    pub provider_keys: Vec<(KeyArn, Option<time::OffsetDateTime>)>,
    /// From the first check to the switch.
    pub elapsed: std::time::Duration,
}

/// A finished adoption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedAdoption {
    pub tenant: Tenant,
    /// Generations retired and shredded.
    pub shredded: Vec<u32>,
    pub provider_keys: Vec<(KeyArn, time::OffsetDateTime)>,
}

/// One tenant in the fleet's adoption report.
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptionStatus {
    pub tenant: TenantId,
    /// `provider` (waiting for the customer's keys) or `adopting` (switched, records moving).
    pub phase: &'static str,
    pub first_generation: Option<u32>,
    pub switched_at: Option<time::OffsetDateTime>,
    pub records_rewrapped: u64,
    /// Records per second between the first and the last rewrap counted.
    pub rate_per_s: f64,
}

/// The fleet's adoptions ([`Broker::adoptions`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdoptionReport {
    /// Tenants still on provider-held keys.
    pub waiting: usize,
    /// Tenants switched whose adoption is not finished.
    pub adopting: usize,
    pub records_rewrapped: u64,
    /// The sum of the adopting tenants' rates.
    pub rate_per_s: f64,
    pub tenants: Vec<AdoptionStatus>,
}

impl Broker {
    /// The customer's setup for moving a provider-held tenant onto their keys in `mode`, in
    /// their `account`: what onboarding in that mode prints.
    pub async fn adoption_setup(&self, id: &TenantId, mode: KeyMode, account: &AccountId) -> Result<Instructions, BrokerError> {
        let tenant = self.adoptable(id).await?;
        let target = self.adoption_target(&tenant, mode, account).await?;
        let location = self.config.locations.get(&tenant.location)?;
        let mut instructions = setup::instructions(&self.config, id, &target, &location);
        instructions.commands = instructions.commands.replace(
            &format!("they run `byok tenant verify {id}`"),
            &format!("they run `byok tenant adopt {id} --to {} --account-id {account}`", target.mode.name()),
        );
        Ok(instructions)
    }

    /// Moves a provider-held tenant onto the customer's keys: see the module's comment. `keys`
    /// names a region's key where it is not found by the tenant's alias.
    pub async fn adopt(
        &self,
        id: &TenantId,
        mode: KeyMode,
        account: &AccountId,
        keys: &[(Region, String)],
    ) -> Result<Adopted, BrokerError> {
        let started = std::time::Instant::now();
        let tenant = self.adoptable(id).await?;
        let mut target = self.adoption_target(&tenant, mode, account).await?;
        let location = self.config.locations.get(&tenant.location)?;
        for (region, _) in keys {
            if !location.regions.contains(region) {
                return Err(refused(region, format!("{region} is not a region of location {}", location.code)));
            }
        }
        if target.role().is_some() {
            self.check_adopted_role(&target, &location).await?;
        }
        let alias = format!("{}{id}", self.config.alias_prefix);
        for region in &location.regions {
            let key_ref = keys.iter().find(|(r, _)| r == region).map_or_else(|| alias.clone(), |(_, k)| k.clone());
            let key_arn = self.check_cmk_key(&target, region, &key_ref).await?;
            target.keys.push(RegionKey { region: region.clone(), key_arn });
        }
        let stored = self.store.wrapped_keys(id).await?;
        let kept: Vec<u32> = (tenant.keys.kept_from..=tenant.keys.current).collect();
        let generations = tenant.keys.rotated(self.clock.now())?;
        let mut wrapped: Vec<WrappedKey> = Vec::with_capacity((kept.len() + 1) * target.keys.len());
        for &generation in &kept {
            // By the provider-held path, inside the broker.
            let key = self.unwrap_generation(&tenant, &stored, generation, Purpose::Rekey).await?;
            self.wrap_for_customer(&target, id, &key, generation, &mut wrapped).await?;
        }
        let fresh = TenantKey::generate().ok_or(BrokerError::Rng)?;
        self.wrap_for_customer(&target, id, &fresh, generations.current, &mut wrapped).await?;
        let provider_keys: Vec<KeyArn> = tenant.binding.keys.iter().map(|k| k.key_arn.clone()).collect();
        target.adoption =
            Some(Adoption { first_generation: generations.current, provider_keys: provider_keys.clone(), switched_at: self.clock.now() });
        let detail = json!({
            "from": "provider", "to": target.mode.name(), "account": account, "context_tag": target.mode.context_tag(),
            "keys": target.keys.iter().map(|k| json!({ "region": k.region, "key": k.key_arn })).collect::<Vec<_>>(),
            "rewrapped": kept, "first_generation": generations.current,
        });
        self.write_change(&tenant, &generations, KeyChange::Migrate { binding: &target, keys: &wrapped }, KeyEvent::Adopted, detail)
            .await?;
        tracing::info!(tenant = %id, mode = target.mode.name(), "adopted the customer's keys; every generation rewrapped, a fresh one seals");
        // Nothing refers to the provider-held keys any more: gone, so that no older copy of the
        // database opens without the customer. A failure here is tried again by finishing.
        let destroyed = self.destroy_provider_held(id, &provider_keys).await;
        Ok(Adopted {
            tenant: id.clone(),
            mode: target.mode.clone(),
            account: account.clone(),
            regions: target.keys.iter().map(|k| (k.region.clone(), k.key_arn.clone())).collect(),
            rewrapped: kept,
            first_generation: generations.current,
            provider_keys: provider_keys.iter().map(|k| (k.clone(), destroyed.iter().find(|(d, _)| d == k).map(|(_, at)| *at))).collect(),
            elapsed: started.elapsed(),
        })
    }

    /// Finishes an adoption: every generation older than its first is retired and shredded (the
    /// records still sealed under them no longer open), and the provider-held keys' deletion is
    /// made sure of first.
    pub async fn finish_adoption(&self, id: &TenantId) -> Result<FinishedAdoption, BrokerError> {
        let tenant = self.changeable(id).await?;
        let Some(adoption) = tenant.binding.adoption.clone() else {
            return Err(BrokerError::Invalid(format!("tenant '{id}' is not adopting the customer's keys (nothing to finish)")));
        };
        let destroyed = self.destroy_provider_held(id, &adoption.provider_keys).await;
        if destroyed.len() < adoption.provider_keys.len() {
            return Err(BrokerError::KeyAccess(AccessError::Provider {
                message: format!("the provider-held keys of {id} could not all be scheduled for deletion; nothing finished, try again"),
            }));
        }
        let generations = tenant.keys.with_min_decryption(adoption.first_generation.max(tenant.keys.min_decryption))?.shredded();
        let shredded: Vec<u32> = (tenant.keys.kept_from..generations.kept_from).collect();
        let mut binding = tenant.binding.clone();
        binding.adoption = None;
        let detail = json!({ "shredded": shredded, "first_generation": adoption.first_generation });
        let tenant = self
            .write_change(&tenant, &generations, KeyChange::FinishAdoption { binding: &binding }, KeyEvent::AdoptionFinished, detail)
            .await?;
        Ok(FinishedAdoption { tenant, shredded, provider_keys: destroyed })
    }

    /// Every tenant on provider-held keys or adopting, with the records moved and the rate.
    pub async fn adoptions(&self) -> Result<AdoptionReport, BrokerError> {
        let progress = self.store.adoption_progress().await?;
        let mut report = AdoptionReport::default();
        for tenant in self.tenants().await? {
            if !tenant.state.serves_data() {
                continue;
            }
            let status = match (&tenant.binding.mode, &tenant.binding.adoption) {
                (KeyMode::Provider, _) => {
                    report.waiting += 1;
                    AdoptionStatus {
                        tenant: tenant.id.clone(),
                        phase: "provider",
                        first_generation: None,
                        switched_at: None,
                        records_rewrapped: 0,
                        rate_per_s: 0.0,
                    }
                }
                (_, Some(adoption)) => {
                    report.adopting += 1;
                    let p = progress.iter().find(|p| p.tenant == tenant.id);
                    let records = p.map_or(0, |p| p.records);
                    // Whole seconds in the store: a burst within one second counts as one.
                    let rate = p.map_or(0.0, |p| records as f64 / ((p.last_at - p.first_at).as_seconds_f64().max(1.0)));
                    report.records_rewrapped += records;
                    report.rate_per_s += rate;
                    AdoptionStatus {
                        tenant: tenant.id.clone(),
                        phase: "adopting",
                        first_generation: Some(adoption.first_generation),
                        switched_at: Some(adoption.switched_at),
                        records_rewrapped: records,
                        rate_per_s: rate,
                    }
                }
                _ => continue,
            };
            report.tenants.push(status);
        }
        Ok(report)
    }

    /// Adds what this node counted to the store (every second, from `node`). Counts the store
    /// does not take are kept for the next time.
    pub async fn flush_adoption_tally(&self) -> Result<(), BrokerError> {
        let counts = self.adoption_tally.take();
        let now = self.clock.now();
        let mut left = std::collections::HashMap::new();
        let mut failure = None;
        for (tenant, n) in counts {
            if failure.is_some() {
                left.insert(tenant, n);
                continue;
            }
            if let Err(e) = self.store.note_adoption_rewraps(&tenant, n, now).await {
                failure = Some(e);
                left.insert(tenant, n);
            }
        }
        self.adoption_tally.restore(left);
        failure.map_or(Ok(()), |e| Err(e.into()))
    }

    async fn adoptable(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        let tenant = self.changeable(id).await?;
        if !tenant.binding.mode.is_provider() {
            return Err(BrokerError::Invalid(format!(
                "tenant '{id}' already uses the customer's keys ({}); adoption is for tenants on provider-held keys \
                 (a role-based tenant moves to cmk with `byok tenant migrate`)",
                tenant.binding.mode.name()
            )));
        }
        Ok(tenant)
    }

    /// The binding the tenant will have: the customer's account and mode, the role named as
    /// onboarding names it, the tenant's own external id (BYOK).
    async fn adoption_target(&self, tenant: &Tenant, mode: KeyMode, account: &AccountId) -> Result<TenantBinding, BrokerError> {
        if mode.is_provider() {
            return Err(BrokerError::Invalid("adoption moves onto the customer's keys: --to cmk or --to byok".into()));
        }
        if !mode.is_byok() && self.config.canary.as_ref().and_then(|c| c.key_policy_key.as_ref()).is_none() {
            return Err(BrokerError::Invalid(
                "customer-managed keys need the key-policy canary (--canary-cmk-key) before a tenant may use them".into(),
            ));
        }
        if *account == self.config.provider_principal.account() {
            return Err(BrokerError::Invalid(format!("{account} is the provider's own account: adoption needs the customer's")));
        }
        let shared = self.store.tenants_in_account(account).await?.iter().any(|t| t.id != tenant.id);
        let role_arn = byok_domain::RoleArn::new(account, &setup::role_name_for(&self.config, &tenant.id, shared))?;
        Ok(TenantBinding {
            account: account.clone(),
            role_arn,
            external_id: tenant.binding.external_id.clone(),
            keys: Vec::new(),
            legacy_trust: false,
            mode,
            adoption: None,
        })
    }

    /// BYOK: the customer's role is assumable with the tenant's external id and not without it,
    /// at the STS endpoint of the location's first region.
    async fn check_adopted_role(&self, target: &TenantBinding, location: &byok_domain::Location) -> Result<(), BrokerError> {
        let region = location.regions.first().cloned().unwrap_or_else(Region::us_east_1);
        let with_id = self.kms.assume_fresh_in(target, &region, Purpose::Rekey, true).await;
        self.metrics.kms("AssumeRole", &with_id);
        match with_id {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(BrokerError::from_access(e)),
            Err(e) => return Err(refused(&region, format!("the role {} refused the provider: {e}", target.role_arn))),
        }
        let without = self.kms.assume_fresh_in(target, &region, Purpose::Rekey, false).await;
        self.metrics.kms("AssumeRole", &without);
        match without {
            Err(e) if e.is_definitive() => Ok(()),
            Err(e) => Err(BrokerError::from_access(e)),
            Ok(()) => Err(refused(
                &region,
                format!("the role {} can be assumed without the external id: add the sts:ExternalId condition", target.role_arn),
            )),
        }
    }

    /// Wraps `key` (generation `generation`) under every region's customer key, each checked.
    async fn wrap_for_customer(
        &self,
        target: &TenantBinding,
        id: &TenantId,
        key: &TenantKey,
        generation: u32,
        out: &mut Vec<WrappedKey>,
    ) -> Result<(), BrokerError> {
        for region_key in &target.keys {
            let region = &region_key.region;
            let wrapped =
                self.wrap_checked(target, region, id, key, Purpose::Rekey, generation).await.map_err(|e| wrap_refused(region_key, e))?;
            out.push(WrappedKey { region: region.clone(), key_arn: region_key.key_arn.clone(), generation, wrapped });
        }
        Ok(())
    }

    /// Disables each provider-held key and schedules its deletion (a key already pending
    /// deletion is left as it is); the ones done, with their deletion dates.
    async fn destroy_provider_held(&self, id: &TenantId, keys: &[KeyArn]) -> Vec<(KeyArn, time::OffsetDateTime)> {
        let mut done = Vec::with_capacity(keys.len());
        let provider = self.config.provider_principal.account();
        for key in keys {
            // Only ever the provider's own keys: a customer's key is never disabled from here.
            if key.account() != provider {
                tracing::error!(tenant = %id, key = %key, "not the provider's key: left alone");
                continue;
            }
            match self.kms.destroy_provider_key(key).await {
                Ok(at) => done.push((key.clone(), at)),
                Err(e) => tracing::error!(tenant = %id, key = %key, error = %e, "could not schedule a provider-held key's deletion"),
            }
        }
        if !done.is_empty() {
            let keys: Vec<_> = done.iter().map(|(k, at)| json!({ "key": k, "deletion_date": at.unix_timestamp() })).collect();
            self.audit(Some(id), AuditEvent::Keys(KeyEvent::ProviderKeysDestroyed), json!({ "keys": keys })).await;
        }
        done
    }
}
