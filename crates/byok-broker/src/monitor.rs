//! The monitor: where a revocation is decided. Each pass is one pipeline:
//!
//! 1. **reconcile** tickets with states (a process that died between a transition and its
//!    ticket);
//! 2. **probe** every active tenant's regions with fresh sessions (bounded concurrency);
//! 3. **classify**: only a definitive denial, seen `confirmations` times in a row, counts —
//!    transient faults never do ([`crate::access`], [`byok_kms::AccessError`]);
//! 4. **transition**: [`Broker::revoke_detected`] writes the revocation with its audit entry
//!    and opens the ticket ([`crate::lifecycle`], [`crate::tickets`]);
//! 5. **deadlines**: reminders before, destruction at or after.
//!
//! Tenants the data path saw denied wait in the [`ProbeQueue`] and are probed at once, between
//! passes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use byok_domain::{TenantId, TenantState, TicketStatus};
use byok_kms::Purpose;
use tokio::sync::{Notify, Semaphore};

use crate::access::RegionAccess;
use crate::audit::TicketEvent;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::tickets::{self, Change};

/// What one monitor pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub tenants_probed: usize,
    pub revoked: Vec<String>,
    pub destroyed: Vec<String>,
}

/// Tenants to probe now (a denial on the data path), each once however often it was asked.
#[derive(Debug, Default)]
pub struct ProbeQueue {
    waiting: Mutex<HashSet<TenantId>>,
    wake: Notify,
}

impl ProbeQueue {
    fn push(&self, id: &TenantId) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone());
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<TenantId> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).drain().collect()
    }
}

impl Broker {
    /// Asks the monitor to probe this tenant now.
    pub fn request_probe(&self, id: &TenantId) {
        self.probe_queue.push(id);
    }

