//! The byok broker as a library: what the HTTP server serves, and what a product service
//! written in Rust can embed to encrypt and decrypt in-process.
//!
//! # Layout
//! - [`Broker`] ([`broker`]): the one entry point: tenants, onboarding, data plane.
//! - [`config`]: validated parameters ([`BrokerConfig`]).
//! - [`access`]: checking a tenant's access region by region (probes, restoration).
//! - [`audit`]: the hash-chained audit log and its verification.
//! - [`monitor`]: the background monitor and deadline sweeper.
//! - [`onboarding`]: the customer's setup as runnable `aws` CLI commands, and its verification.
//! - [`cache`]: per-node cache of unwrapped tenant keys: TTL from unwrap, single flight, purge.
//! - [`clock`]: injected time.
//! - [`tickets`]: the revocation ticket's texts and the "ready" keyword.
//! - [`tokens`]: API tokens, stored hashed, compared in constant time.
//! - [`metrics`]: Prometheus counters.
//! - [`error`](mod@error): [`BrokerError`].
#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod broker;
pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod metrics;
pub mod monitor;
pub mod onboarding;
pub mod tickets;
pub mod tokens;

pub use broker::{Broker, LastCheck, Restoration};
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use config::BrokerConfig;
pub use error::BrokerError;
pub use onboarding::{Instructions, RegionCheck, Verification};
