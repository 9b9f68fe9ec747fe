//! [`Broker`]: tenants, verified onboarding, and the data plane.

use std::sync::Arc;

use byok_domain::{AccountId, Event, ExternalId, RegionKey, Tenant, TenantBinding, TenantId, TenantState};
use byok_envelope::{RecordSealer, TenantKey};
use byok_kms::{AccessError, Denial, KeyService, Purpose};
use byok_store::{AuditEntry, Comment, Store, Ticket, TokenScope, WrappedKey};
use zeroize::Zeroizing;

use crate::access::{self, RegionAccess, RegionResult};
use crate::cache::{CachedKey, KeyCache};
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::metrics::Metrics;
use crate::onboarding::{self, Instructions, RegionCheck, Verification};
use crate::{audit, tickets, tokens};

/// The broker. Cheap to share behind an `Arc`; every method is safe to call concurrently.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    store: Arc<dyn Store>,
    kms: Arc<dyn KeyService>,
    clock: Arc<dyn Clock>,
    cache: KeyCache,
    pub metrics: Metrics,
    /// Token hash → scope, for tokens already seen (tokens never change once issued), so the
    /// data plane does not query the store on every request.
    token_scopes: std::sync::RwLock<std::collections::HashMap<String, TokenScope>>,
    /// The latest check of each tenant's regions on this node (for status pages).
    last_checks: std::sync::RwLock<std::collections::HashMap<TenantId, LastCheck>>,
}

/// A tenant's latest region-by-region check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastCheck {
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub purpose: &'static str,
    pub regions: Vec<RegionResult>,
}

