//! Where the audit log streams to, and in which format (no store, no broker): the sink's
//! target (`file:PATH`, `syslog://HOST:PORT`, `https://…`), an entry as a JSON line, as an RFC
//! 5424 message and a batch as a signed webhook body, and appending to a file rotated by size.
//! The `audit_sink` module runs the rounds.

use std::io::Write;
use std::path::PathBuf;

use byok_store::AuditEntry;

/// The syslog message's structured-data id: `byok` under the IANA example enterprise number.
const SD_ID: &str = "byok@32473";

/// Where the audit log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// JSON lines appended to `path`; at `max_bytes` it is rotated to `path.1` (… `path.{keep}`).
    File { path: PathBuf, max_bytes: u64, keep: usize },
    /// RFC 5424 messages over TCP to `host:port`.
    Syslog { host: String, port: u16 },
    /// Each batch POSTed to `url` as an `audit.entries` webhook, signed as Standard Webhooks
    /// says with `secret` (`whsec_…`).
    Webhook { url: String, secret: SinkSecret },
}

/// A webhook sink's signing secret: redacted in `Debug`, zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SinkSecret(zeroize::Zeroizing<String>);

impl SinkSecret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("** redacted **")
    }
}

/// Why a sink setting does not parse, or a round failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("--audit-sink is file:PATH, syslog://HOST:PORT (TCP) or https://HOST/PATH (http:// only to this machine), not {0}")]
    BadTarget(String),
    #[error("an https:// audit sink needs --audit-sink-secret whsec_… (BYOK_AUDIT_SINK_SECRET): its receiver verifies each batch with it")]
    NoSecret,
    #[error("the audit sink {sink} answered {status}")]
    Refused { sink: String, status: u16 },
    #[error("the audit sink {sink}: {source}")]
    Io {
        sink: String,
        #[source]
        source: std::io::Error,
    },
}

impl SinkTarget {
    /// `file:PATH`, `syslog://HOST:PORT` or `http(s)://…` (a webhook sink: its secret comes
    /// with [`Self::with_secret`]).
    pub fn parse(text: &str) -> Result<Self, SinkError> {
        let bad = || SinkError::BadTarget(text.to_string());
        if text.starts_with("https://") || text.starts_with("http://") {
            let uri: http::Uri = text.parse().map_err(|_| bad())?;
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            // The log leaves encrypted: plain HTTP only to this machine (a local collector).
            let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if host.is_empty() || (uri.scheme_str() == Some("http") && !loopback) {
                return Err(bad());
            }
            return Ok(Self::Webhook { url: text.to_string(), secret: SinkSecret(zeroize::Zeroizing::new(String::new())) });
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Self::File { path: PathBuf::from(path), max_bytes: 64 << 20, keep: 8 });
        }
        let authority = text.strip_prefix("syslog://").ok_or_else(bad)?.trim_end_matches('/');
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self::Syslog { host: host.trim_matches(['[', ']']).to_string(), port })
    }

    /// A webhook sink with its secret (required, `whsec_` and base64); other sinks take none.
    pub fn with_secret(self, secret: Option<&str>) -> Result<Self, SinkError> {
        match self {
            Self::Webhook { url, .. } => {
                let secret = secret.filter(|s| crate::webhook_events::signature(&[s], "x", 0, "").is_ok()).ok_or(SinkError::NoSecret)?;
                Ok(Self::Webhook { url, secret: SinkSecret(zeroize::Zeroizing::new(secret.to_string())) })
            }
            other => Ok(other),
        }
    }

    /// The sink's name, its cursor's key in the store.
    pub fn name(&self) -> String {
        match self {
            Self::File { path, .. } => format!("file:{}", path.display()),
            Self::Syslog { host, port } => format!("syslog://{host}:{port}"),
            Self::Webhook { url, .. } => url.clone(),
        }
    }
}

/// One entry as a JSON line (the file's format, and the syslog message's body).
pub fn json_line(entry: &AuditEntry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}

/// A batch as a webhook body: `{"type": "audit.entries", "timestamp", "data": {"entries": […]}}`,
/// the entries in order as the log holds them; its id is `audit_{first}_{last}` (the same on
/// every retry: receivers de-duplicate on it, or on each entry's `seq`).
pub fn webhook_batch(entries: &[AuditEntry], now: time::OffsetDateTime) -> (String, String) {
    let first = entries.first().map_or(0, |e| e.seq);
    let last = entries.last().map_or(0, |e| e.seq);
    let timestamp = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let body = serde_json::json!({ "type": "audit.entries", "timestamp": timestamp, "data": { "entries": entries } });
    (format!("audit_{first}_{last}"), body.to_string())
}

