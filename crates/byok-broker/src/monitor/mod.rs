//! The monitor: where a revocation is decided. Each pass is one pipeline:
//!
//! 1. **reconcile** tickets with states (a process that died between a transition and its
//!    ticket);
//! 2. **prove the provider**: its identity and canary ([`crate::provider`]). If they fail, the
//!    pass is a provider fault and decides nothing;
//! 3. **probe** every active tenant's regions with fresh sessions (bounded concurrency);
//! 4. **classify**: only a definitive denial, confirmed by an immediate fresh re-probe
//!    (`confirmations`), counts; transient faults never do ([`crate::access`],
//!    [`byok_kms::AccessError`]);
//! 5. **prove the provider again**, then **judge the blast radius**: more new denials than
//!    the threshold are held for a person ([`crate::holds`]), not revoked;
//! 6. **transition**: `Broker::revoke_detected` writes each revocation with its audit entry
//!    and opens the ticket ([`crate::lifecycle`], [`crate::tickets`]);
//! 7. **deadlines**: reminders before; destruction at or after, by the store's clock, and only
//!    after one more look at the provider's identity;
//! 8. **scheduled rotation** of tenant keys older than `--rotate-after-days`, if set, and
//!    **re-pointed aliases** followed (a customer who replaced a key), a few tenants a pass.
//!
//! Steps 2 to 7 are gather → [`judge`] → apply: the I/O here observes (provider proofs,
//! leadership, each tenant's probe rounds, deadlines) and carries out decisions; what to
//! revoke, hold, clear or destroy is decided by [`judge::judge`] and [`judge::judge_deadlines`],
//! which do no I/O and are table-tested on their own.
//!
//! Tenants the data path saw denied wait in the `ProbeQueue` (`probe_queue`) and go through the same
//! pipeline at once, between passes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use byok_domain::{TenantId, TenantState, TicketStatus};
use byok_kms::Purpose;
use futures_util::StreamExt;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::TicketEvent;
use crate::tickets::{self, Change};
use byok_domain::{RegionAccess, RegionResult};

pub mod judge;
pub(crate) mod report;

pub use report::{PassReport, PassStats};

use judge::{DeadlineDecision, DeadlineObservation, Decision, MonitorPolicy, PassObservation, Revoked, TenantObservation};

impl Broker {
    /// The monitor's last pass on this node, if it ran.
    pub fn last_pass(&self) -> Option<PassStats> {
        self.last_pass.read().clone()
    }

    /// Asks the monitor to probe this tenant now.
    pub fn request_probe(&self, id: &TenantId) {
        self.probe_queue.push(id);
    }

    /// Probes every region of a tenant up to `confirmations` times in a row with fresh
    /// sessions, stopping at the first probe that sees no denial: the rounds [`judge`] reads.
    async fn probe_tenant(&self, tenant: &byok_domain::Tenant) -> Result<Vec<Vec<RegionResult>>, BrokerError> {
        let mut rounds = Vec::new();
        for attempt in 0..self.config.confirmations.max(1) {
            let regions = self.check(tenant, Purpose::Probe).await?;
            for r in &regions {
                if let RegionAccess::Unknown { message } = &r.access {
                    tracing::warn!(tenant = %tenant.id, region = %r.region, message = %message, "probe could not judge a region (not a denial)");
                }
            }
            let denied = regions.iter().any(|r| matches!(r.access, RegionAccess::Denied { .. }));
            rounds.push(regions);
            if !denied {
                break;
            }
            tracing::info!(tenant = %tenant.id, attempt, "definitive denial seen");
        }
        Ok(rounds)
    }

