//! The `localcloud` command line: `serve` and `account create`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::admin_client;
use crate::cloud::Cloud;
use crate::server;

/// An AWS-wire-compatible emulator of IAM, STS and KMS.
#[derive(Debug, Parser)]
#[command(name = "localcloud", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve KMS, IAM, STS and the /_localcloud admin endpoints on one port.
    Serve {
        /// Address to listen on (loopback unless you mean it).
        #[arg(long, env = "LOCALCLOUD_LISTEN", default_value = "127.0.0.1:4566")]
        listen: SocketAddr,
        /// Directory for the state, journal and trail; created if missing.
        #[arg(long, env = "LOCALCLOUD_DATA_DIR", default_value = "data/localcloud", conflicts_with = "in_memory")]
        data_dir: PathBuf,
        /// Keep nothing on disk.
        #[arg(long)]
        in_memory: bool,
        /// Require this bearer token on the /_localcloud admin endpoints (clients send it from
        /// LOCALCLOUD_ADMIN_TOKEN). They answer loopback peers only in any case.
        #[arg(long, env = "LOCALCLOUD_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Serve HTTPS, as real AWS endpoints do, with this certificate (PEM); needs --tls-key.
        /// Clients trust its CA with `aws --ca-bundle`, `AWS_CA_BUNDLE` or boto3's `verify=`.
        #[arg(long, env = "LOCALCLOUD_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, env = "LOCALCLOUD_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The trail's queryable window in memory, in MiB.
        #[arg(long, env = "LOCALCLOUD_TRAIL_MEMORY_MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        trail_memory_mib: u32,
        /// A trail file's size before it is rotated, in MiB.
        #[arg(long, env = "LOCALCLOUD_TRAIL_FILE_MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        trail_file_mib: u32,
        /// Trail files kept on disk (the current one and the rotated ones).
        #[arg(long, env = "LOCALCLOUD_TRAIL_FILES", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
        trail_files: u32,
    },
    /// Manage the emulated AWS accounts of a running localcloud.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an account and print its root credentials.
    Create {
        #[arg(long)]
        name: String,
        /// A 12-digit id to use instead of a random one.
        #[arg(long)]
        account_id: Option<String>,
        /// The running localcloud.
        #[arg(long, env = "LOCALCLOUD_ENDPOINT", default_value = "http://127.0.0.1:4566")]
        endpoint: String,
        /// Print `export AWS_…=…` lines for a shell instead of JSON.
        #[arg(long)]
        env: bool,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve { listen, data_dir, in_memory, admin_token, tls_cert, tls_key, trail_memory_mib, trail_file_mib, trail_files } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => match server::tls_acceptor(&cert, &key) {
                    Ok(acceptor) => Some(acceptor),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                _ => None,
            };
            let limits = crate::trail::TrailLimits {
                memory_bytes: (trail_memory_mib as usize) << 20,
                file_bytes: u64::from(trail_file_mib) << 20,
                files: trail_files as usize,
            };
            let cloud = match Cloud::open_with((!in_memory).then_some(data_dir.as_path()), limits) {
                Ok(cloud) => {
                    cloud.set_admin_token(admin_token.map(zeroize::Zeroizing::new));
                    Arc::new(cloud)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::run_with(listen, cloud, tls)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot serve on {listen}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Account { command: AccountCommand::Create { name, account_id, endpoint, env } } => {
            let body = serde_json::json!({ "name": name, "account_id": account_id });
            match runtime.block_on(admin_client::request(&endpoint, "POST", "/_localcloud/accounts", Some(&body))) {
                Ok((201, created)) => {
                    if env {
                        println!("# localcloud account {} ({})", created["account_id"].as_str().unwrap_or_default(), name);
                        println!("export AWS_ACCESS_KEY_ID={}", created["access_key_id"].as_str().unwrap_or_default());
                        println!("export AWS_SECRET_ACCESS_KEY={}", created["secret_access_key"].as_str().unwrap_or_default());
                    } else {
                        println!("{created:#}");
                    }
                    ExitCode::SUCCESS
                }
                Ok((status, answer)) => {
                    eprintln!("error: localcloud refused ({status}): {}", answer["message"].as_str().unwrap_or("no message"));
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: cannot reach localcloud at {endpoint}: {e}. Is `localcloud serve` running?");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
