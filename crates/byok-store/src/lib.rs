//! byok's store, behind the [`Store`] trait: tenants (with their lifecycle state, changed only
//! by compare-and-set on a version), the wrapped tenant keys of every generation (erased at
//! destruction, or once retired and shredded), and API
//! token hashes.
//!
//! # Layout
//! - [`Store`] and its types: this page. [`Store`] is its parts together, one trait per table
//!   group: [`TenantStore`], [`KeyStore`], [`TokenStore`], [`AlertStore`], [`ClusterStore`],
//!   [`TicketStore`], [`AuditStore`], [`WebhookStore`] (`use byok_store::prelude::*` to call them).
//! - [`sql`]: the implementation for SQLite (the embedded default, one file) and PostgreSQL
//!   (several broker nodes), one SQL text through sqlx's `Any` driver, one module per part
//!   (`sql/{tenants,keys,tokens,alerts,cluster,tickets,audit,webhooks}.rs`). Tested by one contract
//!   suite on both.
//! - [`migrations`]: what a database has applied against what this byok knows, and whether a
//!   node may start on it (never on a newer schema; pending ones only when asked to apply them).
//! - [`dialect`]: everything where the two differ (URL, migrations in
//!   `migrations/{sqlite,postgres}`, connection set-up, placeholders, append locking, erasing).
#![forbid(unsafe_code)]

pub mod dialect;
pub mod migrations;
pub mod sql;

use async_trait::async_trait;
use byok_domain::{AlertKind, Author, KeyArn, KeyGenerations, Region, Tenant, TenantBinding, TenantId, TicketStatus, Transition};
use time::OffsetDateTime;

pub use byok_domain::{Alert, Comment, Hold, ServiceReach, Ticket, TokenScope};
pub use dialect::Dialect;
pub use migrations::{AutoMigrate, Migration, MigrationStatus, SchemaProblem};
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

/// A change to an active tenant's keys, written with its new [`KeyGenerations`] by
/// [`KeyStore::change_keys`].
#[derive(Debug, Clone, Copy)]
pub enum KeyChange<'a> {
    /// A new generation, wrapped in every region: it becomes the current one.
    Rotate { keys: &'a [WrappedKey] },
    /// Only the generations move (the minimum decryption generation).
    Retire,
    /// Erases the wrapped keys of every generation below the new `kept_from`.
    Shred,
    /// The customer's key in one region is replaced: the binding names the new key, and every
    /// kept generation's wrapped key in that region is replaced by `keys`, all at once.
    Rekey { binding: &'a TenantBinding, region: &'a Region, keys: &'a [WrappedKey] },
    /// The tenant moves to another key mode: the binding (its mode and every region's key) is
    /// replaced, and every wrapped key by `keys` (each kept generation in each region), all at
    /// once.
    Migrate { binding: &'a TenantBinding, keys: &'a [WrappedKey] },
    /// An adoption finishes: the binding (its adoption cleared) is written and every generation
    /// below the new `kept_from` erased, at once.
    FinishAdoption { binding: &'a TenantBinding },
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

/// Which audit entries a view shows: a kind or reason (`transition`, `probe`, …), and a time
/// range `[from, to)` in unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub reason: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Builds the audit entry for the next sequence number after the given previous hash. Passed
/// to the store so that an entry is chained and written in the very transaction it records.
pub type Seal<'a> = &'a (dyn for<'p> Fn(i64, &'p str) -> AuditEntry + Send + Sync);

/// Where a token came from: configured at start-up (`--operator-token`, `--service-token`;
/// a new configured value retires the old one) or issued through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    Configured,
    Issued,
}

/// A token as stored (by the hash of its value, never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The first 12 hex digits of the hash: enough to name it, useless to guess it.
    pub id: String,
    pub scope: TokenScope,
    pub origin: TokenOrigin,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl TokenRecord {
    /// Whether the token opens anything at `now`.
    pub fn valid_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// The id a token is listed under.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// A change another node made, heard through the store (PostgreSQL `LISTEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The tenant's state or keys changed: drop what is cached of it.
    Tenant(TenantId),
    /// A token was revoked or retired: forget what is cached of tokens.
    Tokens,
    /// Notices may have been missed (the listener (re)connected): check everything.
    Resync,
}

/// A tenant's key in the provider's own account for one region (the provider-held layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    pub region: Region,
    pub key_arn: String,
    /// When AWS deletes it, once destruction scheduled that.
    pub deletion_date: Option<OffsetDateTime>,
}

