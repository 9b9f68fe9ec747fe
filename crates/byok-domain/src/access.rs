//! What an API token (or a signed-in service) may reach: [`TokenScope`], and for a product
//! service, which tenants' data ([`ServiceReach`]).

use crate::TenantId;

/// What an API token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything operational: tenants, tickets. Not the data plane.
    Operator,
    /// The data plane of the tenants it reaches (a product service).
    Service(ServiceReach),
    /// One tenant's status, restoration and audit.
    TenantAdmin(TenantId),
}

/// Which tenants' data a service token reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceReach {
    /// Every tenant: asked for explicitly (`--all-tenants`).
    AllTenants,
    /// These tenants only (never empty).
    Tenants(std::collections::BTreeSet<TenantId>),
}

impl ServiceReach {
    pub fn reaches(&self, tenant: &TenantId) -> bool {
        match self {
            ServiceReach::AllTenants => true,
            ServiceReach::Tenants(tenants) => tenants.contains(tenant),
        }
    }
}

impl TokenScope {
    /// The readable prefix of a new token of this scope (`byok_op_…`, `byok_svc_…`, `byok_tenant_…`).
    pub fn token_prefix(&self) -> &'static str {
        match self {
            TokenScope::Operator => "byok_op",
            TokenScope::Service(_) => "byok_svc",
            TokenScope::TenantAdmin(_) => "byok_tenant",
        }
    }
}
