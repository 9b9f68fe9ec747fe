//! Aliases: CreateAlias, UpdateAlias, ListAliases.

use serde_json::{Value, json};

use super::*;
pub(super) fn create_alias(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
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

pub(super) fn alias_not_found(call: &Call, name: &str) -> AwsError {
    AwsError::new("NotFoundException", 400, format!("Alias arn:aws:kms:{}:{}:{name} is not found.", call.region, call.caller.account()))
}

/// `UpdateAlias`: re-points an existing alias to another key of the same account and region
/// (the way a customer replaces a key without touching what refers to it). The caller needs
/// `kms:UpdateAlias` on both the current and the new key, as in AWS.
pub(super) fn update_alias(cloud: &Cloud, call: &Call, input: &Value, note: &mut TrailNote) -> AwsResult<Value> {
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

pub(super) fn list_aliases(cloud: &Cloud, call: &Call, input: &Value) -> AwsResult<Value> {
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
