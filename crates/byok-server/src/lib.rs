//! byok's HTTP API.
//!
//! # Layout
//! - [`app`]: the router from one [`AppState`] ([`state`]); [`serve`] binds it with graceful
//!   shutdown.
//! - [`routes`]: one module per feature: `data` (encrypt/decrypt/rewrap, single and batch),
//!   `keys` (rotation, retiring, shredding, rekey), `tenants` (operator and
//!   tenant admin), `tickets` (support tickets), `operator` (alerts, held revocations, tokens), `identities`
//!   (IAM roles that sign in with AWS, and the sign-in),
//!   `ops` (health, metrics, OpenAPI).
//! - [`auth`]: bearer tokens and their scopes; no scope reaches another tenant's anything.
//! - [`error`]: the one place that knows HTTP status codes.
//! - [`limits`]: a rate per identity, a request timeout, a cap on requests in flight.
//! - [`metrics`]: request counts and latencies by route and status.
//! - [`tls`]: HTTPS (HTTP/1.1 and HTTP/2), the certificate reloaded when its files change,
//!   optional client certificates.
//! - [`traces`]: a caller's W3C `traceparent` as its request span's parent.
//! - [`console`]: the web console under `/console` (server-rendered pages, session cookies).
//! - [`views`]: what of the broker's and the store's values a client sees, as [`byok_api`]
//!   types (the request and response types shared with the CLI and the OpenAPI document).
#![forbid(unsafe_code)]

pub mod auth;
pub mod console;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod tls;
pub mod traces;
pub mod views;

pub use state::{AppState, DEFAULT_BATCH_ITEMS};

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The largest request body, by default (a record plus its JSON/base64 overhead).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The largest body of the control routes (tenants, keys, tickets, tokens, holds): small JSON,
/// a ticket comment at most. Data-plane routes take `--max-body`.
pub const CONTROL_BODY_LIMIT: usize = 64 * 1024;

/// The whole API, without a socket (tests call it with `tower::ServiceExt::oneshot`).
pub fn app(state: AppState, body_limit: usize) -> Router {
    let control = body_limit.min(CONTROL_BODY_LIMIT);
    Router::new()
        .merge(routes::data::router())
        // The largest body per route: records on the data plane, small JSON everywhere else.
        .merge(routes::tenants::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::keys::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::adoption::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::tickets::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::operator::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::identities::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::webhooks::router().layer(DefaultBodyLimit::max(control)))
        .merge(routes::ops::router())
        .merge(console::router())
        .fallback(routes::ops::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown`, then lets requests in flight finish (bounded).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let drained = tokio::spawn(server.into_future());
    // Once shutdown is asked for, give in-flight requests 10 s.
    let _ = rx.await;
    match tokio::time::timeout(Duration::from_secs(10), drained).await {
        Ok(joined) => joined.unwrap_or(Ok(())),
        Err(_) => {
            tracing::warn!("requests still running 10 s after shutdown; stopping anyway");
            Ok(())
        }
    }
}

/// A request's id: the caller's `x-request-id` when it is a sane one (1 to 128 visible ASCII
/// characters), else a fresh random one. Echoed on the response, carried by every log line of
/// the request, and in handlers' extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

fn request_id(headers: &axum::http::HeaderMap) -> String {
    let given = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()));
    match given {
        Some(id) => id.to_string(),
        None => {
            let mut bytes = [0u8; 8];
            let _ = aws_lc_rs::rand::fill(&mut bytes);
            hex::encode(bytes)
        }
    }
}

/// Counts each request and its latency by route and status; gives it its request id; writes
/// the access log line when asked for.
async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = metrics::method_label(request.method()).to_string();
    let id = request_id(request.headers());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        request_id = %id,
    );
    traces::follow_caller(&span, request.headers());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", i64::from(status));
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let elapsed = started.elapsed();
    if state.access_log {
        tracing::info!(target: "byok::access", request_id = %id, method = %method, route = %route, status, micros = elapsed.as_micros() as u64, "request");
    }
    state.metrics.requests.get_or_create(&metrics::RouteLabels { method, route: route.clone(), status }).inc();
    state.metrics.latency.get_or_create(&metrics::RouteOnly { route }).observe(elapsed.as_secs_f64());
    response
}

/// The limits on every request: the timeout and the in-flight cap ([`limits`]).
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.limits.run(request, next).await
}
