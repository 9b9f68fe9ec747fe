//! The broker with the KMS test double and a SQLite store: the cache, the lifecycle refusals,
//! isolation and tampering. (Against localcloud and the real aws CLI: the server's tests.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup;
mod layout;
mod leader;
mod never_fooled;
mod revocation;
mod store_outage;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use byok_broker::{Broker, BrokerConfig, BrokerError, Clock, ManualClock};
use byok_domain::{Region, TenantId, TenantState};
use byok_kms::{AccessError, Denial, FakeKeyService, Fault};
use byok_store::SqlStore;
use time::{Duration, OffsetDateTime};

/// The AWS SDK key service against localcloud as the provider: one attempt per call and a
/// short timeout, so tests of faults do not wait out retries; the provider's credentials are
/// fetched afresh as an instance profile's would be after a refresh.
async fn localcloud_kms(cloud: &byok_testkit::Cloud) -> Arc<byok_kms::AwsKeyService> {
    let credentials = cloud.provider_credentials_refreshed();
    let mut config = byok_kms::AwsKeyServiceConfig::new(credentials, Some(cloud.endpoint()));
    config.max_attempts = 1;
    config.call_timeout = std::time::Duration::from_millis(700);
    Arc::new(byok_kms::AwsKeyService::new(config))
}

/// A schema of its own in the test PostgreSQL (`BYOK_TEST_POSTGRES_URL`, else the local
/// server's `test` database): the admin connection, the server's URL, the schema, and a store
/// URL that works in it. Drop the schema at the end with [`PgSchema::drop`].
struct PgSchema {
    admin: sqlx::AnyConnection,
    base: String,
    schema: String,
    url: String,
}

impl PgSchema {
    async fn new(prefix: &str) -> Self {
        use sqlx::Connection;
        let base = std::env::var("BYOK_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test (set BYOK_TEST_POSTGRES_URL): {e}"));
        let schema = format!("{prefix}_{}_{}", std::process::id(), OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000);
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("schema");
        let url = Self::in_schema(&base, &schema);
        Self { admin, base, schema, url }
    }

    /// `base` with `schema` as its search path.
    fn in_schema(base: &str, schema: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{schema}")
    }

    async fn drop(mut self) {
        let drop = format!("DROP SCHEMA {} CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut self.admin).await.expect("drop schema");
    }
}

struct Setup {
    broker: Arc<Broker>,
    store: Arc<SqlStore>,
    kms: Arc<FakeKeyService>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("byok.db")).await.expect("store"));
    let kms = Arc::new(FakeKeyService::default());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t")));
    let config = BrokerConfig::new("arn:aws:iam::279766244153:role/Cryptor-OSB-Provider".parse().expect("arn"));
    let broker = Arc::new(Broker::new(config, store.clone(), kms.clone(), clock.clone()));
    Setup { broker, store, kms, clock, _dir: dir }
}

async fn active(s: &Setup, id: &str) -> TenantId {
    let id: TenantId = id.parse().expect("id");
    s.broker.add_tenant(&id, "us", &"111122223333".parse().expect("acct")).await.expect("add");
    // The double lets the role be assumed with and without the external id: a legacy policy.
    s.kms.fail(None, None);
    let v = s.broker.verify_tenant(&id).await.expect("verify");
    assert!(!v.ok, "a role assumable without the external id is refused");
    assert!(v.trust_problem.as_deref().is_some_and(|p| p.contains("without the external id")), "{v:?}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_trust_is_refused_unless_allowed_and_then_warned() {
    let s = setup().await;
    let id = active(&s, "acme").await;
    assert_eq!(s.broker.tenant(&id).await.expect("tenant").state, TenantState::Onboarding);
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("b.db")).await.expect("store"));
    let mut config = s.broker.config().clone();
    config.allow_legacy_trust = true;
    let lenient = Broker::new(config, store, s.kms.clone(), s.clock.clone());
    lenient.add_tenant(&id, "us", &"111122223333".parse().expect("acct")).await.expect("add");
    let v = lenient.verify_tenant(&id).await.expect("verify");
    assert!(v.ok && v.warnings.iter().any(|w| w.contains("does not require the external id")), "{v:?}");
    assert!(lenient.tenant(&id).await.expect("t").binding.legacy_trust);
    let sealed = lenient.encrypt(&id, b"r1", b"data").await.expect("encrypt");
    assert_eq!(lenient.decrypt(&id, b"r1", &sealed).await.expect("decrypt").as_slice(), b"data");
}

