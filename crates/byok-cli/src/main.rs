#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    use std::io::IsTerminal;
    let cli = byok_cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BYOK_LOG").unwrap_or_else(|_| cli.default_log_level().into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        byok_cli::LogFormat::Json => logs.json().init(),
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        byok_cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    byok_cli::run(cli)
}
