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
            ApiError::Broker(e) => broker_parts(e),
        }
    }

    /// Status, stable code and message (a batch item's error).
    pub fn code_and_message(&self) -> (StatusCode, &'static str, String) {
        let (status, code, message, _) = self.parts();
        (status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, deadline) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        (status, Json(ErrorBody { error: code.to_string(), message, deadline })).into_response()
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
        B::KeyAccess(_) | B::NoWrappedKey | B::Store(_) | B::Rng => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal", "the broker failed; the operator's log has the detail".into(), none)
        }
    }
}
