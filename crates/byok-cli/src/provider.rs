//! The provider's own AWS identity: the principal every customer's trust policy names.
//!
//! - Real AWS: the default credential chain (an instance profile, a task role, …) and the
//!   role ARN the operator configures.
//! - localcloud: a provider account with a role, and that role's credentials fetched from
//!   localcloud the way an instance profile works.
//!
//! What every node of a cluster must agree on — the provider account byok made in localcloud
//! (its root keys), the canary's role and external id — is kept in the store as cluster
//! settings, written once by the first node; a node's data directory holds nothing of it, so a
//! node on another machine needs only the store's URL. (Files an older release wrote in the
//! data directory are taken over by the first node that starts with them.)

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use byok_store::Store;

use crate::error::CliError;

/// A localcloud's admin endpoints and the token they require: generated for the embedded
/// localcloud (so that another local user cannot mint the provider's credentials or read
/// external ids from its trail), `LOCALCLOUD_ADMIN_TOKEN` for one already running.
#[derive(Clone)]
pub struct LocalcloudAdmin {
    pub endpoint: String,
    pub token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for LocalcloudAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalcloudAdmin").field("endpoint", &self.endpoint).field("token", &"** redacted **").finish()
    }
}

impl LocalcloudAdmin {
    /// One admin request; the status and JSON answer.
    pub async fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<(u16, serde_json::Value), CliError> {
        localcloud::admin_client::request_as(&self.endpoint, self.token.as_ref().map(|t| t.as_str()), method, path, body)
            .await
            .map_err(|source| CliError::Localcloud { endpoint: self.endpoint.clone(), source })
    }
}

/// A localcloud role's credentials, refreshed by the SDK's identity cache before they expire.
#[derive(Debug, Clone)]
pub struct LocalcloudRoleCredentials {
    pub admin: LocalcloudAdmin,
    pub role_arn: String,
}

impl LocalcloudRoleCredentials {
    async fn fetch(&self) -> provider::Result {
        let body = json!({ "role_arn": self.role_arn, "session_name": "byok-broker", "duration_seconds": 3600 });
        let (status, answer) =
            self.admin.request("POST", "/_localcloud/role-credentials", Some(&body)).await.map_err(CredentialsError::provider_error)?;
        if status != 200 {
            return Err(CredentialsError::provider_error(format!("localcloud refused role credentials ({status}): {answer}")));
        }
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| CredentialsError::unhandled(format!("no {name} in localcloud's answer")))
        };
        // Refresh well before localcloud's expiry (its clock may be moved by tests).
        let expiry = SystemTime::now() + Duration::from_secs(50 * 60);
        Ok(Credentials::new(
            field("access_key_id")?,
            field("secret_access_key")?,
            Some(field("session_token")?),
            Some(expiry),
            "localcloud-instance-role",
        ))
    }
}

impl ProvideCredentials for LocalcloudRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.fetch())
    }
}

/// The provider account's root keys in a localcloud, kept in the store (see the module's doc).
#[derive(Serialize, Deserialize)]
pub struct ProviderAccount {
    account_id: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for ProviderAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderAccount").field("account_id", &self.account_id).finish_non_exhaustive()
    }
}

/// The cluster settings this module keeps.
const PROVIDER_ACCOUNT_SETTING: &str = "localcloud.provider_account";
/// The canary in an account of its own (an older release kept it in the provider's account, as
/// `canary`: it could not see the provider lose its permission to assume roles elsewhere).
const CANARY_SETTING: &str = "canary.cross_account";
const CANARY_ACCOUNT_SETTING: &str = "localcloud.canary_account";

/// How long a node waits for another node that is creating the cluster's provider account.
const PEER_SETUP_WAIT: Duration = Duration::from_secs(20);

