//! The leader's watch on customers' aliases: which tenants' aliases this pass looks at, what was
//! found re-pointed, and what was refused before (see [`crate::rotation`]).

use byok_domain::{Region, TenantId};

/// The leader's watch on customers' aliases (see `Broker::follow_aliases` in [`crate::rotation`]).
#[derive(Debug, Default)]
pub(crate) struct AliasWatch {
    /// Where the next round starts, in the active tenants' order.
    pub(crate) cursor: usize,
    /// This pass's round: tenants whose probe also looks at the alias.
    pub(crate) round: std::collections::HashSet<TenantId>,
    /// Regions found re-pointed, waiting for the end of the pass.
    pub(crate) moved: Vec<(TenantId, Region, String)>,
    /// Replacements refused before: not tried again for the same key.
    pub(crate) refused: std::collections::HashSet<(TenantId, Region, String)>,
}
