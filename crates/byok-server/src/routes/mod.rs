//! One module per feature, each with its own `router()`.

pub mod adoption;
pub mod data;
pub mod frames;
pub mod identities;
pub mod keys;
pub mod operator;
pub mod ops;
pub mod tenants;
pub mod tickets;
pub mod webhooks;

use byok_domain::TenantId;

use crate::error::ApiError;

/// A tenant id from a path segment.
pub(crate) fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    raw.parse().map_err(|e: byok_domain::IdError| ApiError::Invalid(e.to_string()))
}
