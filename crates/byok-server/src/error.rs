//! API errors: the one place that maps failures to HTTP status codes. Every error answers
//! `{"error": CODE, "message": …}`; internal failures say little and log the detail.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use byok_api::ErrorBody;
use byok_broker::BrokerError;
use time::format_description::well_known::Rfc3339;

#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    Forbidden,
    NotFound(String),
    Invalid(String),
    PayloadTooLarge,
    /// A batch with no items.
    EmptyBatch,
    /// A batch with more items than the broker takes at once.
    BatchTooLarge {
        items: usize,
        limit: usize,
    },
    /// A `Content-Type` this route does not take; the message names the ones it does.
    UnsupportedMediaType(String),
    /// Over the caller's rate (`--rate-limit-per-identity`): try again after this.
    RateLimited {
        retry_after: std::time::Duration,
    },
    /// More requests in flight on this node than it takes (`--max-in-flight`).
    Overloaded,
    /// The request ran longer than `--request-timeout-seconds`.
    RequestTimeout(std::time::Duration),
    Broker(BrokerError),
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        ApiError::Broker(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge;
        }
        ApiError::Invalid(r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE { ApiError::PayloadTooLarge } else { ApiError::Invalid(r.body_text()) }
    }
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// Status, stable code, message, and the deadline (with `tenant_keys_revoked`).
    fn parts(&self) -> (StatusCode, &'static str, String, Option<String>) {
        let none = None;
        match self {
            ApiError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required (Authorization: Bearer …)".into(), none)
            }
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "this token does not reach this resource".into(), none),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone(), none),
            ApiError::Invalid(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone(), none),
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than this broker accepts".into(), none)
            }
            ApiError::EmptyBatch => (StatusCode::BAD_REQUEST, "empty_batch", "a batch needs at least one item".into(), none),
            ApiError::BatchTooLarge { items, limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                format!("a batch takes at most {limit} items; this one has {items}: split it"),
                none,
            ),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", m.clone(), none),
            ApiError::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this identity is over its request rate; try again in {} s", retry_seconds(*retry_after)),
                none,
            ),
            ApiError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "this node has as many requests in flight as it takes; try again shortly (or another node)".into(),
                none,
            ),
            ApiError::RequestTimeout(after) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!("the request did not finish within {} s; try again", after.as_secs()),
                none,
            ),
            ApiError::Broker(e) => broker_parts(e),
        }
    }

    /// Status, stable code and message (a batch item's error).
    pub fn code_and_message(&self) -> (StatusCode, &'static str, String) {
        let (status, code, message, _) = self.parts();
        (status, code, message)
    }
}

/// Whole seconds to wait, at least 1 (`Retry-After` takes integers).
fn retry_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, deadline) = self.parts();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => Some(retry_seconds(*retry_after).max(1)),
            ApiError::Overloaded | ApiError::RequestTimeout(_) => Some(1),
            ApiError::Unauthorized
            | ApiError::Forbidden
            | ApiError::NotFound(_)
            | ApiError::Invalid(_)
            | ApiError::PayloadTooLarge
            | ApiError::EmptyBatch
            | ApiError::BatchTooLarge { .. }
            | ApiError::UnsupportedMediaType(_)
            | ApiError::Broker(_) => None,
        };
        if status.is_server_error() && !matches!(self, ApiError::Overloaded | ApiError::RequestTimeout(_)) {
            tracing::error!(error = ?self, "request failed");
        }
        let mut response = (status, Json(ErrorBody { error: code.to_string(), message, deadline })).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// Status, stable code, message and deadline of a broker error (also the console's pages).
pub(crate) fn broker_parts(e: &BrokerError) -> (StatusCode, &'static str, String, Option<String>) {
    use BrokerError as B;
    let none = None;
    match e {
        B::UnknownTenant(_) => (StatusCode::NOT_FOUND, "unknown_tenant", e.to_string(), none),
        B::UnknownTicket(_) => (StatusCode::NOT_FOUND, "unknown_ticket", e.to_string(), none),
        B::NotHeld(_) => (StatusCode::NOT_FOUND, "not_held", e.to_string(), none),
        B::UnknownToken(_) => (StatusCode::NOT_FOUND, "unknown_token", e.to_string(), none),
        B::UnknownIdentity(_) => (StatusCode::NOT_FOUND, "unknown_identity", e.to_string(), none),
        B::UnknownWebhook(_) => (StatusCode::NOT_FOUND, "unknown_webhook", e.to_string(), none),
        B::SignInRefused(_) => (StatusCode::UNAUTHORIZED, "sign_in_refused", e.to_string(), none),
        B::SignInDisabled => (StatusCode::NOT_FOUND, "not_found", e.to_string(), none),
        B::TenantExists(_) => (StatusCode::CONFLICT, "tenant_exists", e.to_string(), none),
        B::NotActive { .. } => (StatusCode::CONFLICT, "tenant_not_active", e.to_string(), none),
        B::Revoked { deadline, .. } => {
            (StatusCode::FORBIDDEN, "tenant_keys_revoked", e.to_string(), Some(deadline.format(&Rfc3339).unwrap_or_default()))
        }
        B::Destroyed(_) => (StatusCode::GONE, "tenant_destroyed", e.to_string(), none),
        B::KeyServiceUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "key_service_unavailable",
            "the tenant's key service is unavailable; try again shortly".into(),
            none,
        ),
        B::KeyAccessDenied(_) => (StatusCode::FORBIDDEN, "key_access_denied", e.to_string(), none),
        B::Envelope(_) => (StatusCode::BAD_REQUEST, "invalid_ciphertext", e.to_string(), none),
        B::InvalidId(_) | B::Location(_) | B::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request", e.to_string(), none),
        B::Conflict => (StatusCode::CONFLICT, "conflict", e.to_string(), none),
        B::AuditMismatch { .. } => (StatusCode::CONFLICT, "audit_mismatch", e.to_string(), none),
        B::StoreUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the broker's store is unavailable; try again shortly (data already cached keeps being served)".into(),
            none,
        ),
        B::Transition { .. } | B::KeysFrozen { .. } => (StatusCode::CONFLICT, "invalid_state", e.to_string(), none),
        B::GenerationRetired { .. } => (StatusCode::GONE, "generation_retired", e.to_string(), none),
        B::Generation(_) => (StatusCode::CONFLICT, "invalid_generation", e.to_string(), none),
        B::RekeyRefused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "rekey_refused", e.to_string(), none),
        B::MigrationRefused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "migration_refused", e.to_string(), none),
        B::KeyAccess(_) | B::NoWrappedKey | B::Store(_) | B::Rng | B::AuditSink(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal", "the broker failed; the operator's log has the detail".into(), none)
        }
    }
}
