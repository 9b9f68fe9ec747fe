//! What a check of a tenant's access found, region by region: the customer's definitive
//! [`Denial`]s, answers that say nothing ([`RegionAccess::Unknown`]), and the regions a held
//! revocation recorded ([`HeldRegion`]).
//!
//! The serde forms here are stored (a hold's regions) and written into audit details; they are
//! the same JSON the API shows, so a record written by one version reads in the next.

use serde::{Deserialize, Serialize};

use crate::Region;

/// A definitive answer that the customer has withdrawn access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// STS AssumeRole refused: the trust policy no longer lets the provider in.
    TrustPolicy,
    /// `DisabledException`.
    KeyDisabled,
    /// DescribeKey says `PendingDeletion`.
    KeyPendingDeletion,
    /// `NotFoundException`: deleted, or never in this region.
    KeyNotFound,
    /// `AccessDeniedException`: the key policy no longer allows the provider.
    KeyPolicy,
    /// `IncorrectKeyException`.
    IncorrectKey,
}

/// What one region's access check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RegionAccess {
    /// Assumed, key enabled, unwrap worked.
    Ok,
    /// The customer withdrew access here.
    Denied { denial: Denial, message: String },
    /// AWS did not answer definitively; says nothing about the customer.
    Unknown { message: String },
}

impl RegionAccess {
    /// The denial, when this answer is one.
    pub fn denial(&self) -> Option<Denial> {
        match self {
            Self::Denied { denial, .. } => Some(*denial),
            Self::Ok | Self::Unknown { .. } => None,
        }
    }
}

/// One region's outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionResult {
    pub region: Region,
    pub access: RegionAccess,
    /// What to do, when denied (the customer guide's step).
    pub remedy: Option<String>,
    /// How long the region's check took.
    pub latency_ms: Option<u64>,
}

impl RegionResult {
    /// Whether the customer withdrew access in this region.
    pub fn is_denied(&self) -> bool {
        matches!(self.access, RegionAccess::Denied { .. })
    }

    /// What a hold keeps of this region.
    pub fn held(&self) -> HeldRegion {
        HeldRegion { region: self.region.clone(), access: self.access.clone() }
    }
}

/// A region as a held revocation recorded it: what it answered when the denial was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRegion {
    pub region: Region,
    pub access: RegionAccess,
}

impl From<HeldRegion> for RegionResult {
    fn from(h: HeldRegion) -> Self {
        Self { region: h.region, access: h.access, remedy: None, latency_ms: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_region_keeps_the_stored_json_shape() {
        let region: Region = "eu-west-1".parse().expect("region");
        let held = HeldRegion { region, access: RegionAccess::Denied { denial: Denial::KeyDisabled, message: "disabled".into() } };
        let json = serde_json::to_value(&held).expect("json");
        assert_eq!(
            json,
            serde_json::json!({ "region": "eu-west-1", "access": { "result": "denied", "denial": "key_disabled", "message": "disabled" } })
        );
        assert_eq!(serde_json::from_value::<HeldRegion>(json).expect("back"), held);
    }
}
