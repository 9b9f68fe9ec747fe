//! [`BrokerError`]: what went wrong, in words a caller can act on.

use byok_domain::{IdError, LocationError, TenantId};
use byok_envelope::EnvelopeError;
use byok_kms::AccessError;
use byok_store::StoreError;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("no tenant '{0}'")]
    UnknownTenant(TenantId),
    #[error("no ticket {0}")]
    UnknownTicket(i64),
    #[error("tenant '{0}' has no held revocation")]
    NotHeld(TenantId),
    #[error("no token {0}")]
    UnknownToken(String),
    #[error("no identity for {0}")]
    UnknownIdentity(String),
    #[error("no webhook {0}")]
    UnknownWebhook(String),
    #[error("tenant '{0}' already exists")]
    TenantExists(TenantId),
    #[error("tenant '{tenant}' is {state}: run `byok tenant verify {tenant}` once the customer has run the setup commands")]
    NotActive { tenant: TenantId, state: &'static str },
    #[error("tenant '{tenant}' has revoked access to its keys; data is unavailable until access is restored (deadline {deadline})")]
    Revoked { tenant: TenantId, deadline: OffsetDateTime },
    #[error("tenant '{0}' was destroyed: its keys are erased and its data cannot be recovered")]
    Destroyed(TenantId),
    #[error("the tenant's keys could not be reached ({0}); try again shortly")]
    KeyServiceUnavailable(#[source] AccessError),
    #[error("the customer's AWS account refused access: {0}")]
    KeyAccessDenied(#[source] AccessError),
    #[error("the tenant's keys could not be used: {0}")]
    KeyAccess(#[source] AccessError),
    #[error("the tenant has no wrapped key in any of its regions")]
    NoWrappedKey,
    /// The record's key generation is below the tenant's minimum decryption generation.
    #[error(
        "the record was sealed under key generation {generation}, which tenant '{tenant}' retired (records open from generation {min}); rewrap records before retiring their generation"
    )]
    GenerationRetired { tenant: TenantId, generation: u32, min: u32 },
    /// Keys change only while the tenant is active (rotation, retiring, rekey).
    #[error("tenant '{tenant}' is {state}: its keys can change only while it is active")]
    KeysFrozen { tenant: TenantId, state: &'static str },
    #[error(transparent)]
    Generation(#[from] byok_domain::GenerationError),
    /// A replacement key that does not pass the checks onboarding makes: nothing changed.
    #[error("the new key for {region} was refused, nothing changed: {reason}")]
    RekeyRefused { region: String, reason: String },
    /// A move to customer-managed keys whose checks a region failed: nothing changed, the
    /// tenant is served as before.
    #[error("the move to customer-managed keys was refused in {region}, nothing changed: {reason}")]
    MigrationRefused { region: String, reason: String },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    InvalidId(#[from] IdError),
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("{0}")]
    Invalid(String),
    /// The lifecycle does not allow this now (verify an active tenant, restore after the
    /// deadline, destroy before it, …).
    #[error("tenant '{tenant}': {source}")]
    Transition {
        tenant: TenantId,
        #[source]
        source: byok_domain::InvalidTransition,
    },
    /// A prune whose entry and hash do not match what is kept (nothing pruned).
    #[error("no kept audit entry {through} has that hash: export again, then prune with the last entry's seq and hash")]
    AuditMismatch { through: i64 },
    #[error("the tenant changed while this request was being handled; retry")]
    Conflict,
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
    /// The store cannot be reached: cached keys keep serving, nothing is decided or written.
    #[error("the broker's store is unavailable ({0}); try again shortly")]
    StoreUnavailable(#[source] StoreError),
    #[error("the system random number generator failed")]
    Rng,
    /// A sign-in with AWS was refused: the reason, for the operator's log and the caller.
    #[error("sign-in refused: {0}")]
    SignInRefused(String),
    /// This node does not take sign-ins with AWS (`--aws-sign-in-server-id` is not set).
    #[error("sign-in with AWS is not enabled on this broker")]
    SignInDisabled,
    /// The streaming audit sink could not take a batch (it is tried again; nothing is lost).
    #[error(transparent)]
    AuditSink(#[from] crate::sink_target::SinkError),
}

impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(id) => BrokerError::TenantExists(id),
            StoreError::NotFound(id) => BrokerError::UnknownTenant(id),
            StoreError::NoTicket(id) => BrokerError::UnknownTicket(id),
            StoreError::Conflict { .. } => BrokerError::Conflict,
            other if other.is_unavailable() => BrokerError::StoreUnavailable(other),
            other => BrokerError::Store(other),
        }
    }
}

impl BrokerError {
    /// Sorts a key-access failure into unavailable (transient), denied, or other.
    pub fn from_access(e: AccessError) -> Self {
        if e.is_transient() {
            BrokerError::KeyServiceUnavailable(e)
        } else if e.is_definitive() {
            BrokerError::KeyAccessDenied(e)
        } else {
            BrokerError::KeyAccess(e)
        }
    }
}

/// Why the provider's own identity could not be proven: an outage on the provider's side that
/// alerts the operator, never a customer's revocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderFault {
    /// Its credentials, `GetCallerIdentity` or the canary failed.
    #[error(transparent)]
    Identity(#[from] AccessError),
    /// A decision needed a proof that was not taken (a bug in the caller, never a revocation).
    #[error("the provider's identity was not proven when a decision needed it")]
    NotProven,
}

/// Why the node's store is not ready to serve (a readiness probe's answer).
#[derive(Debug, thiserror::Error)]
pub enum StoreNotReady {
    #[error("{}", refused(.0))]
    Refused(#[from] StoreError),
    #[error("the store did not answer within {} ms", .0.as_millis())]
    TimedOut(std::time::Duration),
}

fn refused(e: &StoreError) -> String {
    match e {
        StoreError::Schema(problem) => format!("the store's schema: {problem}"),
        other => format!("the store does not answer: {other}"),
    }
}
