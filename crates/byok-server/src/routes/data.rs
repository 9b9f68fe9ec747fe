//! The data plane: `POST /v1/tenants/{id}/encrypt` and `/decrypt`, for product services.
//!
//! Two shapes: JSON (`{"plaintext": BASE64, "context": "record-id"}` → `{"ciphertext": BASE64}`)
//! or raw bytes (`Content-Type: application/octet-stream`, the context in `X-Byok-Context`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_api::{DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::tenant_id;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{id}/encrypt", post(encrypt)).route("/v1/tenants/{id}/decrypt", post(decrypt))
}

pub use byok_api::CONTEXT_HEADER;

/// The request body, with body-limit and read failures in the API's error body.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(RawBody(Bytes::from_request(req, state).await?))
    }
}

fn is_raw(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("application/octet-stream"))
}

/// The body as (context, payload): raw with the context header, or JSON with `field`.
fn parse<'a, T: Deserialize<'a>>(headers: &HeaderMap, body: &'a Bytes) -> Result<Result<T, (String, &'a [u8])>, ApiError> {
    if is_raw(headers) {
        let context = match headers.get(CONTEXT_HEADER) {
            None => String::new(),
            Some(v) => v.to_str().map_err(|_| ApiError::Invalid(format!("{CONTEXT_HEADER} must be visible ASCII")))?.to_string(),
        };
        return Ok(Err((context, body.as_ref())));
    }
    serde_json::from_slice(body).map(Ok).map_err(|e| ApiError::Invalid(format!("the body must be JSON (or application/octet-stream): {e}")))
}

fn base64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD.decode(text).map_err(|_| ApiError::Invalid(format!("{field} is not valid base64")))
}

fn raw(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], bytes).into_response()
}

async fn encrypt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    caller.service()?;
    let id = tenant_id(&id)?;
    match parse::<EncryptRequest>(&headers, &body)? {
        Ok(req) => {
            let plaintext = zeroize::Zeroizing::new(base64("plaintext", &req.plaintext)?);
            let sealed = state.broker.encrypt(&id, req.context.as_bytes(), &plaintext).await?;
            Ok(Json(EncryptResponse { ciphertext: STANDARD.encode(sealed) }).into_response())
        }
        Err((context, plaintext)) => Ok(raw(state.broker.encrypt(&id, context.as_bytes(), plaintext).await?)),
    }
}

async fn decrypt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    caller.service()?;
    let id = tenant_id(&id)?;
    match parse::<DecryptRequest>(&headers, &body)? {
        Ok(req) => {
            let record = base64("ciphertext", &req.ciphertext)?;
            let plaintext = state.broker.decrypt(&id, req.context.as_bytes(), &record).await?;
            Ok(Json(DecryptResponse { plaintext: STANDARD.encode(plaintext.as_slice()) }).into_response())
        }
        Err((context, record)) => Ok(raw(state.broker.decrypt(&id, context.as_bytes(), record).await?.to_vec())),
    }
}
