//! A tenant's key generations, for the operator: `POST /v1/tenants/{id}/rotate`,
//! `PUT /v1/tenants/{id}/min-decryption-generation`, `POST /v1/tenants/{id}/shred-retired` and
//! `POST /v1/tenants/{id}/rekey`; the move to customer-managed keys, `POST
//! /v1/tenants/{id}/migration-setup` (what the customer runs first) and `POST
//! /v1/tenants/{id}/migrate`. Each answers the tenant as it is after the change; a tenant that
//! is not active answers 409 `invalid_state` and nothing changes.

use axum::extract::{Path, State};
use axum::routing::{post, put};
use axum::{Json, Router};
use byok_api::{Instructions, MigrateRequest, MigratedRegion, MigrationResponse, MinDecryptionRequest, RekeyRequest, TenantStatus};

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
        .route("/v1/tenants/{id}/migration-setup", post(migration_setup))
        .route("/v1/tenants/{id}/migrate", post(migrate))
}

/// The context tag of a move to CMK (refused for any other target).
fn cmk_tag(req: &MigrateRequest) -> Result<Option<byok_domain::ContextTag>, ApiError> {
    if req.to != byok_api::KeyModeName::Cmk {
        return Err(ApiError::Invalid("a tenant can move to \"cmk\" (customer-managed keys) only".into()));
    }
    req.context_tag.as_deref().map(str::parse).transpose().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))
}

async fn migration_setup(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<MigrateRequest>,
) -> Result<Json<Instructions>, ApiError> {
    let id = tenant_id(&id)?;
    let tag = cmk_tag(&req)?;
    if !req.keys.is_empty() {
        return Err(ApiError::Invalid("keys are named when migrating, not for the setup".into()));
    }
    Ok(Json(views::instructions(state.broker.migration_setup(&id, tag).await?)))
}

async fn migrate(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<MigrateRequest>,
) -> Result<Json<MigrationResponse>, ApiError> {
    let id = tenant_id(&id)?;
    let tag = cmk_tag(&req)?;
    let mut keys = Vec::with_capacity(req.keys.len());
    for (region, key) in &req.keys {
        keys.push((region.parse().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))?, key.clone()));
    }
    let moved = state.broker.migrate_to_cmk(&id, tag, &keys).await?;
    let tenant = state.broker.tenant(&id).await?;
    Ok(Json(MigrationResponse {
        tenant: views::tenant(&tenant),
        regions: moved
            .regions
            .into_iter()
            .map(|(region, key, generations)| MigratedRegion { region: region.to_string(), key_arn: key.to_string(), generations })
            .collect(),
        elapsed_ms: u64::try_from(moved.elapsed.as_millis()).unwrap_or(u64::MAX),
    }))
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
