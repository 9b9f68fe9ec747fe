//! The `byok` command. The binary only parses flags; everything is here, callable by tests.
//!
//! # Layout
//! - [`Cli`] and [`run`]: the commands.
//! - [`serve`]: the broker, its store, its provider identity, and (by default) an embedded
//!   localcloud, from validated [`serve::ServeParams`].
//! - [`provider`]: where the provider's own AWS credentials come from.
//! - [`demo`]: `byok demo`, the customer guide's story end to end.
//! - [`client`]: the typed API client the `tenant`, `ticket`, `audit`, `encrypt` and `decrypt`
//!   commands use.
//! - [`error`](mod@error): [`CliError`], every failure with its cause.
#![forbid(unsafe_code)]

pub mod client;
pub mod demo;
pub mod error;
pub mod provider;
pub mod serve;

use std::io::{Read, Write};
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_api as api;
use clap::{Parser, Subcommand};

use crate::client::Client;
pub use crate::error::CliError;

/// Customer-held keys for multi-tenant SaaS.
#[derive(Debug, Parser)]
#[command(name = "byok", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: `text` (colours only when stderr is a terminal) or
    /// `json` (one object a line, for a log pipeline).
    #[arg(long, global = true, env = "BYOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// See [`Cli::log_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (with an embedded localcloud unless --aws-endpoint or --real-aws).
    Serve(Box<serve::ServeArgs>),
    /// Play the customer guide's story end to end on an embedded localcloud: onboard, revoke,
    /// restore one region (refused), restore fully, revoke, 16 days later: gone.
    Demo,
    /// Run localcloud alone (same as the `localcloud serve` binary).
    Localcloud {
        #[arg(long, env = "LOCALCLOUD_LISTEN", default_value = "127.0.0.1:4566")]
        listen: std::net::SocketAddr,
        #[arg(long, env = "LOCALCLOUD_DATA_DIR", default_value = "data/localcloud")]
        data_dir: std::path::PathBuf,
    },
    /// Tenants: add, verify, show, list.
    Tenant {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// The audit log: list entries, verify the hash chain.
    Audit {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Revocations held for a person (too many tenants denied at once): list, release, dismiss.
    Revocations {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: RevocationsCommand,
    },
    /// API tokens: list, create (or reissue), revoke.
    Token {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The operator's alerts (provider identity failing, revocations held).
    Alerts {
        #[command(flatten)]
        api: client::ApiArgs,
        /// Open ones only.
        #[arg(long)]
        open: bool,
    },
    /// Support tickets: list, show, comment.
    Ticket {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: TicketCommand,
    },
    /// Encrypt stdin (or --text) for a tenant; prints the record in base64.
    Encrypt {
        #[command(flatten)]
        api: client::ApiArgs,
        #[arg(long)]
        tenant: String,
        /// The record id the data is bound to.
        #[arg(long, default_value = "")]
        context: String,
        #[arg(long)]
        text: Option<String>,
    },
    /// Decrypt a base64 record (argument or stdin) for a tenant; writes the plaintext.
    Decrypt {
        #[command(flatten)]
        api: client::ApiArgs,
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "")]
        context: String,
        record: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
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

/// How the customer's setup is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SetupFormat {
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
enum RevocationsCommand {
    /// Held revocations, oldest first.
    List,
    /// Believe the denial: revoke as of its detection; the customer's ticket opens.
    Release { tenant: String },
    /// Do not believe it: the tenant stays active.
    Dismiss { tenant: String },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Every token (never a value).
    List,
    /// Issue a token; prints its value once.
    Create {
        /// operator, service or tenant_admin.
        #[arg(long)]
        kind: String,
        /// With tenant_admin: whose. With service: a tenant whose data it reaches (repeat it
        /// for several).
        #[arg(long)]
        tenant: Vec<String>,
        /// With service: every tenant's data (asked for explicitly; prefer --tenant).
        #[arg(long)]
        all_tenants: bool,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Revoke the other issued tokens of this kind (and tenant): a reissue.
        #[arg(long)]
        replace: bool,
    },
    /// Revoke a token by id (it stops working on every node within 5 s).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum TicketCommand {
    List,
    Show {
        id: i64,
    },
    /// Comment on a ticket (a tenant admin's "ready" starts restoration).
    Comment {
        id: i64,
        #[arg(long)]
        body: String,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Add a tenant; prints the aws CLI script the customer runs (stdout) and its admin token (stderr).
    Add {
        id: String,
        #[arg(long)]
        location: String,
        #[arg(long)]
        account_id: String,
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
}

impl Cli {
    /// The log level when `BYOK_LOG` is not set: the demo narrates, so only errors are logged.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Demo => "error",
            Command::Serve(_)
            | Command::Localcloud { .. }
            | Command::Tenant { .. }
            | Command::Ticket { .. }
            | Command::Revocations { .. }
            | Command::Token { .. }
            | Command::Alerts { .. }
            | Command::Audit { .. }
            | Command::Encrypt { .. }
            | Command::Decrypt { .. } => "info",
        }
    }
}

/// Runs a command; the exit code says whether it succeeded.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(cli.command, cli.log_format)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn command(command: Command, log_format: LogFormat) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::run(*args, log_format).await,
        Command::Demo => demo::run().await,
        Command::Localcloud { listen, data_dir } => {
            let cloud = std::sync::Arc::new(localcloud::Cloud::open(Some(&data_dir)).map_err(CliError::LocalcloudStart)?);
            localcloud::server::run(listen, cloud).await.map_err(CliError::io(format!("localcloud on {listen}")))
        }
        Command::Tenant { api, command } => tenant(Client::new(&api)?, command).await,
        Command::Ticket { api, command } => ticket(Client::new(&api)?, command).await,
        Command::Audit { api, command } => audit(Client::new(&api)?, command).await,
        Command::Revocations { api, command } => revocations(Client::new(&api)?, command).await,
        Command::Token { api, command } => token(Client::new(&api)?, command).await,
        Command::Alerts { api, open } => {
            let alerts: Vec<api::Alert> = Client::new(&api)?.get(&format!("/v1/alerts?open={open}")).await?;
            for a in alerts {
                println!(
                    "#{} [{}] {} (opened {}, updated {})",
                    a.id,
                    status_name(&a.status),
                    a.title,
                    rfc3339(a.opened_at),
                    rfc3339(a.updated_at)
                );
            }
            Ok(())
        }
        Command::Encrypt { api, tenant, context, text } => {
            let plaintext = match text {
                Some(t) => t.into_bytes(),
                None => read_stdin()?,
            };
            let request = api::EncryptRequest { plaintext: STANDARD.encode(plaintext), context };
            let answer: api::EncryptResponse =
                Client::new(&api)?.call("POST", &format!("/v1/tenants/{tenant}/encrypt"), Some(&request)).await?;
            println!("{}", answer.ciphertext);
            Ok(())
        }
        Command::Decrypt { api, tenant, context, record } => {
            let record = match record {
                Some(r) => r,
                None => String::from_utf8_lossy(&read_stdin()?).into_owned(),
            };
            let request = api::DecryptRequest { ciphertext: record.trim().to_string(), context };
            let answer: api::DecryptResponse =
                Client::new(&api)?.call("POST", &format!("/v1/tenants/{tenant}/decrypt"), Some(&request)).await?;
            let plaintext = zeroize::Zeroizing::new(STANDARD.decode(answer.plaintext).map_err(CliError::NotBase64)?);
            std::io::stdout().write_all(&plaintext).map_err(CliError::io("cannot write the plaintext"))
        }
    }
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(CliError::io("cannot read stdin"))?;
    Ok(buf)
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

async fn tenant(client: Client, command: TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Add { id, location, account_id, format } => {
            let request = api::AddTenantRequest { id: id.clone(), location, account_id: account_id.clone() };
            let answer: api::NewTenantResponse = client.call("POST", "/v1/tenants", Some(&request)).await?;
            eprintln!("tenant {id} added (onboarding). Its admin token, shown once:\n  {}", answer.admin_token);
            eprintln!("The customer runs the script below in AWS account {account_id}; then: byok tenant verify {id}\n");
            print!("{}", format.pick(&answer.instructions));
            Ok(())
        }
        TenantCommand::Setup { id, format } => {
            let instructions: api::Instructions = client.get(&format!("/v1/tenants/{id}/setup")).await?;
            print!("{}", format.pick(&instructions));
            Ok(())
        }
        TenantCommand::Verify { id } => {
            let answer = client.send("POST", &format!("/v1/tenants/{id}/verify"), None::<&()>).await?;
            if answer.status != 200 && answer.status != 422 {
                return Err(answer.error());
            }
            let verification: api::Verification = answer.json()?;
            print_verification(&verification);
            if verification.ok { Ok(()) } else { Err(CliError::NotVerified(id)) }
        }
        TenantCommand::Restore { id } => {
            let answer = client.send("POST", &format!("/v1/tenants/{id}/restore"), None::<&()>).await?;
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
            let status: api::TenantStatus = client.get(&format!("/v1/tenants/{id}")).await?;
            println!("{}", pretty(&status));
            Ok(())
        }
        TenantCommand::List => {
            let tenants: Vec<api::TenantStatus> = client.get("/v1/tenants").await?;
            println!("{}", pretty(&tenants));
            Ok(())
        }
        TenantCommand::Rotate { id } => {
            let status: api::TenantStatus = client.call("POST", &format!("/v1/tenants/{id}/rotate"), None::<&()>).await?;
            println!("tenant {id}: new records are sealed under generation {}", status.keys.current);
            Ok(())
        }
        TenantCommand::MinDecryption { id, generation } => {
            let request = api::MinDecryptionRequest { generation };
            let path = format!("/v1/tenants/{id}/min-decryption-generation");
            let status: api::TenantStatus = client.call("PUT", &path, Some(&request)).await?;
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
            let status: api::TenantStatus = client.call("POST", &format!("/v1/tenants/{id}/shred-retired"), None::<&()>).await?;
            println!("tenant {id}: keys of generations below {} erased", status.keys.kept_from);
            Ok(())
        }
        TenantCommand::Rekey { id, region, key_arn } => {
            let request = api::RekeyRequest { region: region.clone(), key: key_arn };
            let status: api::TenantStatus = client.call("POST", &format!("/v1/tenants/{id}/rekey"), Some(&request)).await?;
            let key = status.regions.iter().find(|r| r.region == region).map(|r| r.key_arn.as_str()).unwrap_or("?");
            println!("tenant {id}: every generation rewrapped; {region} now uses {key}");
            Ok(())
        }
    }
}

