//! Tokens have a lifecycle: issued with an expiry, listed without their values, revoked at
//! once on the node that revokes and on every other node within the token cache's bound; a
//! tenant admin token reissued with `replace` retires the old one.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use byok_broker::{Broker, ManualClock};
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};
use serde_json::json;

use crate::{OPERATOR, call, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_listed_expired_revoked_and_reissued() {
    let w = world().await;
    let r = &w.router;
    // A second node on the same store, trusting what it read about a token for 300 ms.
    let store = w.broker_store();
    let mut config = w.broker.config().clone();
    config.token_cache_ttl = Duration::from_millis(300);
    let clock = Arc::new(ManualClock::new(w.broker.clock().now()));
    let other_node = Arc::new(Broker::new(config, store, w.kms.clone(), clock.clone()));
    let other = app(AppState::new(other_node), DEFAULT_BODY_LIMIT);

    let (status, issued) =
        call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(json!({ "kind": "service", "all_tenants": true, "expires_in_days": 1 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().expect("token").to_string();
    let id = issued["info"]["id"].as_str().expect("id").to_string();
    assert!(token.starts_with("byok_svc_") && issued["info"]["expires_at"].is_string(), "{issued}");
    let encrypt = json!({ "plaintext": "aGk=", "context": "r" });
    assert_eq!(call(&other, Some(&token), "POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone())).await.0, StatusCode::OK);

    // Listed without values.
    let (_, list) = call(r, Some(OPERATOR), "GET", "/v1/tokens", None).await;
    assert!(list.as_array().expect("list").iter().any(|t| t["id"] == id.as_str()), "{list}");
    assert!(!list.to_string().contains(&token), "a value is never listed");

    // Expiry: a day later the other node refuses it.
    clock.advance(time::Duration::days(1));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(call(&other, Some(&token), "POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone())).await.0, StatusCode::UNAUTHORIZED);

    // Revocation: at once on the revoking node, within the cache bound on the other.
    let (_, fresh) = call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(json!({ "kind": "service", "all_tenants": true }))).await;
    let fresh_token = fresh["token"].as_str().expect("token").to_string();
    let fresh_id = fresh["info"]["id"].as_str().expect("id").to_string();
    assert_eq!(call(&other, Some(&fresh_token), "POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone())).await.0, StatusCode::OK);
    assert_eq!(call(r, Some(OPERATOR), "DELETE", &format!("/v1/tokens/{fresh_id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(r, Some(&fresh_token), "POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone())).await.0, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        call(&other, Some(&fresh_token), "POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(r, Some(OPERATOR), "DELETE", &format!("/v1/tokens/{fresh_id}"), None).await.0, StatusCode::NOT_FOUND);

    // A tenant admin token reissued: the old one stops, the new one reads its tenant only.
    let (status, reissued) =
        call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(json!({ "kind": "tenant_admin", "tenant": "acme", "replace": true }))).await;
    assert_eq!(status, StatusCode::CREATED, "{reissued}");
    let new_admin = reissued["token"].as_str().expect("token");
    assert_eq!(call(r, Some(&w.acme_admin), "GET", "/v1/tenants/acme", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(r, Some(new_admin), "GET", "/v1/tenants/acme", None).await.0, StatusCode::OK);
    assert_eq!(call(r, Some(new_admin), "GET", "/v1/tenants/beta", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(r, Some(&w.beta_admin), "GET", "/v1/tenants/beta", None).await.0, StatusCode::OK, "beta's admin untouched");

    // Bad requests.
    for body in [
        json!({ "kind": "tenant_admin" }),
        json!({ "kind": "service", "tenant": "acme" }),
        json!({ "kind": "service", "all_tenants": true, "expires_in_days": 0 }),
        // Every tenant's data only when asked for explicitly; a list or everyone, not both.
        json!({ "kind": "service" }),
        json!({ "kind": "service", "tenants": [] }),
        json!({ "kind": "service", "tenants": ["acme"], "all_tenants": true }),
        json!({ "kind": "operator", "tenants": ["acme"] }),
        json!({ "kind": "tenant_admin", "tenant": "acme", "all_tenants": true }),
        json!({ "kind": "root" }),
    ] {
        let (status, answer) = call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let (status, _) = call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(json!({ "kind": "tenant_admin", "tenant": "ghost" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(json!({ "kind": "service", "tenants": ["acme", "ghost"] }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "every named tenant exists");
}

/// A service token limited to some tenants reaches their data and no one else's, on every
/// data-plane route, single and batch, JSON and binary framing alike; it is listed with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_reaches_its_tenants_only() {
    let w = world().await;
    let r = &w.router;
    let (status, issued) =
        call(r, Some(OPERATOR), "POST", "/v1/tokens", Some(json!({ "kind": "service", "tenants": ["acme", "acme"] }))).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["info"]["tenants"], json!(["acme"]), "{issued}");
    let token = issued["token"].as_str().expect("token").to_string();
    let record = |tenant: &str| {
        let broker = w.broker.clone();
        let tenant: byok_domain::TenantId = tenant.parse().expect("id");
        async move { base64::engine::general_purpose::STANDARD.encode(broker.encrypt(&tenant, b"r1", b"hello").await.expect("encrypt")) }
    };
    use base64::Engine;
    for tenant in ["acme", "beta"] {
        let sealed = record(tenant).await;
        let encrypt = json!({ "plaintext": "aGk=", "context": "r1" });
        let decrypt = json!({ "ciphertext": sealed, "context": "r1" });
        let want = if tenant == "acme" { StatusCode::OK } else { StatusCode::FORBIDDEN };
        for (op, body) in [("encrypt", &encrypt), ("decrypt", &decrypt), ("rewrap", &decrypt)] {
            let path = format!("/v1/tenants/{tenant}/{op}");
            let (status, answer) = call(r, Some(&token), "POST", &path, Some(body.clone())).await;
            assert_eq!(status, want, "{path}: {answer}");
            let batch = json!({ "items": [body.clone()] });
            let (status, answer) = call(r, Some(&token), "POST", &format!("{path}/batch"), Some(batch)).await;
            assert_eq!(status, want, "{path}/batch: {answer}");
            // Raw bytes and the binary framing: refused before the body is read.
            let raw = axum::http::Request::post(&path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/octet-stream")
                .header("x-byok-context", "r1")
                .body(axum::body::Body::from(vec![1u8, 2, 3]))
                .expect("request");
            let (status, _) = crate::raw(r, raw).await;
            if tenant == "beta" {
                assert_eq!(status, StatusCode::FORBIDDEN, "{path} raw");
            }
            let framed = axum::http::Request::post(format!("{path}/batch"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/x-byok-batch")
                .body(axum::body::Body::from(vec![0u8; 3]))
                .expect("request");
            let (status, _) = crate::raw(r, framed).await;
            if tenant == "beta" {
                assert_eq!(status, StatusCode::FORBIDDEN, "{path}/batch framed");
            }
        }
    }
    let (_, list) = call(r, Some(OPERATOR), "GET", "/v1/tokens", None).await;
    let listed = list.as_array().expect("list").iter().find(|t| t["id"] == issued["info"]["id"]).expect("listed").clone();
    assert_eq!((listed["tenants"].clone(), listed.get("all_tenants").cloned()), (json!(["acme"]), None), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_configured_token_retires_the_old_one() {
    let w = world().await;
    w.broker.register_token("byok_op_second", byok_store::TokenScope::Operator).await.expect("register");
    assert_eq!(call(&w.router, Some(OPERATOR), "GET", "/v1/tenants", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&w.router, Some("byok_op_second"), "GET", "/v1/tenants", None).await.0, StatusCode::OK);
    assert_eq!(
        call(&w.router, Some(crate::SERVICE), "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": "" }))).await.0,
        StatusCode::OK,
        "the service token is another scope"
    );
}
