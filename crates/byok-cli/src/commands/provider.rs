//! `byok provider setup`: the provider's own side on AWS — the provider role with its
//! least-privilege policy, and the canary role and key in a second account — as a shell script
//! of `aws` commands or as CloudFormation, one part per account, and the settings `byok serve
//! --real-aws` then needs. Works offline: it talks to nothing.

use byok_broker::provider_setup::{Part, ProviderSetup};
use clap::{Subcommand, ValueEnum};

use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCommand {
    /// Print the provider role and the canary to create (then `byok doctor` checks them).
    Setup(SetupArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct SetupArgs {
    /// The provider's account: where byok runs and its role lives.
    #[arg(long)]
    provider_account_id: String,
    /// A second account the provider controls, for the canary (assuming it then crosses
    /// accounts, as assuming customers' roles does).
    #[arg(long)]
    canary_account_id: String,
    /// The canary role's external id [default: a fresh random one].
    #[arg(long)]
    canary_external_id: Option<String>,
    #[arg(long, default_value = "byok-provider")]
    provider_role_name: String,
    #[arg(long, default_value = "byok-canary")]
    canary_role_name: String,
    #[arg(long, default_value = "alias/byok-canary")]
    canary_key: String,
    #[arg(long, default_value = "us-east-1")]
    canary_region: String,
    /// The compute service byok runs on, trusted to assume the provider role.
    #[arg(long, default_value = "ec2.amazonaws.com")]
    trusted_service: String,
    #[arg(long, value_enum, default_value_t = Format::Script)]
    format: Format,
    /// One account's part, or both.
    #[arg(long, value_enum, default_value_t = Which::All)]
    part: Which,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Shell scripts of `aws` commands.
    Script,
    /// CloudFormation templates (JSON).
    Cloudformation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    All,
    Provider,
    Canary,
}

pub(crate) fn run(command: ProviderCommand) -> Result<(), CliError> {
    let ProviderCommand::Setup(args) = command;
    for (flag, account) in [("--provider-account-id", &args.provider_account_id), ("--canary-account-id", &args.canary_account_id)] {
        account.parse::<byok_domain::AccountId>().map_err(|e| CliError::Config(format!("{flag}: {e}")))?;
    }
    if args.provider_account_id == args.canary_account_id {
        return Err(CliError::Config(
            "the canary belongs in a second account: in the provider's own, assuming it does not cross accounts as customers' roles do"
                .into(),
        ));
    }
    if !args.canary_key.starts_with("alias/") {
        return Err(CliError::Config(format!("--canary-key is alias/NAME, not {}", args.canary_key)));
    }
    args.canary_region.parse::<byok_domain::Region>()?;
    let external_id = match args.canary_external_id {
        Some(id) => id,
        None => byok_broker::tokens::generate("canary")
            .map(|t| t.chars().filter(char::is_ascii_alphanumeric).take(40).collect())
            .ok_or_else(|| CliError::Config("the system random number generator failed".into()))?,
    };
    external_id.parse::<byok_domain::ExternalId>()?;
    let setup = ProviderSetup {
        provider_account: args.provider_account_id,
        provider_role_name: args.provider_role_name,
        trusted_service: args.trusted_service,
        canary_account: args.canary_account_id,
        canary_role_name: args.canary_role_name,
        canary_external_id: external_id,
        canary_key: args.canary_key,
        canary_region: args.canary_region,
    };
    let parts: &[Part] = match args.part {
        Which::All => &[Part::Provider, Part::Canary],
        Which::Provider => &[Part::Provider],
        Which::Canary => &[Part::Canary],
    };
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let text = match args.format {
            Format::Script => setup.script(*part)?,
            Format::Cloudformation => setup.cloudformation(*part)?,
        };
        print!("{text}");
    }
    if args.part == Which::All {
        eprintln!("\n# Then, in /etc/byok/byok.toml (and check with `byok doctor --config /etc/byok/byok.toml`):");
        for line in setup.settings().lines() {
            eprintln!("#   {line}");
        }
    }
    Ok(())
}
