//! The tenant lifecycle: one enum, one transition function, no `_ =>` arm.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Onboarding: tenant add
//!     Onboarding --> Active: Verified (every region assumed, enabled, wraps)
//!     Active --> Revoked: RevocationDetected (any region, definitive denial)
//!     Revoked --> Revoked: RevocationDetected (already revoked: unchanged)
//!     Revoked --> Active: Restored (every region verified again)
//!     Revoked --> Destroyed: DeadlinePassed (at or after since + grace)
//!     Destroyed --> [*]
//! ```
//!
//! A destroyed tenant's wrapped keys are erased: nothing brings it back.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TenantState {
    /// Added; the customer's setup is not verified yet. No data can be written.
    Onboarding,
    /// Verified; the data plane serves it.
    Active,
    /// The customer revoked access: refused everywhere until restored or destroyed.
    Revoked {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        deadline: OffsetDateTime,
    },
    /// The deadline passed: wrapped keys erased, data unrecoverable by design.
    Destroyed {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// What happened to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Verified,
    RevocationDetected { at: OffsetDateTime, grace: Duration },
    Restored,
    DeadlinePassed { at: OffsetDateTime },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant in state {from} cannot take event {event}")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub event: &'static str,
}

impl TenantState {
    pub fn name(&self) -> &'static str {
        match self {
            TenantState::Onboarding => "onboarding",
            TenantState::Active => "active",
            TenantState::Revoked { .. } => "revoked",
            TenantState::Destroyed { .. } => "destroyed",
        }
    }

    /// The one transition function.
    pub fn apply(self, event: Event) -> Result<TenantState, InvalidTransition> {
        use TenantState::{Active, Destroyed, Onboarding, Revoked};
        let invalid = |from: &TenantState| Err(InvalidTransition { from: from.name(), event: event.name() });
        match (self, event) {
            (Onboarding, Event::Verified) => Ok(Active),
            (Onboarding, Event::RevocationDetected { .. } | Event::Restored | Event::DeadlinePassed { .. }) => invalid(&self),
            (Active, Event::RevocationDetected { at, grace }) => Ok(Revoked { since: at, deadline: at + grace }),
            (Active, Event::Verified | Event::Restored | Event::DeadlinePassed { .. }) => invalid(&self),
            (Revoked { since, deadline }, Event::RevocationDetected { .. }) => Ok(Revoked { since, deadline }),
            (Revoked { .. }, Event::Restored) => Ok(Active),
            (Revoked { deadline, .. }, Event::DeadlinePassed { at }) if at >= deadline => Ok(Destroyed { at }),
            (Revoked { .. }, Event::DeadlinePassed { .. } | Event::Verified) => invalid(&self),
            (Destroyed { .. }, Event::Verified | Event::RevocationDetected { .. } | Event::Restored | Event::DeadlinePassed { .. }) => {
                invalid(&self)
            }
        }
    }

    /// Whether the data plane may use the tenant's keys.
    pub fn serves_data(&self) -> bool {
        matches!(self, TenantState::Active)
    }
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Verified => "verified",
            Event::RevocationDetected { .. } => "revocation_detected",
            Event::Restored => "restored",
            Event::DeadlinePassed { .. } => "deadline_passed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_life() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let grace = Duration::days(15);
        let active = TenantState::Onboarding.apply(Event::Verified).expect("verify");
        let revoked = active.apply(Event::RevocationDetected { at: t0, grace }).expect("revoke");
        assert_eq!(revoked, TenantState::Revoked { since: t0, deadline: t0 + grace });
        // A second detection keeps the first deadline.
        assert_eq!(revoked.apply(Event::RevocationDetected { at: t0 + Duration::days(1), grace }), Ok(revoked));
        assert!(revoked.apply(Event::DeadlinePassed { at: t0 + Duration::days(14) }).is_err(), "not before the deadline");
        assert_eq!(revoked.apply(Event::Restored), Ok(TenantState::Active));
        let destroyed = revoked.apply(Event::DeadlinePassed { at: t0 + grace }).expect("destroy");
        for event in [Event::Verified, Event::Restored, Event::RevocationDetected { at: t0, grace }, Event::DeadlinePassed { at: t0 }] {
            assert!(destroyed.apply(event).is_err(), "destroyed is final");
        }
        assert!(TenantState::Onboarding.apply(Event::Restored).is_err());
        assert!(!revoked.serves_data() && TenantState::Active.serves_data());
        let json = serde_json::to_string(&revoked).expect("json");
        assert!(json.contains("\"state\":\"revoked\""), "{json}");
        assert_eq!(serde_json::from_str::<TenantState>(&json).expect("back"), revoked);
    }
}
