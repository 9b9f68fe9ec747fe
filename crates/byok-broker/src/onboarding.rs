//! Onboarding: adding a tenant (its external id, its admin token, the setup the customer
//! runs) and verifying the customer's setup region by region before the tenant goes active.

use byok_domain::{
    AccountId, Event, ExternalId, FIRST_GENERATION, KeyGenerations, KeyMode, RegionKey, Tenant, TenantBinding, TenantId, TenantState,
};
use byok_envelope::TenantKey;
use byok_kms::Purpose;
use byok_store::{TokenScope, WrappedKey};
use zeroize::Zeroizing;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::AuditEvent;
use crate::outcomes::Instructions;
use crate::setup;
use crate::{remedy, tokens};

/// What `add_tenant` hands back: the customer's setup, and the tenant admin's API token
/// (shown once; only its hash is kept).
#[derive(Debug)]
pub struct NewTenant {
    pub instructions: Instructions,
    pub admin_token: Zeroizing<String>,
}

use crate::outcomes::{RegionCheck, Verification};

impl Broker {
    /// Adds a role-based (BYOK) tenant in `location` whose keys are in `account`: see
    /// [`Self::add_tenant_in_mode`].
    pub async fn add_tenant(&self, id: &TenantId, location: &str, account: &AccountId) -> Result<NewTenant, BrokerError> {
        self.add_tenant_in_mode(id, location, account, KeyMode::Byok).await
    }

    /// Adds a tenant in `location` whose keys are in `account`, granted by a role (BYOK) or by
    /// key policy alone (CMK): generates its external id and its admin token, and returns the
    /// setup the customer must run.
    ///
    /// A CMK tenant needs the key-policy canary (a key in a provider-controlled account that
    /// grants the provider by key policy, proven each pass): without it a fault in the
    /// provider's own KMS permissions would read as every CMK customer revoking at once.
    pub async fn add_tenant_in_mode(
        &self,
        id: &TenantId,
        location: &str,
        account: &AccountId,
        mode: KeyMode,
    ) -> Result<NewTenant, BrokerError> {
        let location = self.config.locations.get(location)?;
        if mode.is_provider() {
            if *account != self.config.provider_principal.account() {
                return Err(BrokerError::Invalid(format!(
                    "a provider-held tenant's keys are in the provider's own account {}, not {account}",
                    self.config.provider_principal.account()
                )));
            }
            return self.add_provider_held(id, &location).await;
        }
        if !mode.is_byok() && self.config.canary.as_ref().and_then(|c| c.key_policy_key.as_ref()).is_none() {
            return Err(BrokerError::Invalid(
                "customer-managed-key (cmk) tenants need the key-policy canary (--canary-cmk-key): without it a fault in the \
                 provider's own KMS permissions would look like every cmk customer revoking"
                    .into(),
            ));
        }
        let external_id: ExternalId =
            tokens::generate("byok").ok_or(BrokerError::Rng)?.get(..37).unwrap_or_default().parse().map_err(|_| BrokerError::Rng)?;
        let shared_account = !self.store.tenants_in_account(account).await?.is_empty();
        let role_arn = byok_domain::RoleArn::new(account, &setup::role_name_for(&self.config, id, shared_account))?;
        let tenant = Tenant {
            id: id.clone(),
            location: location.code.clone(),
            binding: TenantBinding {
                account: account.clone(),
                role_arn,
                external_id,
                keys: Vec::new(),
                legacy_trust: false,
                mode,
                adoption: None,
            },
            state: TenantState::Onboarding,
            keys: KeyGenerations::first(self.clock.now()),
            version: 1,
            created_at: self.clock.now(),
        };
        self.store.insert_tenant(&tenant).await?;
        let admin_token = self.issue_token(TokenScope::TenantAdmin(id.clone()), None, false).await?.token;
        let instructions = setup::instructions(&self.config, id, &tenant.binding, &location);
        Ok(NewTenant { instructions, admin_token })
    }

    /// Adds a tenant on provider-held keys (the default before a customer brings keys of their
    /// own): a KMS key per region of its location made in the provider's own account, verified
    /// as any tenant's keys are (a real wrap and unwrap), and the tenant active at once. Nothing
    /// is asked of a customer; `byok tenant adopt` later moves it onto the customer's keys.
    pub async fn add_provider_held_tenant(&self, id: &TenantId, location: &str) -> Result<NewTenant, BrokerError> {
        let location = self.config.locations.get(location)?;
        self.add_provider_held(id, &location).await
    }

