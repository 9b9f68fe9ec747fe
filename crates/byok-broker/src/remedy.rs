//! Every customer-facing explanation of a denial, in one place: what is wrong, in which region,
//! the step of the customer guide (served by the console at [`GUIDE`]) that undoes it, and the `aws` CLI
//! command that does it. The API (restoration, verification, status), the tickets and the CLI
//! all take their words from here.
//!
//! The step numbers are the guide's: 1–2 sign in and pick the region, 3–8 the role's trust
//! policy, 9–12 the KMS keys, 13 tell the provider.

use byok_domain::{ExternalId, RoleArn};
use byok_kms::{AccessError, Denial, KeyState};

/// Where the steps named in every remedy are written down: the console serves the customer
/// guide (`docs/customer-guide.md`) at this path, each step anchored as `#step-N`.
pub const GUIDE: &str = "/console/guide";

/// The `aws` CLI command that undoes a denial found while access was revoked, runnable as
/// printed: the region's real key ARN (`key`, when the tenant has a key there) and the policy
/// files the setup script wrote (`byok-trust-policy-{tenant}.json`, `byok-key-policy-{tenant}.json`).
/// `None` where no command undoes it (a deleted key; an alias moved by hand).
/// `role_name` is the tenant's role (BYOK); `None` for a key-policy (CMK) tenant, which has none.
pub fn restore_command(denial: Denial, region: &str, role_name: Option<&str>, key: Option<&str>, tenant: &str) -> Option<String> {
    let key = key.unwrap_or("KEY_ARN");
    match denial {
        Denial::TrustPolicy => role_name.map(|role_name| {
            format!("aws iam update-assume-role-policy --role-name {role_name} --policy-document file://byok-trust-policy-{tenant}.json")
        }),
        Denial::KeyDisabled => Some(format!("aws kms enable-key --region {region} --key-id {key}")),
        Denial::KeyPendingDeletion => Some(format!(
            "aws kms cancel-key-deletion --region {region} --key-id {key} && aws kms enable-key --region {region} --key-id {key}"
        )),
        Denial::KeyPolicy => Some(format!(
            "aws kms put-key-policy --region {region} --key-id {key} --policy-name default --policy file://byok-key-policy-{tenant}.json"
        )),
        Denial::KeyNotFound | Denial::IncorrectKey => None,
    }
}

/// The first step of the guide that undoes a denial (`/console/guide#step-N`).
pub fn guide_step(denial: Denial) -> u8 {
    match denial {
        Denial::TrustPolicy => 3,
        _ => 9,
    }
}

/// The step that undoes a denial found while access was revoked (restoration, tickets, status),
/// with the command of [`restore_command`].
pub fn restore_step(denial: Denial, region: &str, role_name: Option<&str>, key: Option<&str>, tenant: &str) -> String {
    let command = restore_command(denial, region, role_name, key, tenant).unwrap_or_default();
    let key = key.unwrap_or("KEY_ARN");
    let grantee = match role_name {
        Some(role_name) => format!("the role {role_name}"),
        None => "the provider".to_string(),
    };
    match denial {
        Denial::TrustPolicy => format!(
            "steps 3-8: in IAM, role {}, Trust relationships, change the provider's statement from Deny to Allow ({command})",
            role_name.unwrap_or("byok-key-management")
        ),
        Denial::KeyDisabled => {
            format!("steps 9-12: in the KMS console for {region}, select the key {key} and Key actions > Enable ({command})")
        }
        Denial::KeyPendingDeletion => {
            format!("the key {key} in {region} is scheduled for deletion: cancel it first, then steps 9-12 to enable it ({command})")
        }
        Denial::KeyNotFound => format!(
            "the key in {region} does not exist in that region: make sure you are in {region} (step 9); a deleted key cannot be restored"
        ),
        Denial::KeyPolicy => format!(
            "the key policy of {key} in {region} no longer lets {grantee} use the key: put back the statements of byok-key-policy-{tenant}.json ({command})"
        ),
        Denial::IncorrectKey => {
            format!("the key in {region} is not the key the tenant was set up with ({key}): point the alias back at it")
        }
    }
}

/// What was detected, as a ticket lists it.
pub fn detected(denial: Denial, message: &str) -> String {
    let what = match denial {
        Denial::TrustPolicy => "the role's trust policy refuses the provider",
        Denial::KeyDisabled => "the key is disabled",
        Denial::KeyPendingDeletion => "the key is scheduled for deletion",
        Denial::KeyNotFound => "the key does not exist",
        Denial::KeyPolicy => "the key policy refuses the provider's role",
        Denial::IncorrectKey => "the alias points at another key",
    };
    if message.is_empty() { what.to_string() } else { format!("{what} ({message})") }
}

/// The whole restoration of one region, as the revocation ticket spells it out.
/// `role_name` is `None` for a key-policy (CMK) tenant: no role, its key policy instead.
pub fn restore_region(region: &str, role_name: Option<&str>, key: &str) -> String {
    match role_name {
        Some(role_name) => format!(
            "{region}: IAM > Roles > {role_name} > Trust relationships: set the provider's statement to Allow (steps 3-8); \
             KMS console in {region}: select the key {key} and Key actions > Enable (steps 9-12)"
        ),
        None => format!(
            "{region}: KMS console in {region}: select the key {key} and Key actions > Enable (steps 9-12), and keep the provider's \
             statements in its key policy (Key policy tab; the customer guide's customer-managed keys section)"
        ),
    }
}

