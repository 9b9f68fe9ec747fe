//! `byok serve`'s configuration in two stages: flags / `BYOK_*` environment ([`ServeArgs`]),
//! layered over the TOML file and the defaults ([`super::settings::Settings`]) → validated
//! [`ServeParams`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use byok_broker::{BrokerConfig, SystemClock};
use zeroize::Zeroizing;

use super::args::ServeArgs;
use super::settings::Settings;
use crate::error::CliError;

/// Where the customers' AWS is.
#[derive(Debug, Clone)]
pub enum Aws {
    /// Start localcloud in-process on this address.
    Embedded(SocketAddr),
    /// A localcloud already running at this URL.
    Endpoint(String),
    /// Real AWS, with the canary the operator set up there.
    Real { provider_role_arn: String, canary: byok_broker::CanaryConfig },
}

/// Validated parameters.
pub struct ServeParams {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store_url: String,
    /// Whether pending migrations are applied at start.
    pub auto_migrate: byok_store::AutoMigrate,
    /// Hosts webhook endpoints may point at; `None`: any.
    pub webhook_hosts: Option<Vec<String>>,
    /// Where the audit log streams to, if anywhere.
    pub audit_sink: Option<byok_broker::audit_sink::SinkTarget>,
    /// The audit checkpoints' signing key file.
    pub audit_signing_key: PathBuf,
    /// Email to contacts, when configured.
    pub smtp: Option<byok_broker::email::SmtpConfig>,
    pub aws: Aws,
    pub provider_account_id: String,
    pub provider_role: String,
    pub role_name: String,
    pub alias_prefix: String,
    pub cache_ttl: Duration,
    pub allow_legacy_trust: bool,
    pub monitor_interval: Duration,
    pub confirmations: u32,
    pub hold_threshold: byok_broker::HoldThreshold,
    pub node_id: Option<String>,
    pub lease_ttl: Duration,
    pub audit_every_probe: bool,
    /// `None`: no budget.
    pub aws_calls_per_second: Option<u32>,
    pub monitor_concurrency: usize,
    pub canary_key: String,
    pub canary_region: byok_domain::Region,
    pub grace_days: u32,
    /// `None`: no scheduled rotation.
    pub rotate_after: Option<time::Duration>,
    pub max_body: usize,
    pub max_batch_items: usize,
    pub drain: Duration,
    pub console_secure_cookies: bool,
    /// The name customers see in the console.
    pub product_name: String,
    /// HTTPS for the API, when configured.
    pub tls: Option<byok_server::tls::TlsFiles>,
    /// The limits on every caller.
    pub limits: byok_server::limits::Limits,
    pub access_log: bool,
    /// Sign-in with AWS: the server id and how long its tokens last, when enabled.
    pub aws_sign_in: Option<(String, time::Duration)>,
    /// Client-certificate common names and the tenants each reaches (mutual TLS).
    pub client_identities: std::collections::HashMap<String, byok_store::ServiceReach>,
    pub operator_token: Option<Zeroizing<String>>,
    pub service_token: Option<Zeroizing<String>>,
    pub locations: byok_domain::Locations,
    /// The broker's clock (the wall clock; `byok demo` moves one forward).
    pub clock: Arc<dyn byok_broker::Clock>,
}

impl std::fmt::Debug for ServeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeParams")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("aws", &self.aws)
            .finish_non_exhaustive()
    }
}

