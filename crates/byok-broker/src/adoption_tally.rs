//! Records this node moved off provider-held generations by `rewrap`, per adopting tenant,
//! counted in memory and added to the store every second (see `node`), so that a busy rewrap
//! costs no store write per record and every node's share reaches the fleet's progress.

use std::collections::HashMap;

use byok_domain::TenantId;
use parking_lot::Mutex;

/// Counts not yet added to the store.
#[derive(Debug, Default)]
pub struct AdoptionTally {
    pending: Mutex<HashMap<TenantId, u64>>,
}

impl AdoptionTally {
    /// One more record of `tenant` moved onto the customer's keys.
    pub fn count(&self, tenant: &TenantId) {
        let mut pending = self.pending.lock();
        match pending.get_mut(tenant) {
            Some(n) => *n += 1,
            None => {
                pending.insert(tenant.clone(), 1);
            }
        }
    }

    /// Everything counted since the last take.
    pub fn take(&self) -> HashMap<TenantId, u64> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Gives back counts the store did not take (tried again next time).
    pub fn restore(&self, counts: HashMap<TenantId, u64>) {
        let mut pending = self.pending.lock();
        for (tenant, n) in counts {
            *pending.entry(tenant).or_insert(0) += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once_and_given_back_when_the_store_fails() {
        let tally = AdoptionTally::default();
        let acme: TenantId = "acme".parse().expect("id");
        tally.count(&acme);
        tally.count(&acme);
        let taken = tally.take();
        assert_eq!(taken.get(&acme), Some(&2));
        assert!(tally.take().is_empty());
        tally.restore(taken);
        tally.count(&acme);
        assert_eq!(tally.take().get(&acme), Some(&3));
    }
}