/// A key failure during onboarding, in the customer's words: what is wrong, and the command
/// that fixes it.
/// `grant` is the key policy statement the role needs ([`crate::setup::key_use_statement`]),
/// named when the key policy refuses the role.
pub fn onboarding_key_problem(e: &AccessError, region: &str, alias: &str, grant: &serde_json::Value) -> String {
    match e {
        AccessError::Denied { denial: Denial::KeyNotFound, .. } => {
            format!("no key with alias {alias} in {region}: create the key and its alias in {region} (the commands from `byok tenant add`)")
        }
        AccessError::Denied { denial: Denial::KeyDisabled, .. } => {
            format!("the key {alias} in {region} is disabled: enable it (aws kms enable-key --region {region} --key-id {alias})")
        }
        AccessError::Denied { denial: Denial::KeyPendingDeletion, .. } => format!(
            "the key {alias} in {region} is pending deletion: cancel the deletion (aws kms cancel-key-deletion --region {region} --key-id KEY_ID), then enable it"
        ),
        AccessError::Denied { denial: Denial::KeyPolicy, .. } => format!(
            "the key policy of {alias} in {region} does not let byok use it: add the statements ByokDescribeKey (kms:DescribeKey for the principal below) and {grant} (aws kms put-key-policy --region {region} --key-id {alias} --policy-name default --policy file://byok-key-policy-TENANT.json, the policy printed by `byok tenant add`)"
        ),
        AccessError::Denied { denial: Denial::TrustPolicy, .. } => {
            "the role could not be assumed for this region: fix the trust policy".to_string()
        }
        AccessError::Denied { denial: Denial::IncorrectKey, .. } => {
            format!("the key {alias} in {region} is not the key the tenant key was wrapped under")
        }
        AccessError::Transient { .. } => format!("AWS did not answer in {region} ({e}); try again"),
        other => format!("{region}: {other}"),
    }
}

/// A key found at onboarding that is not enabled.
pub fn key_not_enabled(state: &KeyState, key_arn: &str, region: &str) -> String {
    match state {
        KeyState::PendingDeletion => format!(
            "key {key_arn} is pending deletion: cancel it (aws kms cancel-key-deletion --region {region} --key-id {key_arn}), then enable it (aws kms enable-key --region {region} --key-id {key_arn})"
        ),
        other => format!("key {key_arn} is {other}: enable it (aws kms enable-key --region {region} --key-id {key_arn})"),
    }
}

/// The role could not be assumed with the external id at onboarding.
pub fn trust_refused(e: &AccessError, provider: &RoleArn, role: &RoleArn, external_id: &ExternalId) -> String {
    match e {
        AccessError::Denied { .. } => format!(
            "the provider ({provider}) cannot assume {role}: create the role, or fix its trust policy to allow the provider with sts:ExternalId {external_id} (the policy from `byok tenant add`)"
        ),
        other => format!("could not reach AWS to assume {role}: {other}; try again"),
    }
}

/// The role can be assumed without the external id (refused unless legacy trust is allowed).
pub fn external_id_missing(role: &RoleArn, external_id: &ExternalId) -> String {
    format!(
        "the role {role} can be assumed without the external id; its trust policy must have the condition \"StringEquals\": {{\"sts:ExternalId\": \"{external_id}\"}} (use the policy from `byok tenant add`)"
    )
}

/// The warning when a legacy trust policy (no external id) is accepted.
pub fn legacy_trust_warning(role: &RoleArn, external_id: &ExternalId) -> String {
    format!(
        "the trust policy of {role} does not require the external id; accepted because legacy trust policies are allowed, but add the condition \"StringEquals\": {{\"sts:ExternalId\": \"{external_id}\"}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denial_names_its_region_or_role_and_a_step() {
        for denial in [
            Denial::TrustPolicy,
            Denial::KeyDisabled,
            Denial::KeyPendingDeletion,
            Denial::KeyNotFound,
            Denial::KeyPolicy,
            Denial::IncorrectKey,
        ] {
            let text =
                restore_step(denial, "eu-west-1", Some("byok-key-management"), Some("arn:aws:kms:eu-west-1:111122223333:key/k"), "acme");
            assert!(!text.contains("KEY_ARN") && !text.contains(" KEY"), "runs as printed: {text}");
            assert!(text.contains("eu-west-1") || text.contains("byok-key-management"), "{text}");
            assert!(!detected(denial, "").is_empty());
        }
        let trust = restore_step(Denial::TrustPolicy, "eu-west-1", Some("r"), None, "acme");
        assert!(trust.starts_with("steps 3-8") && trust.contains("file://byok-trust-policy-acme.json"), "{trust}");
        let key = "arn:aws:kms:eu-west-1:111122223333:key/k";
        let enable = restore_step(Denial::KeyDisabled, "eu-west-1", Some("r"), Some(key), "acme");
        assert!(enable.starts_with("steps 9-12") && enable.contains(&format!("enable-key --region eu-west-1 --key-id {key})")), "{enable}");
        // A key-policy (CMK) tenant has no role: the same key steps, and its key policy grants "the provider".
        assert_eq!(restore_step(Denial::KeyDisabled, "eu-west-1", None, Some(key), "acme"), enable);
        let policy = restore_step(Denial::KeyPolicy, "eu-west-1", None, Some(key), "acme");
        assert!(policy.contains("no longer lets the provider use the key") && policy.contains("byok-key-policy-acme.json"), "{policy}");
        assert_eq!(restore_command(Denial::TrustPolicy, "eu-west-1", None, Some(key), "acme"), None);
        let region = restore_region("eu-west-1", None, key);
        assert!(!region.contains("IAM") && region.contains("Enable (steps 9-12)") && region.contains("key policy"), "{region}");
        assert!(key_not_enabled(&KeyState::PendingDeletion, "arn", "eu-west-1").contains("cancel-key-deletion"));
        assert!(key_not_enabled(&KeyState::Disabled, "arn", "eu-west-1").contains("is Disabled: enable it"));
    }
}
