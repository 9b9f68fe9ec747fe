//! The monitor's decision, with no I/O: what a pass saw goes in ([`PassObservation`], the
//! deadlines' [`DeadlineObservation`]), what to do comes out ([`Decision`],
//! [`DeadlineDecision`]). The pass gathers, calls [`judge`], then applies; every rule that can
//! revoke, hold or destroy a customer's data is here and tested on its own below.
//!
//! The rules, in the order they apply:
//! 1. the provider's own identity failing before the probes decides nothing at all;
//! 2. a region's denial counts only when every one of `confirmations` fresh probes saw one;
//! 3. a held tenant whose access works again leaves its hold; one still denied stays held;
//! 4. new denials are decided only while this node leads (when the pass requires it), and only
//!    once the provider's identity was proven again *after* the probes;
//! 5. more new denials than the hold threshold are all held for a person, none revoked;
//! 6. otherwise each new denial is a revocation as of its detection;
//! 7. a deadline passed destroys only after one more look at the provider's identity.

use byok_domain::TenantId;
use time::OffsetDateTime;

use crate::config::HoldThreshold;
use crate::error::ProviderFault;
use byok_domain::{RegionAccess, RegionResult};

/// The settings the decision follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorPolicy {
    /// Fresh probes in a row that must all see a denial before it counts.
    pub confirmations: u32,
    pub hold_threshold: HoldThreshold,
    /// A full pass decides only while this node leads; a data-path probe decides on any node
    /// (its writes are compare-and-set).
    pub leader_only: bool,
}

/// Whether the provider's own identity (and canary) worked when looked at.
pub type ProviderProof = Result<(), ProviderFault>;

/// One tenant as the pass's probes found it.
#[derive(Debug, Clone)]
pub struct TenantObservation {
    pub tenant: TenantId,
    /// A revocation of this tenant already waits for a person.
    pub held: bool,
    /// Each fresh probe's regions, in order. A probe that saw no denial ends the rounds.
    pub rounds: Vec<Vec<RegionResult>>,
    /// When the first probe started: the revocation's detection time.
    pub detected_at: OffsetDateTime,
}

/// Everything one pass (or one data-path probe) saw that the decision needs.
#[derive(Debug, Clone)]
pub struct PassObservation {
    /// The provider's identity before the probes.
    pub provider_before: ProviderProof,
    pub tenants: Vec<TenantObservation>,
    /// Active tenants in all: the hold threshold's denominator.
    pub active: usize,
    /// Whether this node led when the probes ended.
    pub leading: bool,
    /// The provider's identity after the probes; `None` when it was not looked at again.
    pub provider_after: Option<ProviderProof>,
}

/// A new, confirmed denial.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    pub tenant: TenantId,
    /// The denied regions of the last probe.
    pub regions: Vec<RegionResult>,
    pub detected_at: OffsetDateTime,
}

/// What the pass must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The customer withdrew access: revoke as of the detection.
    Revoke(Denied),
    /// Too many at once to believe: hold them all for a person.
    Hold { denied: Vec<Denied>, active: usize },
    /// A held tenant's access works again: it leaves the hold.
    ClearHold(TenantId),
    /// The provider's identity failed: nothing about any customer is decided.
    ProviderFault(ProviderFault),
    /// Leadership was lost before deciding: the new leader's pass decides these.
    LeftToLeader { denied: usize },
}

/// The new denials a pass must act on, if every observation is to be believed: the tenants
/// that are not held and whose every round saw a denial.
pub fn new_denials(observation: &PassObservation, policy: &MonitorPolicy) -> Vec<Denied> {
    observation
        .tenants
        .iter()
        .filter(|t| !t.held)
        .filter_map(|t| {
            confirmed(&t.rounds, policy.confirmations).map(|regions| Denied {
                tenant: t.tenant.clone(),
                regions,
                detected_at: t.detected_at,
            })
        })
        .collect()
}

