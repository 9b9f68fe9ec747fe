//! `byok tenant`: add, verify, show, list, restore, setup, rotate, min-decryption, shred-retired, rekey, migrate, adopt, adoptions.

use byok_api as api;
use clap::Subcommand;

use super::{Mode, pretty, region_key};
use crate::client::Client;
use crate::error::CliError;

/// How the customer's setup is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SetupFormat {
    /// A bash script of `aws` CLI commands.
    Aws,
    /// One CloudFormation template (YAML), deployed once per region.
    Cloudformation,
    /// Terraform, one provider alias per region.
    Terraform,
}

impl SetupFormat {
    fn pick(self, instructions: &api::Instructions) -> &str {
        match self {
            SetupFormat::Aws => &instructions.commands,
            SetupFormat::Cloudformation => &instructions.cloudformation,
            SetupFormat::Terraform => &instructions.terraform,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ContactsCommand {
    /// Replace the contacts (no address: none).
    Set {
        id: String,
        emails: Vec<String>,
    },
    Show {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Add a tenant; prints the aws CLI script the customer runs (stdout) and its admin token (stderr).
    Add {
        id: String,
        #[arg(long)]
        location: String,
        /// The customer's AWS account (not for --mode provider).
        #[arg(long)]
        account_id: Option<String>,
        /// How the customer grants the provider its keys: `byok`, a role the provider assumes
        /// (the seed's procedure), or `cmk`, customer-managed keys granted by key policy alone;
        /// or `provider`, keys byok makes in the provider's own account until the customer brings
        /// theirs (`byok tenant adopt`).
        #[arg(long, value_enum, default_value_t = Mode::Byok)]
        mode: Mode,
        /// A cmk tenant's context tag: 1 to 12 letters and digits the customer chose, carried in
        /// the encryption context of every KMS call with its keys; fixed once the tenant is active.
        #[arg(long)]
        context_tag: Option<String>,
        /// The setup as `aws` CLI commands (a bash script), a CloudFormation template or Terraform.
        #[arg(long, value_enum, default_value_t = SetupFormat::Aws)]
        format: SetupFormat,
    },
    /// Verify the customer's setup; activates the tenant if every region passes.
    Verify {
        id: String,
    },
    Show {
        id: String,
    },
    List,
    /// The customer says access is restored: verify every region now.
    Restore {
        id: String,
    },
    /// Print the customer's setup script again.
    Setup {
        id: String,
        #[arg(long, value_enum, default_value_t = SetupFormat::Aws)]
        format: SetupFormat,
    },
    /// The addresses emailed about the tenant's revocation, reminders, restoration and
    /// destruction (`byok serve --smtp-url`).
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Make a new tenant key generation (wrapped in every region); new records use it, older
    /// generations keep decrypting.
    Rotate {
        id: String,
    },
    /// Refuse records sealed under generations older than GENERATION (`generation_retired`).
    /// Can be lowered again until the retired generations are shredded.
    MinDecryption {
        id: String,
        generation: u32,
    },
    /// Erase the wrapped keys of every retired generation: their records are gone for good.
    ShredRetired {
        id: String,
        /// Required: this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Replace the customer's key in one region: verify the new key, rewrap every generation
    /// under it, then switch to it.
    Rekey {
        id: String,
        #[arg(long)]
        region: String,
        /// The new key's ARN (or an alias); by default the tenant's alias, once the customer
        /// re-pointed it to the new key.
        #[arg(long)]
        key_arn: Option<String>,
    },
    /// Move an active role-based tenant onto customer-managed keys, online: first `--setup`
    /// prints what the customer runs (each key's policy grants the provider too); then, without
    /// it, every region is checked as the provider itself, every kept generation rewrapped, and
    /// the tenant switched in one write. Served by the role until then; a refusal changes nothing.
    /// `--plan FILE` moves a fleet, one `TENANT [CONTEXT_TAG]` per line; Ctrl-C stops it before
    /// the next switch.
    Migrate {
        /// The tenant (not with --plan).
        #[arg(required_unless_present = "plan", conflicts_with = "plan")]
        id: Option<String>,
        #[arg(long, value_enum)]
        to: Mode,
        /// The context tag from now on: 1 to 12 letters and digits.
        #[arg(long)]
        context_tag: Option<String>,
        /// Print the customer's side of the move instead of moving.
        #[arg(long)]
        setup: bool,
        /// REGION=KEY: a region's new key (ARN or alias) where it is not the tenant's current key.
        #[arg(long = "key", value_parser = region_key)]
        keys: Vec<(String, String)>,
        /// A fleet: one `TENANT [CONTEXT_TAG]` per line (`#` starts a comment).
        #[arg(long, conflicts_with_all = ["setup", "keys", "context_tag"])]
        plan: Option<std::path::PathBuf>,
        /// With --plan: seconds to wait between two tenants.
        #[arg(long, default_value_t = 0.0, requires = "plan")]
        interval: f64,
    },
    /// Move a tenant on provider-held keys onto its customer's keys, online (see `byok tenant
    /// adopt --help`).
    Adopt(super::adopt::AdoptArgs),
    /// Tenants on provider-held keys, and tenants moving onto their customer's: records
    /// rewrapped and the rate, across every node.
    Adoptions,
}

pub(crate) async fn run(client: Client, command: TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Add { id, location, account_id, mode, context_tag, format } => {
            let mode = mode.api();
            if mode == api::KeyModeName::Provider {
                if account_id.is_some() || context_tag.is_some() {
                    return Err(CliError::Config(
                        "--mode provider takes no --account-id or --context-tag: the keys are the provider's own".into(),
                    ));
                }
                let request = api::AddProviderHeldTenantRequest { id: id.clone(), location };
                let answer = client.add_provider_held_tenant(&request).await?;
                eprintln!("tenant {id} added on provider-held keys (active). Its admin token, shown once:\n  {}", answer.admin_token);
                print!("{}", format.pick(&answer.instructions));
                return Ok(());
            }
            let Some(account_id) = account_id else {
                return Err(CliError::Config("--account-id is required: the customer's AWS account".into()));
            };
            let request = api::AddTenantRequest { id: id.clone(), location, account_id: account_id.clone(), mode, context_tag };
            let answer: api::NewTenantResponse = client.add_tenant(&request).await?;
            eprintln!("tenant {id} added (onboarding). Its admin token, shown once:\n  {}", answer.admin_token);
            if mode == api::KeyModeName::Cmk {
                match &answer.instructions.context_tag {
                    Some(tag) => eprintln!(
                        "Customer-managed keys (key policy, no role). Context tag: {tag} — confirm it with the customer: every use of \
                         their keys carries {}={tag} in its encryption context, and it cannot be changed once the tenant is active.",
                        byok_kms::CONTEXT_TAG_KEY
                    ),
                    None => eprintln!("Customer-managed keys (key policy, no role), without a context tag."),
                }
            }
            eprintln!("The customer runs the script below in AWS account {account_id}; then: byok tenant verify {id}\n");
            print!("{}", format.pick(&answer.instructions));
            Ok(())
        }
        TenantCommand::Setup { id, format } => {
            let instructions: api::Instructions = client.setup(&id).await?;
            print!("{}", format.pick(&instructions));
            Ok(())
        }
        TenantCommand::Verify { id } => {
            let answer = client.verify(&id).await?;
            if answer.status != 200 && answer.status != 422 {
                return Err(answer.error());
            }
            let verification: api::Verification = answer.json()?;
            print_verification(&verification);
            if verification.ok { Ok(()) } else { Err(CliError::NotVerified(id)) }
        }
        TenantCommand::Restore { id } => {
            let answer = client.restore(&id).await?;
            match answer.status {
                200 => {
                    match answer.json::<api::Restoration>() {
                        Ok(r) if r.already_active => println!("tenant {id} was already active: nothing to restore"),
                        Ok(_) | Err(_) => println!("access restored: tenant {id} is active"),
                    }
                    Ok(())
                }
                409 => match answer.json::<api::Restoration>() {
                    Ok(restoration) => {
                        println!("not restored yet; still to do:");
                        for m in &restoration.missing {
                            println!("- {m}");
                        }
                        Err(CliError::StillRevoked(id))
                    }
                    // A 409 that is not a restoration: the lifecycle refused (an error body).
                    Err(_) => Err(answer.error()),
                },
                _ => Err(answer.error()),
            }
        }
        TenantCommand::Show { id } => {
            let status: api::TenantStatus = client.tenant(&id).await?;
            println!("{}", pretty(&status));
            Ok(())
        }
        TenantCommand::List => {
            let tenants: Vec<api::TenantStatus> = client.tenants().await?;
            println!("{}", pretty(&tenants));
            Ok(())
        }
        TenantCommand::Contacts { command: ContactsCommand::Set { id, emails } } => {
            let set = client.set_contacts(&id, &api::Contacts { emails }).await?;
            println!("tenant {id}: {}", if set.emails.is_empty() { "no contacts".into() } else { set.emails.join(", ") });
            Ok(())
        }
        TenantCommand::Contacts { command: ContactsCommand::Show { id } } => {
            let shown = client.contacts(&id).await?;
            println!("tenant {id}: {}", if shown.emails.is_empty() { "no contacts".into() } else { shown.emails.join(", ") });
            Ok(())
        }
        TenantCommand::Rotate { id } => {
            let status: api::TenantStatus = client.rotate(&id).await?;
            println!("tenant {id}: new records are sealed under generation {}", status.keys.current);
            Ok(())
        }
        TenantCommand::MinDecryption { id, generation } => {
            let status = client.set_min_decryption(&id, generation).await?;
            let k = status.keys;
            println!("tenant {id}: records of generations {}..={} open; older ones are refused", k.min_decryption, k.current);
            Ok(())
        }
        TenantCommand::ShredRetired { id, yes } => {
            if !yes {
                return Err(CliError::Config(format!(
                    "shredding erases the keys of tenant {id}'s retired generations for good; run again with --yes"
                )));
            }
            let status: api::TenantStatus = client.shred_retired(&id).await?;
            println!("tenant {id}: keys of generations below {} erased", status.keys.kept_from);
            Ok(())
        }
        TenantCommand::Migrate { id, to, context_tag, setup, keys, plan, interval } => {
            if let Some(plan) = plan {
                if to != Mode::Cmk {
                    return Err(CliError::Config("a tenant can move to cmk (customer-managed keys) only".into()));
                }
                let text = std::fs::read_to_string(&plan)
                    .map_err(|e| CliError::Config(format!("cannot read the plan {}: {e}", plan.display())))?;
                return super::fleet::run(&client, super::fleet::migrations(&text)?, super::fleet::interval(interval)).await;
            }
            let id = id.unwrap_or_default();
            let request = api::MigrateRequest { to: to.api(), context_tag, keys: keys.into_iter().collect() };
            if setup {
                let instructions = client.migration_setup(&id, &request).await?;
                eprintln!(
                    "The customer runs the script below in AWS account {}; then: byok tenant migrate {id} --to cmk",
                    instructions.account_id
                );
                print!("{}", instructions.commands);
                return Ok(());
            }
            let moved = client.migrate(&id, &request).await?;
            for r in &moved.regions {
                let generations: Vec<String> = r.generations.iter().map(ToString::to_string).collect();
                println!("{}: {} (generations {} rewrapped)", r.region, r.key_arn, generations.join(", "));
            }
            let tag = moved.tenant.context_tag.as_deref().map(|t| format!(", context tag {t}")).unwrap_or_default();
            println!("tenant {id} switched to customer-managed keys{tag} in {} ms; the customer may now remove its role", moved.elapsed_ms);
            Ok(())
        }
        TenantCommand::Adopt(args) => super::adopt::adopt(&client, args).await,
        TenantCommand::Adoptions => super::adopt::report(&client).await,
        TenantCommand::Rekey { id, region, key_arn } => {
            let request = api::RekeyRequest { region: region.clone(), key: key_arn };
            let status: api::TenantStatus = client.rekey(&id, &request).await?;
            let key = status.regions.iter().find(|r| r.region == region).map(|r| r.key_arn.as_str()).unwrap_or("?");
            println!("tenant {id}: every generation rewrapped; {region} now uses {key}");
            Ok(())
        }
    }
}

pub(crate) fn print_verification(v: &api::Verification) {
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    println!("[{}] role: {}", mark(v.trust_ok), v.trust_problem.as_deref().unwrap_or("assumable with the external id, and not without"));
    for w in &v.warnings {
        println!("[warn] {w}");
    }
    for r in &v.regions {
        let detail = if r.ok { r.key_arn.as_deref() } else { r.problem.as_deref() };
        println!("[{}] {}: {}", mark(r.ok), r.region, detail.unwrap_or_default());
    }
    println!("{}", if v.ok { "tenant is active" } else { "tenant is still onboarding: fix the above and verify again" });
}
