//! The HTTP API's request and response types: what `byok-server` answers, what the `byok` CLI
//! reads back, and what `openapi.json` describes (a test in `byok-server` holds the document to
//! these types). No I/O, no logic beyond serde.
//!
//! # Layout
//! - [`tenant`]: adding, listing and showing tenants; the setup instructions; verification;
//!   the region-by-region access check; restoration.
//! - [`data`]: encrypt and decrypt bodies.
//! - [`ticket`]: support tickets and comments.
//! - [`audit`]: audit entries and the chain check.
//! - [`operator`]: alerts, held revocations, API tokens, health.
//! - [`webhook`]: webhook endpoints and their deliveries.
//! - [`error`]: the one error body every failure answers with.
//! - [`integral`]: integers as JSON Schema has them (`2.0` is `2`), for `deserialize_with`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod data;
pub mod error;
pub mod integral;
pub mod operator;
pub mod tenant;
pub mod ticket;
pub mod webhook;

pub use audit::{AuditCheckpoint, AuditEntry, AuditPage, ChainCheck};
pub use data::{DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse};
pub use error::ErrorBody;
pub use operator::{
    Alert, AwsIdentity, AwsSignInRequest, AwsSignInResponse, Health, HeldRevocation, NewTokenRequest, NewTokenResponse, Readiness,
    TokenInfo, TokenKind,
};
pub use tenant::{
    AddProviderHeldTenantRequest, AddTenantRequest, AdoptRequest, AdoptionReport, AdoptionResponse, AdoptionTenant, DenialKind,
    FinishedAdoptionResponse, Instructions, KeyModeName, LastCheck, MigrateRequest, MigratedRegion, MigrationResponse,
    MinDecryptionRequest, NewTenantResponse, ProviderKeyDeletion, RegionAccess, RegionCheck, RegionResult, RegionStatus, RekeyRequest,
    Restoration, TenantStatus, Verification,
};
pub use ticket::{Comment, CommentResponse, NewComment, Ticket, TicketDetail};
pub use webhook::{Contacts, DeliveryInfo, NewWebhookRequest, NewWebhookResponse, WebhookInfo};

/// The header that carries the record id when the body is raw bytes.
pub const CONTEXT_HEADER: &str = "x-byok-context";
