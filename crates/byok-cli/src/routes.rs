//! The API's routes as typed methods of [`Client`]: each path is written here once, and every
//! command (and any Rust program embedding the client) calls these. Methods whose command reads
//! more than one status (verify, restore, the audit's export and check, dismiss, revoke, remove)
//! return the raw [`Answer`].

use byok_api as api;
use serde_json::{Value, json};

use crate::client::{Answer, Client};
use crate::error::CliError;

const NO_BODY: Option<&()> = None;

impl Client {
    // Tenants and their keys.

    pub async fn add_tenant(&self, request: &api::AddTenantRequest) -> Result<api::NewTenantResponse, CliError> {
        self.call("POST", "/v1/tenants", Some(request)).await
    }

    pub async fn add_provider_held_tenant(&self, request: &api::AddProviderHeldTenantRequest) -> Result<api::NewTenantResponse, CliError> {
        self.call("POST", "/v1/provider-held-tenants", Some(request)).await
    }

    pub async fn tenants(&self) -> Result<Vec<api::TenantStatus>, CliError> {
        self.get("/v1/tenants").await
    }

    pub async fn tenant(&self, id: &str) -> Result<api::TenantStatus, CliError> {
        self.get(&format!("/v1/tenants/{id}")).await
    }

    pub async fn setup(&self, id: &str) -> Result<api::Instructions, CliError> {
        self.get(&format!("/v1/tenants/{id}/setup")).await
    }

    /// 200 active, 422 with what to fix per region.
    pub async fn verify(&self, id: &str) -> Result<Answer, CliError> {
        self.send("POST", &format!("/v1/tenants/{id}/verify"), NO_BODY).await
    }

    /// 200 access back, 409 naming what is missing.
    pub async fn restore(&self, id: &str) -> Result<Answer, CliError> {
        self.send("POST", &format!("/v1/tenants/{id}/restore"), NO_BODY).await
    }

