//! [`Broker`]: the one handle on a node's broker — its configuration, store, key service, clock,
//! key cache and metrics — and the tenant look-ups every feature shares. Each feature adds its
//! own `impl Broker` block in its own file (see the crate's layout).

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

use byok_domain::{Tenant, TenantId};
use byok_kms::KeyService;
use byok_store::Store;

use crate::cache::KeyCache;
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::error::{BrokerError, StoreNotReady};
use crate::metrics::Metrics;
use crate::probe_queue::ProbeQueue;
use crate::probe_summaries::ProbeSummaries;
use crate::provider_health::HealthCell;
use crate::token_cache::TokenCache;

/// The broker. Cheap to share behind an `Arc`; every method is safe to call concurrently.
#[derive(Debug)]
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) kms: Arc<dyn KeyService>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cache: KeyCache,
    pub metrics: Metrics,
    /// Token hash → what this node read about it, and when (see [`crate::tokens`]).
    pub(crate) token_cache: TokenCache,
    /// The latest check of each tenant's regions on this node (for status pages).
    pub(crate) last_checks: RwLock<HashMap<TenantId, LastCheck>>,
    /// Tenants the data path saw denied: the monitor probes them at once, outside the request.
    pub(crate) probe_queue: ProbeQueue,
    pub(crate) adoption_tally: crate::adoption_tally::AdoptionTally,
    /// The last check of the provider's own identity.
    pub(crate) provider_health: HealthCell,
    /// The monitor's last pass on this node.
    pub(crate) last_pass: RwLock<Option<crate::monitor::report::PassStats>>,
    /// Routine successful probes counted but not yet written, by (tenant, region).
    pub(crate) probe_summaries: ProbeSummaries,
    /// Until when this node may do leader work (its monotonic clock), if it holds the lease.
    pub(crate) leader_until: parking_lot::Mutex<Option<std::time::Instant>>,
    /// The leader's watch on customers' re-pointed aliases (see [`crate::rotation`]).
    pub(crate) aliases: parking_lot::Mutex<crate::alias_watch::AliasWatch>,
    /// One restoration per tenant at a time, its answer shared (see [`crate::flight`]).
    pub(crate) restorations: crate::flight::Flights<crate::outcomes::Restoration>,
    /// One verification per tenant at a time, its answer shared.
    pub(crate) verifications: crate::flight::Flights<crate::outcomes::Verification>,
    /// Failed erasure proofs in a row (see [`crate::erasure`]).
    pub(crate) erasure_attempts: crate::erasure_attempts::ErasureAttempts,
    /// Opened provider layers (see [`crate::provider_layer`]).
    pub(crate) opened_layers: crate::opened_layers::OpenedLayers,
    /// Sign-in with AWS, when enabled (see [`crate::aws_sign_in`]).
    pub(crate) aws_sign_in: Option<crate::config::AwsSignIn>,
    /// The operator's key for audit checkpoints, when configured (see [`crate::audit_signing`]).
    pub(crate) audit_signer: Option<Arc<crate::audit_signing::AuditSigner>>,
    /// Where the audit log streams to, when configured (see [`crate::audit_sink`]).
    pub(crate) audit_sink: Option<crate::sink_target::SinkTarget>,
    /// When this node last ran a round of checkpoints (see [`crate::audit_checkpoints`]).
    pub(crate) last_checkpoints: parking_lot::Mutex<Option<time::OffsetDateTime>>,
}

use crate::outcomes::LastCheck;

impl Broker {
    pub fn new(config: BrokerConfig, store: Arc<dyn Store>, kms: Arc<dyn KeyService>, clock: Arc<dyn Clock>) -> Self {
        let cache = KeyCache::new(config.cache_ttl, clock.clone());
        Self {
            config,
            store,
            kms,
            clock,
            cache,
            metrics: Metrics::default(),
            token_cache: TokenCache::default(),
            last_checks: RwLock::default(),
            probe_queue: ProbeQueue::default(),
            adoption_tally: crate::adoption_tally::AdoptionTally::default(),
            provider_health: HealthCell::default(),
            last_pass: RwLock::default(),
            leader_until: parking_lot::Mutex::default(),
            aliases: parking_lot::Mutex::default(),
            probe_summaries: ProbeSummaries::default(),
            restorations: crate::flight::Flights::default(),
            verifications: crate::flight::Flights::default(),
            erasure_attempts: crate::erasure_attempts::ErasureAttempts::default(),
            opened_layers: crate::opened_layers::OpenedLayers::default(),
            aws_sign_in: None,
            audit_signer: None,
            audit_sink: None,
            last_checkpoints: parking_lot::Mutex::default(),
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant, BrokerError> {
        self.store.tenant(id).await?.ok_or_else(|| BrokerError::UnknownTenant(id.clone()))
    }

    /// Whether this node's store answers within `within` (a readiness probe's question).
    pub async fn store_answers(&self, within: std::time::Duration) -> Result<(), StoreNotReady> {
        match tokio::time::timeout(within, self.store.ping()).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(StoreNotReady::TimedOut(within)),
        }
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, BrokerError> {
        Ok(self.store.tenants().await?)
    }

    /// The tenant's latest region check on this node, if any.
    pub fn last_check(&self, id: &TenantId) -> Option<LastCheck> {
        self.last_checks.read().get(id).cloned()
    }

    pub(crate) fn record_check(&self, id: &TenantId, check: LastCheck) {
        self.last_checks.write().insert(id.clone(), check);
    }

    /// Refreshes the tenants-by-state gauges and the nearest deadline from the store (when
    /// `/metrics` is scraped). A store that cannot answer leaves the last values.
    pub async fn refresh_census(&self) {
        match self.store.tenant_census().await {
            Ok(census) => self.metrics.record_census(&census),
            Err(e) => tracing::warn!(error = %e, "could not count tenants for the metrics"),
        }
    }
}
