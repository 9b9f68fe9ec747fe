//! The tenant lifecycle: one enum, one transition function, no `_ =>` arm.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Onboarding: tenant add
//!     Onboarding --> Active: Verified (every region assumed, enabled, wraps)
//!     Active --> Revoked: RevocationDetected (any region, definitive denial)
//!     Active --> Revoked: HoldReleased (a person believes a held denial)
//!     Revoked --> Revoked: RevocationDetected (already revoked: unchanged)
//!     Revoked --> Active: Restored (every region verified again, before the deadline)
//!     Revoked --> Destroyed: DeadlinePassed (at or after since + grace)
//!     Destroyed --> [*]
//! ```
//!
//! A destroyed tenant's wrapped keys are erased: nothing brings it back.
//!
//! [`TenantState::apply`] is the only gate: it judges every rule (including both sides of the
//! deadline) and returns a [`Transition`], which nothing else can build. The store's
//! state-changing methods take a `Transition`, so a state the lifecycle does not allow cannot
//! be written, and callers never pre-check the state themselves.

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
    RevocationDetected {
        at: OffsetDateTime,
        grace: Duration,
    },
    /// A denial first detected at `detected` was held for a person, who released it at
    /// `released`. The revocation counts from the detection, but the deadline never comes
    /// sooner than `released + grace`: the customer is told only now, and always gets the whole
    /// grace period from that moment.
    HoldReleased {
        detected: OffsetDateTime,
        released: OffsetDateTime,
        grace: Duration,
    },
    /// The customer's restoration was verified at `at` (refused at or after the deadline).
    Restored {
        at: OffsetDateTime,
    },
    DeadlinePassed {
        at: OffsetDateTime,
    },
}

/// Why [`TenantState::apply`] refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTransition {
    #[error("a tenant in state {from} cannot take event {event}")]
    NotAllowed { from: &'static str, event: &'static str },
    #[error("the restoration deadline ({deadline}) has passed: the keys are being erased and cannot be restored")]
    AfterDeadline { deadline: OffsetDateTime },
    #[error("the restoration deadline ({deadline}) has not passed yet")]
    BeforeDeadline { deadline: OffsetDateTime },
}

/// A state change the lifecycle allowed. Only [`TenantState::apply`] builds one (its fields
/// are private), and the store's state-changing methods require one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    from: TenantState,
    to: TenantState,
    event: Event,
}

impl Transition {
    pub fn from(&self) -> TenantState {
        self.from
    }

    pub fn to(&self) -> TenantState {
        self.to
    }

    pub fn event(&self) -> Event {
        self.event
    }

