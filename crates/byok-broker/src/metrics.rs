//! Prometheus metrics the broker keeps (the HTTP layer adds its own and renders them all).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KmsLabels {
    pub operation: String,
    /// `ok`, `denied`, `transient`, `error`.
    pub outcome: String,
}

#[derive(Debug, Default, Clone)]
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
    /// How long the last monitor pass on this node took, and how many tenants it probed.
    pub pass_milliseconds: Gauge,
    pub pass_tenants: Gauge,
    /// Monitor passes this node has run.
    pub passes: Counter,
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
        registry.register(
            "byok_monitor_pass_milliseconds",
            "How long the last monitor pass on this node took",
            self.pass_milliseconds.clone(),
        );
        registry.register("byok_monitor_passes", "Monitor passes this node has run", self.passes.clone());
        registry.register("byok_monitor_pass_tenants", "Tenants the last monitor pass on this node probed", self.pass_tenants.clone());
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
