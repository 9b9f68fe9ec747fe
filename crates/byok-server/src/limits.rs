//! Limits on every caller, so that one noisy service cannot starve the others:
//! - a **rate per identity** (each bearer token its own bucket, governor's GCRA): over it, 429
//!   `rate_limited` with `Retry-After`;
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
        Self { per_identity, request_timeout, in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)), max_in_flight }
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
