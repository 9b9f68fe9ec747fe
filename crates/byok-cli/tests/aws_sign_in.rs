//! Sign-in with AWS IAM (`POST /v1/auth/aws`) against `byok serve` and its embedded localcloud:
//! a product service's role session signs `sts:GetCallerIdentity` with boto3 (botocore's SigV4)
//! or with the AWS SDK for Rust's signer (`aws-sigv4`), and gets a short-lived token reaching
//! its configured tenants only. Refused: a replay, a request signed for another broker, one
//! signed 20 minutes ago, a role no identity names, a removed identity.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_cli::serve::ServeArgs;
use byok_testkit::{Creds, aws_ok};
use serde_json::{Value, json};

use crate::support::{admin_token, api, customer, endpoint, onboard, start_with};

const SERVER_ID: &str = "byok.test.internal";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// A role in the product's own account for its EC2 instances, and a session of it as the
/// instance profile hands it out.
async fn role_session(b: &byok_cli::serve::Running, root: &Creds, account: &str, name: &str) -> Creds {
    let ep = endpoint(b);
    let trust = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }] });
    aws_ok(&ep, root, "us-east-1", &["iam", "create-role", "--role-name", name, "--assume-role-policy-document", &trust.to_string()]).await;
    let arn = format!("arn:aws:iam::{account}:role/{name}");
    let (status, c) = localcloud::admin_client::request_as(
        &ep,
        admin_token(b),
        "POST",
        "/_localcloud/role-credentials",
        Some(&json!({ "role_arn": arn, "session_name": "i-0abc" })),
    )
    .await
    .expect("role credentials");
    assert_eq!(status, 200, "{c}");
    Creds {
        access_key_id: c["access_key_id"].as_str().expect("key").into(),
        secret_access_key: c["secret_access_key"].as_str().expect("secret").into(),
        session_token: c["session_token"].as_str().map(str::to_string),
    }
}