/// Records a tenant moved off provider-held generations ([`KeyStore::note_adoption_rewraps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionProgress {
    pub tenant: TenantId,
    pub records: u64,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
}

/// Tenants by state, and the nearest deadline ([`TenantStore::tenant_census`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantCensus {
    /// State name (`onboarding`, `active`, `revoked`, `destroyed`) → tenants in it.
    pub by_state: std::collections::BTreeMap<String, i64>,
    /// The nearest deadline of a revoked tenant, if any is revoked.
    pub next_deadline: Option<OffsetDateTime>,
}

/// An erasure of wrapped keys recorded but not (yet) proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingErasure {
    pub tenant: TenantId,
    /// `destroyed`, `shredded` or `rekeyed`.
    pub what: String,
}

/// What one [`KeyStore::prove_erasures`] call established.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureProof {
    /// Proven gone from the live database's files.
    pub proven: Vec<PendingErasure>,
    /// Still to be proven.
    pub pending: Vec<PendingErasure>,
    /// Why the pending ones could not be proven.
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("tenant {0} already exists")]
    AlreadyExists(TenantId),
    #[error("tenant {0} does not exist")]
    NotFound(TenantId),
    #[error("ticket {0} does not exist")]
    NoTicket(i64),
    /// The tenant already has a ticket that is not closed (another node opened it first).
    #[error("tenant {0} already has a live ticket")]
    TicketExists(TenantId),
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
    /// The schema is not one this byok may serve on.
    #[error("{0}")]
    Schema(#[from] SchemaProblem),
}

impl StoreError {
    /// Whether the database could not be reached (down, cut off, out of connections): an
    /// outage to wait out, not a fault in the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => {
                matches!(
                    e,
                    sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Io(_)
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::WorkerCrashed
                ) || matches!(e, sqlx::Error::Protocol(_))
            }
            StoreError::AlreadyExists(_)
            | StoreError::NotFound(_)
            | StoreError::NoTicket(_)
            | StoreError::TicketExists(_)
            | StoreError::Conflict { .. }
            | StoreError::WrongTransition { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Migration(_)
            | StoreError::Schema(_) => false,
        }
    }
}

/// The store: every part below, as one object (`Arc<dyn Store>`). Bring the parts' methods
/// into scope with `use byok_store::prelude::*`.
pub trait Store:
    TenantStore + KeyStore + TokenStore + AlertStore + ClusterStore + TicketStore + AuditStore + WebhookStore + Send + Sync + std::fmt::Debug
{
}

impl<T> Store for T where
    T: TenantStore
        + KeyStore
        + TokenStore
        + AlertStore
        + ClusterStore
        + TicketStore
        + AuditStore
        + WebhookStore
        + Send
        + Sync
        + std::fmt::Debug
{
}

/// The store's parts, to call their methods on a `dyn Store`.
pub mod prelude {
    pub use crate::{AlertStore, AuditStore, ClusterStore, KeyStore, Store, TenantStore, TicketStore, TokenStore, WebhookStore};
}

/// Tenants and their lifecycle state, changed only by compare-and-set on a version.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Adds a tenant (its version as given, normally 1).
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// All tenants, by id.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// The tenants whose keys are in `account`, by id (an indexed lookup).
    async fn tenants_in_account(&self, account: &byok_domain::AccountId) -> Result<Vec<Tenant>, StoreError>;

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

    /// How many tenants are in each state (by state name), and the nearest deadline of a
    /// revoked one: for the operator's metrics, counted by the database.
    async fn tenant_census(&self) -> Result<TenantCensus, StoreError>;
}

