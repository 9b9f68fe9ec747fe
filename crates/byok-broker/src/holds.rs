//! Held revocations: when one pass finds more new denials than the threshold allows, none of
//! them is believed on its own. Each held tenant's cached key is purged (the customer's key may
//! really be off), but no ticket goes to a customer and no deadline starts; a person releases a
//! hold (the revocation then happens as of its first detection) or dismisses it. A held tenant
//! whose access works again leaves the hold silently.

use byok_domain::{AlertKind, HeldRegion, RegionResult, TenantId};
use byok_store::Hold;
use serde_json::json;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{AuditEvent, TransitionReason};

use crate::outcomes::HeldRevocation;

/// How long a hold may wait for a person before it raises an alert of its own.
pub const HOLD_OVERDUE: time::Duration = time::Duration::days(1);

fn held(h: Hold) -> HeldRevocation {
    HeldRevocation { tenant: h.tenant, detected_at: h.detected_at, regions: h.regions }
}

impl Broker {
    /// Holds these denials instead of revoking them, and alerts the operator once.
    pub(crate) async fn hold_all(&self, denied: &[(TenantId, Vec<RegionResult>, time::OffsetDateTime)], active: usize) -> Vec<TenantId> {
        let now = self.clock.now();
        let mut held = Vec::new();
        for (id, regions, detected_at) in denied {
            self.cache.purge(id);
            // A reused data-path session outlives a trust-policy change: forget it too.
            if let Ok(tenant) = self.tenant(id).await {
                self.kms.forget(&tenant.binding);
            }
            let regions: Vec<HeldRegion> = regions.iter().map(RegionResult::held).collect();
            let detail = serde_json::to_value(&regions).unwrap_or_default();
            let hold = Hold { tenant: id.clone(), detected_at: *detected_at, regions, created_at: now };
            match self.store.hold(&hold).await {
                Ok(true) => {
                    self.audit(Some(id), AuditEvent::Transition(TransitionReason::Held), json!({ "detected": detail })).await;
                    held.push(id.clone());
                }
                Ok(false) => {}
                Err(e) => tracing::error!(tenant = %id, error = %e, "could not record a held revocation"),
            }
        }
        tracing::error!(
            held = held.len(),
            active,
            "HELD: {} tenants were denied in one pass, more than the threshold allows; their revocations wait for a person (byok revocations list)",
            denied.len()
        );
        let title = format!("Revocations held: {} tenants denied at once", denied.len());
        let body = format!(
            "{} of {active} active tenants gave definitive denials in the same pass while the provider's canary passed. That many at \
             once is more likely a fault than {} customers deciding together, so none was revoked: no ticket, no deadline. Their cached \
             keys were dropped. Look at `byok revocations list`, then release (revoke as of the detection) or dismiss each.",
            denied.len(),
            denied.len()
        );
        if let Err(e) = self.store.open_alert(AlertKind::RevocationsHeld, &title, &body, now).await {
            tracing::error!(error = %e, "could not open the held revocations alert");
        }
        self.refresh_held_gauge().await;
        held
    }

    /// Operator alerts, newest first (open ones only when asked).
    pub async fn alerts(&self, open_only: bool) -> Result<Vec<byok_store::Alert>, BrokerError> {
        Ok(self.store.alerts(open_only).await?)
    }

    /// When the tenant's denial was first seen, if its revocation is held for a person (the
    /// tenant is still `active` but suspended: its key is not served while a person decides).
    pub async fn held_since(&self, id: &TenantId) -> Result<Option<time::OffsetDateTime>, BrokerError> {
        Ok(self.store.holds().await?.into_iter().find(|h| &h.tenant == id).map(|h| h.detected_at))
    }

    /// Held revocations, oldest first.
    pub async fn held_revocations(&self) -> Result<Vec<HeldRevocation>, BrokerError> {
        Ok(self.store.holds().await?.into_iter().map(held).collect())
    }

