//! Product services' AWS identities: the operator configures which IAM roles may sign in and
//! what they reach (`/v1/identities`); a service signs in with its own role (`POST /v1/auth/aws`,
//! no bearer token: the signed request is the credential).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use byok_api::{AwsIdentity, AwsSignInRequest, AwsSignInResponse};
use byok_store::ServiceReach;
use serde::Deserialize;

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::routes::tenant_id;
use crate::routes::tenants::Body;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/identities", get(list).post(add).delete(remove)).route("/v1/auth/aws", post(sign_in))
}

fn view(role_arn: String, reach: &ServiceReach) -> AwsIdentity {
    match reach {
        ServiceReach::AllTenants => AwsIdentity { role_arn, tenants: Vec::new(), all_tenants: true },
        ServiceReach::Tenants(ids) => AwsIdentity { role_arn, tenants: ids.iter().map(ToString::to_string).collect(), all_tenants: false },
    }
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<AwsIdentity>>, ApiError> {
    caller.operator()?;
    Ok(Json(state.broker.aws_identities().await?.into_iter().map(|(arn, reach)| view(arn, &reach)).collect()))
}

async fn add(State(state): State<AppState>, _: Operator, Body(req): Body<AwsIdentity>) -> Result<Response, ApiError> {
    let role: byok_domain::RoleArn = req.role_arn.parse().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))?;
    let reach = match (req.tenants.as_slice(), req.all_tenants) {
        ([], true) => ServiceReach::AllTenants,
        ([_, ..], false) => ServiceReach::Tenants(req.tenants.iter().map(|t| tenant_id(t)).collect::<Result<_, _>>()?),
        ([], false) => return Err(ApiError::Invalid("an identity names the tenants it reaches (tenants), or all_tenants".into())),
        ([_, ..], true) => return Err(ApiError::Invalid("give tenants or all_tenants, not both".into())),
    };
    let kept = state.broker.add_aws_identity(&role, reach.clone()).await?;
    Ok((StatusCode::CREATED, Json(view(kept, &reach))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleQuery {
    role_arn: String,
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<RoleQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    caller.operator()?;
    let Query(q) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    state.broker.remove_aws_identity(&q.role_arn).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sign_in(State(state): State<AppState>, Body(req): Body<AwsSignInRequest>) -> Result<Json<AwsSignInResponse>, ApiError> {
    let body = base64::engine::general_purpose::STANDARD.decode(&req.body).map_err(|_| ApiError::Invalid("body is not base64".into()))?;
    let signed = byok_kms::SignedCallerIdentity { headers: req.headers.into_iter().collect(), body };
    let (issued, role_arn) = state.broker.sign_in_with_aws(&signed).await?;
    Ok(Json(AwsSignInResponse { token: issued.token.to_string(), role_arn, info: views::token(issued.record) }))
}
