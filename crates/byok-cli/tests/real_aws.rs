//! The `--real-aws` path, tested as it is: the real `byok` binary with `--real-aws`, the
//! provider's credentials in the standard `AWS_*` environment variables and the SDK's standard
//! endpoint overrides pointing at a localcloud — first `AWS_ENDPOINT_URL`, then only the
//! per-service `AWS_ENDPOINT_URL_STS` and `AWS_ENDPOINT_URL_KMS` with the global one pointing
//! nowhere. The whole story runs through the code that will talk to real AWS: onboarding with
//! the customer's setup script (real `aws` CLI), data, a customer's Deny revoking.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_cli::client::{ApiArgs, Client};
use byok_testkit::Cloud;
use serde_json::{Value, json};

use crate::support::run_setup_at;

struct Broker {
    _child: tokio::process::Child,
    client: Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

async fn call(client: &Client, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let answer = client.send(method, path, body.as_ref()).await.expect("request");
    (answer.status, answer.value())
}

/// `byok serve --real-aws` with `endpoints` as its only knowledge of where AWS is.
async fn real_aws_broker(cloud: &Cloud, canary: &byok_testkit::Canary, dir: &std::path::Path, endpoints: &[(&str, String)]) -> Broker {
    let provider = cloud.provider_credentials().await;
    let api = free_port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"));
    command
        .args(["serve", "--real-aws", "--listen", &format!("127.0.0.1:{api}"), "--monitor-interval-seconds", "1"])
        .args(["--provider-role-arn", &cloud.provider_role_arn, "--canary-role-arn", &canary.role_arn])
        .args(["--canary-external-id", &canary.external_id, "--data-dir"])
        .arg(dir.join("data"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("BYOK_LOG", "warn")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &provider.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &provider.secret_access_key)
        .env("AWS_SESSION_TOKEN", provider.session_token.as_deref().unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in endpoints {
        command.env(k, v);
    }
    let child = command.spawn().expect("spawn byok serve --real-aws");
    let token_file = dir.join("data/operator.token");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", api)).await.is_ok() && token_file.exists() {
            let args = ApiArgs::new(format!("http://127.0.0.1:{api}"), None, dir.join("data"));
            return Broker { _child: child, client: Client::new(&args).expect("client") };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("byok serve --real-aws did not come up");
}

async fn the_story(cloud: &Cloud, b: &Broker, dir: &std::path::Path, customer: &str) {
    let c = cloud.customer(customer).await;
    let (status, added) =
        call(&b.client, "POST", "/v1/tenants", Some(json!({ "id": customer, "location": "de", "account_id": c.account }))).await;
    assert_eq!(status, 201, "{added}");
    run_setup_at(&cloud.endpoint(), &c.root, added["instructions"]["commands"].as_str().expect("commands"), &dir.join(customer)).await;
    let (status, verified) = call(&b.client, "POST", &format!("/v1/tenants/{customer}/verify"), None).await;
    assert_eq!(status, 200, "verify through the real-AWS path: {verified}");
    // The data plane needs the service token.
    let service = std::fs::read_to_string(dir.join("data/service.token")).expect("service token");
    let svc = Client::new(&ApiArgs::new(b.client.endpoint().to_string(), Some(service.trim().into()), dir.join("data"))).expect("client");
    let (status, sealed) = call(
        &svc,
        "POST",
        &format!("/v1/tenants/{customer}/encrypt"),
        Some(json!({ "plaintext": STANDARD.encode("hello"), "context": "r1" })),
    )
    .await;
    assert_eq!(status, 200, "{sealed}");
    let decrypt = json!({ "ciphertext": sealed["ciphertext"], "context": "r1" });
    let (status, opened) = call(&svc, "POST", &format!("/v1/tenants/{customer}/decrypt"), Some(decrypt.clone())).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(STANDARD.encode("hello").as_str())));
    // The provider's identity and canary pass through the same path.
    let (_, health) = call(&b.client, "GET", "/healthz", None).await;
    assert_eq!(health["provider_healthy"], true, "{health}");
    // The customer's Deny revokes.
    let trust = added["instructions"]["trust_policy"].clone();
    let mut deny = trust.clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    let role = added["instructions"]["role_name"].as_str().expect("role").to_string();
    c.aws("us-east-1", &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &deny.to_string()]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = call(&b.client, "GET", &format!("/v1/tenants/{customer}"), None).await;
        if status["state"] == "revoked" {
            break;
        }
        assert!(Instant::now() < deadline, "not revoked: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_aws_path_honours_the_sdks_standard_endpoint_settings() {
    let cloud = Cloud::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let canary = cloud.canary().await;
    let global = real_aws_broker(&cloud, &canary, &dir.path().join("global"), &[("AWS_ENDPOINT_URL", cloud.endpoint())]).await;
    the_story(&cloud, &global, &dir.path().join("global"), "acme").await;
    drop(global);

    // Per-service overrides only: the global endpoint is a closed loopback port, so nothing
    // works unless STS and KMS each honour their own variable.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let per_service = real_aws_broker(
        &cloud,
        &canary,
        &dir.path().join("per-service"),
        &[("AWS_ENDPOINT_URL", closed), ("AWS_ENDPOINT_URL_STS", cloud.endpoint()), ("AWS_ENDPOINT_URL_KMS", cloud.endpoint())],
    )
    .await;
    the_story(&cloud, &per_service, &dir.path().join("per-service"), "beta").await;
}
