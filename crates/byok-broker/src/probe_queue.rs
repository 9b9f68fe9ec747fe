//! Tenants to probe now: the data path saw a denial, and the monitor probes the tenant at once
//! through the same pipeline as a pass (see [`crate::monitor`]), outside the request.

use std::collections::HashSet;

use byok_domain::TenantId;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Each tenant waits once however often it was asked for.
#[derive(Debug, Default)]
pub struct ProbeQueue {
    waiting: Mutex<HashSet<TenantId>>,
    wake: Notify,
}

impl ProbeQueue {
    /// Asks for `id` to be probed, and wakes the monitor.
    pub(crate) fn push(&self, id: &TenantId) {
        self.waiting.lock().insert(id.clone());
        self.wake.notify_one();
    }

    /// Every tenant asked for since the last call.
    pub(crate) fn take(&self) -> Vec<TenantId> {
        self.waiting.lock().drain().collect()
    }

    /// Resolves when a tenant is asked for.
    pub(crate) async fn asked(&self) {
        self.wake.notified().await;
    }
}
