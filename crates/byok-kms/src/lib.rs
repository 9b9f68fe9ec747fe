//! How byok reaches a tenant's keys in the customer's AWS account: behind [`KeyService`], with
//! the AWS SDK implementation ([`AwsKeyService`]) and an in-memory test double
//! ([`FakeKeyService`]) for tests whose subject is something else.
//!
//! # Layout
//! - [`error`]: [`AccessError`], every AWS failure classified as a definitive denial (the
//!   customer revoked), a transient fault (never a revocation), or neither.
//! - [`aws`]: the SDK implementation: provider identity → `sts:AssumeRole` into the tenant's
//!   role with its external id → KMS with the session; sessions reused only on the data path.
//! - [`budget`]: the provider-wide call budget (governor's rate limiter) any [`KeyService`] can
//!   wear.
//! - [`sign_in`]: product services signing in with their own IAM role: their signed
//!   `GetCallerIdentity`, forwarded to STS ([`StsForwarder`]).
//! - [`provider_layer`]: the provider-held per-tenant KMS keys that destruction deletes, so that
//!   no backup can be unwrapped after it.
//! - [`fake`]: the test double.
//! - [`https`]: the HTTPS client connector byok uses outside the SDK (rustls, platform roots).
//! - `sdk`: the SDK's shared HTTPS client (`AWS_CA_BUNDLE` honoured) and a span per AWS call.
#![forbid(unsafe_code)]

pub mod aws;
pub mod budget;
pub mod error;
pub mod fake;
pub mod https;
pub mod provider_layer;
mod sdk;
pub mod sign_in;

use async_trait::async_trait;
use byok_domain::{KeyMode, Region, TenantBinding, TenantId};
use byok_envelope::TenantKey;

pub use aws::{AwsKeyService, AwsKeyServiceConfig};
pub use budget::{Budgeted, CallBudget};
pub use error::{AccessError, Denial, Fault};
pub use fake::FakeKeyService;
pub use sign_in::{CallerIdentity, CallerIdentityVerifier, SignedCallerIdentity, StsForwarder};

/// Why byok touches a customer's key. It names the STS role session (`byok-data`, …), so the
/// customer's own CloudTrail shows why each use happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Unwrapping a tenant key to serve product data. The only purpose whose sessions are reused.
    Data,
    /// The access monitor's periodic check.
    Probe,
    /// Verifying a restoration the customer said is ready.
    Restore,
    /// Verifying a new tenant's setup, and wrapping its first tenant key.
    Onboard,
    /// Wrapping a new generation of the tenant key (rotation).
    Rotate,
    /// Verifying a replacement key the customer named, and rewrapping every generation under it.
    Rekey,
    /// Proving the provider's own identity works: the canary role in the provider's account,
    /// assumed exactly the way customers' roles are.
    Canary,
}

impl Purpose {
    /// The reason an audit entry gives for the key use (`data`, `probe`, `restore`, `onboard`).
    pub fn reason(self) -> &'static str {
        match self {
            Purpose::Data => "data",
            Purpose::Probe => "probe",
            Purpose::Restore => "restore",
            Purpose::Onboard => "onboard",
            Purpose::Rotate => "rotate",
            Purpose::Rekey => "rekey",
            Purpose::Canary => "canary",
        }
    }

    pub fn session_name(self) -> &'static str {
        match self {
            Purpose::Data => "byok-data",
            Purpose::Probe => "byok-probe",
            Purpose::Restore => "byok-restore",
            Purpose::Onboard => "byok-onboard",
            Purpose::Rotate => "byok-rotate",
            Purpose::Rekey => "byok-rekey",
            Purpose::Canary => "byok-canary",
        }
    }
}

/// What DescribeKey says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key's ARN (what an alias pointed to).
    pub arn: String,
    pub state: KeyState,
    pub enabled: bool,
}

/// A KMS key's state, as DescribeKey names it (`KeyState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// A multi-Region replica or a key waiting for its material, …: not usable.
    PendingImport,
    Unavailable,
    Creating,
    Updating,
    PendingReplicaDeletion,
    /// A state this code does not know (AWS added one): shown as KMS names it.
    Other(String),
}

impl KeyState {
    pub fn as_str(&self) -> &str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
            KeyState::Unavailable => "Unavailable",
            KeyState::Creating => "Creating",
            KeyState::Updating => "Updating",
            KeyState::PendingReplicaDeletion => "PendingReplicaDeletion",
            KeyState::Other(other) => other,
        }
    }
}

