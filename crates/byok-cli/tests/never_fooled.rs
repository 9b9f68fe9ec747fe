//! The operator's side of a provider fault, through `byok serve`: the embedded localcloud's
//! STS refuses every AssumeRole (as an SCP would); the tenant stays active, `/healthz` says
//! degraded and why, one alert is open (`byok alerts`), `/metrics` shows the gauge at 0; when
//! the fault is gone everything clears by itself.

use std::time::{Duration, Instant};

use byok_cli::serve::ServeArgs;
use serde_json::{Value, json};

use crate::support::{api, customer, endpoint, run_setup, start_with};

async fn until(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_fault_alerts_the_operator_and_revokes_no_one() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let (account, creds) = customer(&b, "acme-corp").await;
    let (_, added) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "acme", "location": "de", "account_id": account }))).await;
    run_setup(&b, &creds, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
    assert_eq!(api(&b, Some(&op), "POST", "/v1/tenants/acme/verify", None).await.0, 200);
    assert!(until(Duration::from_secs(10), async || api(&b, None, "GET", "/healthz", None).await.1["status"] == "ok").await);
    // The data directory and the store are the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        assert_eq!(mode(&dir.path().join("data/byok.db")), 0o600);
    }

    let ep = endpoint(&b);
    let fault = json!({ "service": "sts", "operation": "AssumeRole", "kind": "refuse", "code": "AccessDenied" });
    let (status, _) =
        localcloud::admin_client::request_as(&ep, crate::support::admin_token(&b), "POST", "/_localcloud/faults", Some(&fault))
            .await
            .expect("fault");
    assert_eq!(status, 201);
    let degraded = until(Duration::from_secs(15), async || api(&b, None, "GET", "/healthz", None).await.1["status"] == "degraded").await;
    assert!(degraded, "healthz never said degraded");
    let (_, health) = api(&b, None, "GET", "/healthz", None).await;
    assert_eq!(health["provider_healthy"], false, "{health}");
    // Nobody signs in to /healthz: the reason is in byok's own words, never AWS's error text.
    assert_eq!(health["provider_problem"].as_str(), Some(byok_server::routes::ops::PROVIDER_PROBLEM), "{health}");
    assert!(!health.to_string().contains("AccessDenied") && !health.to_string().contains("arn:aws"), "{health}");
    // A few more passes: still one alert, still active, no ticket.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, alerts) = api(&b, Some(&op), "GET", "/v1/alerts?open=true", None).await;
    let alerts = alerts.as_array().expect("alerts").clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0]["title"].as_str().is_some_and(|t| t.starts_with("Provider identity failing: ")), "{alerts:?}");
    let (_, tenant) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!(tenant["state"], "active", "{tenant}");
    let (_, tickets) = api(&b, Some(&op), "GET", "/v1/tickets", None).await;
    assert_eq!(tickets, json!([]));
    let metrics = metrics_text(&b).await;
    assert!(metrics.contains("byok_provider_healthy 0"), "{metrics}");
    // The operator's command line shows it.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["alerts", "--open", "--api", &b.api_url(), "--token", &op])
        .output()
        .await
        .expect("byok alerts");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Provider identity failing"), "{out:?}");

    // The fault is gone: it clears by itself.
    localcloud::admin_client::request_as(&ep, crate::support::admin_token(&b), "DELETE", "/_localcloud/faults", None).await.expect("clear");
    let cleared = until(Duration::from_secs(15), async || api(&b, None, "GET", "/healthz", None).await.1["status"] == "ok").await;
    assert!(cleared, "healthz stayed degraded");
    let (_, alerts) = api(&b, Some(&op), "GET", "/v1/alerts?open=true", None).await;
    assert_eq!(alerts, json!([]));
    let (_, all) = api(&b, Some(&op), "GET", "/v1/alerts", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(all[0]["status"], Value::from("resolved"));

    // The provider role's own trust policy edited to deny EC2: after a restart the broker cannot
    // get its credentials at all. Still an outage, not a revocation; fixed, it recovers.
    let data = dir.path().join("data");
    // The provider account byok made in localcloud is a cluster setting in the store.
    let (_, root) = crate::support::provider_account(&data).await;
    let ec2 = |effect: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    let set_trust = async |effect: &str| {
        let policy = ec2(effect);
        let args = ["iam", "update-assume-role-policy", "--role-name", "Cryptor-OSB-Provider", "--policy-document", policy.as_str()];
        byok_testkit::aws_ok(&ep, &root, "us-east-1", &args).await;
    };
    set_trust("Deny").await;
    let localcloud_addr = b.localcloud.as_ref().expect("embedded").addr;
    b.stop().await.expect("stop");
    let b =
        crate::support::restart_with(&data, localcloud_addr, ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let degraded = until(Duration::from_secs(15), async || api(&b, None, "GET", "/healthz", None).await.1["status"] == "degraded").await;
    assert!(degraded, "healthz never said degraded without provider credentials");
    let (_, tenant) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!(tenant["state"], "active", "{tenant}");
    assert_eq!(api(&b, Some(&op), "GET", "/v1/tickets", None).await.1, json!([]));
    set_trust("Allow").await;
    let cleared = until(Duration::from_secs(15), async || api(&b, None, "GET", "/healthz", None).await.1["status"] == "ok").await;
    assert!(cleared, "healthz stayed degraded once the provider's credentials came back");
    b.stop().await.expect("stop");
}

async fn metrics_text(b: &byok_cli::serve::Running) -> String {
    let (_, body) = localcloud::admin_client::send(&b.api_url(), "GET", "/metrics", &[], Vec::new()).await.expect("metrics");
    String::from_utf8_lossy(&body).into_owned()
}