    async fn add_provider_held(&self, id: &TenantId, location: &byok_domain::Location) -> Result<NewTenant, BrokerError> {
        let account = self.config.provider_principal.account();
        if self.store.tenant(id).await?.is_some() {
            return Err(BrokerError::TenantExists(id.clone()));
        }
        let mut keys = Vec::with_capacity(location.regions.len());
        for region in &location.regions {
            let made = self.kms.create_provider_held_key(region, id).await;
            self.metrics.kms("CreateKey", &made);
            match made.map_err(BrokerError::from_access)? {
                Some(key_arn) => keys.push(RegionKey { region: region.clone(), key_arn }),
                None => return Err(BrokerError::Invalid("this key service cannot make provider-held keys".into())),
            }
        }
        let external_id: ExternalId =
            tokens::generate("byok").ok_or(BrokerError::Rng)?.get(..37).unwrap_or_default().parse().map_err(|_| BrokerError::Rng)?;
        let role_arn = byok_domain::RoleArn::new(&account, &self.config.role_name)?;
        let tenant = Tenant {
            id: id.clone(),
            location: location.code.clone(),
            binding: TenantBinding { account, role_arn, external_id, keys, legacy_trust: false, mode: KeyMode::Provider, adoption: None },
            state: TenantState::Onboarding,
            keys: KeyGenerations::first(self.clock.now()),
            version: 1,
            created_at: self.clock.now(),
        };
        self.store.insert_tenant(&tenant).await?;
        let verification = self.verify_now(id).await?;
        if !verification.ok {
            let problems: Vec<String> =
                verification.regions.iter().filter_map(|r| r.problem.as_ref().map(|p| format!("{}: {p}", r.region))).collect();
            return Err(BrokerError::KeyAccess(byok_kms::AccessError::Provider {
                message: format!(
                    "the provider-held keys of {id} do not work yet ({}); `byok tenant verify {id}` tries again",
                    problems.join("; ")
                ),
            }));
        }
        let admin_token = self.issue_token(TokenScope::TenantAdmin(id.clone()), None, false).await?.token;
        let instructions = setup::instructions(&self.config, id, &self.tenant(id).await?.binding, location);
        Ok(NewTenant { instructions, admin_token })
    }

    /// The setup commands again, for a tenant that is still onboarding.
    pub async fn instructions(&self, id: &TenantId) -> Result<Instructions, BrokerError> {
        let tenant = self.tenant(id).await?;
        let location = self.config.locations.get(&tenant.location)?;
        Ok(setup::instructions(&self.config, id, &tenant.binding, &location))
    }

    /// Checks the customer's setup. On success the tenant key is generated, wrapped under
    /// every region's key, and the tenant becomes active; on failure nothing changes and the
    /// answer says, per region, what is wrong and what to do.
    pub async fn verify_tenant(&self, id: &TenantId) -> Result<Verification, BrokerError> {
        self.verifications.run(id, || self.verify_now(id)).await
    }

    async fn verify_now(&self, id: &TenantId) -> Result<Verification, BrokerError> {
        let tenant = self.tenant(id).await?;
        // Only an onboarding tenant can be verified: judged by the lifecycle before any key use.
        tenant.state.apply(Event::Verified).map_err(|source| BrokerError::Transition { tenant: id.clone(), source })?;
        let location = self.config.locations.get(&tenant.location)?;
        let mut binding = tenant.binding.clone();
        let mut verification =
            Verification { tenant: id.clone(), ok: false, trust_ok: false, trust_problem: None, warnings: Vec::new(), regions: Vec::new() };

        // The role (BYOK): assumable with the external id, and not without it — at the STS
        // endpoint of the location's first region, where every later check of this tenant
        // assumes it. A CMK tenant has no role: its keys alone are checked.
        match binding.role().map(|(role, external_id)| (role.clone(), external_id.clone())) {
            Some((role_arn, external_id)) => self.verify_trust(&mut binding, &role_arn, &external_id, &location, &mut verification).await,
            None => verification.trust_ok = true,
        }
        if !verification.trust_ok {
            verification.regions = location
                .regions
                .iter()
                .map(|r| RegionCheck {
                    region: r.clone(),
                    ok: false,
                    key_arn: None,
                    problem: Some("not checked: the role must be fixed first".into()),
                })
                .collect();
            return Ok(verification);
        }

        // Each region's key: found by alias, enabled, and really wraps and unwraps.
        // Found by alias in the customer's account; a provider-held tenant's keys are the ones
        // byok made for it.
        let alias = format!("{}{id}", self.config.alias_prefix);
        let made = std::mem::take(&mut binding.keys);
        let tenant_key = TenantKey::generate().ok_or(BrokerError::Rng)?;
        let mut wrapped = Vec::new();
        for region in &location.regions {
            let mut check = RegionCheck { region: region.clone(), ok: false, key_arn: None, problem: None };
            let key_ref = match made.iter().find(|k| binding.mode.is_provider() && k.region == *region) {
                Some(k) => k.key_arn.to_string(),
                None => alias.clone(),
            };
            match self.check_region(&mut binding, region, &key_ref, id, &tenant_key).await {
                Ok(w) => {
                    check.ok = true;
                    check.key_arn = Some(w.key_arn.to_string());
                    wrapped.push(w);
                }
                Err(SetupProblem(problem)) => check.problem = Some(problem),
            }
            verification.regions.push(check);
        }
        if verification.regions.iter().all(|r| r.ok) {
            self.activate(&tenant, &binding, &wrapped).await?;
            verification.ok = true;
        }
        let regions: Vec<_> =
            verification.regions.iter().map(|r| serde_json::json!({ "region": r.region, "ok": r.ok, "problem": r.problem })).collect();
        self.audit(
            Some(id),
            AuditEvent::KeyUse(Purpose::Onboard),
            serde_json::json!({ "verified": verification.ok, "trust_ok": verification.trust_ok, "regions": regions }),
        )
        .await;
        Ok(verification)
    }

