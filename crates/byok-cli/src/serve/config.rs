//! `byok serve`'s configuration in two stages: flags / `BYOK_*` environment / TOML file
//! ([`ServeArgs`]) → validated [`ServeParams`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use byok_broker::{BrokerConfig, SystemClock};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::CliError;

/// Flags and environment; every field may also come from the `--config` TOML file (same names,
/// snake_case). Flags and environment win over the file; the file over the defaults.
#[derive(clap::Args, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// A TOML file with any of these settings.
    #[arg(long, env = "BYOK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// API address [default: 127.0.0.1:8080].
    #[arg(long, env = "BYOK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// State directory: the SQLite store, tokens, the embedded localcloud [default: data].
    #[arg(long, env = "BYOK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH?mode=rwc` or `postgres://…` [default: SQLite in the data directory].
    #[arg(long, env = "BYOK_STORE_URL", hide_env_values = true)]
    pub store_url: Option<String>,
    /// Use a localcloud (or other AWS-compatible endpoint) already running here.
    #[arg(long, env = "BYOK_AWS_ENDPOINT", conflicts_with = "real_aws")]
    pub aws_endpoint: Option<String>,
    /// Use real AWS with the default credential chain as the provider's identity.
    #[arg(long, env = "BYOK_REAL_AWS")]
    #[serde(default)]
    pub real_aws: bool,
    /// Embedded localcloud's address [default: 127.0.0.1:4566].
    #[arg(long, env = "BYOK_LOCALCLOUD_LISTEN")]
    pub localcloud_listen: Option<SocketAddr>,
    /// Provider account id in localcloud [default: 279766244153].
    #[arg(long, env = "BYOK_PROVIDER_ACCOUNT_ID")]
    pub provider_account_id: Option<String>,
    /// Provider role name in localcloud [default: Cryptor-OSB-Provider].
    #[arg(long, env = "BYOK_PROVIDER_ROLE")]
    pub provider_role: Option<String>,
    /// Provider role ARN (real AWS: the role the broker's credentials belong to).
    #[arg(long, env = "BYOK_PROVIDER_ROLE_ARN")]
    pub provider_role_arn: Option<String>,
    /// The customer role's name [default: byok-key-management].
    #[arg(long, env = "BYOK_ROLE_NAME")]
    pub role_name: Option<String>,
    /// Key alias prefix [default: alias/byok-].
    #[arg(long, env = "BYOK_ALIAS_PREFIX")]
    pub alias_prefix: Option<String>,
    /// Key cache TTL in seconds, counted from the unwrap [default: 300].
    #[arg(long, env = "BYOK_CACHE_TTL_SECONDS")]
    pub cache_ttl_seconds: Option<u64>,
    /// Accept trust policies without an sts:ExternalId condition (with a warning).
    #[arg(long, env = "BYOK_ALLOW_LEGACY_TRUST")]
    #[serde(default)]
    pub allow_legacy_trust: bool,
    /// How often every (tenant, region) is probed, in seconds (1 or more) [default: 60].
    #[arg(long, env = "BYOK_MONITOR_INTERVAL_SECONDS")]
    pub monitor_interval_seconds: Option<u64>,
    /// Consecutive definitive denials needed to revoke; 2 means a first denial is confirmed by
    /// an immediate fresh re-probe [default: 2].
    #[arg(long, env = "BYOK_CONFIRMATIONS")]
    pub confirmations: Option<u32>,
    /// The provider's canary role (real AWS; created in localcloud): a role in the provider's
    /// account trusting the provider with --canary-external-id, proven each pass before any
    /// denial counts.
    #[arg(long, env = "BYOK_CANARY_ROLE_ARN")]
    pub canary_role_arn: Option<String>,
    /// The external id in the canary role's trust policy (real AWS).
    #[arg(long, env = "BYOK_CANARY_EXTERNAL_ID", hide_env_values = true)]
    pub canary_external_id: Option<String>,
    /// The canary's KMS key, an ARN or an alias in the canary role's account [default: alias/byok-canary].
    #[arg(long, env = "BYOK_CANARY_KEY")]
    pub canary_key: Option<String>,
    /// The canary key's region [default: us-east-1].
    #[arg(long, env = "BYOK_CANARY_REGION")]
    pub canary_region: Option<byok_domain::Region>,
    /// New denials in one pass above this many tenants (and above --max-revocations-percent of
    /// the active ones) are held for a person instead of revoked [default: 3].
    #[arg(long, env = "BYOK_MAX_REVOCATIONS_PER_PASS")]
    pub max_revocations_per_pass: Option<usize>,
    /// Write every routine successful probe to the audit log, instead of one summary row per
    /// (tenant, region) per hour.
    #[arg(long, env = "BYOK_AUDIT_EVERY_PROBE")]
    #[serde(default)]
    pub audit_every_probe: bool,
    /// The provider-wide budget of STS and KMS calls a second (a token bucket every call takes
    /// from, probes and data path alike; calls wait rather than fail); 0 for none
    /// [default: 1000]. AssumeRole counts against the provider's own STS quota.
    #[arg(long, env = "BYOK_AWS_CALLS_PER_SECOND")]
    pub aws_calls_per_second: Option<u32>,
    /// Tenants probed at once by the monitor [default: 32].
    #[arg(long, env = "BYOK_MONITOR_CONCURRENCY")]
    pub monitor_concurrency: Option<usize>,
    /// This node's name in the leader lease and /healthz [default: random].
    #[arg(long, env = "BYOK_NODE_ID")]
    pub node_id: Option<String>,
    /// The leader lease's length in seconds (PostgreSQL: one node at a time runs the monitor)
    /// [default: 10].
    #[arg(long, env = "BYOK_LEASE_TTL_SECONDS")]
    pub lease_ttl_seconds: Option<u64>,
    /// See --max-revocations-per-pass [default: 5].
    #[arg(long, env = "BYOK_MAX_REVOCATIONS_PERCENT")]
    pub max_revocations_percent: Option<f64>,
    /// Rotate each tenant key once its current generation is this many days old (the leader's
    /// monitor checks each pass) [default: off: only `byok tenant rotate`].
    #[arg(long, env = "BYOK_ROTATE_AFTER_DAYS")]
    pub rotate_after_days: Option<u32>,
    /// Days from revocation to destruction [default: 15].
    #[arg(long, env = "BYOK_GRACE_DAYS")]
    pub grace_days: Option<u32>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "BYOK_MAX_BODY")]
    pub max_body: Option<usize>,
    /// The most items one batch request may carry (1 to 100000) [default: 1000].
    #[arg(long, env = "BYOK_MAX_BATCH_ITEMS")]
    pub max_batch_items: Option<usize>,
    /// On SIGTERM or ctrl-c, answer `/readyz` with 503 for this many seconds while still
    /// serving, so that a load balancer stops sending requests before the node goes
    /// [default: 5].
    #[arg(long, env = "BYOK_DRAIN_SECONDS")]
    pub drain_seconds: Option<u64>,
    /// Log one `byok::access` line per request (method, route, status, microseconds, request
    /// id). Off by default.
    #[arg(long, env = "BYOK_ACCESS_LOG")]
    #[serde(default)]
    pub access_log: bool,
    /// Take sign-ins with AWS IAM (`POST /v1/auth/aws`): the value product services put in the
    /// signed `X-Byok-Server-Id` header, naming this deployment (e.g. its API's host name).
    /// Off unless set.
    #[arg(long, env = "BYOK_AWS_SIGN_IN_SERVER_ID")]
    pub aws_sign_in_server_id: Option<String>,
    /// How long a token issued at sign-in with AWS lasts, in minutes (1 to 720) [default: 15].
    #[arg(long, env = "BYOK_AWS_SIGN_IN_TOKEN_MINUTES")]
    pub aws_sign_in_token_minutes: Option<u32>,
    /// Requests a second each identity (bearer token) may make; over it, 429 with
    /// `Retry-After` [default: 0, unlimited].
    #[arg(long, env = "BYOK_RATE_LIMIT_PER_IDENTITY")]
    pub rate_limit_per_identity: Option<u32>,
    /// A request still running after this many seconds is answered 503 `request_timeout`
    /// [default: 30].
    #[arg(long, env = "BYOK_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<u64>,
    /// Requests in flight on this node at most; more are answered 503 `overloaded` at once
    /// [default: 4096].
    #[arg(long, env = "BYOK_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Serve the API over HTTPS with this certificate (PEM, its chain after it); read again
    /// when the file changes, so a renewal needs no restart. Needs --tls-key.
    #[arg(long, env = "BYOK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "BYOK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate issued by this CA (PEM) on every connection: mutual TLS.
    /// Needs --tls-cert.
    #[arg(long, env = "BYOK_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Under mutual TLS, a client certificate whose subject common name is NAME is a service
    /// reaching these tenants, with no bearer token: `NAME=acme,globex` (`NAME=*`: every tenant).
    /// Repeat it for several; a token sent as well takes precedence. Needs --client-ca.
    #[arg(long = "client-identity", env = "BYOK_CLIENT_IDENTITIES", value_delimiter = ';')]
    #[serde(default)]
    pub client_identity: Vec<String>,
    /// Mark the console's cookies `Secure` (with the `__Host-` prefix) on every response: the
    /// console is reached over HTTPS through a proxy that terminates TLS. (A proxy's
    /// `X-Forwarded-Proto: https` does the same per request.)
    #[arg(long, env = "BYOK_CONSOLE_SECURE_COOKIES")]
    #[serde(default)]
    pub console_secure_cookies: bool,
    /// Operator token [default: generated, written to DATA_DIR/operator.token].
    #[arg(long, env = "BYOK_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Product-service token [default: generated, written to DATA_DIR/service.token].
    #[arg(long, env = "BYOK_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// The locations table (TOML only): `[locations]` then `eu = ["eu-central-1", "eu-west-1"]`;
    /// replaces the defaults.
    #[arg(skip)]
    pub locations: Option<std::collections::BTreeMap<String, Vec<byok_domain::Region>>>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("aws_endpoint", &self.aws_endpoint)
            .finish_non_exhaustive()
    }
}

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
        let file: ServeArgs = match &args.config {
            None => ServeArgs::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(CliError::io(format!("cannot read {}", path.display())))?;
                toml::from_str(&text).map_err(|e| CliError::Config(format!("{} is not a valid byok config: {e}", path.display())))?
            }
        };
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("data"));
        let aws = match (args.aws_endpoint.or(file.aws_endpoint), args.real_aws || file.real_aws) {
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
                provider_role_arn: args
                    .provider_role_arn
                    .or(file.provider_role_arn)
                    .ok_or_else(|| CliError::Config("--real-aws needs --provider-role-arn: the role the broker runs as".into()))?,
                canary: byok_broker::CanaryConfig {
                    role_arn: args
                        .canary_role_arn
                        .clone()
                        .or(file.canary_role_arn.clone())
                        .ok_or_else(|| {
                            CliError::Config(
                                "--real-aws needs --canary-role-arn: a role in the provider's account that trusts the provider with an external id, proven before any denial counts".into(),
                            )
                        })?
                        .parse()?,
                    external_id: args
                        .canary_external_id
                        .clone()
                        .or(file.canary_external_id.clone())
                        .ok_or_else(|| CliError::Config("--real-aws needs --canary-external-id (the canary role's sts:ExternalId)".into()))?
                        .parse()?,
                    key: args.canary_key.clone().or(file.canary_key.clone()).unwrap_or_else(|| "alias/byok-canary".into()),
                    region: args.canary_region.clone().or(file.canary_region.clone()).unwrap_or_else(default_canary_region),
                },
            },
            (None, false) => {
                Aws::Embedded(args.localcloud_listen.or(file.localcloud_listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4566))))
            }
        };
        let cache_ttl = args.cache_ttl_seconds.or(file.cache_ttl_seconds).unwrap_or(300);
        let monitor_interval = args.monitor_interval_seconds.or(file.monitor_interval_seconds).unwrap_or(60);
        if monitor_interval == 0 {
            return Err(CliError::Config("the monitor interval is at least 1 second".into()));
        }
        let grace_days = args.grace_days.or(file.grace_days).unwrap_or(15);
        if grace_days == 0 || grace_days > 365 {
            return Err(CliError::Config(format!("the grace period is 1 to 365 days, not {grace_days}")));
        }
        if cache_ttl == 0 || cache_ttl > 86_400 {
            return Err(CliError::Config(format!("the cache TTL is 1 to 86400 seconds, not {cache_ttl}")));
        }
        let store_url =
            args.store_url.or(file.store_url).unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("byok.db").display()));
        Ok(Self {
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            store_url,
            aws,
            provider_account_id: args.provider_account_id.or(file.provider_account_id).unwrap_or_else(|| "279766244153".into()),
            provider_role: args.provider_role.or(file.provider_role).unwrap_or_else(|| "Cryptor-OSB-Provider".into()),
            role_name: args.role_name.or(file.role_name).unwrap_or_else(|| "byok-key-management".into()),
            alias_prefix: args.alias_prefix.or(file.alias_prefix).unwrap_or_else(|| "alias/byok-".into()),
            cache_ttl: Duration::from_secs(cache_ttl),
            allow_legacy_trust: args.allow_legacy_trust || file.allow_legacy_trust,
            monitor_interval: Duration::from_secs(monitor_interval),
            confirmations: args.confirmations.or(file.confirmations).unwrap_or(2).max(1),
            hold_threshold: byok_broker::HoldThreshold {
                tenants: args.max_revocations_per_pass.or(file.max_revocations_per_pass).unwrap_or(3),
                percent: match args.max_revocations_percent.or(file.max_revocations_percent).unwrap_or(5.0) {
                    p if (0.0..=100.0).contains(&p) => p,
                    p => return Err(CliError::Config(format!("--max-revocations-percent is 0 to 100, not {p}"))),
                },
            },
            node_id: args.node_id.or(file.node_id),
            audit_every_probe: args.audit_every_probe || file.audit_every_probe,
            aws_calls_per_second: match args.aws_calls_per_second.or(file.aws_calls_per_second).unwrap_or(1000) {
                0 => None,
                n => Some(n),
            },
            monitor_concurrency: match args.monitor_concurrency.or(file.monitor_concurrency).unwrap_or(32) {
                n @ 1..=1024 => n,
                n => return Err(CliError::Config(format!("the monitor concurrency is 1 to 1024, not {n}"))),
            },
            lease_ttl: match args.lease_ttl_seconds.or(file.lease_ttl_seconds).unwrap_or(10) {
                ttl @ 2..=300 => Duration::from_secs(ttl),
                ttl => return Err(CliError::Config(format!("the lease TTL is 2 to 300 seconds, not {ttl}"))),
            },
            canary_key: args.canary_key.or(file.canary_key).unwrap_or_else(|| "alias/byok-canary".into()),
            canary_region: args.canary_region.or(file.canary_region).unwrap_or_else(default_canary_region),
            grace_days,
            rotate_after: match args.rotate_after_days.or(file.rotate_after_days) {
                None => None,
                Some(days @ 1..=3650) => Some(time::Duration::days(i64::from(days))),
                Some(days) => return Err(CliError::Config(format!("--rotate-after-days is 1 to 3650, not {days}"))),
            },
            max_body: args.max_body.or(file.max_body).unwrap_or(byok_server::DEFAULT_BODY_LIMIT),
            max_batch_items: match args.max_batch_items.or(file.max_batch_items).unwrap_or(byok_server::DEFAULT_BATCH_ITEMS) {
                n @ 1..=100_000 => n,
                n => return Err(CliError::Config(format!("--max-batch-items is 1 to 100000, not {n}"))),
            },
            drain: match args.drain_seconds.or(file.drain_seconds).unwrap_or(5) {
                s @ 0..=600 => Duration::from_secs(s),
                s => return Err(CliError::Config(format!("--drain-seconds is 0 to 600, not {s}"))),
            },
            console_secure_cookies: args.console_secure_cookies || file.console_secure_cookies,
            client_identities: client_identities(
                if args.client_identity.is_empty() { &file.client_identity } else { &args.client_identity },
                args.client_ca.is_some() || file.client_ca.is_some(),
            )?,
            aws_sign_in: match (
                args.aws_sign_in_server_id.or(file.aws_sign_in_server_id),
                args.aws_sign_in_token_minutes.or(file.aws_sign_in_token_minutes),
            ) {
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
            access_log: args.access_log || file.access_log,
            limits: byok_server::limits::Limits::new(
                args.rate_limit_per_identity.or(file.rate_limit_per_identity),
                match args.request_timeout_seconds.or(file.request_timeout_seconds).unwrap_or(30) {
                    s @ 1..=3600 => Duration::from_secs(s),
                    s => return Err(CliError::Config(format!("--request-timeout-seconds is 1 to 3600, not {s}"))),
                },
                match args.max_in_flight.or(file.max_in_flight).unwrap_or(byok_server::limits::DEFAULT_MAX_IN_FLIGHT) {
                    n @ 1..=1_000_000 => n,
                    n => return Err(CliError::Config(format!("--max-in-flight is 1 to 1000000, not {n}"))),
                },
            ),
            tls: match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key), args.client_ca.or(file.client_ca)) {
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
            operator_token: args.operator_token.or(file.operator_token).map(Zeroizing::new),
            service_token: args.service_token.or(file.service_token).map(Zeroizing::new),
            locations: match file.locations {
                Some(table) => byok_domain::Locations::new(table).map_err(|e| CliError::Config(format!("[locations]: {e}")))?,
                None => byok_domain::Locations::default(),
            },
            clock: clock_from_env()?,
            data_dir,
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
            ..defaults
        })
    }
}

fn default_canary_region() -> byok_domain::Region {
    byok_domain::Region::us_east_1()
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
