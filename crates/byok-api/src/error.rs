//! The error body every failed request answers with.

use serde::{Deserialize, Serialize};

/// `{"error": CODE, "message": …}`; `tenant_keys_revoked` adds the `deadline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code (`unknown_tenant`, `tenant_keys_revoked`, `key_service_unavailable`, …).
    pub error: String,
    /// What happened and what to do, in words.
    pub message: String,
    /// RFC 3339, with `tenant_keys_revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}
