//! The lifecycle's writes: activation, revocation, restoration, destruction. The only callers
//! of [`TenantState::apply`](byok_domain::TenantState::apply) and of the store's state-changing
//! methods; each writes its transition and its audit entry in one transaction, then does what
//! follows it (purge the cache, open, answer or close the ticket).
//!
//! Where a revocation is *decided* is the monitor ([`crate::monitor`]); here it is written.

use byok_domain::{Event, Tenant, TenantBinding, TenantId, TenantState, TicketStatus};
use byok_store::WrappedKey;
use serde_json::json;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{TicketEvent, TransitionReason};
use crate::remedy;
use crate::tickets::{self, Change};
use byok_domain::{RegionAccess, RegionResult};

use crate::outcomes::Restoration;

impl Broker {
    /// The tenant applies `event` now, or the error says why not (a destroyed tenant is gone
    /// whatever was asked; an onboarding one is not active yet).
    fn transition(&self, tenant: &Tenant, event: Event) -> Result<byok_domain::Transition, BrokerError> {
        tenant.state.apply(event).map_err(|source| match (tenant.state, event) {
            (TenantState::Destroyed { .. }, _) => BrokerError::Destroyed(tenant.id.clone()),
            (TenantState::Onboarding, Event::Restored { .. }) => BrokerError::NotActive { tenant: tenant.id.clone(), state: "onboarding" },
            _ => BrokerError::Transition { tenant: tenant.id.clone(), source },
        })
    }

    /// Onboarding verified every region: the binding and wrapped keys are stored and the
    /// tenant becomes active, in one transaction.
    pub(crate) async fn activate(&self, tenant: &Tenant, binding: &TenantBinding, wrapped: &[WrappedKey]) -> Result<Tenant, BrokerError> {
        let transition = self.transition(tenant, Event::Verified)?;
        let seal = self.transition_seal(&tenant.id, TransitionReason::Verified, json!({ "from": "onboarding", "to": "active" }));
        Ok(self.store.activate(&tenant.id, tenant.version, binding, wrapped, &transition, &seal).await?)
    }

    /// Marks the tenant revoked (deadline = now + grace) and forgets its key on this node.
    pub async fn revoke(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        self.revoke_detected(id, &[], self.clock.now()).await
    }

    /// Revokes as of `at` (when the denial was detected) after `detected` (the regions' check)
    /// and opens the revocation ticket. A tenant already revoked is left as it is.
    pub(crate) async fn revoke_detected(
        &self,
        id: &TenantId,
        detected: &[RegionResult],
        at: time::OffsetDateTime,
    ) -> Result<Tenant, BrokerError> {
        self.revoke_as(id, detected, Event::RevocationDetected { at, grace: self.config.grace_period }).await
    }

    /// Revokes by `event` (a detection, or a released hold) after `detected`, and opens the
    /// revocation ticket with the deadline the lifecycle set.
    pub(crate) async fn revoke_as(&self, id: &TenantId, detected: &[RegionResult], event: Event) -> Result<Tenant, BrokerError> {
        let tenant = self.tenant(id).await?;
        let transition = self.transition(&tenant, event)?;
        self.cache.purge(id);
        self.kms.forget(&tenant.binding);
        if !transition.changes_state() {
            return Ok(tenant);
        }
        let TenantState::Revoked { deadline, .. } = transition.to() else {
            return Err(BrokerError::Invalid("a revocation must lead to the revoked state".into()));
        };
        let what: Vec<_> = detected.iter().map(|r| json!({ "region": r.region, "access": r.access })).collect();
        let seal = self.transition_seal(
            id,
            TransitionReason::Revocation,
            json!({ "from": tenant.state.name(), "to": "revoked", "deadline": deadline.unix_timestamp(), "detected": what }),
        );
        let updated = self.store.set_state(id, tenant.version, &transition, &seal).await?;
        self.cache.purge(id);
        let body = tickets::opening(&updated, detected, deadline, updated.binding.role().map(|(r, _)| r.name()));
        match self.revocation_ticket(&updated).await? {
            // Revoked again after a restoration: the same ticket reopens.
            Some(existing) => {
                let change = Change { status: TicketStatus::Open, reminders_sent: Some(0), event: TicketEvent::Opened };
                self.post(id, existing.id, &body, Some(change)).await?;
            }
            None => {
                if self.open_revocation_ticket(&updated, &body, false).await?.is_none() {
                    // Another node (reconciling) opened it a moment ago: the detection goes on it.
                    if let Some(existing) = self.revocation_ticket(&updated).await? {
                        self.post(id, existing.id, &body, None).await?;
                    }
                }
            }
        }
        Ok(updated)
    }