/// `s` as an RFC 5424 structured-data parameter value (`"`, `\` and `]` escaped).
fn param(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]")
}

/// One entry as an RFC 5424 message: facility log audit (13), severity informational (6);
/// the entry's time, `hostname`, app `byok`, message id the entry's kind; its sequence
/// number, tenant, reason and hash as structured data; the JSON line as the message.
pub fn syslog_message(entry: &AuditEntry, hostname: &str) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(entry.at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let timestamp = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "-".into());
    let ascii = |s: &str, max: usize| -> String {
        let kept: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
        if kept.is_empty() { "-".into() } else { kept }
    };
    format!(
        "<110>1 {timestamp} {host} byok - {msgid} [{SD_ID} seq=\"{seq}\" tenant=\"{tenant}\" reason=\"{reason}\" hash=\"{hash}\"] {body}",
        host = ascii(hostname, 255),
        msgid = ascii(&entry.kind, 32),
        seq = entry.seq,
        tenant = param(entry.tenant.as_deref().unwrap_or("-")),
        reason = param(&entry.reason),
        hash = entry.hash,
        body = json_line(entry),
    )
}

/// Appends `lines` to the file, rotating it first if it would pass its size, and syncs it.
pub fn append_file(path: &std::path::Path, max_bytes: u64, keep: usize, lines: &str) -> std::io::Result<()> {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size > 0 && size + lines.len() as u64 > max_bytes {
        let rotated = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        let _ = std::fs::remove_file(rotated(keep.max(1)));
        for n in (1..keep.max(1)).rev() {
            if rotated(n).exists() {
                std::fs::rename(rotated(n), rotated(n + 1))?;
            }
        }
        std::fs::rename(path, rotated(1))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(lines.as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> AuditEntry {
        AuditEntry {
            seq,
            tenant: Some("acme".into()),
            at: 1_800_000_000,
            kind: "transition".into(),
            reason: "revo\"cation]".into(),
            detail: "{\"x\":1}".into(),
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
        }
    }

    #[test]
    fn targets_parse_and_messages_follow_rfc_5424() {
        assert_eq!(SinkTarget::parse("syslog://127.0.0.1:514").expect("syslog").name(), "syslog://127.0.0.1:514");
        assert!(matches!(SinkTarget::parse("file:/var/log/byok/audit.jsonl"), Ok(SinkTarget::File { .. })));
        for bad in ["syslog://host", "udp://x:1", "file:", "syslog://:514", "https://", "http://siem.example/byok"] {
            assert!(SinkTarget::parse(bad).is_err(), "{bad}");
        }
        assert!(SinkTarget::parse("http://127.0.0.1:9000/audit").is_ok(), "plain HTTP to a local collector");
        let hook = SinkTarget::parse("https://siem.example/byok").expect("webhook");
        assert!(matches!(hook.clone().with_secret(None), Err(SinkError::NoSecret)));
        assert!(matches!(hook.clone().with_secret(Some("not-a-secret")), Err(SinkError::NoSecret)));
        let hook = hook.with_secret(Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).expect("with its secret");
        assert_eq!(hook.name(), "https://siem.example/byok");
        assert!(!format!("{hook:?}").contains("whsec_"), "redacted: {hook:?}");
        let (id, body) = webhook_batch(&[entry(7), entry(8)], time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(id, "audit_7_8");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!((body["type"].as_str(), body["data"]["entries"][1]["seq"].as_i64()), (Some("audit.entries"), Some(8)));
        let m = syslog_message(&entry(7), "node a");
        assert!(m.starts_with("<110>1 2027-01-15T08:00:00Z nodea byok - transition [byok@32473 seq=\"7\" tenant=\"acme\""), "{m}");
        assert!(m.contains("reason=\"revo\\\"cation\\]\""), "escaped: {m}");
        assert!(m.ends_with(&json_line(&entry(7))), "{m}");
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_so_many() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let line = json_line(&entry(1)) + "\n";
        for _ in 0..40 {
            append_file(&path, 4 * line.len() as u64, 2, &line).expect("append");
        }
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
        assert!(std::fs::metadata(&path).expect("size").len() <= 4 * line.len() as u64);
    }
}
