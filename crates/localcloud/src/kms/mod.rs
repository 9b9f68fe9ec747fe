//! KMS (JSON 1.1 protocol), per region: keys, aliases, key policies, and the cryptographic
//! operations with AWS's exact states and errors.
//!
//! - `mod.rs`: dispatch, JSON input, key resolution (id, ARN, alias, alias ARN), key-policy
//!   authorization, and the key-management operations.
//! - `input.rs`: reading the JSON input with AWS's exceptions.
//! - `aliases.rs`: CreateAlias, UpdateAlias, ListAliases.
//! - `data.rs`: Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext), ReEncrypt.
//! - `blob.rs`: the ciphertext format.

mod aliases;
mod blob;
mod data;
mod input;

use aliases::{alias_not_found, create_alias, list_aliases, update_alias};

use input::{
    blob_field, check_algorithm, check_policy_name, dry_run, encryption_context, optional_int, optional_str, required_str, serialization,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cloud::{Call, Cloud};
use crate::error::{AwsError, AwsResult};
use crate::iam::principal_exists;
use crate::policy::{Decision, Policy, PolicyKind, RequestContext};
use crate::protocol::Service;
use crate::secret::Secret32;
use crate::state::{Alias, Change, Key, KeyState, State, ids};
use crate::trail::TrailNote;

const SERVICE: Service = Service::Kms;

/// Handles one KMS operation; `input` is the request's JSON body.
pub fn handle(cloud: &Cloud, call: &Call, operation: &str, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    if !input.is_object() {
        return Err(serialization("the request body must be a JSON object"));
    }
    match operation {
        "Encrypt" => data::encrypt(cloud, call, input, note),
        "Decrypt" => data::decrypt(cloud, call, input, note),
        "GenerateDataKey" => data::generate_data_key(cloud, call, input, note, true),
        "GenerateDataKeyWithoutPlaintext" => data::generate_data_key(cloud, call, input, note, false),
        "ReEncrypt" => data::re_encrypt(cloud, call, input, note),
        "CreateKey" => create_key(cloud, call, input, note),
        "DescribeKey" => {
            let guard = cloud.read();
            let key = resolve(&guard.state, cloud, call, required_str(input, "KeyId")?, true)?;
            note_key(note, key);
            authorize(call, key, "kms:DescribeKey", None)?;
            Ok(json!({ "KeyMetadata": metadata(key) }))
        }
        "ListKeys" => list_keys(cloud, call, input),
        "EnableKey" | "DisableKey" => {
            let enable = operation == "EnableKey";
            update_key(cloud, call, input, note, if enable { "kms:EnableKey" } else { "kms:DisableKey" }, |key| match key.state {
                KeyState::PendingDeletion => Err(pending_deletion(key)),
                _ => Ok(Change::KeyStateChanged {
                    id: regional_id(key),
                    state: if enable { KeyState::Enabled } else { KeyState::Disabled },
                    deletion_date: None,
                    pending_window_days: None,
                }),
            })?;
            Ok(json!({}))
        }
        "ScheduleKeyDeletion" => {
            let days = optional_int(input, "PendingWindowInDays")?.unwrap_or(30);
            if !(7..=30).contains(&days) {
                return Err(AwsError::validation(
                    SERVICE,
                    format!(
                        "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
                    ),
                ));
            }
            let deletion_date = cloud.clock.now().unix_timestamp() + days * 86_400;
            let key = update_key(cloud, call, input, note, "kms:ScheduleKeyDeletion", |key| match key.state {
                KeyState::PendingDeletion => Err(pending_deletion(key)),
                _ => Ok(Change::KeyStateChanged {
                    id: regional_id(key),
                    state: KeyState::PendingDeletion,
                    deletion_date: Some(deletion_date),
                    pending_window_days: Some(days),
                }),
            })?;
            Ok(json!({ "KeyId": key.arn(), "DeletionDate": deletion_date, "KeyState": "PendingDeletion", "PendingWindowInDays": days }))
        }
        "CancelKeyDeletion" => {
            // As on AWS, a key whose deletion is cancelled comes back Disabled.
            let key = update_key(cloud, call, input, note, "kms:CancelKeyDeletion", |key| match key.state {
                KeyState::PendingDeletion => Ok(Change::KeyStateChanged {
                    id: regional_id(key),
                    state: KeyState::Disabled,
                    deletion_date: None,
                    pending_window_days: None,
                }),
                _ => Err(AwsError::new("KMSInvalidStateException", 400, format!("{} is not pending deletion.", key.arn()))),
            })?;
            Ok(json!({ "KeyId": key.arn() }))
        }
        "GetKeyPolicy" => {
            check_policy_name(input)?;
            let guard = cloud.read();
            let key = resolve(&guard.state, cloud, call, required_str(input, "KeyId")?, false)?;
            note_key(note, key);
            authorize(call, key, "kms:GetKeyPolicy", None)?;
            Ok(json!({ "Policy": key.policy, "PolicyName": "default" }))
        }
        "PutKeyPolicy" => {
            check_policy_name(input)?;
            let document = required_str(input, "Policy")?;
            update_key(cloud, call, input, note, "kms:PutKeyPolicy", |key| {
                Ok(Change::KeyPolicyPut { id: regional_id(key), policy: document.to_string() })
            })?;
            Ok(json!({}))
        }
        "CreateAlias" => create_alias(cloud, call, input, note),
        "UpdateAlias" => update_alias(cloud, call, input, note),
        "DeleteAlias" => {
            let name = required_str(input, "AliasName")?;
            let mut guard = cloud.write();
            let id = (call.caller.account().to_string(), call.region.clone(), name.to_string());
            let Some(alias) = guard.state.aliases.get(&id) else { return Err(alias_not_found(call, name)) };
            note.resources.push(alias.arn());
            cloud.commit(&mut guard, SERVICE, Change::AliasDeleted { id })?;
            Ok(json!({}))
        }
        "ListAliases" => list_aliases(cloud, call, input),
        other => Err(AwsError::unknown_operation(SERVICE, other)),
    }
}

// ---- keys --------------------------------------------------------------------------------

fn regional_id(key: &Key) -> (String, String, String) {
    (key.account.clone(), key.region.clone(), key.key_id.clone())
}

fn note_key(note: &mut TrailNote, key: &Key) {
    note.resources.push(key.arn());
    note.recipient_account = Some(key.account.clone());
}

fn not_found_key(region: &str, account: &str, key_id: &str) -> AwsError {
    AwsError::new("NotFoundException", 400, format!("Key 'arn:aws:kms:{region}:{account}:key/{key_id}' does not exist"))
}

fn is_key_id(s: &str) -> bool {
    s.len() == 36 && s.bytes().enumerate().all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// Finds the key a `KeyId` parameter names: key id, key ARN, alias name or alias ARN (the
/// last two only where the operation accepts aliases). A key whose deletion window has passed
/// does not exist any more.
pub(crate) fn resolve<'s>(state: &'s State, cloud: &Cloud, call: &Call, key_ref: &str, allow_alias: bool) -> AwsResult<&'s Key> {
    let (account, region, resource) = if let Some(rest) = key_ref.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let ["aws", "kms", region, account, resource] = parts.as_slice() else {
            return Err(AwsError::new("InvalidArnException", 400, format!("Invalid arn {key_ref}")));
        };
        if *region != call.region {
            return Err(AwsError::new("NotFoundException", 400, format!("Invalid arn {region}")));
        }
        (account.to_string(), region.to_string(), resource.to_string())
    } else {
        let resource = if key_ref.starts_with("alias/") { key_ref.to_string() } else { format!("key/{key_ref}") };
        (call.caller.account().to_string(), call.region.clone(), resource)
    };
    let key_id = if let Some(alias_name) = resource.strip_prefix("alias/") {
        if !allow_alias {
            return Err(AwsError::new("NotFoundException", 400, format!("Invalid keyId {key_ref}")));
        }
        let id = (account.clone(), region.clone(), format!("alias/{alias_name}"));
        match state.aliases.get(&id) {
            Some(alias) => alias.target_key_id.clone(),
            None => {
                return Err(AwsError::new(
                    "NotFoundException",
                    400,
                    format!("Alias arn:aws:kms:{region}:{account}:alias/{alias_name} is not found."),
                ));
            }
        }
    } else if let Some(id) = resource.strip_prefix("key/") {
        if !is_key_id(id) {
            return Err(AwsError::new("NotFoundException", 400, format!("Invalid keyId {key_ref}")));
        }
        id.to_string()
    } else {
        return Err(AwsError::new("InvalidArnException", 400, format!("Invalid arn {key_ref}")));
    };
    let now = cloud.clock.now().unix_timestamp();
    match state.keys.get(&(account.clone(), region.clone(), key_id.clone())) {
        Some(key) if !key.is_destroyed_at(now) => Ok(key),
        _ => Err(not_found_key(&region, &account, &key_id)),
    }
}

