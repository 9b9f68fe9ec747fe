//! The data plane: `POST /v1/tenants/{id}/encrypt`, `/decrypt` and `/rewrap`, for product
//! services. Rewrap takes what decrypt takes and answers what encrypt answers: the record
//! sealed again under the tenant's current key generation (the plaintext stays inside).
//!
//! Two shapes: JSON (`{"plaintext": BASE64, "context": "record-id"}` → `{"ciphertext": BASE64}`)
//! or raw bytes (`Content-Type: application/octet-stream`, the context in `X-Byok-Context`).
//!
//! Batches: `POST /v1/tenants/{id}/encrypt/batch`, `/decrypt/batch` and `/rewrap/batch` take `{"items": [...]}`
//! (each item shaped as the single request) and answer `{"results": [...], "failed": N}` in the
//! same order, each result either the single answer or `{"error": {"code", "message"}}`: a bad
//! item (invalid base64, a tampered record, the wrong context, a retired generation) fails
//! alone. What is about the
//! tenant or the caller (unknown, revoked, key access denied, store away) fails the request as
//! it would a single call. An empty batch is 400 `empty_batch`; more than the configured items
//! 413 `batch_too_large` with the limit. With `Content-Type: application/x-byok-batch` a batch
//! is raw bytes in a compact framing instead ([`frames`]), answered item by item the same way.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use byok_api::{DecryptRequest, EncryptRequest};
use byok_domain::TenantId;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{frames, tenant_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/encrypt", post(single::<EncryptRoute>))
        .route("/v1/tenants/{id}/decrypt", post(single::<DecryptRoute>))
        .route("/v1/tenants/{id}/rewrap", post(single::<RewrapRoute>))
        .route("/v1/tenants/{id}/encrypt/batch", post(batch::<EncryptRoute>))
        .route("/v1/tenants/{id}/decrypt/batch", post(batch::<DecryptRoute>))
        .route("/v1/tenants/{id}/rewrap/batch", post(batch::<RewrapRoute>))
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

/// What a data-plane request body is, by its `Content-Type`'s essence (the type and subtype,
/// compared whole and case-insensitively: `application/x-byok-batchFOO` is not the framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// `application/json`, or no `Content-Type`.
    Json,
    /// `application/octet-stream`: one record's raw bytes (single routes).
    Raw,
    /// `application/x-byok-batch`: the binary framing (batch routes).
    Frames,
}

/// The body's media type, if `allowed` on this route; else 415 naming what is.
fn media(headers: &HeaderMap, allowed: [Media; 2]) -> Result<Media, ApiError> {
    let media = match headers.get(header::CONTENT_TYPE) {
        None => Some(Media::Json),
        Some(value) => {
            let essence = value.to_str().ok().and_then(|v| v.split(';').next()).map(|e| e.trim().to_ascii_lowercase());
            match essence.as_deref() {
                Some("application/json") => Some(Media::Json),
                Some("application/octet-stream") => Some(Media::Raw),
                Some(frames::MEDIA_TYPE) => Some(Media::Frames),
                Some(_) | None => None,
            }
        }
    };
    media.filter(|m| allowed.contains(m)).ok_or_else(|| {
        let names: Vec<&str> = allowed
            .iter()
            .map(|m| match m {
                Media::Json => "application/json",
                Media::Raw => "application/octet-stream",
                Media::Frames => frames::MEDIA_TYPE,
            })
            .collect();
        ApiError::UnsupportedMediaType(format!("this route takes {}", names.join(" or ")))
    })
}

fn is_raw(headers: &HeaderMap) -> Result<bool, ApiError> {
    Ok(media(headers, [Media::Json, Media::Raw])? == Media::Raw)
}

/// The body as (context, payload): raw with the context header, or JSON with `field`.
/// A context header that is not visible ASCII is refused whatever the body (it is only read with
/// a raw body, but a request that carries a malformed one is malformed).
fn parse<'a, T: Deserialize<'a>>(headers: &HeaderMap, body: &'a Bytes) -> Result<Result<T, (String, &'a [u8])>, ApiError> {
    let context = match headers.get(CONTEXT_HEADER) {
        None => "",
        Some(v) => v
            .to_str()
            .ok()
            .filter(|c| c.bytes().all(|b| (0x20..=0x7e).contains(&b)))
            .ok_or_else(|| ApiError::Invalid(format!("{CONTEXT_HEADER} must be visible ASCII")))?,
    };
    if is_raw(headers)? {
        return Ok(Err((context.to_string(), body.as_ref())));
    }
    serde_json::from_slice(body).map(Ok).map_err(|e| ApiError::Invalid(format!("the body must be JSON (or application/octet-stream): {e}")))
}

