//! `byok audit`: list entries, verify the hash chain, export and prune.

use std::io::Write;

use byok_api as api;
use clap::Subcommand;

use crate::client::Client;
use crate::error::CliError;
use crate::routes;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// A tenant's entries.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Check the whole chain; fails if an entry was edited, reordered or deleted. With
    /// --checkpoint, check the log against a signed checkpoint instead (a tenant admin's token
    /// suffices): its signature, and that the log still holds that entry with that hash.
    Verify {
        /// A checkpoint: `byok audit checkpoint`'s output, or a webhook event carrying one.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// The tenant's newest entry signed with the operator's key (JSON): keep it, and check the
    /// log against it later with `byok audit verify --checkpoint FILE`.
    Checkpoint {
        #[arg(long)]
        tenant: String,
    },
    /// Write every entry older than --before as JSON lines (stdout); with --prune, then prune
    /// them from the store (the chain verifies from the checkpoint: the last entry's hash).
    Export {
        /// RFC 3339 (2026-11-01T00:00:00Z).
        #[arg(long)]
        before: String,
        #[arg(long)]
        prune: bool,
    },
}

pub(crate) async fn run(client: Client, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::List { tenant, after } => {
            let entries: Vec<api::AuditEntry> = client.audit(&tenant, after).await?;
            for e in entries {
                println!("{:>6} {} {:<10} {:<12} {}", e.seq, e.at, e.kind, e.reason, e.detail);
            }
            Ok(())
        }
        AuditCommand::Export { before, prune } => {
            // Streamed to stdout as it arrives: only the line being read and the last complete
            // one (what a prune names) are held.
            let mut out = std::io::stdout().lock();
            let mut lines = LastLine::default();
            let answer = client
                .stream(&routes::audit_export_path(&before), |chunk| {
                    out.write_all(chunk)?;
                    lines.feed(chunk);
                    Ok(())
                })
                .await?;
            if answer.status != 200 {
                return Err(answer.error());
            }
            out.flush().map_err(CliError::io("cannot write the export"))?;
            let last: Option<api::AuditEntry> = serde_json::from_slice(&lines.last).ok();
            match (prune, last) {
                (true, Some(last)) => {
                    let pruned = client.audit_prune(last.seq, &last.hash).await?;
                    eprintln!("pruned {} entries through {} (checkpoint hash {})", pruned["pruned"], last.seq, last.hash);
                }
                (true, None) => eprintln!("nothing older than {before}: nothing pruned"),
                (false, _) => {}
            }
            Ok(())
        }
        AuditCommand::Checkpoint { tenant } => {
            println!("{}", super::pretty(&client.audit_checkpoint(&tenant).await?));
            Ok(())
        }
        AuditCommand::Verify { checkpoint: Some(path) } => verify_checkpoint(&client, &path).await,
        AuditCommand::Verify { checkpoint: None } => {
            let answer = client.audit_verify().await?;
            match answer.status {
                200 | 409 => {
                    let check: api::ChainCheck = answer.json()?;
                    if check.ok {
                        println!("audit log intact: {} entries, head {}", check.entries, check.head);
                        Ok(())
                    } else {
                        Err(CliError::AuditBroken {
                            first_bad: check.first_bad.unwrap_or_default(),
                            problem: check.problem.unwrap_or_default(),
                        })
                    }
                }
                _ => Err(answer.error()),
            }
        }
    }
}

/// Checks the log against a signed checkpoint: the signature first (offline), then that the
/// tenant's log still holds that entry with that hash.
async fn verify_checkpoint(client: &Client, path: &std::path::Path) -> Result<(), CliError> {
    use byok_broker::audit_signing::Checkpoint;
    let text = std::fs::read_to_string(path).map_err(CliError::io(format!("cannot read {}", path.display())))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CliError::Config(format!("{} is not JSON: {e}", path.display())))?;
    // A checkpoint alone, or a webhook event whose data carries one.
    let found = if value.get("signature").is_some() { value } else { value["data"]["checkpoint"].clone() };
    let checkpoint: Checkpoint =
        serde_json::from_value(found).map_err(|e| CliError::Config(format!("{} holds no audit checkpoint: {e}", path.display())))?;
    checkpoint.verify().map_err(|e| CliError::CheckpointContradicted(e.to_string()))?;
    let entries = client.audit_from(&checkpoint.tenant, checkpoint.seq, 1).await?;
    match entries.first() {
        Some(e) if e.seq == checkpoint.seq && e.hash == checkpoint.hash => {
            println!(
                "checkpoint holds: the log has entry {} of tenant {} with the hash key {} signed on {}",
                checkpoint.seq, checkpoint.tenant, checkpoint.key_id, checkpoint.signed_at
            );
            Ok(())
        }
        Some(e) if e.seq == checkpoint.seq => Err(CliError::CheckpointContradicted(format!(
            "entry {} of tenant {} now has the hash {}, but key {} signed {} for it on {}: the log was rewritten",
            e.seq, checkpoint.tenant, e.hash, checkpoint.key_id, checkpoint.hash, checkpoint.signed_at
        ))),
        _ => Err(CliError::CheckpointContradicted(format!(
            "entry {} of tenant {} is not in the log (deleted, or pruned after an export: compare with the export)",
            checkpoint.seq, checkpoint.tenant
        ))),
    }
}

/// The last complete line of a stream read in chunks that split lines anywhere: all a prune
/// needs of an export, without holding the rest.
#[derive(Debug, Default)]
struct LastLine {
    partial: Vec<u8>,
    last: Vec<u8>,
}

impl LastLine {
    fn feed(&mut self, chunk: &[u8]) {
        self.partial.extend_from_slice(chunk);
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            let complete = &self.partial[..end];
            let start = complete.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            self.last = complete[start..].to_vec();
            self.partial.drain(..=end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LastLine;

    #[test]
    fn the_last_complete_line_whatever_the_chunks() {
        let text = b"{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n";
        for size in 1..text.len() {
            let mut lines = LastLine::default();
            for chunk in text.chunks(size) {
                lines.feed(chunk);
            }
            assert_eq!(lines.last, b"{\"seq\":3}", "chunks of {size}");
        }
        let mut lines = LastLine::default();
        lines.feed(b"{\"seq\":1}\n{\"se");
        assert_eq!(lines.last, b"{\"seq\":1}", "an unfinished line is not the last one");
    }
}