/// The cluster-wide value of `name`, claimed with `candidate()` if there is none yet (the first
/// writer wins); parsed as `T`.
async fn claim<T: Serialize + serde::de::DeserializeOwned>(store: &dyn Store, name: &str, candidate: T) -> Result<T, CliError> {
    let text = serde_json::to_string(&candidate).map_err(|e| CliError::Config(e.to_string()))?;
    let stored = store.setting_or_insert(name, &text, time::OffsetDateTime::now_utc()).await?;
    serde_json::from_str(&stored).map_err(|e| CliError::Config(format!("the cluster setting {name} is unreadable: {e}")))
}

/// The cluster-wide value of `name`, if set.
async fn setting<T: serde::de::DeserializeOwned>(store: &dyn Store, name: &str) -> Result<Option<T>, CliError> {
    match store.setting(name).await? {
        None => Ok(None),
        Some(text) => {
            serde_json::from_str(&text).map(Some).map_err(|e| CliError::Config(format!("the cluster setting {name} is unreadable: {e}")))
        }
    }
}

/// A file an older release kept in the data directory, if there.
fn legacy<T: serde::de::DeserializeOwned>(data_dir: &Path, file: &str) -> Option<T> {
    let bytes = std::fs::read(data_dir.join(file)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Makes sure the provider account and role exist in the localcloud at `endpoint`; returns the
/// role's ARN. Idempotent across restarts and across nodes: the first node
/// creates the account and records it in the store; the others read it there.
pub async fn ensure_localcloud_provider(
    admin: &LocalcloudAdmin,
    store: &dyn Store,
    data_dir: &Path,
    account_id: &str,
    role_name: &str,
) -> Result<String, CliError> {
    let account: ProviderAccount = match setting(store, PROVIDER_ACCOUNT_SETTING).await? {
        Some(account) => account,
        None => match legacy::<ProviderAccount>(data_dir, "provider-account.json") {
            Some(old) => claim(store, PROVIDER_ACCOUNT_SETTING, old).await?,
            None => {
                let (status, body) =
                    admin.request("POST", "/_localcloud/accounts", Some(&json!({ "name": "provider", "account_id": account_id }))).await?;
                match status {
                    201 => {
                        let created = ProviderAccount {
                            account_id: body["account_id"].as_str().unwrap_or_default().into(),
                            access_key_id: body["access_key_id"].as_str().unwrap_or_default().into(),
                            secret_access_key: Zeroizing::new(body["secret_access_key"].as_str().unwrap_or_default().into()),
                        };
                        claim(store, PROVIDER_ACCOUNT_SETTING, created).await?
                    }
                    // Another node is creating it: its record reaches the store in a moment.
                    409 => wait_for_peer(store, &admin.endpoint, account_id).await?,
                    _ => return Err(CliError::LocalcloudRefused { what: "the provider account".into(), status, answer: body.to_string() }),
                }
            }
        },
    };
    let endpoint = admin.endpoint.as_str();
    if account.account_id != account_id {
        tracing::warn!(
            stored = %account.account_id,
            configured = account_id,
            "the cluster's provider account in localcloud is not the configured --provider-account-id; keeping the cluster's"
        );
    }
    // The role an instance profile would carry; EntityAlreadyExists is fine.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let create = form(&[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", role_name), ("AssumeRolePolicyDocument", trust)]);
    let (status, xml) = signed_post(endpoint, &account, "iam", "us-east-1", create.into_bytes()).await?;
    if status != 200 && aws_error_code(&xml).as_deref() != Some("EntityAlreadyExists") {
        return Err(CliError::LocalcloudRefused { what: "the provider role".into(), status, answer: xml });
    }
    // Its own permissions: to assume customers' roles (a cross-account AssumeRole needs it) and
    // to keep the provider-held key layer in its own account.
    let policy = byok_broker::setup::provider_role_policy(&account.account_id);
    let allow = form(&[
        ("Action", "PutRolePolicy"),
        ("Version", "2010-05-08"),
        ("RoleName", role_name),
        ("PolicyName", "byok-provider"),
        ("PolicyDocument", &policy),
    ]);
    let (status, xml) = signed_post(endpoint, &account, "iam", "us-east-1", allow.into_bytes()).await?;
    if status != 200 {
        return Err(CliError::LocalcloudRefused { what: "the provider role's policy".into(), status, answer: xml });
    }
    Ok(format!("arn:aws:iam::{}:role/{role_name}", account.account_id))
}

/// Waits for the node that created the provider account to record it in the store.
async fn wait_for_peer(store: &dyn Store, endpoint: &str, account_id: &str) -> Result<ProviderAccount, CliError> {
    let started = std::time::Instant::now();
    while started.elapsed() < PEER_SETUP_WAIT {
        if let Some(account) = setting(store, PROVIDER_ACCOUNT_SETTING).await? {
            return Ok(account);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(CliError::Config(format!(
        "localcloud at {endpoint} already has account {account_id}, but this cluster's store does not know its keys: point this node \
         at the store the account was created with, or use another --provider-account-id"
    )))
}

/// The `<Code>` of an AWS Query (XML) error answer.
fn aws_error_code(xml: &str) -> Option<String> {
    // `<ErrorResponse><Error><Code>…</Code>…</Error></ErrorResponse>` (the Query protocol's).
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_code = false;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) => in_code = e.name().as_ref() == b"Code",
            quick_xml::events::Event::Text(t) if in_code => return t.decode().ok().map(|c| c.trim().to_string()),
            quick_xml::events::Event::End(_) => in_code = false,
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (what AWS's Query
/// protocol expects in a form body).
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An `application/x-www-form-urlencoded` body for AWS's Query protocol.
pub fn form(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", utf8_percent_encode(k, FORM), utf8_percent_encode(v, FORM))).collect::<Vec<_>>().join("&")
}

async fn signed_post(
    endpoint: &str,
    account: &ProviderAccount,
    service: &str,
    region: &str,
    body: Vec<u8>,
) -> Result<(u16, String), CliError> {
    let keys = AwsKeys { access_key_id: &account.access_key_id, secret: &account.secret_access_key };
    signed_request(endpoint, &keys, region, service, &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")], body).await
}

/// Long-lived keys (an account's root keys in a localcloud) to sign with.
#[derive(Clone, Copy)]
pub struct AwsKeys<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
}

impl std::fmt::Debug for AwsKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// A SigV4-signed POST (signed by `aws-sigv4`, the SDK's own signer) to an AWS-compatible
/// endpoint (localcloud); the status and body text.
pub async fn signed_request(
    endpoint: &str,
    keys: &AwsKeys<'_>,
    region: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, String), CliError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let failed = |source| CliError::Localcloud { endpoint: endpoint.to_string(), source };
    localcloud::admin_client::authority(endpoint).map_err(failed)?;
    let uri = format!("{}/", endpoint.trim_end_matches('/'));
    let identity = Credentials::new(keys.access_key_id, keys.secret, None, None, "byok-localcloud-bootstrap").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new("POST", &uri, headers.iter().copied(), SignableBody::Bytes(&body))
        .map_err(|e| CliError::Signing(e.to_string()))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| CliError::Signing(e.to_string()))?.into_parts();
    let mut request = http::Request::builder().method("POST").uri(&uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut request = request.body(body).map_err(|e| CliError::Signing(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let (status, bytes) = localcloud::admin_client::send_request(request).await.map_err(failed)?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The canary in a localcloud: a role `byok-canary` that trusts the provider role with an
/// external id, and a key with the alias `key` in `region`, in a provider-controlled account of
/// its own — so that assuming it crosses accounts exactly as customers' roles do, and fails
/// exactly when theirs would for the provider's own reasons (its role lost the permission to
/// assume roles: every customer would answer AccessDenied, and so does the canary). The
/// account, role ARN and external id are the cluster's (kept in the store): every node proves
/// the same canary. Idempotent across restarts and nodes.
pub async fn ensure_localcloud_canary(
    admin: &LocalcloudAdmin,
    store: &dyn Store,
    provider_role_arn: &str,
    key: &str,
    region: &byok_domain::Region,
) -> Result<byok_broker::CanaryConfig, CliError> {
    #[derive(Serialize, Deserialize)]
    struct Canary {
        role_arn: String,
        external_id: String,
    }
    let account: ProviderAccount = match setting(store, CANARY_ACCOUNT_SETTING).await? {
        Some(account) => account,
        None => {
            let (status, body) = admin.request("POST", "/_localcloud/accounts", Some(&json!({ "name": "byok-canary" }))).await?;
            if status != 201 {
                return Err(CliError::LocalcloudRefused { what: "the canary's account".into(), status, answer: body.to_string() });
            }
            let created = ProviderAccount {
                account_id: body["account_id"].as_str().unwrap_or_default().into(),
                access_key_id: body["access_key_id"].as_str().unwrap_or_default().into(),
                secret_access_key: Zeroizing::new(body["secret_access_key"].as_str().unwrap_or_default().into()),
            };
            // Two nodes starting at once may each make one; the store keeps the first.
            claim(store, CANARY_ACCOUNT_SETTING, created).await?
        }
    };
    let (account, endpoint) = (&account, admin.endpoint.as_str());
    let canary: Canary = match setting(store, CANARY_SETTING).await? {
        Some(canary) => canary,
        None => {
            let external_id = byok_broker::tokens::generate("canary")
                .ok_or_else(|| CliError::Config("the system random number generator failed".into()))?
                .chars()
                .take(40)
                .collect::<String>();
            let candidate = Canary { role_arn: format!("arn:aws:iam::{}:role/byok-canary", account.account_id), external_id };
            claim(store, CANARY_SETTING, candidate).await?
        }
    };
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ByokCanary",
            "Effect": "Allow",
            "Principal": { "AWS": provider_role_arn },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": canary.external_id } }
        }]
    })
    .to_string();
    let body = form(&[
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", "byok-canary"),
        ("Description", "byok: the provider's canary, assumed each monitor pass"),
        ("AssumeRolePolicyDocument", &trust),
    ]);
    let (status, xml) = signed_post(endpoint, account, "iam", "us-east-1", body.into_bytes()).await?;
    if status != 200 && aws_error_code(&xml).as_deref() != Some("EntityAlreadyExists") {
        return Err(CliError::LocalcloudRefused { what: "the canary role".into(), status, answer: xml });
    }
    // A role that existed (made by an older release, or by a node that lost the race to record
    // its external id) is brought to the cluster's trust policy.
    if status != 200 {
        let body = form(&[
            ("Action", "UpdateAssumeRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", "byok-canary"),
            ("PolicyDocument", &trust),
        ]);
        let (status, xml) = signed_post(endpoint, account, "iam", "us-east-1", body.into_bytes()).await?;
        if status != 200 {
            return Err(CliError::LocalcloudRefused { what: "the canary role's trust policy".into(), status, answer: xml });
        }
    }
    // The canary role may use the canary key: an identity policy, as the key keeps the default
    // policy (which lets IAM policies decide).
    let kms_use = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"], "Resource": "*" }]
    })
    .to_string();
    let body = form(&[
        ("Action", "PutRolePolicy"),
        ("Version", "2010-05-08"),
        ("RoleName", "byok-canary"),
        ("PolicyName", "byok-canary-key-use"),
        ("PolicyDocument", &kms_use),
    ]);
    let (status, xml) = signed_post(endpoint, account, "iam", "us-east-1", body.into_bytes()).await?;
    if status != 200 {
        return Err(CliError::LocalcloudRefused { what: "the canary role's policy".into(), status, answer: xml });
    }
    ensure_key(endpoint, account, region, key, json!({ "Description": "byok canary" }), "the canary key").await?;
    // The key-policy canary: its policy grants the provider role itself, as CMK customers' keys do.
    let tenant = byok_broker::provider_setup::CANARY_TENANT.parse()?;
    let tag = byok_broker::provider_setup::CANARY_CONTEXT_TAG.parse().ok();
    let policy = byok_broker::setup::key_policy(&account.account_id, provider_role_arn, &tenant, tag.as_ref());
    let create = json!({ "Description": "byok key-policy canary", "Policy": policy.to_string() });
    ensure_key(endpoint, account, region, byok_broker::provider_setup::CANARY_CMK_ALIAS, create, "the key-policy canary key").await?;
    Ok(byok_broker::CanaryConfig {
        role_arn: canary.role_arn.parse()?,
        external_id: canary.external_id.parse()?,
        key: key.to_string(),
        region: region.clone(),
        key_policy_key: Some(format!("arn:aws:kms:{region}:{}:{}", account.account_id, byok_broker::provider_setup::CANARY_CMK_ALIAS)),
    })
}

/// Makes the key `alias` names in the provider-controlled `account` (with `create`'s
/// parameters) unless it exists.
async fn ensure_key(
    endpoint: &str,
    account: &ProviderAccount,
    region: &byok_domain::Region,
    alias: &str,
    create: serde_json::Value,
    what: &str,
) -> Result<(), CliError> {
    let (status, _) = kms_call(endpoint, account, region.as_str(), "DescribeKey", &json!({ "KeyId": alias })).await?;
    if status == 200 {
        return Ok(());
    }
    let (status, created) = kms_call(endpoint, account, region.as_str(), "CreateKey", &create).await?;
    let key_id: serde_json::Value = serde_json::from_str(&created).unwrap_or_default();
    let key_id = key_id["KeyMetadata"]["KeyId"].as_str().unwrap_or_default().to_string();
    if status != 200 || key_id.is_empty() {
        return Err(CliError::LocalcloudRefused { what: what.into(), status, answer: created });
    }
    let (status, answer) =
        kms_call(endpoint, account, region.as_str(), "CreateAlias", &json!({ "AliasName": alias, "TargetKeyId": key_id })).await?;
    // Another node starting at the same moment made the alias first: its key is the canary.
    let lost_race = serde_json::from_str::<serde_json::Value>(&answer)
        .is_ok_and(|v| v["__type"].as_str().is_some_and(|t| t.ends_with("AlreadyExistsException")));
    if status != 200 && !lost_race {
        return Err(CliError::LocalcloudRefused { what: format!("{what}'s alias"), status, answer });
    }
    Ok(())
}

/// A KMS call signed with the provider account's root keys; the status and body text.
async fn kms_call(
    endpoint: &str,
    account: &ProviderAccount,
    region: &str,
    operation: &str,
    input: &serde_json::Value,
) -> Result<(u16, String), CliError> {
    let target = format!("TrentService.{operation}");
    let keys = AwsKeys { access_key_id: &account.access_key_id, secret: &account.secret_access_key };
    let headers = [("x-amz-target", target.as_str()), ("content-type", "application/x-amz-json-1.1")];
    signed_request(endpoint, &keys, region, "kms", &headers, input.to_string().into_bytes()).await
}

/// Makes `dir` (created if missing) readable by its owner only.
pub fn private_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(CliError::io(format!("cannot create {}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(CliError::io(format!("cannot restrict {}", dir.display())))?;
    }
    Ok(())
}

/// Creates `path` readable by its owner only if it does not exist (SQLite then gives its WAL
/// and shared-memory files the same mode).
pub fn private_file(path: &Path) -> Result<(), CliError> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(|_| ()).map_err(CliError::io(format!("cannot create {}", path.display())))
}

/// Writes a file only the owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(CliError::io(format!("cannot write {}", path.display())))?;
    file.write_all(bytes).map_err(CliError::io(format!("cannot write {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::aws_error_code;

    #[test]
    fn the_query_protocols_error_code_is_read_from_its_element() {
        let answer = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
                      <Code>EntityAlreadyExists</Code><Message>Role with name <b> already exists.</Message></Error>\
                      <RequestId>1</RequestId></ErrorResponse>";
        assert_eq!(aws_error_code(answer).as_deref(), Some("EntityAlreadyExists"));
        // A message that merely mentions <Code> is not a code.
        assert_eq!(aws_error_code("<ErrorResponse><Error><Message>no &lt;Code&gt; here</Message></Error></ErrorResponse>"), None);
        assert_eq!(aws_error_code("not xml at all"), None);
    }
}
