//! The byok broker as a library: what the HTTP server serves, and what a product service
//! written in Rust can embed to encrypt and decrypt in-process.
//!
//! # Layout
//! One job per file; most add an `impl Broker` block.
//! - [`Broker`] ([`broker`]): the handle every feature shares, and tenant look-ups.
//! - [`config`]: validated parameters ([`BrokerConfig`]).
//! - [`data_plane`]: encrypt, decrypt, rewrap, key loading (every readable generation), the cache's sync with other nodes.
//! - [`rotation`]: changing an active tenant's keys online: rotation, retiring and shredding old
//!   generations, rekey to a replacement customer key.
//! - [`onboarding`]: adding a tenant and verifying the customer's setup region by region;
//!   [`setup`]: the setup commands and trust policy it prints.
//! - [`lifecycle`]: activation, revocation, restoration, destruction — the only callers of
//!   `TenantState::apply` and of the store's state writes.
//! - [`monitor`]: where a revocation is decided: the pass (probe → classify → transition →
//!   ticket → audit), deadlines, reminders, reconciliation, the "probe now" queue;
//!   `monitor::judge` is the decision itself (revoke, hold, clear, destroy), pure and
//!   table-tested.
//! - [`leader`]: the leader lease among nodes sharing a store (who runs the monitor).
//! - [`provider`]: the provider's own identity and canary, proven before any denial counts.
//! - [`provider_layer`]: the provider-held per-tenant KMS keys wrapped keys are sealed under,
//!   deleted at destruction so that no backup can be unwrapped after it.
//! - [`holds`]: revocations held for a person when too many tenants are denied at once.
//! - [`access`]: checking a tenant's access region by region (what a probe is).
//! - [`remedy`]: every customer-facing explanation of a denial, with the customer guide's step.
//! - [`tickets`]: the revocation ticket's texts and the one helper that writes on tickets.
//! - [`audit`]: the hash-chained audit log, its typed events, and its verification.
//! - [`tokens`]: API tokens, stored hashed, and their scopes.
//! - [`erasure`]: proving that deleted wrapped keys left the database's files, before saying so.
//! - `flight`: single flight per tenant with a short cooldown, for restore and verify.
//! - [`cache`]: per-node cache of unwrapped tenant keys: TTL from unwrap, single flight, purge.
//! - [`clock`]: injected time.
//! - [`metrics`]: Prometheus counters.
//! - [`error`](mod@error): [`BrokerError`].
#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod broker;
pub mod cache;
pub mod clock;
pub mod config;
pub mod data_plane;
pub mod erasure;
pub mod error;
mod flight;
pub mod holds;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod monitor;
pub mod onboarding;
pub mod provider;
pub mod provider_layer;
pub mod remedy;
pub mod rotation;
pub mod setup;
pub mod tickets;
pub mod tokens;

pub use broker::{Broker, LastCheck};
pub use byok_envelope::Plaintext;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use config::{BrokerConfig, CanaryConfig, HoldThreshold};
pub use error::BrokerError;
pub use holds::HeldRevocation;
pub use lifecycle::Restoration;
pub use onboarding::{NewTenant, RegionCheck, Verification};
pub use provider::ProviderHealth;
pub use setup::Instructions;