/// Wrapped tenant keys of every generation, their erasure, and the provider-held keys sealing them.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every kept generation's wrapped keys, by generation then region.
    async fn wrapped_keys(&self, id: &TenantId) -> Result<Vec<WrappedKey>, StoreError>;

    /// Applies `change` and stores `generations`, atomically, if the tenant is active and at
    /// version `expected` (otherwise [`StoreError::Conflict`]); other nodes drop their cached
    /// keys when it commits. Returns the tenant at its new version.
    async fn change_keys(
        &self,
        id: &TenantId,
        expected: i64,
        generations: &KeyGenerations,
        change: KeyChange<'_>,
        audit: Seal<'_>,
    ) -> Result<Tenant, StoreError>;

    /// Proves the erasures recorded by destruction, shredding and rekey: that no copy of the
    /// deleted wrapped keys is left in the live database's files (SQLite: the write-ahead log
    /// checkpointed; PostgreSQL: `VACUUM FULL` with no snapshot older than the deleting
    /// transaction alive before or after it). Proven ones are forgotten; the others stay
    /// pending, with the reason, for the next call. Never reports an erasure it did not prove.
    async fn prove_erasures(&self) -> Result<ErasureProof, StoreError>;

    /// The tenant's provider-held key in `region` (see `byok_kms::provider_layer`), if any.
    async fn provider_key(&self, tenant: &TenantId, region: &Region) -> Result<Option<ProviderKey>, StoreError>;

    /// Records the tenant's provider key in `region` unless one is recorded already; returns the
    /// recorded one (the first writer wins, whichever nodes race).
    async fn add_provider_key(
        &self,
        tenant: &TenantId,
        region: &Region,
        key_arn: &str,
        at: OffsetDateTime,
    ) -> Result<ProviderKey, StoreError>;

    /// Provider keys of destroyed tenants whose deletion is not scheduled yet.
    async fn provider_keys_to_destroy(&self) -> Result<Vec<(TenantId, ProviderKey)>, StoreError>;

    /// Records that the provider key's deletion is scheduled for `deletion_date`.
    async fn provider_key_destroyed(&self, tenant: &TenantId, region: &Region, deletion_date: OffsetDateTime) -> Result<(), StoreError>;

    /// Adds `records` rewrapped off the tenant's provider-held generations at `at` (each node
    /// adds its own; the sum is the tenant's).
    async fn note_adoption_rewraps(&self, tenant: &TenantId, records: u64, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Every tenant's adoption progress, by tenant.
    async fn adoption_progress(&self) -> Result<Vec<AdoptionProgress>, StoreError>;
}

/// API token hashes and their scopes.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a token by the hex SHA-256 of its value.
    async fn put_token(
        &self,
        hash: &str,
        scope: &TokenScope,
        origin: TokenOrigin,
        at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<TokenRecord, StoreError>;

    /// The token with this hash, revoked or expired ones included.
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, newest first.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes the token with this id; false if there is none (or it was already revoked).
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<bool, StoreError>;

    /// Revokes every live token of `scope` with `origin` except the one with hash `keep`;
    /// returns how many.
    async fn revoke_tokens_like(
        &self,
        scope: &TokenScope,
        origin: TokenOrigin,
        keep: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError>;

    /// Records (or replaces) the tenants a product service's IAM role reaches when it signs in
    /// with AWS.
    async fn put_aws_identity(&self, role_arn: &str, reach: &ServiceReach, at: OffsetDateTime) -> Result<(), StoreError>;

    /// What the IAM role reaches, if it is a configured identity.
    async fn aws_identity(&self, role_arn: &str) -> Result<Option<ServiceReach>, StoreError>;

    /// Every configured IAM identity, by role ARN.
    async fn aws_identities(&self) -> Result<Vec<(String, ServiceReach)>, StoreError>;

    /// Removes an IAM identity; false if there was none. Tokens it was issued run out on their own.
    async fn remove_aws_identity(&self, role_arn: &str) -> Result<bool, StoreError>;

    /// Records a sign-in's signature at `at`; false if any node recorded it already (a replay).
    /// Signatures recorded before `forget_before` are dropped first (they have expired anyway).
    async fn first_use_of_signature(&self, signature: &str, at: OffsetDateTime, forget_before: OffsetDateTime) -> Result<bool, StoreError>;
}

/// The operator's alerts and held revocations.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Opens an alert of `kind`, unless one is already open (then `None`): at most one open
    /// alert per kind, whichever node asks.
    async fn open_alert(&self, kind: AlertKind, title: &str, body: &str, at: OffsetDateTime) -> Result<Option<Alert>, StoreError>;

    /// Resolves the open alert of `kind`, if any, and returns it.
    async fn resolve_alert(&self, kind: AlertKind, at: OffsetDateTime) -> Result<Option<Alert>, StoreError>;

    /// Alerts, newest first (open ones only when asked).
    async fn alerts(&self, open_only: bool) -> Result<Vec<Alert>, StoreError>;

    /// Holds a tenant's revocation; false if it is held already (the first detection stays).
    async fn hold(&self, hold: &Hold) -> Result<bool, StoreError>;

    async fn holds(&self) -> Result<Vec<Hold>, StoreError>;

    /// Removes a hold (released, dismissed, or access works again) and returns it.
    async fn remove_hold(&self, tenant: &TenantId) -> Result<Option<Hold>, StoreError>;
}

