//! The provider's own AWS identity: the principal every customer's trust policy names.
//!
//! - Real AWS: the default credential chain (an instance profile, a task role, …) and the
//!   role ARN the operator configures.
//! - localcloud: a provider account (its root keys kept in the data directory) with a role,
//!   and that role's credentials fetched from localcloud the way an instance profile works.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

/// A localcloud role's credentials, refreshed by the SDK's identity cache before they expire.
#[derive(Debug, Clone)]
pub struct LocalcloudRoleCredentials {
    pub endpoint: String,
    pub role_arn: String,
}

impl LocalcloudRoleCredentials {
    async fn fetch(&self) -> provider::Result {
        let body = json!({ "role_arn": self.role_arn, "session_name": "byok-broker", "duration_seconds": 3600 });
        let (status, answer) = localcloud::admin_client::request(&self.endpoint, "POST", "/_localcloud/role-credentials", Some(&body))
            .await
            .map_err(CredentialsError::provider_error)?;
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

/// The provider account's root keys, kept in the broker's data directory (mode 0600).
#[derive(Serialize, Deserialize)]
struct ProviderAccount {
    account_id: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
}

/// Makes sure the provider account and role exist in the localcloud at `endpoint`; returns the
/// role's ARN. Idempotent across restarts.
pub async fn ensure_localcloud_provider(endpoint: &str, data_dir: &Path, account_id: &str, role_name: &str) -> Result<String, String> {
    let path = data_dir.join("provider-account.json");
    let account: ProviderAccount = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{} is unreadable: {e}", path.display()))?,
        Err(_) => {
            let (status, body) = localcloud::admin_client::request(
                endpoint,
                "POST",
                "/_localcloud/accounts",
                Some(&json!({ "name": "provider", "account_id": account_id })),
            )
            .await
            .map_err(|e| format!("cannot reach localcloud at {endpoint}: {e}"))?;
            if status == 409 {
                return Err(format!(
                    "localcloud at {endpoint} already has account {account_id} but {} is missing: use the data directory it was created with, or another --provider-account-id",
                    path.display()
                ));
            }
            if status != 201 {
                return Err(format!("localcloud refused to create the provider account ({status}): {body}"));
            }
            let account = ProviderAccount {
                account_id: body["account_id"].as_str().unwrap_or_default().into(),
                access_key_id: body["access_key_id"].as_str().unwrap_or_default().into(),
                secret_access_key: Zeroizing::new(body["secret_access_key"].as_str().unwrap_or_default().into()),
            };
            write_private(&path, &serde_json::to_vec_pretty(&account).map_err(|e| e.to_string())?)?;
            account
        }
    };
    // The role an instance profile would carry; EntityAlreadyExists is fine.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form = format!("Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}", role_name, percent_encode(trust));
    let (status, xml) = signed_post(endpoint, &account, "iam", "us-east-1", form.into_bytes()).await?;
    if status != 200 && !xml.contains("<Code>EntityAlreadyExists</Code>") {
        return Err(format!("could not create the provider role in localcloud ({status}): {xml}"));
    }
    Ok(format!("arn:aws:iam::{}:role/{role_name}", account.account_id))
}

pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn signed_post(
    endpoint: &str,
    account: &ProviderAccount,
    service: &str,
    region: &str,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let signer = localcloud::sigv4::Signer {
        access_key_id: &account.access_key_id,
        secret: &account.secret_access_key,
        session_token: None,
        region,
        service,
    };
    signed_request(endpoint, &signer, &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")], body).await
}

/// A SigV4-signed POST to an AWS-compatible endpoint (localcloud); the status and body text.
pub async fn signed_request(
    endpoint: &str,
    signer: &localcloud::sigv4::Signer<'_>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let headers = signer.sign("POST", authority, "/", headers, &body, time::OffsetDateTime::now_utc());
    let stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| format!("cannot reach localcloud at {endpoint}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut request = http::Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let response =
        sender.send_request(request.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Writes a file only the owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
