//! A revocation held for a person: too many tenants were denied in one pass to believe each.

use time::OffsetDateTime;

use crate::{HeldRegion, TenantId};

/// A revocation held for a person to release or dismiss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub tenant: TenantId,
    /// When the denial was seen: a release revokes as of then.
    pub detected_at: OffsetDateTime,
    /// What each denied region answered.
    pub regions: Vec<HeldRegion>,
    pub created_at: OffsetDateTime,
}
