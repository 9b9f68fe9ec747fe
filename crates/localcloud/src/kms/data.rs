//! The cryptographic operations: Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext), ReEncrypt.
//!
//! Order of checks, as on AWS: input validation, key resolution, key-policy authorization,
//! key state, then the cryptography.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use super::{
    SERVICE, authorize, blob, blob_field, check_algorithm, check_usable, dry_run, encryption_context, note_key, optional_int, optional_str,
    required_str, resolve,
};
use crate::cloud::{Call, Cloud};
use crate::error::{AwsError, AwsResult};
use crate::state::{Key, State};
use crate::trail::TrailNote;

const MAX_PLAINTEXT: usize = 4096;
const MAX_CIPHERTEXT: usize = 6144;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn invalid_ciphertext() -> AwsError {
    // AWS says nothing more, on purpose.
    AwsError::new("InvalidCiphertextException", 400, "")
}

fn seal(key: &Key, context: &BTreeMap<String, String>, plaintext: &[u8]) -> AwsResult<Vec<u8>> {
    blob::seal(&key.material, &key.arn(), context, plaintext).ok_or_else(|| AwsError::internal(SERVICE, 500))
}

pub fn encrypt(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    let key_ref = required_str(input, "KeyId")?;
    let plaintext = zeroize::Zeroizing::new(
        blob_field(input, "Plaintext", MAX_PLAINTEXT)?.ok_or_else(|| AwsError::missing_parameter(SERVICE, "Plaintext"))?,
    );
    let context = encryption_context(input, "EncryptionContext")?;
    check_algorithm(input, "EncryptionAlgorithm")?;
    note.encryption_context = Some(context.clone());
    let guard = cloud.read();
    let key = resolve(&guard.state, cloud, call, key_ref, true)?;
    note_key(note, key);
    authorize(call, key, "kms:Encrypt", Some(&context))?;
    check_usable(key)?;
    dry_run(input)?;
    let ciphertext = seal(key, &context, &plaintext)?;
    Ok(json!({ "CiphertextBlob": b64(&ciphertext), "KeyId": key.arn(), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }))
}

/// A ciphertext to open, with what the caller says about it.
struct Sealed<'a> {
    ciphertext: &'a [u8],
    /// The `KeyId` the caller expects, if it named one.
    key_ref: Option<&'a str>,
    context: &'a BTreeMap<String, String>,
}

/// Opens a ciphertext blob with everything Decrypt checks; `action` is the permission needed
/// (`kms:Decrypt`, or `kms:ReEncryptFrom`).
fn open<'s>(
    state: &'s State,
    cloud: &Cloud,
    call: &Call,
    sealed: Sealed<'_>,
    action: &str,
    note: &mut TrailNote,
) -> AwsResult<(&'s Key, zeroize::Zeroizing<Vec<u8>>)> {
    let Sealed { ciphertext, key_ref, context } = sealed;
    let parsed = blob::parse(ciphertext).ok_or_else(invalid_ciphertext)?;
    let fields: Vec<&str> = parsed.key_arn.splitn(6, ':').collect();
    let ["arn", "aws", "kms", region, _account, _] = fields.as_slice() else {
        return Err(invalid_ciphertext());
    };
    // A ciphertext made in another region cannot be decrypted here.
    if *region != call.region {
        return Err(invalid_ciphertext());
    }
    if let Some(key_ref) = key_ref {
        let named = resolve(state, cloud, call, key_ref, true)?;
        if named.arn() != parsed.key_arn {
            return Err(AwsError::new(
                "IncorrectKeyException",
                400,
                "The key ID in the request does not identify a KMS key that can perform this operation.",
            ));
        }
    }
    let key = resolve(state, cloud, call, parsed.key_arn, false)?;
    note_key(note, key);
    authorize(call, key, action, Some(context))?;
    check_usable(key)?;
    let plaintext = blob::open(&key.material, &parsed, context).ok_or_else(invalid_ciphertext)?;
    Ok((key, plaintext))
}

