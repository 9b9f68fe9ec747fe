//! Two broker nodes on one PostgreSQL: one leads (runs the monitor), the other serves and waits;
//! when the leader stops renewing, the other takes over once the lease lapses by the database's
//! clock, and the old leader stopped its leader work before that. A revocation on one node
//! empties the other's cache as it commits (LISTEN/NOTIFY), without waiting for the poll.

use std::sync::Arc;
use std::time::Duration;

use byok_broker::{Broker, BrokerConfig, ManualClock, monitor};
use byok_kms::FakeKeyService;
use byok_store::SqlStore;
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_leads_and_another_takes_over_when_it_lapses() {
    let pg = crate::PgSchema::new("byok_lease").await;
    let url = pg.url.clone();

    let kms = Arc::new(FakeKeyService::default());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let node = |name: &str| {
        let mut config = BrokerConfig::new("arn:aws:iam::279766244153:role/Cryptor-OSB-Provider".parse().expect("arn"));
        config.node_id = name.to_string();
        config.lease_ttl = Duration::from_millis(1500);
        config.allow_legacy_trust = true;
        (config, kms.clone(), clock.clone())
    };
    let (ca, ka, cla) = node("node-a");
    let a = Arc::new(Broker::new(ca, Arc::new(SqlStore::connect(&url).await.expect("store a")), ka, cla));
    let (cb, kb, clb) = node("node-b");
    let b = Arc::new(Broker::new(cb, Arc::new(SqlStore::connect(&url).await.expect("store b")), kb, clb));
    let id: byok_domain::TenantId = "acme".parse().expect("id");
    a.add_tenant(&id, "us", &"111122223333".parse().expect("account")).await.expect("add");
    assert!(a.verify_tenant(&id).await.expect("verify").ok);

    // a leads: it runs the pass; b is a follower and probes nothing.
    let pass = monitor::run_once(&a).await;
    assert!(!pass.follower && pass.tenants_probed == 1, "{pass:?}");
    let probes_before = kms.assumes.load(std::sync::atomic::Ordering::SeqCst);
    let pass = monitor::run_once(&b).await;
    assert!(pass.follower && pass.tenants_probed == 0, "{pass:?}");
    assert_eq!(kms.assumes.load(std::sync::atomic::Ordering::SeqCst), probes_before, "the follower made no AWS call");
    assert!(a.is_leader() && !b.is_leader());
    assert_eq!(b.leader().await.as_deref(), Some("node-a"), "every node can say who leads");
    // Both serve the data plane.
    let sealed = b.encrypt(&id, b"r", b"x").await.expect("the follower serves data");
    assert_eq!(a.decrypt(&id, b"r", &sealed).await.expect("decrypt").as_slice(), b"x");

    // a stops renewing (as if killed): it stops leading after 80 % of the TTL, b takes over once
    // the lease lapsed by the database's clock.
    tokio::time::sleep(Duration::from_millis(1250)).await;
    assert!(!a.is_leader(), "the old leader stopped its leader work before the lease lapsed");
    assert!(!b.renew_leadership().await, "not yet: the lease is still valid in the database");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pass = monitor::run_once(&b).await;
    assert!(!pass.follower && pass.tenants_probed == 1, "b leads now: {pass:?}");
    assert_eq!(a.leader().await.as_deref(), Some("node-b"));
    assert!(monitor::run_once(&a).await.follower, "a is a follower now");
    // A leader that shuts down gives the lease up at once.
    b.release_leadership().await;
    assert!(!monitor::run_once(&a).await.follower, "a takes over at once");

    // Cross-node purge: b serves acme from its cache; a revokes; b hears it as it commits.
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let listening = tokio::spawn(monitor::follow_changes(b.clone(), async move {
        let _ = shutdown_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await; // the listener connects
    b.encrypt(&id, b"r", b"x").await.expect("warm on b");
    assert_eq!(b.cached_keys(), 1);
    let started = std::time::Instant::now();
    a.revoke(&id).await.expect("revoke on a");
    while b.cached_keys() > 0 {
        assert!(started.elapsed() < Duration::from_secs(2), "b never heard of the revocation");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let purge = started.elapsed();
    eprintln!("MEASURE cross-node purge (revoke committed on a, then b's cache empty): {purge:?}");
    assert!(matches!(b.decrypt(&id, b"r", &sealed).await, Err(byok_broker::BrokerError::Revoked { .. })));
    // A revoked token stops on the other node as the revocation commits, not after the cache.
    let issued = a.issue_token(byok_store::TokenScope::Service(byok_store::ServiceReach::AllTenants), None, false).await.expect("issue");
    assert_eq!(
        b.token_scope(&issued.token).await.expect("scope"),
        Some(byok_store::TokenScope::Service(byok_store::ServiceReach::AllTenants)),
        "cached on b"
    );
    a.revoke_token(&issued.record.id).await.expect("revoke token");
    let started = std::time::Instant::now();
    while b.token_scope(&issued.token).await.expect("scope").is_some() {
        assert!(started.elapsed() < Duration::from_secs(2), "b still honours the revoked token");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("MEASURE cross-node token revocation: {:?}", started.elapsed());
    // The same 50 times, for the distribution of the notification's delay.
    let mut delays = Vec::new();
    for _ in 0..50 {
        let issued =
            a.issue_token(byok_store::TokenScope::Service(byok_store::ServiceReach::AllTenants), None, false).await.expect("issue");
        assert!(b.token_scope(&issued.token).await.expect("scope").is_some(), "cached on b");
        a.revoke_token(&issued.record.id).await.expect("revoke token");
        let started = std::time::Instant::now();
        while b.token_scope(&issued.token).await.expect("scope").is_some() {
            assert!(started.elapsed() < Duration::from_secs(2), "b still honours a revoked token");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    eprintln!(
        "MEASURE cross-node purge after commit, 50 token revocations: p50 {:?}, p99 {:?}, max {:?}",
        delays[24], delays[48], delays[49]
    );
    let _ = shutdown_tx.send(());
    listening.await.expect("listener stops");

    drop((a, b));
    pg.drop().await;
}
