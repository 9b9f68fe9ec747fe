//! byok's test kit: a localcloud on `127.0.0.1:0` with the provider's account and role set up
//! the way a deployment would have them, customers created on demand, and the real `aws` CLI
//! from the project's virtualenv to play the customer's part.
//!
//! # Layout
//! - [`Cloud`]: a running localcloud and its provider identity.
//! - [`Customer`]: a customer account, with helpers that run the `aws` CLI as that customer.
//! - [`aws`]: running the CLI with an isolated environment.
//! - [`proxy`]: a TCP proxy a test can sever (a node cut off from PostgreSQL).
#![forbid(unsafe_code)]
// The kit fails loudly: a panic here is a test failure with its message.
#![allow(clippy::expect_used, clippy::panic)]

pub mod aws;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_credential_types::Credentials;
use localcloud::Running;
use serde_json::{Value, json};

pub use aws::{Creds, aws, aws_err, aws_ok};

/// The provider's role name in its own account.
pub const PROVIDER_ROLE: &str = "Cryptor-OSB-Provider";
/// The provider role's own permissions in `account`, as `byok serve` gives them in a localcloud
/// (`byok_broker::setup::provider_role_policy`, which the test kit cannot name: it sits below
/// the broker): assume customers' roles; use CMK customers' keys under a tenant's encryption
/// context; make and use the provider-held layer's keys.
pub fn provider_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/*" },
            { "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "arn:aws:kms:*:*:key/*" },
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "arn:aws:kms:*:*:key/*",
                "Condition": { "StringLike": { "kms:EncryptionContext:byok:tenant": "*" } }
            },
            { "Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*" },
            {
                "Effect": "Allow",
                "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion"],
                "Resource": format!("arn:aws:kms:*:{account}:key/*")
            }
        ]
    })
    .to_string()
}

/// A running localcloud, with the provider's account and role.
#[derive(Debug)]
pub struct Cloud {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub provider_account: String,
    pub provider_role_arn: String,
    /// The provider account's root keys (to break the provider's own setup in tests).
    pub provider: Creds,
    /// The provider role's current instance-profile credentials (see
    /// [`Cloud::provider_credentials_refreshed`]); `None`: fetch anew at the next call.
    instance_credentials: Arc<parking_lot::Mutex<Option<Credentials>>>,
}

/// The provider's canary in localcloud, as the broker is configured with it.
#[derive(Debug, Clone)]
pub struct Canary {
    pub role_arn: String,
    pub external_id: String,
    /// The key's alias.
    pub key: String,
    pub region: String,
    /// The key-policy canary's alias ARN (for CMK tenants).
    pub key_policy_key: String,
}

impl Cloud {
    /// Starts localcloud with its own data directory and sets up the provider.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let cloud = Arc::new(localcloud::Cloud::open(Some(dir.path())).expect("open localcloud"));
        let running = localcloud::spawn("127.0.0.1:0".parse().expect("addr"), cloud).await.expect("bind localcloud");
        let endpoint = running.endpoint();
        let provider = create_account(&endpoint, "provider").await;
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        aws_ok(
            &endpoint,
            &provider.1,
            "us-east-1",
            &["iam", "create-role", "--role-name", PROVIDER_ROLE, "--assume-role-policy-document", trust],
        )
        .await;
        // What the provider role needs of its own account: to assume customers' roles (on AWS,
        // a cross-account AssumeRole needs the caller's identity policy too).
        aws_ok(
            &endpoint,
            &provider.1,
            "us-east-1",
            &[
                "iam",
                "put-role-policy",
                "--role-name",
                PROVIDER_ROLE,
                "--policy-name",
                "byok-provider",
                "--policy-document",
                &provider_policy(&provider.0),
            ],
        )
        .await;
        Self {
            instance_credentials: Arc::default(),
            provider_role_arn: format!("arn:aws:iam::{}:role/{PROVIDER_ROLE}", provider.0),
            provider_account: provider.0,
            provider: provider.1,
            running,
            dir,
        }
    }

    /// The aws CLI as the provider account's root.
    pub async fn provider_aws(&self, region: &str, args: &[&str]) -> Value {
        aws_ok(&self.endpoint(), &self.provider, region, args).await
    }

    /// Creates the provider's canary: a role `byok-canary` that trusts the provider role with an
    /// external id, and a key `alias/byok-canary` in us-east-1, in a provider-controlled account
    /// of its own — so that assuming it crosses accounts exactly as customers' roles do (and
    /// needs the provider role's own `sts:AssumeRole` permission, as theirs do).
    pub async fn canary(&self) -> Canary {
        let external_id = "canary-external-id-0001";
        let account = self.customer("provider-canary").await;
        let role_arn = account.create_role("byok-canary", &self.provider_role_arn, Some(external_id)).await;
        account.create_key("us-east-1", "alias/byok-canary").await;
        // The key-policy canary: a key whose policy grants the provider role itself, under the
        // canary's encryption context, as a CMK customer's key does.
        let policy = cmk_key_policy(&account.account, &self.provider_role_arn, "byok-canary");
        account.create_key_with_policy("us-east-1", "alias/byok-canary-cmk", &policy).await;
        Canary {
            role_arn,
            external_id: external_id.into(),
            key: "alias/byok-canary".into(),
            region: "us-east-1".into(),
            key_policy_key: format!("arn:aws:kms:us-east-1:{}:alias/byok-canary-cmk", account.account),
        }
    }

    pub fn endpoint(&self) -> String {
        self.running.endpoint()
    }

    /// Credentials for the provider's role, as an instance profile would hand them out.
    pub async fn provider_credentials(&self) -> Creds {
        let (status, body) = self
            .admin("POST", "/_localcloud/role-credentials", Some(json!({ "role_arn": self.provider_role_arn, "session_name": "broker" })))
            .await;
        assert_eq!(status, 200, "{body}");
        Creds {
            access_key_id: body["access_key_id"].as_str().expect("key").into(),
            secret_access_key: body["secret_access_key"].as_str().expect("secret").into(),
            session_token: body["session_token"].as_str().map(str::to_string),
        }
    }

    /// The provider role's credentials as an instance profile hands them out: fetched once and
    /// kept (they may expire and be refused, as an instance's would until its refresh) until
    /// [`Cloud::refresh_provider_credentials`], as an instance profile refreshes them. (They
    /// tell the SDK they expire within a second, so that its cache asks again each call.)
    pub fn provider_credentials_refreshed(&self) -> aws_credential_types::provider::SharedCredentialsProvider {
        aws_credential_types::provider::SharedCredentialsProvider::new(FreshRoleCredentials {
            endpoint: self.endpoint(),
            role_arn: self.provider_role_arn.clone(),
            current: self.instance_credentials.clone(),
        })
    }

    /// The instance profile's refresh: the next call gets new provider-role credentials (a
    /// session of the role as it is now, e.g. recreated).
    pub fn refresh_provider_credentials(&self) {
        *self.instance_credentials.lock() = None;
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        localcloud::admin_client::request(&self.endpoint(), method, path, body.as_ref()).await.expect("admin request")
    }

    /// The trail (CloudTrail-like) since sequence number `since`, of one account or all.
    pub async fn trail(&self, since: u64, account: Option<&str>) -> Vec<Value> {
        let path = match account {
            Some(a) => format!("/_localcloud/trail?since={since}&account={a}"),
            None => format!("/_localcloud/trail?since={since}"),
        };
        let (status, body) = localcloud::admin_client::send(&self.endpoint(), "GET", &path, &[], Vec::new()).await.expect("trail");
        assert_eq!(status, 200);
        String::from_utf8_lossy(&body).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }

    /// Injects a fault (see localcloud's `/_localcloud/faults`).
    pub async fn fault(&self, spec: Value) {
        let (status, body) = self.admin("POST", "/_localcloud/faults", Some(spec)).await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn clear_faults(&self) {
        self.admin("DELETE", "/_localcloud/faults", None).await;
    }

    pub async fn advance_clock(&self, seconds: i64) {
        let (status, body) = self.admin("POST", "/_localcloud/clock", Some(json!({ "advance_seconds": seconds }))).await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn customer(&self, name: &str) -> Customer {
        let (account, root) = create_account(&self.endpoint(), name).await;
        Customer { endpoint: self.endpoint(), account, root }
    }
}

async fn create_account(endpoint: &str, name: &str) -> (String, Creds) {
    let (status, body) =
        localcloud::admin_client::request(endpoint, "POST", "/_localcloud/accounts", Some(&json!({ "name": name }))).await.expect("admin");
    assert_eq!(status, 201, "{body}");
    let creds = Creds {
        access_key_id: body["access_key_id"].as_str().expect("key").into(),
        secret_access_key: body["secret_access_key"].as_str().expect("secret").into(),
        session_token: None,
    };
    (body["account_id"].as_str().expect("id").into(), creds)
}

/// A customer's AWS account in localcloud.
#[derive(Debug)]
pub struct Customer {
    pub endpoint: String,
    pub account: String,
    pub root: Creds,
}

impl Customer {
    /// Runs the `aws` CLI as this customer, expecting success.
    pub async fn aws(&self, region: &str, args: &[&str]) -> Value {
        aws_ok(&self.endpoint, &self.root, region, args).await
    }

    /// The role the provider assumes: trust policy allowing `provider_role_arn` with the
    /// external id (or without a condition when `None`, the legacy form).
    pub async fn create_role(&self, name: &str, provider_role_arn: &str, external_id: Option<&str>) -> String {
        let out = self
            .aws(
                "us-east-1",
                &[
                    "iam",
                    "create-role",
                    "--role-name",
                    name,
                    "--assume-role-policy-document",
                    &trust_policy("Allow", provider_role_arn, external_id),
                ],
            )
            .await;
        // The customer lets the role use the account's keys through IAM (the default key policy
        // enables IAM policies); byok's printed setup grants it in each key's policy instead.
        let kms_use = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
        self.aws("us-east-1", &["iam", "put-role-policy", "--role-name", name, "--policy-name", "kms-use", "--policy-document", kms_use])
            .await;
        out["Role"]["Arn"].as_str().expect("role arn").to_string()
    }

    pub async fn set_trust(&self, role: &str, effect: &str, provider_role_arn: &str, external_id: Option<&str>) {
        self.aws(
            "us-east-1",
            &[
                "iam",
                "update-assume-role-policy",
                "--role-name",
                role,
                "--policy-document",
                &trust_policy(effect, provider_role_arn, external_id),
            ],
        )
        .await;
    }

    /// A symmetric key with an alias in `region`; returns its ARN.
    pub async fn create_key(&self, region: &str, alias: &str) -> String {
        let key = self.aws(region, &["kms", "create-key", "--description", "byok tenant key"]).await;
        let arn = key["KeyMetadata"]["Arn"].as_str().expect("key arn").to_string();
        self.aws(region, &["kms", "create-alias", "--alias-name", alias, "--target-key-id", &arn]).await;
        arn
    }

    /// A symmetric key with this key policy and an alias in `region`; returns its ARN.
    pub async fn create_key_with_policy(&self, region: &str, alias: &str, policy: &str) -> String {
        let key = self.aws(region, &["kms", "create-key", "--description", "byok tenant key", "--policy", policy]).await;
        let arn = key["KeyMetadata"]["Arn"].as_str().expect("key arn").to_string();
        self.aws(region, &["kms", "create-alias", "--alias-name", alias, "--target-key-id", &arn]).await;
        arn
    }
}

/// A CMK key policy: `account` administers the key; `provider` (the provider role itself) may
/// describe it and use it only under `tenant`'s encryption context — what byok's setup prints
/// for a CMK tenant without a context tag.
pub fn cmk_key_policy(account: &str, provider: &str, tenant: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "AccountAdministration", "Effect": "Allow", "Principal": { "AWS": format!("arn:aws:iam::{account}:root") }, "Action": "kms:*", "Resource": "*" },
            { "Sid": "ByokDescribeKey", "Effect": "Allow", "Principal": { "AWS": provider }, "Action": "kms:DescribeKey", "Resource": "*" },
            {
                "Sid": "ByokTenantKeyUse",
                "Effect": "Allow",
                "Principal": { "AWS": provider },
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "*",
                "Condition": { "StringEquals": { "kms:EncryptionContext:byok:tenant": tenant } }
            }
        ]
    })
    .to_string()
}

/// A one-statement trust policy for the provider's role.
pub fn trust_policy(effect: &str, principal: &str, external_id: Option<&str>) -> String {
    let mut statement = json!({ "Sid": "Provider", "Effect": effect, "Principal": { "AWS": principal }, "Action": "sts:AssumeRole" });
    if let Some(id) = external_id {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": id } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string()
}

impl Creds {
    /// As the AWS SDK takes them.
    pub fn sdk(&self) -> Credentials {
        Credentials::new(&self.access_key_id, &self.secret_access_key, self.session_token.clone(), None, "byok-testkit")
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// See [`Cloud::provider_credentials_refreshed`].
#[derive(Debug)]
struct FreshRoleCredentials {
    endpoint: String,
    role_arn: String,
    current: Arc<parking_lot::Mutex<Option<Credentials>>>,
}

impl aws_credential_types::provider::ProvideCredentials for FreshRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            use aws_credential_types::provider::error::CredentialsError;
            let expiry = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
            let kept = self.current.lock().clone();
            if let Some(c) = kept {
                return Ok(Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    c.session_token().map(str::to_string),
                    Some(expiry),
                    "byok-testkit",
                ));
            }
            let body = json!({ "role_arn": self.role_arn, "session_name": "broker" });
            let (status, answer) = localcloud::admin_client::request(&self.endpoint, "POST", "/_localcloud/role-credentials", Some(&body))
                .await
                .map_err(CredentialsError::provider_error)?;
            if status != 200 {
                return Err(CredentialsError::provider_error(format!("localcloud refused role credentials ({status}): {answer}")));
            }
            let field = |name: &str| answer[name].as_str().unwrap_or_default().to_string();
            let fresh = Credentials::new(
                field("access_key_id"),
                field("secret_access_key"),
                Some(field("session_token")),
                Some(expiry),
                "byok-testkit",
            );
            *self.current.lock() = Some(fresh.clone());
            Ok(fresh)
        })
    }
}
