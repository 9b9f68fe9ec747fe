//! Webhook endpoints: a tenant's (`/v1/tenants/{id}/webhooks…`, its admin or the operator) and
//! the operator's own (`/v1/webhooks…`: every tenant's events and the operator's; the operator
//! also reaches every endpoint there by id). Add (the secret is answered once), list, remove,
//! rotate the secret, send a test event, list deliveries, redeliver one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use byok_api::{Contacts, DeliveryInfo, NewWebhookRequest, WebhookInfo};
use byok_domain::TenantId;
use serde::Deserialize;

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::routes::tenant_id;
use crate::routes::tenants::Body;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/webhooks", get(list_tenant).post(add_tenant))
        .route("/v1/tenants/{id}/webhooks/{webhook}", delete(remove_tenant))
        .route("/v1/tenants/{id}/webhooks/{webhook}/rotate-secret", post(rotate_tenant))
        .route("/v1/tenants/{id}/webhooks/{webhook}/test", post(test_tenant))
        .route("/v1/tenants/{id}/webhooks/{webhook}/deliveries", get(deliveries_tenant))
        .route("/v1/tenants/{id}/webhooks/{webhook}/deliveries/{seq}/redeliver", post(redeliver_tenant))
        .route("/v1/tenants/{id}/contacts", get(contacts).put(set_contacts))
        .route("/v1/webhooks", get(list_all).post(add_operator))
        .route("/v1/webhooks/{webhook}", delete(remove_any))
        .route("/v1/webhooks/{webhook}/rotate-secret", post(rotate_any))
        .route("/v1/webhooks/{webhook}/test", post(test_any))
        .route("/v1/webhooks/{webhook}/deliveries", get(deliveries_any))
        .route("/v1/webhooks/{webhook}/deliveries/{seq}/redeliver", post(redeliver_any))
}

#[derive(Debug, Deserialize)]
pub struct Limit {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// The tenant named in the path, if the caller administers it.
fn admin_of(caller: &Caller, raw: &str) -> Result<TenantId, ApiError> {
    let id = tenant_id(raw)?;
    caller.tenant_admin(&id)?;
    Ok(id)
}

async fn contacts(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Contacts>, ApiError> {
    let id = admin_of(&caller, &id)?;
    Ok(Json(Contacts { emails: state.broker.contacts(&id).await? }))
}

async fn set_contacts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<Contacts>,
) -> Result<Json<Contacts>, ApiError> {
    let id = admin_of(&caller, &id)?;
    Ok(Json(Contacts { emails: state.broker.set_contacts(&id, &req.emails).await? }))
}

async fn add(state: &AppState, tenant: Option<&TenantId>, req: NewWebhookRequest) -> Result<Response, ApiError> {
    let added = state.broker.add_webhook(tenant, &req.url, req.events).await?;
    Ok((StatusCode::CREATED, Json(views::new_webhook(added, state.broker.clock().now()))).into_response())
}

async fn add_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<NewWebhookRequest>,
) -> Result<Response, ApiError> {
    let id = admin_of(&caller, &id)?;
    add(&state, Some(&id), req).await
}

async fn add_operator(State(state): State<AppState>, _: Operator, Body(req): Body<NewWebhookRequest>) -> Result<Response, ApiError> {
    add(&state, None, req).await
}

async fn list(state: &AppState, tenant: Option<&TenantId>) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    if let Some(id) = tenant {
        state.broker.tenant(id).await?;
    }
    let now = state.broker.clock().now();
    Ok(Json(state.broker.webhooks(tenant).await?.iter().map(|w| views::webhook(w, now)).collect()))
}

async fn list_tenant(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    let id = admin_of(&caller, &id)?;
    list(&state, Some(&id)).await
}

async fn list_all(State(state): State<AppState>, _: Operator) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    list(&state, None).await
}

async fn remove_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, webhook)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = admin_of(&caller, &id)?;
    state.broker.remove_webhook(Some(&id), &webhook).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_any(State(state): State<AppState>, _: Operator, Path(webhook): Path<String>) -> Result<StatusCode, ApiError> {
    state.broker.remove_webhook(None, &webhook).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate(state: &AppState, tenant: Option<&TenantId>, webhook: &str) -> Result<Response, ApiError> {
    let rotated = state.broker.rotate_webhook_secret(tenant, webhook).await?;
    Ok(Json(views::new_webhook(rotated, state.broker.clock().now())).into_response())
}

async fn rotate_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, webhook)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = admin_of(&caller, &id)?;
    rotate(&state, Some(&id), &webhook).await
}

async fn rotate_any(State(state): State<AppState>, _: Operator, Path(webhook): Path<String>) -> Result<Response, ApiError> {
    rotate(&state, None, &webhook).await
}

async fn test_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, webhook)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = admin_of(&caller, &id)?;
    state.broker.test_webhook(Some(&id), &webhook).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn test_any(State(state): State<AppState>, _: Operator, Path(webhook): Path<String>) -> Result<StatusCode, ApiError> {
    state.broker.test_webhook(None, &webhook).await?;
    Ok(StatusCode::ACCEPTED)
}

fn sequence(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| ApiError::Invalid(format!("a delivery's seq is a positive integer, not {raw}")))
}

fn limit(query: Result<Query<Limit>, axum::extract::rejection::QueryRejection>) -> Result<i64, ApiError> {
    let Query(Limit { limit }) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    if (1..=1000).contains(&limit) { Ok(limit) } else { Err(ApiError::Invalid("limit is 1 to 1000".into())) }
}

async fn deliveries_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, webhook)): Path<(String, String)>,
    query: Result<Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DeliveryInfo>>, ApiError> {
    let id = admin_of(&caller, &id)?;
    let found = state.broker.webhook_deliveries(Some(&id), &webhook, limit(query)?).await?;
    Ok(Json(found.into_iter().map(views::delivery).collect()))
}

async fn deliveries_any(
    State(state): State<AppState>,
    _: Operator,
    Path(webhook): Path<String>,
    query: Result<Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DeliveryInfo>>, ApiError> {
    let found = state.broker.webhook_deliveries(None, &webhook, limit(query)?).await?;
    Ok(Json(found.into_iter().map(views::delivery).collect()))
}

async fn redeliver_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, webhook, seq)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = admin_of(&caller, &id)?;
    state.broker.redeliver(Some(&id), &webhook, sequence(&seq)?).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn redeliver_any(
    State(state): State<AppState>,
    _: Operator,
    Path((webhook, seq)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.broker.redeliver(None, &webhook, sequence(&seq)?).await?;
    Ok(StatusCode::ACCEPTED)
}
