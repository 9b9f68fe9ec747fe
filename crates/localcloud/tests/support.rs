//! Shared test support: a localcloud on `127.0.0.1:0`, accounts, the project's `aws` CLI and
//! Python, and raw signed requests for what no SDK would send.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use localcloud::sigv4::Signer;
use localcloud::{Cloud, Running};
use serde_json::{Value, json};

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

/// Credentials as an SDK takes them.
#[derive(Debug, Clone)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Creds {
    pub fn signer<'a>(&'a self, region: &'a str, service: &'a str) -> Signer<'a> {
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

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The project's Python virtualenv (`BYOK_VENV`, else `.venv` at the workspace root).
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("BYOK_VENV").map(PathBuf::from).unwrap_or_else(|| workspace().join(".venv"));
    assert!(
        venv.join("bin/aws").exists() && venv.join("bin/python").exists(),
        "no aws CLI in {}: run scripts/setup-venv (or point BYOK_VENV at a virtualenv with requirements-test.txt)",
        venv.display()
    );
    venv
}

/// Runs the real `aws` CLI against localcloud, with nothing from the user's own AWS config.
pub async fn aws(endpoint: &str, creds: &Creds, region: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(venv().join("bin/aws"));
    cmd.args(["--endpoint-url", endpoint, "--region", region, "--output", "json"]).args(args);
    isolate_aws_env(&mut cmd, creds);
    cmd.output().await.expect("run aws")
}

/// Runs `aws` and expects success; returns its JSON output (`null` when it printed nothing).
pub async fn aws_ok(endpoint: &str, creds: &Creds, region: &str, args: &[&str]) -> Value {
    let out = aws(endpoint, creds, region, args).await;
    assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }
}

/// Runs `aws`, expects it to fail with `code`, and returns its error text.
pub async fn aws_err(endpoint: &str, creds: &Creds, region: &str, args: &[&str], code: &str) -> String {
    let out = aws(endpoint, creds, region, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "aws {args:?} should have failed with {code}");
    assert!(stderr.contains(&format!("({code})")), "aws {args:?} should fail with {code}, said: {stderr}");
    stderr
}

pub fn isolate_aws_env(cmd: &mut tokio::process::Command, creds: &Creds) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_RETRY_MODE", "standard")
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key);
    if let Some(token) = &creds.session_token {
        cmd.env("AWS_SESSION_TOKEN", token);
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

/// A trust policy letting `principal` assume the role, with an external id when given.
pub fn trust_policy(effect: &str, principal: &str, external_id: Option<&str>) -> String {
    let mut statement = json!({
        "Sid": "Provider",
        "Effect": effect,
        "Principal": { "AWS": principal },
        "Action": "sts:AssumeRole",
    });
    if let Some(id) = external_id {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": id } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string()
}