    pub async fn rotate(&self, id: &str) -> Result<api::TenantStatus, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/rotate"), NO_BODY).await
    }

    pub async fn set_min_decryption(&self, id: &str, generation: u32) -> Result<api::TenantStatus, CliError> {
        self.call("PUT", &format!("/v1/tenants/{id}/min-decryption-generation"), Some(&api::MinDecryptionRequest { generation })).await
    }

    pub async fn shred_retired(&self, id: &str) -> Result<api::TenantStatus, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/shred-retired"), NO_BODY).await
    }

    pub async fn rekey(&self, id: &str, request: &api::RekeyRequest) -> Result<api::TenantStatus, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/rekey"), Some(request)).await
    }

    pub async fn migration_setup(&self, id: &str, request: &api::MigrateRequest) -> Result<api::Instructions, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/migration-setup"), Some(request)).await
    }

    pub async fn migrate(&self, id: &str, request: &api::MigrateRequest) -> Result<api::MigrationResponse, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/migrate"), Some(request)).await
    }

    pub async fn adoption_setup(&self, id: &str, request: &api::AdoptRequest) -> Result<api::Instructions, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/adoption-setup"), Some(request)).await
    }

    pub async fn adopt(&self, id: &str, request: &api::AdoptRequest) -> Result<api::AdoptionResponse, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/adopt"), Some(request)).await
    }

    pub async fn finish_adoption(&self, id: &str) -> Result<api::FinishedAdoptionResponse, CliError> {
        self.call("POST", &format!("/v1/tenants/{id}/adopt/finish"), NO_BODY).await
    }

    pub async fn adoptions(&self) -> Result<api::AdoptionReport, CliError> {
        self.call("GET", "/v1/adoptions", NO_BODY).await
    }

    // The data plane.

    pub async fn encrypt(&self, tenant: &str, request: &api::EncryptRequest) -> Result<api::EncryptResponse, CliError> {
        self.call("POST", &format!("/v1/tenants/{tenant}/encrypt"), Some(request)).await
    }

    pub async fn decrypt(&self, tenant: &str, request: &api::DecryptRequest) -> Result<api::DecryptResponse, CliError> {
        self.call("POST", &format!("/v1/tenants/{tenant}/decrypt"), Some(request)).await
    }

    // The audit log.

    pub async fn audit(&self, tenant: &str, after: i64) -> Result<Vec<api::AuditEntry>, CliError> {
        self.get(&format!("/v1/tenants/{tenant}/audit?after={after}")).await
    }

    /// JSON lines of every entry older than `before` (RFC 3339).
    /// `GET /v1/tenants/{id}/audit/checkpoint`: the tenant's newest entry, signed.
    pub async fn audit_checkpoint(&self, tenant: &str) -> Result<api::AuditCheckpoint, CliError> {
        self.get(&format!("/v1/tenants/{tenant}/audit/checkpoint")).await
    }

    /// The tenant's entries from `seq` on, at most `limit`.
    pub async fn audit_from(&self, tenant: &str, seq: i64, limit: i64) -> Result<Vec<api::AuditEntry>, CliError> {
        self.get(&format!("/v1/tenants/{tenant}/audit?after={}&limit={limit}", seq - 1)).await
    }

    /// 200 intact, 409 naming the first bad entry.
    pub async fn audit_verify(&self) -> Result<Answer, CliError> {
        self.send("GET", "/v1/audit/verify", NO_BODY).await
    }

    pub async fn audit_prune(&self, through_seq: i64, hash: &str) -> Result<Value, CliError> {
        self.call("POST", "/v1/audit/prune", Some(&json!({ "through_seq": through_seq, "hash": hash }))).await
    }

    // Tickets.

    pub async fn tickets(&self) -> Result<Vec<api::Ticket>, CliError> {
        self.get("/v1/tickets").await
    }

    pub async fn ticket(&self, id: i64) -> Result<api::TicketDetail, CliError> {
        self.get(&format!("/v1/tickets/{id}")).await
    }

    pub async fn comment(&self, id: i64, body: String) -> Result<api::CommentResponse, CliError> {
        self.call("POST", &format!("/v1/tickets/{id}/comments"), Some(&api::NewComment { body })).await
    }

    // The operator's own.

    pub async fn alerts(&self, open_only: bool) -> Result<Vec<api::Alert>, CliError> {
        self.get(&format!("/v1/alerts?open={open_only}")).await
    }

    pub async fn held_revocations(&self) -> Result<Vec<api::HeldRevocation>, CliError> {
        self.get("/v1/revocations/held").await
    }

    pub async fn release_hold(&self, tenant: &str) -> Result<api::TenantStatus, CliError> {
        self.call("POST", &format!("/v1/revocations/held/{tenant}/release"), NO_BODY).await
    }

    /// 204 dismissed.
    pub async fn dismiss_hold(&self, tenant: &str) -> Result<Answer, CliError> {
        self.send("POST", &format!("/v1/revocations/held/{tenant}/dismiss"), NO_BODY).await
    }

    pub async fn tokens(&self) -> Result<Vec<api::TokenInfo>, CliError> {
        self.get("/v1/tokens").await
    }

    pub async fn issue_token(&self, request: &api::NewTokenRequest) -> Result<api::NewTokenResponse, CliError> {
        self.call("POST", "/v1/tokens", Some(request)).await
    }

    /// 204 revoked.
    pub async fn revoke_token(&self, id: &str) -> Result<Answer, CliError> {
        self.send("DELETE", &format!("/v1/tokens/{id}"), NO_BODY).await
    }

    pub async fn identities(&self) -> Result<Vec<api::AwsIdentity>, CliError> {
        self.get("/v1/identities").await
    }

    pub async fn add_identity(&self, identity: &api::AwsIdentity) -> Result<api::AwsIdentity, CliError> {
        self.call("POST", "/v1/identities", Some(identity)).await
    }

    /// 204 removed.
    pub async fn remove_identity(&self, role_arn: &str) -> Result<Answer, CliError> {
        let role = percent_encoding::utf8_percent_encode(role_arn, percent_encoding::NON_ALPHANUMERIC);
        self.send("DELETE", &format!("/v1/identities?role_arn={role}"), NO_BODY).await
    }

    // Webhooks: a tenant's (`tenant` given) or, for the operator, every endpoint and its own.

    fn webhooks_base(tenant: Option<&str>) -> String {
        match tenant {
            Some(t) => format!("/v1/tenants/{t}/webhooks"),
            None => "/v1/webhooks".into(),
        }
    }

    pub async fn add_webhook(&self, tenant: Option<&str>, request: &api::NewWebhookRequest) -> Result<api::NewWebhookResponse, CliError> {
        self.call("POST", &Self::webhooks_base(tenant), Some(request)).await
    }

    pub async fn webhooks(&self, tenant: Option<&str>) -> Result<Vec<api::WebhookInfo>, CliError> {
        self.get(&Self::webhooks_base(tenant)).await
    }

    /// 204 removed.
    pub async fn remove_webhook(&self, tenant: Option<&str>, id: &str) -> Result<Answer, CliError> {
        self.send("DELETE", &format!("{}/{id}", Self::webhooks_base(tenant)), NO_BODY).await
    }

    pub async fn rotate_webhook_secret(&self, tenant: Option<&str>, id: &str) -> Result<api::NewWebhookResponse, CliError> {
        self.call("POST", &format!("{}/{id}/rotate-secret", Self::webhooks_base(tenant)), NO_BODY).await
    }

    /// 202 queued.
    pub async fn test_webhook(&self, tenant: Option<&str>, id: &str) -> Result<Answer, CliError> {
        self.send("POST", &format!("{}/{id}/test", Self::webhooks_base(tenant)), NO_BODY).await
    }

    pub async fn webhook_deliveries(&self, tenant: Option<&str>, id: &str, limit: u32) -> Result<Vec<api::DeliveryInfo>, CliError> {
        self.get(&format!("{}/{id}/deliveries?limit={limit}", Self::webhooks_base(tenant))).await
    }

    /// 202 queued again.
    pub async fn redeliver(&self, tenant: Option<&str>, id: &str, seq: i64) -> Result<Answer, CliError> {
        self.send("POST", &format!("{}/{id}/deliveries/{seq}/redeliver", Self::webhooks_base(tenant)), NO_BODY).await
    }

    pub async fn contacts(&self, tenant: &str) -> Result<api::Contacts, CliError> {
        self.get(&format!("/v1/tenants/{tenant}/contacts")).await
    }

    pub async fn set_contacts(&self, tenant: &str, contacts: &api::Contacts) -> Result<api::Contacts, CliError> {
        self.call("PUT", &format!("/v1/tenants/{tenant}/contacts"), Some(contacts)).await
    }
}

/// The export of every kept entry older than `before` (RFC 3339), streamed by the caller.
pub fn audit_export_path(before: &str) -> String {
    let before: String = url::form_urlencoded::byte_serialize(before.as_bytes()).collect();
    format!("/v1/audit/export?before={before}")
}