pub fn decrypt(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    let ciphertext =
        blob_field(input, "CiphertextBlob", MAX_CIPHERTEXT)?.ok_or_else(|| AwsError::missing_parameter(SERVICE, "CiphertextBlob"))?;
    let context = encryption_context(input, "EncryptionContext")?;
    check_algorithm(input, "EncryptionAlgorithm")?;
    let key_ref = optional_str(input, "KeyId")?;
    note.encryption_context = Some(context.clone());
    let guard = cloud.read();
    let (key, plaintext) =
        open(&guard.state, cloud, call, Sealed { ciphertext: &ciphertext, key_ref, context: &context }, "kms:Decrypt", note)?;
    dry_run(input)?;
    Ok(json!({ "KeyId": key.arn(), "Plaintext": b64(&plaintext), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }))
}

pub fn generate_data_key(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote, with_plaintext: bool) -> AwsResult<Value> {
    let key_ref = required_str(input, "KeyId")?;
    let context = encryption_context(input, "EncryptionContext")?;
    let length = match (optional_str(input, "KeySpec")?, optional_int(input, "NumberOfBytes")?) {
        (Some("AES_256"), None) => 32,
        (Some("AES_128"), None) => 16,
        (Some(other), None) => {
            return Err(AwsError::validation(
                SERVICE,
                format!(
                    "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
                ),
            ));
        }
        (None, Some(n)) if (1..=1024).contains(&n) => n as usize,
        (None, Some(n)) => {
            return Err(AwsError::validation(
                SERVICE,
                format!(
                    "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"
                ),
            ));
        }
        _ => return Err(AwsError::validation(SERVICE, "Please specify either number of bytes or key spec.")),
    };
    note.encryption_context = Some(context.clone());
    let guard = cloud.read();
    let key = resolve(&guard.state, cloud, call, key_ref, true)?;
    note_key(note, key);
    let action = if with_plaintext { "kms:GenerateDataKey" } else { "kms:GenerateDataKeyWithoutPlaintext" };
    authorize(call, key, action, Some(&context))?;
    check_usable(key)?;
    dry_run(input)?;
    let mut data_key = zeroize::Zeroizing::new(vec![0u8; length]);
    aws_lc_rs::rand::fill(&mut data_key).map_err(|_| AwsError::internal(SERVICE, 500))?;
    let ciphertext = seal(key, &context, &data_key)?;
    let mut out = json!({ "CiphertextBlob": b64(&ciphertext), "KeyId": key.arn() });
    if let (true, Some(obj)) = (with_plaintext, out.as_object_mut()) {
        obj.insert("Plaintext".into(), json!(b64(&data_key)));
    }
    Ok(out)
}

pub fn re_encrypt(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    let ciphertext =
        blob_field(input, "CiphertextBlob", MAX_CIPHERTEXT)?.ok_or_else(|| AwsError::missing_parameter(SERVICE, "CiphertextBlob"))?;
    let destination_ref = required_str(input, "DestinationKeyId")?;
    let source_context = encryption_context(input, "SourceEncryptionContext")?;
    let destination_context = encryption_context(input, "DestinationEncryptionContext")?;
    check_algorithm(input, "SourceEncryptionAlgorithm")?;
    check_algorithm(input, "DestinationEncryptionAlgorithm")?;
    let source_ref = optional_str(input, "SourceKeyId")?;
    note.encryption_context = Some(destination_context.clone());
    let guard = cloud.read();
    let (source, plaintext) = open(
        &guard.state,
        cloud,
        call,
        Sealed { ciphertext: &ciphertext, key_ref: source_ref, context: &source_context },
        "kms:ReEncryptFrom",
        note,
    )?;
    let destination = resolve(&guard.state, cloud, call, destination_ref, true)?;
    note_key(note, destination);
    authorize(call, destination, "kms:ReEncryptTo", Some(&destination_context))?;
    check_usable(destination)?;
    dry_run(input)?;
    let sealed = seal(destination, &destination_context, &plaintext)?;
    Ok(json!({
        "CiphertextBlob": b64(&sealed),
        "SourceKeyId": source.arn(),
        "KeyId": destination.arn(),
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}
