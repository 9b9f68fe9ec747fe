//! Starting the broker the way `byok serve` does, and playing the customer.

use std::path::Path;

use byok_cli::serve::{self, Aws, Running, ServeArgs, ServeParams};
use byok_testkit::{Creds, aws::venv};
use serde_json::{Value, json};

pub async fn start(data_dir: &Path) -> Running {
    start_with(data_dir, ServeArgs::default()).await
}

pub async fn start_with(data_dir: &Path, args: ServeArgs) -> Running {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(data_dir.to_path_buf()),
        localcloud_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..args
    };
    let params = ServeParams::from_args(args).expect("params");
    assert!(matches!(params.aws, Aws::Embedded(_)));
    serve::start(params).await.expect("byok serve")
}

/// Restarts on the same data directory, with the embedded localcloud at the same address.
pub async fn restart(data_dir: &Path, localcloud: std::net::SocketAddr) -> Running {
    restart_with(data_dir, localcloud, ServeArgs::default()).await
}

/// [`restart`] with more settings.
pub async fn restart_with(data_dir: &Path, localcloud: std::net::SocketAddr, args: ServeArgs) -> Running {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(data_dir.to_path_buf()),
        localcloud_listen: Some(localcloud),
        ..args
    };
    serve::start(ServeParams::from_args(args).expect("params")).await.expect("byok serve again")
}

pub fn endpoint(running: &Running) -> String {
    running.aws_endpoint.clone().expect("localcloud endpoint")
}

/// A customer account in the embedded localcloud.
pub async fn customer(running: &Running, name: &str) -> (String, Creds) {
    let (status, body) = localcloud::admin_client::request_as(
        &endpoint(running),
        admin_token(running),
        "POST",
        "/_localcloud/accounts",
        Some(&json!({ "name": name })),
    )
    .await
    .expect("admin");
    assert_eq!(status, 201);
    (
        body["account_id"].as_str().expect("id").into(),
        Creds {
            access_key_id: body["access_key_id"].as_str().expect("key").into(),
            secret_access_key: body["secret_access_key"].as_str().expect("secret").into(),
            session_token: None,
        },
    )
}

/// Runs the setup script `byok tenant add` printed, with bash and the real aws CLI, as the
/// customer; `edit` may change it first (to get the setup wrong on purpose).
pub async fn run_setup(running: &Running, creds: &Creds, script: &str, dir: &Path) {
    run_setup_at(&endpoint(running), creds, script, dir).await;
}

/// [`run_setup`] against the localcloud at `aws_endpoint`.
pub async fn run_setup_at(aws_endpoint: &str, creds: &Creds, script: &str, dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("setup.sh");
    std::fs::write(&path, script).expect("write script");
    let bin = venv().join("bin");
    let out = tokio::process::Command::new("bash")
        .arg(&path)
        .current_dir(dir)
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", aws_endpoint)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
        .output()
        .await
        .expect("bash");
    assert!(
        out.status.success(),
        "the setup script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An API call; status and JSON.
pub async fn api(running: &Running, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let args = byok_cli::client::ApiArgs::new(running.api_url(), Some(token.unwrap_or("none").to_string()), ".");
    let client = byok_cli::client::Client::new(&args).expect("client");
    let answer = client.send(method, path, body.as_ref()).await.expect("request");
    (answer.status, answer.value())
}

/// A customer account named `name`, with tenant `tenant` in `location` added, its printed setup
/// run with the real aws CLI in `dir`, and verified: (account, customer's credentials, the
/// `POST /v1/tenants` answer with the instructions and admin token).
pub async fn onboard(running: &Running, name: &str, tenant: &str, location: &str, dir: &Path) -> (String, Creds, Value) {
    let op = running.operator_token.as_deref().expect("operator token").to_string();
    let (account, creds) = customer(running, name).await;
    let (status, added) =
        api(running, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": tenant, "location": location, "account_id": account }))).await;
    assert_eq!(status, 201, "{added}");
    run_setup(running, &creds, added["instructions"]["commands"].as_str().expect("commands"), dir).await;
    let (status, verified) = api(running, Some(&op), "POST", &format!("/v1/tenants/{tenant}/verify"), None).await;
    assert_eq!(status, 200, "{verified}");
    (account, creds, added)
}

/// The embedded localcloud's admin token (its admin endpoints require it).
pub fn admin_token(running: &byok_cli::serve::Running) -> Option<&str> {
    running.localcloud_admin_token.as_ref().map(|t| t.as_str())
}

/// The `byok` binary run against `api` with `token` (quiet logs), to completion.
pub fn byok_as(args: &[&str], api: &str, token: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(args)
        .args(["--api", api, "--token", token])
        .env("BYOK_LOG", "error")
        .output()
        .expect("run byok")
}

/// The provider account `byok serve` made in its embedded localcloud (a cluster setting in the
/// store of `data_dir`): its id and root credentials, to break the provider's own setup.
pub async fn provider_account(data_dir: &Path) -> (String, Creds) {
    let store = byok_store::SqlStore::sqlite(&data_dir.join("byok.db")).await.expect("store");
    let provider =
        byok_store::ClusterStore::setting(&store, "localcloud.provider_account").await.expect("setting").expect("provider account");
    let provider: Value = serde_json::from_str(&provider).expect("json");
    let root = Creds {
        access_key_id: provider["access_key_id"].as_str().expect("key").into(),
        secret_access_key: provider["secret_access_key"].as_str().expect("secret").into(),
        session_token: None,
    };
    (provider["account_id"].as_str().expect("account").to_string(), root)
}

/// Polls `probe` until it finds something or `limit` passes.
pub async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    limit: std::time::Duration,
    mut probe: impl FnMut() -> F,
) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// A product service decrypting `records` (request body, expected plaintext) of `tenant` in a loop
/// until `stop` is set: how many opened to the right plaintext, and every answer that did not.
pub fn keep_reading(
    api_url: String,
    svc: String,
    tenant: &str,
    records: Vec<(Value, String)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(u32, Vec<(u16, Value)>)> {
    let path = format!("/v1/tenants/{tenant}/decrypt");
    tokio::spawn(async move {
        let client = byok_cli::client::Client::new(&byok_cli::client::ApiArgs::new(api_url, Some(svc), ".")).expect("client");
        let (mut ok, mut failed) = (0u32, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for (request, plaintext) in &records {
                let answer = client.send("POST", &path, Some(request)).await.expect("request");
                let body = answer.value();
                if answer.status == 200 && body["plaintext"].as_str() == Some(plaintext.as_str()) {
                    ok += 1;
                } else {
                    failed.push((answer.status, body));
                }
            }
        }
        (ok, failed)
    })
}
