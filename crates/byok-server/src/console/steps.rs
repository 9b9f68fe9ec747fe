//! "What to do": one card per failing region (only those), each with what failed, the command
//! that undoes it with the real key ARN and the real policy file, the policy to copy, copy
//! buttons, a link to the AWS console page and to the guide's step. IAM is global, so a trust
//! policy that refuses the provider gets one card for all regions.

use byok_broker::Instructions;
use byok_broker::remedy;
use byok_domain::{Denial, RegionAccess, RegionResult, Tenant};
use maud::{Markup, html};

/// The cards for the regions a check found denied; nothing when none is.
pub fn cards(regions: &[RegionResult], tenant: &Tenant, setup: &Instructions) -> Markup {
    let denied: Vec<(&RegionResult, Denial, &str)> = regions
        .iter()
        .filter_map(|r| match &r.access {
            RegionAccess::Denied { denial, message } => Some((r, *denial, message.as_str())),
            RegionAccess::Ok | RegionAccess::Unknown { .. } => None,
        })
        .collect();
    if denied.is_empty() {
        return html! {};
    }
    // A key-policy (CMK) tenant has no role: no trust policy can refuse, and its key policies
    // grant the provider.
    let role = tenant.binding.role().map(|(role, _)| role.name());
    let id = tenant.id.as_str();
    let trust: Vec<&str> = denied.iter().filter(|(_, d, _)| *d == Denial::TrustPolicy).map(|(r, ..)| r.region.as_str()).collect();
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    html! {
        h2 { "What to do" }
        p { "Only what failed is listed. Do each card, then press "
            a href={ "/console/tenants/" (id) "/ticket" } { "Access restored — verify now" } " on the ticket." }
        @if let (false, Some(role)) = (trust.is_empty(), role) {
            section.card.step aria-labelledby="step-iam" {
                h3 id="step-iam" { "IAM, once for every region: the role's trust policy refuses the provider" }
                p.muted { "Found in " (trust.join(", ")) ". IAM is global: fixing the role once fixes it in every region." }
                p { "Set the provider's statement in the trust policy of " code { (role) } " back to Allow, keeping its "
                    code { "sts:ExternalId" } " condition (" a href={ (remedy::GUIDE) "#step-3" } { "guide, steps 3–8" } "), or run:" }
                @if let Some(command) = remedy::restore_command(Denial::TrustPolicy, "", Some(role), None, id) { (block("cmd-iam", &command)) }
                @if let Some(trust) = &setup.trust_policy {
                    details {
                        summary { "The trust policy (byok-trust-policy-" (id) ".json)" }
                        (block("policy-trust", &pretty(trust)))
                    }
                }
                p { a href={ "https://console.aws.amazon.com/iam/home#/roles/details/" (role) "?section=trust_relationships" } rel="noreferrer" {
                    "Open the role in the IAM console" } }
            }
        }
        @for (r, denial, message) in denied.iter().filter(|(_, d, _)| *d != Denial::TrustPolicy) {
            @let region = r.region.as_str();
            @let key = tenant.binding.key_for(&r.region).map(|k| k.to_string());
            @let card = format!("step-{region}");
            section.card.step aria-labelledby=(card) {
                h3 id=(card) { (region) ": " (remedy::detected(*denial, "")) }
                @if !message.is_empty() { p.muted { "AWS said: " (message) } }
                p { (remedy::restore_step(*denial, region, role, key.as_deref(), id)) " ("
                    a href={ (remedy::GUIDE) "#step-" (remedy::guide_step(*denial)) } { "guide" } ")" }
                @if let Some(command) = remedy::restore_command(*denial, region, role, key.as_deref(), id) {
                    (block(&format!("cmd-{region}"), &command))
                }
                @if *denial == Denial::KeyPolicy {
                    details {
                        summary { "The key policy (byok-key-policy-" (id) ".json)" }
                        (block(&format!("policy-{region}"), &pretty(&setup.key_policy)))
                    }
                }
                @if let Some(key) = &key {
                    p { a href=(kms_console(region, key)) rel="noreferrer" { "Open the key in the KMS console (" (region) ")" } }
                }
            }
        }
    }
}

/// A command or policy to copy: focusable by keyboard, with its copy button.
fn block(id: &str, text: &str) -> Markup {
    html! {
        div.copyable {
            pre id=(id) tabindex="0" { (text) }
            button.secondary type="button" data-copy=(id) { "Copy" }
        }
    }
}

/// The key's page in the KMS console of its region.
fn kms_console(region: &str, key_arn: &str) -> String {
    let key_id = key_arn.rsplit_once("key/").map_or(key_arn, |(_, id)| id);
    format!("https://{region}.console.aws.amazon.com/kms/home?region={region}#/kms/keys/{key_id}")
}

#[cfg(test)]
mod tests {
    use super::kms_console;

    #[test]
    fn the_kms_console_link_names_the_region_and_the_key_id() {
        assert_eq!(
            kms_console("eu-west-1", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab"),
            "https://eu-west-1.console.aws.amazon.com/kms/home?region=eu-west-1#/kms/keys/1234abcd-12ab"
        );
    }
}
