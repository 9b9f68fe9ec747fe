//! The customer's setup: the `aws` CLI commands and the trust policy `byok tenant add` prints
//! (pure text; [`crate::onboarding`] verifies what the customer did).

use byok_domain::{ContextTag, Location, RoleArn, TenantBinding, TenantId};
use serde_json::json;

use crate::config::BrokerConfig;

use crate::outcomes::Instructions;

/// The provider role's own identity policy, for the provider's account `account`: what it needs
/// to reach customers, and its provider-held key layer. On AWS a cross-account AssumeRole needs
/// the caller's Allow as well as the role's trust policy (BYOK customers' keys are then used by
/// the assumed sessions, in the customers' accounts); a CMK customer's key is used by the
/// provider role itself, which across accounts needs the role's own Allow as well as the key
/// policy's (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html>):
/// DescribeKey, and the cryptographic operations only under a byok tenant's encryption context.
/// The provider-held layer's keys are made, used, disabled and scheduled for deletion in the
/// provider's own account. (`GetCallerIdentity` needs no permission.)
pub fn provider_role_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "AssumeCustomerRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/*" },
            { "Sid": "DescribeCustomerManagedKeys", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "arn:aws:kms:*:*:key/*" },
            {
                "Sid": "UseCustomerManagedKeys",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "arn:aws:kms:*:*:key/*",
                "Condition": { "StringLike": { "kms:EncryptionContext:byok:tenant": "*" } }
            },
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

/// The statement a key policy needs so that `principal` may use the key: the cryptographic
/// operations only under this tenant's encryption context (and, for a CMK tenant that chose
/// one, its context tag). `principal` is the tenant's byok role (BYOK) or the provider's own
/// principal (CMK). Printed by `tenant verify` when the grant is missing.
pub fn key_use_statement(principal: &str, tenant: &TenantId, tag: Option<&ContextTag>) -> serde_json::Value {
    let mut context = serde_json::Map::new();
    context.insert("kms:EncryptionContext:byok:tenant".into(), json!(tenant.as_str()));
    if let Some(tag) = tag {
        context.insert(format!("kms:EncryptionContext:{}", byok_kms::CONTEXT_TAG_KEY), json!(tag.as_str()));
    }
    json!({
        "Sid": "ByokTenantKeyUse",
        "Effect": "Allow",
        "Principal": { "AWS": principal },
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        "Resource": "*",
        "Condition": { "StringEquals": context }
    })
}

/// The least-privilege key policy: the account keeps full administration (as AWS's default
/// policy does, so the customer can never lock themselves out), and `principal` — the byok
/// role (BYOK) or the provider's own principal (CMK) — may only describe the key and use it for
/// this tenant's encryption context. Neither needs any other permission in the customer's
/// account.
pub fn key_policy(account: &str, principal: &str, tenant: &TenantId, tag: Option<&ContextTag>) -> serde_json::Value {
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
                "Principal": { "AWS": principal },
                "Action": "kms:DescribeKey",
                "Resource": "*"
            },
            key_use_statement(principal, tenant, tag)
        ]
    })
}

