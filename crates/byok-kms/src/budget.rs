//! The provider's call budget: a rate limit every STS and KMS call takes from, whoever makes
//! it (the monitor, the data path, onboarding, restoration).
//!
//! AssumeRole counts against the *provider's* account, whose STS request quota cannot be
//! raised, and KMS requests against per-account quotas; a burst of probes that trips them
//! would throttle the data path of every tenant at once. Calls wait for a token instead of
//! being refused, so the budget shapes traffic and never turns into an error (a throttled
//! call would be a transient fault anyway, never a revocation).
//!
//! [`Budgeted`] wraps any [`KeyService`] with a [`CallBudget`] (governor's rate limiter).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use byok_domain::{Region, TenantBinding, TenantId};
use byok_envelope::TenantKey;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::{AccessError, KeyService, KeyStatus, Purpose, RoleSession};

/// governor's clock on Tokio's time: a paused runtime (the tests) moves the budget too.
#[derive(Debug, Clone)]
struct TokioClock {
    base: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.base.elapsed()
    }
}

/// `rate` calls a second on average, at most `burst` at once: governor's GCRA (measured against
/// the token bucket this replaced in BENCHMARKS.md: a quarter of the cost per call, waiters
/// served alike), waited out on Tokio's timer.
#[derive(Debug)]
pub struct CallBudget {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
    clock: TokioClock,
    waited: AtomicU64,
}