impl From<&str> for KeyState {
    fn from(s: &str) -> Self {
        match s {
            "Enabled" => KeyState::Enabled,
            "Disabled" => KeyState::Disabled,
            "PendingDeletion" => KeyState::PendingDeletion,
            "PendingImport" => KeyState::PendingImport,
            "Unavailable" => KeyState::Unavailable,
            "Creating" => KeyState::Creating,
            "Updating" => KeyState::Updating,
            "PendingReplicaDeletion" => KeyState::PendingReplicaDeletion,
            other => KeyState::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The encryption-context key that carries a CMK tenant's context tag.
pub const CONTEXT_TAG_KEY: &str = "byok:context-tag";

/// The encryption context every wrapped tenant key is bound to: the tenant, the purpose, and —
/// for a key-policy (CMK) tenant that chose one — its context tag ([`CONTEXT_TAG_KEY`]), so the
/// customer's CloudTrail shows it on each of the provider's calls.
pub fn wrap_context(tenant: &TenantId, mode: &KeyMode) -> Vec<(&'static str, String)> {
    let mut context = vec![("byok:tenant", tenant.to_string()), ("byok:purpose", "tenant-key".to_string())];
    if let Some(tag) = mode.context_tag() {
        context.push((CONTEXT_TAG_KEY, tag.to_string()));
    }
    context
}

/// The credentials of one check (a probe or a restoration), used for every region of it: a
/// fresh role session, assumed once, so that a check costs one AssumeRole per tenant, not one
/// per call — or, for a key-policy (CMK) tenant, the provider's own identity (no AssumeRole).
#[derive(Clone)]
pub struct RoleSession {
    /// `None`: the provider's own credentials (a CMK tenant).
    pub(crate) credentials: Option<aws_credential_types::Credentials>,
}

impl RoleSession {
    /// The session of a key-policy (CMK) check: the provider's own identity.
    pub fn provider() -> Self {
        Self { credentials: None }
    }

    /// Whether this session came from an AssumeRole (BYOK) rather than being the provider's
    /// own identity (CMK).
    pub fn is_assumed(&self) -> bool {
        self.credentials.is_some()
    }
}

impl std::fmt::Debug for RoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoleSession(** redacted **)")
    }
}

/// Access to a tenant's KMS keys.
#[async_trait]
pub trait KeyService: Send + Sync + std::fmt::Debug {
    /// Assumes the tenant's role now, with a new session (a trust-policy change does not end
    /// live sessions, so only a fresh AssumeRole proves access). `with_external_id: false`
    /// checks that the role is *not* assumable without it.
    async fn assume_fresh(&self, binding: &TenantBinding, purpose: Purpose, with_external_id: bool) -> Result<(), AccessError>;

    /// [`Self::assume_fresh`] at `region`'s regional STS endpoint: for a tenant whose keys are
    /// not bound yet (onboarding), the first region of its location, as its later checks use.
    async fn assume_fresh_in(
        &self,
        binding: &TenantBinding,
        region: &Region,
        purpose: Purpose,
        with_external_id: bool,
    ) -> Result<(), AccessError> {
        let _ = region;
        self.assume_fresh(binding, purpose, with_external_id).await
    }

    /// DescribeKey in `region` for `key_ref`: a key ARN, or an alias in the tenant's account
    /// (`alias/byok-acme`), which is how onboarding finds the customer's keys.
    async fn describe_key(
        &self,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
        purpose: Purpose,
    ) -> Result<KeyStatus, AccessError>;

    /// Encrypts the tenant key under the region's KMS key, bound to [`wrap_context`].
    async fn wrap(
        &self,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
        purpose: Purpose,
    ) -> Result<Vec<u8>, AccessError>;

    /// Decrypts a wrapped tenant key with the region's KMS key.
    async fn unwrap(
        &self,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
        purpose: Purpose,
    ) -> Result<TenantKey, AccessError>;

    /// Assumes the tenant's role now, with a new session and the external id, for one check.
    async fn assume_session(&self, binding: &TenantBinding, purpose: Purpose) -> Result<RoleSession, AccessError>;

    /// DescribeKey in `region` with a session from [`KeyService::assume_session`].
    async fn describe_key_in(
        &self,
        session: &RoleSession,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
    ) -> Result<KeyStatus, AccessError>;

    /// Wraps `key` under the binding's key in `region` with an existing session.
    async fn wrap_in(
        &self,
        session: &RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
    ) -> Result<Vec<u8>, AccessError>;

    /// Decrypts a wrapped tenant key in `region` with a session from
    /// [`KeyService::assume_session`].
    async fn unwrap_in(
        &self,
        session: &RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
    ) -> Result<TenantKey, AccessError>;

    /// Drops any reused session for the tenant (after a revocation).
    fn forget(&self, binding: &TenantBinding);

    /// A KMS key in the provider's own account for this tenant's wrapped keys in `region` (the
    /// provider-held layer, see [`provider_layer`]); `None` where there is no such layer (the
    /// test double): wrapped keys are then stored as the customer's KMS made them.
    async fn create_provider_key(&self, region: &Region, tenant: &TenantId) -> Result<Option<byok_domain::KeyArn>, AccessError> {
        let _ = (region, tenant);
        Ok(None)
    }

    /// A KMS key in the provider's own account that a provider-held tenant (`KeyMode::Provider`)
    /// wraps its tenant key under in `region` until the customer brings keys of their own;
    /// `None` where the key service cannot make keys (the test double).
    async fn create_provider_held_key(&self, region: &Region, tenant: &TenantId) -> Result<Option<byok_domain::KeyArn>, AccessError> {
        let _ = (region, tenant);
        Ok(None)
    }

    /// Encrypts a customer-wrapped tenant key under the provider key, bound to the tenant.
    async fn provider_seal(&self, key: &byok_domain::KeyArn, tenant: &TenantId, inner: &[u8]) -> Result<Vec<u8>, AccessError> {
        let _ = (key, tenant, inner);
        Err(AccessError::Other { code: "NoProviderLayer".into(), message: "this key service has no provider-held layer".into() })
    }

    /// Decrypts what [`Self::provider_seal`] made.
    async fn provider_open(&self, key: &byok_domain::KeyArn, tenant: &TenantId, outer: &[u8]) -> Result<Vec<u8>, AccessError> {
        let _ = (key, tenant, outer);
        Err(AccessError::Other { code: "NoProviderLayer".into(), message: "this key service has no provider-held layer".into() })
    }

    /// Disables the provider key and schedules its deletion; when AWS deletes it.
    async fn destroy_provider_key(&self, key: &byok_domain::KeyArn) -> Result<time::OffsetDateTime, AccessError> {
        let _ = key;
        Err(AccessError::Other { code: "NoProviderLayer".into(), message: "this key service has no provider-held layer".into() })
    }

    /// `GetCallerIdentity` with the provider's own credentials: the ARN AWS sees the provider
    /// as (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` for a role).
    async fn caller_identity(&self) -> Result<String, AccessError>;
}
