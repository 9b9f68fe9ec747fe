#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    use std::io::IsTerminal;
    let cli = byok_cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BYOK_LOG").unwrap_or_else(|_| cli.default_log_level().into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match cli.log_format {
        byok_cli::LogFormat::Json => logs.json().with_filter(filter).boxed(),
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        byok_cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).with_filter(filter).boxed(),
    };
    let provider = match cli.otlp_endpoint().as_deref().map(byok_cli::traces::provider).transpose() {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry().with(logs).with(provider.as_ref().map(byok_cli::traces::layer)).init();
    let code = byok_cli::run(cli);
    // The last batch leaves before the process does.
    if let Some(provider) = provider {
        let _ = provider.shutdown();
    }
    code
}
