//! The audit log: append-only and hash-chained. Every entry's hash covers the previous entry's
//! hash and the entry itself, so editing, reordering or deleting an entry breaks the chain from
//! that point on, and [`Broker::verify_audit`](crate::Broker::verify_audit) names the first entry that does not fit.
//!
//! What is recorded: every use of a customer's key with its reason (`data`, `probe`,
//! `restore`, `onboard`), every lifecycle transition, every ticket event. The reason also
//! reaches the customer's own CloudTrail as the STS role session name (`byok-data`, …).
//!
//! Transitions are written in the same transaction as the state change they record (the store
//! chains them), so a crash cannot leave a transition unaudited.
//!
//! Limits: a chain alone cannot show that its newest entries were cut off; keep the latest
//! hash (`head` in `GET /v1/audit/verify`) somewhere else to detect that.

use crate::outcomes::ChainCheck;
use aws_lc_rs::digest;
use byok_domain::TenantId;
use byok_kms::Purpose;
use byok_store::AuditEntry;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{AuditEvent, TransitionReason};
use crate::probe_summaries::{ProbeSummary, SummaryKey};

/// Entries per page of an audit export (each page one store query, one chunk of the answer).
pub const EXPORT_PAGE: i64 = 1000;

impl Broker {
    /// Counts a routine successful probe; when the hour turns, the previous hour's summary row
    /// waits for [`Self::write_finished_summaries`] (in batches, after the pass). Every decision, denial, data-path unwrap and ticket event is still written in full;
    /// the detail of each routine probe stays in the metrics and the customer's CloudTrail.
    pub(crate) fn summarize_probe(&self, tenant: &TenantId, region: &str) {
        self.probe_summaries.count(tenant, region, self.clock.now().unix_timestamp());
    }

    /// Writes the summaries of hours that have ended (the monitor calls it after each pass),
    /// a thousand rows to a transaction.
    pub async fn write_finished_summaries(&self) {
        let finished = self.probe_summaries.take_finished();
        self.write_summaries(finished).await;
    }