/// Decodes standard padded base64 (RFC 4648 §4; the OpenAPI document's `Base64` pattern, which
/// also refuses non-canonical trailing bits). base64-simd rather than the `base64` crate on this
/// path: at 4 KiB records the scalar decode and encode were a third of a batch's CPU.
fn base64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    base64_simd::STANDARD.decode_to_vec(text).map_err(|_| ApiError::Invalid(format!("{field} is not valid base64")))
}

fn raw(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], bytes).into_response()
}

/// What a data-plane route does to each record.
#[derive(Debug, Clone, Copy)]
enum Op {
    Encrypt,
    Decrypt,
    /// Open, then seal under the current generation, inside the broker: the plaintext is never
    /// in the answer (nor in this process after the call: it is wiped when dropped).
    Rewrap,
}

/// An operation's output: a sealed record, or an opened one (wiped on drop).
enum Output {
    Sealed(Vec<u8>),
    Opened(byok_broker::Plaintext),
}

impl AsRef<[u8]> for Output {
    fn as_ref(&self) -> &[u8] {
        match self {
            Output::Sealed(bytes) => bytes,
            Output::Opened(plaintext) => plaintext.as_slice(),
        }
    }
}

impl Op {
    /// The JSON field an item's payload comes in, and the one its output goes out in.
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Op::Encrypt => ("plaintext", "ciphertext"),
            Op::Decrypt => ("ciphertext", "plaintext"),
            Op::Rewrap => ("ciphertext", "ciphertext"),
        }
    }

    async fn run(self, broker: &byok_broker::Broker, id: &TenantId, context: &[u8], payload: &[u8]) -> Result<Output, ApiError> {
        Ok(match self {
            Op::Encrypt => Output::Sealed(broker.encrypt(id, context, payload).await?),
            Op::Decrypt => Output::Opened(broker.decrypt(id, context, payload).await?),
            Op::Rewrap => Output::Sealed(broker.rewrap(id, context, payload).await?),
        })
    }
}

/// A JSON request item, single or in a batch: its context and base64 payload.
trait Item: for<'de> Deserialize<'de> {
    fn parts(&self) -> (&str, &str);
}

impl Item for EncryptRequest {
    fn parts(&self) -> (&str, &str) {
        (&self.context, &self.plaintext)
    }
}

impl Item for DecryptRequest {
    fn parts(&self) -> (&str, &str) {
        (&self.context, &self.ciphertext)
    }
}

/// Appends `{"FIELD":"BASE64"}`, the single answer and a batch item's result, written directly:
/// base64 needs no JSON escaping, and scanning 5 KiB for escapes was a tenth of a request's CPU.
fn write_answer(out: &mut String, field: &str, bytes: &[u8]) {
    out.push_str("{\"");
    out.push_str(field);
    out.push_str("\":\"");
    base64_simd::STANDARD.encode_append(bytes, out);
    out.push_str("\"}");
}

/// One JSON item through `op`: its base64 payload decoded, the operation's output.
async fn run_item<T: Item>(op: Op, broker: &byok_broker::Broker, id: &TenantId, item: &T) -> Result<Output, ApiError> {
    let (context, payload) = item.parts();
    // Wiped when dropped (one memset; see `Plaintext`): it may be the caller's plaintext.
    let payload = byok_broker::Plaintext::new(base64(op.fields().0, payload)?);
    op.run(broker, id, context.as_bytes(), &payload).await
}

fn json_body(body: String) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A route's operation and its JSON item type, as a type (so one generic handler serves each).
trait Route: Send + 'static {
    const OP: Op;
    type Item: Item + Send;
}

struct EncryptRoute;
struct DecryptRoute;
struct RewrapRoute;

impl Route for EncryptRoute {
    const OP: Op = Op::Encrypt;
    type Item = EncryptRequest;
}

impl Route for DecryptRoute {
    const OP: Op = Op::Decrypt;
    type Item = DecryptRequest;
}

impl Route for RewrapRoute {
    const OP: Op = Op::Rewrap;
    type Item = DecryptRequest;
}

