//! The AWS SDK for Rust against localcloud, the way the broker will use it: the provider's own
//! role session → `sts:AssumeRole` into the tenant's role with its external id → `aws-sdk-kms`
//! with the session's credentials. Errors must reach the SDK as the modeled error kinds.

use aws_credential_types::Credentials;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_sts::error::ProvideErrorMetadata;
use serde_json::json;

use crate::support::{Creds, Localcloud, account, admin, query, role_credentials, trust_policy, xml_text};

fn sdk_credentials(c: &Creds) -> Credentials {
    Credentials::new(&c.access_key_id, &c.secret_access_key, c.session_token.clone(), None, "localcloud-test")
}

fn sts_client(endpoint: &str, c: &Creds) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(sdk_credentials(c))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// The customer grants its `byok-key-management` role every KMS action through an IAM inline
/// policy (the default key policy defers to IAM).
async fn grant_kms_use(ep: &str, root: &Creds) {
    let (status, xml) = query(
        ep,
        root,
        "iam",
        "us-east-1",
        &[
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", "byok-key-management"),
            ("PolicyName", "kms-use"),
            ("PolicyDocument", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
}

fn kms_client(endpoint: &str, c: &Creds, region: &str) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(sdk_credentials(c))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_path_through_the_rust_sdk() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let provider = account(&ep, "provider", None).await;
    let customer = account(&ep, "customer", None).await;
    let ec2_trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (status, xml) = query(
        &ep,
        &provider.root,
        "iam",
        "us-east-1",
        &[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", "byok-broker"), ("AssumeRolePolicyDocument", ec2_trust)],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let broker_role = xml_text(&xml, "Arn").expect("role arn");
    // The broker's own Allow for AssumeRole (cross-account, the trust policy alone is not enough).
    let assume = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    let (status, xml) = query(
        &ep,
        &provider.root,
        "iam",
        "us-east-1",
        &[
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", "byok-broker"),
            ("PolicyName", "assume"),
            ("PolicyDocument", assume),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let broker = role_credentials(&ep, &broker_role).await;
    let tenant_trust = trust_policy("Allow", &broker_role, Some("ext-tenant-1"));
    let (status, xml) = query(
        &ep,
        &customer.root,
        "iam",
        "us-east-1",
        &[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", "byok-key-management"),
            ("AssumeRolePolicyDocument", &tenant_trust),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let tenant_role = xml_text(&xml, "Arn").expect("role arn");
    // The customer grants the role the key use through IAM (the default key policy enables IAM
    // policies): without this, AWS refuses the role in its own account.
    grant_kms_use(&ep, &customer.root).await;

    let customer_kms = kms_client(&ep, &customer.root, "eu-west-1");
    let key = customer_kms.create_key().description("cryptor").send().await.expect("create key");
    let key_arn = key.key_metadata().and_then(|m| m.arn()).expect("arn").to_string();
    customer_kms.create_alias().alias_name("alias/byok-tenant-1").target_key_id(&key_arn).send().await.expect("alias");

    // Provider identity, then the tenant's role with the external id.
    let sts = sts_client(&ep, &broker);
    let me = sts.get_caller_identity().send().await.expect("identity");
    assert_eq!(me.account(), Some(provider.id.as_str()));
    let assumed = sts
        .assume_role()
        .role_arn(&tenant_role)
        .role_session_name("byok-data")
        .external_id("ext-tenant-1")
        .duration_seconds(900)
        .send()
        .await
        .expect("assume role");
    let c = assumed.credentials().expect("credentials");
    let session = Creds {
        access_key_id: c.access_key_id().into(),
        secret_access_key: c.secret_access_key().into(),
        session_token: Some(c.session_token().into()),
    };
    let denied = sts.assume_role().role_arn(&tenant_role).role_session_name("byok-data").send().await.expect_err("no external id");
    assert_eq!(denied.as_service_error().and_then(|e| e.code()), Some("AccessDenied"));

    let kms = kms_client(&ep, &session, "eu-west-1");
    let sealed = kms
        .generate_data_key()
        .key_id(&key_arn)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("tenant", "t1")
        .send()
        .await
        .expect("generate data key");
    let plaintext = sealed.plaintext().expect("plaintext").as_ref().to_vec();
    let blob = sealed.ciphertext_blob().expect("blob").clone();
    let opened = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t1").send().await.expect("decrypt");
    assert_eq!(opened.plaintext().expect("plaintext").as_ref(), plaintext.as_slice());
    let by_alias = kms.encrypt().key_id("alias/byok-tenant-1").plaintext(Blob::new("x")).send().await.expect("encrypt by alias");
    assert_eq!(by_alias.key_id(), Some(key_arn.as_str()));

    // The states the broker classifies, as the SDK's modeled errors.
    let wrong_context =
        kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t2").send().await.expect_err("wrong context");
    assert!(wrong_context.as_service_error().is_some_and(|e| e.is_invalid_ciphertext_exception()));
    customer_kms.disable_key().key_id(&key_arn).send().await.expect("disable");
    let disabled = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t1").send().await.expect_err("disabled");
    assert!(disabled.as_service_error().is_some_and(|e| e.is_disabled_exception()), "{disabled:?}");
    customer_kms.schedule_key_deletion().key_id(&key_arn).pending_window_in_days(7).send().await.expect("schedule");
    let pending = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t1").send().await.expect_err("pending");
    assert!(pending.as_service_error().is_some_and(|e| e.is_kms_invalid_state_exception()), "{pending:?}");
    let state = kms.describe_key().key_id(&key_arn).send().await.expect("describe");
    assert_eq!(state.key_metadata().and_then(|m| m.key_state()), Some(&aws_sdk_kms::types::KeyState::PendingDeletion));
    customer_kms.cancel_key_deletion().key_id(&key_arn).send().await.expect("cancel");
    customer_kms.enable_key().key_id(&key_arn).send().await.expect("enable");
    kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t1").send().await.expect("decrypt after restore");
    let missing = kms.describe_key().key_id("alias/none").send().await.expect_err("not found");
    assert!(missing.as_service_error().is_some_and(|e| e.is_not_found_exception()));

    // The customer withdraws the IAM grant: the default key policy only enables IAM policies,
    // so the role is refused in its own account, as on AWS
    // (https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html).
    let (status, xml) = query(
        &ep,
        &customer.root,
        "iam",
        "us-east-1",
        &[("Action", "DeleteRolePolicy"), ("Version", "2010-05-08"), ("RoleName", "byok-key-management"), ("PolicyName", "kms-use")],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let refused = kms.describe_key().key_id(&key_arn).send().await.expect_err("no grant left");
    assert_eq!(refused.as_service_error().and_then(|e| e.code()), Some("AccessDeniedException"), "{refused:?}");
    grant_kms_use(&ep, &customer.root).await;
    kms.describe_key().key_id(&key_arn).send().await.expect("granted again");

    // Transient faults reach the SDK as what they are: throttling, a 5xx, a dropped connection.
    let fault = |spec| async { assert_eq!(admin(&ep, "POST", "/_localcloud/faults", Some(spec)).await.0, 201) };
    fault(json!({"service": "kms", "region": "eu-west-1", "kind": "throttle", "count": 1})).await;
    let throttled = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t1").send().await.expect_err("throttled");
    assert_eq!(throttled.as_service_error().and_then(|e| e.code()), Some("ThrottlingException"));
    fault(json!({"service": "kms", "kind": "error", "status": 503, "count": 1})).await;
    let unavailable = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("tenant", "t1").send().await.expect_err("503");
    assert_eq!(unavailable.raw_response().map(|r| r.status().as_u16()), Some(503));
    fault(json!({"service": "sts", "kind": "drop", "count": 1})).await;
    let dropped = sts.get_caller_identity().send().await.expect_err("dropped");
    assert!(dropped.as_service_error().is_none(), "a dropped connection is not a service answer: {dropped:?}");
    kms.decrypt().ciphertext_blob(blob).encryption_context("tenant", "t1").send().await.expect("faults were one-shot");
}
