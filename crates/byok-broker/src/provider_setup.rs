//! The provider's own side on AWS, as `byok provider setup` prints it: the provider role (the
//! broker's identity) with its least-privilege policy, and the canary — a role in a second
//! account the provider controls, trusting the provider role with an external id exactly as
//! customers' roles do, and a key that role may use only under the canary's encryption context.
//! Each part is a shell script of `aws` commands or a CloudFormation template, to run with that
//! account's credentials.

use serde_json::{Value, json};

use crate::setup::{key_policy, provider_role_policy, trust_policy};

/// The canary's tenant id: its encryption context (the canary proof wraps under it).
pub const CANARY_TENANT: &str = "byok-canary";

/// The context tag the key-policy canary wraps under: CMK tenants' code path, tag included.
pub const CANARY_CONTEXT_TAG: &str = "canary";

/// The key-policy canary's alias, in the canary's account: a key whose policy grants the
/// provider role itself, as customer-managed keys (CMK) do.
pub const CANARY_CMK_ALIAS: &str = "alias/byok-canary-cmk";

/// Which account's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The provider role, in the provider's account.
    Provider,
    /// The canary role and key, in the canary's account.
    Canary,
}

/// What the provider's side is made of.
#[derive(Debug, Clone)]
pub struct ProviderSetup {
    pub provider_account: String,
    pub provider_role_name: String,
    /// The AWS service whose compute runs byok and may assume the provider role
    /// (`ec2.amazonaws.com`, `ecs-tasks.amazonaws.com`).
    pub trusted_service: String,
    /// A second account the provider controls, so that assuming the canary crosses accounts as
    /// assuming customers' roles does.
    pub canary_account: String,
    pub canary_role_name: String,
    pub canary_external_id: String,
    /// `alias/NAME`.
    pub canary_key: String,
    pub canary_region: String,
}

