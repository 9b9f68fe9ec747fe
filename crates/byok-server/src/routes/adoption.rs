//! Moving tenants on provider-held keys onto their customer's, for the operator:
//! `POST /v1/tenants/{id}/adoption-setup` (what the customer runs first), `POST
//! /v1/tenants/{id}/adopt` (the switch), `POST /v1/tenants/{id}/adopt/finish` (older generations
//! retired and shredded once records moved) and `GET /v1/adoptions` (the fleet's progress).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use byok_api::{
    AdoptRequest, AdoptionReport, AdoptionResponse, AdoptionTenant, FinishedAdoptionResponse, Instructions, KeyModeName, MigratedRegion,
    ProviderKeyDeletion,
};
use byok_domain::{AccountId, IdError, KeyMode};
use time::format_description::well_known::Rfc3339;

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::routes::tenant_id;
use crate::routes::tenants::Body;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/adoption-setup", post(setup))
        .route("/v1/tenants/{id}/adopt", post(adopt))
        .route("/v1/tenants/{id}/adopt/finish", post(finish))
        .route("/v1/adoptions", get(report))
}

/// The target mode and account of an adoption.
fn target(req: &AdoptRequest) -> Result<(KeyMode, AccountId), ApiError> {
    let invalid = |e: IdError| ApiError::Invalid(e.to_string());
    let mode = match (req.to, &req.context_tag) {
        (KeyModeName::Cmk, tag) => KeyMode::Cmk { context_tag: tag.as_deref().map(str::parse).transpose().map_err(invalid)? },
        (KeyModeName::Byok, None) => KeyMode::Byok,
        (KeyModeName::Byok, Some(_)) => return Err(ApiError::Invalid("a context tag is for \"to\": \"cmk\"".into())),
        (KeyModeName::Provider, _) => {
            return Err(ApiError::Invalid("adoption moves onto the customer's keys: \"to\" is \"cmk\" or \"byok\"".into()));
        }
    };
    Ok((mode, req.account_id.parse().map_err(invalid)?))
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

async fn setup(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<AdoptRequest>,
) -> Result<Json<Instructions>, ApiError> {
    let id = tenant_id(&id)?;
    let (mode, account) = target(&req)?;
    if !req.keys.is_empty() {
        return Err(ApiError::Invalid("keys are named when adopting, not for the setup".into()));
    }
    Ok(Json(views::instructions(state.broker.adoption_setup(&id, mode, &account).await?)))
}

async fn adopt(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<AdoptRequest>,
) -> Result<Json<AdoptionResponse>, ApiError> {
    let id = tenant_id(&id)?;
    let (mode, account) = target(&req)?;
    let mut keys = Vec::with_capacity(req.keys.len());
    for (region, key) in &req.keys {
        keys.push((region.parse().map_err(|e: IdError| ApiError::Invalid(e.to_string()))?, key.clone()));
    }
    let adopted = state.broker.adopt(&id, mode, &account, &keys).await?;
    let tenant = state.broker.tenant(&id).await?;
    let mut generations = adopted.rewrapped.clone();
    generations.push(adopted.first_generation);
    Ok(Json(AdoptionResponse {
        tenant: views::tenant(&tenant),
        regions: adopted
            .regions
            .into_iter()
            .map(|(region, key)| MigratedRegion { region: region.to_string(), key_arn: key.to_string(), generations: generations.clone() })
            .collect(),
        first_generation: adopted.first_generation,
        provider_keys: adopted
            .provider_keys
            .into_iter()
            .map(|(key, at)| ProviderKeyDeletion { key_arn: key.to_string(), deletion_date: at.map(rfc3339) })
            .collect(),
        elapsed_ms: u64::try_from(adopted.elapsed.as_millis()).unwrap_or(u64::MAX),
    }))
}

async fn finish(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<FinishedAdoptionResponse>, ApiError> {
    caller.operator()?;
    let id = tenant_id(&id)?;
    let finished = state.broker.finish_adoption(&id).await?;
    Ok(Json(FinishedAdoptionResponse {
        tenant: views::tenant(&finished.tenant),
        shredded: finished.shredded,
        provider_keys: finished
            .provider_keys
            .into_iter()
            .map(|(key, at)| ProviderKeyDeletion { key_arn: key.to_string(), deletion_date: Some(rfc3339(at)) })
            .collect(),
    }))
}

async fn report(State(state): State<AppState>, caller: Caller) -> Result<Json<AdoptionReport>, ApiError> {
    caller.operator()?;
    let report = state.broker.adoptions().await?;
    Ok(Json(AdoptionReport {
        waiting: report.waiting as u64,
        adopting: report.adopting as u64,
        records_rewrapped: report.records_rewrapped,
        rate_per_s: report.rate_per_s,
        tenants: report
            .tenants
            .into_iter()
            .map(|t| AdoptionTenant {
                tenant: t.tenant.to_string(),
                phase: t.phase.to_string(),
                first_generation: t.first_generation,
                switched_at: t.switched_at.map(rfc3339),
                records_rewrapped: t.records_rewrapped,
                rate_per_s: t.rate_per_s,
            })
            .collect(),
    }))
}