impl ServeParams {
    pub fn from_args(args: ServeArgs) -> Result<Self, CliError> {
        let s = Settings::load(&args)?;
        let store_url = s.store_url();
        let aws = match (s.aws_endpoint, s.real_aws) {
            (Some(_), true) => return Err(CliError::Config("give either --aws-endpoint or --real-aws, not both".into())),
            (Some(url), false) => {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(CliError::Config(format!(
                        "--aws-endpoint must be http://HOST:PORT or https://HOST:PORT (a localcloud; AWS_CA_BUNDLE for a private CA), not {url}"
                    )));
                }
                Aws::Endpoint(url)
            }
            (None, true) => Aws::Real {
                provider_role_arn: s
                    .provider_role_arn
                    .ok_or_else(|| CliError::Config("--real-aws needs --provider-role-arn: the role the broker runs as".into()))?,
                canary: byok_broker::CanaryConfig {
                    role_arn: s
                        .canary_role_arn
                        .ok_or_else(|| {
                            CliError::Config(
                                "--real-aws needs --canary-role-arn: a role in the provider's account that trusts the provider with an external id, proven before any denial counts".into(),
                            )
                        })?
                        .parse()?,
                    external_id: s
                        .canary_external_id
                        .ok_or_else(|| CliError::Config("--real-aws needs --canary-external-id (the canary role's sts:ExternalId)".into()))?
                        .parse()?,
                    key: s.canary_key.clone(),
                    region: s.canary_region.clone(),
                    key_policy_key: s.canary_cmk_key.clone(),
                },
            },
            (None, false) => Aws::Embedded(s.localcloud_listen),
        };
        if s.monitor_interval_seconds == 0 {
            return Err(CliError::Config("the monitor interval is at least 1 second".into()));
        }
        if s.grace_days == 0 || s.grace_days > 365 {
            return Err(CliError::Config(format!("the grace period is 1 to 365 days, not {}", s.grace_days)));
        }
        if s.cache_ttl_seconds == 0 || s.cache_ttl_seconds > 86_400 {
            return Err(CliError::Config(format!("the cache TTL is 1 to 86400 seconds, not {}", s.cache_ttl_seconds)));
        }
        Ok(Self {
            listen: s.listen,
            store_url,
            webhook_hosts: match s
                .webhook_allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect::<Vec<_>>()
            {
                hosts if hosts.is_empty() => None,
                hosts => Some(hosts),
            },
            smtp: match s.smtp_url {
                None => None,
                Some(url) if url.starts_with("smtp://") || url.starts_with("smtps://") => {
                    if s.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
                        return Err(CliError::Config(format!(
                            "--smtp-from is an address (e.g. byok <byok@example.com>), not {}",
                            s.smtp_from
                        )));
                    }
                    Some(byok_broker::email::SmtpConfig { url, from: s.smtp_from.clone(), console_url: s.public_url.clone() })
                }
                Some(_) => return Err(CliError::Config("--smtp-url is smtp://HOST:PORT or smtps://HOST:PORT".into())),
            },
            auto_migrate: if s.no_auto_migrate { byok_store::AutoMigrate::No } else { byok_store::AutoMigrate::Yes },
            aws,
            provider_account_id: s.provider_account_id,
            provider_role: s.provider_role,
            role_name: s.role_name,
            alias_prefix: s.alias_prefix,
            cache_ttl: Duration::from_secs(s.cache_ttl_seconds),
            allow_legacy_trust: s.allow_legacy_trust,
            monitor_interval: Duration::from_secs(s.monitor_interval_seconds),
            confirmations: s.confirmations.max(1),
            hold_threshold: byok_broker::HoldThreshold {
                tenants: s.max_revocations_per_pass,
                percent: match s.max_revocations_percent {
                    p if (0.0..=100.0).contains(&p) => p,
                    p => return Err(CliError::Config(format!("--max-revocations-percent is 0 to 100, not {p}"))),
                },
            },
            node_id: s.node_id,
            audit_every_probe: s.audit_every_probe,
            aws_calls_per_second: match s.aws_calls_per_second {
                0 => None,
                n => Some(n),
            },
            monitor_concurrency: match s.monitor_concurrency {
                n @ 1..=1024 => n,
                n => return Err(CliError::Config(format!("the monitor concurrency is 1 to 1024, not {n}"))),
            },
            lease_ttl: match s.lease_ttl_seconds {
                ttl @ 2..=300 => Duration::from_secs(ttl),
                ttl => return Err(CliError::Config(format!("the lease TTL is 2 to 300 seconds, not {ttl}"))),
            },
            canary_key: s.canary_key,
            canary_region: s.canary_region,
            grace_days: s.grace_days,
            rotate_after: match s.rotate_after_days {
                None => None,
                Some(days @ 1..=3650) => Some(time::Duration::days(i64::from(days))),
                Some(days) => return Err(CliError::Config(format!("--rotate-after-days is 1 to 3650, not {days}"))),
            },
            max_body: s.max_body,
            max_batch_items: match s.max_batch_items {
                n @ 1..=100_000 => n,
                n => return Err(CliError::Config(format!("--max-batch-items is 1 to 100000, not {n}"))),
            },
            drain: match s.drain_seconds {
                secs @ 0..=600 => Duration::from_secs(secs),
                secs => return Err(CliError::Config(format!("--drain-seconds is 0 to 600, not {secs}"))),
            },
            console_secure_cookies: s.console_secure_cookies,
            product_name: match s.product_name.trim() {
                name if (1..=40).contains(&name.chars().count()) && !name.chars().any(char::is_control) => name.to_string(),
                _ => return Err(CliError::Config("--product-name is 1 to 40 printable characters".into())),
            },
            client_identities: client_identities(&s.client_identity, s.client_ca.is_some())?,
            aws_sign_in: match (s.aws_sign_in_server_id, s.aws_sign_in_token_minutes) {
                (None, None) => None,
                (None, Some(_)) => return Err(CliError::Config("--aws-sign-in-token-minutes needs --aws-sign-in-server-id".into())),
                (Some(id), _) if id.trim().is_empty() || id.len() > 256 => {
                    return Err(CliError::Config("--aws-sign-in-server-id is 1 to 256 characters".into()));
                }
                (Some(id), minutes) => match minutes.unwrap_or(15) {
                    m @ 1..=720 => Some((id, time::Duration::minutes(i64::from(m)))),
                    m => return Err(CliError::Config(format!("--aws-sign-in-token-minutes is 1 to 720, not {m}"))),
                },
            },
            access_log: s.access_log,
            limits: byok_server::limits::Limits::new(
                s.rate_limit_per_identity,
                match s.request_timeout_seconds {
                    secs @ 1..=3600 => Duration::from_secs(secs),
                    secs => return Err(CliError::Config(format!("--request-timeout-seconds is 1 to 3600, not {secs}"))),
                },
                match s.max_in_flight {
                    n @ 1..=1_000_000 => n,
                    n => return Err(CliError::Config(format!("--max-in-flight is 1 to 1000000, not {n}"))),
                },
            ),
            tls: match (s.tls_cert, s.tls_key, s.client_ca) {
                (Some(cert), Some(key), client_ca) => Some(byok_server::tls::TlsFiles { cert, key, client_ca }),
                (None, None, None) => None,
                (Some(_), None, _) => return Err(CliError::Config("--tls-cert needs --tls-key (the certificate's private key)".into())),
                (None, Some(_), _) => return Err(CliError::Config("--tls-key needs --tls-cert".into())),
                (None, None, Some(_)) => {
                    return Err(CliError::Config(
                        "--client-ca (mutual TLS) needs --tls-cert and --tls-key: the API must serve HTTPS".into(),
                    ));
                }
            },
            operator_token: s.operator_token.map(Zeroizing::new),
            service_token: s.service_token.map(Zeroizing::new),
            locations: match s.locations {
                Some(table) => byok_domain::Locations::new(table).map_err(|e| CliError::Config(format!("[locations]: {e}")))?,
                None => byok_domain::Locations::default(),
            },
            clock: clock_from_env()?,
            audit_signing_key: s.audit_signing_key.unwrap_or_else(|| s.data_dir.join("audit-signing.key")),
            audit_sink: match &s.audit_sink {
                None => None,
                Some(text) => Some(
                    byok_broker::audit_sink::SinkTarget::parse(text)
                        .and_then(|t| t.with_secret(s.audit_sink_secret.as_deref()))
                        .map_err(|e| CliError::Config(e.to_string()))?,
                ),
            },
            data_dir: s.data_dir,
        })
    }
}