impl CallBudget {
    /// `rate` calls a second on average, `burst` at once. Panics on a rate that is not
    /// positive and finite (configuration validates it first).
    pub fn new(rate: f64, burst: u32) -> Self {
        assert!(rate.is_finite() && rate > 0.0, "a call budget's rate is positive");
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX)).allow_burst(burst);
        let clock = TokioClock { base: tokio::time::Instant::now() };
        Self { limiter: RateLimiter::direct_with_clock(quota, clock.clone()), clock, waited: AtomicU64::new(0) }
    }

    /// Takes `n` calls' worth, waiting as long as the rate requires.
    pub async fn take(&self, n: u32) {
        let mut waited = false;
        for _ in 0..n {
            while let Err(not_until) = self.limiter.check() {
                waited = true;
                tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
            }
        }
        if waited {
            self.waited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls that had to wait so far.
    pub fn waits(&self) -> u64 {
        self.waited.load(Ordering::Relaxed)
    }
}

/// A [`KeyService`] whose every AWS call first takes from a [`CallBudget`]. An operation that
/// assumes a fresh role session before its KMS call (any purpose but the data path, whose
/// sessions are reused) takes two tokens.
#[derive(Debug)]
pub struct Budgeted<K> {
    inner: K,
    budget: std::sync::Arc<CallBudget>,
}

impl<K> Budgeted<K> {
    pub fn new(inner: K, budget: std::sync::Arc<CallBudget>) -> Self {
        Self { inner, budget }
    }
}

/// What a call outside a check costs: the call, and — for a BYOK tenant off the data path —
/// the fresh AssumeRole before it (a CMK tenant's calls assume nothing).
fn calls(binding: &TenantBinding, purpose: Purpose) -> u32 {
    if purpose == Purpose::Data || binding.role().is_none() { 1 } else { 2 }
}

#[async_trait]
impl<K: KeyService> KeyService for Budgeted<K> {
    async fn assume_fresh(&self, binding: &TenantBinding, purpose: Purpose, with_external_id: bool) -> Result<(), AccessError> {
        self.budget.take(1).await;
        self.inner.assume_fresh(binding, purpose, with_external_id).await
    }

    async fn assume_fresh_in(
        &self,
        binding: &TenantBinding,
        region: &Region,
        purpose: Purpose,
        with_external_id: bool,
    ) -> Result<(), AccessError> {
        self.budget.take(1).await;
        self.inner.assume_fresh_in(binding, region, purpose, with_external_id).await
    }

    async fn describe_key(
        &self,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
        purpose: Purpose,
    ) -> Result<KeyStatus, AccessError> {
        self.budget.take(calls(binding, purpose)).await;
        self.inner.describe_key(binding, region, key_ref, purpose).await
    }

    async fn wrap(
        &self,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
        purpose: Purpose,
    ) -> Result<Vec<u8>, AccessError> {
        self.budget.take(calls(binding, purpose)).await;
        self.inner.wrap(binding, region, tenant, key, purpose).await
    }

    async fn unwrap(
        &self,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
        purpose: Purpose,
    ) -> Result<TenantKey, AccessError> {
        self.budget.take(calls(binding, purpose)).await;
        self.inner.unwrap(binding, region, tenant, wrapped, purpose).await
    }

    async fn assume_session(&self, binding: &TenantBinding, purpose: Purpose) -> Result<RoleSession, AccessError> {
        // A key-policy (CMK) tenant's check assumes nothing.
        if binding.role().is_some() {
            self.budget.take(1).await;
        }
        self.inner.assume_session(binding, purpose).await
    }

    async fn describe_key_in(
        &self,
        session: &RoleSession,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
    ) -> Result<KeyStatus, AccessError> {
        self.budget.take(1).await;
        self.inner.describe_key_in(session, binding, region, key_ref).await
    }

    async fn wrap_in(
        &self,
        session: &RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
    ) -> Result<Vec<u8>, AccessError> {
        self.budget.take(1).await;
        self.inner.wrap_in(session, binding, region, tenant, key).await
    }

    async fn unwrap_in(
        &self,
        session: &RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
    ) -> Result<TenantKey, AccessError> {
        self.budget.take(1).await;
        self.inner.unwrap_in(session, binding, region, tenant, wrapped).await
    }

    fn forget(&self, binding: &TenantBinding) {
        self.inner.forget(binding);
    }

    async fn caller_identity(&self) -> Result<String, AccessError> {
        self.budget.take(1).await;
        self.inner.caller_identity().await
    }

    async fn create_provider_key(&self, region: &Region, tenant: &TenantId) -> Result<Option<byok_domain::KeyArn>, AccessError> {
        self.budget.take(1).await;
        self.inner.create_provider_key(region, tenant).await
    }

    async fn create_provider_held_key(&self, region: &Region, tenant: &TenantId) -> Result<Option<byok_domain::KeyArn>, AccessError> {
        self.budget.take(1).await;
        self.inner.create_provider_held_key(region, tenant).await
    }

    async fn provider_seal(&self, key: &byok_domain::KeyArn, tenant: &TenantId, inner: &[u8]) -> Result<Vec<u8>, AccessError> {
        self.budget.take(1).await;
        self.inner.provider_seal(key, tenant, inner).await
    }

    async fn provider_open(&self, key: &byok_domain::KeyArn, tenant: &TenantId, outer: &[u8]) -> Result<Vec<u8>, AccessError> {
        self.budget.take(1).await;
        self.inner.provider_open(key, tenant, outer).await
    }

    async fn destroy_provider_key(&self, key: &byok_domain::KeyArn) -> Result<time::OffsetDateTime, AccessError> {
        self.budget.take(2).await;
        self.inner.destroy_provider_key(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Virtual time (tokio's paused clock): the figures are exact, not measured.
    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_burst_wait_for_the_rate() {
        let budget = CallBudget::new(10.0, 5);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            budget.take(1).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        assert_eq!(budget.waits(), 0);
        for _ in 0..10 {
            budget.take(1).await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((0.99..=1.01).contains(&elapsed), "10 more calls at 10/s take a second, took {elapsed}");
        assert_eq!(budget.waits(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_rate() {
        let budget = std::sync::Arc::new(CallBudget::new(100.0, 1));
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..201)
            .map(|_| {
                let b = budget.clone();
                tokio::spawn(async move { b.take(1).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((1.99..=2.01).contains(&elapsed), "201 calls at 100/s with a burst of 1 take 2 s, took {elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_budget_refills_only_up_to_its_burst() {
        let budget = CallBudget::new(10.0, 2);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            budget.take(1).await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((0.09..=0.11).contains(&elapsed), "two saved, the third waits 0.1 s, took {elapsed}");
    }
}