    /// Probes every region of an active tenant afresh; revokes it if any region gives a
    /// definitive denial (`confirmations` times in a row), never on a transient fault.
    /// Returns the tenant if this call revoked it.
    pub async fn check_and_revoke(&self, id: &TenantId) -> Result<Option<byok_domain::Tenant>, BrokerError> {
        let tenant = self.tenant(id).await?;
        if !tenant.state.serves_data() {
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

    /// Revoked tenants: reminders before the deadline, destruction at or after it. Returns the
    /// tenants destroyed.
    pub async fn sweep_deadlines(&self) -> Result<Vec<TenantId>, BrokerError> {
        let now = self.clock.now();
        let mut destroyed = Vec::new();
        for tenant in self.store.tenants().await? {
            let TenantState::Revoked { deadline, .. } = tenant.state else { continue };
            if now < deadline {
                self.remind(&tenant, deadline, now).await?;
                continue;
            }
            match self.destroy(&tenant.id).await {
                Ok(_) => destroyed.push(tenant.id),
                // Another node got there first.
                Err(BrokerError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(destroyed)
    }

    /// Reminder comments 5 days and 1 day before the deadline (each once).
    async fn remind(
        &self,
        tenant: &byok_domain::Tenant,
        deadline: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<(), BrokerError> {
        let Some(open) = self.revocation_ticket(tenant).await? else { return Ok(()) };
        let due = tickets::reminder_due(deadline, now);
        if due > open.reminders_sent {
            let change = Change { status: open.status, reminders_sent: Some(due), event: TicketEvent::Reminder };
            self.post(&tenant.id, open.id, &tickets::reminder(deadline, now), Some(change)).await?;
        }
        Ok(())
    }

    /// Brings tickets in line with tenant states, for a process that died between a transition
    /// (one transaction) and the ticket that follows it: a revoked tenant gets its ticket, an
    /// active one has its revocation ticket resolved, a destroyed one has it closed. Returns
    /// how many tickets it changed.
    pub async fn reconcile(&self) -> Result<usize, BrokerError> {
        let mut open: std::collections::HashMap<TenantId, byok_store::Ticket> = std::collections::HashMap::new();
        for ticket in self.store.tickets(None).await? {
            if ticket.status != TicketStatus::Closed {
                open.entry(ticket.tenant.clone()).or_insert(ticket);
            }
        }
        let mut changed = 0;
        for tenant in self.store.tenants().await? {
            let ticket = open.get(&tenant.id).filter(|t| t.title == tickets::title(&tenant));
            match (tenant.state, ticket) {
                (TenantState::Revoked { deadline, .. }, None) => {
                    let body = tickets::opening_after_restart(&tenant, deadline, &self.config.role_name);
                    self.open_revocation_ticket(&tenant, &body, true).await?;
                    changed += 1;
                }
                (TenantState::Active, Some(t)) if t.status == TicketStatus::Open => {
                    let change = Change { status: TicketStatus::Resolved, reminders_sent: None, event: TicketEvent::Resolved };
                    self.post(&tenant.id, t.id, tickets::RESTORED_AFTER_RESTART, Some(change)).await?;
                    changed += 1;
                }
                (TenantState::Destroyed { .. }, Some(t)) => {
                    let change = Change { status: TicketStatus::Closed, reminders_sent: None, event: TicketEvent::Closed };
                    self.post(&tenant.id, t.id, tickets::DESTROYED_AFTER_RESTART, Some(change)).await?;
                    changed += 1;
                }
                (TenantState::Revoked { .. }, Some(_))
                | (TenantState::Active, Some(_))
                | (TenantState::Active | TenantState::Onboarding | TenantState::Destroyed { .. }, None)
                | (TenantState::Onboarding, Some(_)) => {}
            }
        }
        Ok(changed)
    }
}

/// Probes one tenant for the pass; `Some(id)` if it was revoked.
async fn probe(broker: &Broker, id: &TenantId) -> Option<String> {
    match broker.check_and_revoke(id).await {
        Ok(Some(revoked)) => Some(revoked.id.to_string()),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(tenant = %id, error = %e, "monitor: probe failed");
            None
        }
    }
}

/// One pass: reconcile, probe every active tenant (at most `monitor_concurrency` at once),
/// then sweep deadlines.
pub async fn run_once(broker: &Arc<Broker>) -> PassReport {
    let mut report = PassReport::default();
    match broker.reconcile().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(tickets = n, "reconciled tickets with tenant states (after a crash?)"),
        Err(e) => tracing::error!(error = %e, "monitor: reconciliation failed"),
    }
    let tenants = match broker.tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "monitor: cannot list tenants");
            return report;
        }
    };
    let permits = Arc::new(Semaphore::new(broker.config().monitor_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for tenant in tenants.into_iter().filter(|t| t.state.serves_data()) {
        let broker = broker.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            Some(probe(&broker, &tenant.id).await)
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(outcome)) = done {
            report.tenants_probed += 1;
            report.revoked.extend(outcome);
        }
    }
    match broker.sweep_deadlines().await {
        Ok(destroyed) => report.destroyed = destroyed.iter().map(ToString::to_string).collect(),
        Err(e) => tracing::error!(error = %e, "sweeper: failed"),
    }
    report
}

/// Probes the tenants the data path asked for; returns those revoked.
pub async fn probe_requested(broker: &Arc<Broker>) -> Vec<String> {
    let mut revoked = Vec::new();
    for id in broker.probe_queue.take() {
        revoked.extend(probe(broker, &id).await);
    }
    revoked
}

/// Every second, drops cached keys of tenants another node revoked or destroyed, until
/// `shutdown` resolves. (With one node this finds nothing: revocation purges locally.)
pub async fn sync_caches(broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match broker.sync_cache().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(tenants = n, "dropped cached keys of tenants no longer active"),
                    Err(e) => tracing::error!(error = %e, "cache sync failed"),
                }
            }
            () = &mut shutdown => return,
        }
    }
}

/// Runs passes until `shutdown` resolves; each interval is jittered by up to ±10 % so that
/// nodes and restarts do not probe in lockstep. Between passes, tenants the data path asked
/// for are probed as soon as they are asked for.
pub async fn run(broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pass = run_once(&broker).await;
        if !pass.revoked.is_empty() || !pass.destroyed.is_empty() {
            tracing::warn!(revoked = ?pass.revoked, destroyed = ?pass.destroyed, "monitor pass changed tenants");
        }
        let next_pass = tokio::time::sleep(jitter(broker.config().monitor_interval));
        tokio::pin!(next_pass);
        loop {
            tokio::select! {
                () = &mut next_pass => break,
                () = broker.probe_queue.wake.notified() => {
                    let revoked = probe_requested(&broker).await;
                    if !revoked.is_empty() {
                        tracing::warn!(revoked = ?revoked, "probe after a data-path denial revoked tenants");
                    }
                }
                () = &mut shutdown => return,
            }
        }
    }
}

fn jitter(interval: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if aws_lc_rs::rand::fill(&mut b).is_ok() { u16::from_le_bytes(b) as f64 / u16::MAX as f64 } else { 0.5 };
    interval.mul_f64(0.9 + 0.2 * r)
}
