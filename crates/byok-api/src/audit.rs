//! The audit log as the API shows it.

use serde::{Deserialize, Serialize};

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub tenant: Option<String>,
    /// Unix seconds.
    pub at: i64,
    /// `key_use`, `transition` or `ticket`.
    pub kind: String,
    /// For a key use, why (`data`, `probe`, `restore`, `onboard`); otherwise what happened.
    pub reason: String,
    /// JSON text.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// `GET /v1/tenants/{id}/audit?after=&limit=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    #[serde(default, deserialize_with = "crate::integral::query_i64")]
    pub after: i64,
    #[serde(default = "default_limit", deserialize_with = "crate::integral::query_i64")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    1000
}

/// The outcome of checking the whole chain (`GET /v1/audit/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    pub ok: bool,
    pub entries: i64,
    /// The last entry's hash: record it elsewhere to detect a cut-off tail later.
    pub head: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `GET /v1/tenants/{id}/audit/checkpoint`: the tenant's newest entry, signed with the
/// operator's Ed25519 key. A customer keeps it; `byok audit verify --checkpoint FILE` later
/// checks the log still holds that entry with that hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpoint {
    pub tenant: String,
    pub seq: i64,
    pub hash: String,
    /// RFC 3339.
    pub signed_at: String,
    /// The first 16 bytes of SHA-256 of the public key, hex.
    pub key_id: String,
    /// Ed25519, base64.
    pub public_key: String,
    /// Ed25519 over `byok-audit-checkpoint/v1\n{tenant}\n{seq}\n{hash}\n{signed_at}`, base64.
    pub signature: String,
}
