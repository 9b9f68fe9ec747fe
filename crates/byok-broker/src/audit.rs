//! The audit log: append-only and hash-chained. Every entry's hash covers the previous entry's
//! hash and the entry itself, so editing, reordering or deleting an entry breaks the chain from
//! that point on, and [`verify`] names the first entry that does not fit.
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

use aws_lc_rs::digest;
use byok_store::AuditEntry;
use serde::Serialize;

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

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    pub ok: bool,
    pub entries: i64,
    /// The last entry's hash: record it elsewhere to detect a cut-off tail later.
    pub head: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
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