/// Evaluates the key policy for the caller; names the missing permission when it refuses.
pub(crate) fn authorize(call: &Call, key: &Key, action: &str, context: Option<&BTreeMap<String, String>>) -> AwsResult<()> {
    let policy = key
        .parsed_policy
        .get_or_init(|| Arc::new(Policy::parse(&key.policy, PolicyKind::Key, |_| true).unwrap_or_else(|_| Policy::deny_all())))
        .clone();
    let arn = key.arn();
    let mut ctx = RequestContext::new(&call.caller, action, &arn).with("kms:CallerAccount", call.caller.account());
    for (k, v) in context.into_iter().flatten() {
        ctx = ctx.with(&format!("kms:EncryptionContext:{k}"), v.clone());
    }
    match crate::policy::kms_decision(&policy, &call.identity, &ctx, &key.account) {
        Decision::Allow => Ok(()),
        Decision::ExplicitDeny => Err(AwsError::access_denied(
            SERVICE,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {arn} with an explicit deny in a resource-based policy",
                call.caller.arn()
            ),
        )),
        Decision::ImplicitDeny => Err(AwsError::access_denied(
            SERVICE,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {arn} because no resource-based policy allows the {action} action",
                call.caller.arn()
            ),
        )),
    }
}

/// Errors for a key that is not usable for cryptography in its current state.
pub(crate) fn check_usable(key: &Key) -> AwsResult<()> {
    match key.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(AwsError::new("DisabledException", 400, format!("{} is disabled.", key.arn()))),
        KeyState::PendingDeletion => Err(pending_deletion(key)),
    }
}