    /// The customer says access is restored: every region is verified afresh (AssumeRole with
    /// the external id, key enabled, real unwrap). All pass: the tenant is active again and
    /// its key is warm in this node's cache. Otherwise nothing changes and the answer names
    /// each failing region and the step of the customer guide it still needs.
    ///
    /// Many calls at once for one tenant (a customer clicking, a script retrying, a "ready"
    /// comment) share one run, and an answer stays good for a moment after it (see
    /// the `flight` module): the AWS calls, audit rows and ticket answers of one restoration.
    pub async fn restore(&self, id: &TenantId) -> Result<Restoration, BrokerError> {
        self.restorations.run(id, || self.restore_now(id)).await
    }

    async fn restore_now(&self, id: &TenantId) -> Result<Restoration, BrokerError> {
        let tenant = self.tenant(id).await?;
        if tenant.state == TenantState::Active {
            return Ok(Restoration { tenant: id.clone(), restored: true, regions: Vec::new(), missing: Vec::new(), already_active: true });
        }
        // Judged before the probes (no key use for a tenant that cannot come back), and again
        // when written.
        self.transition(&tenant, Event::Restored { at: self.deadline_clock().await? })?;
        let regions = self.check(&tenant, byok_kms::Purpose::Restore).await?;
        let mut missing: Vec<String> = regions
            .iter()
            .filter_map(|r| match &r.access {
                RegionAccess::Ok => None,
                RegionAccess::Denied { .. } => Some(format!("{}: {}", r.region, r.remedy.clone().unwrap_or_default())),
                RegionAccess::Unknown { message } => Some(format!("{}: could not be checked ({message}); try again", r.region)),
            })
            .collect();
        // The trust policy must still require the external id (the customer may have restored
        // an older policy without it).
        if missing.is_empty() && tenant.binding.role().is_some() && !tenant.binding.legacy_trust {
            match self.kms.assume_fresh(&tenant.binding, byok_kms::Purpose::Restore, false).await {
                Err(e) if e.is_definitive() => {}
                Err(e) => missing.push(format!("IAM: could not check that the role still requires the external id ({e}); try again")),
                Ok(()) => {
                    missing.push(format!("IAM: {}", remedy::external_id_missing(&tenant.binding.role_arn, &tenant.binding.external_id)))
                }
            }
        }
        if !missing.is_empty() {
            let restoration = Restoration { tenant: id.clone(), restored: false, regions, missing, already_active: false };
            self.answer_restoration(&tenant, &restoration).await?;
            return Ok(restoration);
        }
        // The probes took time: the deadline is judged again at the moment of writing.
        let transition = self.transition(&tenant, Event::Restored { at: self.deadline_clock().await? })?;
        let seal = self.transition_seal(id, TransitionReason::Restoration, json!({ "from": "revoked", "to": "active" }));
        self.store.set_state(id, tenant.version, &transition, &seal).await?;
        self.cache.purge(id);
        // Warm the cache so the first request after restoration does not pay the unwrap.
        let _ = self.keys(id).await;
        let restoration = Restoration { tenant: id.clone(), restored: true, regions, missing, already_active: false };
        self.answer_restoration(&tenant, &restoration).await?;
        Ok(restoration)
    }

    /// The time deadlines are judged by: the store's clock where every node shares one
    /// (PostgreSQL's `now()`), else this single node's.
    pub async fn deadline_clock(&self) -> Result<time::OffsetDateTime, BrokerError> {
        Ok(self.store.now().await?.unwrap_or_else(|| self.clock.now()))
    }

    /// Destroys a revoked tenant whose deadline has passed (by [`Self::deadline_clock`]): its
    /// wrapped keys are erased.
    pub async fn destroy(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        let tenant = self.tenant(id).await?;
        let transition = self.transition(&tenant, Event::DeadlinePassed { at: self.deadline_clock().await? })?;
        self.cache.purge(id);
        let seal = self.transition_seal(
            id,
            TransitionReason::Deadline,
            json!({ "from": "revoked", "to": "destroyed", "wrapped_keys": "deleted" }),
        );
        let destroyed = self.store.destroy(id, tenant.version, &transition, &seal).await?;
        self.prove_erasures().await;
        // Every copy of the database taken before now holds wrapped keys sealed under the
        // tenant's provider keys: disabled now, deleted by AWS after its waiting period.
        self.destroy_provider_layers().await;
        // The destruction is written: a ticket that cannot be closed now (the store slow or
        // away for a moment) does not undo or hide it; the monitor's reconciliation closes it.
        if let Err(e) = self.close_for_destruction(&tenant).await {
            tracing::error!(tenant = %id, error = %e, "destroyed, but its ticket could not be closed yet: reconciliation will");
        }
        Ok(destroyed)
    }

    async fn close_for_destruction(&self, tenant: &Tenant) -> Result<(), BrokerError> {
        if let Some(open) = self.revocation_ticket(tenant).await? {
            let change = Change { status: TicketStatus::Closed, reminders_sent: None, event: TicketEvent::Closed };
            self.post(&tenant.id, open.id, tickets::DESTROYED, Some(change)).await?;
        }
        Ok(())
    }
}