    async fn write_summaries(&self, summaries: Vec<(SummaryKey, ProbeSummary)>) {
        let at = self.clock.now().unix_timestamp();
        let event = AuditEvent::KeyUse(Purpose::Probe);
        for chunk in summaries.chunks(1000) {
            let rows: Vec<(String, String)> = chunk
                .iter()
                .map(|((tenant, region), s)| {
                    let detail = serde_json::json!({
                        "region": region,
                        "access": { "result": "ok" },
                        "session": Purpose::Probe.session_name(),
                        "summary": { "count": s.count, "first": s.first, "last": s.last },
                    });
                    (tenant.to_string(), detail.to_string())
                })
                .collect();
            let seals: Vec<_> = rows
                .iter()
                .map(|(tenant, detail)| move |seq: i64, prev: &str| seal(seq, prev, Some(tenant), at, event.kind(), event.reason(), detail))
                .collect();
            let refs: Vec<byok_store::Seal<'_>> = seals.iter().map(|s| s as byok_store::Seal<'_>).collect();
            if let Err(e) = self.store.append_audit_many(&refs).await {
                tracing::error!(error = %e, rows = rows.len(), "could not write probe summaries to the audit log");
            }
        }
    }

    /// Writes every pending probe summary, hours ended or not (on shutdown, and before
    /// exporting the log).
    pub async fn flush_probe_summaries(&self) {
        let pending = self.probe_summaries.take_all();
        self.write_summaries(pending).await;
    }

    /// Appends to the audit log. A failure is logged, not returned: the operation it records
    /// already happened (the operator's log then holds the entry that is missing).
    pub(crate) async fn audit(&self, tenant: Option<&TenantId>, event: AuditEvent, detail: serde_json::Value) {
        let at = self.clock.now().unix_timestamp();
        let detail = detail.to_string();
        let tenant = tenant.map(|t| t.to_string());
        let (kind, reason) = (event.kind(), event.reason());
        let seal = |seq: i64, prev: &str| seal(seq, prev, tenant.as_deref(), at, kind, reason, &detail);
        if let Err(e) = self.store.append_audit(&seal).await {
            tracing::error!(error = %e, kind, reason, detail = %detail, "could not append to the audit log");
        }
    }

    /// Records one use of the customer's key (`operation` in `region`, for `purpose`) and its
    /// outcome, with any extra detail (the generation).
    pub(crate) async fn audit_key_use<T>(
        &self,
        tenant: &TenantId,
        purpose: Purpose,
        region: &byok_domain::Region,
        operation: &str,
        result: &Result<T, byok_kms::AccessError>,
        generation: u32,
    ) {
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let detail = serde_json::json!({
            "region": region, "operation": operation, "generation": generation, "session": purpose.session_name(), "outcome": outcome,
        });
        self.audit(Some(tenant), AuditEvent::KeyUse(purpose), detail).await;
    }

    /// A transition's audit entry, for the store to chain and write in the transition's own
    /// transaction (so a crash cannot leave a transition unaudited).
    pub(crate) fn transition_seal(
        &self,
        tenant: &TenantId,
        reason: TransitionReason,
        detail: serde_json::Value,
    ) -> impl for<'p> Fn(i64, &'p str) -> AuditEntry + Send + Sync + use<> {
        self.event_seal(tenant, AuditEvent::Transition(reason), detail)
    }

    /// An entry for the store to chain and write in the transaction of the change it records.
    pub(crate) fn event_seal(
        &self,
        tenant: &TenantId,
        event: AuditEvent,
        detail: serde_json::Value,
    ) -> impl for<'p> Fn(i64, &'p str) -> AuditEntry + Send + Sync + use<> {
        let at = self.clock.now().unix_timestamp();
        let tenant = tenant.to_string();
        let detail = detail.to_string();
        move |seq, prev: &str| seal(seq, prev, Some(&tenant), at, event.kind(), event.reason(), &detail)
    }

    /// Every kept entry older than `before`, in order (an export: JSON lines, then
    /// [`Self::prune_audit`] with the last one's sequence number and hash), gathered in memory;
    /// the API streams the same pages instead ([`Self::export_audit_start`],
    /// [`Self::export_audit_page`]).
    pub async fn export_audit(&self, before: time::OffsetDateTime) -> Result<Vec<AuditEntry>, BrokerError> {
        let mut after = self.export_audit_start().await?;
        let mut out = Vec::new();
        loop {
            let (page, more) = self.export_audit_page(before, after).await?;
            after = page.last().map_or(after, |e| e.seq);
            out.extend(page);
            if !more {
                return Ok(out);
            }
        }
    }

    /// Where an export starts: pending probe summaries are written first, and the entries come
    /// after the last checkpoint (the last pruned entry).
    pub async fn export_audit_start(&self) -> Result<i64, BrokerError> {
        self.flush_probe_summaries().await;
        Ok(self.store.audit_checkpoint().await?.map_or(0, |(seq, _)| seq))
    }

    /// One page of an export: the entries after `after` older than `before` (at most
    /// [`EXPORT_PAGE`]), and whether another page may follow.
    pub async fn export_audit_page(&self, before: time::OffsetDateTime, after: i64) -> Result<(Vec<AuditEntry>, bool), BrokerError> {
        let page = self.store.audit(None, after, EXPORT_PAGE).await?;
        let full = page.len() as i64 == EXPORT_PAGE;
        let older: Vec<_> = page.into_iter().take_while(|e| e.at < before.unix_timestamp()).collect();
        let more = full && older.len() as i64 == EXPORT_PAGE;
        Ok((older, more))
    }

    /// Prunes every entry through `through`, whose hash the caller gives as proof it holds the
    /// export; the chain then verifies from this checkpoint.
    pub async fn prune_audit(&self, through: i64, hash: &str) -> Result<usize, BrokerError> {
        // The audit log is the webhooks' outbox: entries the dispatcher has not read yet stay.
        let dispatched = self.store.webhook_cursor().await?;
        if through > dispatched {
            return Err(BrokerError::Invalid(format!(
                "entries after {dispatched} are not yet turned into webhook events (the leader's dispatcher is behind): prune through {dispatched} at most, or wait"
            )));
        }
        // Nor what the streaming sink has not taken yet.
        if let Some(sink) = &self.audit_sink {
            let shipped = self.store.sink_cursor(&sink.name()).await?;
            if through > shipped {
                return Err(BrokerError::Invalid(format!(
                    "entries after {shipped} are not yet delivered to the audit sink {} (it is down or behind): prune through {shipped} at most, or wait",
                    sink.name()
                )));
            }
        }
        self.store.prune_audit(through, hash, self.clock.now()).await?.ok_or(BrokerError::AuditMismatch { through })
    }

    /// Audit entries of one tenant (or all), after `after`, at most `limit`.
    pub async fn audit_log(&self, tenant: Option<&TenantId>, after: i64, limit: i64) -> Result<Vec<AuditEntry>, BrokerError> {
        Ok(self.store.audit(tenant, after, limit.clamp(1, 10_000)).await?)
    }

    /// One tenant's entries matching `filter`, newest first, before `before` (keyset paging).
    pub async fn audit_page(
        &self,
        tenant: &TenantId,
        filter: &byok_store::AuditFilter,
        before: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, BrokerError> {
        Ok(self.store.audit_page(tenant, filter, before, limit.clamp(1, 1_000)).await?)
    }

    /// One tenant's key uses in `[from, to)` per `bucket` seconds and reason, counted by the store.
    pub async fn key_use_counts(&self, tenant: &TenantId, from: i64, to: i64, bucket: i64) -> Result<Vec<(i64, String, i64)>, BrokerError> {
        Ok(self.store.key_use_counts(tenant, from, to, bucket).await?)
    }

    /// Signs audit checkpoints with `signer` from now on (see [`crate::audit_signing`]).
    pub fn with_audit_signer(mut self, signer: crate::audit_signing::AuditSigner) -> Self {
        self.audit_signer = Some(std::sync::Arc::new(signer));
        self
    }

    /// The key id checkpoints are signed with, if any.
    pub fn audit_signing_key_id(&self) -> Option<&str> {
        self.audit_signer.as_deref().map(crate::audit_signing::AuditSigner::key_id)
    }

    /// A tenant's entry, signed: the checkpoint its event carries to the customer.
    pub fn checkpoint_of(&self, entry: &AuditEntry) -> Option<crate::audit_signing::Checkpoint> {
        let (signer, tenant) = (self.audit_signer.as_ref()?, entry.tenant.as_deref()?);
        Some(signer.sign(tenant, entry.seq, &entry.hash, self.clock.now()))
    }

    /// A checkpoint of the tenant's newest entry, signed now (`None` if it has no entry, or no
    /// key is configured).
    pub async fn audit_checkpoint(&self, tenant: &TenantId) -> Result<Option<crate::audit_signing::Checkpoint>, BrokerError> {
        if self.audit_signer.is_none() {
            return Ok(None);
        }
        Ok(self.store.newest_audit(tenant).await?.and_then(|entry| self.checkpoint_of(&entry)))
    }

    /// Checks the whole chain kept, from the last checkpoint if older entries were pruned.
    pub async fn verify_audit(&self) -> Result<ChainCheck, BrokerError> {
        let checkpoint = self.store.audit_checkpoint().await?;
        let mut verifier = match &checkpoint {
            Some((seq, hash)) => Verifier::from_checkpoint(*seq, hash),
            None => Verifier::new(),
        };
        let mut after = checkpoint.map_or(0, |(seq, _)| seq);
        loop {
            let page = self.store.audit(None, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            page.iter().for_each(|e| verifier.feed(e));
        }
        Ok(verifier.finish())
    }
}

/// The entry's hash: SHA-256 over the previous hash and the entry's fields, JSON-encoded as
/// one array (unambiguous: every field is quoted or numeric).
pub fn hash(prev_hash: &str, seq: i64, tenant: Option<&str>, at: i64, kind: &str, reason: &str, detail: &str) -> String {
    let fields = serde_json::json!([seq, tenant, at, kind, reason, detail]).to_string();
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    ctx.update(fields.as_bytes());
    hex::encode(ctx.finish())
}

/// Builds the entry for sequence number `seq` after `prev_hash`.
pub fn seal(seq: i64, prev_hash: &str, tenant: Option<&str>, at: i64, kind: &str, reason: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        seq,
        tenant: tenant.map(str::to_string),
        at,
        kind: kind.to_string(),
        reason: reason.to_string(),
        detail: detail.to_string(),
        prev_hash: prev_hash.to_string(),
        hash: hash(prev_hash, seq, tenant, at, kind, reason, detail),
    }
}

