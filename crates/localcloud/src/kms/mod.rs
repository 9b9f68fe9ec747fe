//! KMS (JSON 1.1 protocol), per region: keys, aliases, key policies, and the cryptographic
//! operations with AWS's exact states and errors.
//!
//! - `mod.rs`: dispatch, JSON input, key resolution (id, ARN, alias, alias ARN), key-policy
//!   authorization, and the key-management operations.
//! - `data.rs`: Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext), ReEncrypt.
//! - `blob.rs`: the ciphertext format.

mod blob;
mod data;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
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

// ---- input -------------------------------------------------------------------------------

fn serialization(message: &str) -> AwsError {
    AwsError::new("SerializationException", 400, message.to_string())
}

fn required_str<'v>(input: &'v Value, name: &str) -> AwsResult<&'v str> {
    match input.get(name) {
        None | Some(Value::Null) => Err(AwsError::missing_parameter(SERVICE, name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(serialization(&format!("{name} must be a string"))),
    }
}

fn optional_str<'v>(input: &'v Value, name: &str) -> AwsResult<Option<&'v str>> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(serialization(&format!("{name} must be a string"))),
    }
}

fn optional_int(input: &Value, name: &str) -> AwsResult<Option<i64>> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| serialization(&format!("{name} must be an integer"))),
    }
}

/// A base64 blob field, with AWS's length bounds checked.
fn blob_field(input: &Value, name: &str, max: usize) -> AwsResult<Option<Vec<u8>>> {
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

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

fn encryption_context(input: &Value, name: &str) -> AwsResult<BTreeMap<String, String>> {
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

fn check_algorithm(input: &Value, name: &str) -> AwsResult<()> {
    match optional_str(input, name)? {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(other) => Err(AwsError::new(
            "InvalidKeyUsageException",
            400,
            format!("The encryption algorithm {other} is not valid for a symmetric encryption KMS key."),
        )),
    }
}

fn check_policy_name(input: &Value) -> AwsResult<()> {
    match optional_str(input, "PolicyName")? {
        None | Some("default") => Ok(()),
        Some(other) => Err(AwsError::new("NotFoundException", 400, format!("Policy {other} is not found."))),
    }
}

fn dry_run(input: &Value) -> AwsResult<()> {
    if input.get("DryRun").and_then(Value::as_bool) == Some(true) {
        return Err(AwsError::new("DryRunOperationException", 412, "The request would have succeeded, but the DryRun option is set."));
    }
    Ok(())
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

fn create_alias(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    let name = required_str(input, "AliasName")?;
    let target = required_str(input, "TargetKeyId")?;
    let valid = name
        .strip_prefix("alias/")
        .is_some_and(|rest| !rest.is_empty() && rest.len() <= 250 && rest.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c)));
    if !valid {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
            ),
        ));
    }
    if name.starts_with("alias/aws/") {
        return Err(AwsError::new(
            "InvalidAliasNameException",
            400,
            "Alias must not begin with 'alias/aws/'. The 'alias/aws/' prefix is reserved by AWS for AWS managed keys.",
        ));
    }
    let mut guard = cloud.write();
    let key = resolve(&guard.state, cloud, call, target, false)?;
    if key.account != call.caller.account() {
        return Err(not_found_key(&key.region, call.caller.account(), &key.key_id));
    }
    authorize(call, key, "kms:CreateAlias", None)?;
    if key.state == KeyState::PendingDeletion {
        return Err(pending_deletion(key));
    }
    let now = cloud.clock.now().unix_timestamp();
    let alias = Alias {
        account: key.account.clone(),
        region: key.region.clone(),
        name: name.to_string(),
        target_key_id: key.key_id.clone(),
        created: now,
        updated: now,
    };
    note.resources.push(alias.arn());
    note_key(note, key);
    if guard.state.aliases.contains_key(&(alias.account.clone(), alias.region.clone(), alias.name.clone())) {
        return Err(AwsError::new("AlreadyExistsException", 400, format!("An alias with the name {} already exists", alias.arn())));
    }
    cloud.commit(&mut guard, SERVICE, Change::AliasCreated(alias))?;
    Ok(json!({}))
}

fn alias_not_found(call: &Call, name: &str) -> AwsError {
    AwsError::new("NotFoundException", 400, format!("Alias arn:aws:kms:{}:{}:{name} is not found.", call.region, call.caller.account()))
}

/// `UpdateAlias`: re-points an existing alias to another key of the same account and region
/// (the way a customer replaces a key without touching what refers to it). The caller needs
/// `kms:UpdateAlias` on both the current and the new key, as in AWS.
fn update_alias(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
    let name = required_str(input, "AliasName")?;
    let target = required_str(input, "TargetKeyId")?;
    let mut guard = cloud.write();
    let id = (call.caller.account().to_string(), call.region.clone(), name.to_string());
    let Some(alias) = guard.state.aliases.get(&id) else { return Err(alias_not_found(call, name)) };
    note.resources.push(alias.arn());
    let current = resolve(&guard.state, cloud, call, &alias.target_key_id, false)?;
    authorize(call, current, "kms:UpdateAlias", None)?;
    let key = resolve(&guard.state, cloud, call, target, false)?;
    if key.account != call.caller.account() || key.region != call.region {
        return Err(not_found_key(&key.region, call.caller.account(), &key.key_id));
    }
    note_key(note, key);
    authorize(call, key, "kms:UpdateAlias", None)?;
    if key.state == KeyState::PendingDeletion {
        return Err(pending_deletion(key));
    }
    let change = Change::AliasRetargeted { id, target_key_id: key.key_id.clone(), updated: cloud.clock.now().unix_timestamp() };
    cloud.commit(&mut guard, SERVICE, change)?;
    Ok(json!({}))
}

fn list_aliases(cloud: &Cloud, call: &Call, input: &Value) -> AwsResult<Value> {
    let limit = page_limit(input)?;
    let marker = optional_str(input, "Marker")?;
    let guard = cloud.read();
    let key_filter = match optional_str(input, "KeyId")? {
        Some(key_ref) => Some(resolve(&guard.state, cloud, call, key_ref, false)?.key_id.clone()),
        None => None,
    };
    let account = call.caller.account();
    let mut aliases = guard
        .state
        .aliases
        .values()
        .filter(|a| a.account == account && a.region == call.region)
        .filter(|a| key_filter.as_ref().is_none_or(|k| &a.target_key_id == k))
        .filter(|a| marker.is_none_or(|m| a.name.as_str() > m));
    let page: Vec<&Alias> = aliases.by_ref().take(limit).collect();
    let truncated = aliases.next().is_some();
    let mut out = json!({
        "Aliases": page.iter().map(|a| json!({
            "AliasName": a.name,
            "AliasArn": a.arn(),
            "TargetKeyId": a.target_key_id,
            "CreationDate": a.created,
            "LastUpdatedDate": a.updated,
        })).collect::<Vec<_>>(),
        "Truncated": truncated,
    });
    if let (true, Some(last), Some(obj)) = (truncated, page.last(), out.as_object_mut()) {
        obj.insert("NextMarker".into(), json!(last.name));
    }
    Ok(out)
}
