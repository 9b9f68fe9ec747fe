//! byok's domain model, free of I/O: what a tenant is, where its keys are, and the one state
//! machine every tenant goes through.
//!
//! # Layout
//! - [`ids`]: typed identifiers (`TenantId`, `AccountId`, `Region`, `RoleArn`, `KeyArn`,
//!   `ExternalId`), each validated once at the boundary.
//! - [`location`]: the locations table (`us` → us-east-1 + us-west-2, …), overridable.
//! - [`tenant`]: a tenant's binding to the customer's account: role, external id, one key per
//!   region of its location.
//! - [`generations`]: a tenant's key generations: the one that seals, the ones that open,
//!   retiring and shredding old ones.
//! - [`lifecycle`]: the tenant lifecycle as one enum and one transition function, whose
//!   [`Transition`] values are the only thing the store accepts as a state change.
//! - [`ticket`]: support tickets and their comments (status, author), operator alerts.
//! - [`access`]: what a token or a signed-in service may reach ([`TokenScope`]).
//! - [`check`]: what a check of a tenant's access found, region by region ([`Denial`],
//!   [`RegionAccess`], [`RegionResult`]).
//! - [`hold`]: a revocation held for a person.
//! - [`webhook`]: webhook endpoints and their deliveries.
#![forbid(unsafe_code)]

pub mod access;
pub mod check;
pub mod generations;
pub mod hold;
pub mod ids;
pub mod lifecycle;
pub mod location;
pub mod tenant;
pub mod ticket;
pub mod webhook;

pub use access::{ServiceReach, TokenScope};
pub use check::{Denial, HeldRegion, RegionAccess, RegionResult};
pub use generations::{FIRST_GENERATION, GenerationError, KeyGenerations, RecordGeneration};
pub use hold::Hold;
pub use ids::{AccountId, ContextTag, ExternalId, IdError, KeyArn, Region, RoleArn, TenantId};
pub use lifecycle::{Event, InvalidTransition, TenantState, Transition};
pub use location::{Location, LocationError, Locations};
pub use tenant::{Adoption, KeyMode, RegionKey, Tenant, TenantBinding};
pub use ticket::{Alert, AlertKind, AlertStatus, Author, Comment, Ticket, TicketStatus, UnknownName};
pub use webhook::{Attempt, Delivery, DeliveryStatus, Webhook, WebhookSecret};