/// Checks entries given in stored order (by `seq`), continuing from `state`.
#[derive(Debug, Default)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    count: i64,
    bad: Option<(i64, String)>,
}

impl Verifier {
    pub fn new() -> Self {
        Self { expected_seq: 1, ..Self::default() }
    }

    /// Continues a chain whose entries up to `seq` (ending with `hash`) were exported and pruned.
    pub fn from_checkpoint(seq: i64, hash: &str) -> Self {
        Self { expected_seq: seq + 1, prev_hash: hash.to_string(), ..Self::default() }
    }

    pub fn feed(&mut self, e: &AuditEntry) {
        if self.bad.is_some() {
            return;
        }
        self.count += 1;
        let problem = if e.seq != self.expected_seq {
            Some(format!("entry {} follows entry {}: entries are missing or out of order", e.seq, self.expected_seq - 1))
        } else if e.prev_hash != self.prev_hash {
            Some(format!("entry {} does not point at the entry before it: an entry was removed, reordered or edited", e.seq))
        } else if e.hash != hash(&e.prev_hash, e.seq, e.tenant.as_deref(), e.at, &e.kind, &e.reason, &e.detail) {
            Some(format!("entry {} was altered after it was written", e.seq))
        } else {
            None
        };
        if let Some(p) = problem {
            self.bad = Some((e.seq, p));
            return;
        }
        self.expected_seq = e.seq + 1;
        self.prev_hash = e.hash.clone();
    }