/// Who a tenant's key policy grants: its role (BYOK) or the provider's own principal (CMK).
pub fn grantee(config: &BrokerConfig, binding: &TenantBinding) -> String {
    match binding.role() {
        Some((role, _)) => role.to_string(),
        None => config.provider_principal.to_string(),
    }
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

/// The setup the customer runs for a tenant, in three formats (an `aws` CLI script,
/// CloudFormation, Terraform): for BYOK the role and a key per region whose policy grants it;
/// for CMK only the keys, whose policies grant the provider's own principal under the tenant's
/// encryption context.
pub fn instructions(config: &BrokerConfig, tenant: &TenantId, binding: &TenantBinding, location: &Location) -> Instructions {
    if binding.mode.is_provider() {
        return provider_held(config, tenant, binding, location);
    }
    let account = binding.account.to_string();
    let alias = format!("{}{tenant}", config.alias_prefix);
    let tag = binding.mode.context_tag();
    let key_policy = key_policy(&account, &grantee(config, binding), tenant, tag);
    let role = binding.role().map(|(role_arn, external_id)| SetupRole {
        name: role_arn.name().to_string(),
        arn: role_arn.to_string(),
        external_id: external_id.as_str().to_string(),
        trust: trust_policy(&config.provider_principal, external_id.as_str()),
    });
    let key_file = format!("byok-key-policy-{tenant}.json");
    let mut commands = format!(
        "# byok setup for tenant {tenant}, AWS account {account}, location {code} ({mode}).\n\
         # Run with credentials for account {account} (an administrator).\n\
         set -euo pipefail\n",
        code = location.code,
        mode = match &role {
            Some(_) => "role-based BYOK".to_string(),
            None => match tag {
                Some(tag) => format!("customer-managed keys, context tag {tag}"),
                None => "customer-managed keys".to_string(),
            },
        },
    );
    let mut step = 1;
    if let Some(role) = &role {
        let trust_file = format!("byok-trust-policy-{tenant}.json");
        commands.push_str(&format!(
            "\n# {step}. The role the provider assumes. Only the provider's principal may assume it, and only\n\
             #    with this tenant's external id. The role needs no permissions of its own: each key's\n\
             #    policy grants it exactly what it needs.\n\
             cat > {trust_file} <<'POLICY'\n{policy}\nPOLICY\n\
             aws iam create-role --role-name {role_name} --description 'byok: provider access to tenant {tenant} keys' \\\n  --assume-role-policy-document file://{trust_file}\n\n\
             # The key policy: your account keeps full administration; the role may describe the key and\n\
             # use it only for this tenant's encryption context.\n",
            policy = serde_json::to_string_pretty(&role.trust).unwrap_or_default(),
            role_name = role.name,
        ));
        step += 1;
    } else {
        commands.push_str(&format!(
            "\n# No role: each key's policy grants the provider's own principal\n\
             # ({provider}) and nothing else of your account. Your account keeps full administration;\n\
             # the provider may describe the key and use it only under this tenant's encryption context{tagged}.\n",
            provider = config.provider_principal,
            tagged = tag.map(|t| format!(" (byok:tenant = {tenant}, {} = {t})", byok_kms::CONTEXT_TAG_KEY)).unwrap_or_default(),
        ));
    }
    commands.push_str(&format!(
        "cat > {key_file} <<'POLICY'\n{key_policy_text}\nPOLICY\n",
        key_policy_text = serde_json::to_string_pretty(&key_policy).unwrap_or_default(),
    ));
    for region in &location.regions {
        commands.push_str(&format!(
            "\n# {step}. A KMS key in {region}, found by its alias {alias}.\n\
             KEY_ID=$(aws kms create-key --region {region} --description 'byok key for tenant {tenant}' --policy file://{key_file} --query KeyMetadata.KeyId --output text)\n\
             aws kms create-alias --region {region} --alias-name {alias} --target-key-id \"$KEY_ID\"\n",
        ));
        step += 1;
    }
    commands.push_str(&format!("\n# Then tell your provider the setup is done: they run `byok tenant verify {tenant}`.\n"));
    let cloudformation = cloudformation(tenant, role.as_ref(), &key_policy, &alias, location);
    let terraform = terraform(tenant, role.as_ref(), &key_policy, &alias, location);
    Instructions {
        tenant: tenant.clone(),
        account_id: account,
        mode: binding.mode.clone(),
        provider_principal: config.provider_principal.to_string(),
        role_name: role.as_ref().map(|r| r.name.clone()),
        role_arn: role.as_ref().map(|r| r.arn.clone()),
        external_id: role.as_ref().map(|r| r.external_id.clone()),
        trust_policy: role.map(|r| r.trust),
        alias,
        regions: location.regions.clone(),
        cloudformation,
        terraform,
        key_policy,
        commands,
    }
}

/// A provider-held tenant's "setup": nothing for anyone to run. byok made its keys in the
/// provider's own account; the customer's setup comes with `byok tenant adopt --setup`.
fn provider_held(config: &BrokerConfig, tenant: &TenantId, binding: &TenantBinding, location: &Location) -> Instructions {
    let keys: String = binding.keys.iter().map(|k| format!("#   {}: {}\n", k.region, k.key_arn)).collect();
    let text = format!(
        "# Tenant {tenant} uses provider-held keys: KMS keys in the provider's own account {account}, made by byok,\n\
         # one per region of location {code}. There is nothing for the customer to set up, and nothing they can revoke.\n\
         {keys}\
         # When the customer brings keys of their own, print their setup with\n\
         #   byok tenant adopt {tenant} --to cmk --account-id THEIR_ACCOUNT --setup\n\
         # and, once they ran it, move the tenant onto their keys with the same command without --setup.\n",
        account = binding.account,
        code = location.code,
    );
    Instructions {
        tenant: tenant.clone(),
        account_id: binding.account.to_string(),
        mode: binding.mode.clone(),
        provider_principal: config.provider_principal.to_string(),
        role_name: None,
        role_arn: None,
        external_id: None,
        trust_policy: None,
        alias: String::new(),
        regions: location.regions.clone(),
        key_policy: serde_json::json!({}),
        cloudformation: text.clone(),
        terraform: text.clone(),
        commands: text,
    }
}

/// A BYOK tenant's role, as its setup creates it.
struct SetupRole {
    name: String,
    arn: String,
    external_id: String,
    trust: serde_json::Value,
}

/// JSON laid out for embedding in YAML or HCL (JSON is valid YAML; HCL takes it in a heredoc).
fn pretty(value: &serde_json::Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    serde_json::to_string_pretty(value).unwrap_or_default().lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

/// The same setup as one CloudFormation template (the vendor's way). CloudFormation stacks are
/// regional and IAM is global: for BYOK, deploy it in the location's first region as it is,
/// and in each other region with `CreateRole=false`; for CMK (no role) the same template in
/// every region.
fn cloudformation(tenant: &TenantId, role: Option<&SetupRole>, key_policy: &serde_json::Value, alias: &str, location: &Location) -> String {
    let regions: Vec<String> = location.regions.iter().map(ToString::to_string).collect();
    let mut deploy = String::new();
    for (i, region) in regions.iter().enumerate() {
        let overrides = if i == 0 || role.is_none() { String::new() } else { " --parameter-overrides CreateRole=false".to_string() };
        let capabilities = if role.is_some() { " --capabilities CAPABILITY_NAMED_IAM" } else { "" };
        deploy.push_str(&format!(
            "#   aws cloudformation deploy --region {region} --stack-name byok-{tenant} --template-file byok-{tenant}.yaml{capabilities}{overrides}\n"
        ));
    }
    let mut lines = vec![
        format!("# byok setup for tenant {tenant} as a CloudFormation template. Deploy it in every region of the location:"),
        deploy.trim_end().to_string(),
        "AWSTemplateFormatVersion: '2010-09-09'".to_string(),
    ];
    match role {
        Some(role) => lines.extend([
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
            format!("      RoleName: {}", role.name),
            format!("      Description: 'byok: provider access to tenant {tenant} keys'"),
            "      AssumeRolePolicyDocument:".to_string(),
            pretty(&role.trust, 8),
        ]),
        None => lines.extend([
            format!(
                "Description: 'byok: this region''s customer-managed key for tenant {tenant}, granted to the provider by its key policy'"
            ),
            "Resources:".to_string(),
        ]),
    }
    lines.extend([
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
    ]);
    lines.join("\n") + "\n"
}

/// The same setup as Terraform: one provider alias per region of the location (and, for BYOK,
/// the role).
fn terraform(tenant: &TenantId, role: Option<&SetupRole>, key_policy: &serde_json::Value, alias: &str, location: &Location) -> String {
    let mut out = [
        format!("# byok setup for tenant {tenant} (terraform init && terraform apply, with credentials for the account)."),
        "terraform {".to_string(),
        "  required_providers {".to_string(),
        "    aws = {".to_string(),
        "      source = \"hashicorp/aws\"".to_string(),
        "    }".to_string(),
        "  }".to_string(),
        "}".to_string(),
    ]
    .join("\n")
        + "\n";
    if let Some(role) = role {
        let block = [
            String::new(),
            "resource \"aws_iam_role\" \"byok\" {".to_string(),
            format!("  name               = \"{}\"", role.name),
            format!("  description        = \"byok: provider access to tenant {tenant} keys\""),
            "  assume_role_policy = <<POLICY".to_string(),
            pretty(&role.trust, 0),
            "POLICY".to_string(),
            "}".to_string(),
        ];
        out.push_str(&(block.join("\n") + "\n"));
    }
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
            if role.is_some() { "  depends_on  = [aws_iam_role.byok]".to_string() } else { String::new() },
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
