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

pub fn instructions(config: &BrokerConfig, tenant: &TenantId, account: &str, location: &Location, external_id: &str) -> Instructions {
    let alias = format!("{}{tenant}", config.alias_prefix);
    let policy = trust_policy(&config.provider_principal, external_id);
    let role_arn = format!("arn:aws:iam::{account}:role/{}", config.role_name);
    let mut commands = format!(
        "# byok setup for tenant {tenant}, AWS account {account}, location {code}.\n\
         # Run with credentials for account {account} (an administrator).\n\
         set -euo pipefail\n\n\
         # 1. The role the provider assumes. Only the provider's principal may assume it, and only\n\
         #    with this tenant's external id.\n\
         cat > byok-trust-policy.json <<'POLICY'\n{policy}\nPOLICY\n\
         aws iam create-role --role-name {role} --description 'byok: provider access to tenant {tenant} keys' \\\n  --assume-role-policy-document file://byok-trust-policy.json\n",
        code = location.code,
        policy = serde_json::to_string_pretty(&policy).unwrap_or_default(),
        role = config.role_name,
    );
    for (i, region) in location.regions.iter().enumerate() {
        commands.push_str(&format!(
            "\n# {n}. A KMS key in {region}, found by its alias {alias}.\n\
             KEY_ID=$(aws kms create-key --region {region} --description 'byok key for tenant {tenant}' --query KeyMetadata.KeyId --output text)\n\
             aws kms create-alias --region {region} --alias-name {alias} --target-key-id \"$KEY_ID\"\n",
            n = i + 2,
        ));
    }
    commands.push_str(&format!("\n# Then tell your provider the setup is done: they run `byok tenant verify {tenant}`.\n"));
    Instructions {
        tenant: tenant.to_string(),
        account_id: account.to_string(),
        role_name: config.role_name.clone(),
        role_arn,
        external_id: external_id.to_string(),
        alias,
        regions: location.regions.iter().map(ToString::to_string).collect(),
        trust_policy: policy,
        commands,
    }
}
