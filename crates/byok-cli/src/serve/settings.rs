//! Every `byok serve` setting and its default, written once ([`Settings::default`]), layered
//! with `figment`: the defaults, then the `--config` TOML file, then the flags and `BYOK_*`
//! environment that clap read ([`ServeArgs`]; a flag left unset does not take part).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::Serialized;
use serde::{Deserialize, Serialize};

use super::args::ServeArgs;
use crate::error::CliError;

/// The merged settings, before validation (see [`super::ServeParams::from_args`]).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: SQLite in the data directory.
    pub store_url: Option<String>,
    pub aws_endpoint: Option<String>,
    pub real_aws: bool,
    pub localcloud_listen: SocketAddr,
    pub provider_account_id: String,
    pub provider_role: String,
    pub provider_role_arn: Option<String>,
    pub role_name: String,
    pub alias_prefix: String,
    pub cache_ttl_seconds: u64,
    pub allow_legacy_trust: bool,
    pub monitor_interval_seconds: u64,
    pub confirmations: u32,
    pub canary_role_arn: Option<String>,
    pub canary_external_id: Option<String>,
    pub canary_key: String,
    pub canary_region: byok_domain::Region,
    pub canary_cmk_key: Option<String>,
    pub max_revocations_per_pass: usize,
    pub audit_every_probe: bool,
    /// 0: no budget.
    pub aws_calls_per_second: u32,
    pub monitor_concurrency: usize,
    /// `None`: a random name.
    pub node_id: Option<String>,
    pub lease_ttl_seconds: u64,
    pub max_revocations_percent: f64,
    /// `None`: no scheduled rotation.
    pub rotate_after_days: Option<u32>,
    pub grace_days: u32,
    pub max_body: usize,
    pub max_batch_items: usize,
    pub drain_seconds: u64,
    pub access_log: bool,
    /// `None`: no traces.
    pub otlp_endpoint: Option<String>,
    pub aws_sign_in_server_id: Option<String>,
    /// Only with `aws_sign_in_server_id`; `None`: 15 minutes.
    pub aws_sign_in_token_minutes: Option<u32>,
    /// `None`: unlimited.
    pub rate_limit_per_identity: Option<u32>,
    pub request_timeout_seconds: u64,
    pub max_in_flight: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub client_identity: Vec<String>,
    pub console_secure_cookies: bool,
    /// The name customers see in the console.
    pub product_name: String,
    pub no_auto_migrate: bool,
    /// Empty: any host.
    pub webhook_allowed_hosts: Vec<String>,
    /// `None`: no email.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    /// `None`: `audit-signing.key` in the data directory, made on first start.
    pub audit_signing_key: Option<PathBuf>,
    /// `None`: the audit log is not streamed.
    pub audit_sink: Option<String>,
    pub audit_sink_secret: Option<String>,
    pub public_url: Option<String>,
    /// `None`: generated, written to the data directory.
    pub operator_token: Option<String>,
    pub service_token: Option<String>,
    /// The locations table (TOML only): `[locations]` then `eu = ["eu-central-1", "eu-west-1"]`;
    /// replaces the defaults.
    pub locations: Option<BTreeMap<String, Vec<byok_domain::Region>>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and the store URL (it may carry a password) are left out.
        f.debug_struct("Settings").field("listen", &self.listen).field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            store_url: None,
            aws_endpoint: None,
            real_aws: false,
            localcloud_listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            provider_account_id: "279766244153".into(),
            provider_role: "Cryptor-OSB-Provider".into(),
            provider_role_arn: None,
            role_name: "byok-key-management".into(),
            alias_prefix: "alias/byok-".into(),
            cache_ttl_seconds: 300,
            allow_legacy_trust: false,
            monitor_interval_seconds: 60,
            confirmations: 2,
            canary_role_arn: None,
            canary_external_id: None,
            canary_key: "alias/byok-canary".into(),
            canary_region: byok_domain::Region::us_east_1(),
            canary_cmk_key: None,
            max_revocations_per_pass: 3,
            audit_every_probe: false,
            aws_calls_per_second: 1000,
            monitor_concurrency: 32,
            node_id: None,
            lease_ttl_seconds: 10,
            max_revocations_percent: 5.0,
            rotate_after_days: None,
            grace_days: 15,
            max_body: byok_server::DEFAULT_BODY_LIMIT,
            max_batch_items: byok_server::DEFAULT_BATCH_ITEMS,
            drain_seconds: 5,
            access_log: false,
            otlp_endpoint: None,
            aws_sign_in_server_id: None,
            aws_sign_in_token_minutes: None,
            rate_limit_per_identity: None,
            request_timeout_seconds: 30,
            max_in_flight: byok_server::limits::DEFAULT_MAX_IN_FLIGHT,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            client_identity: Vec::new(),
            console_secure_cookies: false,
            product_name: "byok".into(),
            no_auto_migrate: false,
            webhook_allowed_hosts: Vec::new(),
            smtp_url: None,
            smtp_from: "byok <byok@localhost>".into(),
            audit_signing_key: None,
            audit_sink: None,
            audit_sink_secret: None,
            public_url: None,
            operator_token: None,
            service_token: None,
            locations: None,
        }
    }
}

