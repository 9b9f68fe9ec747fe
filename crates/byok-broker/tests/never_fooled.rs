//! Faults on the provider's own side are outages, never customers' revocations: the provider's
//! role deleted, its credentials expired, STS or KMS refusing everyone at once (an SCP, a
//! session policy), a custom key store disconnected. In each: no tenant changes state, no
//! customer ticket, the operator is alerted, cached keys keep serving, and everything resumes
//! by itself when the fault is gone. Too many real denials at once are held for a person.

use std::sync::Arc;

use byok_broker::{Broker, BrokerConfig, BrokerError, Clock, ManualClock, monitor};
use byok_domain::{AlertKind, TenantId, TenantState};
use byok_store::SqlStore;
use byok_store::prelude::*;
use byok_testkit::{Cloud, Customer, PROVIDER_ROLE};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::localcloud_kms;
use crate::revocation::canary_config;

const ROLE: &str = "byok-key-management";

struct Fleet {
    cloud: Cloud,
    broker: Arc<Broker>,
    store: Arc<SqlStore>,
    clock: Arc<ManualClock>,
    tenants: Vec<(TenantId, Customer, String, Vec<u8>)>,
    _dir: tempfile::TempDir,
}

/// A broker with a canary and `n` active tenants in `de` (one region each), each with a record
/// whose key is warm in the cache.
async fn fleet(n: usize) -> Fleet {
    let cloud = Cloud::start().await;
    let canary = cloud.canary().await;
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("byok.db")).await.expect("store"));
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let mut config = BrokerConfig::new(cloud.provider_role_arn.parse().expect("arn"));
    config.canary = Some(canary_config(&canary));
    let broker = Arc::new(Broker::new(config, store.clone(), localcloud_kms(&cloud).await, clock.clone()));
    let setups = (0..n).map(|i| {
        let (cloud, broker) = (&cloud, &broker);
        async move {
            let customer = cloud.customer(&format!("customer-{i}")).await;
            let id: TenantId = format!("tenant-{i}").parse().expect("id");
            let added = broker.add_tenant(&id, "de", &customer.account.parse().expect("account")).await.expect("add");
            let external_id = added.instructions.external_id.clone().expect("a BYOK tenant has an external id");
            customer.create_role(ROLE, &cloud.provider_role_arn, Some(&external_id)).await;
            customer.create_key("eu-central-1", &added.instructions.alias).await;
            (id, customer, external_id)
        }
    });
    let mut tenants = Vec::new();
    for (id, customer, external_id) in futures_util::future::join_all(setups).await {
        assert!(broker.verify_tenant(&id).await.expect("verify").ok, "{id}");
        let record = broker.encrypt(&id, b"r1", b"secret").await.expect("encrypt");
        tenants.push((id, customer, external_id, record));
    }
    Fleet { cloud, broker, store, clock, tenants, _dir: dir }
}

impl Fleet {
    async fn states(&self) -> Vec<TenantState> {
        let mut states = Vec::new();
        for (id, ..) in &self.tenants {
            states.push(self.broker.tenant(id).await.expect("tenant").state);
        }
        states
    }

    async fn open_alerts(&self, kind: AlertKind) -> usize {
        self.store.alerts(true).await.expect("alerts").iter().filter(|a| a.kind == kind).count()
    }

    /// One pass during a provider fault: nothing decided, the operator alerted, data served.
    async fn assert_outage(&self, what: &str) {
        let pass = monitor::run_once(&self.broker).await;
        assert!(pass.provider_fault.is_some(), "{what}: a provider fault: {pass:?}");
        assert!(pass.revoked.is_empty() && pass.held.is_empty(), "{what}: nothing decided: {pass:?}");
        assert!(self.states().await.iter().all(|s| *s == TenantState::Active), "{what}: every tenant still active");
        assert!(self.broker.tickets(None).await.expect("tickets").is_empty(), "{what}: no customer ticket");
        assert_eq!(self.open_alerts(AlertKind::ProviderIdentity).await, 1, "{what}: one alert, opened once");
        let health = self.broker.provider_health();
        assert!(!health.healthy && health.reason.is_some(), "{what}: {health:?}");
        assert_eq!(self.broker.metrics.provider_healthy.get(), 0);
        // A second pass opens no second alert.
        monitor::run_once(&self.broker).await;
        assert_eq!(self.open_alerts(AlertKind::ProviderIdentity).await, 1, "{what}: still one alert");
        for (id, _, _, record) in &self.tenants {
            assert_eq!(self.broker.decrypt(id, b"r1", record).await.expect("served from the cache").as_slice(), b"secret", "{what}");
        }
    }

