//! Where the audit log streams to, and in which format (no store, no broker): the sink's
//! target (`file:PATH`, `syslog://HOST:PORT`), an entry as a JSON line and as an RFC 5424
//! message, and appending to a file rotated by size. The `audit_sink` module runs the rounds.

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
}

/// Why a sink setting does not parse, or a round failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("--audit-sink is file:PATH or syslog://HOST:PORT (TCP), not {0}")]
    BadTarget(String),
    #[error("the audit sink {sink}: {source}")]
    Io {
        sink: String,
        #[source]
        source: std::io::Error,
    },
}

impl SinkTarget {
    /// `file:PATH` or `syslog://HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, SinkError> {
        let bad = || SinkError::BadTarget(text.to_string());
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

    /// The sink's name, its cursor's key in the store.
    pub fn name(&self) -> String {
        match self {
            Self::File { path, .. } => format!("file:{}", path.display()),
            Self::Syslog { host, port } => format!("syslog://{host}:{port}"),
        }
    }
}

/// One entry as a JSON line (the file's format, and the syslog message's body).
pub fn json_line(entry: &AuditEntry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
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
        for bad in ["syslog://host", "udp://x:1", "file:", "syslog://:514"] {
            assert!(SinkTarget::parse(bad).is_err(), "{bad}");
        }
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
