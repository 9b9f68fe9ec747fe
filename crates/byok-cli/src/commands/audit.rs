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
    /// Check the whole chain; fails if an entry was edited, reordered or deleted.
    Verify,
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
        AuditCommand::Verify => {
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
