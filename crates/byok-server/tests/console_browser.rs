//! Every state a tenant can be in, walked in a real headless Chromium (Playwright for Python,
//! Debian's `chromium`, axe-core): `tests/browser/test_states.py` signs in as each tenant's
//! admin and as the operator and reads each page at desktop and phone width, light and dark.
//!
//! The states that take days to reach (a deadline within 24 hours, a deadline passed, a tenant
//! destroyed) come from the broker's manual clock, so this side serves the console of the
//! in-process world (SQLite, the KMS test double) on a loopback socket; the subject is what the
//! console shows, not how KMS answers (the real-AWS-wire walk is `byok-cli`'s browser test).

use std::time::Duration;

use byok_broker::Clock as _;
use byok_domain::TenantId;
use byok_kms::{AccessError, Denial};
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};
use serde_json::{Value, json};

use crate::{OPERATOR, world};

const PRODUCT: &str = "Northwind Cloud";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_in_a_real_browser() {
    let w = world().await;
    let b = &w.broker;
    let id = |s: &str| -> TenantId { s.parse().expect("id") };
    let account = "111122223333".parse().expect("account");
    let mut admins = std::collections::HashMap::new();
    admins.insert("acme", w.acme_admin.clone());
    admins.insert("beta", w.beta_admin.clone());
    for name in ["onboard", "fresh", "restoring", "urgent", "passed", "gone"] {
        let added = b.add_tenant(&id(name), "us", &account).await.expect("add");
        if name != "onboard" {
            assert!(b.verify_tenant(&id(name)).await.expect("verify").ok, "{name}");
        }
        admins.insert(name, added.admin_token.to_string());
    }

    // Day 0: `passed` and `gone` revoked; day 1: `urgent`; day 15 + 2 h: `gone` destroyed, `passed`
    // past its deadline (the monitor, not running here, would erase it next), `urgent` 22 h
    // before its own; `fresh` and `restoring` revoked now, `restoring` half restored (one region
    // works again, its other key still disabled).
    b.revoke(&id("passed")).await.expect("revoke");
    b.revoke(&id("gone")).await.expect("revoke");
    w.clock.advance(time::Duration::days(1));
    b.revoke(&id("urgent")).await.expect("revoke");
    w.clock.advance(time::Duration::days(14) + time::Duration::hours(2));
    b.destroy(&id("gone")).await.expect("destroy");
    b.revoke(&id("fresh")).await.expect("revoke");
    b.revoke(&id("restoring")).await.expect("revoke");
    let west: byok_domain::Region = "us-west-2".parse().expect("region");
    let disabled = AccessError::Denied { denial: Denial::KeyDisabled, region: Some(west.clone()), message: "key is disabled".into() };
    w.kms.fail(Some(west.clone()), Some(disabled));
    let half = b.restore(&id("restoring")).await.expect("restore");
    assert!(!half.restored, "{half:?}");
    w.kms.fail(Some(west), None);
    // `beta`'s revocation held for a person.
    let at = w.clock.now();
    let hold = byok_domain::Hold { tenant: id("beta"), detected_at: at, regions: Vec::new(), created_at: at };
    assert!(byok_store::AlertStore::hold(&*w.store, &hold).await.expect("hold"));

    let states = json!([
        { "id": "onboard", "shot": "onboarding", "state": "onboarding", "expect": ["Onboarding: the setup has not been verified yet.", "Verify now"] },
        { "id": "acme", "shot": "active", "state": "active", "expect": ["Active: your data is available"] },
        { "id": "beta", "shot": "suspended", "state": "suspended", "expect": ["Suspended under review since", "no deadline is running"],
          "absent": ["your data is available"] },
        { "id": "fresh", "shot": "revoked", "state": "revoked", "expect": ["Revoked since", "Restore access before", "Access restored — verify now"] },
        { "id": "restoring", "shot": "restoring", "state": "restoring", "expect": ["Restoring: 1 of 2 regions work again", "What to do", "us-west-2"] },
        { "id": "urgent", "shot": "urgent", "state": "revoked", "expect": ["Less than 24 hours left.", "Revoked since"], "urgent": true },
        { "id": "passed", "shot": "passed", "state": "revoked", "expect": ["Deadline passed."], "absent": ["Access restored — verify now", "To restore:"] },
        { "id": "gone", "shot": "destroyed", "state": "destroyed", "expect": ["This tenant's data is erased", "Nothing can restore it"],
          "absent": ["What to do", "Add comment", "Access restored — verify now"] },
    ]);
    let tenants: Vec<Value> = states
        .as_array()
        .expect("states")
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s["token"] = json!(admins[s["id"].as_str().expect("id")]);
            s
        })
        .collect();

    let state = AppState::new(w.broker.clone()).with_product_name(PRODUCT);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app(state, DEFAULT_BODY_LIMIT);
    let server = tokio::spawn(async move { axum::serve(listener, router.into_make_service()).await });

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let axe = root.join(".venv/node/node_modules/axe-core/axe.min.js");
    assert!(python.exists() && axe.exists(), "no browser kit: run scripts/setup-venv and scripts/setup-browser");
    let shots = root.join("target/console/states");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"])
            .arg(root.join("crates/byok-server/tests/browser/test_states.py"))
            .env("BYOK_URL", &url)
            .env("TENANTS", serde_json::to_string(&tenants).expect("json"))
            .env("OPERATOR_TOKEN", OPERATOR)
            .env("PRODUCT", PRODUCT)
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
    for state in ["onboarding", "suspended", "restoring", "urgent", "passed", "destroyed"] {
        assert!(shots.join(format!("{state}-desktop-light.png")).exists(), "{state}");
    }
    server.abort();
}