/// `NAME=acme,globex` / `NAME=*` mappings from client-certificate common names to the tenants
/// their service reaches.
fn client_identities(given: &[String], mutual_tls: bool) -> Result<std::collections::HashMap<String, byok_store::ServiceReach>, CliError> {
    if !given.is_empty() && !mutual_tls {
        return Err(CliError::Config("--client-identity needs --client-ca: identities come from verified client certificates".into()));
    }
    let mut map = std::collections::HashMap::new();
    for entry in given {
        let bad = || CliError::Config(format!("--client-identity is NAME=TENANT[,TENANT…] or NAME=*, not {entry}"));
        let (name, tenants) = entry.split_once('=').ok_or_else(bad)?;
        let (name, tenants) = (name.trim(), tenants.trim());
        if name.is_empty() || tenants.is_empty() {
            return Err(bad());
        }
        let reach = if tenants == "*" {
            byok_store::ServiceReach::AllTenants
        } else {
            let ids = tenants.split(',').map(|t| t.trim().parse::<byok_domain::TenantId>()).collect::<Result<_, _>>()?;
            byok_store::ServiceReach::Tenants(ids)
        };
        if map.insert(name.to_string(), reach).is_some() {
            return Err(CliError::Config(format!("--client-identity names {name} twice")));
        }
    }
    Ok(map)
}

