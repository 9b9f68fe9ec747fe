//! Batches: answered item by item in order; a bad item fails alone with its own code; what is
//! about the tenant or the caller fails the request; empty and oversized batches are refused.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};
use serde_json::{Value, json};

use crate::{OPERATOR, SERVICE, call, world};

fn code(result: &Value) -> Option<&str> {
    result["error"]["code"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_answered_item_by_item() {
    let w = world().await;
    let r = &w.router;
    let (hello, world_) = (STANDARD.encode(b"hello"), STANDARD.encode(b"world"));
    let items = json!({ "items": [
        { "plaintext": hello, "context": "r1" },
        { "plaintext": "%%% not base64", "context": "r9" },
        { "plaintext": world_, "context": "r2" },
    ] });
    let (status, sealed) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/encrypt/batch", Some(items)).await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    let results = sealed["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(sealed["failed"], 1);
    assert_eq!(code(&results[1]), Some("invalid_request"), "{sealed}");
    let (c1, c2) = (results[0]["ciphertext"].as_str().expect("c1"), results[2]["ciphertext"].as_str().expect("c2"));

    // Another tenant's record, a tampered one, and the wrong context fail alone.
    let beta_record = STANDARD.encode(w.broker.encrypt(&"beta".parse().expect("id"), b"r1", b"beta's").await.expect("beta"));
    let mut tampered = STANDARD.decode(c1).expect("b64");
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let items = json!({ "items": [
        { "ciphertext": c1, "context": "r1" },
        { "ciphertext": c1, "context": "r2" },
        { "ciphertext": STANDARD.encode(&tampered), "context": "r1" },
        { "ciphertext": beta_record, "context": "r1" },
        { "ciphertext": c2, "context": "r2" },
    ] });
    let (status, opened) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt/batch", Some(items)).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    let results = opened["results"].as_array().expect("results");
    assert_eq!(results[0]["plaintext"], STANDARD.encode(b"hello"));
    assert_eq!(results[4]["plaintext"], STANDARD.encode(b"world"));
    for (i, r) in results.iter().enumerate().take(4).skip(1) {
        assert_eq!(code(r), Some("invalid_ciphertext"), "item {i}: {opened}");
        assert!(r.get("plaintext").is_none());
    }
    assert_eq!(opened["failed"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_refused_whole_when_the_request_is_wrong() {
    let w = world().await;
    let r = &w.router;
    let one = json!({ "items": [{ "plaintext": "aGk=", "context": "r1" }] });
    let enc = "/v1/tenants/acme/encrypt/batch";
    let (status, body) = call(r, Some(SERVICE), "POST", enc, Some(json!({ "items": [] }))).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("empty_batch")), "{body}");
    for bad in [json!({}), json!({ "items": {} }), json!({ "items": [], "extra": 1 }), json!([{ "plaintext": "aGk=" }])] {
        let (status, body) = call(r, Some(SERVICE), "POST", enc, Some(bad.clone())).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_request")), "{bad}: {body}");
    }
    let many = json!({ "items": vec![json!({ "plaintext": "aGk=" }); byok_server::DEFAULT_BATCH_ITEMS + 1] });
    let (status, body) = call(r, Some(SERVICE), "POST", enc, Some(many)).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (413, Some("batch_too_large")), "{body}");
    assert!(body["message"].as_str().expect("message").contains("at most 1000 items"), "{body}");
    // A configured limit.
    let small = app(AppState::new(w.broker.clone()).with_max_batch_items(2), DEFAULT_BODY_LIMIT);
    let three = json!({ "items": vec![json!({ "plaintext": "aGk=" }); 3] });
    assert_eq!(call(&small, Some(SERVICE), "POST", enc, Some(three)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let two = json!({ "items": vec![json!({ "plaintext": "aGk=" }); 2] });
    assert_eq!(call(&small, Some(SERVICE), "POST", enc, Some(two)).await.0, StatusCode::OK);

    // The caller and the tenant: as for a single call.
    assert_eq!(call(r, None, "POST", enc, Some(one.clone())).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(r, Some(OPERATOR), "POST", enc, Some(one.clone())).await.0, StatusCode::FORBIDDEN);
    let (status, body) = call(r, Some(SERVICE), "POST", "/v1/tenants/ghost/encrypt/batch", Some(one.clone())).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (404, Some("unknown_tenant")), "{body}");
    w.broker.revoke(&"acme".parse().expect("id")).await.expect("revoke");
    let (status, body) = call(r, Some(SERVICE), "POST", enc, Some(one)).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (403, Some("tenant_keys_revoked")), "{body}");
}

/// The served document is exact for this deployment: its batch limit and its location codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_names_this_deployments_limits() {
    let w = world().await;
    let small = app(AppState::new(w.broker.clone()).with_max_batch_items(7), DEFAULT_BODY_LIMIT);
    let (status, doc) = call(&small, None, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/v1/tenants/{id}/encrypt/batch", "/v1/tenants/{id}/decrypt/batch", "/v1/tenants/{id}/rewrap/batch"] {
        let items = &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["items"];
        assert_eq!(items["maxItems"], 7, "{path}");
    }
    let codes = &doc["components"]["schemas"]["AddTenantRequest"]["properties"]["location"]["enum"];
    assert_eq!(codes, &json!(["au", "ca", "de", "eu", "in", "jp", "kr", "sg", "us"]));
}

/// One binary-framed batch request: status, `X-Byok-Failed`, and the body.
async fn frames_call(router: &axum::Router, path: &str, body: Vec<u8>) -> (StatusCode, Option<String>, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", byok_server::routes::frames::MEDIA_TYPE)
        .header("authorization", format!("Bearer {SERVICE}"))
        .body(axum::body::Body::from(body))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let failed = response.headers().get("x-byok-failed").map(|v| v.to_str().expect("ascii").to_string());
    (status, failed, response.into_body().collect().await.expect("body").to_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_batches_carry_raw_bytes_item_by_item() {
    use byok_server::routes::frames;
    let w = world().await;
    let r = &w.router;
    let records = [&b"\x00\xffraw bytes"[..], b"", b"third"];
    let body = frames::encode([(&b"r1"[..], records[0]), (b"r2", records[1]), (b"r3", records[2])]);
    let (status, failed, out) = frames_call(r, "/v1/tenants/acme/encrypt/batch", body).await;
    assert_eq!((status, failed.as_deref()), (StatusCode::OK, Some("0")));
    let sealed: Vec<Vec<u8>> = frames::decode(&out).expect("frames").into_iter().map(|r| r.expect("sealed")).collect();
    assert_eq!(sealed.len(), 3);

    // Opened item by item; the wrong context and a tampered record fail alone.
    let mut tampered = sealed[2].clone();
    tampered[40] ^= 1;
    let body = frames::encode([(&b"r1"[..], &sealed[0][..]), (b"r9", &sealed[1][..]), (b"r3", &tampered[..]), (b"r2", &sealed[1][..])]);
    let (status, failed, out) = frames_call(r, "/v1/tenants/acme/decrypt/batch", body).await;
    assert_eq!((status, failed.as_deref()), (StatusCode::OK, Some("2")));
    let opened = frames::decode(&out).expect("frames");
    assert_eq!(opened[0].as_deref(), Ok(records[0]));
    assert_eq!(opened[1].as_ref().expect_err("wrong context")["code"], "invalid_ciphertext");
    assert_eq!(opened[2].as_ref().expect_err("tampered")["code"], "invalid_ciphertext");
    assert_eq!(opened[3].as_deref(), Ok(records[1]));

    // Rewrap in the same framing.
    let body = frames::encode([(&b"r3"[..], &sealed[2][..])]);
    let (status, _, out) = frames_call(r, "/v1/tenants/acme/rewrap/batch", body).await;
    assert_eq!(status, StatusCode::OK);
    let moved = frames::decode(&out).expect("frames").remove(0).expect("rewrapped");
    assert_ne!(moved, sealed[2]);
    assert_eq!(w.broker.decrypt(&"acme".parse().expect("id"), b"r3", &moved).await.expect("opens").as_slice(), records[2]);

    // Malformed, empty and oversized bodies are refused whole, in the API's error body.
    let good = frames::encode([(&b"r1"[..], &b"x"[..])]);
    for (body, want, code) in [
        (good[..good.len() - 1].to_vec(), 400, "invalid_request"),
        (Vec::new(), 400, "empty_batch"),
        (frames::encode(vec![(&b""[..], &b"x"[..]); byok_server::DEFAULT_BATCH_ITEMS + 1]), 413, "batch_too_large"),
    ] {
        let (status, _, out) = frames_call(r, "/v1/tenants/acme/encrypt/batch", body).await;
        let error: Value = serde_json::from_slice(&out).expect("an error body");
        assert_eq!((status.as_u16(), error["error"].as_str()), (want, Some(code)), "{error}");
    }
    // What is about the tenant fails the request, as with JSON.
    let (status, _, _) = frames_call(r, "/v1/tenants/ghost/encrypt/batch", good).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