    /// Revoked tenants: reminders before the deadline, destruction at or after it. Returns the
    /// tenants destroyed. Gathers, [`judge::judge_deadlines`], applies.
    pub async fn sweep_deadlines(&self) -> Result<Vec<TenantId>, BrokerError> {
        let now = self.deadline_clock().await?;
        let mut tenants = std::collections::HashMap::new();
        let mut revoked = Vec::new();
        for tenant in self.store.tenants().await? {
            let TenantState::Revoked { deadline, .. } = tenant.state else { continue };
            revoked.push(Revoked { tenant: tenant.id.clone(), deadline });
            tenants.insert(tenant.id.clone(), tenant);
        }
        // The last look, taken only when something is due.
        let provider = if revoked.iter().any(|r| now >= r.deadline) { Some(self.check_provider().await) } else { None };
        let mut destroyed = Vec::new();
        for decision in judge::judge_deadlines(&DeadlineObservation { now, revoked, provider }) {
            match decision {
                DeadlineDecision::Remind(r) => {
                    if let Some(tenant) = tenants.get(&r.tenant) {
                        self.remind(tenant, r.deadline, now).await?;
                    }
                }
                DeadlineDecision::Postpone { tenants, reason } => {
                    tracing::error!(tenants, reason = %reason, "destruction postponed: the provider's identity is failing");
                }
                DeadlineDecision::Destroy(id) => {
                    // Leadership is looked at before each destruction: a lease lost mid-sweep
                    // leaves the rest to the new leader.
                    if !self.is_leader() {
                        tracing::warn!("lost the leader lease: destruction left to the new leader");
                        break;
                    }
                    match self.destroy(&id).await {
                        Ok(_) => destroyed.push(id),
                        // Another node got there first.
                        Err(BrokerError::Conflict) => {}
                        // One tenant's failure does not hold back the others' deadlines; this
                        // one is due again on the next pass.
                        Err(e) => tracing::error!(tenant = %id, error = %e, "destruction failed; tried again next pass"),
                    }
                }
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
        // Claimed by compare-and-set first, so that of several nodes exactly one posts it.
        if due > open.reminders_sent && self.store.claim_reminder(open.id, open.reminders_sent, due, now).await? {
            self.post(&tenant.id, open.id, &tickets::reminder(deadline, now), None).await?;
            self.audit(
                Some(&tenant.id),
                crate::events::AuditEvent::Ticket(TicketEvent::Reminder),
                serde_json::json!({ "ticket": open.id, "reminder": due, "deadline": deadline.unix_timestamp() }),
            )
            .await;
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
                    let body = tickets::opening_after_restart(&tenant, deadline, tenant.binding.role().map(|(r, _)| r.name()));
                    if self.open_revocation_ticket(&tenant, &body, true).await?.is_some() {
                        changed += 1;
                    }
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

/// Probes `tenants` (active, at most `monitor_concurrency` at once) and decides: proves the
/// provider again, holds or revokes the new denials, clears holds whose access works again.
/// `active` is how many tenants are active in all (the blast radius's denominator).
///
/// With `spread`, the probes start evenly over that time instead of all at once (a full pass:
/// a steady trickle of AWS calls, not a burst each interval). The decisions still wait for the
/// last probe: the blast radius is judged on all of the pass's new denials together, so that
/// a fault that makes every tenant look denied revokes none (deciding as results came in
/// would revoke the first few before the threshold was crossed).
async fn decide(
    broker: &Broker,
    tenants: Vec<byok_domain::Tenant>,
    active: usize,
    report: &mut PassReport,
    leader_only: bool,
    spread: Option<Duration>,
    provider_before: judge::ProviderProof,
) -> Result<(), BrokerError> {
    // A provider failing before the probes: nothing is probed, and the judge decides nothing.
    let tenants = if provider_before.is_ok() { tenants } else { Vec::new() };
    let held: HashSet<TenantId> =
        if tenants.is_empty() { HashSet::new() } else { broker.store.holds().await?.into_iter().map(|h| h.tenant).collect() };
    let step = spread.map(|s| s.div_f64(tenants.len().max(1) as f64));
    let start = tokio::time::Instant::now();
    let observed: Vec<TenantObservation> = futures_util::stream::iter(tenants.into_iter().enumerate())
        .map(|(k, tenant)| {
            let held = held.contains(&tenant.id);
            async move {
                if let Some(step) = step {
                    tokio::time::sleep_until(start + step.mul_f64(k as f64)).await;
                }
                probe_one(broker, tenant, held).await
            }
        })
        .buffer_unordered(broker.config.monitor_concurrency.max(1))
        .filter_map(std::future::ready)
        .collect()
        .await;
    report.tenants_probed += observed.len();
    let policy = MonitorPolicy { confirmations: broker.config.confirmations, hold_threshold: broker.config.hold_threshold, leader_only };
    let mut observation = PassObservation { provider_before, tenants: observed, active, leading: broker.is_leader(), provider_after: None };
    // The provider is looked at again only when a new denial would be decided on.
    if !judge::new_denials(&observation, &policy).is_empty() && (observation.leading || !leader_only) {
        observation.provider_after = Some(broker.check_provider().await);
    }
    for decision in judge::judge(&observation, &policy) {
        apply(broker, decision, report).await;
    }
    Ok(())
}

/// Carries out one of [`judge::judge`]'s decisions.
async fn apply(broker: &Broker, decision: Decision, report: &mut PassReport) {
    match decision {
        Decision::ClearHold(id) => broker.clear_hold(&id).await,
        Decision::LeftToLeader { denied } => {
            tracing::warn!(denied, "lost the leader lease mid-pass: leaving the decisions to the new leader");
        }
        Decision::ProviderFault(fault) => {
            broker.metrics.provider_faults.inc();
            report.provider_fault = Some(fault.to_string());
        }
        Decision::Hold { denied, active } => {
            let denied: Vec<_> = denied.into_iter().map(|d| (d.tenant, d.regions, d.detected_at)).collect();
            report.held.extend(broker.hold_all(&denied, active).await.iter().map(ToString::to_string));
        }
        Decision::Revoke(d) => {
            let what: Vec<String> = d.regions.iter().map(|r| format!("{}: {:?}", r.region, r.access)).collect();
            tracing::warn!(tenant = %d.tenant, detected = ?what, "revoking: the customer withdrew access");
            match broker.revoke_detected(&d.tenant, &d.regions, d.detected_at).await {
                Ok(_) => report.revoked.push(d.tenant.to_string()),
                Err(BrokerError::Conflict) => {}
                Err(e) => tracing::error!(tenant = %d.tenant, error = %e, "monitor: revocation failed"),
            }
        }
    }
}

/// Probes one tenant for a pass: what the probe saw, from when it started. A probe that could
/// not run (the store, not AWS) observes nothing.
async fn probe_one(broker: &Broker, tenant: byok_domain::Tenant, held: bool) -> Option<TenantObservation> {
    let detected_at = broker.clock.now();
    match broker.probe_tenant(&tenant).await {
        Ok(rounds) => Some(TenantObservation { tenant: tenant.id, held, rounds, detected_at }),
        Err(e) => {
            tracing::warn!(tenant = %tenant.id, error = %e, "monitor: probe failed");
            None
        }
    }
}

/// The share of the interval a full pass spreads its probes over: AWS sees twice the average
/// rate instead of a burst, and a denial waits at most half an interval for its pass's end.
const PASS_SPREAD: f64 = 0.5;

/// One pass, if this node leads (it takes or renews the lease first; a follower returns at
/// once with `follower` set): reconcile, prove the provider, probe every active tenant (all at
/// once, `monitor_concurrency` at a time) and decide, then sweep deadlines. [`run`] spreads
/// its passes' probes over half the interval instead.
pub async fn run_once(broker: &Arc<Broker>) -> PassReport {
    run_pass(broker, None).await
}

/// [`run_once`], its probes spread over `spread`.
async fn run_pass(broker: &Arc<Broker>, spread: Option<Duration>) -> PassReport {
    if !broker.renew_leadership().await {
        return PassReport { follower: true, ..PassReport::default() };
    }
    let started = std::time::Instant::now();
    let at = broker.clock.now();
    // One span per pass, the probes' STS/KMS calls and the store's transactions under it.
    let span = tracing::info_span!(
        "monitor.pass",
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        byok.tenants_probed = tracing::field::Empty,
        byok.revoked = tracing::field::Empty,
        byok.held = tracing::field::Empty,
    );
    let report = tracing::Instrument::instrument(pass(broker, spread), span.clone()).await;
    // Integers as OpenTelemetry integers (a usize would be exported as a string).
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    span.record("byok.tenants_probed", count(report.tenants_probed));
    span.record("byok.revoked", count(report.revoked.len()));
    span.record("byok.held", count(report.held.len()));
    if report.provider_fault.is_some() {
        span.record("otel.status_code", "ERROR");
    }
    let mut regions = std::collections::BTreeMap::new();
    for check in broker.last_checks.read().values() {
        if check.at >= at && check.purpose == Purpose::Probe {
            for r in &check.regions {
                let kind = match r.access {
                    RegionAccess::Ok => "ok",
                    RegionAccess::Denied { .. } => "denied",
                    RegionAccess::Unknown { .. } => "unknown",
                };
                *regions.entry(kind.to_string()).or_insert(0) += 1;
            }
        }
    }
    let stats = PassStats {
        regions,
        at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        tenants_probed: report.tenants_probed,
        revoked: report.revoked.len(),
        held: report.held.len(),
        destroyed: report.destroyed.len(),
        provider_fault: report.provider_fault.clone(),
    };
    broker.metrics.pass_duration.observe(started.elapsed().as_secs_f64());
    if stats.provider_fault.is_none() {
        broker.metrics.last_success.set(broker.clock.now().unix_timestamp());
    }
    broker.metrics.pass_tenants.set(i64::try_from(stats.tenants_probed).unwrap_or(i64::MAX));
    // Counted last: whoever sees the count move sees the pass's other figures too.
    broker.metrics.passes.inc();
    *broker.last_pass.write() = Some(stats);
    report
}

async fn pass(broker: &Arc<Broker>, spread: Option<Duration>) -> PassReport {
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
    let active: Vec<_> = tenants.into_iter().filter(|t| t.state.serves_data()).collect();
    broker.plan_alias_round(&active);
    let provider_before = broker.check_provider().await;
    let provider_works = provider_before.is_ok();
    let count = active.len();
    if let Err(e) = decide(broker, active, count, &mut report, true, spread, provider_before).await {
        tracing::error!(error = %e, "monitor: the pass could not decide");
    }
    broker.write_finished_summaries().await;
    broker.check_overdue_holds().await;
    if broker.is_leader() {
        broker.prove_erasures().await;
        broker.destroy_provider_layers().await;
    }
    match broker.sweep_deadlines().await {
        Ok(destroyed) => report.destroyed = destroyed.iter().map(ToString::to_string).collect(),
        Err(e) => tracing::error!(error = %e, "sweeper: failed"),
    }
    // Scheduled rotation, when configured; not while the provider's own identity fails.
    if provider_works && broker.is_leader() {
        match broker.rotate_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tenants = n, "scheduled key rotation"),
            Err(e) => tracing::error!(error = %e, "scheduled rotation: cannot list tenants"),
        }
        broker.follow_aliases().await;
    }
    if broker.is_leader() {
        let n = broker.checkpoints_due().await;
        if n > 0 {
            tracing::info!(tenants = n, "audit checkpoints written for the tenants' webhooks");
        }
    }
    report
}

/// Probes the tenants the data path asked for, through the same pipeline as a pass.
pub async fn probe_requested(broker: &Arc<Broker>) -> PassReport {
    let mut report = PassReport::default();
    let ids = broker.probe_queue.take();
    if ids.is_empty() {
        return report;
    }
    let provider_before = broker.check_provider().await;
    if provider_before.is_err() {
        // Decides nothing; the judge records the fault.
        if let Err(e) = decide(broker, Vec::new(), 0, &mut report, false, None, provider_before).await {
            tracing::error!(error = %e, "monitor: the probe could not decide");
        }
        return report;
    }
    let tenants = match broker.tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "monitor: cannot list tenants");
            return report;
        }
    };
    let active = tenants.iter().filter(|t| t.state.serves_data()).count();
    let wanted: HashSet<TenantId> = ids.into_iter().collect();
    let asked: Vec<_> = tenants.into_iter().filter(|t| t.state.serves_data() && wanted.contains(&t.id)).collect();
    if let Err(e) = decide(broker, asked, active, &mut report, false, None, provider_before).await {
        tracing::error!(error = %e, "monitor: the probe could not decide");
    }
    report
}

