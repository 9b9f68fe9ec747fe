//! Revocation and restoration against localcloud, the customer's part played with the real
//! `aws` CLI exactly as `docs/customer-guide.md` describes it.

use std::sync::Arc;

use byok_broker::{Broker, BrokerConfig, BrokerError, ManualClock, monitor};
use byok_domain::{Author, TenantId, TenantState, TicketStatus};
use byok_store::SqlStore;
use byok_store::prelude::*;
use byok_testkit::{Cloud, Customer};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::localcloud_kms;

const ROLE: &str = "byok-key-management";

/// The broker's canary settings for the test kit's canary.
pub fn canary_config(c: &byok_testkit::Canary) -> byok_broker::CanaryConfig {
    byok_broker::CanaryConfig {
        role_arn: c.role_arn.parse().expect("arn"),
        external_id: c.external_id.parse().expect("external id"),
        key: c.key.clone(),
        region: c.region.parse().expect("region"),
        key_policy_key: Some(c.key_policy_key.clone()),
    }
}

struct World {
    cloud: Cloud,
    broker: Arc<Broker>,
    store: Arc<SqlStore>,
    clock: Arc<ManualClock>,
    customer: Customer,
    tenant: TenantId,
    external_id: String,
    _dir: tempfile::TempDir,
}

/// A broker on localcloud with one active tenant in `location`, set up by the customer with
/// the aws CLI.
async fn world(location: &str) -> World {
    let cloud = Cloud::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("byok.db")).await.expect("store"));
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let mut config = BrokerConfig::new(cloud.provider_role_arn.parse().expect("arn"));
    config.canary = Some(canary_config(&cloud.canary().await));
    let broker = Arc::new(Broker::new(config, store.clone(), localcloud_kms(&cloud).await, clock.clone()));
    let customer = cloud.customer("customer").await;
    let tenant: TenantId = "acme".parse().expect("id");
    let added = broker.add_tenant(&tenant, location, &customer.account.parse().expect("account")).await.expect("add");
    let external_id = added.instructions.external_id.clone().expect("a BYOK tenant has an external id");
    customer.create_role(ROLE, &cloud.provider_role_arn, Some(&external_id)).await;
    for region in &added.instructions.regions {
        customer.create_key(region.as_str(), &added.instructions.alias).await;
    }
    assert!(broker.verify_tenant(&tenant).await.expect("verify").ok);
    World { cloud, broker, store, clock, customer, tenant, external_id, _dir: dir }
}

impl World {
    async fn state(&self) -> TenantState {
        self.broker.tenant(&self.tenant).await.expect("tenant").state
    }

    async fn key_arn(&self, region: &str) -> String {
        self.broker.tenant(&self.tenant).await.expect("t").binding.key_for(&region.parse().expect("r")).expect("key").to_string()
    }

    /// The guide's revocation and its undoing: the provider's trust statement to Deny/Allow.
    async fn trust(&self, effect: &str) {
        self.customer.set_trust(ROLE, effect, &self.cloud.provider_role_arn, Some(&self.external_id)).await;
    }

