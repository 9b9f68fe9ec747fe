//! Reading a KMS request's JSON input as AWS does: the exception and message for a missing,
//! mistyped or out-of-range field.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use super::SERVICE;
use crate::error::{AwsError, AwsResult};
// ---- input -------------------------------------------------------------------------------

pub(super) fn serialization(message: &str) -> AwsError {
    AwsError::new("SerializationException", 400, message.to_string())
}

pub(super) fn required_str<'v>(input: &'v Value, name: &str) -> AwsResult<&'v str> {
    match input.get(name) {
        None | Some(Value::Null) => Err(AwsError::missing_parameter(SERVICE, name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(serialization(&format!("{name} must be a string"))),
    }
}

pub(super) fn optional_str<'v>(input: &'v Value, name: &str) -> AwsResult<Option<&'v str>> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(serialization(&format!("{name} must be a string"))),
    }
}

pub(super) fn optional_int(input: &Value, name: &str) -> AwsResult<Option<i64>> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| serialization(&format!("{name} must be an integer"))),
    }
}

/// A base64 blob field, with AWS's length bounds checked.
pub(super) fn blob_field(input: &Value, name: &str, max: usize) -> AwsResult<Option<Vec<u8>>> {
    let Some(text) = optional_str(input, name)? else { return Ok(None) };
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| serialization(&format!("{name} is not valid base64")))?;
    let field = lower_first(name);
    if bytes.is_empty() {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length greater than or equal to 1"
            ),
        ));
    }
    if bytes.len() > max {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ),
        ));
    }
    Ok(Some(bytes))
}

pub(super) fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

pub(super) fn encryption_context(input: &Value, name: &str) -> AwsResult<BTreeMap<String, String>> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(serialization(&format!("{name} values must be strings"))),
            })
            .collect(),
        Some(_) => Err(serialization(&format!("{name} must be a map of strings"))),
    }
}

pub(super) fn check_algorithm(input: &Value, name: &str) -> AwsResult<()> {
    match optional_str(input, name)? {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(other) => Err(AwsError::new(
            "InvalidKeyUsageException",
            400,
            format!("The encryption algorithm {other} is not valid for a symmetric encryption KMS key."),
        )),
    }
}

pub(super) fn check_policy_name(input: &Value) -> AwsResult<()> {
    match optional_str(input, "PolicyName")? {
        None | Some("default") => Ok(()),
        Some(other) => Err(AwsError::new("NotFoundException", 400, format!("Policy {other} is not found."))),
    }
}

pub(super) fn dry_run(input: &Value) -> AwsResult<()> {
    if input.get("DryRun").and_then(Value::as_bool) == Some(true) {
        return Err(AwsError::new("DryRunOperationException", 412, "The request would have succeeded, but the DryRun option is set."));
    }
    Ok(())
}