    /// Whether the state really changes (a second detection of a revocation does not).
    pub fn changes_state(&self) -> bool {
        self.from != self.to
    }
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
    pub fn apply(self, event: Event) -> Result<Transition, InvalidTransition> {
        use TenantState::{Active, Destroyed, Onboarding, Revoked};
        let not_allowed = Err(InvalidTransition::NotAllowed { from: self.name(), event: event.name() });
        let to = match (self, event) {
            (Onboarding, Event::Verified) => Active,
            (
                Onboarding,
                Event::RevocationDetected { .. } | Event::HoldReleased { .. } | Event::Restored { .. } | Event::DeadlinePassed { .. },
            ) => return not_allowed,
            (Active, Event::RevocationDetected { at, grace }) => Revoked { since: at, deadline: at + grace },
            (Active, Event::HoldReleased { detected, released, grace }) => {
                Revoked { since: detected, deadline: detected.max(released) + grace }
            }
            (Active, Event::Verified | Event::Restored { .. } | Event::DeadlinePassed { .. }) => return not_allowed,
            (Revoked { since, deadline }, Event::RevocationDetected { .. } | Event::HoldReleased { .. }) => Revoked { since, deadline },
            (Revoked { deadline, .. }, Event::Restored { at }) if at < deadline => Active,
            (Revoked { deadline, .. }, Event::Restored { .. }) => return Err(InvalidTransition::AfterDeadline { deadline }),
            (Revoked { deadline, .. }, Event::DeadlinePassed { at }) if at >= deadline => Destroyed { at },
            (Revoked { deadline, .. }, Event::DeadlinePassed { .. }) => return Err(InvalidTransition::BeforeDeadline { deadline }),
            (Revoked { .. }, Event::Verified) => return not_allowed,
            (
                Destroyed { .. },
                Event::Verified
                | Event::RevocationDetected { .. }
                | Event::HoldReleased { .. }
                | Event::Restored { .. }
                | Event::DeadlinePassed { .. },
            ) => {
                return not_allowed;
            }
        };
        Ok(Transition { from: self, to, event })
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
            Event::HoldReleased { .. } => "hold_released",
            Event::Restored { .. } => "restored",
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
        let active = TenantState::Onboarding.apply(Event::Verified).expect("verify").to();
        let revoked = active.apply(Event::RevocationDetected { at: t0, grace }).expect("revoke").to();
        assert_eq!(revoked, TenantState::Revoked { since: t0, deadline: t0 + grace });
        // A second detection keeps the first deadline, and is no change.
        let again = revoked.apply(Event::RevocationDetected { at: t0 + Duration::days(1), grace }).expect("again");
        assert_eq!(again.to(), revoked);
        assert!(!again.changes_state());
        assert_eq!(
            revoked.apply(Event::DeadlinePassed { at: t0 + Duration::days(14) }),
            Err(InvalidTransition::BeforeDeadline { deadline: t0 + grace }),
            "not before the deadline"
        );
        let restored = revoked.apply(Event::Restored { at: t0 + Duration::days(14) }).expect("restore");
        assert_eq!((restored.from(), restored.to()), (revoked, TenantState::Active));
        assert!(restored.changes_state());
        assert_eq!(
            revoked.apply(Event::Restored { at: t0 + grace }),
            Err(InvalidTransition::AfterDeadline { deadline: t0 + grace }),
            "no restoration at or after the deadline"
        );
        let destroyed = revoked.apply(Event::DeadlinePassed { at: t0 + grace }).expect("destroy").to();
        for event in
            [Event::Verified, Event::Restored { at: t0 }, Event::RevocationDetected { at: t0, grace }, Event::DeadlinePassed { at: t0 }]
        {
            assert!(destroyed.apply(event).is_err(), "destroyed is final");
        }
        assert!(TenantState::Onboarding.apply(Event::Restored { at: t0 }).is_err());
        assert!(!revoked.serves_data() && TenantState::Active.serves_data());
        assert!(TenantState::Onboarding.apply(Event::HoldReleased { detected: t0, released: t0, grace }).is_err());
        let json = serde_json::to_string(&revoked).expect("json");
        assert!(json.contains("\"state\":\"revoked\""), "{json}");
        assert_eq!(serde_json::from_str::<TenantState>(&json).expect("back"), revoked);
    }

    #[test]
    fn a_released_hold_never_shortens_the_grace_period() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let grace = Duration::days(15);
        let release = |after: Duration| {
            TenantState::Active.apply(Event::HoldReleased { detected: t0, released: t0 + after, grace }).expect("release").to()
        };
        // Released at once: the deadline counts from the detection, as any revocation's.
        assert_eq!(release(Duration::ZERO), TenantState::Revoked { since: t0, deadline: t0 + grace });
        // Released 10 days later: the customer, told only now, still gets 15 days.
        assert_eq!(release(Duration::days(10)), TenantState::Revoked { since: t0, deadline: t0 + Duration::days(25) });
        // Held longer than the grace period itself: the deadline is not already past.
        let late = release(Duration::days(16));
        assert_eq!(late, TenantState::Revoked { since: t0, deadline: t0 + Duration::days(31) });
        assert!(late.apply(Event::DeadlinePassed { at: t0 + Duration::days(16) }).is_err(), "not destroyed on release");
        // A clock that ran backwards between detection and release changes nothing.
        assert_eq!(release(Duration::days(-1)), TenantState::Revoked { since: t0, deadline: t0 + grace });
        // Already revoked: unchanged.
        let revoked = release(Duration::ZERO);
        let again = revoked.apply(Event::HoldReleased { detected: t0, released: t0 + Duration::days(3), grace }).expect("again");
        assert!(!again.changes_state());
    }
}
