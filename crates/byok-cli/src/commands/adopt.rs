//! `byok tenant adopt` and `byok tenant adoptions`: tenants on provider-held keys moved onto
//! their customer's keys, one tenant or a fleet from a plan, and the progress of the records.

use byok_api as api;

use super::{Mode, region_key};
use crate::client::Client;
use crate::error::CliError;

/// Move a tenant on provider-held keys onto its customer's keys, online.
///
/// 1. `--setup` prints what the customer runs in their account (as onboarding in that mode).
/// 2. Without it: the customer's keys are checked, every kept generation rewrapped under them,
///    a fresh generation made under them alone, and the tenant switched in one write; the
///    provider-held keys are then scheduled for deletion. Until the switch the tenant is served
///    from the provider-held keys; a refusal changes nothing.
/// 3. Services rewrap their records (`rewrap/batch`) onto the fresh generation; `byok tenant
///    adoptions` shows how many moved and how fast.
/// 4. `--finish --yes` retires and shreds the older generations.
///
/// `--plan FILE` adopts a fleet, one tenant after another, from lines of
/// `TENANT ACCOUNT MODE [CONTEXT_TAG]`; Ctrl-C aborts before the next tenant's switch.
#[derive(Debug, clap::Args)]
pub(crate) struct AdoptArgs {
    /// The tenant (not with --plan).
    #[arg(required_unless_present = "plan", conflicts_with = "plan")]
    id: Option<String>,
    /// The customer's mode.
    #[arg(long, value_enum, required_unless_present_any = ["plan", "finish"])]
    to: Option<Mode>,
    /// The customer's AWS account.
    #[arg(long, required_unless_present_any = ["plan", "finish"])]
    account_id: Option<String>,
    /// `--to cmk`: the context tag (1 to 12 letters and digits).
    #[arg(long)]
    context_tag: Option<String>,
    /// Print the customer's setup instead of adopting.
    #[arg(long, conflicts_with = "finish")]
    setup: bool,
    /// REGION=KEY: a region's key (ARN or alias) where it is not found by the tenant's alias.
    #[arg(long = "key", value_parser = region_key)]
    keys: Vec<(String, String)>,
    /// Retire and shred the generations older than the adoption's (records not rewrapped by
    /// then no longer open).
    #[arg(long)]
    finish: bool,
    /// Required with --finish: this cannot be undone.
    #[arg(long)]
    yes: bool,
    /// A fleet: one `TENANT ACCOUNT MODE [CONTEXT_TAG]` per line (`#` starts a comment).
    #[arg(long)]
    plan: Option<std::path::PathBuf>,
    /// With --plan: seconds to wait between two tenants (spreads the KMS calls of a large fleet).
    #[arg(long, default_value_t = 0.0, requires = "plan")]
    interval: f64,
}

pub(crate) async fn adopt(client: &Client, args: AdoptArgs) -> Result<(), CliError> {
    if let Some(plan) = &args.plan {
        let text = std::fs::read_to_string(plan).map_err(|e| CliError::Config(format!("cannot read the plan {}: {e}", plan.display())))?;
        return super::fleet::run(client, super::fleet::adoptions(&text)?, super::fleet::interval(args.interval)).await;
    }
    let id = args.id.clone().unwrap_or_default();
    if args.finish {
        if !args.yes {
            return Err(CliError::Config(format!(
                "finishing erases the keys of tenant {id}'s generations from before the adoption, and records still sealed \
                 under them stop opening; run again with --yes once the records are rewrapped (byok tenant adoptions)"
            )));
        }
        let finished = client.finish_adoption(&id).await?;
        let shredded: Vec<String> = finished.shredded.iter().map(ToString::to_string).collect();
        println!(
            "tenant {id}: adoption finished; generations {} retired and shredded; records of generations {}..={} open",
            if shredded.is_empty() { "none".into() } else { shredded.join(", ") },
            finished.tenant.keys.min_decryption,
            finished.tenant.keys.current
        );
        print_deletions(&finished.provider_keys);
        return Ok(());
    }
    let request = api::AdoptRequest {
        to: args.to.map_or(api::KeyModeName::Cmk, Mode::api),
        account_id: args.account_id.clone().unwrap_or_default(),
        context_tag: args.context_tag.clone(),
        keys: args.keys.iter().cloned().collect(),
    };
    if args.setup {
        let instructions = client.adoption_setup(&id, &request).await?;
        eprintln!(
            "The customer runs the script below in AWS account {}; then: byok tenant adopt {id} --to {} --account-id {}",
            instructions.account_id,
            request.to.as_str(),
            instructions.account_id
        );
        print!("{}", instructions.commands);
        return Ok(());
    }
    let adopted = client.adopt(&id, &request).await?;
    print_adopted(&id, &adopted);
    Ok(())
}

fn print_adopted(id: &str, adopted: &api::AdoptionResponse) {
    for r in &adopted.regions {
        let generations: Vec<String> = r.generations.iter().map(ToString::to_string).collect();
        println!("{}: {} (generations {})", r.region, r.key_arn, generations.join(", "));
    }
    let tag = adopted.tenant.context_tag.as_deref().map(|t| format!(", context tag {t}")).unwrap_or_default();
    println!(
        "tenant {id} switched to the customer's keys ({}{tag}) in {} ms; new records are sealed under generation {}, made under \
         the customer's keys alone. Rewrap older records (rewrap/batch), then: byok tenant adopt {id} --finish --yes",
        adopted.tenant.mode.as_str(),
        adopted.elapsed_ms,
        adopted.first_generation
    );
    print_deletions(&adopted.provider_keys);
}

fn print_deletions(keys: &[api::ProviderKeyDeletion]) {
    for k in keys {
        match &k.deletion_date {
            Some(at) => println!("provider-held key {} disabled, deleted by AWS on {at}", k.key_arn),
            None => println!("provider-held key {} NOT yet scheduled for deletion: finishing tries again", k.key_arn),
        }
    }
}

pub(crate) async fn report(client: &Client) -> Result<(), CliError> {
    let report = client.adoptions().await?;
    println!(
        "{} tenants on provider-held keys; {} adopting; {} records rewrapped onto customer keys ({:.1}/s)",
        report.waiting, report.adopting, report.records_rewrapped, report.rate_per_s
    );
    for t in &report.tenants {
        match t.phase.as_str() {
            "adopting" => println!(
                "{}: adopting since {} (generation {} seals), {} records rewrapped, {:.1}/s",
                t.tenant,
                t.switched_at.as_deref().unwrap_or_default(),
                t.first_generation.unwrap_or_default(),
                t.records_rewrapped,
                t.rate_per_s
            ),
            _ => println!("{}: provider-held keys, waiting for the customer's", t.tenant),
        }
    }
    Ok(())
}
