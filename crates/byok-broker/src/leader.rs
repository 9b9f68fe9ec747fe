//! Leadership among nodes sharing one store: one node at a time runs the monitor, the deadline
//! sweeper, reminders and reconciliation; every node serves the data plane and the API. The lease
//! is a row judged by the database's clock (PostgreSQL), as Vault's and OpenBao's HA backends
//! do; on SQLite the only node always leads.
//!
//! Safety: a node counts itself leader until `started + 80 % of the TTL` on its own monotonic
//! clock, where `started` is before it asked the database. The database's `valid_until` is at
//! least `started + TTL`, so a node stops its leader work before anyone else can take over.

use std::time::Instant;

use crate::broker::Broker;

impl Broker {
    /// Takes or renews the lease; whether this node leads now. A store it cannot reach renews
    /// nothing: the node keeps leading only until its current bound runs out.
    pub async fn renew_leadership(&self) -> bool {
        let started = Instant::now();
        let ttl = self.config.lease_ttl;
        match self.store.acquire_lease(&self.config.node_id, ttl).await {
            Ok(Some(_)) => {
                let was = self.is_leader();
                *self.leader_until.lock() = Some(started + ttl.mul_f64(0.8));
                if !was {
                    tracing::warn!(node = %self.config.node_id, "this node now leads: it runs the monitor and the sweeper");
                }
            }
            Ok(None) => {
                if self.is_leader() {
                    tracing::warn!(node = %self.config.node_id, "another node took the lease: leader work stops here");
                }
                *self.leader_until.lock() = None;
            }
            Err(e) => tracing::error!(error = %e, "cannot renew the leader lease: the store is unreachable"),
        }
        let leads = self.is_leader();
        self.metrics.leader.set(i64::from(leads));
        leads
    }

    /// Whether this node may do leader work right now.
    pub fn is_leader(&self) -> bool {
        self.leader_until.lock().is_some_and(|until| Instant::now() < until)
    }

    /// Who leads, as the store says (`None` on a single-node store: this node).
    pub async fn leader(&self) -> Option<String> {
        match self.store.lease_holder().await {
            Ok(Some((holder, _))) => Some(holder),
            Ok(None) => self.is_leader().then(|| self.config.node_id.clone()),
            Err(_) => None,
        }
    }

    /// Gives the lease up on shutdown, so that another node takes over at once.
    pub async fn release_leadership(&self) {
        *self.leader_until.lock() = None;
        self.metrics.leader.set(0);
        if let Err(e) = self.store.release_lease(&self.config.node_id).await {
            tracing::warn!(error = %e, "could not release the leader lease (it will lapse)");
        }
    }
}
