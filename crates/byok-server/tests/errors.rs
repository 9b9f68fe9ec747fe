//! Every broker error maps to one status and a stable code; internal failures say nothing of
//! their cause to the client; bad input gets the API's error body.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_broker::BrokerError;
use byok_domain::{InvalidTransition, TenantId};
use byok_kms::{AccessError, Denial, Fault};
use byok_server::error::ApiError;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{SERVICE, call, raw, world};

async fn answer(e: BrokerError) -> (StatusCode, Value) {
    let response = ApiError::from(e).into_response();
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test]
async fn every_broker_error_has_its_status_and_code() {
    let id: TenantId = "acme".parse().expect("id");
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
    let transient = AccessError::Transient { fault: Fault::Throttled, region: None, message: "slow down".into() };
    let denied = AccessError::Denied { denial: Denial::KeyDisabled, region: None, message: "disabled".into() };
    let cases: Vec<(BrokerError, u16, &str)> = vec![
        (BrokerError::UnknownTenant(id.clone()), 404, "unknown_tenant"),
        (BrokerError::UnknownTicket(7), 404, "unknown_ticket"),
        (BrokerError::NotHeld(id.clone()), 404, "not_held"),
        (BrokerError::UnknownToken("abc".into()), 404, "unknown_token"),
        (BrokerError::TenantExists(id.clone()), 409, "tenant_exists"),
        (BrokerError::NotActive { tenant: id.clone(), state: "onboarding" }, 409, "tenant_not_active"),
        (BrokerError::Revoked { tenant: id.clone(), deadline: at }, 403, "tenant_keys_revoked"),
        (BrokerError::Destroyed(id.clone()), 410, "tenant_destroyed"),
        (BrokerError::KeyServiceUnavailable(transient), 503, "key_service_unavailable"),
        (BrokerError::KeyAccessDenied(denied.clone()), 403, "key_access_denied"),
        (BrokerError::KeyAccess(denied), 500, "internal"),
        (BrokerError::NoWrappedKey, 500, "internal"),
        (BrokerError::Envelope(byok_envelope::EnvelopeError::Forged), 400, "invalid_ciphertext"),
        (BrokerError::InvalidId(byok_domain::IdError::TenantId("Bad!".into())), 400, "invalid_request"),
        (BrokerError::Invalid("no".into()), 400, "invalid_request"),
        (BrokerError::Transition { tenant: id.clone(), source: InvalidTransition::AfterDeadline { deadline: at } }, 409, "invalid_state"),
        (BrokerError::Conflict, 409, "conflict"),
        (BrokerError::AuditMismatch { through: 9 }, 409, "audit_mismatch"),
        (BrokerError::GenerationRetired { tenant: id.clone(), generation: 1, min: 2 }, 410, "generation_retired"),
        (BrokerError::KeysFrozen { tenant: id.clone(), state: "revoked" }, 409, "invalid_state"),
        (
            BrokerError::Generation(byok_domain::GenerationError::OutOfRange { asked: 9, kept_from: 1, current: 2 }),
            409,
            "invalid_generation",
        ),
        (BrokerError::RekeyRefused { region: "us-west-2".into(), reason: "disabled".into() }, 422, "rekey_refused"),
        (BrokerError::MigrationRefused { region: "us-west-2".into(), reason: "disabled".into() }, 422, "migration_refused"),
        (BrokerError::StoreUnavailable(byok_store::StoreError::Database(sqlx_pool_timed_out())), 503, "store_unavailable"),
        (
            BrokerError::Store(byok_store::StoreError::Corrupt { what: "tenant acme".into(), detail: "secret detail".into() }),
            500,
            "internal",
        ),
        (BrokerError::Rng, 500, "internal"),
    ];
    for (error, status, code) in cases {
        let text = error.to_string();
        let (got, body) = answer(error).await;
        assert_eq!((got.as_u16(), body["error"].as_str()), (status, Some(code)), "{text}");
        if got == StatusCode::INTERNAL_SERVER_ERROR {
            assert_eq!(body["message"], "the broker failed; the operator's log has the detail", "no detail leaks: {body}");
        }
        if code == "tenant_keys_revoked" {
            assert_eq!(body["deadline"], "2027-01-15T08:00:00Z", "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_failures_through_the_router() {
    let w = world().await;
    let r = &w.router;
    let enc = "/v1/tenants/acme/encrypt";
    for (body, code) in [
        (json!({ "plaintext": "%%%" }), "invalid_request"),
        (json!({ "plaintext": "aGk=", "extra": 1 }), "invalid_request"),
        (json!({ "context": "r" }), "invalid_request"),
    ] {
        let (status, answer) = call(r, Some(SERVICE), "POST", enc, Some(body)).await;
        assert_eq!((status.as_u16(), answer["error"].as_str()), (400, Some(code)), "{answer}");
    }
    let not_json = Request::post(enc).header("authorization", format!("Bearer {SERVICE}")).body(Body::from("{not json")).expect("req");
    assert_eq!(raw(r, not_json).await.0, StatusCode::BAD_REQUEST);
    let huge = Request::post(enc)
        .header("authorization", format!("Bearer {SERVICE}"))
        .header("content-type", "application/octet-stream")
        .body(Body::from(vec![0u8; byok_server::DEFAULT_BODY_LIMIT + 1]))
        .expect("req");
    let (status, answer) = raw(r, huge).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (413, Some("payload_too_large")), "{answer}");
    // Media types match whole, case-insensitively; any other is 415 with the ones that work.
    for (path, content_type, want) in [
        ("/v1/tenants/acme/encrypt/batch", "application/x-byok-batchFOO", 415),
        ("/v1/tenants/acme/encrypt/batch", "application/x-byok-batch-v2", 415),
        ("/v1/tenants/acme/encrypt/batch", "application/octet-stream", 415),
        ("/v1/tenants/acme/encrypt/batch", "APPLICATION/X-BYOK-BATCH; charset=binary", 400),
        ("/v1/tenants/acme/encrypt", "application/x-byok-batch", 415),
        ("/v1/tenants/acme/encrypt", "text/plain", 415),
        ("/v1/tenants/acme/encrypt", "application/octet-streamy", 415),
        ("/v1/tenants/acme/encrypt", "Application/Octet-Stream", 200),
    ] {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {SERVICE}"))
            .header("content-type", content_type)
            .body(Body::from(vec![1u8, 2, 3]))
            .expect("req");
        let (status, answer) = raw(r, request).await;
        assert_eq!(status.as_u16(), want, "{content_type} on {path}: {answer}");
        if want == 415 {
            assert_eq!(answer["error"], "unsupported_media_type", "{answer}");
        }
    }
    // Scope before body: on operator routes anyone else gets 403, never a 400 that describes
    // the route's schema, whatever the body.
    for (method, path) in [
        ("POST", "/v1/tenants"),
        ("PUT", "/v1/tenants/acme/min-decryption-generation"),
        ("POST", "/v1/tenants/acme/rekey"),
        ("POST", "/v1/tenants/acme/migrate"),
        ("POST", "/v1/tokens"),
        ("POST", "/v1/audit/prune"),
    ] {
        for token in [SERVICE, w.acme_admin.as_str()] {
            let (status, answer) = call(r, Some(token), method, path, Some(json!({ "bogus": [1] }))).await;
            assert_eq!((status.as_u16(), answer["error"].as_str()), (403, Some("forbidden")), "{method} {path}: {answer}");
        }
    }
    let (status, answer) = call(r, Some(SERVICE), "POST", "/v1/tenants/Not%20An%20Id/encrypt", Some(json!({ "plaintext": "" }))).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (400, Some("invalid_request")), "{answer}");
    let (status, answer) = call(r, Some(SERVICE), "POST", "/v1/tenants/ghost/encrypt", Some(json!({ "plaintext": "" }))).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (404, Some("unknown_tenant")), "{answer}");
    let (status, answer) = call(r, Some(SERVICE), "GET", "/v1/nowhere", None).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (404, Some("not_found")), "{answer}");
    // A tampered record.
    let record = w.broker.encrypt(&"acme".parse().expect("id"), b"r1", b"hello").await.expect("encrypt");
    let mut tampered = record.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, answer) = call(
        r,
        Some(SERVICE),
        "POST",
        "/v1/tenants/acme/decrypt",
        Some(json!({ "ciphertext": STANDARD.encode(&tampered), "context": "r1" })),
    )
    .await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (400, Some("invalid_ciphertext")), "{answer}");
    // Every region of a cold tenant throttled: 503, never a revocation.
    let beta: TenantId = "beta".parse().expect("id");
    w.kms.fail(None, None);
    for region in ["us-east-1", "us-west-2"] {
        let region: byok_domain::Region = region.parse().expect("region");
        let fault = AccessError::Transient { fault: Fault::Throttled, region: Some(region.clone()), message: "slow down".into() };
        w.kms.fail(Some(region), Some(fault));
    }
    let (status, answer) = call(r, Some(SERVICE), "POST", "/v1/tenants/beta/encrypt", Some(json!({ "plaintext": "" }))).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (503, Some("key_service_unavailable")), "{answer}");
    assert!(w.broker.tenant(&beta).await.expect("t").state.serves_data());
    // A comment that is empty or too long.
    w.broker.revoke(&beta).await.expect("revoke");
    for body in ["   ", &"x".repeat(16_385)] {
        let (status, _) = call(r, Some(&w.beta_admin), "POST", "/v1/tickets/1/comments", Some(json!({ "body": body }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, answer) = call(r, Some(SERVICE), "POST", "/v1/tenants/beta/encrypt", Some(json!({ "plaintext": "" }))).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (403, Some("tenant_keys_revoked")), "{answer}");
    assert!(answer["deadline"].is_string(), "{answer}");
}

/// The codes the server answers with, each declared in the OpenAPI document's `Error` schema.
#[test]
fn every_error_code_is_in_the_openapi_document() {
    let doc: Value = serde_json::from_str(byok_server::routes::ops::OPENAPI).expect("openapi.json");
    let declared: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in [
        "unauthorized",
        "forbidden",
        "not_found",
        "invalid_request",
        "payload_too_large",
        "unknown_tenant",
        "unknown_ticket",
        "tenant_exists",
        "tenant_not_active",
        "tenant_keys_revoked",
        "tenant_destroyed",
        "key_service_unavailable",
        "key_access_denied",
        "invalid_ciphertext",
        "invalid_state",
        "not_held",
        "unknown_token",
        "store_unavailable",
        "conflict",
        "internal",
        "empty_batch",
        "batch_too_large",
        "generation_retired",
        "invalid_generation",
        "rekey_refused",
        "migration_refused",
        "audit_mismatch",
        "rate_limited",
        "overloaded",
        "request_timeout",
        "unknown_identity",
        "sign_in_refused",
    ] {
        assert!(declared.contains(&code), "{code} is not declared in openapi.json");
    }
}

/// The document's `TenantStatus` and `Error` schemas name every field the API types serialize.
#[test]
fn the_openapi_schemas_hold_the_api_types_fields() {
    let doc: Value = serde_json::from_str(byok_server::routes::ops::OPENAPI).expect("openapi.json");
    let schemas = &doc["components"]["schemas"];
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
    let status = byok_api::TenantStatus {
        id: "acme".into(),
        location: "us".into(),
        state: byok_domain::TenantState::Revoked { since: at, deadline: at },
        account_id: "111122223333".into(),
        mode: byok_api::KeyModeName::Cmk,
        context_tag: Some("Acme01".into()),
        role_arn: Some("arn:aws:iam::111122223333:role/byok-key-management".into()),
        legacy_trust: false,
        regions: vec![byok_api::RegionStatus { region: "us-east-1".into(), key_arn: "arn".into() }],
        keys: byok_domain::KeyGenerations { current: 3, min_decryption: 2, kept_from: 1, rotated_at: at },
        version: 3,
        created_at: "2027-01-15T08:00:00Z".into(),
        last_check: Some(byok_api::LastCheck {
            at,
            purpose: "byok-probe".into(),
            regions: vec![byok_api::RegionResult {
                region: "us-east-1".into(),
                access: byok_api::RegionAccess::Denied { denial: byok_api::DenialKind::KeyDisabled, message: "disabled".into() },
                remedy: Some("steps 9-12".into()),
                latency_ms: Some(40),
            }],
        }),
    };
    fn covered(value: &Value, schema: &Value, path: &str) {
        let Value::Object(fields) = value else { return };
        for (name, inner) in fields {
            let declared = &schema["properties"][name];
            assert!(!declared.is_null(), "{path}.{name} is not in openapi.json");
            match inner {
                Value::Object(_) => covered(inner, declared, &format!("{path}.{name}")),
                Value::Array(items) => items.iter().for_each(|i| covered(i, &declared["items"], &format!("{path}.{name}[]"))),
                _ => {}
            }
        }
    }
    covered(&serde_json::to_value(&status).expect("json"), &schemas["TenantStatus"], "TenantStatus");
    let instructions = byok_api::Instructions {
        tenant: "acme".into(),
        account_id: "111122223333".into(),
        mode: byok_api::KeyModeName::Cmk,
        context_tag: Some("Acme01".into()),
        provider_principal: "arn:aws:iam::279766244153:role/Cryptor-OSB-Provider".into(),
        role_name: Some("byok-key-management".into()),
        role_arn: Some("arn:aws:iam::111122223333:role/byok-key-management".into()),
        external_id: Some("byok-x".into()),
        alias: "alias/byok-acme".into(),
        regions: vec!["us-east-1".into()],
        trust_policy: Some(serde_json::json!({})),
        key_policy: serde_json::json!({}),
        commands: "#".into(),
        cloudformation: "#".into(),
        terraform: "#".into(),
    };
    let fields = serde_json::to_value(&instructions).expect("json");
    covered(&fields, &schemas["Instructions"], "Instructions");
    for required in schemas["Instructions"]["required"].as_array().expect("required") {
        assert!(!fields[required.as_str().expect("name")].is_null(), "Instructions.{required} is required but not always there");
    }
    let error = byok_api::ErrorBody { error: "tenant_keys_revoked".into(), message: "m".into(), deadline: Some("d".into()) };
    covered(&serde_json::to_value(&error).expect("json"), &schemas["Error"], "Error");
}

/// Every schema's webhook `events` enum is exactly the event types the broker knows.
#[test]
fn the_openapi_webhook_events_are_the_brokers() {
    let doc: Value = serde_json::from_str(byok_server::routes::ops::OPENAPI).expect("openapi.json");
    let mut enums = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if let Some(values) = schema["properties"]["events"]["items"]["enum"].as_array() {
            enums.push((name.clone(), values.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>()));
        }
    }
    assert!(!enums.is_empty(), "no webhook events enum in openapi.json");
    for (name, values) in enums {
        assert_eq!(values, byok_domain::webhook::EVENT_TYPES, "{name}.events");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_do_not_grow_the_metrics() {
    let w = world().await;
    for n in 0..5 {
        let request = Request::builder().method(format!("BREW{n}").as_str()).uri("/healthz").body(Body::empty()).expect("req");
        raw(&w.router, request).await;
    }
    let metrics = Request::get("/metrics").body(Body::empty()).expect("req");
    let response = tower::ServiceExt::oneshot(w.router.clone(), metrics).await.expect("metrics");
    let text = String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf-8");
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

/// What an operator alerts on, in Prometheus's names and units: tenants by state, the nearest
/// deadline, which node leads, how long passes take and when one last succeeded, the build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_an_operator_alerts_on() {
    let w = world().await;
    let beta: byok_domain::TenantId = "beta".parse().expect("id");
    let revoked = w.broker.revoke(&beta).await.expect("revoke");
    let byok_domain::TenantState::Revoked { deadline, .. } = revoked.state else { panic!("revoked: {revoked:?}") };
    byok_broker::monitor::run_once(&w.broker).await;
    let metrics = Request::get("/metrics").body(Body::empty()).expect("req");
    let response = tower::ServiceExt::oneshot(w.router.clone(), metrics).await.expect("metrics");
    let text = String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf-8");
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in {text}"))
    };
    assert_eq!(value("byok_tenants{state=\"active\"}"), 1.0);
    assert_eq!(value("byok_tenants{state=\"revoked\"}"), 1.0);
    assert_eq!(value("byok_tenants{state=\"destroyed\"}"), 0.0);
    assert_eq!(value("byok_next_deadline_timestamp_seconds "), deadline.unix_timestamp() as f64);
    assert_eq!(value("byok_leader "), 1.0, "one node alone leads");
    assert_eq!(value("byok_monitor_pass_duration_seconds_count "), 1.0);
    assert!(value("byok_monitor_last_success_timestamp_seconds ") > 1_700_000_000.0, "{text}");
    assert_eq!(value(&format!("byok_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), 1.0);
    assert!(!text.contains("byok_monitor_pass_milliseconds"), "the duration is a histogram in seconds now");
    // The standard process metrics, as every Prometheus client library names them.
    assert!(value("process_cpu_seconds_total ") > 0.0, "{text}");
    assert!(value("process_resident_memory_bytes ") > 1_000_000.0, "{text}");
    assert!(value("process_open_fds ") >= 3.0 && value("process_max_fds ") >= value("process_open_fds "), "{text}");
    assert!(value("process_start_time_seconds ") > 1_700_000_000.0, "{text}");
    assert!(text.contains("# TYPE process_cpu_seconds counter") && text.contains("# UNIT process_resident_memory_bytes bytes"), "{text}");
}

/// Liveness and readiness for a load balancer: live always; ready while the store answers and
/// the node is not draining before a shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_ready_until_it_drains() {
    let w = world().await;
    let (status, live) = call(&w.router, None, "GET", "/livez", None).await;
    assert_eq!((status, live["status"].as_str()), (StatusCode::OK, Some("live")));
    let (status, ready) = call(&w.router, None, "GET", "/readyz", None).await;
    assert_eq!((status, ready["status"].as_str()), (StatusCode::OK, Some("ready")), "{ready}");
    // The router shares the state's drain flag.
    let state = byok_server::AppState::new(w.broker.clone());
    let draining = state.draining.clone();
    let router = byok_server::app(state, byok_server::DEFAULT_BODY_LIMIT);
    draining.store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, ready) = call(&router, None, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready["reason"].as_str().is_some_and(|r| r.contains("draining")), "{ready}");
    assert_eq!(call(&router, None, "GET", "/livez", None).await.0, StatusCode::OK, "still live while draining");
}

fn sqlx_pool_timed_out() -> sqlx::Error {
    sqlx::Error::PoolTimedOut
}

/// The audit export is streamed a page at a time (chunked, no length known in advance) and
/// holds every entry older than the cut, in order, across page boundaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_export_streams_every_entry_in_order_across_pages() {
    use byok_store::{AuditEntry, AuditStore};
    let w = world().await;
    let extra = 2 * byok_broker::audit::EXPORT_PAGE as usize + 345;
    let seal = |seq: i64, prev: &str| AuditEntry {
        seq,
        tenant: Some("acme".into()),
        at: 1_800_000_000,
        kind: "key_use".into(),
        reason: "bulk".into(),
        detail: "{}".into(),
        prev_hash: prev.to_string(),
        hash: format!("{seq:064x}"),
    };
    let seals: Vec<byok_store::Seal<'_>> = (0..extra).map(|_| &seal as byok_store::Seal<'_>).collect();
    w.store.append_audit_many(&seals).await.expect("append");
    let all = w.broker.audit_log(None, 0, 10_000).await.expect("audit").len();
    assert!(all > extra, "{all}");

    let request = Request::get("/v1/audit/export?before=2030-01-01T00:00:00Z")
        .header("authorization", format!("Bearer {}", crate::OPERATOR))
        .body(Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(w.router.clone(), request).await.expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-length").is_none(), "streamed, not built whole: {:?}", response.headers());
    let mut body = response.into_body();
    let (mut frames, mut text) = (0, Vec::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            frames += 1;
            text.extend_from_slice(&data);
        }
    }
    let lines: Vec<Value> =
        String::from_utf8(text).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), all, "every entry");
    assert!(frames >= 3, "one chunk a page: {frames}");
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "in order, none missing");
}
