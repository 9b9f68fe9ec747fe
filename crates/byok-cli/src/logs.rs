//! How `byok` writes its log lines ([`LogFormat`]).

/// How log lines are written to stderr (see `Cli::log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
