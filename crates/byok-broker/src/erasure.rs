//! Proving erasures. Destruction, shredding and rekey delete wrapped keys in their own
//! transaction and record that the erasure is still to be proven; here the store is asked to
//! prove it (no copy left in the live database's files: see
//! [`byok_store::KeyStore::prove_erasures`]). Each proven erasure is audited as `keys`/`erased`;
//! one that cannot be proven (an old snapshot open: a long report, a running `pg_dump`, a
//! replication slot) stays pending, is tried again after each change and on every leader pass,
//! and after [`ALERT_AFTER`] failed tries in a row opens the `erasure_pending` alert. Nothing
//! says "erased" before the proof.

use byok_domain::AlertKind;
use serde_json::json;

use crate::broker::Broker;
use crate::events::{AuditEvent, KeyEvent};

/// Failed proofs in a row before the operator is alerted (a pass a minute: a few minutes).
pub const ALERT_AFTER: u32 = 5;

impl Broker {
    /// Proves what erasures are pending; returns how many are still unproven.
    pub async fn prove_erasures(&self) -> usize {
        let proof = match self.store.prove_erasures().await {
            Ok(proof) => proof,
            Err(e) => {
                tracing::error!(error = %e, "could not prove pending erasures");
                return usize::MAX;
            }
        };
        for erased in &proof.proven {
            self.audit(Some(&erased.tenant), AuditEvent::Keys(KeyEvent::Erased), json!({ "what": erased.what })).await;
        }
        let now = self.clock.now();
        if proof.pending.is_empty() {
            self.erasure_attempts.reset();
            match self.store.resolve_alert(AlertKind::ErasurePending, now).await {
                Ok(Some(alert)) => tracing::warn!(alert = alert.id, "resolved: {}", alert.title),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "could not resolve the erasure alert"),
            }
            return 0;
        }
        let reason = proof.reason.unwrap_or_default();
        let tries = self.erasure_attempts.failed();
        tracing::warn!(pending = proof.pending.len(), tries, reason = %reason, "erasure not proven yet; tried again next pass");
        if tries >= ALERT_AFTER {
            let tenants: Vec<&str> = proof.pending.iter().map(|e| e.tenant.as_str()).collect();
            let title = format!("{} erasures of wrapped keys not proven", proof.pending.len());
            let body = format!(
                "Wrapped keys of {} were deleted, but the database may still hold copies: {reason}. Until that ends, a copy of the \
                 database's files could bring them back; byok does not report them erased. End the long transaction (or drop the \
                 stale replication slot); byok proves the erasure on its next pass.",
                tenants.join(", ")
            );
            match self.store.open_alert(AlertKind::ErasurePending, &title, &body, now).await {
                Ok(Some(_)) => tracing::error!(pending = proof.pending.len(), "ERASURE NOT PROVEN: {reason}"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "could not open the erasure alert"),
            }
        }
        proof.pending.len()
    }
}
