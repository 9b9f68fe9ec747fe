//! The `byok` command. The binary only parses flags; everything is here, callable by tests.
//!
//! # Layout
//! - [`Cli`] and [`run`]: the commands.
//! - [`serve`]: the broker, its store, its provider identity, and (by default) an embedded
//!   localcloud, from validated [`serve::ServeParams`].
//! - [`provider`]: where the provider's own AWS credentials come from.
//! - [`demo`]: `byok demo`, the seed's story end to end.
//! - [`client`]: the HTTP client the `tenant`, `encrypt` and `decrypt` commands use.
#![forbid(unsafe_code)]

pub mod client;
pub mod demo;
pub mod provider;
pub mod serve;

use std::io::{Read, Write};
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::client::Client;

/// Customer-held keys for multi-tenant SaaS.
#[derive(Debug, Parser)]
#[command(name = "byok", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (with an embedded localcloud unless --aws-endpoint or --real-aws).
    Serve(Box<serve::ServeArgs>),
    /// Play the seed's story end to end on an embedded localcloud: onboard, revoke, restore
    /// one region (refused), restore fully, revoke, 16 days later: gone.
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
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await.map_err(|e| e.to_string()),
            Command::Demo => demo::run().await,
            Command::Localcloud { listen, data_dir } => {
                let cloud = std::sync::Arc::new(localcloud::Cloud::open(Some(&data_dir)).map_err(|e| e.to_string())?);
                localcloud::server::run(listen, cloud).await.map_err(|e| e.to_string())
            }
            Command::Tenant { api, command } => tenant(Client::new(&api)?, command).await,
            Command::Ticket { api, command } => ticket(Client::new(&api)?, command).await,
            Command::Audit { api, command } => audit(Client::new(&api)?, command).await,
            Command::Encrypt { api, tenant, context, text } => {
                let plaintext = match text {
                    Some(t) => t.into_bytes(),
                    None => read_stdin()?,
                };
                let answer = Client::new(&api)?
                    .call(
                        "POST",
                        &format!("/v1/tenants/{tenant}/encrypt"),
                        Some(json!({ "plaintext": STANDARD.encode(plaintext), "context": context })),
                    )
                    .await?;
                println!("{}", answer["ciphertext"].as_str().unwrap_or_default());
                Ok(())
            }
            Command::Decrypt { api, tenant, context, record } => {
                let record = match record {
                    Some(r) => r,
                    None => String::from_utf8(read_stdin()?).map_err(|_| "the record must be base64 text".to_string())?,
                };
                let answer = Client::new(&api)?
                    .call(
                        "POST",
                        &format!("/v1/tenants/{tenant}/decrypt"),
                        Some(json!({ "ciphertext": record.trim(), "context": context })),
                    )
                    .await?;
                let plaintext = STANDARD.decode(answer["plaintext"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
                std::io::stdout().write_all(&plaintext).map_err(|e| e.to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(buf)
}

async fn tenant(client: Client, command: TenantCommand) -> Result<(), String> {
    match command {
        TenantCommand::Add { id, location, account_id } => {
            let answer =
                client.call("POST", "/v1/tenants", Some(json!({ "id": id, "location": location, "account_id": account_id }))).await?;
            eprintln!(
                "tenant {id} added (onboarding). Its admin token, shown once:\n  {}",
                answer["admin_token"].as_str().unwrap_or_default()
            );
            eprintln!("The customer runs the script below in AWS account {account_id}; then: byok tenant verify {id}\n");
            print!("{}", answer["instructions"]["commands"].as_str().unwrap_or_default());
            Ok(())
        }
        TenantCommand::Setup { id } => {
            let answer = client.call("GET", &format!("/v1/tenants/{id}/setup"), None).await?;
            print!("{}", answer["commands"].as_str().unwrap_or_default());
            Ok(())
        }
        TenantCommand::Verify { id } => {
            let (status, answer) = client.send("POST", &format!("/v1/tenants/{id}/verify"), None).await?;
            if status != 200 && status != 422 {
                return Err(client::error_text(status, &answer));
            }
            print_verification(&answer);
            if answer["ok"] == Value::Bool(true) { Ok(()) } else { Err(format!("tenant {id} is not verified yet")) }
        }
        TenantCommand::Restore { id } => {
            let (status, answer) = client.send("POST", &format!("/v1/tenants/{id}/restore"), None).await?;
            match status {
                200 => {
                    println!("access restored: tenant {id} is active");
                    Ok(())
                }
                409 => {
                    println!("not restored yet; still to do:");
                    for m in answer["missing"].as_array().into_iter().flatten() {
                        println!("- {}", m.as_str().unwrap_or_default());
                    }
                    Err(format!("tenant {id} is still revoked"))
                }
                _ => Err(client::error_text(status, &answer)),
            }
        }
        TenantCommand::Show { id } => {
            println!("{:#}", client.call("GET", &format!("/v1/tenants/{id}"), None).await?);
            Ok(())
        }
        TenantCommand::List => {
            println!("{:#}", client.call("GET", "/v1/tenants", None).await?);
            Ok(())
        }
    }
}

async fn audit(client: Client, command: AuditCommand) -> Result<(), String> {
    match command {
        AuditCommand::List { tenant, after } => {
            for e in client.call("GET", &format!("/v1/tenants/{tenant}/audit?after={after}"), None).await?.as_array().into_iter().flatten()
            {
                println!(
                    "{:>6} {} {:<10} {:<12} {}",
                    e["seq"],
                    e["at"],
                    e["kind"].as_str().unwrap_or_default(),
                    e["reason"].as_str().unwrap_or_default(),
                    e["detail"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        AuditCommand::Verify => {
            let (status, check) = client.send("GET", "/v1/audit/verify", None).await?;
            match status {
                200 => {
                    println!("audit log intact: {} entries, head {}", check["entries"], check["head"].as_str().unwrap_or_default());
                    Ok(())
                }
                409 => Err(format!("audit log broken at entry {}: {}", check["first_bad"], check["problem"].as_str().unwrap_or_default())),
                _ => Err(client::error_text(status, &check)),
            }
        }
    }
}

async fn ticket(client: Client, command: TicketCommand) -> Result<(), String> {
    match command {
        TicketCommand::List => {
            for t in client.call("GET", "/v1/tickets", None).await?.as_array().into_iter().flatten() {
                println!(
                    "#{} [{}] {} (tenant {}, updated {})",
                    t["id"],
                    t["status"].as_str().unwrap_or_default(),
                    t["title"].as_str().unwrap_or_default(),
                    t["tenant"].as_str().unwrap_or_default(),
                    t["updated_at"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        TicketCommand::Show { id } => {
            let answer = client.call("GET", &format!("/v1/tickets/{id}"), None).await?;
            let t = &answer["ticket"];
            println!("#{} [{}] {}", t["id"], t["status"].as_str().unwrap_or_default(), t["title"].as_str().unwrap_or_default());
            for c in answer["comments"].as_array().into_iter().flatten() {
                println!(
                    "\n--- {} at {}\n{}",
                    c["author"].as_str().unwrap_or_default(),
                    c["created_at"].as_str().unwrap_or_default(),
                    c["body"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        TicketCommand::Comment { id, body } => {
            let answer = client.call("POST", &format!("/v1/tickets/{id}/comments"), Some(json!({ "body": body }))).await?;
            match answer["restoration"].as_object() {
                Some(r) if r.get("restored") == Some(&Value::Bool(true)) => println!("access restored"),
                Some(r) => {
                    println!("not restored yet:");
                    for m in r.get("missing").and_then(Value::as_array).into_iter().flatten() {
                        println!("- {}", m.as_str().unwrap_or_default());
                    }
                }
                None => println!("comment added"),
            }
            Ok(())
        }
    }
}

fn print_verification(v: &Value) {
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    println!(
        "[{}] role: {}",
        mark(v["trust_ok"] == Value::Bool(true)),
        v["trust_problem"].as_str().unwrap_or("assumable with the external id, and not without")
    );
    for w in v["warnings"].as_array().into_iter().flatten() {
        println!("[warn] {}", w.as_str().unwrap_or_default());
    }
    for r in v["regions"].as_array().into_iter().flatten() {
        let ok = r["ok"] == Value::Bool(true);
        let detail = if ok { r["key_arn"].as_str().unwrap_or_default() } else { r["problem"].as_str().unwrap_or_default() };
        println!("[{}] {}: {detail}", mark(ok), r["region"].as_str().unwrap_or_default());
    }
    println!(
        "{}",
        if v["ok"] == Value::Bool(true) { "tenant is active" } else { "tenant is still onboarding: fix the above and verify again" }
    );
}
