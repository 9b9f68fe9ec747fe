//! A node cut off from PostgreSQL (a TCP proxy the test severs): it keeps serving the keys and
//! the tokens it already has, refuses what needs the store with a distinct "store unavailable",
//! decides nothing (no tenant is revoked or destroyed because of the outage), and resumes by
//! itself when the database is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use byok_broker::{Broker, BrokerConfig, BrokerError, ManualClock, monitor};
use byok_kms::FakeKeyService;
use byok_store::{SqlStore, TokenScope};
use byok_testkit::proxy::Proxy;
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_store_serves_what_it_has_and_decides_nothing() {
    let pg = crate::PgSchema::new("byok_outage").await;
    let (base, url) = (pg.base.clone(), pg.url.clone());
    // The same database through a proxy: HOST:PORT between '@' (or "//") and the next '/'.
    let after_scheme = base.split_once("://").expect("a URL").1;
    let authority = after_scheme.split('/').next().expect("authority");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let upstream = tokio::net::lookup_host(if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") })
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let proxy = Proxy::start(upstream).await;
    let proxied = url.replacen(host_port, &proxy.addr.to_string(), 1);

    let kms = Arc::new(FakeKeyService::default());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let mut config = BrokerConfig::new("arn:aws:iam::279766244153:role/Cryptor-OSB-Provider".parse().expect("arn"));
    config.allow_legacy_trust = true;
    config.lease_ttl = Duration::from_secs(10);
    config.token_cache_ttl = Duration::from_millis(100);
    let a = Arc::new(Broker::new(config.clone(), Arc::new(SqlStore::connect(&url).await.expect("a")), kms.clone(), clock.clone()));
    config.node_id = "cut-off".into();
    let b = Arc::new(Broker::new(config, Arc::new(SqlStore::connect(&proxied).await.expect("b")), kms.clone(), clock.clone()));
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    let beta: byok_domain::TenantId = "beta".parse().expect("id");
    for id in [&acme, &beta] {
        a.add_tenant(id, "us", &"111122223333".parse().expect("account")).await.expect("add");
        assert!(a.verify_tenant(id).await.expect("verify").ok);
    }
    let service = a.issue_token(TokenScope::Service(byok_store::ServiceReach::AllTenants), None, false).await.expect("token");
    assert_eq!(b.token_scope(&service.token).await.expect("scope"), Some(TokenScope::Service(byok_store::ServiceReach::AllTenants)));
    let sealed = b.encrypt(&acme, b"r", b"x").await.expect("warm acme on b");
    assert!(b.renew_leadership().await, "b leads");

    proxy.sever().await;
    // What b already has keeps working: the cached key, the token it knew (past its cache TTL).
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(b.decrypt(&acme, b"r", &sealed).await.expect("served from the cache").as_slice(), b"x");
    assert_eq!(b.token_scope(&service.token).await.expect("known token"), Some(TokenScope::Service(byok_store::ServiceReach::AllTenants)));
    // What needs the store fails fast with a distinct error.
    let started = Instant::now();
    let refused = b.encrypt(&beta, b"r", b"x").await;
    assert!(matches!(refused, Err(BrokerError::StoreUnavailable(_))), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "failed in {:?}", started.elapsed());
    assert!(matches!(
        b.add_tenant(&"gamma".parse().expect("id"), "us", &"111122223333".parse().expect("a")).await,
        Err(BrokerError::StoreUnavailable(_))
    ));
    // The monitor on b decides nothing while cut off, whatever KMS says.
    kms.fail(None, Some(byok_kms::AccessError::Denied { denial: byok_kms::Denial::TrustPolicy, region: None, message: "denied".into() }));
    let pass = monitor::run_once(&b).await;
    assert!(pass.revoked.is_empty() && pass.destroyed.is_empty() && pass.held.is_empty(), "{pass:?}");
    kms.fail(None, None);
    for id in [&acme, &beta] {
        assert!(a.tenant(id).await.expect("t").state.serves_data(), "nothing revoked because of the outage");
    }

    // The database is back: everything resumes by itself.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.encrypt(&beta, b"r", b"x").await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "did not resume: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.add_tenant(&"gamma".parse().expect("id"), "us", &"111122223333".parse().expect("a")).await.expect("writes resume");

    drop((a, b));
    pg.drop().await;
}
