//! `byok identity`: the IAM roles whose sessions sign in with AWS (`POST /v1/auth/aws`) for a
//! short-lived service token: add, list, remove.

use byok_api::AwsIdentity;
use clap::Subcommand;

use crate::client::Client;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub(crate) enum IdentityCommand {
    /// Let sessions of an IAM role sign in, reaching these tenants (replaces what it reached).
    Add {
        /// `arn:aws:iam::ACCOUNT:role/NAME`.
        #[arg(long)]
        role_arn: String,
        /// A tenant its tokens reach (repeat it for several).
        #[arg(long)]
        tenant: Vec<String>,
        /// Every tenant's data (asked for explicitly; prefer --tenant).
        #[arg(long)]
        all_tenants: bool,
    },
    /// Every configured identity.
    List,
    /// Stop a role's sign-ins (tokens already issued run out on their own).
    Remove {
        #[arg(long)]
        role_arn: String,
    },
}

fn reach(identity: &AwsIdentity) -> String {
    if identity.all_tenants { "(all tenants)".into() } else { identity.tenants.join(",") }
}

pub(crate) async fn run(client: Client, command: IdentityCommand) -> Result<(), CliError> {
    match command {
        IdentityCommand::Add { role_arn, tenant, all_tenants } => {
            let request = AwsIdentity { role_arn, tenants: tenant, all_tenants };
            let added: AwsIdentity = client.add_identity(&request).await?;
            println!("{} signs in reaching {}", added.role_arn, reach(&added));
            Ok(())
        }
        IdentityCommand::List => {
            let identities: Vec<AwsIdentity> = client.identities().await?;
            for i in identities {
                println!("{} {}", i.role_arn, reach(&i));
            }
            Ok(())
        }
        IdentityCommand::Remove { role_arn } => {
            let answer = client.remove_identity(&role_arn).await?;
            if answer.status != 204 {
                return Err(answer.error());
            }
            println!("{role_arn} no longer signs in");
            Ok(())
        }
    }
}