/// A delivery to enqueue (see [`WebhookStore::enqueue_deliveries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook: String,
    pub seq: i64,
    pub tenant: Option<TenantId>,
    pub event_type: String,
    pub body: String,
}

/// Webhook endpoints, the dispatcher's cursor over the audit log (the outbox), and deliveries.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn put_webhook(&self, webhook: &byok_domain::Webhook) -> Result<(), StoreError>;
    async fn webhook(&self, id: &str) -> Result<Option<byok_domain::Webhook>, StoreError>;
    /// Every endpoint, or a tenant's (`Some`), or the operator's own (`Some(None)` is not a
    /// thing: `None` lists all).
    async fn webhooks(&self, tenant: Option<&TenantId>) -> Result<Vec<byok_domain::Webhook>, StoreError>;
    /// Replaces an endpoint's signing secrets (a rotation).
    async fn set_webhook_secrets(&self, id: &str, secrets: &[byok_domain::WebhookSecret]) -> Result<bool, StoreError>;
    /// Removes an endpoint and its deliveries.
    async fn remove_webhook(&self, id: &str) -> Result<bool, StoreError>;
    /// The last audit entry turned into deliveries; set to the log's end the first time.
    async fn webhook_cursor(&self) -> Result<i64, StoreError>;
    /// Adds these deliveries and moves the cursor from `from` to `to`, in one transaction; false
    /// (nothing written) when the cursor is no longer at `from` (another leader moved it).
    async fn enqueue_deliveries(&self, from: i64, to: i64, deliveries: &[NewDelivery], at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Each endpoint's oldest pending delivery (deliveries to one endpoint go in order), due or not.
    async fn next_deliveries(&self) -> Result<Vec<byok_domain::Delivery>, StoreError>;
    /// Records an attempt's outcome.
    async fn record_attempt(&self, webhook: &str, seq: i64, attempt: &byok_domain::Attempt, at: OffsetDateTime) -> Result<(), StoreError>;
    /// An endpoint's deliveries, newest first.
    async fn deliveries(&self, webhook: &str, limit: i64) -> Result<Vec<byok_domain::Delivery>, StoreError>;
    /// Puts a delivery back to be sent at once (a dead one, or a delivered one again).
    async fn redeliver(&self, webhook: &str, seq: i64, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Dead deliveries in all.
    async fn dead_deliveries(&self) -> Result<i64, StoreError>;
}

/// What the nodes sharing the store agree on: the leader lease, change notices, cluster settings, the clock.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Takes or renews the leader lease for `holder` for `ttl`, judged by the database's clock:
    /// `Some(valid_until)` if `holder` now holds it, `None` while another holder's lease is
    /// valid. On SQLite (one node) the caller always holds it.
    async fn acquire_lease(&self, holder: &str, ttl: std::time::Duration) -> Result<Option<OffsetDateTime>, StoreError>;

    /// The current leader and until when, if any lease is valid.
    async fn lease_holder(&self) -> Result<Option<(String, OffsetDateTime)>, StoreError>;

    /// Gives the lease up (a node shutting down), so another takes over at once.
    async fn release_lease(&self, holder: &str) -> Result<(), StoreError>;

    /// Changes other nodes make, as they commit; `None` for a single-node store. The channel
    /// survives a dropped connection (it reconnects and sends `Resync`).
    async fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<Notice>>;

    /// Whether the store answers now (a trivial query), on a schema no older than this byok.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A cluster-wide setting, if written.
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// The cluster-wide setting `name`: `value` is written if there is none yet, and whatever
    /// is stored is returned — the first writer wins, whichever nodes race, and every node
    /// then reads the same value.
    async fn setting_or_insert(&self, name: &str, value: &str, at: OffsetDateTime) -> Result<String, StoreError>;

    /// The database's own clock where every node shares it (PostgreSQL's `now()`); `None` for
    /// a single-node store (SQLite), whose node's clock is the one that counts.
    async fn now(&self) -> Result<Option<OffsetDateTime>, StoreError>;
}

