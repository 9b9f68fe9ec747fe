//! The node's cache of unwrapped tenant keys.
//!
//! - An entry lives for the TTL counted from its unwrap (not from its last use): a customer's
//!   revocation is never hidden for longer than the TTL by a busy tenant.
//! - Concurrent misses for one tenant make one KMS call (single flight): the first caller
//!   loads, the others wait for its result.
//! - An entry holds every generation that still opens records (one unwrap each, at load), so
//!   records of older generations cost nothing more to open than current ones.
//! - [`KeyCache::purge`] drops a tenant's entry at once (revocation). Keys are zeroized when the
//!   last holder lets go: the tenant key by `Zeroizing`, aws-lc's key schedules on free.

use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use byok_domain::{KeyGenerations, TenantId};
use byok_envelope::RecordSealer;
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;

use crate::clock::Clock;

/// A tenant's unwrapped keys, ready to seal and open: the current generation's, and every
/// older one's that still opens records.
#[derive(Debug)]
pub struct TenantKeys {
    pub generations: KeyGenerations,
    /// By generation; holds every generation in `generations.readable()`.
    pub sealers: BTreeMap<u32, Arc<RecordSealer>>,
    /// While the tenant adopts the customer's keys: the first generation made under them alone
    /// (records below it are counted as they are rewrapped).
    pub adopted_from: Option<u32>,
}

impl TenantKeys {
    /// The sealer of the current generation, which seals every new record.
    pub fn writer(&self) -> Option<&Arc<RecordSealer>> {
        self.sealers.get(&self.generations.current)
    }
}

/// A tenant's keys as cached, and when they were unwrapped.
#[derive(Debug)]
pub struct CachedKey {
    pub keys: Arc<TenantKeys>,
    pub unwrapped_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Slot {
    cell: OnceCell<Arc<CachedKey>>,
}

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    slots: RwLock<HashMap<TenantId, Arc<Slot>>>,
}

impl KeyCache {
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self { ttl, clock, slots: RwLock::new(HashMap::new()) }
    }

    fn fresh(&self, key: &CachedKey, now: OffsetDateTime) -> bool {
        now < key.unwrapped_at + self.ttl
    }

    /// The tenant's keys and whether they came from the cache; `load` runs at most once at a
    /// time per tenant, and only on a miss.
    pub async fn get_or_load<E, Fut>(&self, tenant: &TenantId, load: impl FnOnce() -> Fut) -> Result<(Arc<TenantKeys>, bool), E>
    where
        Fut: Future<Output = Result<CachedKey, E>>,
    {
        let now = self.clock.now();
        if let Some(slot) = self.slots.read().get(tenant) {
            if let Some(key) = slot.cell.get().filter(|k| self.fresh(k, now)) {
                return Ok((key.keys.clone(), true));
            }
        }
        let slot = {
            let mut slots = self.slots.write();
            match slots.get(tenant) {
                // Empty (a load in flight, or one that failed) or still fresh: share it.
                Some(slot) if slot.cell.get().is_none_or(|k| self.fresh(k, now)) => slot.clone(),
                _ => {
                    let slot = Arc::new(Slot::default());
                    slots.insert(tenant.clone(), slot.clone());
                    slot
                }
            }
        };
        let mut loaded_here = false;
        let key = slot
            .cell
            .get_or_try_init(|| {
                loaded_here = true;
                async { load().await.map(Arc::new) }
            })
            .await?;
        Ok((key.keys.clone(), !loaded_here))
    }

    /// Forgets the tenant's key on this node, now.
    pub fn purge(&self, tenant: &TenantId) {
        self.slots.write().remove(tenant);
    }

    /// Forgets the tenant's keys if they are still `stale` (and not already reloaded by
    /// another caller): a record from a newer generation than the cached ones.
    pub fn purge_if(&self, tenant: &TenantId, stale: &Arc<TenantKeys>) {
        let mut slots = self.slots.write();
        if slots.get(tenant).and_then(|s| s.cell.get()).is_some_and(|k| Arc::ptr_eq(&k.keys, stale)) {
            slots.remove(tenant);
        }
    }

    /// The tenants with a slot on this node.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.slots.read().keys().cloned().collect()
    }

    /// How many tenants have a key cached (fresh or not yet swept).
    pub fn len(&self) -> usize {
        self.slots.read().values().filter(|s| s.cell.get().is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
