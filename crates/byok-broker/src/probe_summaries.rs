//! Routine successful probes, counted in memory per (tenant, region) and hour and written to
//! the audit log as one summary row when the hour ends (see [`crate::audit`]).

use std::collections::HashMap;

use byok_domain::TenantId;
use parking_lot::Mutex;

/// Routine successful probes of one (tenant, region) within one hour, not yet written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeSummary {
    pub(crate) hour: i64,
    pub(crate) count: u64,
    pub(crate) first: i64,
    pub(crate) last: i64,
}

/// A summary row's key: the tenant and the region.
pub(crate) type SummaryKey = (TenantId, String);

#[derive(Debug, Default)]
struct Counts {
    current: HashMap<SummaryKey, ProbeSummary>,
    finished: Vec<(SummaryKey, ProbeSummary)>,
}

/// The current hour's summaries, and those of ended hours waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct ProbeSummaries(Mutex<Counts>);

impl ProbeSummaries {
    /// Counts a probe at `now` (Unix seconds); the previous hour's summary of the same
    /// (tenant, region) waits in the finished list when the hour turns.
    pub(crate) fn count(&self, tenant: &TenantId, region: &str, now: i64) {
        let hour = now.div_euclid(3600);
        let mut counts = self.0.lock();
        let key = (tenant.clone(), region.to_string());
        match counts.current.get_mut(&key) {
            Some(s) if s.hour == hour => {
                s.count += 1;
                s.last = now;
            }
            Some(s) => {
                let done = *s;
                *s = ProbeSummary { hour, count: 1, first: now, last: now };
                counts.finished.push((key, done));
            }
            None => {
                counts.current.insert(key, ProbeSummary { hour, count: 1, first: now, last: now });
            }
        }
    }

    /// The summaries of ended hours, taken.
    pub(crate) fn take_finished(&self) -> Vec<(SummaryKey, ProbeSummary)> {
        std::mem::take(&mut self.0.lock().finished)
    }

    /// Every summary, hours ended or not, taken (on shutdown, before an export).
    pub(crate) fn take_all(&self) -> Vec<(SummaryKey, ProbeSummary)> {
        let mut counts = self.0.lock();
        let mut all = std::mem::take(&mut counts.finished);
        all.extend(counts.current.drain());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_is_one_row_and_the_turn_of_the_hour_finishes_it() {
        let s = ProbeSummaries::default();
        let t: TenantId = "acme".parse().expect("id");
        s.count(&t, "eu-west-1", 7200);
        s.count(&t, "eu-west-1", 7260);
        s.count(&t, "us-east-1", 7300);
        assert!(s.take_finished().is_empty(), "no hour ended yet");
        s.count(&t, "eu-west-1", 10_800);
        let done = s.take_finished();
        assert_eq!(done, [((t.clone(), "eu-west-1".into()), ProbeSummary { hour: 2, count: 2, first: 7200, last: 7260 })]);
        assert_eq!(s.take_all().len(), 2, "the current hours of both regions");
        assert!(s.take_all().is_empty());
    }
}
