//! The SDK implementation against localcloud: wrap/unwrap, session reuse rules, and how every
//! kind of real answer is classified: the customer's revocations are denials, injected
//! transient faults are not.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use byok_domain::{Region, RegionKey, TenantBinding, TenantId};
use byok_envelope::TenantKey;
use byok_kms::{AccessError, AwsKeyService, AwsKeyServiceConfig, Denial, Fault, KeyService, Purpose};
use byok_testkit::{Cloud, Customer};
use serde_json::json;

const ROLE: &str = "byok-key-management";
const EXTERNAL_ID: &str = "byok-ext-0001";

struct World {
    cloud: Cloud,
    customer: Customer,
    binding: TenantBinding,
    service: AwsKeyService,
}

async fn world() -> World {
    world_on(Cloud::start().await).await
}

async fn world_on(cloud: Cloud) -> World {
    let customer = cloud.customer("customer").await;
    let role_arn = customer.create_role(ROLE, &cloud.provider_role_arn, Some(EXTERNAL_ID)).await;
    let mut keys = Vec::new();
    for region in ["us-east-1", "us-west-2"] {
        let arn = customer.create_key(region, "alias/byok-t1").await;
        keys.push(RegionKey { region: region.parse().expect("region"), key_arn: arn.parse().expect("arn") });
    }
    let binding = TenantBinding {
        account: customer.account.parse().expect("account"),
        role_arn: role_arn.parse().expect("role"),
        external_id: EXTERNAL_ID.parse().expect("external id"),
        keys,
        legacy_trust: false,
        mode: byok_domain::KeyMode::Byok,
        adoption: None,
    };
    World { service: service(&cloud).await, cloud, customer, binding }
}

/// A key service with the provider's current credentials (they expire with localcloud's clock).
async fn service(cloud: &Cloud) -> AwsKeyService {
    let mut config =
        AwsKeyServiceConfig::new(SharedCredentialsProvider::new(cloud.provider_credentials().await.sdk()), Some(cloud.endpoint()));
    config.max_attempts = 1;
    config.call_timeout = Duration::from_millis(800);
    AwsKeyService::new(config)
}

