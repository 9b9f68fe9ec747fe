//! Tenants: the operator adds, verifies and lists them; a tenant admin reads its own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use byok_api::{AddTenantRequest, AuditPage, NewTenantResponse, TenantStatus};

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::routes::tenant_id;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(add).get(list))
        .route("/v1/provider-held-tenants", post(add_provider_held))
        .route("/v1/tenants/{id}", get(show))
        .route("/v1/tenants/{id}/setup", get(setup))
        .route("/v1/tenants/{id}/verify", post(verify))
        .route("/v1/tenants/{id}/restore", post(restore))
        .route("/v1/tenants/{id}/audit", get(audit))
        .route("/v1/tenants/{id}/audit/checkpoint", get(checkpoint))
        .route("/v1/audit/verify", get(verify_audit))
        .route("/v1/audit/export", get(export_audit))
        .route("/v1/audit/prune", post(prune_audit))
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

async fn add(State(state): State<AppState>, _: Operator, Body(req): Body<AddTenantRequest>) -> Result<Response, ApiError> {
    let id = tenant_id(&req.id)?;
    let account = req.account_id.parse().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))?;
    let mode = match (req.mode, req.context_tag) {
        (byok_api::KeyModeName::Byok, None) => byok_domain::KeyMode::Byok,
        (byok_api::KeyModeName::Byok, Some(_)) => {
            return Err(ApiError::Invalid("a context tag is for customer-managed-key tenants: add \"mode\": \"cmk\"".into()));
        }
        (byok_api::KeyModeName::Provider, _) => {
            return Err(ApiError::Invalid("a tenant on provider-held keys is added with POST /v1/provider-held-tenants".into()));
        }
        (byok_api::KeyModeName::Cmk, tag) => byok_domain::KeyMode::Cmk {
            context_tag: tag.map(|t| t.parse()).transpose().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))?,
        },
    };
    let created = state.broker.add_tenant_in_mode(&id, &req.location, &account, mode).await?;
    created_response(&state, &id, created).await
}

/// 201 with the tenant as stored, its setup and its admin token (shown this once).
async fn created_response(
    state: &AppState,
    id: &byok_domain::TenantId,
    created: byok_broker::onboarding::NewTenant,
) -> Result<Response, ApiError> {
    let tenant = state.broker.tenant(id).await?;
    let body = NewTenantResponse {
        tenant: views::tenant(&tenant),
        instructions: views::instructions(created.instructions),
        admin_token: created.admin_token.to_string(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A tenant on provider-held keys: active at once, nothing asked of a customer.
async fn add_provider_held(
    State(state): State<AppState>,
    _: Operator,
    Body(req): Body<byok_api::AddProviderHeldTenantRequest>,
) -> Result<Response, ApiError> {
    let id = tenant_id(&req.id)?;
    let created = state.broker.add_provider_held_tenant(&id, &req.location).await?;
    created_response(&state, &id, created).await
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TenantStatus>>, ApiError> {
    caller.operator()?;
    Ok(Json(state.broker.tenants().await?.iter().map(views::tenant).collect()))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TenantStatus>, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    let mut status = views::tenant(&state.broker.tenant(&id).await?);
    status.last_check = state.broker.last_check(&id).map(views::last_check);
    Ok(Json(status))
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
    if !(1..=10_000).contains(&page.limit) || page.after < 0 {
        return Err(ApiError::Invalid("limit is 1 to 10000 and after at least 0".into()));
    }
    state.broker.tenant(&id).await?;
    let entries: Vec<byok_api::AuditEntry> =
        state.broker.audit_log(Some(&id), page.after, page.limit).await?.into_iter().map(views::audit_entry).collect();
    Ok(Json(entries).into_response())
}

/// The tenant's newest audit entry, signed with the operator's key.
async fn checkpoint(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    state.broker.tenant(&id).await?;
    if state.broker.audit_signing_key_id().is_none() {
        return Err(ApiError::NotFound("this byok signs no audit checkpoints (no audit signing key is configured)".into()));
    }
    match state.broker.audit_checkpoint(&id).await? {
        Some(c) => Ok(Json(views::checkpoint(c)).into_response()),
        None => Err(ApiError::NotFound(format!("tenant {id} has no audit entry yet"))),
    }
}

/// Checks the whole hash chain.
async fn verify_audit(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.operator()?;
    let check = state.broker.verify_audit().await?;
    let status = if check.ok { StatusCode::OK } else { StatusCode::CONFLICT };
    Ok((status, Json(views::chain_check(check))).into_response())
}

/// The customer says access is restored: every region is verified now. 200 when access is
/// back; 409 with what is still missing, region by region.
async fn restore(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    let restoration = state.broker.restore(&id).await?;
    let status = if restoration.restored { StatusCode::OK } else { StatusCode::CONFLICT };
    Ok((status, Json(views::restoration(&restoration))).into_response())
}

async fn setup(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    Ok(Json(views::instructions(state.broker.instructions(&id).await?)).into_response())
}

/// Checks the customer's setup: the operator, or the tenant's own admin (who ran the setup; the
/// console offers them the same button).
async fn verify(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = tenant_id(&id)?;
    caller.tenant_admin(&id)?;
    let verification = state.broker.verify_tenant(&id).await?;
    let status = if verification.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(views::verification(&verification))).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// RFC 3339: entries older than this.
    before: String,
}

/// Every kept entry older than `before`, as JSON lines (keep them, then prune through the last).
async fn export_audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.operator()?;
    let axum::extract::Query(q) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let before = time::OffsetDateTime::parse(&q.before, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::Invalid("before is an RFC 3339 time (2026-11-01T00:00:00Z)".into()))?;
    // Streamed a page at a time: the first page is read before answering (so that a store
    // failure is a proper error), each later one as the client reads. A failure half-way ends
    // the answer without its last chunk, which every HTTP client reports as an error.
    let after = state.broker.export_audit_start().await?;
    let first = state.broker.export_audit_page(before, after).await?;
    let broker = state.broker.clone();
    let pages = futures_util::stream::try_unfold((Some(first), after), move |(page, after)| {
        let broker = broker.clone();
        async move {
            let (entries, more) = match page {
                Some(page) => page,
                None => broker.export_audit_page(before, after).await?,
            };
            let Some(last) = entries.last().map(|e| e.seq) else { return Ok(None) };
            let mut chunk = String::with_capacity(entries.len() * 256);
            for e in entries {
                chunk.push_str(&serde_json::to_string(&views::audit_entry(e)).unwrap_or_default());
                chunk.push('\n');
            }
            // After the last page, one more round ends the stream.
            let next = if more { (None, last) } else { (Some((Vec::new(), false)), last) };
            Ok::<_, byok_broker::BrokerError>(Some((bytes::Bytes::from(chunk), next)))
        }
    });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(pages)).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneRequest {
    #[serde(deserialize_with = "byok_api::integral::i64")]
    through_seq: i64,
    hash: String,
}

/// Prunes the exported entries; the chain then verifies from this checkpoint.
async fn prune_audit(State(state): State<AppState>, _: Operator, Body(req): Body<PruneRequest>) -> Result<Response, ApiError> {
    if req.through_seq < 1 || req.hash.len() != 64 || !req.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ApiError::Invalid("through_seq is an entry's seq (1 or more) and hash its 64 lowercase hex digits".into()));
    }
    let pruned = state.broker.prune_audit(req.through_seq, &req.hash).await?;
    Ok(Json(serde_json::json!({ "pruned": pruned, "checkpoint": { "seq": req.through_seq, "hash": req.hash } })).into_response())
}
