//! Support tickets, as the seed describes them: opened on revocation with the exact title
//! `BYOK revocation started for AWS account <account id>`, saying what was detected where, the
//! deadline in UTC and the restoration steps for each region; a customer comment saying it is
//! ready starts restoration and the broker answers on the ticket; reminders before the
//! deadline; the outcome resolves (restored) or closes (destroyed) it.

use byok_domain::Tenant;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::access::{RegionAccess, RegionResult};

/// The ticket title, exactly as the seed has it.
pub fn title(tenant: &Tenant) -> String {
    format!("BYOK revocation started for AWS account {}", tenant.binding.account)
}

fn utc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The first comment: what was detected, where, the deadline, and what to do.
pub fn opening(tenant: &Tenant, detected: &[RegionResult], deadline: OffsetDateTime, role_name: &str) -> String {
    let mut body = format!(
        "We detected that access to the BYOK encryption keys of tenant {} (AWS account {}, location {}) was revoked. \
         The product is offline for your end users and for our systems.\n\nDetected:\n",
        tenant.id, tenant.binding.account, tenant.location
    );
    for r in detected {
        let what = match &r.access {
            RegionAccess::Denied { denial, message } => format!("{denial:?}: {message}"),
            RegionAccess::Unknown { message } => format!("not checked: {message}"),
            RegionAccess::Ok => "access works".to_string(),
        };
        body.push_str(&format!("- {}: {what}\n", r.region));
    }
    body.push_str(&format!(
        "\nYou can restore access until {} (UTC). After that the data is erased and cannot be recovered.\n\nTo restore, in every region of the location:\n",
        utc(deadline)
    ));
    for key in &tenant.binding.keys {
        body.push_str(&format!(
            "- {region}: IAM > Roles > {role_name} > Trust relationships: set the provider's statement to Allow (steps 3-8); \
             KMS console in {region}: select the key {key} and Key actions > Enable (steps 9-12)\n",
            region = key.region,
            key = key.key_arn,
        ));
    }
    body.push_str("\nThen reply on this ticket with \"ready\" and we verify every region at once.");
    body
}

/// Whether a customer's comment says they are ready for restoration.
pub fn says_ready(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    ["ready", "restored", "please restore"].iter().any(|k| lower.contains(k))
}

pub fn reminder(deadline: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = deadline - now;
    format!(
        "Reminder: access to your keys is still revoked. The deadline is {} (UTC), in {} day(s) and {} hour(s); after it the data cannot be recovered. Reply \"ready\" once every region is restored.",
        utc(deadline),
        left.whole_days(),
        left.whole_hours() % 24
    )
}
