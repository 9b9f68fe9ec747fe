//! A tenant's key generations, for the operator: `POST /v1/tenants/{id}/rotate`,
//! `PUT /v1/tenants/{id}/min-decryption-generation`, `POST /v1/tenants/{id}/shred-retired` and
//! `POST /v1/tenants/{id}/rekey`. Each answers the tenant as it is after the change; a tenant
//! that is not active answers 409 `invalid_state` and nothing changes.

use axum::extract::{Path, State};
use axum::routing::{post, put};
use axum::{Json, Router};
use byok_api::{MinDecryptionRequest, RekeyRequest, TenantStatus};

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::routes::tenant_id;
use crate::routes::tenants::Body;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/rotate", post(rotate))
        .route("/v1/tenants/{id}/min-decryption-generation", put(min_decryption))
        .route("/v1/tenants/{id}/shred-retired", post(shred))
        .route("/v1/tenants/{id}/rekey", post(rekey))
}

async fn rotate(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TenantStatus>, ApiError> {
    caller.operator()?;
    let id = tenant_id(&id)?;
    Ok(Json(views::tenant(&state.broker.rotate(&id).await?)))
}

async fn min_decryption(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<MinDecryptionRequest>,
) -> Result<Json<TenantStatus>, ApiError> {
    let id = tenant_id(&id)?;
    Ok(Json(views::tenant(&state.broker.set_min_decryption(&id, req.generation).await?)))
}

async fn shred(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TenantStatus>, ApiError> {
    caller.operator()?;
    let id = tenant_id(&id)?;
    Ok(Json(views::tenant(&state.broker.shred_retired(&id).await?)))
}

async fn rekey(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<RekeyRequest>,
) -> Result<Json<TenantStatus>, ApiError> {
    let id = tenant_id(&id)?;
    let region = req.region.parse().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))?;
    Ok(Json(views::tenant(&state.broker.rekey(&id, &region, req.key.as_deref()).await?)))
}
