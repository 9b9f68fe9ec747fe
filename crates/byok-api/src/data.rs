//! The data plane's JSON bodies (`POST /v1/tenants/{id}/encrypt`, `/decrypt` and `/rewrap`;
//! rewrap takes a [`DecryptRequest`] and answers an [`EncryptResponse`]). The raw
//! form sends the bytes as `application/octet-stream` with the record id in
//! [`CONTEXT_HEADER`](crate::CONTEXT_HEADER).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    /// Base64.
    pub plaintext: String,
    /// The record id the data is bound to.
    #[serde(default)]
    pub context: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    /// Base64, as `encrypt` returned it.
    pub ciphertext: String,
    #[serde(default)]
    pub context: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncryptResponse {
    pub ciphertext: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecryptResponse {
    pub plaintext: String,
}
