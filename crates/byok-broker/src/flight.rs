//! Single flight per tenant, with a short cooldown: of many callers asking for the same
//! expensive check of one tenant at once (a restoration, a verification — each several AWS
//! calls, audit rows and a ticket answer), one runs it and every caller that asked while it ran
//! gets its answer; a run never starts sooner than [`COOLDOWN`] after the tenant's last one
//! ended (the caller waits), so a loop of requests costs one run per cooldown, not one each.
//!
//! Invariants:
//! - at most one run per tenant at a time on this node;
//! - a caller is only handed an answer from a run that ended after it asked (never a stale
//!   one from before its request: a customer who fixed a region and asks again gets a fresh check);
//! - only a successful answer is shared (an error is the next caller's to retry);
//! - a tenant's slot is one small entry, kept for the node's life (bounded by the tenants).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use byok_domain::TenantId;
use tokio::time::Instant;

/// The least time between the end of one run for a tenant and the start of the next.
pub const COOLDOWN: Duration = Duration::from_secs(1);

/// The last run's end, and its answer if it succeeded.
type Slot<T> = Arc<tokio::sync::Mutex<Option<(Instant, Option<T>)>>>;

/// One kind of check's flights, by tenant.
#[derive(Debug)]
pub(crate) struct Flights<T> {
    slots: Mutex<HashMap<TenantId, Slot<T>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Self { slots: Mutex::default() }
    }
}

impl<T: Clone> Flights<T> {
    /// Runs `check` for `id`, or hands back the answer of a run that ended after this call
    /// began (it was under way when this caller asked).
    pub(crate) async fn run<E, F>(&self, id: &TenantId, check: impl FnOnce() -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let asked = Instant::now();
        let slot = self.slots.lock().entry(id.clone()).or_default().clone();
        let mut last = slot.lock().await;
        if let Some((ended, answer)) = &*last {
            if *ended > asked {
                if let Some(answer) = answer {
                    return Ok(answer.clone());
                }
            }
            // Callers arriving meanwhile queue on the lock and share the run that follows.
            tokio::time::sleep_until(*ended + COOLDOWN).await;
        }
        let answer = check().await;
        *last = Some((Instant::now(), answer.as_ref().ok().cloned()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_callers_share_one_run_and_errors_are_not_kept() {
        let flights: Arc<Flights<usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let id: TenantId = "acme".parse().expect("id");
        let callers = (0..100).map(|_| {
            let (flights, runs, id) = (flights.clone(), runs.clone(), id.clone());
            tokio::spawn(async move {
                flights
                    .run(&id, || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
            })
        });
        for answer in futures_util::future::join_all(callers).await {
            assert_eq!(answer.expect("join"), Ok(1), "every caller gets the one run's answer");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Another tenant has its own flight.
        let other: TenantId = "globex".parse().expect("id");
        assert_eq!(flights.run(&other, || async { Ok::<_, ()>(7) }).await, Ok(7));
        // A caller that asks after a run ended gets a run of its own (after the cooldown), never
        // the earlier answer.
        let again = flights.run(&id, || async { Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1) }).await;
        assert_eq!(again, Ok(2));
        // An error is not shared.
        let fresh: TenantId = "initech".parse().expect("id");
        assert_eq!(flights.run(&fresh, || async { Err::<usize, _>("down") }).await, Err("down"));
        assert_eq!(flights.run(&fresh, || async { Ok::<_, &str>(2) }).await, Ok(2));
    }
}
