//! The background work of a broker node: every interval (jittered), probe every active
//! tenant's regions with bounded concurrency, and destroy revoked tenants past their deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::broker::Broker;

/// What one monitor pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub tenants_probed: usize,
    pub revoked: Vec<String>,
    pub destroyed: Vec<String>,
}

/// One pass: reconcile tickets with states, probe every active tenant (at most `monitor_concurrency` at once), then sweep
/// deadlines.
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
            match broker.check_and_revoke(&tenant.id).await {
                Ok(Some(revoked)) => Some(Some(revoked.id.to_string())),
                Ok(None) => Some(None),
                Err(e) => {
                    tracing::warn!(tenant = %tenant.id, error = %e, "monitor: probe failed");
                    Some(None)
                }
            }
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
/// nodes and restarts do not probe in lockstep.
pub async fn run(broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pass = run_once(&broker).await;
        if !pass.revoked.is_empty() || !pass.destroyed.is_empty() {
            tracing::warn!(revoked = ?pass.revoked, destroyed = ?pass.destroyed, "monitor pass changed tenants");
        }
        let interval = broker.config().monitor_interval;
        tokio::select! {
            () = tokio::time::sleep(jitter(interval)) => {}
            () = &mut shutdown => return,
        }
    }
}

fn jitter(interval: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if aws_lc_rs::rand::fill(&mut b).is_ok() { u16::from_le_bytes(b) as f64 / u16::MAX as f64 } else { 0.5 };
    interval.mul_f64(0.9 + 0.2 * r)
}