/// The answer to "ready to restore".
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restoration {
    pub tenant: String,
    /// Whether access is back.
    pub restored: bool,
    pub regions: Vec<RegionResult>,
    /// What the customer still has to do, region by region.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// What `add_tenant` hands back: the customer's setup, and the tenant admin's API token
/// (shown once; only its hash is kept).
#[derive(Debug)]
pub struct NewTenant {
    pub instructions: Instructions,
    pub admin_token: Zeroizing<String>,
}

/// The generation of tenant keys made at onboarding (rotation would add later ones).
const FIRST_GENERATION: u32 = 1;

impl Broker {
    pub fn new(config: BrokerConfig, store: Arc<dyn Store>, kms: Arc<dyn KeyService>, clock: Arc<dyn Clock>) -> Self {
        let cache = KeyCache::new(config.cache_ttl, clock.clone());
        Self {
            config,
            store,
            kms,
            clock,
            cache,
            metrics: Metrics::default(),
            token_scopes: Default::default(),
            last_checks: Default::default(),
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    // ---- audit -----------------------------------------------------------------------------

    /// Appends to the audit log. A failure is logged, not returned: the operation it records
    /// already happened (the operator's log then holds the entry that is missing).
    async fn audit(&self, tenant: Option<&TenantId>, kind: &str, reason: &str, detail: serde_json::Value) {
        let at = self.clock.now().unix_timestamp();
        let detail = detail.to_string();
        let tenant = tenant.map(|t| t.to_string());
        let seal = |seq: i64, prev: &str| audit::seal(seq, prev, tenant.as_deref(), at, kind, reason, &detail);
        match self.store.append_audit(&seal).await {
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, kind, reason, detail = %detail, "could not append to the audit log"),
        }
    }

    /// A transition's audit entry, for the store to chain and write in the transition's own
    /// transaction (so a crash cannot leave a transition unaudited).
    fn transition_seal(
        &self,
        tenant: &TenantId,
        reason: &'static str,
        detail: serde_json::Value,
    ) -> impl for<'p> Fn(i64, &'p str) -> AuditEntry + Send + Sync + use<> {
        let at = self.clock.now().unix_timestamp();
        let tenant = tenant.to_string();
        let detail = detail.to_string();
        move |seq, prev: &str| audit::seal(seq, prev, Some(&tenant), at, "transition", reason, &detail)
    }

    /// Audit entries of one tenant (or all), after `after`, at most `limit`.
    pub async fn audit_log(&self, tenant: Option<&TenantId>, after: i64, limit: i64) -> Result<Vec<AuditEntry>, BrokerError> {
        Ok(self.store.audit(tenant, after, limit.clamp(1, 10_000)).await?)
    }

    /// Checks the whole chain.
    pub async fn verify_audit(&self) -> Result<audit::ChainCheck, BrokerError> {
        let mut verifier = audit::Verifier::new();
        let mut after = 0;
        loop {
            let page = self.store.audit(None, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            page.iter().for_each(|e| verifier.feed(e));
        }
        Ok(verifier.finish())
    }

    // ---- tokens ----------------------------------------------------------------------------

    /// Registers a configured token (operator or service) if it is not known yet.
    pub async fn register_token(&self, token: &str, scope: TokenScope) -> Result<(), BrokerError> {
        let hash = tokens::hash(token);
        if self.store.token_scope(&hash).await?.is_none() {
            self.store.put_token(&hash, &scope).await?;
        }
        Ok(())
    }

    /// What a bearer token may reach, if anything.
    pub async fn token_scope(&self, token: &str) -> Result<Option<TokenScope>, BrokerError> {
        let hash = tokens::hash(token);
        if let Some(scope) = self.token_scopes.read().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            return Ok(Some(scope.clone()));
        }
        let scope = self.store.token_scope(&hash).await?;
        if let Some(found) = &scope {
            let mut cache = self.token_scopes.write().unwrap_or_else(|p| p.into_inner());
            // Bounded: unknown tokens are never cached, and known ones are few.
            if cache.len() < 100_000 {
                cache.insert(hash, found.clone());
            }
        }
        Ok(scope)
    }

    // ---- tenants ---------------------------------------------------------------------------

    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        self.store.tenant(id).await?.ok_or_else(|| BrokerError::UnknownTenant(id.clone()))
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, BrokerError> {
        Ok(self.store.tenants().await?)
    }

    /// Adds a tenant in `location` whose keys are in `account`: generates its external id and
    /// its admin token, and returns the setup the customer must run.
    pub async fn add_tenant(&self, id: &TenantId, location: &str, account: &AccountId) -> Result<NewTenant, BrokerError> {
        let location = self.config.locations.get(location)?;
        let external_id: ExternalId =
            tokens::generate("byok").ok_or(BrokerError::Rng)?.get(..37).unwrap_or_default().parse().map_err(|_| BrokerError::Rng)?;
        let role_arn = byok_domain::RoleArn::new(account, &self.config.role_name)?;
        let tenant = Tenant {
            id: id.clone(),
            location: location.code.clone(),
            binding: TenantBinding {
                account: account.clone(),
                role_arn,
                external_id: external_id.clone(),
                keys: Vec::new(),
                legacy_trust: false,
            },
            state: TenantState::Onboarding,
            version: 1,
            created_at: self.clock.now(),
        };
        self.store.insert_tenant(&tenant).await?;
        let admin_token = tokens::generate("byok_tenant").ok_or(BrokerError::Rng)?;
        self.store.put_token(&tokens::hash(&admin_token), &TokenScope::TenantAdmin(id.clone())).await?;
        let instructions = onboarding::instructions(&self.config, id, account.as_str(), &location, external_id.as_str());
        Ok(NewTenant { instructions, admin_token })
    }

    /// The setup commands again, for a tenant that is still onboarding.
    pub async fn instructions(&self, id: &TenantId) -> Result<Instructions, BrokerError> {
        let tenant = self.tenant(id).await?;
        let location = self.config.locations.get(&tenant.location)?;
        Ok(onboarding::instructions(&self.config, id, tenant.binding.account.as_str(), &location, tenant.binding.external_id.as_str()))
    }

    /// Checks the customer's setup. On success the tenant key is generated, wrapped under
    /// every region's key, and the tenant becomes active; on failure nothing changes and the
    /// answer says, per region, what is wrong and what to do.
    pub async fn verify_tenant(&self, id: &TenantId) -> Result<Verification, BrokerError> {
        let tenant = self.tenant(id).await?;
        if tenant.state != TenantState::Onboarding {
            return Err(BrokerError::Invalid(format!(
                "tenant '{id}' is {}, not onboarding: there is nothing to verify",
                tenant.state.name()
            )));
        }
        let location = self.config.locations.get(&tenant.location)?;
        let mut binding = tenant.binding.clone();
        let mut verification = Verification {
            tenant: id.to_string(),
            ok: false,
            trust_ok: false,
            trust_problem: None,
            warnings: Vec::new(),
            regions: Vec::new(),
        };

        // The role: assumable with the external id, and not without it.
        let with_id = self.kms.assume_fresh(&binding, Purpose::Onboard, true).await;
        self.metrics.kms("AssumeRole", &with_id);
        match with_id {
            Err(e) => verification.trust_problem = Some(self.explain_trust(&binding, &e)),
            Ok(()) => {
                let without = self.kms.assume_fresh(&binding, Purpose::Onboard, false).await;
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
                        verification.warnings.push(format!(
                            "the trust policy of {} does not require the external id; accepted because legacy trust policies are allowed, but add the condition \"StringEquals\": {{\"sts:ExternalId\": \"{}\"}}",
                            binding.role_arn, binding.external_id
                        ));
                    }
                    Ok(()) => {
                        verification.trust_problem = Some(format!(
                            "the role {} can be assumed without the external id; its trust policy must have the condition \"StringEquals\": {{\"sts:ExternalId\": \"{}\"}} (use the policy from `byok tenant add`)",
                            binding.role_arn, binding.external_id
                        ))
                    }
                }
            }
        }
        if !verification.trust_ok {
            verification.regions = location
                .regions
                .iter()
                .map(|r| RegionCheck {
                    region: r.to_string(),
                    ok: false,
                    key_arn: None,
                    problem: Some("not checked: the role must be fixed first".into()),
                })
                .collect();
            return Ok(verification);
        }

        // Each region's key: found by alias, enabled, and really wraps and unwraps.
        let alias = format!("{}{id}", self.config.alias_prefix);
        let tenant_key = TenantKey::generate().ok_or(BrokerError::Rng)?;
        let mut wrapped = Vec::new();
        binding.keys.clear();
        for region in &location.regions {
            let mut check = RegionCheck { region: region.to_string(), ok: false, key_arn: None, problem: None };
            match self.check_region(&mut binding, region, &alias, id, &tenant_key).await {
                Ok(w) => {
                    check.ok = true;
                    check.key_arn = Some(w.key_arn.to_string());
                    wrapped.push(w);
                }
                Err(problem) => check.problem = Some(problem),
            }
            verification.regions.push(check);
        }
        if verification.regions.iter().all(|r| r.ok) {
            let state = tenant.state.apply(Event::Verified).map_err(|e| BrokerError::Invalid(e.to_string()))?;
            let seal = self.transition_seal(id, "verified", serde_json::json!({ "from": "onboarding", "to": "active" }));
            self.store.activate(id, tenant.version, &binding, &wrapped, state, &seal).await?;
            verification.ok = true;
        }
        let regions: Vec<_> =
            verification.regions.iter().map(|r| serde_json::json!({ "region": r.region, "ok": r.ok, "problem": r.problem })).collect();
        self.audit(
            Some(id),
            "key_use",
            "onboard",
            serde_json::json!({ "verified": verification.ok, "trust_ok": verification.trust_ok, "regions": regions }),
        )
        .await;
        Ok(verification)
    }

    async fn check_region(
        &self,
        binding: &mut TenantBinding,
        region: &byok_domain::Region,
        alias: &str,
        id: &TenantId,
        key: &TenantKey,
    ) -> Result<WrappedKey, String> {
        let described = self.kms.describe_key(binding, region, alias, Purpose::Onboard).await;
        self.metrics.kms("DescribeKey", &described);
        let status = described.map_err(|e| explain_key(&e, region.as_str(), alias))?;
        let key_arn: byok_domain::KeyArn =
            status.arn.parse().map_err(|e| format!("{alias} in {region} does not name a usable key: {e}"))?;
        if key_arn.region() != *region {
            return Err(format!("{alias} in {region} points to a key in {}: the key must be in {region}", key_arn.region()));
        }
        if !status.enabled {
            return Err(match status.state.as_str() {
                "PendingDeletion" => format!(
                    "key {key_arn} is pending deletion: cancel it (aws kms cancel-key-deletion --region {region} --key-id {key_arn}), then enable it (aws kms enable-key --region {region} --key-id {key_arn})"
                ),
                state => format!("key {key_arn} is {state}: enable it (aws kms enable-key --region {region} --key-id {key_arn})"),
            });
        }
        binding.keys.push(RegionKey { region: region.clone(), key_arn: key_arn.clone() });
        let wrapped = self.kms.wrap(binding, region, id, key, Purpose::Onboard).await;
        self.metrics.kms("Encrypt", &wrapped);
        let wrapped = wrapped.map_err(|e| explain_key(&e, region.as_str(), alias))?;
        let unwrapped = self.kms.unwrap(binding, region, id, &wrapped, Purpose::Onboard).await;
        self.metrics.kms("Decrypt", &unwrapped);
        let unwrapped = unwrapped.map_err(|e| explain_key(&e, region.as_str(), alias))?;
        if unwrapped.expose() != key.expose() {
            return Err(format!("key {key_arn} did not give back what it encrypted"));
        }
        Ok(WrappedKey { region: region.clone(), key_arn, generation: FIRST_GENERATION, wrapped })
    }

    fn explain_trust(&self, binding: &TenantBinding, e: &AccessError) -> String {
        match e {
            AccessError::Denied { .. } => format!(
                "the provider ({}) cannot assume {}: create the role, or fix its trust policy to allow the provider with sts:ExternalId {} (the policy from `byok tenant add`)",
                self.config.provider_principal, binding.role_arn, binding.external_id
            ),
            other => format!("could not reach AWS to assume {}: {other}; try again", binding.role_arn),
        }
    }

    // ---- lifecycle -------------------------------------------------------------------------

    /// Marks the tenant revoked (deadline = now + grace) and forgets its key on this node.
    pub async fn revoke(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        self.revoke_detected(id, &[]).await
    }

    /// Revokes after `detected` (the regions' check) and opens the revocation ticket.
    async fn revoke_detected(&self, id: &TenantId, detected: &[RegionResult]) -> Result<Tenant, BrokerError> {
        let tenant = self.tenant(id).await?;
        if matches!(tenant.state, TenantState::Revoked { .. }) {
            return Ok(tenant);
        }
        let event = Event::RevocationDetected { at: self.clock.now(), grace: self.config.grace_period };
        let state = tenant.state.apply(event).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        self.cache.purge(id);
        self.kms.forget(&tenant.binding);
        let what: Vec<_> = detected.iter().map(|r| serde_json::json!({ "region": r.region, "access": r.access })).collect();
        let deadline_at = match state {
            TenantState::Revoked { deadline, .. } => Some(deadline.unix_timestamp()),
            TenantState::Onboarding | TenantState::Active | TenantState::Destroyed { .. } => None,
        };
        let seal = self.transition_seal(
            id,
            "revocation",
            serde_json::json!({ "from": tenant.state.name(), "to": "revoked", "deadline": deadline_at, "detected": what }),
        );
        let updated = self.store.set_state(id, tenant.version, state, &seal).await?;
        self.cache.purge(id);
        if let TenantState::Revoked { deadline, .. } = updated.state {
            let body = tickets::opening(&updated, detected, deadline, &self.config.role_name);
            match self.open_ticket(&updated).await? {
                Some(open) => {
                    self.store.add_comment(open.id, "byok", &body, self.clock.now()).await?;
                    self.store.update_ticket(open.id, "open", Some(0), self.clock.now()).await?;
                }
                None => {
                    let opened = self.store.open_ticket(id, &tickets::title(&updated), &body, self.clock.now()).await?;
                    self.audit(Some(id), "ticket", "opened", serde_json::json!({ "ticket": opened.id, "title": opened.title })).await;
                }
            }
        }
        Ok(updated)
    }

    /// The tenant's revocation ticket still open (or resolved, to reopen), if any.
    async fn open_ticket(&self, tenant: &Tenant) -> Result<Option<Ticket>, BrokerError> {
        let title = tickets::title(tenant);
        Ok(self.store.tickets(Some(&tenant.id)).await?.into_iter().find(|t| t.title == title && t.status != "closed"))
    }

    /// Tickets of one tenant, or all.
    pub async fn tickets(&self, tenant: Option<&TenantId>) -> Result<Vec<Ticket>, BrokerError> {
        Ok(self.store.tickets(tenant).await?)
    }

    pub async fn ticket(&self, id: i64) -> Result<(Ticket, Vec<Comment>), BrokerError> {
        self.store.ticket(id).await?.ok_or(BrokerError::UnknownTicket(id))
    }

    /// A comment on a ticket. From the customer, one that says "ready" starts restoration at
    /// once; the broker answers on the ticket with the outcome.
    pub async fn comment(&self, ticket: i64, author: &str, body: &str) -> Result<(Comment, Option<Restoration>), BrokerError> {
        let (t, _) = self.ticket(ticket).await?;
        let comment = self.store.add_comment(ticket, author, body, self.clock.now()).await?;
        self.audit(Some(&t.tenant), "ticket", "comment", serde_json::json!({ "ticket": ticket, "author": author, "comment": comment.id }))
            .await;
        if author == "customer" && t.status == "open" && tickets::says_ready(body) {
            let restoration = match self.restore(&t.tenant).await {
                Ok(r) => r,
                Err(e) => {
                    self.store.add_comment(ticket, "byok", &format!("We could not restore access: {e}"), self.clock.now()).await?;
                    return Err(e);
                }
            };
            return Ok((comment, Some(restoration)));
        }
        Ok((comment, None))
    }

    /// Answers the open ticket with a restoration's outcome.
    async fn answer_restoration(&self, tenant: &Tenant, restoration: &Restoration) -> Result<(), BrokerError> {
        let Some(open) = self.open_ticket(tenant).await? else { return Ok(()) };
        let now = self.clock.now();
        if restoration.restored {
            self.store
                .add_comment(
                    open.id,
                    "byok",
                    "Every region verified: access is restored for your end users and our systems. Resolving this ticket.",
                    now,
                )
                .await?;
            self.store.update_ticket(open.id, "resolved", None, now).await?;
            self.audit(Some(&tenant.id), "ticket", "resolved", serde_json::json!({ "ticket": open.id })).await;
        } else {
            let mut body = String::from("We checked every region; access is not restored yet. Still to do:\n");
            for missing in &restoration.missing {
                body.push_str(&format!("- {missing}\n"));
            }
            body.push_str("Reply \"ready\" again once done.");
            self.store.add_comment(open.id, "byok", &body, now).await?;
        }
        Ok(())
    }

    /// Destroys a revoked tenant whose deadline has passed: its wrapped keys are erased.
    pub async fn destroy(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        let tenant = self.tenant(id).await?;
        let state = tenant.state.apply(Event::DeadlinePassed { at: self.clock.now() }).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        self.cache.purge(id);
        let seal =
            self.transition_seal(id, "deadline", serde_json::json!({ "from": "revoked", "to": "destroyed", "wrapped_keys": "erased" }));
        let destroyed = self.store.destroy(id, tenant.version, state, &seal).await?;
        if let Some(open) = self.open_ticket(&tenant).await? {
            let now = self.clock.now();
            self.store
                .add_comment(open.id, "byok", "The restoration deadline passed: the tenant's keys are erased and its data cannot be recovered, even if access is restored now. Closing this ticket.", now)
                .await?;
            self.store.update_ticket(open.id, "closed", None, now).await?;
            self.audit(Some(id), "ticket", "closed", serde_json::json!({ "ticket": open.id })).await;
        }
        Ok(destroyed)
    }

    /// The tenant's latest region check on this node, if any.
    pub fn last_check(&self, id: &TenantId) -> Option<LastCheck> {
        self.last_checks.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    async fn check(&self, tenant: &Tenant, purpose: Purpose) -> Result<Vec<RegionResult>, BrokerError> {
        let wrapped = self.store.wrapped_keys(&tenant.id).await?;
        let regions = access::check_tenant(self.kms.as_ref(), &self.metrics, tenant, &wrapped, purpose).await;
        let reason = match purpose {
            Purpose::Probe => "probe",
            Purpose::Restore => "restore",
            Purpose::Onboard => "onboard",
            Purpose::Data => "data",
        };
        for r in &regions {
            self.audit(
                Some(&tenant.id),
                "key_use",
                reason,
                serde_json::json!({ "region": r.region, "access": r.access, "session": purpose.session_name() }),
            )
            .await;
        }
        let record = LastCheck { at: self.clock.now(), purpose: purpose.session_name(), regions: regions.clone() };
        self.last_checks.write().unwrap_or_else(|p| p.into_inner()).insert(tenant.id.clone(), record);
        Ok(regions)
    }

    /// Probes every region of an active tenant afresh; revokes it if any region gives a
    /// definitive denial (`confirmations` times in a row), never on a transient fault.
    /// Returns the tenant if this call revoked it.
    pub async fn check_and_revoke(&self, id: &TenantId) -> Result<Option<Tenant>, BrokerError> {
        let tenant = self.tenant(id).await?;
        if tenant.state != TenantState::Active {
            return Ok(None);
        }
        let mut denied = Vec::new();
        for attempt in 0..self.config.confirmations.max(1) {
            let regions = self.check(&tenant, Purpose::Probe).await?;
            denied = regions.into_iter().filter(|r| matches!(r.access, RegionAccess::Denied { .. })).collect::<Vec<_>>();
            if denied.is_empty() {
                return Ok(None);
            }
            tracing::info!(tenant = %id, attempt, "definitive denial seen");
        }
        let what: Vec<String> = denied.iter().map(|r| format!("{}: {:?}", r.region, r.access)).collect();
        tracing::warn!(tenant = %id, detected = ?what, "revoking: the customer withdrew access");
        self.revoke_detected(id, &denied).await.map(Some)
    }

    /// Revoked tenants whose deadline has passed are destroyed; returns them.
    pub async fn sweep_deadlines(&self) -> Result<Vec<TenantId>, BrokerError> {
        let now = self.clock.now();
        let mut destroyed = Vec::new();
        for tenant in self.store.tenants().await? {
            if let TenantState::Revoked { deadline, .. } = tenant.state {
                if now < deadline {
                    self.remind(&tenant, deadline, now).await?;
                }
                if now >= deadline {
                    match self.destroy(&tenant.id).await {
                        Ok(_) => destroyed.push(tenant.id),
                        // Another node got there first.
                        Err(BrokerError::Conflict) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(destroyed)
    }

    /// Brings tickets in line with tenant states, for a process that died between a transition
    /// (one transaction) and the ticket that follows it: a revoked tenant gets its ticket, an
    /// active one has its revocation ticket resolved, a destroyed one has it closed. Returns
    /// how many tickets it changed.
    pub async fn reconcile(&self) -> Result<usize, BrokerError> {
        let mut open: std::collections::HashMap<TenantId, Ticket> = std::collections::HashMap::new();
        for ticket in self.store.tickets(None).await? {
            if ticket.status != "closed" {
                open.entry(ticket.tenant.clone()).or_insert(ticket);
            }
        }
        let mut changed = 0;
        let now = self.clock.now();
        for tenant in self.store.tenants().await? {
            let ticket = open.get(&tenant.id).filter(|t| t.title == tickets::title(&tenant));
            match (tenant.state, ticket) {
                (TenantState::Revoked { deadline, .. }, None) => {
                    let body = format!(
                        "{}\n\n(This ticket was opened after a restart of the broker; the audit log has the detection.)",
                        tickets::opening(&tenant, &[], deadline, &self.config.role_name)
                    );
                    let opened = self.store.open_ticket(&tenant.id, &tickets::title(&tenant), &body, now).await?;
                    self.audit(Some(&tenant.id), "ticket", "opened", serde_json::json!({ "ticket": opened.id, "reconciled": true })).await;
                    changed += 1;
                }
                (TenantState::Active, Some(t)) if t.status == "open" => {
                    self.store
                        .add_comment(
                            t.id,
                            "byok",
                            "Access is restored (confirmed after a restart of the broker). Resolving this ticket.",
                            now,
                        )
                        .await?;
                    self.store.update_ticket(t.id, "resolved", None, now).await?;
                    self.audit(Some(&tenant.id), "ticket", "resolved", serde_json::json!({ "ticket": t.id, "reconciled": true })).await;
                    changed += 1;
                }
                (TenantState::Destroyed { .. }, Some(t)) => {
                    self.store
                        .add_comment(
                            t.id,
                            "byok",
                            "The restoration deadline passed: the tenant's keys are erased. Closing this ticket.",
                            now,
                        )
                        .await?;
                    self.store.update_ticket(t.id, "closed", None, now).await?;
                    self.audit(Some(&tenant.id), "ticket", "closed", serde_json::json!({ "ticket": t.id, "reconciled": true })).await;
                    changed += 1;
                }
                _ => {}
            }
        }
        Ok(changed)
    }

    /// Reminder comments 5 days and 1 day before the deadline (each once).
    async fn remind(&self, tenant: &Tenant, deadline: time::OffsetDateTime, now: time::OffsetDateTime) -> Result<(), BrokerError> {
        let Some(open) = self.open_ticket(tenant).await? else { return Ok(()) };
        let left = deadline - now;
        let due = if left <= time::Duration::days(1) {
            2
        } else if left <= time::Duration::days(5) {
            1
        } else {
            0
        };
        if due > open.reminders_sent {
            self.store.add_comment(open.id, "byok", &tickets::reminder(deadline, now), now).await?;
            self.store.update_ticket(open.id, &open.status, Some(due), now).await?;
            self.audit(Some(&tenant.id), "ticket", "reminder", serde_json::json!({ "ticket": open.id, "reminder": due })).await;
        }
        Ok(())
    }

    /// The customer says access is restored: every region is verified afresh (AssumeRole with
    /// the external id, key enabled, real unwrap). All pass: the tenant is active again and
    /// its key is warm in this node's cache. Otherwise nothing changes and the answer names
    /// each failing region and the step of the procedure it still needs.
    pub async fn restore(&self, id: &TenantId) -> Result<Restoration, BrokerError> {
        let tenant = self.tenant(id).await?;
        match tenant.state {
            TenantState::Revoked { deadline, .. } if self.clock.now() >= deadline => {
                return Err(BrokerError::Invalid(format!(
                    "the restoration deadline for '{id}' ({deadline}) has passed: its keys are being erased and cannot be restored"
                )));
            }
            TenantState::Revoked { .. } => {}
            TenantState::Destroyed { .. } => return Err(BrokerError::Destroyed(id.clone())),
            TenantState::Active => {
                return Ok(Restoration { tenant: id.to_string(), restored: true, regions: Vec::new(), missing: Vec::new() });
            }
            TenantState::Onboarding => return Err(BrokerError::NotActive { tenant: id.clone(), state: "onboarding" }),
        }
        let regions = self.check(&tenant, Purpose::Restore).await?;
        let missing: Vec<String> = regions
            .iter()
            .filter_map(|r| match &r.access {
                RegionAccess::Ok => None,
                RegionAccess::Denied { .. } => Some(format!("{}: {}", r.region, r.remedy.clone().unwrap_or_default())),
                RegionAccess::Unknown { message } => Some(format!("{}: could not be checked ({message}); try again", r.region)),
            })
            .collect();
        if !missing.is_empty() {
            let restoration = Restoration { tenant: id.to_string(), restored: false, regions, missing };
            self.answer_restoration(&tenant, &restoration).await?;
            return Ok(restoration);
        }
        let state = tenant.state.apply(Event::Restored).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        let seal = self.transition_seal(id, "restoration", serde_json::json!({ "from": "revoked", "to": "active" }));
        self.store.set_state(id, tenant.version, state, &seal).await?;
        self.cache.purge(id);
        // Warm the cache so the first request after restoration does not pay the unwrap.
        let _ = self.sealer(id).await;
        let restoration = Restoration { tenant: id.to_string(), restored: true, regions, missing };
        self.answer_restoration(&tenant, &restoration).await?;
        Ok(restoration)
    }

    // ---- data plane ------------------------------------------------------------------------

    /// Seals `plaintext` for the tenant, bound to `context` (the caller's record id).
    pub async fn encrypt(&self, id: &TenantId, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, BrokerError> {
        Ok(self.sealer(id).await?.seal(context, plaintext)?)
    }

    /// Opens a record sealed by [`encrypt`](Self::encrypt) for the same tenant and context.
    pub async fn decrypt(&self, id: &TenantId, context: &[u8], record: &[u8]) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
        Ok(self.sealer(id).await?.open(context, record)?)
    }

    /// The tenant's sealer: from this node's cache, or unwrapped now (one KMS call however many
    /// requests are waiting).
    pub async fn sealer(&self, id: &TenantId) -> Result<Arc<RecordSealer>, BrokerError> {
        let (sealer, hit) = match self.cache.get_or_load(id, || self.load_key(id)).await {
            Ok(found) => found,
            Err(BrokerError::KeyAccessDenied(denial)) => {
                // A denial on the data path starts the same check the monitor runs, at once:
                // fresh sessions in every region, and a revocation only if they agree.
                return Err(match self.check_and_revoke(id).await {
                    Ok(Some(revoked)) => match revoked.state {
                        TenantState::Revoked { deadline, .. } => BrokerError::Revoked { tenant: id.clone(), deadline },
                        _ => BrokerError::KeyAccessDenied(denial),
                    },
                    Ok(None) | Err(_) => BrokerError::KeyAccessDenied(denial),
                });
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
                "key_use",
                "data",
                serde_json::json!({ "region": region_key.region, "operation": "Decrypt", "session": "byok-data", "outcome": outcome }),
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
        let inactive: std::collections::HashSet<TenantId> = self.store.inactive_tenants().await?.into_iter().collect();
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

/// A key failure in the customer's words: what is wrong, and the command that fixes it.
fn explain_key(e: &AccessError, region: &str, alias: &str) -> String {
    match e {
        AccessError::Denied { denial: Denial::KeyNotFound, .. } => {
            format!("no key with alias {alias} in {region}: create the key and its alias in {region} (the commands from `byok tenant add`)")
        }
        AccessError::Denied { denial: Denial::KeyDisabled, .. } => {
            format!("the key {alias} in {region} is disabled: enable it (aws kms enable-key --region {region} --key-id {alias})")
        }
        AccessError::Denied { denial: Denial::KeyPendingDeletion, .. } => {
            format!(
                "the key {alias} in {region} is pending deletion: cancel the deletion (aws kms cancel-key-deletion --region {region} --key-id KEY_ID), then enable it"
            )
        }
        AccessError::Denied { denial: Denial::KeyPolicy, .. } => {
            format!(
                "the key policy of {alias} in {region} does not let the byok role use it: allow kms:DescribeKey, kms:Encrypt and kms:Decrypt for the role"
            )
        }
        AccessError::Denied { denial: Denial::TrustPolicy, .. } => {
            "the role could not be assumed for this region: fix the trust policy".to_string()
        }
        AccessError::Denied { denial: Denial::IncorrectKey, .. } => {
            format!("the key {alias} in {region} is not the key the tenant key was wrapped under")
        }
        AccessError::Transient { .. } => format!("AWS did not answer in {region} ({e}); try again"),
        other => format!("{region}: {other}"),
    }
}
