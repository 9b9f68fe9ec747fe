//! What an audit entry tells a webhook endpoint, and how it is signed: no I/O, tested here.
//!
//! The outbox is the audit log (each change writes its entry in its own transaction): an entry
//! of a kind customers care about becomes one event, `evt_{seq}`, whose body follows the
//! Standard Webhooks shape (`type`, `timestamp`, `data`). Signatures follow the Standard
//! Webhooks specification: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{ts}.{body}")>`,
//! one per secret in force (two during a rotation), space-separated.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_store::AuditEntry;
use time::OffsetDateTime;

/// The event an audit entry is, if any.
pub fn event_type(kind: &str, reason: &str) -> Option<&'static str> {
    Some(match (kind, reason) {
        ("transition", "revocation") => "tenant.revoked",
        ("transition", "restoration") => "tenant.restored",
        ("transition", "deadline") => "tenant.destroyed",
        ("transition", "held") => "hold.opened",
        ("transition", "hold_dismissed") => "hold.dismissed",
        ("transition", "hold_cleared") => "hold.cleared",
        ("transition", "hold_released") => "hold.released",
        ("ticket", "restoration_refused") => "restoration.refused",
        ("ticket", "reminder") => "tenant.reminder",
        ("keys", "rotated") => "key.rotated",
        ("keys", "rekeyed") => "key.rekeyed",
        ("webhook", "test") => "webhook.test",
        ("audit", "checkpoint") => "audit.checkpoint",
        _ => return None,
    })
}

/// The body an endpoint receives for an entry: `{"type", "timestamp", "data": {"tenant",
/// "audit_seq", …the entry's detail, "checkpoint"}}`, the checkpoint being the entry signed
/// with the operator's key, when one is configured.
pub fn body(kind: &'static str, entry: &AuditEntry, checkpoint: Option<&crate::audit_signing::Checkpoint>) -> String {
    let mut data = serde_json::from_str::<serde_json::Value>(&entry.detail).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = data.as_object_mut() {
        map.insert("tenant".into(), serde_json::json!(entry.tenant));
        map.insert("audit_seq".into(), serde_json::json!(entry.seq));
        if let Some(checkpoint) = checkpoint {
            map.insert("checkpoint".into(), serde_json::to_value(checkpoint).unwrap_or_default());
        }
    }
    let at = OffsetDateTime::from_unix_timestamp(entry.at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let timestamp = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    serde_json::json!({ "type": kind, "timestamp": timestamp, "data": data }).to_string()
}

/// Why a secret cannot sign.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("a webhook secret is whsec_ followed by base64")]
pub struct BadSecret;

/// The `webhook-signature` header's value for these secrets.
pub fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> Result<String, BadSecret> {
    let signed = format!("{id}.{timestamp}.{body}");
    let mut out = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let raw = secret.strip_prefix("whsec_").ok_or(BadSecret)?;
        let key = zeroize::Zeroizing::new(STANDARD.decode(raw).map_err(|_| BadSecret)?);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), signed.as_bytes());
        out.push(format!("v1,{}", STANDARD.encode(tag.as_ref())));
    }
    Ok(out.join(" "))
}

/// A fresh secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(bytes.as_mut())?;
    Ok(format!("whsec_{}", STANDARD.encode(bytes.as_ref())))
}

/// How long after the `attempts`-th failure to try again: 2^attempts seconds (5 s at first,
/// an hour at most), scaled by `jitter` in [0.5, 1] so endpoints that failed together do not
/// all come back at once.
pub fn backoff(attempts: u32, jitter: f64) -> time::Duration {
    let base = 5.0 * 2f64.powi(i32::try_from(attempts.min(20)).unwrap_or(20));
    time::Duration::seconds_f64(base.min(3600.0) * jitter.clamp(0.5, 1.0))
}

/// How long a delivery is retried before it is dead.
pub const GIVE_UP_AFTER: time::Duration = time::Duration::days(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        // The specification's example (standard-webhooks, libraries' shared test vector).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("sign");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = signature(&[secret, secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("sign");
        assert_eq!(two, format!("{sig} {sig}"));
        assert_eq!(signature(&["nope"], "x", 1, "b"), Err(BadSecret));
    }

    #[test]
    fn only_what_customers_care_about_is_an_event() {
        assert_eq!(event_type("transition", "revocation"), Some("tenant.revoked"));
        assert_eq!(event_type("transition", "deadline"), Some("tenant.destroyed"));
        assert_eq!(event_type("key_use", "probe"), None);
        assert_eq!(event_type("transition", "verified"), None);
        assert_eq!(event_type("transition", "hold_released"), Some("hold.released"));
        assert_eq!(event_type("ticket", "restoration_refused"), Some("restoration.refused"));
        assert_eq!(event_type("ticket", "comment"), None);
        // Every event an endpoint can ask for is one the log can produce, and the other way round.
        let kinds = [
            ("transition", "revocation"),
            ("transition", "restoration"),
            ("transition", "deadline"),
            ("transition", "held"),
            ("transition", "hold_dismissed"),
            ("transition", "hold_cleared"),
            ("transition", "hold_released"),
            ("ticket", "reminder"),
            ("ticket", "restoration_refused"),
            ("keys", "rotated"),
            ("keys", "rekeyed"),
            ("webhook", "test"),
        ];
        let mut produced: Vec<&str> = kinds.iter().filter_map(|(k, r)| event_type(k, r)).collect();
        produced.sort_unstable();
        let mut asked: Vec<&str> = byok_domain::webhook::EVENT_TYPES.to_vec();
        asked.sort_unstable();
        assert_eq!(produced, asked);
    }

    #[test]
    fn backoff_doubles_up_to_an_hour_with_jitter() {
        assert_eq!(backoff(0, 1.0), time::Duration::seconds(5));
        assert_eq!(backoff(3, 1.0), time::Duration::seconds(40));
        assert_eq!(backoff(30, 1.0), time::Duration::hours(1));
        assert_eq!(backoff(3, 0.5), time::Duration::seconds(20));
        assert_eq!(backoff(3, 0.1), time::Duration::seconds(20), "jitter is at least a half");
    }

    #[test]
    fn a_body_carries_the_entrys_detail_tenant_and_sequence() {
        let entry = AuditEntry {
            seq: 42,
            tenant: Some("acme".into()),
            at: 1_800_000_000,
            kind: "transition".into(),
            reason: "revocation".into(),
            detail: r#"{"deadline":1801296000}"#.into(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let v: serde_json::Value = serde_json::from_str(&body("tenant.revoked", &entry, None)).expect("json");
        assert_eq!(v["type"], "tenant.revoked");
        assert_eq!(v["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(
            (v["data"]["tenant"].as_str(), v["data"]["audit_seq"].as_i64(), v["data"]["deadline"].as_i64()),
            (Some("acme"), Some(42), Some(1801296000))
        );
    }
}
