//! The `byok` command. The binary only parses flags; everything is here, callable by tests.
//!
//! # Layout
//! - [`Cli`] and [`run`]: the commands.
//! - [`serve`]: the broker, its store, its provider identity, and (by default) an embedded
//!   localcloud, from validated [`serve::ServeParams`].
//! - [`provider`]: where the provider's own AWS credentials come from.
//! - [`demo`]: `byok demo`, the customer guide's story end to end.
//! - [`doctor`]: `byok doctor`, a production configuration checked before it serves.
//! - `commands`: the API commands (`tenant`, `ticket`, `audit`, `revocations`, `token`,
//!   `identity`, `webhook`, `alerts`, `encrypt`, `decrypt`), a module each owning its clap enum
//!   and handler; `migrate` works on the store directly; `provider` prints the provider's side on AWS.
//! - [`client`]: the API client those commands use; [`routes`]: every route as one of its typed
//!   methods, each path written once.
//! - [`traces`]: OpenTelemetry traces over OTLP/HTTP for `byok serve --otlp-endpoint`.
//! - [`error`](mod@error): [`CliError`], every failure with its cause.
#![forbid(unsafe_code)]

pub mod client;
mod commands;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod logs;
pub mod provider;
pub mod routes;
pub mod serve;
pub mod traces;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::Client;
pub use crate::error::CliError;
pub use crate::logs::LogFormat;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (with an embedded localcloud unless --aws-endpoint or --real-aws).
    Serve(Box<serve::ServeArgs>),
    /// The store's schema on purpose: status, up [--dry-run] (before an upgrade; `byok serve
    /// --no-auto-migrate` then refuses to start while any is pending).
    Migrate(commands::migrate::MigrateArgs),
    /// Check a configuration the way production will use it (the same flags, environment and
    /// --config file as `serve`): the store and its TLS mode, the API's certificate, the tokens,
    /// and with --real-aws the provider's identity, the canary and every region's STS and KMS
    /// endpoints. Prints a checklist; exit code 1 if any check fails. Changes nothing.
    Doctor(Box<serve::ServeArgs>),
    /// The provider's own side on AWS: `setup` prints the provider role and the canary to create
    /// (a script of aws commands or CloudFormation).
    Provider {
        #[command(subcommand)]
        command: commands::provider::ProviderCommand,
    },
    /// Play the customer guide's story end to end on an embedded localcloud: onboard, revoke,
    /// restore one region (refused), restore fully, revoke, 16 days later: gone.
    Demo {
        /// `byok`: the seed's role-based story; `cmk`: customer-managed keys, granted by key
        /// policy alone (no role), with a context tag.
        #[arg(long, value_enum, default_value_t = demo::DemoMode::Byok)]
        mode: demo::DemoMode,
    },
    /// Write a man page for byok and each of its commands into DIR (for packaging).
    #[command(hide = true)]
    Manpages { dir: std::path::PathBuf },
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
        command: commands::tenant::TenantCommand,
    },
    /// The audit log: list entries, verify the hash chain.
    Audit {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: commands::audit::AuditCommand,
    },
    /// Revocations held for a person (too many tenants denied at once): list, release, dismiss.
    Revocations {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: commands::revocations::RevocationsCommand,
    },
    /// API tokens: list, create (or reissue), revoke.
    Token {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: commands::token::TokenCommand,
    },
    /// IAM roles whose sessions sign in with AWS for a short-lived service token: add, list,
    /// remove.
    Identity {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: commands::identity::IdentityCommand,
    },
    /// Webhook endpoints for a tenant's events (or the operator's): add, list, remove,
    /// rotate-secret, test, deliveries, redeliver.
    Webhook {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: commands::webhook::WebhookCommand,
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
        command: commands::ticket::TicketCommand,
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

impl Cli {
    /// Where `byok serve` exports traces (`--otlp-endpoint`, its variable or config key), if
    /// anywhere; other commands export none.
    pub fn otlp_endpoint(&self) -> Option<String> {
        match &self.command {
            Command::Serve(args) => serve::otlp_endpoint(args),
            _ => None,
        }
    }

    /// The log level when `BYOK_LOG` is not set: the demo narrates, so only errors are logged.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Demo { .. } | Command::Manpages { .. } | Command::Provider { .. } => "error",
            // The checklist is the output; a log line only when something is wrong.
            Command::Doctor(_) => "warn",
            Command::Serve(_)
            | Command::Migrate(_)
            | Command::Localcloud { .. }
            | Command::Tenant { .. }
            | Command::Ticket { .. }
            | Command::Revocations { .. }
            | Command::Token { .. }
            | Command::Identity { .. }
            | Command::Webhook { .. }
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
        Command::Migrate(args) => commands::migrate::run(args).await,
        Command::Doctor(args) => doctor::run(*args).await,
        Command::Demo { mode } => demo::run(mode).await,
        Command::Provider { command } => commands::provider::run(command),
        Command::Manpages { dir } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&dir).map_err(CliError::io(format!("cannot make {}", dir.display())))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(CliError::io(format!("cannot write man pages into {}", dir.display())))?;
            println!("{}", dir.display());
            Ok(())
        }
        Command::Localcloud { listen, data_dir } => {
            let cloud = std::sync::Arc::new(localcloud::Cloud::open(Some(&data_dir)).map_err(CliError::LocalcloudStart)?);
            localcloud::server::run(listen, cloud).await.map_err(CliError::io(format!("localcloud on {listen}")))
        }
        Command::Tenant { api, command } => commands::tenant::run(Client::new(&api)?, command).await,
        Command::Ticket { api, command } => commands::ticket::run(Client::new(&api)?, command).await,
        Command::Audit { api, command } => commands::audit::run(Client::new(&api)?, command).await,
        Command::Revocations { api, command } => commands::revocations::run(Client::new(&api)?, command).await,
        Command::Token { api, command } => commands::token::run(Client::new(&api)?, command).await,
        Command::Identity { api, command } => commands::identity::run(Client::new(&api)?, command).await,
        Command::Webhook { api, command } => commands::webhook::run(Client::new(&api)?, command).await,
        Command::Alerts { api, open } => commands::alerts::run(Client::new(&api)?, open).await,
        Command::Encrypt { api, tenant, context, text } => commands::data::encrypt(Client::new(&api)?, &tenant, context, text).await,
        Command::Decrypt { api, tenant, context, record } => commands::data::decrypt(Client::new(&api)?, &tenant, context, record).await,
    }
}
