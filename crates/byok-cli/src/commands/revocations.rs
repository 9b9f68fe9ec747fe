//! `byok revocations`: held revocations: list, release, dismiss.

use byok_api as api;
use clap::Subcommand;

use super::rfc3339;
use crate::client::Client;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub(crate) enum RevocationsCommand {
    /// Held revocations, oldest first.
    List,
    /// Believe the denial: revoke as of its detection; the customer's ticket opens.
    Release { tenant: String },
    /// Do not believe it: the tenant stays active.
    Dismiss { tenant: String },
}

pub(crate) async fn run(client: Client, command: RevocationsCommand) -> Result<(), CliError> {
    match command {
        RevocationsCommand::List => {
            let held: Vec<api::HeldRevocation> = client.held_revocations().await?;
            if held.is_empty() {
                println!("no revocation is held");
            }
            for h in held {
                println!("{} detected {}: {}", h.tenant, rfc3339(h.detected_at), h.detail);
            }
            Ok(())
        }
        RevocationsCommand::Release { tenant } => {
            let status: api::TenantStatus = client.release_hold(&tenant).await?;
            println!("tenant {tenant} is {}: its customer has the revocation ticket", status.state.name());
            Ok(())
        }
        RevocationsCommand::Dismiss { tenant } => {
            let answer = client.dismiss_hold(&tenant).await?;
            if answer.status != 204 {
                return Err(answer.error());
            }
            println!("dismissed: tenant {tenant} stays active");
            Ok(())
        }
    }
}
