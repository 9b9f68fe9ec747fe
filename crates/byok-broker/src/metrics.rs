//! Prometheus metrics the broker keeps (the HTTP layer adds its own and renders them all).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KmsLabels {
    pub operation: String,
    /// `ok`, `denied`, `transient`, `error`.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `onboarding`, `active`, `revoked`, `destroyed`: a bounded set.
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `retry`, `dead`: a bounded set.
    pub outcome: String,
}

/// Buckets of a monitor pass's duration, in seconds (a pass spreads its probes over half the
/// interval: 30 s by default).
const PASS_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

#[derive(Debug, Clone)]
pub struct Metrics {
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub kms_calls: Family<KmsLabels, Counter>,
    /// 1 while the provider's identity (and canary) passes, 0 while it fails.
    pub provider_healthy: Gauge,
    /// Revocations waiting for a person.
    pub revocations_held: Gauge,
    /// Monitor passes that decided nothing because the provider's identity failed.
    pub provider_faults: Counter,
    /// 1 while this node holds the leader lease (runs the monitor and the sweeper).
    pub leader: Gauge,
    /// How long monitor passes on this node took, in seconds.
    pub pass_duration: Histogram,
    /// How many tenants the last pass on this node probed.
    pub pass_tenants: Gauge,
    /// Monitor passes this node has run.
    pub passes: Counter,
    /// When a pass on this node last ran to its end with the provider's identity working
    /// (unix seconds; 0 before the first).
    pub last_success: Gauge,
    /// Tenants by state, as the store counts them (refreshed when scraped).
    pub tenants: Family<StateLabels, Gauge>,
    /// The nearest deadline of a revoked tenant (unix seconds; 0 while none is revoked).
    pub next_deadline: Gauge,
    /// Webhook delivery attempts on this node, by outcome.
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    /// Webhook deliveries given up on (all nodes; refreshed by the leader's dispatcher).
    pub webhook_dead_letters: Gauge,
    /// Audit entries the streaming sink has not taken yet, as the leader's last round saw them
    /// (0: caught up, or no sink).
    pub audit_sink_behind: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            kms_calls: Family::default(),
            provider_healthy: Gauge::default(),
            revocations_held: Gauge::default(),
            provider_faults: Counter::default(),
            leader: Gauge::default(),
            pass_duration: Histogram::new(PASS_BUCKETS),
            pass_tenants: Gauge::default(),
            passes: Counter::default(),
            last_success: Gauge::default(),
            tenants: Family::default(),
            next_deadline: Gauge::default(),
            webhook_deliveries: Family::default(),
            webhook_dead_letters: Gauge::default(),
            audit_sink_behind: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("byok_key_cache_hits", "Data-plane requests served from the node's key cache", self.cache_hits.clone());
        registry.register("byok_key_cache_misses", "Data-plane requests that had to unwrap the tenant key", self.cache_misses.clone());
        registry.register("byok_kms_calls", "Calls to the customers' KMS and STS, by operation and outcome", self.kms_calls.clone());
        registry.register("byok_provider_healthy", "1 while the provider's own identity and canary work", self.provider_healthy.clone());
        registry.register("byok_revocations_held", "Revocations held for a person to release or dismiss", self.revocations_held.clone());
        registry.register(
            "byok_provider_faults",
            "Monitor passes that decided nothing because the provider's identity failed",
            self.provider_faults.clone(),
        );
        registry.register_with_unit(
            "byok_monitor_pass_duration",
            "How long monitor passes on this node took",
            prometheus_client::registry::Unit::Seconds,
            self.pass_duration.clone(),
        );
        registry.register("byok_monitor_passes", "Monitor passes this node has run", self.passes.clone());
        registry.register("byok_monitor_pass_tenants", "Tenants the last monitor pass on this node probed", self.pass_tenants.clone());
        registry.register_with_unit(
            "byok_monitor_last_success_timestamp",
            "When a monitor pass on this node last ran to its end with the provider's identity working (0: never)",
            prometheus_client::registry::Unit::Seconds,
            self.last_success.clone(),
        );
        registry.register(
            "byok_leader",
            "1 while this node holds the leader lease (runs the monitor and the sweeper)",
            self.leader.clone(),
        );
        registry.register("byok_tenants", "Tenants by state", self.tenants.clone());
        registry.register("byok_webhook_deliveries", "Webhook delivery attempts, by outcome", self.webhook_deliveries.clone());
        registry.register(
            "byok_webhook_dead_letters",
            "Webhook deliveries given up on after a day of attempts",
            self.webhook_dead_letters.clone(),
        );
        registry.register(
            "byok_audit_sink_behind_entries",
            "Audit entries the streaming sink has not taken yet (at least the batch that failed; 0: caught up)",
            self.audit_sink_behind.clone(),
        );
        registry.register_with_unit(
            "byok_next_deadline_timestamp",
            "The nearest restoration deadline of a revoked tenant (0: none is revoked)",
            prometheus_client::registry::Unit::Seconds,
            self.next_deadline.clone(),
        );
        // `byok_build_info{version}` 1.
        let build = vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())];
        registry.register("byok_build", "This build, by version", prometheus_client::metrics::info::Info::new(build));
        registry.register_collector(Box::new(crate::process_metrics::ProcessCollector));
    }

    pub fn kms(&self, operation: &str, result: &Result<impl Sized, byok_kms::AccessError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) if e.is_definitive() => "denied",
            Err(e) if e.is_transient() => "transient",
            Err(_) => "error",
        };
        self.kms_calls.get_or_create(&KmsLabels { operation: operation.into(), outcome: outcome.into() }).inc();
    }
}

/// The tenants' states, as every state gauge names them.
const STATES: [&str; 4] = ["onboarding", "active", "revoked", "destroyed"];

impl Metrics {
    /// Sets the tenants-by-state gauges and the nearest deadline from a census of the store.
    pub fn record_census(&self, census: &byok_store::TenantCensus) {
        for state in STATES {
            let n = census.by_state.get(state).copied().unwrap_or(0);
            self.tenants.get_or_create(&StateLabels { state: state.to_string() }).set(n);
        }
        self.next_deadline.set(census.next_deadline.map_or(0, |d| d.unix_timestamp()));
    }
}