/// The sign-in request boto3 makes (botocore's SigV4Auth), as byok takes it.
async fn boto3_signed(sts: &str, creds: &Creds, server_id: &str) -> Value {
    let script = r#"
import base64, json, os
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
body = "Action=GetCallerIdentity&Version=2011-06-15"
request = AWSRequest(method="POST", url=os.environ["STS"] + "/", data=body, headers={
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "X-Byok-Server-Id": os.environ["SERVER_ID"],
})
SigV4Auth(Credentials(os.environ["AK"], os.environ["SK"], os.environ["ST"]), "sts", "us-east-1").add_auth(request)
print(json.dumps({"headers": dict(request.headers.items()), "body": base64.b64encode(body.encode()).decode()}))
"#;
    let out = tokio::process::Command::new(byok_testkit::aws::venv().join("bin/python"))
        .args(["-c", script])
        .env("STS", sts)
        .env("SERVER_ID", server_id)
        .env("AK", &creds.access_key_id)
        .env("SK", &creds.secret_access_key)
        .env("ST", creds.session_token.as_deref().unwrap_or_default())
        .output()
        .await
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The same request signed with the AWS SDK for Rust's signer, at `when`.
fn rust_signed(sts: &str, creds: &Creds, server_id: &str, when: SystemTime) -> Value {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "sign-in-test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(when)
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let uri = format!("{sts}/");
    let host = sts.split("://").nth(1).expect("host").to_string();
    let headers =
        [("content-type", "application/x-www-form-urlencoded; charset=utf-8"), ("host", host.as_str()), ("x-byok-server-id", server_id)];
    let signable = SignableRequest::new("POST", &uri, headers.iter().copied(), SignableBody::Bytes(BODY.as_bytes())).expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut request = http::Request::builder().method("POST").uri(&uri);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let mut request = request.body(()).expect("request");
    instructions.apply_to_request_http1x(&mut request);
    let headers: serde_json::Map<String, Value> =
        request.headers().iter().map(|(k, v)| (k.to_string(), Value::String(v.to_str().expect("ascii").to_string()))).collect();
    json!({ "headers": headers, "body": STANDARD.encode(BODY) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_signs_in_with_its_own_iam_role() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { aws_sign_in_server_id: Some(SERVER_ID.into()), ..ServeArgs::default() }).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    onboard(&b, "acme-corp", "acme", "us", &dir.path().join("acme")).await;
    let ep = endpoint(&b);
    // The product service's own AWS account, a role for it, and a role nobody configured.
    let (product, root) = customer(&b, "product-services").await;
    let billing = role_session(&b, &root, &product, "billing").await;
    let stranger = role_session(&b, &root, &product, "stranger").await;
    let role_arn = format!("arn:aws:iam::{product}:role/billing");

    // The operator names the role and the tenants it reaches, with the CLI.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_byok"))
            .args(args)
            .args(["--api", &b.api_url(), "--token", &op])
            .output()
            .expect("byok identity")
    };
    let added = cli(&["identity", "add", "--role-arn", &role_arn, "--tenant", "acme"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let listed = String::from_utf8_lossy(&cli(&["identity", "list"]).stdout).into_owned();
    assert!(listed.contains(&role_arn) && listed.contains("acme"), "{listed}");

    // boto3 signs; byok answers a token that reaches acme only, for 15 minutes.
    let signed = boto3_signed(&ep, &billing, SERVER_ID).await;
    let (status, answer) = api(&b, None, "POST", "/v1/auth/aws", Some(signed.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["role_arn"], role_arn.as_str());
    assert_eq!(answer["info"]["tenants"], json!(["acme"]));
    let expires =
        time::OffsetDateTime::parse(answer["info"]["expires_at"].as_str().expect("expiry"), &time::format_description::well_known::Rfc3339)
            .expect("date");
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(14) && left <= time::Duration::minutes(15), "{left}");
    let token = answer["token"].as_str().expect("token").to_string();
    let record = json!({ "plaintext": STANDARD.encode("from billing"), "context": "invoice-1" });
    let (status, sealed) = api(&b, Some(&token), "POST", "/v1/tenants/acme/encrypt", Some(record)).await;
    assert_eq!(status, 200, "{sealed}");
    assert_eq!(api(&b, Some(&token), "POST", "/v1/tenants/globex/encrypt", Some(json!({ "plaintext": "" }))).await.0, 403);
    assert_eq!(api(&b, Some(&token), "GET", "/v1/tenants", None).await.0, 403, "a service, not the operator");

    // The same signed request again: a replay.
    let (status, refused) = api(&b, None, "POST", "/v1/auth/aws", Some(signed)).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("sign_in_refused")), "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("already used"), "{refused}");

    // The AWS SDK for Rust's signer works the same. (Signed in the same second with the same
    // headers, it would be boto3's very request, signature included: a replay. Two seconds
    // earlier it is a request of its own.)
    let earlier = SystemTime::now() - Duration::from_secs(2);
    let (status, answer) = api(&b, None, "POST", "/v1/auth/aws", Some(rust_signed(&ep, &billing, SERVER_ID, earlier))).await;
    assert_eq!(status, 200, "{answer}");

    // Refusals, each saying why.
    let refusals = [
        ("another broker", rust_signed(&ep, &billing, "another-byok.internal", SystemTime::now()), "not this one"),
        ("signed 20 minutes ago", rust_signed(&ep, &billing, SERVER_ID, SystemTime::now() - Duration::from_secs(1200)), "15 minutes"),
        ("a role no identity names", rust_signed(&ep, &stranger, SERVER_ID, SystemTime::now()), "no identity"),
    ];
    for (case, signed, why) in refusals {
        let (status, refused) = api(&b, None, "POST", "/v1/auth/aws", Some(signed)).await;
        assert_eq!(status, 401, "{case}: {refused}");
        assert!(refused["message"].as_str().unwrap_or_default().contains(why), "{case}: {refused}");
    }
    // A signature STS does not accept (the body changed after signing).
    let mut tampered = rust_signed(&ep, &billing, SERVER_ID, SystemTime::now() - Duration::from_secs(4));
    tampered["headers"]["x-byok-server-id"] = json!(SERVER_ID);
    tampered["headers"]["x-amz-security-token"] = json!("forged");
    let (status, refused) = api(&b, None, "POST", "/v1/auth/aws", Some(tampered)).await;
    assert_eq!(status, 401, "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("STS refused"), "{refused}");

    // Removed: the role signs in no more.
    assert!(cli(&["identity", "remove", "--role-arn", &role_arn]).status.success());
    let later = rust_signed(&ep, &billing, SERVER_ID, SystemTime::now() - Duration::from_secs(6));
    let (status, refused) = api(&b, None, "POST", "/v1/auth/aws", Some(later)).await;
    assert_eq!(status, 401);
    assert!(refused["message"].as_str().unwrap_or_default().contains("no identity"), "{refused}");
    b.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_off_unless_configured() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs::default()).await;
    let (status, body) = api(&b, None, "POST", "/v1/auth/aws", Some(json!({ "headers": {}, "body": "" }))).await;
    assert_eq!(status, 404, "{body}");
    b.stop().await.expect("stop");
}