impl ServeParams {
    /// The broker's configuration: these settings, the provider's principal and its canary.
    pub fn broker_config(&self, provider: byok_domain::RoleArn, canary: byok_broker::CanaryConfig) -> Result<BrokerConfig, CliError> {
        let defaults = BrokerConfig::new(provider);
        Ok(BrokerConfig {
            locations: self.locations.clone(),
            role_name: self.role_name.clone(),
            alias_prefix: self.alias_prefix.clone(),
            cache_ttl: time::Duration::try_from(self.cache_ttl).map_err(|e| CliError::Config(format!("the cache TTL: {e}")))?,
            allow_legacy_trust: self.allow_legacy_trust,
            grace_period: time::Duration::days(i64::from(self.grace_days)),
            monitor_interval: self.monitor_interval,
            monitor_concurrency: self.monitor_concurrency,
            confirmations: self.confirmations,
            canary: Some(canary),
            hold_threshold: self.hold_threshold,
            summarize_probes: !self.audit_every_probe,
            node_id: self.node_id.clone().unwrap_or(defaults.node_id.clone()),
            lease_ttl: self.lease_ttl,
            rotate_after: self.rotate_after,
            webhook_hosts: self.webhook_hosts.clone(),
            smtp: self.smtp.clone(),
            ..defaults
        })
    }
}

/// The broker's clock: the wall clock. Debug builds (tests) also read
/// `BYOK_TEST_CLOCK_OFFSET_SECONDS` to start "N seconds later", so that a test can restart the
/// real binary past a deadline; release builds ignore it, so no setting can make a production
/// broker destroy a tenant early.
fn clock_from_env() -> Result<Arc<dyn byok_broker::Clock>, CliError> {
    #[cfg(debug_assertions)]
    if let Ok(raw) = std::env::var("BYOK_TEST_CLOCK_OFFSET_SECONDS") {
        let seconds: i64 =
            raw.parse().map_err(|_| CliError::Config(format!("BYOK_TEST_CLOCK_OFFSET_SECONDS must be a number, not {raw}")))?;
        let clock = byok_broker::OffsetClock::default();
        clock.advance(time::Duration::seconds(seconds));
        tracing::warn!(seconds, "test clock offset in force (debug build)");
        return Ok(Arc::new(clock));
    }
    Ok(Arc::new(SystemClock))
}
