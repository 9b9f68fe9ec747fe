//! The operator's own views: alerts, held revocations, API tokens.

use byok_domain::{AlertKind, AlertStatus};
use serde::{Deserialize, Serialize};

/// An operator alert ("Provider identity failing: …", "Revocations held: …").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    pub title: String,
    pub body: String,
    pub status: AlertStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// A revocation held for a person to release or dismiss.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldRevocation {
    pub tenant: String,
    /// When the denial was first seen: a release revokes as of then.
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: time::OffsetDateTime,
    /// What each region answered.
    pub detail: serde_json::Value,
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Operator,
    Service,
    TenantAdmin,
}

/// A token as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub kind: TokenKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A service token limited to these tenants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// A service token that reaches every tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_tenants: bool,
    /// `configured` (from `byok serve`'s flags) or `issued` (through the API).
    pub origin: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<time::OffsetDateTime>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    pub kind: TokenKind,
    /// With `tenant_admin`: whose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// With `service`: the tenants whose data it reaches (or `all_tenants`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// With `service`: every tenant's data, asked for explicitly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_tenants: bool,
    /// Valid for this many days; until revoked when absent.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::integral::option_u32")]
    pub expires_in_days: Option<u32>,
    /// Revoke every other issued token of the same kind (and tenant) at once: a reissue.
    #[serde(default)]
    pub replace: bool,
}

/// The answer to `POST /v1/tokens`: the value is shown this once.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewTokenResponse {
    pub token: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for NewTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenResponse").field("token", &"** redacted **").field("info", &self.info).finish()
    }
}

/// `GET /livez` and `GET /readyz`: whether this node answers, and whether a load balancer
/// should send it traffic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Readiness {
    /// `live`, `ready` or `not_ready`.
    pub status: String,
    /// Why not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` while the provider's identity fails or revocations are held.
    pub status: String,
    pub provider_healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_problem: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub provider_failing_since: Option<time::OffsetDateTime>,
    pub revocations_held: i64,
    /// This node's name, and whether it leads (runs the monitor and the sweeper).
    pub node: String,
    pub leader: bool,
    /// The leading node, as the store says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_node: Option<String>,
}

/// An IAM role whose sign-ins (`POST /v1/auth/aws`) get a service token: `GET /v1/identities`,
/// and the body of `POST /v1/identities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsIdentity {
    /// `arn:aws:iam::ACCOUNT:role/NAME`: sessions of this role sign in.
    pub role_arn: String,
    /// The tenants whose data its tokens reach (or `all_tenants`).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Every tenant's data, asked for explicitly.
    #[serde(default)]
    pub all_tenants: bool,
}

/// `POST /v1/auth/aws`: an `sts:GetCallerIdentity` request the service signed with its own
/// credentials, with `X-Byok-Server-Id` among the signed headers.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSignInRequest {
    /// Every header the request was signed with (Host, X-Amz-Date, Authorization, …).
    pub headers: std::collections::BTreeMap<String, String>,
    /// The request's body, base64 (`Action=GetCallerIdentity&Version=2011-06-15`).
    pub body: String,
}

impl std::fmt::Debug for AwsSignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSignInRequest").field("headers", &self.headers.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// The answer to a sign-in: a short-lived service token, shown this once.
#[derive(Clone, Serialize, Deserialize)]
pub struct AwsSignInResponse {
    pub token: String,
    /// The role the caller is a session of.
    pub role_arn: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for AwsSignInResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSignInResponse").field("role_arn", &self.role_arn).finish_non_exhaustive()
    }
}
