//! [`AppState`]: everything a handler needs, cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use byok_broker::Broker;
use prometheus_client::registry::Registry;

use crate::console::session::Sessions;
use crate::metrics;

/// The most items a batch may carry unless configured.
pub const DEFAULT_BATCH_ITEMS: usize = 1000;

/// Everything a handler needs, cheap to clone: one reference count, whatever it holds. Every
/// request clones the state once per layer it passes (the router's middlewares and the
/// handler); with each field an `Arc` of its own that was a dozen atomic increments and
/// decrements a layer, about 5 % of a 4 KiB encrypt's CPU in a profile.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
#[derive(Clone, Debug)]
pub struct Shared {
    pub broker: Arc<Broker>,
    pub metrics: Arc<metrics::HttpMetrics>,
    pub registry: Arc<Registry>,
    /// The web console's sessions on this node.
    pub console: Arc<Sessions>,
    /// The most items one batch request may carry.
    pub max_batch_items: usize,
    /// Whether console cookies are always `Secure`.
    console_secure: bool,
    /// The product's name as customers know it, shown by the console instead of "byok".
    pub product_name: Arc<str>,
    /// Set once the node is shutting down: `/readyz` then says 503 so that a load balancer
    /// stops sending requests during the drain period.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The limits on every caller.
    pub limits: crate::limits::Limits,
    /// One `byok::access` log line per request (off by default: a line a request costs the data
    /// plane's hot path).
    pub access_log: bool,
    /// Client-certificate common names (mutual TLS) and the tenants each reaches as a service.
    pub client_identities: Arc<std::collections::HashMap<String, byok_store::ServiceReach>>,
}

impl AppState {
    /// With batches of at most `items` items.
    pub fn with_max_batch_items(mut self, items: usize) -> Self {
        self.shared().max_batch_items = items;
        self
    }

    /// With these client-certificate identities (mutual TLS): a request that carries no bearer
    /// token is the service its certificate's common name maps to.
    pub fn with_client_identities(mut self, identities: std::collections::HashMap<String, byok_store::ServiceReach>) -> Self {
        self.shared().client_identities = Arc::new(identities);
        self
    }

    /// With an access log line per request, or not.
    pub fn with_access_log(mut self, on: bool) -> Self {
        self.shared().access_log = on;
        self
    }

    /// With these limits on callers.
    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.shared().limits = limits;
        self
    }

    /// With console sessions that last `ttl` (tests shorten it).
    pub fn with_console_ttl(mut self, ttl: Duration) -> Self {
        let secure = self.console_secure;
        self.shared().console = Arc::new(Sessions::new(ttl, secure));
        self
    }

    /// With the console's cookies always `Secure` and `__Host-` prefixed (served over TLS, or
    /// behind a proxy that terminates it).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        let ttl = self.console.ttl();
        let shared = self.shared();
        shared.console_secure = secure;
        shared.console = Arc::new(Sessions::new(ttl, secure));
        self
    }

    /// With the console branded `name` instead of "byok".
    pub fn with_product_name(mut self, name: &str) -> Self {
        self.shared().product_name = Arc::from(name);
        self
    }

    pub fn new(broker: Arc<Broker>) -> Self {
        let mut registry = Registry::default();
        broker.metrics.register(&mut registry);
        let metrics = metrics::HttpMetrics::default();
        metrics.register(&mut registry);
        Self(Arc::new(Shared {
            broker,
            metrics: Arc::new(metrics),
            registry: Arc::new(registry),
            max_batch_items: DEFAULT_BATCH_ITEMS,
            console: Arc::new(Sessions::new(Duration::from_secs(3600), false)),
            console_secure: false,
            product_name: Arc::from("byok"),
            draining: Arc::default(),
            limits: crate::limits::Limits::default(),
            client_identities: Arc::default(),
            access_log: false,
        }))
    }

    /// The fields, to change while the node is being set up (before any clone is shared, so
    /// nothing is copied).
    fn shared(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}
