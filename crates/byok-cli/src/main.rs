#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = byok_cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BYOK_LOG").unwrap_or_else(|_| cli.default_log_level().into()))
        .with_writer(std::io::stderr)
        .init();
    byok_cli::run(cli)
}
