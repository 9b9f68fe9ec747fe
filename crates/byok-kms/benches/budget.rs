//! The provider's call budget (`CallBudget`: governor on Tokio's clock and timer) against
//! governor as it comes (its own clock and timer). It replaced a token bucket written here,
//! which this bench measured at 4x governor's cost per call (BENCHMARKS.md). Two questions:
//! - the cost of one take that does not wait (every STS and KMS call pays it);
//! - how waiting callers are served: 64 callers arrive at once on a budget of 64 calls a second
//!   with a burst of 1. A budget that serves them in arrival order finishes each within its
//!   slot (the last at ~1 s); one whose waiters retry on their own may keep some waiting longer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use byok_kms::CallBudget;
use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};

fn take_without_waiting(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let ours = CallBudget::new(1e12, u32::MAX);
    let theirs = RateLimiter::direct(Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX));
    let mut group = c.benchmark_group("call budget take (no wait)");
    group.bench_function("CallBudget", |b| b.to_async(&rt).iter(|| ours.take(1)));
    group.bench_function("governor", |b| b.to_async(&rt).iter(|| theirs.until_ready()));
    group.finish();
}

/// Each caller's wait, sorted; all 64 start together.
fn waits<F, Fut>(rt: &tokio::runtime::Runtime, take: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let fut = take();
                tokio::spawn(async move {
                    fut.await;
                    start.elapsed()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("join"));
        }
        out.sort();
        out
    })
}

fn waiting_callers(_: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().expect("runtime");
    let ours = Arc::new(CallBudget::new(64.0, 1));
    let theirs = Arc::new(RateLimiter::direct(Quota::per_second(NonZeroU32::new(64).expect("64")).allow_burst(NonZeroU32::MIN)));
    let a = waits(&rt, || {
        let b = ours.clone();
        async move { b.take(1).await }
    });
    let g = waits(&rt, || {
        let l = theirs.clone();
        async move { l.until_ready().await }
    });
    let show = |name: &str, w: &[Duration]| {
        let median = w[w.len() / 2];
        let last = w[w.len() - 1];
        println!("MEASURE {name}: 64 callers at 64/s, burst 1: median wait {median:?}, last served at {last:?}");
    };
    show("CallBudget", &a);
    show("governor", &g);
}

criterion_group!(benches, take_without_waiting, waiting_callers);
criterion_main!(benches);
