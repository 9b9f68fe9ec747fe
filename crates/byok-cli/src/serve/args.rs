//! `byok serve`'s flags and `BYOK_*` environment, as clap reads them. Each is optional here: a
//! flag left unset is not serialized, so it does not hide the file's value or the default
//! ([`super::settings`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

/// Flags and environment; every field may also come from the `--config` TOML file (same names,
/// snake_case). Flags and environment win over the file; the file over the defaults, which
/// are written once, in [`Settings`](super::Settings). A flag left unset is not serialized, so it does not
/// hide the file's value.
#[derive(clap::Args, Default, Serialize)]
pub struct ServeArgs {
    /// A TOML file with any of these settings.
    #[arg(long, env = "BYOK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// API address [default: 127.0.0.1:8080].
    #[arg(long, env = "BYOK_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// State directory: the SQLite store, tokens, the embedded localcloud [default: data].
    #[arg(long, env = "BYOK_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH?mode=rwc` or `postgres://…` [default: SQLite in the data directory].
    #[arg(long, env = "BYOK_STORE_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_url: Option<String>,
    /// Use a localcloud (or other AWS-compatible endpoint) already running here.
    #[arg(long, env = "BYOK_AWS_ENDPOINT", conflicts_with = "real_aws")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_endpoint: Option<String>,
    /// Use real AWS with the default credential chain as the provider's identity.
    #[arg(long, env = "BYOK_REAL_AWS")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub real_aws: bool,
    /// Embedded localcloud's address [default: 127.0.0.1:4566].
    #[arg(long, env = "BYOK_LOCALCLOUD_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub localcloud_listen: Option<SocketAddr>,
    /// Provider account id in localcloud [default: 279766244153].
    #[arg(long, env = "BYOK_PROVIDER_ACCOUNT_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_account_id: Option<String>,
    /// Provider role name in localcloud [default: Cryptor-OSB-Provider].
    #[arg(long, env = "BYOK_PROVIDER_ROLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_role: Option<String>,
    /// Provider role ARN (real AWS: the role the broker's credentials belong to).
    #[arg(long, env = "BYOK_PROVIDER_ROLE_ARN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_role_arn: Option<String>,
    /// The customer role's name [default: byok-key-management].
    #[arg(long, env = "BYOK_ROLE_NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// Key alias prefix [default: alias/byok-].
    #[arg(long, env = "BYOK_ALIAS_PREFIX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_prefix: Option<String>,
    /// Key cache TTL in seconds, counted from the unwrap [default: 300].
    #[arg(long, env = "BYOK_CACHE_TTL_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_ttl_seconds: Option<u64>,
    /// Accept trust policies without an sts:ExternalId condition (with a warning).
    #[arg(long, env = "BYOK_ALLOW_LEGACY_TRUST")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_legacy_trust: bool,
    /// How often every (tenant, region) is probed, in seconds (1 or more) [default: 60].
    #[arg(long, env = "BYOK_MONITOR_INTERVAL_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_interval_seconds: Option<u64>,
    /// Consecutive definitive denials needed to revoke; 2 means a first denial is confirmed by
    /// an immediate fresh re-probe [default: 2].
    #[arg(long, env = "BYOK_CONFIRMATIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u32>,
    /// The provider's canary role (real AWS; created in localcloud): a role in the provider's
    /// account trusting the provider with --canary-external-id, proven each pass before any
    /// denial counts.
    #[arg(long, env = "BYOK_CANARY_ROLE_ARN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_role_arn: Option<String>,
    /// The external id in the canary role's trust policy (real AWS).
    #[arg(long, env = "BYOK_CANARY_EXTERNAL_ID", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_external_id: Option<String>,
    /// The canary's KMS key, an ARN or an alias in the canary role's account [default: alias/byok-canary].
    #[arg(long, env = "BYOK_CANARY_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_key: Option<String>,
    /// The canary key's region [default: us-east-1].
    #[arg(long, env = "BYOK_CANARY_REGION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_region: Option<byok_domain::Region>,
    /// The key-policy canary (real AWS; created in localcloud): the ARN or alias ARN of a key in
    /// --canary-region, in an account the provider controls, whose key policy grants the
    /// provider role as customer-managed keys do. Proven each pass; needed before a CMK tenant
    /// can be added.
    #[arg(long, env = "BYOK_CANARY_CMK_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_cmk_key: Option<String>,
    /// New denials in one pass above this many tenants (and above --max-revocations-percent of
    /// the active ones) are held for a person instead of revoked [default: 3].
    #[arg(long, env = "BYOK_MAX_REVOCATIONS_PER_PASS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_revocations_per_pass: Option<usize>,
    /// Write every routine successful probe to the audit log, instead of one summary row per
    /// (tenant, region) per hour.
    #[arg(long, env = "BYOK_AUDIT_EVERY_PROBE")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub audit_every_probe: bool,
    /// The provider-wide budget of STS and KMS calls a second (a token bucket every call takes
    /// from, probes and data path alike; calls wait rather than fail); 0 for none
    /// [default: 1000]. AssumeRole counts against the provider's own STS quota.
    #[arg(long, env = "BYOK_AWS_CALLS_PER_SECOND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_calls_per_second: Option<u32>,
    /// Tenants probed at once by the monitor [default: 32].
    #[arg(long, env = "BYOK_MONITOR_CONCURRENCY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_concurrency: Option<usize>,
    /// This node's name in the leader lease and /healthz [default: random].
    #[arg(long, env = "BYOK_NODE_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The leader lease's length in seconds (PostgreSQL: one node at a time runs the monitor)
    /// [default: 10].
    #[arg(long, env = "BYOK_LEASE_TTL_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ttl_seconds: Option<u64>,
    /// See --max-revocations-per-pass [default: 5].
    #[arg(long, env = "BYOK_MAX_REVOCATIONS_PERCENT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_revocations_percent: Option<f64>,
    /// Rotate each tenant key once its current generation is this many days old (the leader's
    /// monitor checks each pass) [default: off: only `byok tenant rotate`].
    #[arg(long, env = "BYOK_ROTATE_AFTER_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_after_days: Option<u32>,
    /// Days from revocation to destruction [default: 15].
    #[arg(long, env = "BYOK_GRACE_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_days: Option<u32>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "BYOK_MAX_BODY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body: Option<usize>,
    /// The most items one batch request may carry (1 to 100000) [default: 1000].
    #[arg(long, env = "BYOK_MAX_BATCH_ITEMS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch_items: Option<usize>,
    /// On SIGTERM or ctrl-c, answer `/readyz` with 503 for this many seconds while still
    /// serving, so that a load balancer stops sending requests before the node goes
    /// [default: 5].
    #[arg(long, env = "BYOK_DRAIN_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u64>,
    /// Log one `byok::access` line per request (method, route, status, microseconds, request
    /// id). Off by default.
    #[arg(long, env = "BYOK_ACCESS_LOG")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub access_log: bool,
    /// Export traces (a span per request, STS/KMS call, store transaction and monitor pass) to
    /// this OpenTelemetry collector over OTLP/HTTP: `https://…`, or `http://` to a collector on
    /// this machine, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added when no path is given).
    /// A caller's W3C `traceparent` is the request's parent. Off unless set.
    #[arg(long, env = "BYOK_OTLP_ENDPOINT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Take sign-ins with AWS IAM (`POST /v1/auth/aws`): the value product services put in the
    /// signed `X-Byok-Server-Id` header, naming this deployment (e.g. its API's host name).
    /// Off unless set.
    #[arg(long, env = "BYOK_AWS_SIGN_IN_SERVER_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_sign_in_server_id: Option<String>,
    /// How long a token issued at sign-in with AWS lasts, in minutes (1 to 720) [default: 15].
    #[arg(long, env = "BYOK_AWS_SIGN_IN_TOKEN_MINUTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_sign_in_token_minutes: Option<u32>,
    /// Requests a second each identity (bearer token) may make; over it, 429 with
    /// `Retry-After` [default: 0, unlimited].
    #[arg(long, env = "BYOK_RATE_LIMIT_PER_IDENTITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_identity: Option<u32>,
    /// A request still running after this many seconds is answered 503 `request_timeout`
    /// [default: 30].
    #[arg(long, env = "BYOK_REQUEST_TIMEOUT_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_seconds: Option<u64>,
    /// Requests in flight on this node at most; more are answered 503 `overloaded` at once
    /// [default: 4096].
    #[arg(long, env = "BYOK_MAX_IN_FLIGHT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Serve the API over HTTPS with this certificate (PEM, its chain after it); read again
    /// when the file changes, so a renewal needs no restart. Needs --tls-key.
    #[arg(long, env = "BYOK_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "BYOK_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate issued by this CA (PEM) on every connection: mutual TLS.
    /// Needs --tls-cert.
    #[arg(long, env = "BYOK_CLIENT_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Under mutual TLS, a client certificate whose subject common name is NAME is a service
    /// reaching these tenants, with no bearer token: `NAME=acme,globex` (`NAME=*`: every tenant).
    /// Repeat it for several; a token sent as well takes precedence. Needs --client-ca.
    #[arg(long = "client-identity", env = "BYOK_CLIENT_IDENTITIES", value_delimiter = ';')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_identity: Vec<String>,
    /// Mark the console's cookies `Secure` (with the `__Host-` prefix) on every response: the
    /// console is reached over HTTPS through a proxy that terminates TLS. (A proxy's
    /// `X-Forwarded-Proto: https` does the same per request.)
    #[arg(long, env = "BYOK_CONSOLE_SECURE_COOKIES")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub console_secure_cookies: bool,
    /// The product's name as customers know it: it replaces "byok" in the console's pages
    /// (header, titles, sign-in) [default: byok].
    #[arg(long, env = "BYOK_PRODUCT_NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Host names webhook endpoints may point at, comma-separated (`.example.com`: that domain
    /// and below) [default: any host over HTTPS].
    #[arg(long, env = "BYOK_WEBHOOK_ALLOWED_HOSTS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_allowed_hosts: Vec<String>,
    /// Email tenants' contacts through this SMTP relay: `smtp://HOST:PORT` (`?tls=required` for
    /// STARTTLS) or `smtps://HOST:PORT`, with `USER:PASSWORD@` if it wants them. Off unless set.
    #[arg(long, env = "BYOK_SMTP_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// The sender of those emails, a name and an address (default: byok, byok@localhost).
    #[arg(long, env = "BYOK_SMTP_FROM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    /// Stream the audit log, in order, to `file:PATH` (JSON lines, rotated at 64 MiB, 8 kept),
    /// `syslog://HOST:PORT` (RFC 5424 over TCP) or `https://…` (batches POSTed as signed
    /// webhooks; needs --audit-sink-secret). Entries wait in the log while it is down.
    #[arg(long, env = "BYOK_AUDIT_SINK")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_sink: Option<String>,
    /// The `whsec_…` secret an `https://` audit sink's batches are signed with (Standard
    /// Webhooks), the same on every node.
    #[arg(long, env = "BYOK_AUDIT_SINK_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_sink_secret: Option<String>,
    /// The operator's Ed25519 key (PKCS#8) that signs audit checkpoints sent to customers with
    /// their events [default: DATA_DIR/audit-signing.key, made on first start]. Give every node
    /// of a cluster the same file.
    #[arg(long, env = "BYOK_AUDIT_SIGNING_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_signing_key: Option<PathBuf>,
    /// The console's public address, for the links in emails (e.g. <https://byok.example.com>).
    #[arg(long, env = "BYOK_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Refuse to start while the store has migrations pending, naming them, instead of
    /// applying them: apply them on purpose with `byok migrate up` (an upgrade planned node by
    /// node). A schema newer than this byok is always refused.
    #[arg(long, env = "BYOK_NO_AUTO_MIGRATE")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_auto_migrate: bool,
    /// Operator token [default: generated, written to DATA_DIR/operator.token].
    #[arg(long, env = "BYOK_OPERATOR_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_token: Option<String>,
    /// Product-service token [default: generated, written to DATA_DIR/service.token].
    #[arg(long, env = "BYOK_SERVICE_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_token: Option<String>,
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
