//! The console in a real headless Chromium (Playwright for Python, Debian's `chromium`):
//! `tests/browser/test_console.py` plays the customer's restoration from the page. This side
//! starts `byok serve`, adds the tenant and runs the customer's setup with the aws CLI.
//! Screenshots land in `target/console/`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{api, customer, endpoint, run_setup, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("dir");
    let b =
        start_with(&dir.path().join("data"), byok_cli::serve::ServeArgs { monitor_interval_seconds: Some(1), ..Default::default() }).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let (account, creds) = customer(&b, "acme-corp").await;
    let (_, added) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "acme", "location": "eu", "account_id": account }))).await;
    run_setup(&b, &creds, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
    assert_eq!(api(&b, Some(&op), "POST", "/v1/tenants/acme/verify", None).await.0, 200);
    let (_, status) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    let west_key = status["regions"].as_array().expect("regions").iter().find(|r| r["region"] == "eu-west-1").expect("west")["key_arn"]
        .as_str()
        .expect("key")
        .to_string();

    // A second customer who has not run the setup yet: its page is the onboarding one.
    let (globex_account, _) = customer(&b, "globex-corp").await;
    let (status, _) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "globex", "location": "us", "account_id": globex_account }))).await;
    assert_eq!(status, 201);

    // Where the customer's webhook endpoint will be (added from the page; nothing listens there,
    // so its deliveries stay pending).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();

    let root = byok_testkit::workspace();
    let shots = root.join("target/console");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let venv = byok_testkit::aws::venv();
    let axe = root.join(".venv/node/node_modules/axe-core/axe.min.js");
    assert!(axe.exists(), "no axe-core: run scripts/setup-browser");
    let out = tokio::time::timeout(
        Duration::from_secs(480),
        tokio::process::Command::new(venv.join("bin/python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"])
            .arg(root.join("crates/byok-cli/tests/browser/test_console.py"))
            .env("BYOK_URL", b.api_url())
            .env("ADMIN_TOKEN", added["admin_token"].as_str().expect("admin token"))
            .env("OPERATOR_TOKEN", &op)
            .env("AWS_BIN", venv.join("bin/aws"))
            .env("AWS_ENDPOINT", endpoint(&b))
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("CUSTOMER_KEY", &creds.access_key_id)
            .env("CUSTOMER_SECRET", &creds.secret_access_key)
            .env("ROLE", added["instructions"]["role_name"].as_str().expect("role"))
            .env("TRUST_POLICY", added["instructions"]["trust_policy"].to_string())
            .env("WEST_KEY", &west_key)
            .env("WEBHOOK_URL", format!("http://127.0.0.1:{closed}/byok"))
            .env("SCREENSHOTS", &shots)
            .env("AXE_JS", &axe)
            .output(),
    )
    .await
    .expect("the browser test finished in time")
    .expect("run pytest");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed:\n{report}");
    assert!(report.contains(" passed"), "no browser test ran:\n{report}");
    for shot in ["01-overview.png", "02-revoked.png", "03-restore-refused.png", "04-restored.png", "06-operator.png"] {
        assert!(shots.join(shot).exists(), "{shot}");
    }
    let _: Option<Value> = None;
    b.stop().await.expect("stop");
}
