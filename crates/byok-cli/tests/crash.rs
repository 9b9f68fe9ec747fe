//! `kill -9` of `byok serve` in the middle of revocations and restorations leaves a consistent
//! state after restart: every transition is one transaction, and the ticket that follows it is
//! reconciled by the next monitor pass. Destruction is tested by restarting the real binary
//! 16 days later (a debug-build-only clock offset) and killing it during its first pass.

use std::process::Stdio;
use std::time::Duration;

use byok_cli::client::{ApiArgs, Client};
use byok_testkit::{Creds, aws_ok};
use serde_json::{Value, json};

use crate::support::run_setup_at;

struct Node {
    child: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

async fn spawn(dir: &std::path::Path, api: u16, lc: u16) -> Node {
    spawn_at(dir, api, lc, 0).await
}

/// `byok serve`, its clock `offset` seconds ahead (debug builds only).
async fn spawn_at(dir: &std::path::Path, api: u16, lc: u16, offset: i64) -> Node {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--localcloud-listen",
            &format!("127.0.0.1:{lc}"),
            "--monitor-interval-seconds",
            "1",
            "--data-dir",
        ])
        .arg(dir)
        .env("BYOK_LOG", "warn")
        .env("BYOK_TEST_CLOCK_OFFSET_SECONDS", offset.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byok serve");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", api)).await.is_ok() {
            return Node { child };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("byok serve did not come up");
}

impl Node {
    async fn kill_9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }
}

async fn call(api: u16, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = Client::new(&ApiArgs::new(format!("http://127.0.0.1:{api}"), Some(token.into()), ".")).expect("client");
    let answer = client.send(method, path, body.as_ref()).await.expect("request");
    (answer.status, answer.value())
}

