//! The provider-held layer: one KMS key per tenant and region in the **provider's own
//! account**, used with the provider's own identity (no AssumeRole). The broker encrypts each
//! customer-wrapped tenant key under it before storing it, and schedules the key's deletion when
//! the tenant is destroyed — so that a database backup, a dead tuple or a replica taken before
//! the destruction holds only bytes that nobody can unwrap once that key is gone, even with the
//! customer's key re-enabled. See `docs/shredding.md`.

use aws_sdk_kms::primitives::Blob;
use byok_domain::{KeyArn, TenantId};
use time::OffsetDateTime;

use crate::aws::{AwsKeyService, kms_error};
use crate::error::AccessError;

/// The encryption context of the provider layer's ciphertexts.
pub fn layer_context(tenant: &TenantId) -> [(&'static str, String); 2] {
    [("byok:tenant", tenant.to_string()), ("byok:purpose", "provider-layer".to_string())]
}

/// Days AWS keeps a key scheduled for deletion before it is gone (the least AWS allows).
pub const DELETION_WINDOW_DAYS: i32 = 7;

fn missing(what: &str) -> AccessError {
    AccessError::Other { code: "Incomplete".into(), message: format!("KMS answered without {what}") }
}

impl AwsKeyService {
    /// A new key in the provider's own account, tagged with the tenant (the layer's, or a
    /// provider-held tenant's own key: the description says which).
    pub(crate) async fn layer_create(
        &self,
        region: &byok_domain::Region,
        tenant: &TenantId,
        description: String,
    ) -> Result<KeyArn, AccessError> {
        let out = self
            .provider_kms(region)
            .create_key()
            .description(description)
            .tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key("byok:tenant")
                    .tag_value(tenant.as_str())
                    .build()
                    .map_err(|e| AccessError::Other { code: "Tag".into(), message: e.to_string() })?,
            )
            .send();
        let out = crate::sdk::traced("KMS", "CreateKey", region.as_str(), out).await.map_err(|e| kms_error(e, region))?;
        let arn = out.key_metadata().map(|m| m.arn().unwrap_or_default().to_string()).ok_or_else(|| missing("key metadata"))?;
        arn.parse().map_err(|_| AccessError::Other { code: "BadArn".into(), message: format!("CreateKey answered the ARN {arn}") })
    }

    pub(crate) async fn layer_seal(&self, key: &KeyArn, tenant: &TenantId, inner: &[u8]) -> Result<Vec<u8>, AccessError> {
        let region = key.region();
        let mut request = self.provider_kms(&region).encrypt().key_id(key.as_str()).plaintext(Blob::new(inner.to_vec()));
        for (k, v) in layer_context(tenant) {
            request = request.encryption_context(k, v);
        }
        let out = crate::sdk::traced("KMS", "Encrypt", region.as_str(), request.send()).await.map_err(|e| kms_error(e, &region))?;
        out.ciphertext_blob().map(|b| b.as_ref().to_vec()).ok_or_else(|| missing("a ciphertext"))
    }

    pub(crate) async fn layer_open(&self, key: &KeyArn, tenant: &TenantId, outer: &[u8]) -> Result<Vec<u8>, AccessError> {
        let region = key.region();
        let mut request = self.provider_kms(&region).decrypt().key_id(key.as_str()).ciphertext_blob(Blob::new(outer.to_vec()));
        for (k, v) in layer_context(tenant) {
            request = request.encryption_context(k, v);
        }
        let out = crate::sdk::traced("KMS", "Decrypt", region.as_str(), request.send()).await.map_err(|e| kms_error(e, &region))?;
        out.plaintext().map(|b| b.as_ref().to_vec()).ok_or_else(|| missing("a plaintext"))
    }

    /// Disables the key at once (nothing decrypts with it from now on), then schedules its
    /// deletion; returns when AWS will delete it. A key already pending deletion is left as it is.
    pub(crate) async fn layer_destroy(&self, key: &KeyArn) -> Result<OffsetDateTime, AccessError> {
        let region = key.region();
        let kms = self.provider_kms(&region);
        let described = kms.describe_key().key_id(key.as_str()).send().await.map_err(|e| kms_error(e, &region))?;
        let meta = described.key_metadata().ok_or_else(|| missing("key metadata"))?;
        if let Some(date) = meta.deletion_date() {
            return OffsetDateTime::from_unix_timestamp(date.secs()).map_err(|_| missing("a deletion date"));
        }
        if meta.enabled() {
            kms.disable_key().key_id(key.as_str()).send().await.map_err(|e| kms_error(e, &region))?;
        }
        let out = kms
            .schedule_key_deletion()
            .key_id(key.as_str())
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send()
            .await
            .map_err(|e| kms_error(e, &region))?;
        let date = out.deletion_date().ok_or_else(|| missing("a deletion date"))?;
        OffsetDateTime::from_unix_timestamp(date.secs()).map_err(|_| missing("a deletion date"))
    }
}
