//! Health, Prometheus metrics, the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use byok_api::{Health, Readiness};

use crate::error::ApiError;
use crate::state::AppState;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// What `/healthz` says while the provider's identity fails.
pub const PROVIDER_PROBLEM: &str = "the broker cannot prove that its own AWS identity works, so it judges no tenant's access until it \
     does (cached keys keep serving until their TTL); operators: see the open provider_identity alert";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// `ok`, or `degraded` with the reason while the provider's own identity fails or revocations
/// wait for a person. Always 200: a degraded node still serves cached keys, and every node
/// shares the provider's identity, so a load balancer gains nothing by dropping one. Nobody
/// signs in here, so the reason is in words of its own: never AWS's error text (account ids,
/// role and key ARNs), which the operator reads in the alert.
async fn health(State(state): State<AppState>) -> Json<Health> {
    let provider = state.broker.provider_health();
    let held = state.broker.metrics.revocations_held.get();
    let provider_failing = !provider.healthy && provider.checked_at.is_some();
    let status = if provider_failing || held > 0 { "degraded" } else { "ok" };
    Json(Health {
        status: status.into(),
        provider_healthy: !provider_failing,
        provider_problem: provider_failing.then(|| PROVIDER_PROBLEM.to_string()),
        provider_failing_since: provider.failing_since,
        revocations_held: held,
        node: state.broker.config().node_id.clone(),
        leader: state.broker.is_leader(),
        leader_node: state.broker.leader().await,
    })
}

/// The process answers: nothing else is asked (a liveness probe restarts a node that does not).
async fn livez() -> Json<Readiness> {
    Json(Readiness { status: "live".into(), reason: None })
}

/// Whether a load balancer should send this node requests: 503 with the reason while its store
/// does not answer (it could serve only cached keys, and no write) or while it drains before
/// shutting down. The provider's identity is not asked: it is every node's alike, and a node
/// whose provider fails still serves cached keys (see `/healthz`).
async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |reason: String| {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "not_ready".into(), reason: Some(reason) })).into_response()
    };
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return not_ready("draining: this node is shutting down".into());
    }
    match state.broker.store_answers(std::time::Duration::from_secs(2)).await {
        Ok(()) => Json(Readiness { status: "ready".into(), reason: None }).into_response(),
        Err(reason) => not_ready(reason.to_string()),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.broker.refresh_census().await;
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded").into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn openapi(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document(&state).to_string()).into_response()
}

/// The document as this node serves it: [`OPENAPI`] with what configuration decides filled in,
/// so that it is exact for this deployment: the location codes a tenant can be added in, and
/// the most items a batch may carry.
pub fn document(state: &AppState) -> serde_json::Value {
    let mut doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or_default();
    let codes: Vec<&str> = state.broker.config().locations.codes().collect();
    doc["components"]["schemas"]["AddTenantRequest"]["properties"]["location"]["enum"] = serde_json::json!(codes);
    doc["components"]["schemas"]["AddProviderHeldTenantRequest"]["properties"]["location"]["enum"] = serde_json::json!(codes);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (_, item) in paths.iter_mut().filter(|(path, _)| path.ends_with("/batch")) {
            item["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["items"]["maxItems"] =
                serde_json::json!(state.max_batch_items);
        }
    }
    doc
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}
