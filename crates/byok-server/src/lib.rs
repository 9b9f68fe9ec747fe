//! byok's HTTP API.
//!
//! # Layout
//! - [`app`]: the router from one [`AppState`]; [`serve`] binds it with graceful shutdown.
//! - [`routes`]: one module per feature: `data` (encrypt/decrypt/rewrap, single and batch),
//!   `keys` (rotation, retiring, shredding, rekey), `tenants` (operator and
//!   tenant admin), `tickets` (support tickets), `operator` (alerts, held revocations, tokens),
//!   `ops` (health, metrics, OpenAPI).
//! - [`auth`]: bearer tokens and their scopes; no scope reaches another tenant's anything.
//! - [`error`]: the one place that knows HTTP status codes.
//! - [`metrics`]: request counts and latencies by route and status.
//! - [`console`]: the web console under `/console` (server-rendered pages, session cookies).
//! - [`views`]: what of the broker's and the store's values a client sees, as [`byok_api`]
//!   types (the request and response types shared with the CLI and the OpenAPI document).
#![forbid(unsafe_code)]

pub mod auth;
pub mod console;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use byok_broker::Broker;
use prometheus_client::registry::Registry;

/// The most items a batch may carry unless configured.
pub const DEFAULT_BATCH_ITEMS: usize = 1000;

/// Everything a handler needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub metrics: Arc<metrics::HttpMetrics>,
    pub registry: Arc<Registry>,
    /// The web console's sessions on this node.
    pub console: Arc<console::session::Sessions>,
    /// The most items one batch request may carry.
    pub max_batch_items: usize,
    /// Whether console cookies are always `Secure`.
    console_secure: bool,
    /// Set once the node is shutting down: `/readyz` then says 503 so that a load balancer
    /// stops sending requests during the drain period.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// With batches of at most `items` items.
    pub fn with_max_batch_items(mut self, items: usize) -> Self {
        self.max_batch_items = items;
        self
    }

    /// With console sessions that last `ttl` (tests shorten it).
    pub fn with_console_ttl(mut self, ttl: Duration) -> Self {
        self.console = Arc::new(console::session::Sessions::new(ttl, self.console_secure));
        self
    }

    /// With the console's cookies always `Secure` and `__Host-` prefixed (served over TLS, or
    /// behind a proxy that terminates it).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.console_secure = secure;
        self.console = Arc::new(console::session::Sessions::new(self.console.ttl(), secure));
        self
    }

    pub fn new(broker: Arc<Broker>) -> Self {
        let mut registry = Registry::default();
        broker.metrics.register(&mut registry);
        let metrics = metrics::HttpMetrics::default();
        metrics.register(&mut registry);
        Self {
            broker,
            metrics: Arc::new(metrics),
            registry: Arc::new(registry),
            max_batch_items: DEFAULT_BATCH_ITEMS,
            console: Arc::new(console::session::Sessions::new(Duration::from_secs(3600), false)),
            console_secure: false,
            draining: Arc::default(),
        }
    }
}

/// The largest request body, by default (a record plus its JSON/base64 overhead).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The whole API, without a socket (tests call it with `tower::ServiceExt::oneshot`).
pub fn app(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .merge(routes::data::router())
        .merge(routes::tenants::router())
        .merge(routes::keys::router())
        .merge(routes::tickets::router())
        .merge(routes::operator::router())
        .merge(routes::ops::router())
        .merge(console::router())
        .fallback(routes::ops::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
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