fn pending_deletion(key: &Key) -> AwsError {
    AwsError::new("KMSInvalidStateException", 400, format!("{} is pending deletion.", key.arn()))
}

/// Authorizes and applies one state change to a key; returns the key as it was.
fn update_key(
    cloud: &Cloud,
    call: &Call,
    input: &Value,
    note: &mut TrailNote,
    action: &str,
    change: impl FnOnce(&Key) -> AwsResult<Change>,
) -> AwsResult<Key> {
    let key_ref = required_str(input, "KeyId")?;
    let mut guard = cloud.write();
    let key = resolve(&guard.state, cloud, call, key_ref, false)?;
    note_key(note, key);
    authorize(call, key, action, None)?;
    let change = change(key)?;
    if let Change::KeyPolicyPut { policy, .. } = &change {
        validate_key_policy(
            &guard.state,
            call,
            key,
            policy,
            input.get("BypassPolicyLockoutSafetyCheck").and_then(Value::as_bool).unwrap_or(false),
        )?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(key));
        }
    }
    let before = key.clone();
    cloud.commit(&mut guard, SERVICE, change)?;
    Ok(before)
}

/// Parses a key policy, checks its principals exist, and (unless bypassed) that the caller
/// could still change the policy afterwards — KMS's lockout safety check.
fn validate_key_policy(state: &State, call: &Call, key: &Key, document: &str, bypass: bool) -> AwsResult<()> {
    if document.len() > 32_768 {
        return Err(AwsError::validation(
            SERVICE,
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 32768",
        ));
    }
    let policy = Policy::parse(document, PolicyKind::Key, |arn| principal_exists(state, arn))
        .map_err(|e| AwsError::new("MalformedPolicyDocumentException", 400, e.0))?;
    if !bypass {
        let arn = key.arn();
        let ctx = RequestContext::new(&call.caller, "kms:PutKeyPolicy", &arn).with("kms:CallerAccount", call.caller.account());
        if crate::policy::kms_decision(&policy, &call.identity, &ctx, &key.account) != Decision::Allow {
            return Err(AwsError::new(
                "MalformedPolicyDocumentException",
                400,
                "The new key policy will not allow you to update the key policy in the future.",
            ));
        }
    }
    Ok(())
}