/// What must hold whatever moment the broker died at.
async fn consistent(api: u16, op: &str, admin: &str, account: &str) -> String {
    // One monitor pass after the restart reconciles tickets with states.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, tenant) = call(api, admin, "GET", "/v1/tenants/acme", None).await;
    let state = tenant["state"].as_str().expect("state").to_string();
    let (_, tickets) = call(api, admin, "GET", "/v1/tickets", None).await;
    let title = format!("BYOK revocation started for AWS account {account}");
    let open: Vec<&Value> =
        tickets.as_array().expect("tickets").iter().filter(|t| t["title"] == title.as_str() && t["status"] == "open").collect();
    match state.as_str() {
        "revoked" => assert_eq!(open.len(), 1, "a revoked tenant has exactly one open ticket: {tickets}"),
        "active" => assert!(open.is_empty(), "an active tenant has no open revocation ticket: {tickets}"),
        other => panic!("unexpected state {other}"),
    }
    let (status, check) = call(api, op, "GET", "/v1/audit/verify", None).await;
    assert_eq!(status, 200, "the audit chain survives the crash: {check}");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_revocation_restoration_and_destruction_leaves_a_consistent_state() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let (api, lc) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{lc}");
    let mut node = spawn(&data, api, lc).await;
    let op = std::fs::read_to_string(data.join("operator.token")).expect("token").trim().to_string();
    let svc = std::fs::read_to_string(data.join("service.token")).expect("token").trim().to_string();
    // The embedded localcloud's admin endpoints take the token byok serve wrote beside its data;
    // without it they refuse.
    let lc_admin = std::fs::read_to_string(data.join("localcloud-admin.token")).expect("admin token").trim().to_string();
    let (status, _) =
        localcloud::admin_client::request_as(&endpoint, Some("wrong"), "GET", "/_localcloud/accounts", None).await.expect("refused");
    assert_eq!(status, 401, "a local user without the token mints nothing");
    let (_, acct) = localcloud::admin_client::request_as(
        &endpoint,
        Some(&lc_admin),
        "POST",
        "/_localcloud/accounts",
        Some(&json!({ "name": "acme-corp" })),
    )
    .await
    .expect("account");
    let account = acct["account_id"].as_str().expect("id").to_string();
    let creds = Creds {
        access_key_id: acct["access_key_id"].as_str().expect("key").into(),
        secret_access_key: acct["secret_access_key"].as_str().expect("secret").into(),
        session_token: None,
    };
    let (_, added) = call(api, &op, "POST", "/v1/tenants", Some(json!({ "id": "acme", "location": "us", "account_id": account }))).await;
    let admin = added["admin_token"].as_str().expect("token").to_string();
    let allow = added["instructions"]["trust_policy"].clone();
    let mut deny = allow.clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    run_setup_at(&endpoint, &creds, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
    assert_eq!(call(api, &op, "POST", "/v1/tenants/acme/verify", None).await.0, 200);
    let (_, sealed) = call(api, &svc, "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": "c2VjcmV0", "context": "r1" }))).await;
    let decrypt = json!({ "ciphertext": sealed["ciphertext"], "context": "r1" });
    let set_trust = |policy: &Value| {
        let (endpoint, creds, policy) = (endpoint.clone(), creds.clone(), policy.to_string());
        async move {
            aws_ok(
                &endpoint,
                &creds,
                "us-east-1",
                &["iam", "update-assume-role-policy", "--role-name", "byok-key-management", "--policy-document", &policy],
            )
            .await
        }
    };

    let mut seen = Vec::new();
    for (round, delay_ms) in [0u64, 350, 800, 1300].into_iter().enumerate() {
        // Revocation, killed at some point of its detection.
        set_trust(&deny).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        node.kill_9().await;
        node = spawn(&data, api, lc).await;
        seen.push(consistent(api, &op, &admin, &account).await);
        // Make sure it is revoked before restoring.
        for _ in 0..40 {
            if call(api, &admin, "GET", "/v1/tenants/acme", None).await.1["state"] == "revoked" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Restoration, killed while the "ready" request is in flight.
        set_trust(&allow).await;
        let ready = tokio::spawn({
            let admin = admin.clone();
            // The broker may die before it answers: a connection error is expected here.
            async move {
                let client = Client::new(&ApiArgs::new(format!("http://127.0.0.1:{api}"), Some(admin), ".")).expect("client");
                client.send("POST", "/v1/tenants/acme/restore", None::<&()>).await
            }
        });
        tokio::time::sleep(Duration::from_millis(round as u64 * 7)).await;
        node.kill_9().await;
        let _ = ready.await;
        node = spawn(&data, api, lc).await;
        let state = consistent(api, &op, &admin, &account).await;
        if state == "revoked" {
            let (status, answer) = call(api, &admin, "POST", "/v1/tenants/acme/restore", None).await;
            assert_eq!(status, 200, "restoration after the crash: {answer}");
        }
        let (status, opened) = call(api, &svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
        assert_eq!((status, opened["plaintext"].as_str()), (200, Some("c2VjcmV0")), "round {round}: {opened}");
        seen.push(consistent(api, &op, &admin, &account).await);
    }
    eprintln!("states seen after each crash: {seen:?}");

    // Destruction: revoke once more, then restart 16 days later and kill the broker while its
    // first pass destroys the tenant. Whenever it dies, after the next restart the tenant is
    // destroyed with its wrapped keys erased, its ticket closed, and the audit chain intact.
    set_trust(&deny).await;
    for _ in 0..40 {
        if call(api, &admin, "GET", "/v1/tenants/acme", None).await.1["state"] == "revoked" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.kill_9().await;
    let sixteen_days = 16 * 86_400;
    for delay_ms in [0u64, 40, 120] {
        let dying = spawn_at(&data, api, lc, sixteen_days).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        dying.kill_9().await;
    }
    let node = spawn_at(&data, api, lc, sixteen_days).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, tenant) = call(api, &admin, "GET", "/v1/tenants/acme", None).await;
    assert_eq!(tenant["state"], "destroyed", "{tenant}");
    let (_, tickets) = call(api, &admin, "GET", "/v1/tickets", None).await;
    assert!(tickets.as_array().expect("tickets").iter().all(|t| t["status"] != "open"), "{tickets}");
    let (status, check) = call(api, &op, "GET", "/v1/audit/verify", None).await;
    assert_eq!(status, 200, "{check}");
    let (status, gone) = call(api, &svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
    assert_eq!((status, gone["error"].as_str()), (410, Some("tenant_destroyed")));
    let wrapped = count_wrapped_keys(&data).await;
    assert_eq!(wrapped, 0, "wrapped keys erased");
    node.kill_9().await;
}

/// Wrapped keys left in the broker's SQLite store.
async fn count_wrapped_keys(data: &std::path::Path) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&format!("sqlite://{}", data.join("byok.db").display())).await.expect("open the store");
    sqlx::query("SELECT COUNT(*) AS n FROM wrapped_keys").fetch_one(&mut db).await.expect("count").try_get::<i64, _>("n").expect("n")
}