    async fn verify_trust(
        &self,
        binding: &mut TenantBinding,
        role_arn: &byok_domain::RoleArn,
        external_id: &ExternalId,
        location: &byok_domain::Location,
        verification: &mut Verification,
    ) {
        let sts_region = location.regions.first().cloned().unwrap_or_else(byok_domain::Region::us_east_1);
        let with_id = self.kms.assume_fresh_in(binding, &sts_region, Purpose::Onboard, true).await;
        self.metrics.kms("AssumeRole", &with_id);
        match with_id {
            Err(e) => verification.trust_problem = Some(remedy::trust_refused(&e, &self.config.provider_principal, role_arn, external_id)),
            Ok(()) => {
                let without = self.kms.assume_fresh_in(binding, &sts_region, Purpose::Onboard, false).await;
                self.metrics.kms("AssumeRole", &without);
                match without {
                    Err(e) if e.is_definitive() => verification.trust_ok = true,
                    Err(e) => {
                        verification.trust_problem =
                            Some(format!("could not check that the role refuses the provider without the external id: {e}; try again"))
                    }
                    Ok(()) if self.config.allow_legacy_trust => {
                        verification.trust_ok = true;
                        binding.legacy_trust = true;
                        verification.warnings.push(remedy::legacy_trust_warning(role_arn, external_id));
                    }
                    Ok(()) => verification.trust_problem = Some(remedy::external_id_missing(role_arn, external_id)),
                }
            }
        }
    }

    async fn check_region(
        &self,
        binding: &mut TenantBinding,
        region: &byok_domain::Region,
        alias: &str,
        id: &TenantId,
        key: &TenantKey,
    ) -> Result<WrappedKey, SetupProblem> {
        let described = self.kms.describe_key(binding, region, alias, Purpose::Onboard).await;
        self.metrics.kms("DescribeKey", &described);
        let grant = setup::key_use_statement(&setup::grantee(&self.config, binding), id, binding.mode.context_tag());
        let status = described.map_err(|e| SetupProblem(remedy::onboarding_key_problem(&e, region.as_str(), alias, &grant)))?;
        let key_arn: byok_domain::KeyArn =
            status.arn.parse().map_err(|e| SetupProblem(format!("{alias} in {region} does not name a usable key: {e}")))?;
        if key_arn.region() != *region {
            return Err(SetupProblem(format!("{alias} in {region} points to a key in {}: the key must be in {region}", key_arn.region())));
        }
        if !status.enabled {
            return Err(SetupProblem(remedy::key_not_enabled(&status.state, key_arn.as_str(), region.as_str())));
        }
        binding.keys.push(RegionKey { region: region.clone(), key_arn: key_arn.clone() });
        let wrapped = self.kms.wrap(binding, region, id, key, Purpose::Onboard).await;
        self.metrics.kms("Encrypt", &wrapped);
        let wrapped = wrapped.map_err(|e| SetupProblem(remedy::onboarding_key_problem(&e, region.as_str(), alias, &grant)))?;
        let unwrapped = self.kms.unwrap(binding, region, id, &wrapped, Purpose::Onboard).await;
        self.metrics.kms("Decrypt", &unwrapped);
        let unwrapped = unwrapped.map_err(|e| SetupProblem(remedy::onboarding_key_problem(&e, region.as_str(), alias, &grant)))?;
        if unwrapped != *key {
            return Err(SetupProblem(format!("key {key_arn} did not give back what it encrypted")));
        }
        let stored = self.seal_layer(id, region, wrapped).await.map_err(|e| {
            SetupProblem(format!(
                "{region}: your key works; the provider's own key layer failed ({e}): the provider's problem, not your setup; try again later"
            ))
        })?;
        Ok(WrappedKey { region: region.clone(), key_arn, generation: FIRST_GENERATION, wrapped: stored })
    }
}

/// What a region's check found wrong with the customer's setup, in words the customer acts on
/// (shown on the verification's region line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SetupProblem(String);
