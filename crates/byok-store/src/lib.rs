//! byok's store, behind the [`Store`] trait: tenants (with their lifecycle state, changed only
//! by compare-and-set on a version), the wrapped tenant keys (erased at destruction), and API
//! token hashes.
//!
//! # Layout
//! - [`Store`] and its types: this page.
//! - [`sql`]: the implementation for SQLite (the embedded default, one file) and PostgreSQL
//!   (several broker nodes), one SQL text through sqlx's `Any` driver. Tested by one contract
//!   suite on both.
//! - [`dialect`]: everything where the two differ (URL, migrations in
//!   `migrations/{sqlite,postgres}`, connection set-up, placeholders, append locking, erasing).
#![forbid(unsafe_code)]

pub mod dialect;
pub mod sql;

use async_trait::async_trait;
use byok_domain::{Author, KeyArn, Region, Tenant, TenantBinding, TenantId, TicketStatus, Transition};

pub use dialect::Dialect;
pub use sql::SqlStore;

/// A tenant key wrapped under one region's KMS key.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub region: Region,
    pub key_arn: KeyArn,
    pub generation: u32,
    /// KMS ciphertext: useless without the customer's key, but erased at destruction all the same.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("region", &self.region)
            .field("key_arn", &self.key_arn)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A support ticket ("BYOK revocation started for AWS account …", `docs/customer-guide.md`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ticket {
    pub id: i64,
    pub tenant: TenantId,
    pub title: String,
    pub status: TicketStatus,
    pub reminders_sent: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// One comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Comment {
    pub id: i64,
    pub author: Author,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// One audit-log entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub tenant: Option<String>,
    /// Unix seconds.
    pub at: i64,
    pub kind: String,
    pub reason: String,
    /// JSON text.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Builds the audit entry for the next sequence number after the given previous hash. Passed
/// to the store so that an entry is chained and written in the very transaction it records.
pub type Seal<'a> = &'a (dyn for<'p> Fn(i64, &'p str) -> AuditEntry + Send + Sync);

/// What an API token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything operational: tenants, tickets. Not the data plane.
    Operator,
    /// The data plane of every tenant (a product service).
    Service,
    /// One tenant's status, restoration and audit.
    TenantAdmin(TenantId),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("tenant {0} already exists")]
    AlreadyExists(TenantId),
    #[error("tenant {0} does not exist")]
    NotFound(TenantId),
    #[error("ticket {0} does not exist")]
    NoTicket(i64),
    /// Someone else changed the tenant first: re-read and decide again.
    #[error("tenant {id} changed concurrently (expected version {expected})")]
    Conflict { id: TenantId, expected: i64 },
    /// A state-changing method was handed a transition it does not write (a bug in the caller).
    #[error("the store does not write a {event} transition through {method}")]
    WrongTransition { method: &'static str, event: &'static str },
    #[error("stored data for {what} is unreadable: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// The store.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Adds a tenant (its version as given, normally 1).
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// All tenants, by id.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// The ids of tenants that are not active (revoked, destroyed, onboarding): cheap enough to
    /// ask every second, so every node drops their cached keys at once.
    async fn inactive_tenants(&self) -> Result<Vec<TenantId>, StoreError>;

    /// Writes a revocation or restoration: the tenant must still be at version `expected` and
    /// in the transition's starting state; `audit` is appended in the same transaction. Returns
    /// the tenant at its new version. (Activation and destruction have their own methods, as
    /// they also write keys.)
    async fn set_state(&self, id: &TenantId, expected: i64, transition: &Transition, audit: Seal<'_>) -> Result<Tenant, StoreError>;

    /// Stores the verified binding and wrapped keys and applies the `Verified` transition,
    /// atomically, if the version is `expected`.
    async fn activate(
        &self,
        id: &TenantId,
        expected: i64,
        binding: &TenantBinding,
        keys: &[WrappedKey],
        transition: &Transition,
        audit: Seal<'_>,
    ) -> Result<Tenant, StoreError>;

    /// Erases every wrapped key and applies the `DeadlinePassed` transition, atomically, if the
    /// version is `expected`. After this the tenant's data cannot be decrypted by anyone.
    async fn destroy(&self, id: &TenantId, expected: i64, transition: &Transition, audit: Seal<'_>) -> Result<Tenant, StoreError>;

    async fn wrapped_keys(&self, id: &TenantId) -> Result<Vec<WrappedKey>, StoreError>;

    /// Records a token by the hex SHA-256 of its value.
    async fn put_token(&self, hash: &str, scope: &TokenScope) -> Result<(), StoreError>;

    async fn token_scope(&self, hash: &str) -> Result<Option<TokenScope>, StoreError>;

    /// Opens a ticket with its first comment (by `byok`).
    async fn open_ticket(&self, tenant: &TenantId, title: &str, body: &str, at: time::OffsetDateTime) -> Result<Ticket, StoreError>;

    /// Tickets, newest first, of one tenant or all.
    async fn tickets(&self, tenant: Option<&TenantId>) -> Result<Vec<Ticket>, StoreError>;

    async fn ticket(&self, id: i64) -> Result<Option<(Ticket, Vec<Comment>)>, StoreError>;

    async fn add_comment(&self, ticket: i64, author: Author, body: &str, at: time::OffsetDateTime) -> Result<Comment, StoreError>;

    /// Appends an entry: `seal` is given the next sequence number and the previous entry's hash
    /// and returns the entry to store (with its hash). Appends are serialized, so the chain
    /// never forks.
    async fn append_audit(&self, seal: Seal<'_>) -> Result<AuditEntry, StoreError>;

    /// Entries with `seq > after`, in order, of one tenant or all, at most `limit`.
    async fn audit(&self, tenant: Option<&TenantId>, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    /// Sets the status (and, when given, the number of reminders sent).
    async fn update_ticket(
        &self,
        ticket: i64,
        status: TicketStatus,
        reminders_sent: Option<i64>,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;
}
