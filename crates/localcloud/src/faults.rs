//! Fault injection: make a service in a region slow, throttled, failing or unreachable.
//!
//! Rules are set through `/_localcloud/faults` and matched on every AWS request before it is
//! authenticated, the way a network or a service front end fails. They are not persisted.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::Service;
use crate::state::ids;

/// What a rule does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer normally, `ms` milliseconds later.
    Latency { ms: u64 },
    /// Answer the service's throttling error.
    Throttle,
    /// Answer an internal error with this HTTP status (500 or 503).
    Error { status: u16 },
    /// Close the connection without answering.
    Drop,
    /// Answer a definitive-looking refusal with this code, the way a provider-side fault looks
    /// (an SCP or a session policy denying everyone, a disconnected custom key store).
    Refuse { code: RefusalCode },
}

/// The codes a [`FaultKind::Refuse`] rule can answer, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// STS/IAM.
    AccessDenied,
    /// KMS.
    AccessDeniedException,
    KMSInvalidStateException,
    DisabledException,
    NotFoundException,
}

impl RefusalCode {
    pub fn error(self, operation: &str) -> crate::error::AwsError {
        let message = format!("refused by an injected fault ({operation})");
        match self {
            RefusalCode::AccessDenied => crate::error::AwsError::new("AccessDenied", 403, message),
            RefusalCode::AccessDeniedException => crate::error::AwsError::new("AccessDeniedException", 400, message),
            RefusalCode::KMSInvalidStateException => crate::error::AwsError::new("KMSInvalidStateException", 400, message),
            RefusalCode::DisabledException => crate::error::AwsError::new("DisabledException", 400, message),
            RefusalCode::NotFoundException => crate::error::AwsError::new("NotFoundException", 400, message),
        }
    }
}

/// A rule as submitted to `POST /_localcloud/faults`. (serde cannot deny unknown fields next to
/// a flattened enum; [`FaultSpec::FIELDS`] is checked by the admin endpoint instead.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    /// `kms`, `sts` or `iam`; every service when absent.
    #[serde(default)]
    pub service: Option<Service>,
    /// Every region when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// Only this operation (`Decrypt`, `AssumeRole`, …) when present.
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// The chance (0 to 1) that a matching request is affected; 1 when absent.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Affect only this many requests, then retire.
    #[serde(default)]
    pub count: Option<u64>,
}

impl FaultSpec {
    /// Every field a submitted rule may have.
    pub const FIELDS: [&'static str; 9] = ["service", "region", "operation", "kind", "ms", "status", "code", "probability", "count"];
}

/// A rule in force.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRule {
    pub id: String,
    #[serde(flatten)]
    pub spec: FaultSpec,
    pub hits: u64,
}

/// What the matching rules decided for one request.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct FaultOutcome {
    pub delay: Option<Duration>,
    pub failure: Option<FaultKind>,
}

#[derive(Debug, Default)]
pub struct Faults {
    any: AtomicBool,
    rules: RwLock<Vec<FaultRule>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFault(pub String);

impl Faults {
    pub fn add(&self, spec: FaultSpec) -> Result<FaultRule, InvalidFault> {
        if let FaultKind::Error { status } = spec.kind {
            if !(500..=599).contains(&status) {
                return Err(InvalidFault(format!("an injected error has a 5xx status, not {status}")));
            }
        }
        if let Some(p) = spec.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(InvalidFault(format!("probability must be between 0 and 1, not {p}")));
            }
        }
        let rule = FaultRule { id: ids::uuid(), spec, hits: 0 };
        let mut rules = self.rules.write();
        rules.push(rule.clone());
        self.any.store(true, Ordering::Release);
        Ok(rule)
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.read().clone()
    }

    /// Removes one rule (`Some(id)`) or all; returns how many were removed.
    pub fn clear(&self, id: Option<&str>) -> usize {
        let mut rules = self.rules.write();
        let before = rules.len();
        match id {
            Some(id) => rules.retain(|r| r.id != id),
            None => rules.clear(),
        }
        self.any.store(!rules.is_empty(), Ordering::Release);
        before - rules.len()
    }

    pub fn check(&self, service: Service, region: &str, operation: &str) -> FaultOutcome {
        if !self.any.load(Ordering::Acquire) {
            return FaultOutcome::default();
        }
        let mut outcome = FaultOutcome::default();
        let mut rules = self.rules.write();
        for rule in rules.iter_mut() {
            let s = &rule.spec;
            let matches = s.service.is_none_or(|x| x == service)
                && s.region.as_deref().is_none_or(|r| r == region)
                && s.operation.as_deref().is_none_or(|o| o.eq_ignore_ascii_case(operation))
                && s.count.is_none_or(|c| rule.hits < c)
                && s.probability.is_none_or(chance);
            if !matches {
                continue;
            }
            rule.hits += 1;
            match s.kind {
                FaultKind::Latency { ms } => outcome.delay = Some(outcome.delay.unwrap_or_default() + Duration::from_millis(ms)),
                failure => {
                    outcome.failure.get_or_insert(failure);
                }
            }
        }
        rules.retain(|r| r.spec.count.is_none_or(|c| r.hits < c));
        self.any.store(!rules.is_empty(), Ordering::Release);
        outcome
    }
}

fn chance(probability: f64) -> bool {
    let mut b = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return true;
    }
    (u32::from_le_bytes(b) as f64 / u32::MAX as f64) < probability
}