    pub fn finish(self) -> ChainCheck {
        match self.bad {
            None => ChainCheck { ok: true, entries: self.count, head: self.prev_hash, first_bad: None, problem: None },
            Some((seq, problem)) => {
                ChainCheck { ok: false, entries: self.count, head: self.prev_hash, first_bad: Some(seq), problem: Some(problem) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_default();
            out.push(seal(seq, &prev, Some("acme"), 1_800_000_000 + seq, "key_use", "probe", "{}"));
        }
        out
    }

    fn check(entries: &[AuditEntry]) -> ChainCheck {
        let mut v = Verifier::new();
        entries.iter().for_each(|e| v.feed(e));
        v.finish()
    }

    #[test]
    fn edits_reorders_and_deletions_are_caught() {
        let good = chain(5);
        assert!(check(&good).ok);
        let mut edited = good.clone();
        edited[2].detail = "{\"forged\":true}".into();
        assert_eq!(check(&edited).first_bad, Some(3));
        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(check(&deleted).first_bad, Some(3));
        let mut renumbered = deleted.clone();
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(check(&renumbered).first_bad, Some(2), "renumbering does not hide a deletion");
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert!(!check(&reordered).ok);
        let mut rehashed = good.clone();
        rehashed[4].reason = "data".into();
        rehashed[4].hash = hash(&rehashed[4].prev_hash, 5, Some("acme"), rehashed[4].at, "key_use", "data", "{}");
        assert!(check(&rehashed).ok, "the last entry can be rewritten consistently: why the head hash must be kept elsewhere");
        assert_ne!(check(&rehashed).head, check(&good).head, "but the head hash changes");
    }
}