fn region(s: &str) -> Region {
    s.parse().expect("region")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_unwrap_and_the_customers_revocations_are_denials() {
    let w = world().await;
    let tenant: TenantId = "t1".parse().expect("tenant");
    let east = region("us-east-1");
    let key = TenantKey::generate().expect("key");
    w.service.assume_fresh(&w.binding, Purpose::Onboard, true).await.expect("assume with the external id");
    let refused = w.service.assume_fresh(&w.binding, Purpose::Onboard, false).await.expect_err("no external id");
    assert!(matches!(refused, AccessError::Denied { denial: Denial::TrustPolicy, .. }), "{refused}");

    let wrapped = w.service.wrap(&w.binding, &east, &tenant, &key, Purpose::Onboard).await.expect("wrap");
    let back = w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Data).await.expect("unwrap");
    assert_eq!(back.expose(), key.expose());
    // The context names the tenant: another tenant's id does not open it.
    let other: TenantId = "t2".parse().expect("tenant");
    let err = w.service.unwrap(&w.binding, &east, &other, &wrapped, Purpose::Data).await.expect_err("other tenant");
    assert!(matches!(err, AccessError::Corrupt { .. }), "{err}");
    let status = w.service.describe_key(&w.binding, &east, "alias/byok-t1", Purpose::Probe).await.expect("describe by alias");
    assert!(status.enabled && status.state == byok_kms::KeyState::Enabled);
    assert_eq!(Some(status.arn.as_str()), w.binding.key_for(&east).map(|k| k.as_str()));

    // The customer guide's revocation: trust statement to Deny. A fresh AssumeRole sees it at once; the
    // reused data-path session does not (as on AWS) — which is why probes never reuse.
    w.customer.set_trust(ROLE, "Deny", &w.cloud.provider_role_arn, Some(EXTERNAL_ID)).await;
    let denied = w.service.assume_fresh(&w.binding, Purpose::Probe, true).await.expect_err("deny");
    assert!(matches!(denied, AccessError::Denied { denial: Denial::TrustPolicy, .. }), "{denied}");
    w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Data).await.expect("a live session outlives a trust change");
    let probe = w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Probe).await.expect_err("probe assumes afresh");
    assert!(probe.is_definitive(), "{probe}");
    w.service.forget(&w.binding);
    assert!(w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Data).await.expect_err("forgotten").is_definitive());
    w.customer.set_trust(ROLE, "Allow", &w.cloud.provider_role_arn, Some(EXTERNAL_ID)).await;

    // Key states.
    let key_arn = w.binding.key_for(&east).expect("key").to_string();
    w.customer.aws("us-east-1", &["kms", "disable-key", "--key-id", &key_arn]).await;
    let disabled = w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Probe).await.expect_err("disabled");
    assert!(matches!(disabled, AccessError::Denied { denial: Denial::KeyDisabled, region: Some(ref r), .. } if r == &east), "{disabled}");
    w.customer.aws("us-east-1", &["kms", "schedule-key-deletion", "--key-id", &key_arn, "--pending-window-in-days", "7"]).await;
    let pending = w.service.describe_key(&w.binding, &east, &key_arn, Purpose::Probe).await.expect("describe works while pending");
    assert_eq!(pending.state, byok_kms::KeyState::PendingDeletion);
    // KMS answers KMSInvalidStateException, which alone proves nothing (a disconnected custom key
    // store says the same): it is transient, and DescribeKey's PendingDeletion is the denial.
    let pending = w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Probe).await.expect_err("pending");
    assert!(matches!(pending, AccessError::Transient { fault: Fault::KeyState, .. }), "{pending}");
    w.cloud.advance_clock(8 * 86_400).await;
    let expired = w.service.describe_key(&w.binding, &east, &key_arn, Purpose::Probe).await.expect_err("provider credentials expired");
    assert!(matches!(expired, AccessError::Transient { fault: Fault::ExpiredSession, .. }), "not a denial: {expired}");
    let w = World { service: service(&w.cloud).await, ..w };
    let gone = w.service.describe_key(&w.binding, &east, &key_arn, Purpose::Probe).await.expect_err("deleted");
    assert!(matches!(gone, AccessError::Denied { denial: Denial::KeyNotFound, .. }), "{gone}");
    // The other region is untouched.
    let west = region("us-west-2");
    w.service.wrap(&w.binding, &west, &tenant, &key, Purpose::Probe).await.expect("us-west-2 still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_data_session_just_means_assume_again() {
    let cloud = Cloud::start().await;
    let w = world_on(cloud).await;
    // Data sessions of 15 minutes; the provider's own credentials last an hour.
    let mut config =
        AwsKeyServiceConfig::new(SharedCredentialsProvider::new(w.cloud.provider_credentials().await.sdk()), Some(w.cloud.endpoint()));
    config.max_attempts = 1;
    config.session_duration = std::time::Duration::from_secs(900);
    let service = AwsKeyService::new(config);
    let tenant: TenantId = "t1".parse().expect("tenant");
    let east = region("us-east-1");
    let wrapped = service.wrap(&w.binding, &east, &tenant, &TenantKey::generate().expect("k"), Purpose::Data).await.expect("wrap");
    // 16 minutes later by AWS's clock, the reused data session is expired; the provider's is not.
    w.cloud.advance_clock(16 * 60).await;
    service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Data).await.expect("assumed again, then unwrapped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_policy_denials_are_denials() {
    let w = world().await;
    let tenant: TenantId = "t1".parse().expect("tenant");
    let west = region("us-west-2");
    let key_arn = w.binding.key_for(&west).expect("key").to_string();
    let root = format!("arn:aws:iam::{}:root", w.customer.account);
    let policy = json!({ "Statement": [
        { "Effect": "Allow", "Principal": { "AWS": root }, "Action": "kms:*", "Resource": "*" },
        { "Effect": "Deny", "Principal": { "AWS": format!("arn:aws:iam::{}:role/{ROLE}", w.customer.account) }, "Action": "kms:*", "Resource": "*" },
    ]});
    w.customer
        .aws("us-west-2", &["kms", "put-key-policy", "--key-id", &key_arn, "--policy-name", "default", "--policy", &policy.to_string()])
        .await;
    let err = w.service.wrap(&w.binding, &west, &tenant, &TenantKey::generate().expect("k"), Purpose::Probe).await.expect_err("key policy");
    assert!(matches!(err, AccessError::Denied { denial: Denial::KeyPolicy, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_never_denials() {
    let w = world().await;
    let tenant: TenantId = "t1".parse().expect("tenant");
    let east = region("us-east-1");
    let wrapped = w.service.wrap(&w.binding, &east, &tenant, &TenantKey::generate().expect("k"), Purpose::Onboard).await.expect("wrap");
    let cases = [
        (json!({ "service": "kms", "kind": "throttle" }), Fault::Throttled),
        (json!({ "service": "kms", "kind": "error", "status": 500 }), Fault::ServerError),
        (json!({ "service": "kms", "kind": "error", "status": 503 }), Fault::ServerError),
        (json!({ "service": "kms", "kind": "drop" }), Fault::Network),
        (json!({ "service": "kms", "kind": "latency", "ms": 1500 }), Fault::Timeout),
        (json!({ "service": "sts", "kind": "throttle" }), Fault::Throttled),
        (json!({ "service": "sts", "kind": "error", "status": 500 }), Fault::ServerError),
        (json!({ "service": "sts", "kind": "drop" }), Fault::Network),
    ];
    for (spec, expected) in cases {
        w.cloud.fault(spec.clone()).await;
        let err = w.service.unwrap(&w.binding, &east, &tenant, &wrapped, Purpose::Probe).await.expect_err("fault");
        assert!(matches!(err, AccessError::Transient { fault, .. } if fault == expected), "{spec}: {err:?}");
        w.cloud.clear_faults().await;
    }
    // Localcloud down altogether.
    let endpoint = w.cloud.endpoint();
    let binding = w.binding.clone();
    let service = w.service;
    w.cloud.running.stop().await.expect("stop");
    let err = service.unwrap(&binding, &east, &tenant, &wrapped, Purpose::Probe).await.expect_err("down");
    assert!(err.is_transient(), "{endpoint} down: {err:?}");
}
