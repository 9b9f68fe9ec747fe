//! A tenant's state as its pages show it, one type for the customer's sentence, the operator's
//! tiles and filter, and what the pages' script watches. The store knows four states; the
//! console shows six, because two of them are not what the store's word would make a person
//! believe:
//! - a tenant whose revocation is held for a person is `active` in the store, but its key is
//!   not served: it is **suspended** under review;
//! - a revoked tenant whose latest restoration found some regions working again is
//!   **restoring**: the customer is half-way, and the page says how far.

use byok_broker::LastCheck;
use byok_domain::{RegionAccess, Tenant, TenantState};
use maud::{Markup, html};
use time::OffsetDateTime;

use super::layout::when;

/// The states as the operator's tiles and filter name them, most urgent first.
pub const NAMES: [&str; 6] = ["revoked", "restoring", "suspended", "onboarding", "active", "destroyed"];

/// How far a restoration got: `working` of `regions` answered, at `checked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub working: usize,
    pub regions: usize,
    pub checked: OffsetDateTime,
}

/// A tenant's state as a person should read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Onboarding,
    Active,
    Suspended { since: OffsetDateTime },
    Revoked { since: OffsetDateTime },
    Restoring { since: OffsetDateTime, progress: Progress },
    Destroyed { at: OffsetDateTime },
}

impl Shown {
    /// `held_since`: the tenant's revocation is held for a person; `check`: its latest region
    /// check on this node (a restoration's, for a revoked tenant).
    pub fn of(tenant: &Tenant, held_since: Option<OffsetDateTime>, check: Option<&LastCheck>) -> Self {
        match tenant.state {
            TenantState::Onboarding => Self::Onboarding,
            TenantState::Active => match held_since {
                Some(since) => Self::Suspended { since },
                None => Self::Active,
            },
            TenantState::Revoked { since, .. } => match check.and_then(|c| progress(c, since)) {
                Some(progress) => Self::Restoring { since, progress },
                None => Self::Revoked { since },
            },
            TenantState::Destroyed { at } => Self::Destroyed { at },
        }
    }

    /// Its name in the operator's filter and in what the pages' script watches.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Onboarding => "onboarding",
            Self::Active => "active",
            Self::Suspended { .. } => "suspended",
            Self::Revoked { .. } => "revoked",
            Self::Restoring { .. } => "restoring",
            Self::Destroyed { .. } => "destroyed",
        }
    }

    /// The state in a sentence, for the tenant's customer.
    pub fn sentence(&self) -> Markup {
        match self {
            Self::Onboarding => html! { span.warn { "Onboarding: the setup has not been verified yet." } },
            Self::Suspended { since } => html! {
                span.warn {
                    "Suspended under review since " (when(*since)) ": access to your keys was refused, "
                    "and the provider is confirming it before anything else happens. Your data is not available meanwhile; "
                    "no deadline is running. If you did not mean to revoke access, restore it in AWS now."
                }
            },
            Self::Active => html! { span.ok { "Active: your data is available to your users and the provider's systems." } },
            Self::Revoked { since } => html! {
                span.bad { "Revoked since " (when(*since)) ": the product is offline for your users and the provider." }
            },
            Self::Restoring { progress, .. } => html! {
                span.warn {
                "Restoring: " (progress.working) " of " (progress.regions) " regions work again (verified " (when(progress.checked))
                "). The product stays offline until every region works and the restoration is verified; the deadline still runs."
                }
            },
            Self::Destroyed { at } => html! {
                span.bad { "Destroyed on " (when(*at)) ": the keys are erased and the data cannot be recovered." }
            },
        }
    }

    /// The state in a word or two, for the operator's table.
    pub fn label(&self) -> Markup {
        match self {
            Self::Suspended { .. } => html! { span.warn { "suspended (held)" } },
            Self::Revoked { .. } => html! { span.bad { "revoked" } },
            Self::Restoring { progress, .. } => html! { span.warn { "restoring (" (progress.working) "/" (progress.regions) ")" } },
            other => html! { (other.name()) },
        }
    }
}

/// The operator's words for a state's tile.
pub fn tile_words(name: &str) -> &str {
    match name {
        "suspended" => "suspended (held)",
        other => other,
    }
}

/// A restoration since the revocation that found some regions working but not all of them
/// (all of them working and still revoked: a step outside the regions is missing, the external
/// id for one; that is still restoring).
fn progress(check: &LastCheck, revoked_since: OffsetDateTime) -> Option<Progress> {
    if check.purpose != byok_kms::Purpose::Restore || check.at < revoked_since {
        return None;
    }
    let working = check.regions.iter().filter(|r| matches!(r.access, RegionAccess::Ok)).count();
    (working > 0).then_some(Progress { working, regions: check.regions.len(), checked: check.at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restoration_before_the_revocation_or_with_nothing_working_is_not_restoring() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        let region = |name: &str, access: RegionAccess| byok_domain::RegionResult {
            region: name.parse().expect("region"),
            access,
            latency_ms: None,
            remedy: None,
        };
        let denied = RegionAccess::Denied { denial: byok_domain::Denial::KeyDisabled, message: String::new() };
        let check = |at, regions| LastCheck { at, purpose: byok_kms::Purpose::Restore, regions };
        let half = check(at, vec![region("eu-west-1", denied.clone()), region("eu-central-1", RegionAccess::Ok)]);
        assert_eq!(progress(&half, at).map(|p| (p.working, p.regions)), Some((1, 2)));
        assert_eq!(progress(&half, at + time::Duration::seconds(1)), None, "an older attempt says nothing of this revocation");
        let none = check(at, vec![region("eu-west-1", denied)]);
        assert_eq!(progress(&none, at), None);
        let probe = LastCheck { purpose: byok_kms::Purpose::Probe, ..half };
        assert_eq!(progress(&probe, at), None, "only a restoration's check");
    }
}