/// Decides a pass. See the module's rules.
pub fn judge(observation: &PassObservation, policy: &MonitorPolicy) -> Vec<Decision> {
    if let Err(reason) = &observation.provider_before {
        return vec![Decision::ProviderFault(reason.clone())];
    }
    let mut decisions: Vec<Decision> =
        observation.tenants.iter().filter(|t| t.held && all_answered(&t.rounds)).map(|t| Decision::ClearHold(t.tenant.clone())).collect();
    let denied = new_denials(observation, policy);
    if denied.is_empty() {
        return decisions;
    }
    if policy.leader_only && !observation.leading {
        decisions.push(Decision::LeftToLeader { denied: denied.len() });
        return decisions;
    }
    match &observation.provider_after {
        Some(Ok(())) => {}
        Some(Err(reason)) => {
            decisions.push(Decision::ProviderFault(reason.clone()));
            return decisions;
        }
        None => {
            decisions.push(Decision::ProviderFault(ProviderFault::NotProven));
            return decisions;
        }
    }
    if policy.hold_threshold.holds(denied.len(), observation.active) {
        decisions.push(Decision::Hold { denied, active: observation.active });
    } else {
        decisions.extend(denied.into_iter().map(Decision::Revoke));
    }
    decisions
}

/// The denied regions of the last round, when there were `confirmations` rounds (at least
/// one) and every one of them saw a denial.
fn confirmed(rounds: &[Vec<RegionResult>], confirmations: u32) -> Option<Vec<RegionResult>> {
    let needed = usize::try_from(confirmations.max(1)).unwrap_or(usize::MAX);
    let denied = |round: &Vec<RegionResult>| round.iter().any(|r| matches!(r.access, RegionAccess::Denied { .. }));
    if rounds.len() < needed || !rounds.iter().all(denied) {
        return None;
    }
    let last = rounds.last()?;
    Some(last.iter().filter(|r| matches!(r.access, RegionAccess::Denied { .. })).cloned().collect())
}

/// Whether the last round answered in every region (no region could not be judged): only then
/// does a held tenant's access "work again". A region that could not be judged proves nothing.
fn all_answered(rounds: &[Vec<RegionResult>]) -> bool {
    rounds.last().is_some_and(|round| !round.is_empty() && round.iter().all(|r| matches!(r.access, RegionAccess::Ok)))
}

/// A revoked tenant and its deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Revoked {
    pub tenant: TenantId,
    pub deadline: OffsetDateTime,
}

/// What the deadline sweep saw.
#[derive(Debug, Clone)]
pub struct DeadlineObservation {
    /// Now, by the store's clock (every node agrees on it).
    pub now: OffsetDateTime,
    pub revoked: Vec<Revoked>,
    /// The provider's identity, looked at when some deadline had passed; `None` otherwise.
    pub provider: Option<ProviderProof>,
}

/// What the sweep must do.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadlineDecision {
    /// Before the deadline: post the reminder due, if any.
    Remind(Revoked),
    /// The deadline passed and the provider's identity works: destroy.
    Destroy(TenantId),
    /// The deadline passed but the provider's identity was not proven: destroy nothing now.
    Postpone { tenants: usize, reason: ProviderFault },
}

