//! Bulk setup for benchmarks and tests: one admin request makes what a customer would make
//! with several IAM and KMS calls — a role with its trust policy and, per region, a key with
//! its key policy (the default unless given) and an alias — in an existing account.
//!
//! Everything is validated as the AWS operations validate it (role name, trust policy and its
//! principals, alias name, no duplicates) before anything is written, so a refused fixture
//! changes nothing. It is not an AWS API and leaves no trail entries: it stands for work the
//! customer did before the calls that matter.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cloud::{AdminError, Cloud};
use crate::policy::{Policy, PolicyKind};
use crate::secret::Secret32;
use crate::state::{Alias, Change, Key, KeyState, Role, ids};

/// A role to create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRole {
    pub name: String,
    /// The trust policy: a JSON object or its text.
    pub trust_policy: Value,
}

/// A key to create in one region, with an optional alias.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureKey {
    pub region: String,
    pub alias: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The key policy (a JSON object or its text); the default key policy when absent. It may
    /// name the fixture's own roles.
    pub policy: Option<Value>,
}

/// `POST /_localcloud/accounts/{id}/fixture`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub roles: Vec<FixtureRole>,
    #[serde(default)]
    pub keys: Vec<FixtureKey>,
}

fn valid_role_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn valid_alias(name: &str) -> bool {
    name.strip_prefix("alias/").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 250
            && !rest.starts_with("aws/")
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
    })
}

fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Cloud {
    /// Creates the fixture's roles and keys in `account`, all or nothing. Returns the roles'
    /// ARNs and each key's region, id, ARN and alias.
    pub fn add_fixture(&self, account: &str, fixture: Fixture) -> Result<Value, AdminError> {
        let now = self.clock.now().unix_timestamp();
        let mut guard = self.write();
        if !guard.state.accounts.contains_key(account) {
            return Err(AdminError::NotFound(format!("no account {account}")));
        }
        let mut changes = Vec::new();
        let mut roles = Vec::new();
        for r in fixture.roles {
            if !valid_role_name(&r.name) {
                return Err(AdminError::Invalid(format!("'{}' is not a valid role name", r.name)));
            }
            if guard.state.role(account, &r.name).is_some() || roles.iter().any(|(n, _): &(String, String)| n.eq_ignore_ascii_case(&r.name))
            {
                return Err(AdminError::Conflict(format!("role {} already exists", r.name)));
            }
            let document = match r.trust_policy {
                Value::String(s) => s,
                other => other.to_string(),
            };
            crate::iam::validate_trust_policy(&guard.state, &document)
                .map_err(|e| AdminError::Invalid(format!("{}: {}", e.code, e.message)))?;
            let role = Role {
                account: account.to_string(),
                name: r.name.clone(),
                path: "/".into(),
                role_id: ids::upper("AROA", 17),
                trust_policy: document,
                description: None,
                max_session_duration: 3600,
                created: now,
                inline_policies: Default::default(),
                attached_policies: Default::default(),
            };
            roles.push((r.name, role.arn()));
            changes.push(Change::RoleCreated(role));
        }
        let mut keys = Vec::new();
        for k in fixture.keys {
            if !valid_region(&k.region) {
                return Err(AdminError::Invalid(format!("'{}' is not a region", k.region)));
            }
            let policy = match k.policy {
                None => crate::kms::default_policy(account),
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
            };
            let principal_ok = |arn: &str| crate::iam::principal_exists(&guard.state, arn) || roles.iter().any(|(_, made)| made == arn);
            Policy::parse(&policy, PolicyKind::Key, principal_ok)
                .map_err(|e| AdminError::Invalid(format!("MalformedPolicyDocumentException: {}", e.0)))?;
            let key = Key {
                account: account.to_string(),
                region: k.region.clone(),
                key_id: ids::uuid(),
                description: k.description,
                state: KeyState::Enabled,
                policy,
                material: Secret32::random(),
                created: now,
                deletion_date: None,
                pending_window_days: None,
                parsed_policy: Default::default(),
            };
            keys.push(json!({ "region": k.region, "key_id": key.key_id, "arn": key.arn(), "alias": k.alias }));
            if let Some(name) = k.alias {
                let taken = guard.state.aliases.contains_key(&(account.to_string(), k.region.clone(), name.clone()))
                    || changes.iter().any(|c| matches!(c, Change::AliasCreated(a) if a.region == k.region && a.name == name));
                if !valid_alias(&name) {
                    return Err(AdminError::Invalid(format!("'{name}' is not a valid alias name")));
                }
                if taken {
                    return Err(AdminError::Conflict(format!("alias {name} already exists in {}", k.region)));
                }
                let alias = Alias {
                    account: account.to_string(),
                    region: k.region,
                    name,
                    target_key_id: key.key_id.clone(),
                    created: now,
                    updated: now,
                };
                changes.push(Change::KeyCreated(key));
                changes.push(Change::AliasCreated(alias));
            } else {
                changes.push(Change::KeyCreated(key));
            }
        }
        for change in changes {
            guard.commit(change)?;
        }
        Ok(json!({ "roles": roles.into_iter().map(|(_, arn)| arn).collect::<Vec<_>>(), "keys": keys }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_aws_checks_them() {
        assert!(valid_role_name("byok-acme"));
        assert!(!valid_role_name("has space"));
        assert!(!valid_role_name(&"r".repeat(65)));
        assert!(valid_alias("alias/byok/acme"));
        assert!(!valid_alias("alias/aws/acme"));
        assert!(!valid_alias("byok"));
        assert!(valid_region("eu-central-1"));
        assert!(!valid_region("europe"));
    }
}