pub(crate) fn default_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string()
}

fn metadata(key: &Key) -> Value {
    let mut m = json!({
        "AWSAccountId": key.account,
        "KeyId": key.key_id,
        "Arn": key.arn(),
        "CreationDate": key.created,
        "Enabled": key.state == KeyState::Enabled,
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": key.state.as_str(),
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": false,
    });
    if let (Some(date), Some(obj)) = (key.deletion_date, m.as_object_mut()) {
        obj.insert("DeletionDate".into(), json!(date));
        obj.insert("PendingDeletionWindowInDays".into(), json!(key.pending_window_days));
    }
    m
}

fn create_key(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    for (field, allowed) in [
        ("KeyUsage", "ENCRYPT_DECRYPT"),
        ("KeySpec", "SYMMETRIC_DEFAULT"),
        ("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"),
        ("Origin", "AWS_KMS"),
    ] {
        if let Some(v) = optional_str(input, field)? {
            if v != allowed {
                return Err(AwsError::new(
                    "UnsupportedOperationException",
                    400,
                    format!("localcloud supports only {field} {allowed}, not {v}"),
                ));
            }
        }
    }
    if input.get("MultiRegion").and_then(Value::as_bool) == Some(true) {
        return Err(AwsError::new("UnsupportedOperationException", 400, "localcloud does not support multi-Region keys"));
    }
    let description = optional_str(input, "Description")?.unwrap_or_default();
    if description.len() > 8192 {
        return Err(AwsError::validation(
            SERVICE,
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192",
        ));
    }
    let account = call.caller.account().to_string();
    let mut key = Key {
        account: account.clone(),
        region: call.region.clone(),
        key_id: ids::uuid(),
        description: description.to_string(),
        state: KeyState::Enabled,
        policy: default_policy(&account),
        material: Secret32::random(),
        created: cloud.clock.now().unix_timestamp(),
        deletion_date: None,
        pending_window_days: None,
        parsed_policy: Default::default(),
    };
    let mut guard = cloud.write();
    if let Some(document) = optional_str(input, "Policy")? {
        let bypass = input.get("BypassPolicyLockoutSafetyCheck").and_then(Value::as_bool).unwrap_or(false);
        validate_key_policy(&guard.state, call, &key, document, bypass)?;
        key.policy = document.to_string();
    }
    note_key(note, &key);
    let meta = metadata(&key);
    cloud.commit(&mut guard, SERVICE, Change::KeyCreated(key))?;
    Ok(json!({ "KeyMetadata": meta }))
}

fn page_limit(input: &Value) -> AwsResult<usize> {
    let limit = optional_int(input, "Limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"
            ),
        ));
    }
    Ok(limit as usize)
}

fn list_keys(cloud: &Cloud, call: &Call, input: &Value) -> AwsResult<Value> {
    let limit = page_limit(input)?;
    let marker = optional_str(input, "Marker")?;
    let now = cloud.clock.now().unix_timestamp();
    let guard = cloud.read();
    let account = call.caller.account();
    let mut keys = guard
        .state
        .keys
        .values()
        .filter(|k| k.account == account && k.region == call.region && !k.is_destroyed_at(now))
        .filter(|k| marker.is_none_or(|m| k.key_id.as_str() > m));
    let page: Vec<&Key> = keys.by_ref().take(limit).collect();
    let truncated = keys.next().is_some();
    let mut out = json!({
        "Keys": page.iter().map(|k| json!({ "KeyId": k.key_id, "KeyArn": k.arn() })).collect::<Vec<_>>(),
        "Truncated": truncated,
    });
    if let (true, Some(last), Some(obj)) = (truncated, page.last(), out.as_object_mut()) {
        obj.insert("NextMarker".into(), json!(last.key_id));
    }
    Ok(out)
}
