//! `byok encrypt` and `byok decrypt`: a tenant's records through the data plane.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_api as api;

use super::read_stdin;
use crate::client::Client;
use crate::error::CliError;

/// Encrypts `text` (or stdin) and prints the record in base64.
pub(crate) async fn encrypt(client: Client, tenant: &str, context: String, text: Option<String>) -> Result<(), CliError> {
    let plaintext = match text {
        Some(t) => t.into_bytes(),
        None => read_stdin()?,
    };
    let request = api::EncryptRequest { plaintext: STANDARD.encode(plaintext), context };
    let answer: api::EncryptResponse = client.encrypt(tenant, &request).await?;
    println!("{}", answer.ciphertext);
    Ok(())
}

/// Decrypts a base64 `record` (or stdin) and writes the plaintext.
pub(crate) async fn decrypt(client: Client, tenant: &str, context: String, record: Option<String>) -> Result<(), CliError> {
    let record = match record {
        Some(r) => r,
        None => String::from_utf8_lossy(&read_stdin()?).into_owned(),
    };
    let request = api::DecryptRequest { ciphertext: record.trim().to_string(), context };
    let answer: api::DecryptResponse = client.decrypt(tenant, &request).await?;
    let plaintext = zeroize::Zeroizing::new(STANDARD.decode(answer.plaintext).map_err(CliError::NotBase64)?);
    std::io::stdout().write_all(&plaintext).map_err(CliError::io("cannot write the plaintext"))
}
