//! The customer's setup: the `aws` CLI commands and the trust policy `byok tenant add` prints
//! (pure text; [`crate::onboarding`] verifies what the customer did).

use byok_domain::{Location, RoleArn, TenantId};
use serde_json::json;

use crate::config::BrokerConfig;

use crate::outcomes::Instructions;

/// The provider role's own identity policy, for the provider's account `account`: what it needs
/// to reach customers, and its provider-held key layer. On AWS a cross-account AssumeRole needs
/// the caller's Allow as well as the role's trust policy (customers' keys are then used by the
/// assumed sessions, in the customers' accounts); the provider-held layer's keys are made,
/// used, disabled and scheduled for deletion in the provider's own account.
/// (`GetCallerIdentity` needs no permission.)
pub fn provider_role_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "AssumeCustomerRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/*" },
            { "Sid": "MakeProviderLayerKeys", "Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*" },
            {
                "Sid": "UseProviderLayerKeys",
                "Effect": "Allow",
                "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion"],
                "Resource": format!("arn:aws:kms:*:{account}:key/*")
            }
        ]
    })
    .to_string()
}

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
    let cloudformation = cloudformation(tenant, &role_name, &policy, &key_policy, &alias, location);
    let terraform = terraform(tenant, &role_name, &policy, &key_policy, &alias, location);
    Instructions {
        tenant: tenant.clone(),
        account_id: account,
        role_name,
        role_arn: role_arn.to_string(),
        external_id: external_id.to_string(),
        alias,
        regions: location.regions.clone(),
        cloudformation,
        terraform,
        trust_policy: policy,
        key_policy,
        commands,
    }
}

/// JSON laid out for embedding in YAML or HCL (JSON is valid YAML; HCL takes it in a heredoc).
fn pretty(value: &serde_json::Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    serde_json::to_string_pretty(value).unwrap_or_default().lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

/// The same setup as one CloudFormation template (the vendor's way). CloudFormation stacks are
/// regional and IAM is global: deploy it in the location's first region as it is, and in each
/// other region with `CreateRole=false`.
pub fn cloudformation(
    tenant: &TenantId,
    role_name: &str,
    trust: &serde_json::Value,
    key_policy: &serde_json::Value,
    alias: &str,
    location: &Location,
) -> String {
    let regions: Vec<String> = location.regions.iter().map(ToString::to_string).collect();
    let mut deploy = String::new();
    for (i, region) in regions.iter().enumerate() {
        let overrides = if i == 0 { String::new() } else { " --parameter-overrides CreateRole=false".to_string() };
        deploy.push_str(&format!(
            "#   aws cloudformation deploy --region {region} --stack-name byok-{tenant} --template-file byok-{tenant}.yaml --capabilities CAPABILITY_NAMED_IAM{overrides}\n"
        ));
    }
    let lines = [
        format!("# byok setup for tenant {tenant} as a CloudFormation template. Deploy it in every region of the location:"),
        deploy.trim_end().to_string(),
        "AWSTemplateFormatVersion: '2010-09-09'".to_string(),
        format!("Description: 'byok: the role the provider assumes for tenant {tenant}, and this region''s key'"),
        "Parameters:".to_string(),
        "  CreateRole:".to_string(),
        "    Type: String".to_string(),
        "    AllowedValues: ['true', 'false']".to_string(),
        "    Default: 'true'".to_string(),
        "    Description: 'false in every region but the first: the role is global'".to_string(),
        "Conditions:".to_string(),
        "  MakeRole: !Equals [!Ref CreateRole, 'true']".to_string(),
        "Resources:".to_string(),
        "  ByokRole:".to_string(),
        "    Type: AWS::IAM::Role".to_string(),
        "    Condition: MakeRole".to_string(),
        "    Properties:".to_string(),
        format!("      RoleName: {role_name}"),
        format!("      Description: 'byok: provider access to tenant {tenant} keys'"),
        "      AssumeRolePolicyDocument:".to_string(),
        pretty(trust, 8),
        "  ByokKey:".to_string(),
        "    Type: AWS::KMS::Key".to_string(),
        "    Properties:".to_string(),
        format!("      Description: 'byok key for tenant {tenant}'"),
        "      KeyPolicy:".to_string(),
        pretty(key_policy, 8),
        "  ByokAlias:".to_string(),
        "    Type: AWS::KMS::Alias".to_string(),
        "    Properties:".to_string(),
        format!("      AliasName: {alias}"),
        "      TargetKeyId: !Ref ByokKey".to_string(),
        "Outputs:".to_string(),
        "  KeyArn:".to_string(),
        "    Value: !GetAtt ByokKey.Arn".to_string(),
    ];
    lines.join("\n") + "\n"
}

/// The same setup as Terraform: one provider alias per region of the location.
pub fn terraform(
    tenant: &TenantId,
    role_name: &str,
    trust: &serde_json::Value,
    key_policy: &serde_json::Value,
    alias: &str,
    location: &Location,
) -> String {
    let mut out = [
        format!("# byok setup for tenant {tenant} (terraform init && terraform apply, with credentials for the account)."),
        "terraform {".to_string(),
        "  required_providers {".to_string(),
        "    aws = {".to_string(),
        "      source = \"hashicorp/aws\"".to_string(),
        "    }".to_string(),
        "  }".to_string(),
        "}".to_string(),
        String::new(),
        "resource \"aws_iam_role\" \"byok\" {".to_string(),
        format!("  name               = \"{role_name}\""),
        format!("  description        = \"byok: provider access to tenant {tenant} keys\""),
        "  assume_role_policy = <<POLICY".to_string(),
        pretty(trust, 0),
        "POLICY".to_string(),
        "}".to_string(),
    ]
    .join("\n")
        + "\n";
    for region in &location.regions {
        let r = region.as_str().replace('-', "_");
        let block = [
            String::new(),
            "provider \"aws\" {".to_string(),
            format!("  alias  = \"{r}\""),
            format!("  region = \"{region}\""),
            "}".to_string(),
            String::new(),
            format!("resource \"aws_kms_key\" \"{r}\" {{"),
            format!("  provider    = aws.{r}"),
            format!("  description = \"byok key for tenant {tenant}\""),
            "  policy      = <<POLICY".to_string(),
            pretty(key_policy, 0),
            "POLICY".to_string(),
            "  depends_on  = [aws_iam_role.byok]".to_string(),
            "}".to_string(),
            String::new(),
            format!("resource \"aws_kms_alias\" \"{r}\" {{"),
            format!("  provider      = aws.{r}"),
            format!("  name          = \"{alias}\""),
            format!("  target_key_id = aws_kms_key.{r}.key_id"),
            "}".to_string(),
        ];
        out.push_str(&(block.join("\n") + "\n"));
    }
    out
}
