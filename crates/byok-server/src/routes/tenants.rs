//! Tenants: the operator adds, verifies and lists them; a tenant admin reads its own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use byok_domain::{Tenant, TenantState};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::tenant_id;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(add).get(list))
        .route("/v1/tenants/{id}", get(show))
        .route("/v1/tenants/{id}/setup", get(setup))
        .route("/v1/tenants/{id}/verify", post(verify))
        .route("/v1/tenants/{id}/restore", post(restore))
        .route("/v1/tenants/{id}/audit", get(audit))
        .route("/v1/audit/verify", get(verify_audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTenant {
    id: String,
    location: String,
    account_id: String,
}

#[derive(Debug, Serialize)]
struct RegionStatus {
    region: String,
    key_arn: String,
}

/// A tenant as the API shows it (never a key, wrapped or not).
#[derive(Debug, Serialize)]
pub struct TenantStatus {
    id: String,
    location: String,
    #[serde(flatten)]
    state: TenantState,
    account_id: String,
    role_arn: String,
    legacy_trust: bool,
    regions: Vec<RegionStatus>,
    version: i64,
    created_at: String,
    /// The latest region-by-region check on this node (probe, restoration), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_check: Option<byok_broker::LastCheck>,
}

impl From<&Tenant> for TenantStatus {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            location: t.location.clone(),
            state: t.state,
            account_id: t.binding.account.to_string(),
            role_arn: t.binding.role_arn.to_string(),
            legacy_trust: t.binding.legacy_trust,
            regions: t.binding.keys.iter().map(|k| RegionStatus { region: k.region.to_string(), key_arn: k.key_arn.to_string() }).collect(),
            version: t.version,
            created_at: t.created_at.format(&Rfc3339).unwrap_or_default(),
            last_check: None,
        }
    }
}

/// `axum::Json` whose rejections use the API's error body.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

async fn add(State(state): State<AppState>, caller: Caller, Body(req): Body<AddTenant>) -> Result<Response, ApiError> {
    caller.operator()?;
    let id = tenant_id(&req.id)?;
    let account = req.account_id.parse().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))?;
    let created = state.broker.add_tenant(&id, &req.location, &account).await?;
    let tenant = state.broker.tenant(&id).await?;
    let body = serde_json::json!({
        "tenant": TenantStatus::from(&tenant),
        "instructions": created.instructions,
        "admin_token": *created.admin_token,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TenantStatus>>, ApiError> {
    caller.operator()?;
    Ok(Json(state.broker.tenants().await?.iter().map(TenantStatus::from).collect()))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TenantStatus>, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    let mut status = TenantStatus::from(&state.broker.tenant(&id).await?);
    status.last_check = state.broker.last_check(&id);
    Ok(Json(status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditPage {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    1000
}

/// The tenant's audit entries (every key use with its reason, transitions, ticket events).
async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<AuditPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    let axum::extract::Query(page) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    state.broker.tenant(&id).await?;
    Ok(Json(state.broker.audit_log(Some(&id), page.after, page.limit).await?).into_response())
}

/// Checks the whole hash chain.
async fn verify_audit(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.operator()?;
    let check = state.broker.verify_audit().await?;
    let status = if check.ok { StatusCode::OK } else { StatusCode::CONFLICT };
    Ok((status, Json(check)).into_response())
}

/// The customer says access is restored: every region is verified now. 200 when access is
/// back; 409 with what is still missing, region by region.
async fn restore(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    let restoration = state.broker.restore(&id).await?;
    let status = if restoration.restored { StatusCode::OK } else { StatusCode::CONFLICT };
    Ok((status, Json(restoration)).into_response())
}

async fn setup(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    Ok(Json(state.broker.instructions(&id).await?).into_response())
}

async fn verify(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.operator()?;
    let id = tenant_id(&id)?;
    let verification = state.broker.verify_tenant(&id).await?;
    let status = if verification.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(verification)).into_response())
}