/// Customers' tickets and their comments.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Opens a ticket with its first comment (by `byok`). At most one ticket per tenant is not
    /// closed: a second one is refused with [`StoreError::TicketExists`], whichever node asks.
    async fn open_ticket(&self, tenant: &TenantId, title: &str, body: &str, at: time::OffsetDateTime) -> Result<Ticket, StoreError>;

    /// Tickets, newest first, of one tenant or all.
    async fn tickets(&self, tenant: Option<&TenantId>) -> Result<Vec<Ticket>, StoreError>;

    async fn ticket(&self, id: i64) -> Result<Option<(Ticket, Vec<Comment>)>, StoreError>;

    async fn add_comment(&self, ticket: i64, author: Author, body: &str, at: time::OffsetDateTime) -> Result<Comment, StoreError>;

    /// Records reminder `due` as sent if the ticket's count is still `expected`: true for the
    /// one caller (of any node) that should post it.
    async fn claim_reminder(&self, ticket: i64, expected: i64, due: i64, at: time::OffsetDateTime) -> Result<bool, StoreError>;

    /// Sets the status (and, when given, the number of reminders sent).
    async fn update_ticket(
        &self,
        ticket: i64,
        status: TicketStatus,
        reminders_sent: Option<i64>,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// The hash-chained audit log and its checkpoints.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry: `seal` is given the next sequence number and the previous entry's hash
    /// and returns the entry to store (with its hash). Appends are serialized, so the chain
    /// never forks.
    async fn append_audit(&self, seal: Seal<'_>) -> Result<AuditEntry, StoreError>;

    /// Appends several entries in one transaction, chained in the order given (hourly probe
    /// summaries: tens of thousands at once). All or none.
    async fn append_audit_many(&self, seals: &[Seal<'_>]) -> Result<Vec<AuditEntry>, StoreError>;

    /// The latest checkpoint (the last pruned entry's sequence number and hash), if any entry
    /// was ever pruned.
    async fn audit_checkpoint(&self) -> Result<Option<(i64, String)>, StoreError>;

    /// Prunes every entry up to `through` — only if that entry's hash is `hash` (the caller
    /// proves it holds the export) — and records the checkpoint, in one transaction. Returns
    /// how many entries went; `None` if the entry or its hash do not match.
    async fn prune_audit(&self, through: i64, hash: &str, at: OffsetDateTime) -> Result<Option<usize>, StoreError>;

    /// Entries with `seq > after`, in order, of one tenant or all, at most `limit`.
    async fn audit(&self, tenant: Option<&TenantId>, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    /// The tenant's newest entry, if it has any (what a checkpoint for it signs).
    async fn newest_audit(&self, tenant: &TenantId) -> Result<Option<AuditEntry>, StoreError>;

    /// Newest first: the tenant's entries matching `filter` with `seq < before`, at most
    /// `limit` (keyset paging: the next page starts before the last entry shown).
    async fn audit_page(&self, tenant: &TenantId, filter: &AuditFilter, before: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    /// The tenant's key uses in `[from, to)` counted in the database per `bucket` seconds and
    /// reason, a probe summary counting as the probes it stands for: `(bucket start, reason,
    /// count)`, only the buckets that have any.
    async fn key_use_counts(&self, tenant: &TenantId, from: i64, to: i64, bucket: i64) -> Result<Vec<(i64, String, i64)>, StoreError>;

    /// Where the streaming sink `sink` is in the log (0, the start, the first time).
    async fn sink_cursor(&self, sink: &str) -> Result<i64, StoreError>;

    /// Moves the sink's cursor from `from` to `to`, if it is still at `from` (another leader
    /// did not move it meanwhile); whether it moved.
    async fn advance_sink_cursor(&self, sink: &str, from: i64, to: i64, at: OffsetDateTime) -> Result<bool, StoreError>;
}
