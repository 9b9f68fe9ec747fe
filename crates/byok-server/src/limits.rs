//! Limits on every caller, so that one noisy service cannot starve the others:
//! - a **rate per identity** (each bearer token its own bucket, governor's GCRA): over it, 429
//!   `rate_limited` with `Retry-After`, answered after a short pause ([`REFUSAL_PAUSE`]) so that a
//!   client hammering in a loop is slowed to a few refusals a second per connection instead of
//!   tens of thousands, each of which would take CPU from every other caller;
//! - a **request timeout**: a request still running after it is answered 503 `request_timeout`
//!   (its work is dropped; a write already committed stays committed);
//! - a **cap on requests in flight** on this node: over it, 503 `overloaded` at once with
//!   `Retry-After: 1` (shed, not queued, so that a burst cannot pile up latency for everyone).
//!
//! Written as two small axum middlewares rather than tower-http's `TimeoutLayer` and tower's
//! `ConcurrencyLimitLayer`, which answer with an empty body or a queue: byok's clients read the
//! `Error` JSON every other refusal has.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

/// How long a refusal for rate waits before it is answered. The answer says `Retry-After` of
/// at least a second, so a client that honours it never notices; one that does not is held to
/// about ten refusals a second per connection.
pub const REFUSAL_PAUSE: Duration = Duration::from_millis(100);
/// Refusals pausing at once, at most: beyond it (a flood over many connections) they are
/// answered at once, so that pausing never holds more than this many requests.
pub const MAX_PAUSED: usize = 1024;

/// The defaults `byok serve` starts with.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;

/// What limits a node applies.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second per identity (its burst is one second's worth); `None`: unlimited.
    per_identity: Option<Arc<IdentityLimiter>>,
    pub request_timeout: Duration,
    in_flight: Arc<tokio::sync::Semaphore>,
    pub max_in_flight: usize,
    /// Refusals pausing now ([`MAX_PAUSED`] at most).
    paused: Arc<tokio::sync::Semaphore>,
}

type Keyed = RateLimiter<String, HashMapStateStore<String>, DefaultClock>;

/// One rate-limit bucket per identity (a token's hash), kept while the identity is used.
#[derive(Debug)]
pub struct IdentityLimiter {
    limiter: Keyed,
    clock: DefaultClock,
    per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(None, DEFAULT_REQUEST_TIMEOUT, DEFAULT_MAX_IN_FLIGHT)
    }
}

impl Limits {
    /// `per_identity` requests a second per identity (`None` or 0: unlimited), requests cut off
    /// after `request_timeout`, at most `max_in_flight` at once.
    pub fn new(per_identity: Option<u32>, request_timeout: Duration, max_in_flight: usize) -> Self {
        let per_identity = per_identity.and_then(NonZeroU32::new).map(|rate| {
            let clock = DefaultClock::default();
            Arc::new(IdentityLimiter {
                limiter: RateLimiter::new(Quota::per_second(rate), HashMapStateStore::default(), clock.clone()),
                clock,
                per_second: rate.get(),
            })
        });
        let max_in_flight = max_in_flight.max(1);
        Self {
            per_identity,
            request_timeout,
            in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
            max_in_flight,
            paused: Arc::new(tokio::sync::Semaphore::new(MAX_PAUSED)),
        }
    }

    /// Requests per second per identity, if limited.
    pub fn per_identity(&self) -> Option<u32> {
        self.per_identity.as_ref().map(|l| l.per_second)
    }

    /// Takes one request from `identity`'s budget, or says how long to wait.
    pub fn admit(&self, identity: &str) -> Result<(), ApiError> {
        let Some(limits) = &self.per_identity else { return Ok(()) };
        match limits.limiter.check_key(&identity.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(ApiError::RateLimited { retry_after: not_until.wait_time_from(limits.clock.now()) }),
        }
    }

    /// A refusal for rate, answered after [`REFUSAL_PAUSE`] while fewer than [`MAX_PAUSED`] are
    /// pausing, else at once.
    pub async fn refuse(&self, refusal: ApiError) -> ApiError {
        if let Ok(_pausing) = self.paused.try_acquire() {
            tokio::time::sleep(REFUSAL_PAUSE).await;
        }
        refusal
    }

    /// Forgets identities idle long enough that their buckets are full again (memory stays
    /// proportional to the identities in use).
    pub fn forget_idle(&self) {
        if let Some(limits) = &self.per_identity {
            limits.limiter.retain_recent();
        }
    }

    /// Runs `request` under the timeout and the in-flight cap.
    pub async fn run(&self, request: Request, next: Next) -> Response {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return ApiError::Overloaded.into_response();
        };
        match tokio::time::timeout(self.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::RequestTimeout(self.request_timeout).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn a_refusal_pauses_unless_too_many_already_do() {
        let limits = Limits::new(Some(1), DEFAULT_REQUEST_TIMEOUT, DEFAULT_MAX_IN_FLIGHT);
        let refusal = || ApiError::RateLimited { retry_after: Duration::from_millis(1) };
        // Not answered before its pause (a lower bound: it sleeps REFUSAL_PAUSE).
        tokio::select! {
            _ = limits.refuse(refusal()) => panic!("a refusal was answered before its pause"),
            () = tokio::time::sleep(REFUSAL_PAUSE / 5) => {}
        }
        // With MAX_PAUSED refusals already pausing, the next is answered at the first poll.
        let _all = limits.paused.clone().try_acquire_many_owned(u32::try_from(MAX_PAUSED).unwrap_or(u32::MAX)).expect("permits");
        let answered = limits.refuse(refusal()).now_or_never();
        assert!(matches!(answered, Some(ApiError::RateLimited { .. })), "{answered:?}");
    }
}
