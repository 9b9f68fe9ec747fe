//! Every route × every kind of caller: no scope reaches another tenant's anything, and another
//! tenant's resource looks exactly like a missing one.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::{OPERATOR, SERVICE, call, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_scope_by_route_matrix() {
    let w = world().await;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    let beta: byok_domain::TenantId = "beta".parse().expect("id");
    let record = w.broker.encrypt(&acme, b"r1", b"hello").await.expect("encrypt");
    // beta is revoked: it has a ticket (#1), which is beta's and nobody else's but the operator's.
    w.broker.revoke(&beta).await.expect("revoke");
    let ticket = w.broker.tickets(Some(&beta)).await.expect("tickets")[0].id;
    assert_eq!(ticket, 1);

    let encrypt = json!({ "plaintext": STANDARD.encode("x"), "context": "r2" });
    let decrypt = json!({ "ciphertext": STANDARD.encode(&record), "context": "r1" });
    let comment = json!({ "body": "a question" });
    // Columns: no token, a wrong token, operator, service, acme's admin, beta's admin.
    let callers = [None, Some("byok_op_wrong"), Some(OPERATOR), Some(SERVICE), Some(w.acme_admin.as_str()), Some(w.beta_admin.as_str())];
    type Row = (&'static str, &'static str, Option<serde_json::Value>, [u16; 6]);
    let rows: Vec<Row> = vec![
        ("GET", "/v1/tenants", None, [401, 401, 200, 403, 403, 403]),
        ("GET", "/v1/tenants/acme", None, [401, 401, 200, 403, 200, 404]),
        ("GET", "/v1/tenants/acme/setup", None, [401, 401, 200, 403, 200, 404]),
        ("GET", "/v1/tenants/acme/audit", None, [401, 401, 200, 403, 200, 404]),
        ("GET", "/v1/tenants/acme/audit/checkpoint", None, [401, 401, 200, 403, 200, 404]),
        // The console offers the tenant's admin "Verify now" too; acme is already active.
        ("POST", "/v1/tenants/acme/verify", None, [401, 401, 409, 403, 409, 404]),
        ("POST", "/v1/tenants/acme/restore", None, [401, 401, 200, 403, 200, 404]),
        ("POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone()), [401, 401, 403, 200, 403, 403]),
        ("POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone()), [401, 401, 403, 200, 403, 403]),
        ("POST", "/v1/tenants/acme/rewrap", Some(decrypt.clone()), [401, 401, 403, 200, 403, 403]),
        ("POST", "/v1/tenants/acme/encrypt/batch", Some(json!({ "items": [encrypt.clone()] })), [401, 401, 403, 200, 403, 403]),
        ("POST", "/v1/tenants/acme/decrypt/batch", Some(json!({ "items": [decrypt.clone()] })), [401, 401, 403, 200, 403, 403]),
        ("POST", "/v1/tenants/acme/rewrap/batch", Some(json!({ "items": [decrypt.clone()] })), [401, 401, 403, 200, 403, 403]),
        ("POST", "/v1/tenants/acme/rotate", None, [401, 401, 200, 403, 403, 403]),
        ("PUT", "/v1/tenants/acme/min-decryption-generation", Some(json!({ "generation": 1 })), [401, 401, 200, 403, 403, 403]),
        ("POST", "/v1/tenants/acme/shred-retired", None, [401, 401, 200, 403, 403, 403]),
        // The test double's alias names the key the tenant already has: refused, nothing changes.
        ("POST", "/v1/tenants/acme/rekey", Some(json!({ "region": "us-west-2" })), [401, 401, 422, 403, 403, 403]),
        ("POST", "/v1/tenants/acme/migration-setup", Some(json!({ "to": "cmk", "context_tag": "Acme01" })), [401, 401, 200, 403, 403, 403]),
        // No key-policy canary in this world: a move to CMK is refused before any key use.
        ("POST", "/v1/tenants/acme/migrate", Some(json!({ "to": "cmk" })), [401, 401, 400, 403, 403, 403]),
        // acme uses the customer's keys already: adoption is for tenants on provider-held keys.
        (
            "POST",
            "/v1/tenants/acme/adoption-setup",
            Some(json!({ "to": "cmk", "account_id": "444455556666" })),
            [401, 401, 400, 403, 403, 403],
        ),
        ("POST", "/v1/tenants/acme/adopt", Some(json!({ "to": "cmk", "account_id": "444455556666" })), [401, 401, 400, 403, 403, 403]),
        ("POST", "/v1/tenants/acme/adopt/finish", None, [401, 401, 400, 403, 403, 403]),
        ("GET", "/v1/adoptions", None, [401, 401, 200, 403, 403, 403]),
        // The test double makes no KMS keys: refused before anything is stored.
        ("POST", "/v1/provider-held-tenants", Some(json!({ "id": "held", "location": "us" })), [401, 401, 400, 403, 403, 403]),
        ("POST", "/v1/tenants/beta/rotate", None, [401, 401, 409, 403, 403, 403]),
        ("GET", "/v1/audit/verify", None, [401, 401, 200, 403, 403, 403]),
        ("GET", "/v1/audit/export?before=2000-01-01T00:00:00Z", None, [401, 401, 200, 403, 403, 403]),
        ("POST", "/v1/audit/prune", Some(json!({ "through_seq": 1, "hash": "nope" })), [401, 401, 400, 403, 403, 403]),
        ("GET", "/v1/tickets", None, [401, 401, 200, 403, 200, 200]),
        ("GET", "/v1/tickets/1", None, [401, 401, 200, 403, 404, 200]),
        ("POST", "/v1/tickets/1/comments", Some(comment.clone()), [401, 401, 201, 403, 404, 201]),
        ("GET", "/v1/tickets/999", None, [401, 401, 404, 403, 404, 404]),
        ("GET", "/v1/tenants/ghost", None, [401, 401, 404, 403, 404, 404]),
        ("GET", "/v1/alerts", None, [401, 401, 200, 403, 403, 403]),
        ("GET", "/v1/revocations/held", None, [401, 401, 200, 403, 403, 403]),
        ("POST", "/v1/revocations/held/acme/release", None, [401, 401, 404, 403, 403, 403]),
        ("POST", "/v1/revocations/held/acme/dismiss", None, [401, 401, 404, 403, 403, 403]),
        ("GET", "/v1/tokens", None, [401, 401, 200, 403, 403, 403]),
        ("DELETE", "/v1/tokens/000000000000", None, [401, 401, 404, 403, 403, 403]),
        ("GET", "/healthz", None, [200; 6]),
        ("GET", "/metrics", None, [200; 6]),
        ("GET", "/openapi.json", None, [200; 6]),
    ];
    for (method, path, body, expected) in rows {
        for (caller, want) in callers.iter().zip(expected) {
            let (status, answer) = call(&w.router, *caller, method, path, body.clone()).await;
            assert_eq!(status.as_u16(), want, "{method} {path} as {caller:?}: {answer}");
            if !status.is_success() {
                assert!(answer["error"].is_string() && answer["message"].is_string(), "{method} {path}: an error body: {answer}");
            }
        }
    }
    // Adding a tenant: only the operator.
    for (n, (caller, want)) in callers.iter().zip([401, 401, 201, 403, 403, 403]).enumerate() {
        let body = json!({ "id": format!("new-{n}"), "location": "us", "account_id": "111122223333" });
        let (status, answer) = call(&w.router, *caller, "POST", "/v1/tenants", Some(body)).await;
        assert_eq!(status.as_u16(), want, "POST /v1/tenants as {caller:?}: {answer}");
    }
    // The tickets list a tenant admin sees holds its own tickets only.
    let (_, acme_tickets) = call(&w.router, Some(&w.acme_admin), "GET", "/v1/tickets", None).await;
    assert_eq!(acme_tickets.as_array().map(Vec::len), Some(0), "{acme_tickets}");
    // Another tenant's resource and a missing one answer the same words.
    let (_, other) = call(&w.router, Some(&w.beta_admin), "GET", "/v1/tenants/acme", None).await;
    let (_, missing) = call(&w.router, Some(&w.beta_admin), "GET", "/v1/tenants/nobody", None).await;
    assert_eq!((other["error"].clone(), missing["error"].clone()), (json!("not_found"), json!("not_found")));
    let (_, other) = call(&w.router, Some(&w.acme_admin), "GET", "/v1/tickets/1", None).await;
    let (_, missing) = call(&w.router, Some(&w.acme_admin), "GET", "/v1/tickets/999", None).await;
    assert_eq!(other["error"], missing["error"]);
    assert_eq!(other["message"].as_str().map(|m| m.replace('1', "N")), missing["message"].as_str().map(|m| m.replace("999", "N")));
    let _ = StatusCode::OK;
}
