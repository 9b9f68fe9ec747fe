//! The customer's setup: the `aws` CLI commands and the trust policy `byok tenant add` prints
//! (pure text; [`crate::onboarding`] verifies what the customer did).

use byok_domain::{Location, RoleArn, TenantId};
use serde_json::json;

use crate::config::BrokerConfig;

pub use byok_api::Instructions;

/// The trust policy the customer's role needs: the provider's principal may assume it, only
/// with this tenant's external id.
pub fn trust_policy(provider: &RoleArn, external_id: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ByokProvider",
            "Effect": "Allow",
            "Principal": { "AWS": provider.as_str() },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
        }]
    })
}

/// The statement a key policy needs so that the byok role can use the key: `DescribeKey`, and
/// the cryptographic operations only for this tenant's encryption context. Printed by
/// `tenant verify` when the grant is missing.
pub fn key_use_statement(role_arn: &str, tenant: &TenantId) -> serde_json::Value {
    json!({
        "Sid": "ByokTenantKeyUse",
        "Effect": "Allow",
        "Principal": { "AWS": role_arn },
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        "Resource": "*",
        "Condition": { "StringEquals": { "kms:EncryptionContext:byok:tenant": tenant.as_str() } }
    })
}

/// The least-privilege key policy: the account keeps full administration (as AWS's default
/// policy does, so the customer can never lock themselves out), and the byok role may only
/// describe the key and use it for this tenant's encryption context. The role itself needs no
/// other permission.
pub fn key_policy(account: &str, role_arn: &str, tenant: &TenantId) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "ByokDescribeKey",
                "Effect": "Allow",
                "Principal": { "AWS": role_arn },
                "Action": "kms:DescribeKey",
                "Resource": "*"
            },
            key_use_statement(role_arn, tenant)
        ]
    })
}

/// The role's name for a tenant: the configured name, or — when another tenant of the provider
/// already uses this AWS account — the configured name with the tenant id appended, so that two
/// tenants in one account never share (or overwrite) a role.
pub fn role_name_for(config: &BrokerConfig, tenant: &TenantId, account_has_other_tenants: bool) -> String {
    if account_has_other_tenants {
        let name = format!("{}-{tenant}", config.role_name);
        name.chars().take(64).collect()
    } else {
        config.role_name.clone()
    }
}

pub fn instructions(config: &BrokerConfig, tenant: &TenantId, role_arn: &RoleArn, location: &Location, external_id: &str) -> Instructions {
    let account = role_arn.account().to_string();
    let role_name = role_arn.name().to_string();
    let alias = format!("{}{tenant}", config.alias_prefix);
    let policy = trust_policy(&config.provider_principal, external_id);
    let key_policy = key_policy(&account, role_arn.as_str(), tenant);
    let trust_file = format!("byok-trust-policy-{tenant}.json");
    let key_file = format!("byok-key-policy-{tenant}.json");
    let mut commands = format!(
        "# byok setup for tenant {tenant}, AWS account {account}, location {code}.\n\
         # Run with credentials for account {account} (an administrator).\n\
         set -euo pipefail\n\n\
         # 1. The role the provider assumes. Only the provider's principal may assume it, and only\n\
         #    with this tenant's external id. The role needs no permissions of its own: each key's\n\
         #    policy grants it exactly what it needs.\n\
         cat > {trust_file} <<'POLICY'\n{policy}\nPOLICY\n\
         aws iam create-role --role-name {role_name} --description 'byok: provider access to tenant {tenant} keys' \\\n  --assume-role-policy-document file://{trust_file}\n\n\
         # The key policy: your account keeps full administration; the role may describe the key and\n\
         # use it only for this tenant's encryption context.\n\
         cat > {key_file} <<'POLICY'\n{key_policy_text}\nPOLICY\n",
        code = location.code,
        policy = serde_json::to_string_pretty(&policy).unwrap_or_default(),
        key_policy_text = serde_json::to_string_pretty(&key_policy).unwrap_or_default(),
    );
    for (i, region) in location.regions.iter().enumerate() {
        commands.push_str(&format!(
            "\n# {n}. A KMS key in {region}, found by its alias {alias}.\n\
             KEY_ID=$(aws kms create-key --region {region} --description 'byok key for tenant {tenant}' --policy file://{key_file} --query KeyMetadata.KeyId --output text)\n\
             aws kms create-alias --region {region} --alias-name {alias} --target-key-id \"$KEY_ID\"\n",
            n = i + 2,
        ));
    }
    commands.push_str(&format!("\n# Then tell your provider the setup is done: they run `byok tenant verify {tenant}`.\n"));
    Instructions {
        tenant: tenant.to_string(),
        account_id: account,
        role_name,
        role_arn: role_arn.to_string(),
        external_id: external_id.to_string(),
        alias,
        regions: location.regions.iter().map(ToString::to_string).collect(),
        trust_policy: policy,
        key_policy,
        commands,
    }
}
