//! The byok broker as a library: what the HTTP server serves, and what a product service
//! written in Rust can embed to encrypt and decrypt in-process.
//!
//! # Layout
//! One job per file. Two kinds of module, and imports go one way only (a test checks that no
//! two modules import each other, directly or round a loop):
//! - **Components**, leaves that never import [`Broker`]: each a type owning one piece of a
//!   node's state with its own methods. `probe_queue` (tenants the data path asks to probe
//!   now), `provider_health`, `token_cache`, `probe_summaries` (routine probes counted per
//!   hour), `alias_watch`, `erasure_attempts`, `opened_layers` (provider layers opened),
//!   [`cache`] (unwrapped tenant keys), [`events`] (what the audit log records), `flight`
//!   (single flight per tenant with a short cooldown, for restore and verify), [`clock`],
//!   [`config`], [`metrics`] (with [`process_metrics`]: `process_*` from `/proc`), [`error`](mod@error), `monitor::judge`, `monitor::report`,
//!   `outcomes` (what the broker answers: [`LastCheck`], [`Restoration`], [`Verification`],
//!   [`Instructions`], [`HeldRevocation`], [`ChainCheck`]; only the server's views turn them
//!   into API types) and [`webhook_events`] (what an audit entry tells a webhook endpoint, and
//!   the Standard Webhooks signature).
//! - [`Broker`] ([`broker`]): the handle that holds the components, and tenant look-ups.
//! - **Features**, each adding an `impl Broker` block:
//! - [`config`]: validated parameters ([`BrokerConfig`]).
//! - [`data_plane`]: encrypt, decrypt, rewrap, key loading (every readable generation), the cache's sync with other nodes.
//! - [`rotation`]: changing an active tenant's keys online: rotation, retiring and shredding old
//!   generations, rekey to a replacement customer key.
//! - [`migration`]: moving a live role-based tenant onto customer-managed keys (CMK), switched
//!   in one write after every generation is rewrapped.
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
//! - [`provider_setup`]: the provider role and the canary on AWS, as `byok provider setup`
//!   prints them (a script or CloudFormation).
//! - [`provider_layer`]: the provider-held per-tenant KMS keys wrapped keys are sealed under,
//!   deleted at destruction so that no backup can be unwrapped after it.
//! - [`holds`]: revocations held for a person when too many tenants are denied at once.
//! - [`access`]: checking a tenant's access region by region (what a probe is).
//! - [`remedy`]: every customer-facing explanation of a denial, with the customer guide's step.
//! - [`tickets`]: the revocation ticket's texts and the one helper that writes on tickets.
//! - [`audit`]: the hash-chained audit log and its verification; [`audit_signing`]: checkpoints of
//!   it signed with the operator's key, sent to customers with their events and every hour
//!   ([`audit_checkpoints`]); [`audit_sink`]:
//!   the log streamed to a file or a syslog server, in order, from a cursor ([`sink_target`]:
//!   where to, and the formats).
//! - [`tokens`]: API tokens, stored hashed, and their scopes; [`aws_sign_in`]: product
//!   services signing in with their own IAM role for a short-lived token.
//! - [`erasure`]: proving that deleted wrapped keys left the database's files, before saying so.
//! - [`email`]: email to a tenant's contacts (composed from the same events, sent over SMTP).
//! - [`webhooks`]: webhook endpoints (add, rotate the secret, test, redeliver);
//!   [`webhook_delivery`]: the leader's dispatcher, from the audit log to each endpoint in order.
//! - [`node`]: one place that runs a node's loops ([`node::spawn`]) and stops them together.
#![forbid(unsafe_code)]

pub mod access;
pub mod adoption;
mod adoption_tally;
mod alias_watch;
pub mod audit;
pub mod audit_checkpoints;
pub mod audit_signing;
pub mod audit_sink;
pub mod aws_sign_in;
pub mod broker;
pub mod cache;
pub mod clock;
pub mod config;
pub mod data_plane;
pub mod email;
pub mod erasure;
mod erasure_attempts;
pub mod error;
pub mod events;
mod flight;
pub mod holds;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod migration;
pub mod monitor;
pub mod node;
pub mod onboarding;
mod opened_layers;
mod outcomes;
mod probe_queue;
mod probe_summaries;
pub mod process_metrics;
pub mod provider;
pub mod provider_health;
pub mod provider_layer;
pub mod provider_setup;
pub mod remedy;
pub mod rotation;
pub mod setup;
pub mod sink_target;
pub mod tickets;
mod token_cache;
pub mod tokens;
pub mod webhook_delivery;
pub mod webhook_events;
pub mod webhooks;

pub use broker::Broker;
pub use byok_envelope::Plaintext;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use config::{BrokerConfig, CanaryConfig, HoldThreshold};
pub use error::{BrokerError, ProviderFault, StoreNotReady};
pub use migration::Migration;
pub use onboarding::NewTenant;
pub use outcomes::{ChainCheck, HeldRevocation, Instructions, LastCheck, RegionCheck, Restoration, Verification};
pub use provider::ProviderHealth;