/// A broker whose tenants verify (legacy allowed, since the double cannot refuse only the
/// external-id-less AssumeRole).
async fn lenient() -> Setup {
    let mut s = setup().await;
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("b.db")).await.expect("store"));
    let mut config = s.broker.config().clone();
    config.allow_legacy_trust = true;
    s.broker = Arc::new(Broker::new(config, store.clone(), s.kms.clone(), s.clock.clone()));
    s.store = store;
    s._dir = dir;
    s
}

async fn onboard(s: &Setup, id: &str) -> TenantId {
    let id: TenantId = id.parse().expect("id");
    s.broker.add_tenant(&id, "us", &"111122223333".parse().expect("acct")).await.expect("add");
    assert!(s.broker.verify_tenant(&id).await.expect("verify").ok);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_unwrap_and_the_ttl_counts_from_it() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    let before = s.kms.unwraps.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let broker = s.broker.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move { broker.encrypt(&id, format!("r{i}").as_bytes(), b"x").await }));
    }
    for t in tasks {
        t.await.expect("join").expect("encrypt");
    }
    assert_eq!(s.kms.unwraps.load(Ordering::SeqCst) - before, 1, "single flight");
    assert_eq!(s.broker.metrics.cache_misses.get(), 1);
    assert_eq!(s.broker.metrics.cache_hits.get(), 31);

    // Still cached just before the TTL; unwrapped again after it, however busy the tenant was.
    s.clock.advance(Duration::seconds(299));
    s.broker.encrypt(&id, b"r", b"x").await.expect("encrypt");
    assert_eq!(s.kms.unwraps.load(Ordering::SeqCst) - before, 1);
    s.clock.advance(Duration::seconds(2));
    s.broker.encrypt(&id, b"r", b"x").await.expect("encrypt");
    assert_eq!(s.kms.unwraps.load(Ordering::SeqCst) - before, 2, "TTL counted from the unwrap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_destroyed_tenants_are_refused() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    let sealed = s.broker.encrypt(&id, b"r1", b"secret").await.expect("encrypt");
    let revoked = s.broker.revoke(&id).await.expect("revoke");
    let TenantState::Revoked { deadline, .. } = revoked.state else { panic!("{revoked:?}") };
    assert_eq!(deadline, byok_broker::Clock::now(s.clock.as_ref()) + Duration::days(15));
    assert!(
        matches!(s.broker.decrypt(&id, b"r1", &sealed).await, Err(BrokerError::Revoked { .. })),
        "refused at once: the cache was purged"
    );
    assert!(matches!(s.broker.destroy(&id).await, Err(BrokerError::Transition { .. })), "not before the deadline");
    s.clock.advance(Duration::days(16));
    s.broker.destroy(&id).await.expect("destroy");
    assert!(matches!(s.broker.decrypt(&id, b"r1", &sealed).await, Err(BrokerError::Destroyed(_))));
    let onboarding: TenantId = "newco".parse().expect("id");
    s.broker.add_tenant(&onboarding, "eu", &"111122223333".parse().expect("acct")).await.expect("add");
    assert!(matches!(s.broker.encrypt(&onboarding, b"r", b"x").await, Err(BrokerError::NotActive { .. })));
    assert!(matches!(s.broker.encrypt(&"ghost".parse().expect("id"), b"r", b"x").await, Err(BrokerError::UnknownTenant(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_reaches_the_others_cache() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    // A second node on the same store.
    let store = Arc::new(SqlStore::sqlite(&s._dir.path().join("b.db")).await.expect("store"));
    let other = Broker::new(s.broker.config().clone(), store, s.kms.clone(), s.clock.clone());
    let sealed = other.encrypt(&id, b"r1", b"secret").await.expect("the other node caches the key");
    assert_eq!(other.cached_keys(), 1);
    assert_eq!(other.sync_cache().await.expect("sync"), 0, "nothing to drop while active");
    s.broker.revoke(&id).await.expect("revoked on the first node");
    assert_eq!(other.sync_cache().await.expect("sync"), 1);
    assert!(matches!(other.decrypt(&id, b"r1", &sealed).await, Err(BrokerError::Revoked { .. })), "refused on the other node too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_tampering_is_caught() {
    let s = lenient().await;
    let a = onboard(&s, "acme").await;
    let b = onboard(&s, "beta").await;
    let sealed = s.broker.encrypt(&a, b"r1", b"secret").await.expect("encrypt");
    assert!(matches!(s.broker.decrypt(&b, b"r1", &sealed).await, Err(BrokerError::Envelope(_))), "another tenant");
    assert!(matches!(s.broker.decrypt(&a, b"r2", &sealed).await, Err(BrokerError::Envelope(_))), "another record");
    let mut t = sealed.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert!(matches!(s.broker.decrypt(&a, b"r1", &t).await, Err(BrokerError::Envelope(_))));
    assert_eq!(s.broker.decrypt(&a, b"r1", &sealed).await.expect("decrypt").as_slice(), b"secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nearest_region_first_then_the_next_on_a_transient_fault() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    let other = onboard(&s, "beta").await;
    let third = onboard(&s, "gamma").await;
    let east: Region = "us-east-1".parse().expect("r");
    let west: Region = "us-west-2".parse().expect("r");
    s.kms.fail(
        Some(east.clone()),
        Some(AccessError::Transient { fault: Fault::Throttled, region: Some(east.clone()), message: "slow down".into() }),
    );
    s.broker.encrypt(&id, b"r", b"x").await.expect("served through us-west-2");
    s.kms.fail(Some(west.clone()), Some(AccessError::Transient { fault: Fault::ServerError, region: Some(west), message: "500".into() }));
    assert!(
        matches!(s.broker.encrypt(&other, b"r", b"x").await, Err(BrokerError::KeyServiceUnavailable(_))),
        "every region down: unavailable, not revoked"
    );
    assert_eq!(s.broker.tenant(&other).await.expect("t").state, TenantState::Active);
    s.kms.fail(
        Some(east.clone()),
        Some(AccessError::Denied { denial: Denial::KeyDisabled, region: Some(east), message: "disabled".into() }),
    );
    s.kms.fail(Some("us-west-2".parse().expect("r")), None);
    // A definitive denial is not skipped over: the request is refused at once and the tenant
    // goes to the monitor's "probe now" queue, whose probe agrees and revokes.
    assert!(matches!(s.broker.encrypt(&third, b"r", b"x").await, Err(BrokerError::KeyAccessDenied(_))));
    assert_eq!(s.broker.tenant(&third).await.expect("t").state, TenantState::Active, "not inside the request");
    assert_eq!(byok_broker::monitor::probe_requested(&s.broker).await.revoked, ["gamma"]);
    assert!(matches!(s.broker.tenant(&third).await.expect("t").state, TenantState::Revoked { .. }));
    assert!(matches!(s.broker.encrypt(&third, b"r", b"x").await, Err(BrokerError::Revoked { .. })));
}

/// Two nodes reconciling the same crash (a revocation written, its ticket not yet opened) at
/// once: the store lets exactly one ticket open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_nodes_open_exactly_one_ticket() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    let store = s.store.clone();
    // The revocation's transaction, without the ticket that follows it (the process died).
    let tenant = s.broker.tenant(&id).await.expect("tenant");
    let revoke =
        tenant.state.apply(byok_domain::Event::RevocationDetected { at: s.clock.now(), grace: Duration::days(15) }).expect("revoke");
    let seal = |seq: i64, prev: &str| byok_broker::audit::seal(seq, prev, Some("acme"), 0, "transition", "revocation", "{}");
    byok_store::TenantStore::set_state(store.as_ref(), &id, tenant.version, &revoke, &seal).await.expect("revoked");
    let nodes: Vec<_> =
        (0..4).map(|_| Arc::new(Broker::new(s.broker.config().clone(), store.clone(), s.kms.clone(), s.clock.clone()))).collect();
    let mut racing = tokio::task::JoinSet::new();
    for node in nodes {
        racing.spawn(async move { node.reconcile().await.expect("reconcile") });
    }
    let opened: usize = racing.join_all().await.into_iter().sum();
    assert_eq!(opened, 1, "exactly one node opened the ticket");
    assert_eq!(s.broker.tickets(Some(&id)).await.expect("tickets").len(), 1);
}

/// Routine successful probes become one audit row per (tenant, region) per hour, with their
/// count; a denial is written in full at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routine_probes_are_summarized_per_hour() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    let probes = |log: &[byok_store::AuditEntry]| log.iter().filter(|e| e.reason == "probe").cloned().collect::<Vec<_>>();
    for _ in 0..3 {
        byok_broker::monitor::run_once(&s.broker).await;
    }
    assert!(probes(&s.broker.audit_log(Some(&id), 0, 1000).await.expect("audit")).is_empty(), "nothing written within the hour");
    s.clock.advance(Duration::hours(1));
    byok_broker::monitor::run_once(&s.broker).await; // the hour turned: last hour's summaries
    let written = probes(&s.broker.audit_log(Some(&id), 0, 1000).await.expect("audit"));
    assert_eq!(written.len(), 2, "one row per region: {written:#?}");
    for e in &written {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).expect("json");
        assert_eq!(detail["summary"]["count"], 3, "{detail}");
    }
    // A denial is written at once, in full.
    let east: Region = "us-east-1".parse().expect("r");
    s.kms.fail(
        Some(east.clone()),
        Some(AccessError::Denied { denial: Denial::KeyDisabled, region: Some(east), message: "disabled".into() }),
    );
    byok_broker::monitor::run_once(&s.broker).await;
    let all = probes(&s.broker.audit_log(Some(&id), 0, 1000).await.expect("audit"));
    assert!(all.iter().any(|e| e.detail.contains("key_disabled") && !e.detail.contains("summary")), "{all:#?}");
    // On shutdown the pending summaries are written.
    s.broker.flush_probe_summaries().await;
    assert!(probes(&s.broker.audit_log(Some(&id), 0, 1000).await.expect("audit")).len() > all.len());
    assert!(s.broker.verify_audit().await.expect("verify").ok);
}

/// Old audit entries are exported and pruned; the chain then verifies from the checkpoint (the
/// last pruned entry's hash), keeps growing from it, and still catches tampering after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_exported_pruned_and_still_verifies() {
    let s = lenient().await;
    let id = onboard(&s, "acme").await;
    s.broker.encrypt(&id, b"r", b"x").await.expect("a data-path unwrap: audited");
    let cut = s.clock.now() + Duration::seconds(1);
    s.clock.advance(Duration::days(2));
    s.broker.revoke(&id).await.expect("later entries");
    let exported = s.broker.export_audit(cut).await.expect("export");
    assert!(!exported.is_empty() && exported.iter().all(|e| e.at < cut.unix_timestamp()), "{exported:#?}");
    let last = exported.last().expect("last").clone();
    assert!(
        matches!(s.broker.prune_audit(last.seq, "not the hash").await, Err(BrokerError::AuditMismatch { .. })),
        "the hash proves the export"
    );
    assert_eq!(s.broker.prune_audit(last.seq, &last.hash).await.expect("prune"), exported.len());
    let kept = s.broker.audit_log(None, 0, 1000).await.expect("audit");
    assert!(kept.first().is_some_and(|e| e.seq == last.seq + 1), "{kept:#?}");
    let check = s.broker.verify_audit().await.expect("verify");
    assert!(check.ok && check.entries == kept.len() as i64, "{check:?}");
    // The chain goes on from the checkpoint.
    s.broker.restore(&id).await.expect("restore");
    assert!(s.broker.verify_audit().await.expect("verify").ok);
    // The log is the webhooks' outbox: what the dispatcher (not running here) has not read
    // cannot be pruned.
    let newest = s.broker.audit_log(None, 0, 1000).await.expect("audit").last().expect("entries").clone();
    let refused = s.broker.prune_audit(newest.seq, &newest.hash).await;
    assert!(matches!(&refused, Err(BrokerError::Invalid(why)) if why.contains("webhook")), "{refused:?}");
    // Tampering after the checkpoint is still caught.
    let url = format!("sqlite://{}", s._dir.path().join("b.db").display());
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("open");
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE audit_log SET detail = '{{}}' WHERE seq = {}", last.seq + 1)))
        .execute(&mut db)
        .await
        .expect("edit");
    let broken = s.broker.verify_audit().await.expect("verify");
    assert_eq!((broken.ok, broken.first_bad), (false, Some(last.seq + 1)), "{broken:?}");
}

/// The test kit gives its localcloud's provider role the policy `byok serve` gives it (the kit
/// sits below the broker and cannot call it): the same statements, Sids aside.
#[test]
fn the_test_kits_provider_policy_is_the_brokers() {
    let without_sids = |policy: &str| {
        let mut v: serde_json::Value = serde_json::from_str(policy).expect("policy");
        for s in v["Statement"].as_array_mut().expect("statements") {
            s.as_object_mut().expect("statement").remove("Sid");
        }
        let mut statements: Vec<String> = v["Statement"].as_array().expect("statements").iter().map(ToString::to_string).collect();
        statements.sort();
        statements
    };
    assert_eq!(
        without_sids(&byok_testkit::provider_policy("111122223333")),
        without_sids(&byok_broker::setup::provider_role_policy("111122223333"))
    );
}