async fn audit(client: Client, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::List { tenant, after } => {
            let entries: Vec<api::AuditEntry> = client.get(&format!("/v1/tenants/{tenant}/audit?after={after}")).await?;
            for e in entries {
                println!("{:>6} {} {:<10} {:<12} {}", e.seq, e.at, e.kind, e.reason, e.detail);
            }
            Ok(())
        }
        AuditCommand::Export { before, prune } => {
            let answer = client.send("GET", &format!("/v1/audit/export?before={before}"), None::<&()>).await?;
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
                    let pruned: serde_json::Value = client
                        .call("POST", "/v1/audit/prune", Some(&serde_json::json!({ "through_seq": last.seq, "hash": last.hash })))
                        .await?;
                    eprintln!("pruned {} entries through {} (checkpoint hash {})", pruned["pruned"], last.seq, last.hash);
                }
                (true, None) => eprintln!("nothing older than {before}: nothing pruned"),
                (false, _) => {}
            }
            Ok(())
        }
        AuditCommand::Verify => {
            let answer = client.send("GET", "/v1/audit/verify", None::<&()>).await?;
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

async fn ticket(client: Client, command: TicketCommand) -> Result<(), CliError> {
    match command {
        TicketCommand::List => {
            let tickets: Vec<api::Ticket> = client.get("/v1/tickets").await?;
            for t in tickets {
                println!("#{} [{}] {} (tenant {}, updated {})", t.id, t.status, t.title, t.tenant, rfc3339(t.updated_at));
            }
            Ok(())
        }
        TicketCommand::Show { id } => {
            let detail: api::TicketDetail = client.get(&format!("/v1/tickets/{id}")).await?;
            let t = &detail.ticket;
            println!("#{} [{}] {}", t.id, t.status, t.title);
            for c in &detail.comments {
                println!("\n--- {} at {}\n{}", c.author, rfc3339(c.created_at), c.body);
            }
            Ok(())
        }
        TicketCommand::Comment { id, body } => {
            let answer: api::CommentResponse =
                client.call("POST", &format!("/v1/tickets/{id}/comments"), Some(&api::NewComment { body })).await?;
            match answer.restoration {
                Some(r) if r.restored => println!("access restored"),
                Some(r) => {
                    println!("not restored yet:");
                    for m in &r.missing {
                        println!("- {m}");
                    }
                }
                None => println!("comment added"),
            }
            Ok(())
        }
    }
}

fn status_name(s: &impl serde::Serialize) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

async fn revocations(client: Client, command: RevocationsCommand) -> Result<(), CliError> {
    match command {
        RevocationsCommand::List => {
            let held: Vec<api::HeldRevocation> = client.get("/v1/revocations/held").await?;
            if held.is_empty() {
                println!("no revocation is held");
            }
            for h in held {
                println!("{} detected {}: {}", h.tenant, rfc3339(h.detected_at), h.detail);
            }
            Ok(())
        }
        RevocationsCommand::Release { tenant } => {
            let status: api::TenantStatus = client.call("POST", &format!("/v1/revocations/held/{tenant}/release"), None::<&()>).await?;
            println!("tenant {tenant} is {}: its customer has the revocation ticket", status.state.name());
            Ok(())
        }
        RevocationsCommand::Dismiss { tenant } => {
            let answer = client.send("POST", &format!("/v1/revocations/held/{tenant}/dismiss"), None::<&()>).await?;
            if answer.status != 204 {
                return Err(answer.error());
            }
            println!("dismissed: tenant {tenant} stays active");
            Ok(())
        }
    }
}

async fn token(client: Client, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::List => {
            let tokens: Vec<api::TokenInfo> = client.get("/v1/tokens").await?;
            for t in tokens {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {}", rfc3339(at)),
                    (None, Some(at)) => format!("expires {}", rfc3339(at)),
                    (None, None) => "live".to_string(),
                };
                let reach = match (t.tenant, t.all_tenants) {
                    (Some(tenant), _) => tenant,
                    (None, true) => "(all tenants)".to_string(),
                    (None, false) => t.tenants.join(","),
                };
                println!("{} {:<12} {:<10} {:<10} created {} {state}", t.id, status_name(&t.kind), reach, t.origin, rfc3339(t.created_at));
            }
            Ok(())
        }
        TokenCommand::Create { kind, tenant, all_tenants, expires_in_days, replace } => {
            let kind: api::TokenKind = serde_json::from_value(serde_json::Value::String(kind.clone()))
                .map_err(|_| CliError::Config(format!("--kind is operator, service or tenant_admin, not {kind}")))?;
            let (tenant, tenants) = match (kind, tenant.as_slice()) {
                (api::TokenKind::Service, _) => (None, tenant),
                (api::TokenKind::TenantAdmin | api::TokenKind::Operator, []) => (None, Vec::new()),
                (api::TokenKind::TenantAdmin | api::TokenKind::Operator, [one]) => (Some(one.clone()), Vec::new()),
                (api::TokenKind::TenantAdmin | api::TokenKind::Operator, [_, _, ..]) => {
                    return Err(CliError::Config("only a service token takes several --tenant".into()));
                }
            };
            let request = api::NewTokenRequest { kind, tenant, tenants, all_tenants, expires_in_days, replace };
            let issued: api::NewTokenResponse = client.call("POST", "/v1/tokens", Some(&request)).await?;
            eprintln!("token {} issued; its value, shown once:", issued.info.id);
            println!("{}", issued.token);
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let answer = client.send("DELETE", &format!("/v1/tokens/{id}"), None::<&()>).await?;
            if answer.status != 204 {
                return Err(answer.error());
            }
            println!("token {id} revoked");
            Ok(())
        }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn print_verification(v: &api::Verification) {
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
