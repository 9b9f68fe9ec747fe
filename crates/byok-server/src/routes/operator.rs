//! The operator's own endpoints: alerts, held revocations (release or dismiss), API tokens.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use byok_api::{Alert, HeldRevocation, NewTokenRequest, NewTokenResponse, TokenInfo, TokenKind};
use byok_store::{ServiceReach, TokenScope};
use serde::Deserialize;

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::routes::tenant_id;
use crate::routes::tenants::Body;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts", get(alerts))
        .route("/v1/revocations/held", get(held))
        .route("/v1/revocations/held/{tenant}/release", post(release))
        .route("/v1/revocations/held/{tenant}/dismiss", post(dismiss))
        .route("/v1/tokens", get(tokens).post(issue))
        .route("/v1/tokens/{id}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    #[serde(default)]
    open: bool,
}

async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    caller.operator()?;
    let Query(q) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    Ok(Json(state.broker.alerts(q.open).await?.into_iter().map(views::alert).collect()))
}

async fn held(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<HeldRevocation>>, ApiError> {
    caller.operator()?;
    Ok(Json(state.broker.held_revocations().await?.into_iter().map(views::held_revocation).collect()))
}

/// A person believes the held denial: revoked as of its detection, the customer's ticket opens.
async fn release(State(state): State<AppState>, caller: Caller, Path(tenant): Path<String>) -> Result<Response, ApiError> {
    caller.operator()?;
    let id = tenant_id(&tenant)?;
    let revoked = state.broker.release_hold(&id).await?;
    Ok(Json(views::tenant(&revoked)).into_response())
}

/// A person does not believe it: the tenant stays active.
async fn dismiss(State(state): State<AppState>, caller: Caller, Path(tenant): Path<String>) -> Result<StatusCode, ApiError> {
    caller.operator()?;
    state.broker.dismiss_hold(&tenant_id(&tenant)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.operator()?;
    Ok(Json(state.broker.tokens().await?.into_iter().map(views::token).collect()))
}

async fn issue(State(state): State<AppState>, _: Operator, Body(req): Body<NewTokenRequest>) -> Result<Response, ApiError> {
    if req.kind != TokenKind::Service && (!req.tenants.is_empty() || req.all_tenants) {
        return Err(ApiError::Invalid("only a service token takes tenants or all_tenants".into()));
    }
    let scope = match (req.kind, &req.tenant) {
        (TokenKind::Operator, None) => TokenScope::Operator,
        (TokenKind::Service, None) => TokenScope::Service(match (req.tenants.as_slice(), req.all_tenants) {
            ([], true) => ServiceReach::AllTenants,
            ([_, ..], false) => ServiceReach::Tenants(req.tenants.iter().map(|t| tenant_id(t)).collect::<Result<_, _>>()?),
            ([], false) => {
                return Err(ApiError::Invalid(
                    "a service token names the tenants it serves (tenants), or asks for every tenant explicitly (all_tenants)".into(),
                ));
            }
            ([_, ..], true) => return Err(ApiError::Invalid("give tenants or all_tenants, not both".into())),
        }),
        (TokenKind::TenantAdmin, Some(t)) => TokenScope::TenantAdmin(tenant_id(t)?),
        (TokenKind::TenantAdmin, None) => return Err(ApiError::Invalid("a tenant_admin token needs its tenant".into())),
        (TokenKind::Operator | TokenKind::Service, Some(_)) => {
            return Err(ApiError::Invalid("only a tenant_admin token names a tenant (a service token: tenants)".into()));
        }
    };
    let valid_for = match req.expires_in_days {
        Some(0) => return Err(ApiError::Invalid("expires_in_days is at least 1".into())),
        Some(days) if days > 3650 => return Err(ApiError::Invalid("expires_in_days is at most 3650".into())),
        Some(days) => Some(time::Duration::days(i64::from(days))),
        None => None,
    };
    let issued = state.broker.issue_token(scope, valid_for, req.replace).await?;
    let body = NewTokenResponse { token: issued.token.to_string(), info: views::token(issued.record) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.operator()?;
    state.broker.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
