//! Limits on every caller: each identity its own rate (429 with `Retry-After` over it, another
//! identity unaffected), a request timeout, and a cap on requests in flight that sheds at once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use byok_server::limits::Limits;
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{OPERATOR, SERVICE, world};

fn encrypt() -> Value {
    json!({ "plaintext": "aGVsbG8=", "context": "r1" })
}

async fn send(router: &axum::Router, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value, Option<String>) {
    let mut request = Request::builder().method(method).uri(path).header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default()).expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn each_identity_has_its_own_rate() {
    let w = world().await;
    let router = app(AppState::new(w.broker.clone()).with_limits(Limits::new(Some(1), Duration::from_secs(30), 64)), DEFAULT_BODY_LIMIT);
    // One a second, burst one: of five calls at once, the first passes and the rest are refused.
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(send(&router, SERVICE, "POST", "/v1/tenants/acme/encrypt", Some(encrypt())).await);
    }
    assert_eq!(answers[0].0, 200, "{:?}", answers[0]);
    let limited: Vec<_> = answers.iter().filter(|(status, _, _)| *status == 429).collect();
    assert!(!limited.is_empty(), "no call was limited: {answers:?}");
    for (_, body, retry) in &limited {
        assert_eq!(body["error"], "rate_limited", "{body}");
        assert!(retry.as_deref().and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| s >= 1), "Retry-After: {retry:?}");
    }
    // Another identity is not slowed by the first one's excess.
    assert_eq!(send(&router, OPERATOR, "GET", "/v1/tenants", None).await.0, 200);
    assert_eq!(send(&router, &w.acme_admin, "GET", "/v1/tenants/acme", None).await.0, 200);
    // A wrong token is refused as before, not counted against anyone.
    assert_eq!(send(&router, "byok_svc_wrong", "POST", "/v1/tenants/acme/encrypt", Some(encrypt())).await.0, 401);
    // Unlimited by default.
    let open = app(AppState::new(w.broker.clone()), DEFAULT_BODY_LIMIT);
    for _ in 0..20 {
        assert_eq!(send(&open, SERVICE, "POST", "/v1/tenants/acme/encrypt", Some(encrypt())).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_and_a_full_node_sheds_at_once() {
    let w = world().await;
    // The first encrypt of a tenant unwraps its key; the test double makes that take 3 s.
    w.kms.delay(Some(Duration::from_secs(3)));
    let timing_out =
        app(AppState::new(w.broker.clone()).with_limits(Limits::new(None, Duration::from_millis(200), 64)), DEFAULT_BODY_LIMIT);
    let (status, body, retry) = send(&timing_out, SERVICE, "POST", "/v1/tenants/acme/encrypt", Some(encrypt())).await;
    assert_eq!((status, body["error"].as_str(), retry.as_deref()), (503, Some("request_timeout"), Some("1")), "{body}");

    // One request in flight at most: while one waits on KMS, the next is shed with 503.
    let full = app(AppState::new(w.broker.clone()).with_limits(Limits::new(None, Duration::from_secs(30), 1)), DEFAULT_BODY_LIMIT);
    let before = w.kms.unwraps.load(Ordering::SeqCst);
    let slow = tokio::spawn({
        let full = full.clone();
        async move { send(&full, SERVICE, "POST", "/v1/tenants/beta/encrypt", Some(encrypt())).await }
    });
    while w.kms.unwraps.load(Ordering::SeqCst) == before {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body, retry) = send(&full, OPERATOR, "GET", "/v1/tenants", None).await;
    assert_eq!((status, body["error"].as_str(), retry.as_deref()), (503, Some("overloaded"), Some("1")), "{body}");
    assert_eq!(slow.await.expect("slow").0, 200, "the request in flight finishes");
    assert_eq!(send(&full, OPERATOR, "GET", "/v1/tenants", None).await.0, 200, "room again once it is done");
}

#[tokio::test]
async fn control_routes_take_small_bodies_and_the_data_plane_takes_records() {
    let w = world().await;
    let big = "x".repeat(100 * 1024);
    // 100 KiB to a control route: refused before it is read, whoever asks.
    let (status, body, _) =
        send(&w.router, OPERATOR, "POST", "/v1/tenants", Some(json!({ "id": big, "location": "us", "account_id": "1" }))).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")), "{body}");
    let (status, _, _) = send(&w.router, &w.acme_admin, "POST", "/v1/tickets/1/comments", Some(json!({ "body": big }))).await;
    assert_eq!(status, 413);
    // A 100 KiB record on the data plane is fine.
    let record = json!({ "plaintext": base64_of(&big), "context": "r1" });
    assert_eq!(send(&w.router, SERVICE, "POST", "/v1/tenants/acme/encrypt", Some(record)).await.0, 200);
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn every_request_has_an_id_echoed_back() {
    let w = world().await;
    let call = |id: Option<&str>| {
        let mut request = Request::builder().uri("/livez");
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        w.router.clone().oneshot(request.body(Body::empty()).expect("request"))
    };
    let fresh = call(None).await.expect("response");
    let id = fresh.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an id").to_string();
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let other = call(None).await.expect("response");
    assert_ne!(other.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some(id.as_str()), "one per request");
    // The caller's own id is kept, when it is a sane one.
    let given = call(Some("trace-7f3a-01")).await.expect("response");
    assert_eq!(given.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-7f3a-01"));
    let long = "x".repeat(200);
    let replaced = call(Some(&long)).await.expect("response");
    assert_eq!(replaced.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::len), Some(16), "too long: replaced");
}