/// Applies changes other nodes make as they commit (PostgreSQL `LISTEN/NOTIFY`): a tenant's
/// cached key is dropped the moment its state changes anywhere, and cached token lookups are
/// forgotten when a token is revoked. The 1 s poll of [`sync_caches`] stays as the fallback for
/// notices missed while the listening connection was down. A single-node store has nothing to
/// hear: this returns at once.
pub async fn follow_changes(broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    let Some(mut notices) = broker.store.subscribe().await else { return };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            notice = notices.recv() => match notice {
                Some(notice) => broker.on_notice(notice).await,
                None => return,
            },
            () = &mut shutdown => return,
        }
    }
}

impl Broker {
    /// Applies one change another node made.
    pub async fn on_notice(&self, notice: byok_store::Notice) {
        match notice {
            byok_store::Notice::Tenant(id) => self.cache.purge(&id),
            byok_store::Notice::Tokens => self.forget_tokens(),
            byok_store::Notice::Resync => {
                self.forget_tokens();
                if let Err(e) = self.sync_cache().await {
                    tracing::error!(error = %e, "cache resync failed");
                }
            }
        }
    }
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

/// Runs passes until `shutdown` resolves, one starting every interval (jittered by up to ±10 %
/// so that nodes and restarts do not probe in lockstep), whatever the pass took: each
/// (tenant, region) is probed once per interval. Between passes, tenants the data path asked
/// for are probed as soon as they are asked for.
pub async fn run(broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let started = tokio::time::Instant::now();
        let interval = jitter(broker.config().monitor_interval);
        // A pass is cut short by a shutdown (a spread pass lasts most of the interval): what it
        // decided is committed, and a transition whose ticket was cut off is reconciled by the
        // next leader's first pass.
        let pass = tokio::select! {
            pass = run_pass(&broker, Some(interval.mul_f64(PASS_SPREAD))) => pass,
            () = &mut shutdown => {
                broker.flush_probe_summaries().await;
                broker.release_leadership().await;
                return;
            }
        };
        if !pass.revoked.is_empty() || !pass.destroyed.is_empty() || !pass.held.is_empty() {
            tracing::warn!(revoked = ?pass.revoked, held = ?pass.held, destroyed = ?pass.destroyed, "monitor pass changed tenants");
        }
        if !pass.follower && started.elapsed() > interval {
            tracing::warn!(
                took_ms = started.elapsed().as_millis() as u64,
                interval_ms = interval.as_millis() as u64,
                tenants = pass.tenants_probed,
                "the monitor pass took longer than the interval: raise the interval, the concurrency or the AWS call budget"
            );
        }
        let next_pass = tokio::time::sleep_until(started + interval);
        tokio::pin!(next_pass);
        loop {
            tokio::select! {
                () = &mut next_pass => break,
                () = broker.probe_queue.asked() => {
                    let probed = probe_requested(&broker).await;
                    if !probed.revoked.is_empty() || !probed.held.is_empty() {
                        tracing::warn!(revoked = ?probed.revoked, held = ?probed.held, "probe after a data-path denial decided");
                    }
                }
                () = &mut shutdown => {
                    broker.flush_probe_summaries().await;
                    broker.release_leadership().await;
                    return;
                }
            }
        }
    }
}

/// Renews the lease every third of its TTL until `shutdown`, so that a long pass never outlives
/// it unnoticed.
pub async fn keep_lease(broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(broker.config().lease_ttl / 3);
    loop {
        tokio::select! {
            _ = tick.tick() => { broker.renew_leadership().await; }
            () = &mut shutdown => return,
        }
    }
}

fn jitter(interval: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if aws_lc_rs::rand::fill(&mut b).is_ok() { u16::from_le_bytes(b) as f64 / u16::MAX as f64 } else { 0.5 };
    interval.mul_f64(0.9 + 0.2 * r)
}