/// A single-record route: JSON in and out, or raw bytes in and out.
async fn single<R: Route>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let op = R::OP;
    let id = tenant_id(&id)?;
    caller.service_for(&id)?;
    match parse::<R::Item>(&headers, &body)? {
        Ok(req) => {
            let output = run_item(op, &state.broker, &id, &req).await?;
            let mut body = String::with_capacity(output.as_ref().len() * 4 / 3 + 32);
            write_answer(&mut body, op.fields().1, output.as_ref());
            Ok(json_body(body))
        }
        Err((context, payload)) => Ok(raw(op.run(&state.broker, &id, context.as_bytes(), payload).await?.as_ref().to_vec())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<T> {
    items: Vec<T>,
}

/// Parses a batch and checks its size against the limit.
fn batch_items<T: for<'de> Deserialize<'de>>(state: &AppState, body: &Bytes) -> Result<Vec<T>, ApiError> {
    let batch: Batch<T> =
        serde_json::from_slice(body).map_err(|e| ApiError::Invalid(format!("the body must be {{\"items\": [...]}}: {e}")))?;
    if batch.items.is_empty() {
        return Err(ApiError::EmptyBatch);
    }
    if batch.items.len() > state.max_batch_items {
        return Err(ApiError::BatchTooLarge { items: batch.items.len(), limit: state.max_batch_items });
    }
    Ok(batch.items)
}

/// Whether an error is about the item alone (its encoding, its record), not the request.
fn is_item_error(e: &ApiError) -> bool {
    use byok_broker::BrokerError as B;
    matches!(e, ApiError::Invalid(_) | ApiError::Broker(B::Envelope(_) | B::GenerationRetired { .. }))
}

fn is_frames(headers: &HeaderMap) -> Result<bool, ApiError> {
    Ok(media(headers, [Media::Json, Media::Frames])? == Media::Frames)
}

/// Runs `each` over a binary batch's items (`application/x-byok-batch`, see [`frames`]) in
/// order, answering item by item in the same framing.
async fn run_frames<'a, Out, Fut>(state: &AppState, body: &'a Bytes, each: impl Fn(&'a [u8], &'a [u8]) -> Fut) -> Result<Response, ApiError>
where
    Out: AsRef<[u8]>,
    Fut: std::future::Future<Output = Result<Out, ApiError>>,
{
    let items = frames::parse(body, state.max_batch_items)?;
    // Room for every item plus a record's overhead (49 bytes) and a result header (5).
    let mut out = Vec::with_capacity(body.len() + items.len() * 54);
    let mut failed = 0usize;
    for item in items {
        match each(item.context, item.payload).await {
            Ok(bytes) => frames::push(&mut out, Ok(bytes.as_ref())),
            Err(e) if is_item_error(&e) => {
                failed += 1;
                let (_, code, message) = e.code_and_message();
                frames::push(&mut out, Err((code, &message)));
            }
            Err(e) => return Err(e),
        }
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(frames::MEDIA_TYPE)),
        (header::HeaderName::from_static(frames::FAILED_HEADER), HeaderValue::from(failed)),
    ];
    Ok((headers, out).into_response())
}

/// Runs `each` over a batch's items in order, answering item by item: `{"results": [...],
/// "failed": N}`, each result `{FIELD: base64 output}` or the item's own error. An error that is
/// not about the item fails the request.
async fn run_batch<T, Fut>(state: &AppState, body: &Bytes, field: &str, each: impl Fn(T) -> Fut) -> Result<Response, ApiError>
where
    T: for<'de> Deserialize<'de>,
    Fut: std::future::Future<Output = Result<Output, ApiError>>,
{
    let items = batch_items::<T>(state, body)?;
    let mut out = String::with_capacity(body.len() + items.len() * 96);
    out.push_str("{\"results\":[");
    let mut failed = 0usize;
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match each(item).await {
            Ok(output) => write_answer(&mut out, field, output.as_ref()),
            Err(e) if is_item_error(&e) => {
                failed += 1;
                let (_, code, message) = e.code_and_message();
                out.push_str(&serde_json::json!({ "error": { "code": code, "message": message } }).to_string());
            }
            Err(e) => return Err(e),
        }
    }
    out.push_str(&format!("],\"failed\":{failed}}}"));
    Ok(json_body(out))
}

/// A batch route: JSON items, or the binary framing.
async fn batch<R: Route>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let op = R::OP;
    let id = tenant_id(&id)?;
    caller.service_for(&id)?;
    let (broker, id) = (&state.broker, &id);
    if is_frames(&headers)? {
        return run_frames(&state, &body, move |context, payload| op.run(broker, id, context, payload)).await;
    }
    run_batch(&state, &body, op.fields().1, move |item: R::Item| async move { run_item(op, broker, id, &item).await }).await
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    /// The fast decoder accepts exactly what the `base64` crate's strict STANDARD engine (and
    /// the OpenAPI document's pattern) accepts.
    #[test]
    fn the_fast_decoder_is_as_strict_as_the_document() {
        for text in
            ["", "QQ==", "QR==", "QUI=", "QUJ=", "QUJD", "QUJD\n", " QUJD", "QQ", "QQ=", "====", "QUJD====", "Q===", "QU=I", "_-==", "+/+/"]
        {
            let strict = base64::engine::general_purpose::STANDARD.decode(text).ok();
            let fast = super::base64("x", text).ok();
            assert_eq!(fast, strict, "{text:?}");
        }
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = String::new();
        super::write_answer(&mut out, "ciphertext", &bytes);
        assert_eq!(out, format!("{{\"ciphertext\":\"{}\"}}", base64::engine::general_purpose::STANDARD.encode(&bytes)));
    }
}
