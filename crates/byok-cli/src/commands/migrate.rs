//! `byok migrate status|up`: the store's schema on purpose. `status` shows what is applied,
//! pending, or newer than this byok (exit 1 unless current); `up` applies the pending
//! migrations (`--dry-run`: only says which). Reads the store URL as `byok serve` does: flags,
//! environment, then the `--config` file, then the default SQLite file in the data directory.

use std::path::PathBuf;

use byok_store::{MigrationStatus, SqlStore};

use crate::error::CliError;
use crate::serve::{ServeArgs, Settings};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    command: MigrateCommand,
    /// The TOML file `byok serve` reads (its `store_url` and `data_dir`).
    #[arg(long, env = "BYOK_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// `sqlite://PATH?mode=rwc` or `postgres://…` [default: SQLite in the data directory].
    #[arg(long, env = "BYOK_STORE_URL", hide_env_values = true, global = true)]
    store_url: Option<String>,
    /// The state directory, for the default SQLite store [default: data].
    #[arg(long, env = "BYOK_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum MigrateCommand {
    /// What the store has applied, what is pending, what is newer than this byok. Exit code 1
    /// unless the schema is current.
    Status,
    /// Apply the pending migrations (never to a schema newer than this byok).
    Up {
        /// Say which migrations would be applied; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(crate) async fn run(args: MigrateArgs) -> Result<(), CliError> {
    let settings =
        Settings::load(&ServeArgs { config: args.config, store_url: args.store_url, data_dir: args.data_dir, ..ServeArgs::default() })?;
    let url = settings.store_url();
    let store = SqlStore::unprepared(&url).await?;
    let status = store.migration_status().await?;
    println!("store: {}", without_password(&url));
    match args.command {
        MigrateCommand::Status => {
            print_status(&status);
            if status.is_current() {
                println!("schema: current");
                Ok(())
            } else {
                Err(CliError::Config("the schema is not current (see above)".into()))
            }
        }
        MigrateCommand::Up { dry_run: true } => {
            print_status(&status);
            if status.pending.is_empty() {
                println!("nothing to apply");
            } else {
                println!("would apply {}: {}", status.pending.len(), names(&status.pending));
            }
            Ok(())
        }
        MigrateCommand::Up { dry_run: false } => {
            let applied = store.migrate_up().await?;
            if applied.is_empty() {
                println!("nothing to apply: the schema is current");
            } else {
                println!("applied {}: {}", applied.len(), names(&applied));
            }
            Ok(())
        }
    }
}

fn print_status(status: &MigrationStatus) {
    let newest = status.applied.last().map(ToString::to_string).unwrap_or_else(|| "none".into());
    println!("applied: {} (newest: {newest})", status.applied.len());
    println!("pending: {}", if status.pending.is_empty() { "none".into() } else { names(&status.pending) });
    if !status.unknown.is_empty() {
        println!("newer than this byok: {}", names(&status.unknown));
    }
    if !status.failed.is_empty() {
        println!("started and not finished: {}", names(&status.failed));
    }
}

fn names(migrations: &[byok_store::Migration]) -> String {
    migrations.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The URL with any password replaced, for printing.
pub(crate) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(super::without_password("postgres://byok:s3cret@db:5432/byok"), "postgres://byok:***@db:5432/byok");
        assert_eq!(super::without_password("sqlite:///var/lib/byok/byok.db?mode=rwc"), "sqlite:///var/lib/byok/byok.db?mode=rwc");
    }
}
