//! A tenant and its binding to the customer's AWS account.

use serde::{Deserialize, Serialize};

use crate::generations::KeyGenerations;
use crate::ids::{AccountId, ExternalId, KeyArn, Region, RoleArn, TenantId};
use crate::lifecycle::TenantState;

/// One region's KMS key for a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionKey {
    pub region: Region,
    pub key_arn: KeyArn,
}

/// How the provider reaches the tenant's keys: which role to assume with which external id,
/// and which key in each region. Set at onboarding; a region's key changes only by rekey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantBinding {
    pub account: AccountId,
    pub role_arn: RoleArn,
    pub external_id: ExternalId,
    /// In the location's order: the nearest region first.
    pub keys: Vec<RegionKey>,
    /// The operator accepted a trust policy without an `sts:ExternalId` condition.
    pub legacy_trust: bool,
}

impl TenantBinding {
    pub fn key_for(&self, region: &Region) -> Option<&KeyArn> {
        self.keys.iter().find(|k| &k.region == region).map(|k| &k.key_arn)
    }
}

/// A tenant as the broker stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub location: String,
    pub binding: TenantBinding,
    pub state: TenantState,
    /// Its tenant key generations.
    pub keys: KeyGenerations,
    /// Bumped by every change; writes compare-and-set on it.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}
