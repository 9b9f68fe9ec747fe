//! The alert rules shipped in `deploy/prometheus/byok-rules.yml`: their unit tests pass under
//! `promtool test rules`, and every `byok_…` metric they — and the Grafana dashboard in
//! `deploy/grafana/byok-dashboard.json` — name is one `/metrics` exports.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;

use crate::world;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_alert_rules_pass_promtool_and_name_real_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/byok-rules.yml")).expect("the rules file");
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/byok-dashboard.json")).expect("the dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 5), "a dashboard with panels");
    let both = format!("{rules}\n{dashboard}");

    let w = world().await;
    byok_broker::monitor::run_once(&w.broker).await;
    let metrics = Request::get("/metrics").body(Body::empty()).expect("req");
    let response = tower::ServiceExt::oneshot(w.router.clone(), metrics).await.expect("metrics");
    let exported = String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf-8");
    let named: std::collections::BTreeSet<&str> =
        both.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|word| word.starts_with("byok_")).collect();
    assert!(named.len() >= 5, "{named:?}");
    for name in &named {
        // A histogram's and a counter's series carry suffixes (`_bucket`, `_total`).
        let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
        assert!(
            exported.lines().any(|l| l.starts_with(family)),
            "the rules or the dashboard use {name}, which /metrics does not export:\n{exported}"
        );
    }

    let out = std::process::Command::new("promtool")
        .args(["test", "rules", "byok-rules.test.yml"])
        .current_dir(root.join("deploy/prometheus"))
        .output()
        .unwrap_or_else(|e| panic!("promtool is needed for this test (scripts/setup-tools installs it): {e}"));
    assert!(out.status.success(), "promtool test rules: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
