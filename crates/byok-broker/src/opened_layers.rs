//! Provider layers this node opened (see [`crate::provider_layer`]): the customer-wrapped key
//! under each stored one, so that a cached tenant costs no call to the provider's KMS.

use std::collections::HashMap;

use byok_domain::TenantId;
use parking_lot::Mutex;

/// Opened layers on this node: tenant → stored bytes → customer-wrapped key.
#[derive(Debug, Default)]
pub(crate) struct OpenedLayers(Mutex<HashMap<TenantId, HashMap<Vec<u8>, Vec<u8>>>>);

impl OpenedLayers {
    pub(crate) fn get(&self, tenant: &TenantId, stored: &[u8]) -> Option<Vec<u8>> {
        self.0.lock().get(tenant).and_then(|m| m.get(stored)).cloned()
    }

    pub(crate) fn put(&self, tenant: &TenantId, stored: &[u8], inner: &[u8]) {
        self.0.lock().entry(tenant.clone()).or_default().insert(stored.to_vec(), inner.to_vec());
    }

    /// Forgets a tenant's opened layers (its keys changed, or it is no longer active).
    pub(crate) fn forget(&self, tenant: &TenantId) {
        self.0.lock().remove(tenant);
    }
}