    /// The fault is gone: the next pass works and resolves the alert, with no revocation.
    async fn assert_recovered(&self, what: &str) {
        let pass = monitor::run_once(&self.broker).await;
        assert_eq!((pass.provider_fault.as_deref(), pass.revoked.len(), pass.held.len()), (None, 0, 0), "{what}: {pass:?}");
        assert_eq!(self.open_alerts(AlertKind::ProviderIdentity).await, 0, "{what}: the alert is resolved");
        assert!(self.broker.provider_health().healthy && self.broker.metrics.provider_healthy.get() == 1);
        assert!(self.states().await.iter().all(|s| *s == TenantState::Active));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_side_faults_are_outages_never_revocations() {
    let f = fleet(3).await;
    f.assert_recovered("at the start").await;

    // The provider's own role deleted (its live credentials still sign; AWS refuses them; once
    // recreated, a credentials refresh brings a session of the new role).
    f.cloud.provider_aws("us-east-1", &["iam", "delete-role", "--role-name", PROVIDER_ROLE]).await;
    f.assert_outage("provider role deleted").await;
    // Recreated without its permission to assume roles: every customer's AssumeRole is refused
    // with AccessDenied, as a trust Deny would be. The canary, in an account of its own, is
    // refused the same way, so it is an outage, not three customers revoking at once.
    let ec2 = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    f.cloud.provider_aws("us-east-1", &["iam", "create-role", "--role-name", PROVIDER_ROLE, "--assume-role-policy-document", ec2]).await;
    f.cloud.refresh_provider_credentials();
    f.assert_outage("provider role recreated without its permission").await;
    let policy = byok_testkit::provider_policy(&f.cloud.provider_account);
    let allow = ["iam", "put-role-policy", "--role-name", PROVIDER_ROLE, "--policy-name", "byok-provider", "--policy-document", &policy];
    f.cloud.provider_aws("us-east-1", &allow).await;
    f.assert_recovered("provider role's permission back").await;

    // STS answers AccessDenied to every AssumeRole at once (an SCP, a permissions boundary).
    f.cloud.fault(json!({ "service": "sts", "operation": "AssumeRole", "kind": "refuse", "code": "AccessDenied" })).await;
    f.assert_outage("STS denies everyone").await;
    f.cloud.clear_faults().await;
    f.assert_recovered("STS fault gone").await;

    // KMS denies every Decrypt (a session policy denying kms:Decrypt on the provider's sessions).
    f.cloud.fault(json!({ "service": "kms", "operation": "Decrypt", "kind": "refuse", "code": "AccessDeniedException" })).await;
    f.assert_outage("kms:Decrypt denied to everyone").await;
    f.cloud.clear_faults().await;
    f.assert_recovered("KMS fault gone").await;

    // The provider's credentials expire and cannot be refreshed.
    f.cloud.advance_clock(2 * 3600).await;
    f.assert_outage("provider credentials expired").await;
    f.cloud.advance_clock(-2 * 3600).await;
    f.assert_recovered("clock back").await;

    // A custom key store disconnected in the tenants' region: KMSInvalidStateException on an
    // Enabled key. DescribeKey says Enabled, so it is transient: no revocation, no hold.
    f.cloud.fault(json!({ "service": "kms", "region": "eu-central-1", "operation": "Decrypt", "kind": "refuse", "code": "KMSInvalidStateException" })).await;
    let pass = monitor::run_once(&f.broker).await;
    assert!(pass.revoked.is_empty() && pass.held.is_empty(), "{pass:?}");
    assert!(f.states().await.iter().all(|s| *s == TenantState::Active));
    let check = f.broker.last_check(&f.tenants[0].0).expect("checked");
    assert!(check.regions.iter().all(|r| matches!(r.access, byok_domain::RegionAccess::Unknown { .. })), "{check:?}");
    // All of it at once, too: the canary's key store is down as well.
    f.cloud.fault(json!({ "service": "kms", "operation": "Decrypt", "kind": "refuse", "code": "KMSInvalidStateException" })).await;
    f.assert_outage("custom key stores disconnected").await;
    f.cloud.clear_faults().await;
    f.assert_recovered("key stores back").await;

    // The converse still holds: one customer's trust Deny revokes that tenant alone.
    let (id, customer, external_id, _) = &f.tenants[1];
    customer.set_trust(ROLE, "Deny", &f.cloud.provider_role_arn, Some(external_id)).await;
    let pass = monitor::run_once(&f.broker).await;
    assert_eq!(pass.revoked, [id.to_string()], "{pass:?}");
    assert_eq!(f.broker.tickets(None).await.expect("tickets").len(), 1);
    assert_eq!(f.states().await.iter().filter(|s| matches!(s, TenantState::Revoked { .. })).count(), 1);

    // Destruction takes a last look: past the deadline with the provider failing, nothing is
    // erased; once it works, the tenant is destroyed.
    f.clock.advance(Duration::days(16));
    f.cloud.fault(json!({ "service": "sts", "kind": "refuse", "code": "AccessDenied" })).await;
    let pass = monitor::run_once(&f.broker).await;
    assert!(pass.destroyed.is_empty(), "nothing destroyed while the provider fails: {pass:?}");
    assert!(matches!(f.broker.tenant(id).await.expect("t").state, TenantState::Revoked { .. }));
    f.cloud.clear_faults().await;
    assert_eq!(monitor::run_once(&f.broker).await.destroyed, [id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_denials_at_once_are_held_for_a_person() {
    let f = fleet(5).await;
    // Every customer denies at once: more than 3 tenants and more than 5 % of the active ones.
    for (_, customer, external_id, _) in &f.tenants {
        customer.set_trust(ROLE, "Deny", &f.cloud.provider_role_arn, Some(external_id)).await;
    }
    let started = f.clock.now();
    let pass = monitor::run_once(&f.broker).await;
    assert!(pass.revoked.is_empty() && pass.provider_fault.is_none(), "{pass:?}");
    assert_eq!(pass.held.len(), 5, "{pass:?}");
    assert!(f.states().await.iter().all(|s| *s == TenantState::Active), "no deadline starts");
    assert!(f.broker.tickets(None).await.expect("tickets").is_empty(), "no customer is told they revoked");
    assert_eq!(f.open_alerts(AlertKind::RevocationsHeld).await, 1);
    assert_eq!(f.broker.metrics.revocations_held.get(), 5);
    // The held tenants' keys are gone from the cache: the data path asks KMS afresh and is refused.
    let (first, _, _, record) = &f.tenants[0];
    assert!(matches!(f.broker.decrypt(first, b"r1", record).await, Err(BrokerError::KeyAccessDenied(_))));

    // Two customers restore: they leave the hold silently on the next pass.
    for (_, customer, external_id, _) in &f.tenants[3..] {
        customer.set_trust(ROLE, "Allow", &f.cloud.provider_role_arn, Some(external_id)).await;
    }
    f.clock.advance(Duration::minutes(10));
    let pass = monitor::run_once(&f.broker).await;
    assert!(pass.revoked.is_empty() && pass.held.is_empty(), "{pass:?}");
    let held: Vec<String> = f.broker.held_revocations().await.expect("held").into_iter().map(|h| h.tenant.to_string()).collect();
    assert_eq!(held, ["tenant-0", "tenant-1", "tenant-2"]);

    // A person releases one: revoked as of the first detection, and its customer gets the
    // ticket; the deadline counts from the release (10 minutes after the detection), since the
    // customer is told only now.
    let release_time = f.clock.now();
    let released = f.broker.release_hold(first).await.expect("release");
    let TenantState::Revoked { since, deadline } = released.state else { panic!("not revoked: {released:?}") };
    assert!(
        since > started - Duration::seconds(1) && since < started + Duration::minutes(1),
        "as of the detection, not the release: {since} vs {started}"
    );
    assert_eq!(deadline, release_time + Duration::days(15));
    assert_eq!(f.broker.tickets(None).await.expect("tickets").len(), 1);
    // Who decided is in the log after the revocation (the `hold.released` event).
    let log = f.broker.audit_log(Some(first), 0, 1000).await.expect("audit");
    let reasons: Vec<&str> = log.iter().filter(|e| e.kind == "transition").map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons.iter().rev().take(2).collect::<Vec<_>>(), [&"hold_released", &"revocation"], "{reasons:?}");
    // And dismisses another: it stays active.
    let (second, ..) = &f.tenants[1];
    f.broker.dismiss_hold(second).await.expect("dismiss");
    assert_eq!(f.broker.tenant(second).await.expect("t").state, TenantState::Active);
    assert!(matches!(f.broker.dismiss_hold(second).await, Err(BrokerError::NotHeld(_))));
    assert_eq!(f.broker.held_revocations().await.expect("held").len(), 1);

    // The last hold waits longer than the whole grace period. After a day it raises an alert
    // of its own; released 16 days after its detection, its customer still gets 15 days from
    // the release (not a deadline already past, destroyed by the next sweep), and the ticket
    // names that deadline.
    let (third, ..) = &f.tenants[2];
    f.clock.advance(Duration::hours(25));
    monitor::run_once(&f.broker).await;
    assert_eq!(f.open_alerts(AlertKind::HoldOverdue).await, 1, "a hold waiting over a day alerts");
    f.clock.advance(Duration::days(15));
    monitor::run_once(&f.broker).await;
    assert_eq!(f.open_alerts(AlertKind::HoldOverdue).await, 1, "one alert, not one a pass");
    let released_at = f.clock.now();
    let released = f.broker.release_hold(third).await.expect("release");
    let TenantState::Revoked { since, deadline } = released.state else { panic!("not revoked: {released:?}") };
    assert!(since < started + Duration::minutes(1), "still as of the detection: {since}");
    assert!(deadline >= released_at + Duration::days(15), "the full grace period from the release: {deadline} vs {released_at}");
    assert!(deadline < released_at + Duration::days(15) + Duration::minutes(1), "{deadline}");
    assert_eq!(f.open_alerts(AlertKind::HoldOverdue).await, 0, "no hold left: resolved");
    let pass = monitor::run_once(&f.broker).await;
    assert!(pass.destroyed.is_empty(), "not destroyed by the next sweep: {pass:?}");
    assert!(matches!(f.broker.tenant(third).await.expect("t").state, TenantState::Revoked { .. }));
    let ticket = f.broker.tickets(None).await.expect("tickets").into_iter().find(|t| &t.tenant == third).expect("ticket");
    let (_, comments) = f.broker.ticket(ticket.id).await.expect("ticket");
    let shown = byok_broker::tickets::utc(deadline);
    assert!(comments[0].body.contains(&format!("You can restore access until {shown}. After")), "{}", comments[0].body);
    assert!(shown.ends_with(" UTC") && !shown.contains('.'), "readable, to the second: {shown}");
    f.clock.advance(Duration::days(14));
    assert!(monitor::run_once(&f.broker).await.destroyed.is_empty(), "14 days after the release: still restorable");
    f.clock.advance(Duration::days(1) + Duration::minutes(1));
    assert_eq!(monitor::run_once(&f.broker).await.destroyed, [third.to_string()], "destroyed at the new deadline");
    // Its erasure is proven (SQLite: the write-ahead log checkpointed) and audited as such.
    let trail = f.store.audit(Some(third), 0, 10_000).await.expect("audit");
    assert!(trail.iter().any(|e| e.kind == "keys" && e.reason == "erased" && e.detail.contains("destroyed")), "{trail:?}");
}
