//! Checkpoints a customer keeps: every [`crate::BrokerConfig::checkpoint_interval`] (an hour by
//! default) the leader writes, for each tenant whose history grew since its last checkpoint, an
//! `audit.checkpoint` entry; the webhook dispatcher sends it to the tenant's endpoints with the
//! entry signed by the operator's key ([`crate::audit_signing`]) — the chain head as of then. A
//! later rewrite of that history contradicts what the customer holds
//! (`byok audit verify --checkpoint FILE`). Customer-facing events carry a checkpoint of their
//! own as they happen.
//!
//! What if this fails for every tenant at once (the store down)? Nothing is lost: the round is
//! tried again at the next interval, and no customer is told anything meanwhile.

use serde_json::json;

use crate::broker::Broker;
use crate::events::AuditEvent;

impl Broker {
    /// A round of checkpoints, when one is due on this node and a signing key is configured:
    /// how many tenants got one. Called by the leader's monitor pass.
    pub async fn checkpoints_due(&self) -> usize {
        if self.audit_signer.is_none() {
            return 0;
        }
        let now = self.clock.now();
        {
            // The first round comes an interval after the node started leading work, not at
            // once: a restart does not send every customer a checkpoint.
            let mut last = self.last_checkpoints.lock();
            match *last {
                None => {
                    *last = Some(now);
                    return 0;
                }
                Some(t) if now - t < self.config.checkpoint_interval => return 0,
                Some(_) => *last = Some(now),
            }
        }
        let tenants = match self.tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "audit checkpoints: cannot list tenants; trying again next round");
                return 0;
            }
        };
        let mut written = 0;
        for tenant in tenants.iter().filter(|t| !matches!(t.state, byok_domain::TenantState::Destroyed { .. })) {
            match self.store.newest_audit(&tenant.id).await {
                // Nothing new since the last checkpoint (or nothing at all): nothing to sign.
                Ok(None) => {}
                Ok(Some(newest)) if newest.kind == "audit" && newest.reason == "checkpoint" => {}
                Ok(Some(newest)) => {
                    self.audit(Some(&tenant.id), AuditEvent::Checkpoint, json!({ "through_seq": newest.seq })).await;
                    written += 1;
                }
                Err(e) => tracing::error!(tenant = %tenant.id, error = %e, "audit checkpoint: cannot read the newest entry"),
            }
        }
        written
    }
}