    async fn key(&self, region: &str, action: &str) {
        let arn = self.key_arn(region).await;
        self.customer.aws(region, &["kms", action, "--key-id", &arn]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_deny_alone_revokes_though_keys_stay_enabled_and_old_sessions_live() {
    let w = world("us").await;
    let record = w.broker.encrypt(&w.tenant, b"r1", b"secret").await.expect("encrypt");
    w.trust("Deny").await;
    // The data-path session made before the Deny still works on AWS, and the cache still holds
    // the key: only a fresh AssumeRole sees the revocation. The monitor's probe is one.
    w.broker.decrypt(&w.tenant, b"r1", &record).await.expect("served from cache until the probe");
    let pass = monitor::run_once(&w.broker).await;
    assert_eq!(pass.revoked, ["acme"]);
    let TenantState::Revoked { since, deadline } = w.state().await else { panic!("not revoked") };
    assert_eq!(deadline - since, Duration::days(15));
    assert!(matches!(w.broker.decrypt(&w.tenant, b"r1", &record).await, Err(BrokerError::Revoked { .. })), "refused from that instant");
    let check = w.broker.last_check(&w.tenant).expect("checked");
    assert!(check.regions.iter().all(|r| r.remedy.as_deref().is_some_and(|m| m.contains("steps 3-8"))), "{check:?}");

    // The customer "restores" with a trust policy that no longer requires the external id: every
    // region works, yet restoration is refused and says which condition is missing.
    w.customer.set_trust(ROLE, "Allow", &w.cloud.provider_role_arn, None).await;
    let refused = w.broker.restore(&w.tenant).await.expect("restore");
    assert!(!refused.restored, "{refused:?}");
    assert!(refused.missing.iter().any(|m| m.starts_with("IAM:") && m.contains("sts:ExternalId")), "{refused:?}");
    w.trust("Allow").await;
    assert!(w.broker.restore(&w.tenant).await.expect("restore").restored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_never_revoke_over_many_probe_cycles() {
    let w = world("us").await;
    let record = w.broker.encrypt(&w.tenant, b"r1", b"secret").await.expect("encrypt");
    let faults = [
        json!({ "service": "sts", "kind": "throttle" }),
        json!({ "service": "kms", "kind": "throttle", "probability": 0.5 }),
        json!({ "service": "kms", "kind": "error", "status": 500 }),
        json!({ "service": "kms", "region": "us-west-2", "kind": "error", "status": 503 }),
        json!({ "service": "sts", "kind": "error", "status": 503 }),
        json!({ "kind": "drop", "probability": 0.7 }),
        json!({ "service": "kms", "kind": "latency", "ms": 900 }),
    ];
    for spec in &faults {
        w.cloud.fault(spec.clone()).await;
        for _ in 0..4 {
            let pass = monitor::run_once(&w.broker).await;
            assert!(pass.revoked.is_empty(), "{spec} revoked the tenant");
        }
        // Data keeps flowing from the cache while its TTL lasts.
        w.broker.decrypt(&w.tenant, b"r1", &record).await.expect("served from the cache");
        w.cloud.clear_faults().await;
    }
    // Past the TTL with KMS down everywhere: a distinct "unavailable", still not revoked.
    w.cloud.fault(json!({ "service": "kms", "kind": "error", "status": 503 })).await;
    w.clock.advance(Duration::minutes(6));
    assert!(matches!(w.broker.decrypt(&w.tenant, b"r1", &record).await, Err(BrokerError::KeyServiceUnavailable(_))));
    assert_eq!(w.state().await, TenantState::Active);
    w.cloud.clear_faults().await;
    assert_eq!(w.broker.decrypt(&w.tenant, b"r1", &record).await.expect("back").as_slice(), b"secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_on_the_data_path_revokes_at_once() {
    let w = world("us").await;
    let record = w.broker.encrypt(&w.tenant, b"r1", b"secret").await.expect("encrypt");
    w.key("us-east-1", "disable-key").await;
    w.clock.advance(Duration::minutes(6)); // the cached key expires; the next request unwraps
    let refused = w.broker.decrypt(&w.tenant, b"r1", &record).await;
    assert!(matches!(refused, Err(BrokerError::KeyAccessDenied(_))), "refused at once: {refused:?}");
    // The probe runs outside the request, from the monitor's queue, and agrees.
    assert_eq!(monitor::probe_requested(&w.broker).await.revoked, ["acme"]);
    assert!(matches!(w.state().await, TenantState::Revoked { .. }));
    let refused = w.broker.decrypt(&w.tenant, b"r1", &record).await;
    assert!(matches!(refused, Err(BrokerError::Revoked { .. })), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoration_names_what_is_missing_then_brings_access_back() {
    let w = world("eu").await;
    let record = w.broker.encrypt(&w.tenant, b"r1", b"secret").await.expect("encrypt");
    // The customer revokes every way the guide undoes: trust Deny, keys disabled in both regions.
    w.trust("Deny").await;
    w.key("eu-central-1", "disable-key").await;
    w.key("eu-west-1", "disable-key").await;
    assert_eq!(monitor::run_once(&w.broker).await.revoked, ["acme"]);

    // The ticket, titled exactly as the guide says, says what, where, until when, and how.
    let tickets = w.broker.tickets(Some(&w.tenant)).await.expect("tickets");
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].title, format!("BYOK revocation started for AWS account {}", w.customer.account));
    let (_, comments) = w.broker.ticket(tickets[0].id).await.expect("ticket");
    let opening = &comments[0].body;
    for needle in [
        "eu-central-1",
        "eu-west-1",
        "trust policy refuses the provider",
        " UTC. After that",
        "the customer guide in the console, /console/guide",
        "steps 3-8",
        "steps 9-12",
        "\"ready\"",
    ] {
        assert!(opening.contains(needle), "the opening comment lacks {needle}: {opening}");
    }

    // Steps 3-8 done, steps 9-12 only in eu-central-1: "ready" on the ticket is refused there,
    // naming eu-west-1 and the steps.
    w.trust("Allow").await;
    w.key("eu-central-1", "enable-key").await;
    let (_, answered) = w.broker.comment(tickets[0].id, Author::Customer, "We are ready for restoration").await.expect("comment");
    let answered = answered.expect("a ready comment starts restoration");
    assert!(!answered.restored && answered.missing[0].starts_with("eu-west-1: steps 9-12"), "{answered:?}");
    let (_, comments) = w.broker.ticket(tickets[0].id).await.expect("ticket");
    assert!(comments.last().is_some_and(|c| c.author == Author::Byok && c.body.contains("eu-west-1: steps 9-12")), "{comments:?}");
    let partial = w.broker.restore(&w.tenant).await.expect("restore");
    assert!(!partial.restored);
    assert_eq!(partial.missing.len(), 1, "{partial:?}");
    assert!(partial.missing[0].starts_with("eu-west-1: steps 9-12"), "{partial:?}");
    assert!(matches!(w.state().await, TenantState::Revoked { .. }));

    // A key scheduled for deletion needs cancelling first, and the answer says so.
    let west = w.key_arn("eu-west-1").await;
    w.customer.aws("eu-west-1", &["kms", "schedule-key-deletion", "--key-id", &west, "--pending-window-in-days", "7"]).await;
    let pending = w.broker.restore(&w.tenant).await.expect("restore");
    assert!(pending.missing[0].contains("cancel-key-deletion"), "{pending:?}");
    w.customer.aws("eu-west-1", &["kms", "cancel-key-deletion", "--key-id", &west]).await;
    w.key("eu-west-1", "enable-key").await;

    let started = std::time::Instant::now();
    let (_, done) = w.broker.comment(tickets[0].id, Author::Customer, "ready").await.expect("comment");
    let done = done.expect("restoration");
    assert!(done.restored, "{done:?}");
    let (ticket, comments) = w.broker.ticket(tickets[0].id).await.expect("ticket");
    assert_eq!(ticket.status, TicketStatus::Resolved);
    assert!(comments.last().is_some_and(|c| c.body.contains("access is restored")));
    assert_eq!(w.state().await, TenantState::Active);
    assert_eq!(w.broker.decrypt(&w.tenant, b"r1", &record).await.expect("data back").as_slice(), b"secret");
    eprintln!("ready -> first decrypt: {:?}", started.elapsed());

    // The audit log holds every step with its reason, and its chain verifies...
    let log = w.broker.audit_log(Some(&w.tenant), 0, 1000).await.expect("audit");
    let has = |kind: &str, reason: &str| log.iter().any(|e| e.kind == kind && e.reason == reason);
    for (kind, reason) in [
        ("key_use", "onboard"),
        ("transition", "verified"),
        ("key_use", "data"),
        ("key_use", "probe"),
        ("transition", "revocation"),
        ("ticket", "opened"),
        ("ticket", "comment"),
        ("key_use", "restore"),
        ("transition", "restoration"),
        ("ticket", "resolved"),
    ] {
        assert!(has(kind, reason), "no {kind}/{reason} entry in {log:#?}");
    }
    let check = w.broker.verify_audit().await.expect("verify");
    assert!(check.ok && check.entries == log.len() as i64, "{check:?}");

    // ...until someone edits, deletes or reorders an entry behind the broker's back.
    let url = format!("sqlite://{}", w._dir.path().join("byok.db").display());
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("open the store");
    let tamper = |sql: &'static str| sqlx::query(sql);
    tamper("UPDATE audit_log SET detail = '{\"region\":\"nowhere\"}' WHERE seq = 3").execute(&mut db).await.expect("edit");
    let edited = w.broker.verify_audit().await.expect("verify");
    assert_eq!((edited.ok, edited.first_bad), (false, Some(3)), "{edited:?}");
    tamper("DELETE FROM audit_log WHERE seq <= 3").execute(&mut db).await.expect("delete");
    let deleted = w.broker.verify_audit().await.expect("verify");
    assert_eq!((deleted.ok, deleted.first_bad), (false, Some(4)), "{deleted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_days_later_the_data_is_gone_even_if_everything_is_re_enabled() {
    let w = world("us").await;
    let record = w.broker.encrypt(&w.tenant, b"r1", b"secret").await.expect("encrypt");
    // What a backup taken now keeps: each wrapped key sealed under a provider-held key of this
    // tenant and region (MAGIC | u16 ARN length | ARN | ciphertext).
    let backup = w.store.wrapped_keys(&w.tenant).await.expect("keys");
    assert_eq!(backup.len(), 2);
    let sealed: Vec<(String, String, Vec<u8>)> = backup
        .iter()
        .map(|k| {
            assert!(k.wrapped.starts_with(b"byok-pl1"), "sealed by the provider layer");
            let len = usize::from(u16::from_be_bytes([k.wrapped[8], k.wrapped[9]]));
            let arn = String::from_utf8(k.wrapped[10..10 + len].to_vec()).expect("arn");
            assert!(arn.contains(&format!(":{}:key/", w.cloud.provider_account)), "a key in the provider's own account: {arn}");
            (k.region.to_string(), arn, k.wrapped[10 + len..].to_vec())
        })
        .collect();
    w.trust("Deny").await;
    w.key("us-east-1", "disable-key").await;
    assert_eq!(monitor::run_once(&w.broker).await.revoked, ["acme"]);
    let ticket = w.broker.tickets(Some(&w.tenant)).await.expect("tickets")[0].id;
    let reminders = |w: &World| {
        let broker = w.broker.clone();
        async move { broker.ticket(ticket).await.expect("ticket").1.iter().filter(|c| c.body.starts_with("Reminder")).count() }
    };
    w.clock.advance(Duration::days(9));
    monitor::run_once(&w.broker).await;
    assert_eq!(reminders(&w).await, 0, "no reminder 6 days before");
    w.clock.advance(Duration::days(2));
    monitor::run_once(&w.broker).await;
    monitor::run_once(&w.broker).await;
    assert_eq!(reminders(&w).await, 1, "one reminder 4 days before, sent once");
    w.clock.advance(Duration::days(3) + Duration::hours(12));
    assert!(monitor::run_once(&w.broker).await.destroyed.is_empty(), "not before the deadline");
    assert_eq!(reminders(&w).await, 2, "a second one the last day");
    w.clock.advance(Duration::days(1));
    assert_eq!(monitor::run_once(&w.broker).await.destroyed, ["acme"]);
    let (closed, comments) = w.broker.ticket(ticket).await.expect("ticket");
    assert_eq!(closed.status, TicketStatus::Closed);
    assert!(comments.last().is_some_and(|c| c.body.contains("cannot be recovered")));
    assert!(matches!(w.state().await, TenantState::Destroyed { .. }));
    assert!(w.store.wrapped_keys(&w.tenant).await.expect("keys").is_empty(), "wrapped keys erased");

    // The customer restores everything: nothing comes back.
    w.trust("Allow").await;
    w.key("us-east-1", "enable-key").await;
    assert!(matches!(w.broker.restore(&w.tenant).await, Err(BrokerError::Destroyed(_))));
    assert!(matches!(w.broker.decrypt(&w.tenant, b"r1", &record).await, Err(BrokerError::Destroyed(_))));

    // The backup taken before holds only bytes nobody can open: the provider keys were disabled
    // and scheduled for deletion at the destruction (and are gone after AWS's 7 days), so not
    // even the provider's own account root opens them, whatever the customer re-enables.
    let trail = w.store.audit(Some(&w.tenant), 0, 10_000).await.expect("audit");
    assert_eq!(trail.iter().filter(|e| e.reason == "provider_layer_destroyed").count(), 2, "one per region");
    let blob = w._dir.path().join("sealed.bin");
    for (region, arn, outer) in &sealed {
        let described = w.cloud.provider_aws(region, &["kms", "describe-key", "--key-id", arn]).await;
        assert_eq!(described["KeyMetadata"]["KeyState"], "PendingDeletion", "{described}");
        std::fs::write(&blob, outer).expect("write");
        let file = format!("fileb://{}", blob.display());
        let context = "byok:tenant=acme,byok:purpose=provider-layer";
        let args = ["kms", "decrypt", "--key-id", arn.as_str(), "--ciphertext-blob", file.as_str(), "--encryption-context", context];
        byok_testkit::aws_err(&w.cloud.endpoint(), &w.cloud.provider, region, &args, "KMSInvalidStateException").await;
    }
    // After AWS's waiting period the keys themselves are gone.
    w.cloud.advance_clock(8 * 86_400).await;
    for (region, arn, _) in &sealed {
        let args = ["kms", "describe-key", "--key-id", arn.as_str()];
        byok_testkit::aws_err(&w.cloud.endpoint(), &w.cloud.provider, region, &args, "NotFoundException").await;
    }
}

/// The cost of a pass in the customer's account, counted from localcloud's trail: one
/// AssumeRole for the tenant (its session serves both regions) and one Decrypt per region;
/// DescribeKey only when an unwrap fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_costs_one_assume_role_per_tenant() {
    let w = world("us").await;
    let account = w.customer.account.clone();
    let count = |events: &[serde_json::Value], name: &str| events.iter().filter(|e| e["event_name"] == name).count();
    let last = |events: &[serde_json::Value]| events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let before = last(&w.cloud.trail(0, None).await);
    assert!(monitor::run_once(&w.broker).await.revoked.is_empty());
    let pass = w.cloud.trail(before, Some(&account)).await;
    // One session; an unwrap per region; and, as the tenant is in this pass's round of alias
    // checks (64 tenants a pass, round robin), where its alias points in each region.
    assert_eq!((count(&pass, "AssumeRole"), count(&pass, "Decrypt"), count(&pass, "DescribeKey")), (1, 2, 2), "{pass:#?}");
    // A disabled key: its unwrap fails and DescribeKey says why (in both probes: the first and
    // its confirming re-probe); the alias is looked at once.
    w.key("us-west-2", "disable-key").await;
    let before = last(&w.cloud.trail(0, None).await);
    assert_eq!(monitor::run_once(&w.broker).await.revoked, ["acme"]);
    let pass = w.cloud.trail(before, Some(&account)).await;
    assert_eq!((count(&pass, "AssumeRole"), count(&pass, "Decrypt"), count(&pass, "DescribeKey")), (2, 4, 4), "{pass:#?}");
}

/// A customer-managed-key (CMK) tenant beside the BYOK one: its pass costs no AssumeRole at all
/// (the provider's own identity uses its keys), the same unwraps, and a disabled key is found
/// and confirmed the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmk_pass_costs_no_assume_role() {
    let w = world("us").await;
    let globex = w.cloud.customer("globex").await;
    let tenant: TenantId = "globex".parse().expect("id");
    let mode = byok_domain::KeyMode::Cmk { context_tag: Some("Globex01".parse().expect("tag")) };
    let added = w.broker.add_tenant_in_mode(&tenant, "us", &globex.account.parse().expect("account"), mode).await.expect("add");
    assert!(added.instructions.role_name.is_none() && added.instructions.trust_policy.is_none());
    let policy = added.instructions.key_policy.to_string();
    assert!(
        policy.contains(&w.cloud.provider_role_arn) && policy.contains("\"kms:EncryptionContext:byok:context-tag\":\"Globex01\""),
        "{policy}"
    );
    for region in &added.instructions.regions {
        globex.create_key_with_policy(region.as_str(), &added.instructions.alias, &policy).await;
    }
    let verified = w.broker.verify_tenant(&tenant).await.expect("verify");
    assert!(verified.ok && verified.trust_ok, "{verified:?}");

    let count = |events: &[serde_json::Value], name: &str| events.iter().filter(|e| e["event_name"] == name).count();
    let last = |events: &[serde_json::Value]| events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let before = last(&w.cloud.trail(0, None).await);
    assert!(monitor::run_once(&w.broker).await.revoked.is_empty());
    let (byok, cmk) = (w.cloud.trail(before, Some(&w.customer.account)).await, w.cloud.trail(before, Some(&globex.account)).await);
    let calls = |pass: &[serde_json::Value]| (count(pass, "AssumeRole"), count(pass, "Decrypt"), count(pass, "DescribeKey"));
    eprintln!("MEASURE calls per pass (AssumeRole, Decrypt, DescribeKey): BYOK {:?}, CMK {:?}", calls(&byok), calls(&cmk));
    assert_eq!(calls(&byok), (1, 2, 2), "{byok:#?}");
    assert_eq!(calls(&cmk), (0, 2, 2), "{cmk:#?}");
    assert!(
        cmk.iter().all(|e| e["user_identity"]["arn"].as_str().is_some_and(|a| a.contains(":assumed-role/Cryptor-OSB-Provider/"))),
        "{cmk:#?}"
    );

    let key = w.broker.tenant(&tenant).await.expect("t").binding.key_for(&"us-west-2".parse().expect("r")).expect("key").to_string();
    globex.aws("us-west-2", &["kms", "disable-key", "--key-id", &key]).await;
    let before = last(&w.cloud.trail(0, None).await);
    assert_eq!(monitor::run_once(&w.broker).await.revoked, ["globex"]);
    let cmk = w.cloud.trail(before, Some(&globex.account)).await;
    // The first probe and its confirmation: 2 unwraps and, for the failing region, a DescribeKey
    // each; the alias looked at once.
    assert_eq!(calls(&cmk), (0, 4, 4), "{cmk:#?}");
    let TenantState::Revoked { .. } = w.broker.tenant(&tenant).await.expect("t").state else { panic!("globex is not revoked") };
    assert!(matches!(w.state().await, TenantState::Active), "the BYOK tenant is untouched");
}

/// AssumeRole goes to the regional STS endpoint of the tenant's location (its first region),
/// not to one global region for every tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_assumes_the_role_in_the_locations_own_region() {
    let w = world("eu").await;
    let last = |events: &[serde_json::Value]| events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let before = last(&w.cloud.trail(0, None).await);
    assert!(monitor::run_once(&w.broker).await.revoked.is_empty());
    let pass = w.cloud.trail(before, Some(&w.customer.account)).await;
    let assumed: Vec<&serde_json::Value> = pass.iter().filter(|e| e["event_name"] == "AssumeRole").collect();
    assert_eq!(assumed.len(), 1, "{pass:#?}");
    assert_eq!(assumed[0]["aws_region"], "eu-central-1");
}
