//! What a monitor pass did: [`PassReport`] for its caller, [`PassStats`] as the operator's
//! console shows the last one.

/// What one monitor pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub tenants_probed: usize,
    pub revoked: Vec<String>,
    /// New denials held for a person instead of revoked.
    pub held: Vec<String>,
    pub destroyed: Vec<String>,
    /// Why nothing was decided, when the provider's own identity failed.
    pub provider_fault: Option<String>,
    /// Another node leads: this one ran no pass.
    pub follower: bool,
}

/// The last pass as the operator's console shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassStats {
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub duration_ms: u64,
    pub tenants_probed: usize,
    pub revoked: usize,
    pub held: usize,
    pub destroyed: usize,
    /// Why nothing was decided, when the provider's identity failed.
    pub provider_fault: Option<String>,
    /// Region checks of this pass by outcome: `ok`, `denied`, `unknown` (could not be judged).
    pub regions: std::collections::BTreeMap<String, usize>,
}