    /// A person believes the denial: the tenant is revoked as of its first detection and its
    /// customer gets the revocation ticket. The deadline is the later of detection + grace and
    /// release + grace: a hold never eats into the customer's grace period.
    pub async fn release_hold(&self, id: &TenantId) -> Result<byok_domain::Tenant, BrokerError> {
        let hold = self.store.remove_hold(id).await?.ok_or_else(|| BrokerError::NotHeld(id.clone()))?;
        let detected: Vec<RegionResult> = hold.regions.into_iter().map(RegionResult::from).collect();
        let released = self.deadline_clock().await?;
        let event = byok_domain::Event::HoldReleased { detected: hold.detected_at, released, grace: self.config.grace_period };
        let revoked = self.revoke_as(id, &detected, event).await;
        if revoked.is_ok() {
            // After the revocation's own entry: the operator's endpoints hear who decided.
            self.audit(
                Some(id),
                AuditEvent::Transition(TransitionReason::HoldReleased),
                json!({ "detected_at": hold.detected_at.unix_timestamp() }),
            )
            .await;
        }
        self.after_hold_change().await;
        revoked
    }

    /// A person does not believe the denial: the tenant stays active, nothing is revoked.
    pub async fn dismiss_hold(&self, id: &TenantId) -> Result<(), BrokerError> {
        self.store.remove_hold(id).await?.ok_or_else(|| BrokerError::NotHeld(id.clone()))?;
        self.audit(Some(id), AuditEvent::Transition(TransitionReason::HoldDismissed), json!({})).await;
        self.after_hold_change().await;
        Ok(())
    }

    /// A held tenant whose access works again leaves the hold, silently for its customer.
    pub(crate) async fn clear_hold(&self, id: &TenantId) {
        match self.store.remove_hold(id).await {
            Ok(Some(_)) => {
                self.audit(Some(id), AuditEvent::Transition(TransitionReason::HoldCleared), json!({ "why": "access works again" })).await;
                tracing::warn!(tenant = %id, "held revocation cleared: access works again");
                self.after_hold_change().await;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(tenant = %id, error = %e, "could not clear a hold"),
        }
    }

    async fn after_hold_change(&self) {
        self.refresh_held_gauge().await;
        if let Ok(holds) = self.store.holds().await {
            if holds.is_empty() {
                if let Err(e) = self.store.resolve_alert(AlertKind::RevocationsHeld, self.clock.now()).await {
                    tracing::error!(error = %e, "could not resolve the held revocations alert");
                }
            }
        }
        self.check_overdue_holds().await;
    }

    /// Holds waiting for a person longer than [`HOLD_OVERDUE`] open the `hold_overdue` alert
    /// (once); when none is left, it is resolved. Run by the leader each pass.
    pub(crate) async fn check_overdue_holds(&self) {
        let now = self.clock.now();
        let holds = match self.store.holds().await {
            Ok(holds) => holds,
            Err(e) => return tracing::error!(error = %e, "could not read the held revocations"),
        };
        let overdue: Vec<&Hold> = holds.iter().filter(|h| now - h.created_at > HOLD_OVERDUE).collect();
        if overdue.is_empty() {
            if let Err(e) = self.store.resolve_alert(AlertKind::HoldOverdue, now).await {
                tracing::error!(error = %e, "could not resolve the overdue holds alert");
            }
            return;
        }
        let oldest = overdue.iter().map(|h| h.created_at).min().unwrap_or(now);
        let title = format!("{} held revocations waiting over a day", overdue.len());
        let body = format!(
            "{} held revocations have waited for a person since {oldest} ({}). Each is a customer whose key may really be off and \
             whose data is unavailable, or a fault wrongly held against them. Decide each with `byok revocations release` or \
             `byok revocations dismiss`. A release gives the customer the whole grace period from the release.",
            overdue.len(),
            overdue.iter().map(|h| h.tenant.as_str()).collect::<Vec<_>>().join(", ")
        );
        match self.store.open_alert(AlertKind::HoldOverdue, &title, &body, now).await {
            Ok(Some(_)) => {
                tracing::error!(holds = overdue.len(), "HELD FOR OVER A DAY: revocations wait for a person (byok revocations list)")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not open the overdue holds alert"),
        }
    }

    pub(crate) async fn refresh_held_gauge(&self) {
        if let Ok(holds) = self.store.holds().await {
            self.metrics.revocations_held.set(i64::try_from(holds.len()).unwrap_or(i64::MAX));
        }
    }
}