/// Decides the sweep: reminders before deadlines, destruction at or after them, and no
/// destruction at all unless the provider's identity works right now (the last look).
pub fn judge_deadlines(observation: &DeadlineObservation) -> Vec<DeadlineDecision> {
    let (due, waiting): (Vec<_>, Vec<_>) = observation.revoked.iter().cloned().partition(|r| observation.now >= r.deadline);
    let mut decisions: Vec<DeadlineDecision> = waiting.into_iter().map(DeadlineDecision::Remind).collect();
    if due.is_empty() {
        return decisions;
    }
    match &observation.provider {
        Some(Ok(())) => decisions.extend(due.into_iter().map(|r| DeadlineDecision::Destroy(r.tenant))),
        Some(Err(reason)) => decisions.push(DeadlineDecision::Postpone { tenants: due.len(), reason: reason.clone() }),
        None => decisions.push(DeadlineDecision::Postpone { tenants: due.len(), reason: ProviderFault::NotProven }),
    }
    decisions
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use byok_domain::Denial;

    fn fault(message: &str) -> ProviderFault {
        ProviderFault::Identity(byok_kms::AccessError::Provider { message: message.into() })
    }

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn policy() -> MonitorPolicy {
        MonitorPolicy { confirmations: 2, hold_threshold: HoldThreshold { tenants: 3, percent: 5.0 }, leader_only: true }
    }

    fn region(name: &str, access: RegionAccess) -> RegionResult {
        RegionResult { region: name.parse().expect("region"), access, remedy: None, latency_ms: None }
    }

    fn ok() -> Vec<RegionResult> {
        vec![region("eu-central-1", RegionAccess::Ok), region("eu-west-1", RegionAccess::Ok)]
    }

    fn denied() -> Vec<RegionResult> {
        let deny = RegionAccess::Denied { denial: Denial::TrustPolicy, message: "not authorized".into() };
        vec![region("eu-central-1", deny), region("eu-west-1", RegionAccess::Ok)]
    }

    fn unknown() -> Vec<RegionResult> {
        vec![region("eu-central-1", RegionAccess::Ok), region("eu-west-1", RegionAccess::Unknown { message: "throttled".into() })]
    }

    fn tenant(name: &str, held: bool, rounds: Vec<Vec<RegionResult>>) -> TenantObservation {
        TenantObservation { tenant: name.parse::<TenantId>().expect("id"), held, rounds, detected_at: AT }
    }

    fn id(name: &str) -> TenantId {
        name.parse::<TenantId>().expect("id")
    }

    /// A pass over `active` tenants (the first of them as observed), this node leading and the
    /// provider proven before and after.
    fn pass(tenants: Vec<TenantObservation>, active: usize) -> PassObservation {
        PassObservation { provider_before: Ok(()), tenants, active, leading: true, provider_after: Some(Ok(())) }
    }

    fn revoked(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Revoke(d) => Some(d.tenant.to_string()),
                _ => None,
            })
            .collect()
    }

    fn denied_tenants(count: usize) -> Vec<TenantObservation> {
        (0..count).map(|k| tenant(&format!("t{k}"), false, vec![denied(), denied()])).collect()
    }

    #[test]
    fn a_denial_confirmed_by_every_round_revokes_with_only_the_denied_regions() {
        let decisions = judge(&pass(vec![tenant("acme", false, vec![denied(), denied()])], 10), &policy());
        let [Decision::Revoke(d)] = decisions.as_slice() else { panic!("{decisions:?}") };
        assert_eq!((d.tenant.as_str(), d.detected_at), ("acme", AT));
        assert_eq!(d.regions.iter().map(|r| r.region.as_str()).collect::<Vec<_>>(), ["eu-central-1"]);
    }

    #[test]
    fn confirmations_every_round_must_see_a_denial() {
        let cases: Vec<(&str, u32, Vec<Vec<RegionResult>>, bool)> = vec![
            ("one round of two", 2, vec![denied()], false),
            ("second round answered", 2, vec![denied(), ok()], false),
            ("second round could not judge", 2, vec![denied(), unknown()], false),
            ("first answered, second denied", 2, vec![ok(), denied()], false),
            ("two of two", 2, vec![denied(), denied()], true),
            ("three of three", 3, vec![denied(), denied(), denied()], true),
            ("two of three", 3, vec![denied(), denied()], false),
            ("zero means one", 0, vec![denied()], true),
            ("no rounds at all (the probe failed)", 1, vec![], false),
            ("only unknowns", 1, vec![unknown()], false),
        ];
        for (case, confirmations, rounds, revokes) in cases {
            let policy = MonitorPolicy { confirmations, ..policy() };
            let decisions = judge(&pass(vec![tenant("acme", false, rounds)], 10), &policy);
            assert_eq!(revoked(&decisions) == ["acme"], revokes, "{case}: {decisions:?}");
        }
    }

    #[test]
    fn the_hold_threshold_at_its_edges() {
        // Held when more than 3 tenants *and* more than 5 % of the active ones are denied at once.
        let cases = [(3, 10, false), (4, 10, true), (4, 80, false), (5, 100, false), (6, 100, true), (4, 4, true), (1, 1, false)];
        for (count, active, holds) in cases {
            let decisions = judge(&pass(denied_tenants(count), active), &policy());
            if holds {
                let [Decision::Hold { denied, active: a }] = decisions.as_slice() else { panic!("{count}/{active}: {decisions:?}") };
                assert_eq!((denied.len(), *a), (count, active));
            } else {
                assert_eq!(revoked(&decisions).len(), count, "{count}/{active}: {decisions:?}");
            }
        }
    }

    #[test]
    fn held_tenants_count_neither_towards_the_threshold_nor_twice() {
        // Four denied, two of them already held: two new denials, under the threshold, revoked.
        let mut tenants = denied_tenants(2);
        tenants.push(tenant("held1", true, vec![denied(), denied()]));
        tenants.push(tenant("held2", true, vec![denied(), denied()]));
        let decisions = judge(&pass(tenants, 10), &policy());
        assert_eq!(revoked(&decisions), ["t0", "t1"], "{decisions:?}");
        assert_eq!(decisions.len(), 2, "a held tenant still denied stays held, nothing else: {decisions:?}");
    }

    #[test]
    fn a_held_tenant_whose_access_works_again_leaves_its_hold_and_only_then() {
        let cases = [
            ("answered everywhere", vec![ok()], true),
            ("denied again", vec![denied(), denied()], false),
            ("a region could not be judged", vec![unknown()], false),
            ("the probe failed", vec![], false),
        ];
        for (case, rounds, clears) in cases {
            let decisions = judge(&pass(vec![tenant("acme", true, rounds)], 10), &policy());
            assert_eq!(decisions == [Decision::ClearHold(id("acme"))], clears, "{case}: {decisions:?}");
            if !clears {
                assert!(decisions.is_empty(), "{case}: {decisions:?}");
            }
        }
    }

    #[test]
    fn the_provider_gate_before_and_after_the_probes() {
        // Failing before: nothing decided, not even a hold's clearing.
        let mut before = pass(vec![tenant("acme", false, vec![denied(), denied()]), tenant("held", true, vec![ok()])], 10);
        before.provider_before = Err(fault("canary refused"));
        assert_eq!(judge(&before, &policy()), [Decision::ProviderFault(fault("canary refused"))]);

        // Failing after: the denials count for nothing; a hold whose access works still clears.
        let mut after = pass(vec![tenant("acme", false, vec![denied(), denied()]), tenant("held", true, vec![ok()])], 10);
        after.provider_after = Some(Err(fault("identity expired")));
        assert_eq!(judge(&after, &policy()), [Decision::ClearHold(id("held")), Decision::ProviderFault(fault("identity expired"))]);

        // Not looked at again after the probes: never a revocation.
        let mut unproven = pass(vec![tenant("acme", false, vec![denied(), denied()])], 10);
        unproven.provider_after = None;
        assert_eq!(judge(&unproven, &policy()), [Decision::ProviderFault(ProviderFault::NotProven)]);

        // Without a new denial, the provider need not be looked at again.
        let mut quiet = pass(vec![tenant("acme", false, vec![ok()])], 10);
        quiet.provider_after = None;
        assert!(judge(&quiet, &policy()).is_empty());
    }

    #[test]
    fn leadership_lost_mid_pass_leaves_new_denials_to_the_new_leader() {
        let mut lost = pass(vec![tenant("acme", false, vec![denied(), denied()]), tenant("held", true, vec![ok()])], 10);
        lost.leading = false;
        lost.provider_after = None;
        assert_eq!(judge(&lost, &policy()), [Decision::ClearHold(id("held")), Decision::LeftToLeader { denied: 1 }]);
        // A data-path probe decides on any node.
        let anywhere = MonitorPolicy { leader_only: false, ..policy() };
        lost.provider_after = Some(Ok(()));
        assert_eq!(revoked(&judge(&lost, &anywhere)), ["acme"]);
    }

    #[test]
    fn destruction_takes_one_more_look_at_the_provider() {
        let past = Revoked { tenant: id("gone"), deadline: AT - time::Duration::seconds(1) };
        let exact = Revoked { tenant: id("exact"), deadline: AT };
        let later = Revoked { tenant: id("later"), deadline: AT + time::Duration::days(3) };
        let all = vec![past.clone(), exact.clone(), later.clone()];
        let works = DeadlineObservation { now: AT, revoked: all.clone(), provider: Some(Ok(())) };
        assert_eq!(
            judge_deadlines(&works),
            [DeadlineDecision::Remind(later.clone()), DeadlineDecision::Destroy(id("gone")), DeadlineDecision::Destroy(id("exact"))]
        );
        let fails = DeadlineObservation { now: AT, revoked: all.clone(), provider: Some(Err(fault("sts down"))) };
        assert_eq!(
            judge_deadlines(&fails),
            [DeadlineDecision::Remind(later.clone()), DeadlineDecision::Postpone { tenants: 2, reason: fault("sts down") }]
        );
        let unseen = DeadlineObservation { now: AT, revoked: all, provider: None };
        assert!(matches!(
            judge_deadlines(&unseen).as_slice(),
            [DeadlineDecision::Remind(_), DeadlineDecision::Postpone { tenants: 2, .. }]
        ));
        // Nothing due: no look needed, only reminders.
        let early = DeadlineObservation { now: AT - time::Duration::days(30), revoked: vec![past, exact], provider: None };
        assert!(judge_deadlines(&early).iter().all(|d| matches!(d, DeadlineDecision::Remind(_))));
    }
}