impl ProviderSetup {
    pub fn provider_role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.provider_account, self.provider_role_name)
    }

    pub fn canary_role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.canary_account, self.canary_role_name)
    }

    /// Who may assume the provider role: the compute service byok runs on.
    pub fn provider_trust(&self) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "ByokCompute",
                "Effect": "Allow",
                "Principal": { "Service": self.trusted_service },
                "Action": "sts:AssumeRole"
            }]
        })
    }

    /// The provider role's own permissions (least privilege).
    pub fn provider_policy(&self) -> Value {
        serde_json::from_str(&provider_role_policy(&self.provider_account)).unwrap_or(Value::Null)
    }

    /// The canary role's trust: the provider role, with the canary's external id.
    pub fn canary_trust(&self) -> Result<Value, byok_domain::IdError> {
        Ok(trust_policy(&self.provider_role_arn().parse()?, &self.canary_external_id))
    }

    /// The canary key's policy: the canary account administers it; the canary role may describe
    /// it and use it only under the canary's encryption context.
    pub fn canary_key_policy(&self) -> Result<Value, byok_domain::IdError> {
        Ok(key_policy(&self.canary_account, &self.canary_role_arn(), &CANARY_TENANT.parse()?, None))
    }

    /// The key-policy canary's policy: the canary account administers it; the provider role
    /// itself may describe it and use it only under the canary's encryption context and context
    /// tag — exactly what a CMK customer's key policy grants.
    pub fn canary_cmk_key_policy(&self) -> Result<Value, byok_domain::IdError> {
        let tag = CANARY_CONTEXT_TAG.parse()?;
        Ok(key_policy(&self.canary_account, &self.provider_role_arn(), &CANARY_TENANT.parse()?, Some(&tag)))
    }

    /// The key-policy canary as `--canary-cmk-key` names it: its alias ARN.
    pub fn canary_cmk_key(&self) -> String {
        format!("arn:aws:kms:{}:{}:{CANARY_CMK_ALIAS}", self.canary_region, self.canary_account)
    }

    /// The settings `byok serve --real-aws` needs, as lines of its TOML file.
    pub fn settings(&self) -> String {
        format!(
            "real_aws = true\nprovider_role_arn = \"{}\"\ncanary_role_arn = \"{}\"\ncanary_external_id = \"{}\"\ncanary_key = \"{}\"\ncanary_region = \"{}\"\ncanary_cmk_key = \"{}\"\n",
            self.provider_role_arn(),
            self.canary_role_arn(),
            self.canary_external_id,
            self.canary_key,
            self.canary_region,
            self.canary_cmk_key()
        )
    }

    /// A part as a shell script of `aws` commands.
    pub fn script(&self, part: Part) -> Result<String, byok_domain::IdError> {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
        Ok(match part {
            Part::Provider => format!(
                "# byok's provider role, in the provider's account {account}.\n\
                 # Run with credentials for account {account} (an administrator).\n\
                 set -euo pipefail\n\n\
                 # The role byok runs as; the compute it runs on ({service}) may assume it.\n\
                 cat > byok-provider-trust.json <<'POLICY'\n{trust}\nPOLICY\n\
                 aws iam create-role --role-name {role} --description 'byok: the provider broker' \\\n  --assume-role-policy-document file://byok-provider-trust.json\n\n\
                 # Its permissions, least privilege: assume customers' roles (and the canary); make and\n\
                 # use the provider-held layer's keys in this account. GetCallerIdentity needs none.\n\
                 cat > byok-provider-policy.json <<'POLICY'\n{policy}\nPOLICY\n\
                 aws iam put-role-policy --role-name {role} --policy-name byok-provider \\\n  --policy-document file://byok-provider-policy.json\n",
                account = self.provider_account,
                service = self.trusted_service,
                role = self.provider_role_name,
                trust = pretty(&self.provider_trust()),
                policy = pretty(&self.provider_policy()),
            ),
            Part::Canary => format!(
                "# byok's canary, in the provider's second account {account}: proven before any customer's\n\
                 # denial counts, so that a fault of the provider's own is never taken for a revocation.\n\
                 # Run with credentials for account {account} (an administrator).\n\
                 set -euo pipefail\n\n\
                 # The role, trusting the provider role with the canary's external id, as customers' roles do.\n\
                 cat > byok-canary-trust.json <<'POLICY'\n{trust}\nPOLICY\n\
                 aws iam create-role --role-name {role} --description 'byok: the provider canary' \\\n  --assume-role-policy-document file://byok-canary-trust.json\n\n\
                 # The key in {region}: this account administers it; the canary role may use it only\n\
                 # under the canary's encryption context.\n\
                 cat > byok-canary-key-policy.json <<'POLICY'\n{key_policy}\nPOLICY\n\
                 KEY_ID=$(aws kms create-key --region {region} --description 'byok canary' --policy file://byok-canary-key-policy.json --query KeyMetadata.KeyId --output text)\n\
                 aws kms create-alias --region {region} --alias-name {alias} --target-key-id \"$KEY_ID\"\n\n\
                 # The key-policy canary in {region}, for customer-managed-key (CMK) tenants: no role; its\n\
                 # key policy grants the provider role itself, as CMK customers' key policies do.\n\
                 cat > byok-canary-cmk-key-policy.json <<'POLICY'\n{cmk_policy}\nPOLICY\n\
                 KEY_ID=$(aws kms create-key --region {region} --description 'byok key-policy canary' --policy file://byok-canary-cmk-key-policy.json --query KeyMetadata.KeyId --output text)\n\
                 aws kms create-alias --region {region} --alias-name {cmk_alias} --target-key-id \"$KEY_ID\"\n",
                account = self.canary_account,
                role = self.canary_role_name,
                region = self.canary_region,
                alias = self.canary_key,
                cmk_alias = CANARY_CMK_ALIAS,
                trust = pretty(&self.canary_trust()?),
                key_policy = pretty(&self.canary_key_policy()?),
                cmk_policy = pretty(&self.canary_cmk_key_policy()?),
            ),
        })
    }

    /// A part as a CloudFormation template (JSON, which CloudFormation reads as it reads YAML).
    pub fn cloudformation(&self, part: Part) -> Result<String, byok_domain::IdError> {
        let template = match part {
            Part::Provider => json!({
                "AWSTemplateFormatVersion": "2010-09-09",
                "Description": format!(
                    "byok: the provider role. Deploy in account {}: aws cloudformation deploy --stack-name byok-provider --template-file byok-provider.json --capabilities CAPABILITY_NAMED_IAM",
                    self.provider_account
                ),
                "Resources": {
                    "ByokProviderRole": {
                        "Type": "AWS::IAM::Role",
                        "Properties": {
                            "RoleName": self.provider_role_name,
                            "Description": "byok: the provider broker",
                            "AssumeRolePolicyDocument": self.provider_trust(),
                            "Policies": [{ "PolicyName": "byok-provider", "PolicyDocument": self.provider_policy() }]
                        }
                    }
                },
                "Outputs": { "ProviderRoleArn": { "Value": { "Fn::GetAtt": ["ByokProviderRole", "Arn"] } } }
            }),
            Part::Canary => json!({
                "AWSTemplateFormatVersion": "2010-09-09",
                "Description": format!(
                    "byok: the provider canary. Deploy in account {} in {}: aws cloudformation deploy --region {} --stack-name byok-canary --template-file byok-canary.json --capabilities CAPABILITY_NAMED_IAM",
                    self.canary_account, self.canary_region, self.canary_region
                ),
                "Resources": {
                    "ByokCanaryRole": {
                        "Type": "AWS::IAM::Role",
                        "Properties": {
                            "RoleName": self.canary_role_name,
                            "Description": "byok: the provider canary",
                            "AssumeRolePolicyDocument": self.canary_trust()?
                        }
                    },
                    "ByokCanaryKey": {
                        "Type": "AWS::KMS::Key",
                        "DependsOn": "ByokCanaryRole",
                        "Properties": { "Description": "byok canary", "KeyPolicy": self.canary_key_policy()? }
                    },
                    "ByokCanaryAlias": {
                        "Type": "AWS::KMS::Alias",
                        "Properties": { "AliasName": self.canary_key, "TargetKeyId": { "Ref": "ByokCanaryKey" } }
                    },
                    "ByokCanaryCmkKey": {
                        "Type": "AWS::KMS::Key",
                        "Properties": { "Description": "byok key-policy canary", "KeyPolicy": self.canary_cmk_key_policy()? }
                    },
                    "ByokCanaryCmkAlias": {
                        "Type": "AWS::KMS::Alias",
                        "Properties": { "AliasName": CANARY_CMK_ALIAS, "TargetKeyId": { "Ref": "ByokCanaryCmkKey" } }
                    }
                },
                "Outputs": { "CanaryRoleArn": { "Value": { "Fn::GetAtt": ["ByokCanaryRole", "Arn"] } } }
            }),
        };
        Ok(serde_json::to_string_pretty(&template).unwrap_or_default() + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> ProviderSetup {
        ProviderSetup {
            provider_account: "111122223333".into(),
            provider_role_name: "byok-provider".into(),
            trusted_service: "ec2.amazonaws.com".into(),
            canary_account: "444455556666".into(),
            canary_role_name: "byok-canary".into(),
            canary_external_id: "canary-0123456789".into(),
            canary_key: "alias/byok-canary".into(),
            canary_region: "us-east-1".into(),
        }
    }

    #[test]
    fn the_canary_is_granted_only_under_its_own_context_to_its_own_role() {
        let s = setup();
        let policy = s.canary_key_policy().expect("policy").to_string();
        assert!(policy.contains("arn:aws:iam::444455556666:role/byok-canary"), "{policy}");
        assert!(policy.contains(CANARY_TENANT), "{policy}");
        let trust = s.canary_trust().expect("trust").to_string();
        assert!(trust.contains("arn:aws:iam::111122223333:role/byok-provider") && trust.contains("canary-0123456789"), "{trust}");
        let template: Value = serde_json::from_str(&s.cloudformation(Part::Canary).expect("cfn")).expect("json");
        assert_eq!(template["Resources"]["ByokCanaryKey"]["Properties"]["KeyPolicy"], s.canary_key_policy().expect("policy"));
        // The key-policy canary grants the provider role itself, under the canary's context and tag.
        let cmk = s.canary_cmk_key_policy().expect("policy").to_string();
        assert!(cmk.contains("arn:aws:iam::111122223333:role/byok-provider") && cmk.contains("byok:context-tag"), "{cmk}");
        assert_eq!(template["Resources"]["ByokCanaryCmkKey"]["Properties"]["KeyPolicy"], s.canary_cmk_key_policy().expect("policy"));
        assert!(s.settings().contains("canary_cmk_key = \"arn:aws:kms:us-east-1:444455556666:alias/byok-canary-cmk\""));
    }
}
