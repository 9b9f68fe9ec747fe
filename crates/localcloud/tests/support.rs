//! Shared test support: a localcloud on `127.0.0.1:0`, accounts, the project's `aws` CLI and
//! Python, and raw signed requests for what no SDK would send.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use localcloud::sigv4::Signer;
use localcloud::{Cloud, Running};
use serde_json::{Value, json};

// The aws CLI runner, credentials and policies come from the shared test kit.
pub use byok_testkit::aws::venv;
pub use byok_testkit::{Creds, aws, aws_err, aws_ok, trust_policy, workspace};

/// A localcloud with its own data directory, stopped when the test ends.
pub struct Localcloud {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl Localcloud {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let running = start_in(dir.path()).await;
        Self { running, dir }
    }

    pub fn endpoint(&self) -> String {
        self.running.endpoint()
    }
}

pub async fn start_in(dir: &Path) -> Running {
    let cloud = Arc::new(Cloud::open(Some(dir)).expect("open data dir"));
    localcloud::spawn("127.0.0.1:0".parse().expect("addr"), cloud).await.expect("bind")
}

/// Signing with a test's credentials (for requests no SDK would send).
pub trait SignWith {
    fn signer<'a>(&'a self, region: &'a str, service: &'a str) -> Signer<'a>;
}

impl SignWith for Creds {
    fn signer<'a>(&'a self, region: &'a str, service: &'a str) -> Signer<'a> {
        Signer {
            access_key_id: &self.access_key_id,
            secret: &self.secret_access_key,
            session_token: self.session_token.as_deref(),
            region,
            service,
        }
    }
}

/// An account's id and root credentials.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub root: Creds,
}

pub async fn admin(endpoint: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    localcloud::admin_client::request(endpoint, method, path, body.as_ref()).await.expect("admin request")
}

pub async fn account(endpoint: &str, name: &str, id: Option<&str>) -> Account {
    let (status, body) = admin(endpoint, "POST", "/_localcloud/accounts", Some(json!({ "name": name, "account_id": id }))).await;
    assert_eq!(status, 201, "{body}");
    Account {
        id: body["account_id"].as_str().expect("id").to_string(),
        root: Creds {
            access_key_id: body["access_key_id"].as_str().expect("key").to_string(),
            secret_access_key: body["secret_access_key"].as_str().expect("secret").to_string(),
            session_token: None,
        },
    }
}

/// Credentials for a role, as an instance profile would provide them.
pub async fn role_credentials(endpoint: &str, role_arn: &str) -> Creds {
    let (status, body) =
        admin(endpoint, "POST", "/_localcloud/role-credentials", Some(json!({ "role_arn": role_arn, "session_name": "broker" }))).await;
    assert_eq!(status, 200, "{body}");
    Creds {
        access_key_id: body["access_key_id"].as_str().expect("key").into(),
        secret_access_key: body["secret_access_key"].as_str().expect("secret").into(),
        session_token: Some(body["session_token"].as_str().expect("token").into()),
    }
}

/// A raw HTTP exchange: status, headers, body. `None` if the connection closed unanswered.
pub async fn send(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Option<(u16, http::HeaderMap, Bytes)> {
    let authority = endpoint.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(authority).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).expect("request")).await.ok()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, headers, body))
}

/// A KMS call signed with `creds` at `at`; returns status and JSON body.
pub async fn kms_at(endpoint: &str, creds: &Creds, region: &str, operation: &str, input: &Value, at: time::OffsetDateTime) -> (u16, Value) {
    let body = serde_json::to_vec(input).expect("json");
    let target = format!("TrentService.{operation}");
    let host = endpoint.trim_start_matches("http://");
    let headers = creds.signer(region, "kms").sign(
        "POST",
        host,
        "/",
        &[("x-amz-target", target.as_str()), ("content-type", "application/x-amz-json-1.1")],
        &body,
        at,
    );
    let (status, _, body) = send(endpoint, "POST", "/", &headers, body).await.expect("an answer");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub async fn kms(endpoint: &str, creds: &Creds, region: &str, operation: &str, input: Value) -> (u16, Value) {
    kms_at(endpoint, creds, region, operation, &input, time::OffsetDateTime::now_utc()).await
}

/// A Query (IAM/STS) call; returns status and the XML text.
/// Creates a role (its trust policy lets EC2 assume it) and returns its ARN.
pub async fn create_role(endpoint: &str, creds: &Creds, name: &str) -> String {
    let trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (status, xml) = query(
        endpoint,
        creds,
        "iam",
        "us-east-1",
        &[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", name), ("AssumeRolePolicyDocument", trust)],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    // An instance role that may use the KMS keys of its own account (an identity policy; the
    // default key policy lets IAM policies decide) and assume roles that trust it (AssumeRole
    // needs the caller's own Allow too, as on AWS).
    let kms_use = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:*","sts:AssumeRole"],"Resource":"*"}]}"#;
    let (status, put) = query(
        endpoint,
        creds,
        "iam",
        "us-east-1",
        &[
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
            ("PolicyName", "kms-use"),
            ("PolicyDocument", kms_use),
        ],
    )
    .await;
    assert_eq!(status, 200, "{put}");
    xml_text(&xml, "Arn").expect("role arn")
}

pub async fn query(endpoint: &str, creds: &Creds, service: &str, region: &str, params: &[(&str, &str)]) -> (u16, String) {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish().into_bytes();
    let host = endpoint.trim_start_matches("http://");
    let headers = creds.signer(region, service).sign(
        "POST",
        host,
        "/",
        &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
        &body,
        time::OffsetDateTime::now_utc(),
    );
    let (status, _, body) = send(endpoint, "POST", "/", &headers, body).await.expect("an answer");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The text of the first `<name>` element in an XML answer.
pub fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&apos;", "'").replace("&amp;", "&"))
}
