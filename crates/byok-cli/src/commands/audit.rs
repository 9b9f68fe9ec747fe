//! `byok audit`: list entries, verify the hash chain, export and prune.

use std::io::Write;

use byok_api as api;
use clap::Subcommand;

use crate::client::Client;
use crate::error::CliError;

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
            let answer = client.audit_export(&before).await?;
            if answer.status != 200 {
                return Err(answer.error());
            }
            let text = answer.text();
            let mut out = std::io::stdout();
            out.write_all(text.as_bytes()).map_err(CliError::io("cannot write the export"))?;
            out.flush().map_err(CliError::io("cannot write the export"))?;
            let last: Option<api::AuditEntry> = text.lines().last().and_then(|l| serde_json::from_str(l).ok());
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