impl Settings {
    /// The defaults, the file (when given), then the flags and environment.
    pub fn load(args: &ServeArgs) -> Result<Self, CliError> {
        let mut layers = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &args.config {
            let table: toml::Table = toml::from_str(&read(path)?)
                .map_err(|e| CliError::Config(format!("{} is not a valid byok config: {e}", path.display())))?;
            layers = layers.merge(Serialized::defaults(table));
        }
        layers.merge(Serialized::defaults(args)).extract().map_err(|e| {
            let place = args.config.as_deref().map(|p| format!("{} is not a valid byok config", p.display()));
            CliError::Config(format!("{}: {e}", place.unwrap_or_else(|| "invalid settings".into())))
        })
    }

    /// The store's URL: as given, or SQLite in the data directory.
    pub fn store_url(&self) -> String {
        self.store_url.clone().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("byok.db").display()))
    }
}

/// A missing or unreadable file is an error, never skipped.
fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(CliError::io(format!("cannot read {}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("byok.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let (_dir, path) = file("grace_days = 20\nmonitor_interval_seconds = 7\naccess_log = true\n[locations]\nxx = [\"eu-west-1\"]\n");
        let args = ServeArgs { config: Some(path), monitor_interval_seconds: Some(3), ..ServeArgs::default() };
        let s = Settings::load(&args).expect("load");
        assert_eq!((s.grace_days, s.monitor_interval_seconds, s.access_log), (20, 3, true));
        assert_eq!(s.cache_ttl_seconds, 300, "untouched: the default");
        assert_eq!(s.locations.expect("table")["xx"].len(), 1);
        // An unset flag (false, None, empty) leaves the file's value.
        assert!(!ServeArgs::default().access_log);
    }

    #[test]
    fn an_unknown_or_mistyped_key_is_refused_by_name() {
        let (_dir, path) = file("grace_dayz = 20\n");
        let e = Settings::load(&ServeArgs { config: Some(path), ..ServeArgs::default() }).err().expect("refused").to_string();
        assert!(e.contains("grace_dayz") && e.contains("byok.toml"), "{e}");
        let (_dir, path) = file("grace_days = \"soon\"\n");
        let e = Settings::load(&ServeArgs { config: Some(path), ..ServeArgs::default() }).err().expect("refused").to_string();
        assert!(e.contains("grace_days"), "{e}");
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let args = ServeArgs { config: Some(PathBuf::from("/nonexistent/byok.toml")), ..ServeArgs::default() };
        assert!(Settings::load(&args).err().expect("refused").to_string().contains("cannot read /nonexistent/byok.toml"));
    }
}
