//! `byok doctor`: checks a configuration the way production will use it, before it serves,
//! and prints a checklist (exit code 1 if any check fails). It reads the same flags,
//! environment and `--config` file as `byok serve`, and changes nothing anywhere.
//!
//! The checks: the configuration itself; the data directory; the store (reachable, its schema
//! against this byok, its TLS mode); the API's TLS files (they load, the key fits, not expiring
//! within 30 days); the tokens (none left at a placeholder); and with `--real-aws`, the
//! provider's identity (`GetCallerIdentity` names the configured role), the canary (assumed,
//! a fresh key wrapped and unwrapped, as every monitor pass does) and the STS and KMS endpoints
//! of every region the locations table names.

mod aws;

use std::time::Duration;

use byok_store::SqlStore;

use crate::error::CliError;
use crate::serve::{Aws, ServeArgs, ServeParams, Settings};

/// How long any one network check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// A certificate expiring sooner than this fails the check.
const CERTIFICATE_MARGIN: time::Duration = time::Duration::days(30);
/// A configured token shorter than this is too guessable for production.
const MIN_TOKEN_CHARS: usize = 32;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but not as production should run it.
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self { name, verdict, detail: detail.into() }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match self.verdict {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "[{mark:>4}] {}: {}", self.name, self.detail)
    }
}

/// `byok doctor`: prints the checklist; an error (exit code 1) if any check failed.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let checks = checks(args).await;
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let warned = checks.iter().filter(|c| c.verdict == Verdict::Warn).count();
    println!("{} checks: {} ok, {warned} warnings, {failed} failed", checks.len(), checks.len() - failed - warned);
    if failed > 0 { Err(CliError::Config(format!("{failed} of {} checks failed (see above)", checks.len()))) } else { Ok(()) }
}

/// Every check, in order; a configuration that does not validate stops after saying why.
pub async fn checks(args: ServeArgs) -> Vec<Check> {
    let settings = match Settings::load(&args) {
        Ok(s) => s,
        Err(e) => return vec![Check::new("configuration", Verdict::Fail, e.to_string())],
    };
    let store_url = settings.store_url();
    let params = match ServeParams::from_args(args) {
        Ok(p) => p,
        Err(e) => return vec![Check::new("configuration", Verdict::Fail, e.to_string())],
    };
    let mut checks = vec![Check::new("configuration", Verdict::Ok, configuration_summary(&params))];
    checks.push(data_dir(&params.data_dir));
    checks.push(store(&store_url, params.auto_migrate).await);
    checks.push(tls(&params, time::OffsetDateTime::now_utc()));
    checks.push(tokens(&params));
    checks.extend(aws::checks(&params).await);
    checks
}

fn configuration_summary(params: &ServeParams) -> String {
    let aws = match &params.aws {
        Aws::Embedded(addr) => format!("an embedded localcloud on {addr} (development only)"),
        Aws::Endpoint(url) => format!("the localcloud at {url} (development only)"),
        Aws::Real { provider_role_arn, .. } => format!("real AWS as {provider_role_arn}"),
    };
    format!("valid; the API on {}, {aws}", params.listen)
}

fn data_dir(dir: &std::path::Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    const NAME: &str = "data directory";
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Check::new(NAME, Verdict::Ok, format!("{} does not exist yet; byok serve creates it (mode 0700)", dir.display()))
        }
        Err(e) => Check::new(NAME, Verdict::Fail, format!("{}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => Check::new(NAME, Verdict::Fail, format!("{} is not a directory", dir.display())),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Check::new(
            NAME,
            Verdict::Fail,
            format!(
                "{} is mode {:04o}: others can read the generated tokens in it; chmod 0700 it",
                dir.display(),
                m.permissions().mode() & 0o7777
            ),
        ),
        Ok(_) => Check::new(NAME, Verdict::Ok, format!("{} (mode 0700)", dir.display())),
    }
}

/// The store: reachable, its schema against this byok, and how its connection is protected.
async fn store(url: &str, auto_migrate: byok_store::AutoMigrate) -> Check {
    const NAME: &str = "store";
    let shown = crate::commands::migrate::without_password(url);
    // SQLite is looked at read-only, and a file not made yet is left for `byok serve`.
    let mut url = url.to_string();
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let path = rest.split('?').next().unwrap_or_default().to_string();
        if !std::path::Path::new(&path).exists() {
            return Check::new(NAME, Verdict::Ok, format!("SQLite at {path}: not made yet, byok serve creates it (one node only)"));
        }
        url = format!("sqlite://{path}?mode=ro");
    }
    let url = url.as_str();
    let status = tokio::time::timeout(CHECK_TIMEOUT, async {
        let store = SqlStore::unprepared(url).await?;
        store.migration_status().await
    })
    .await;
    let status = match status {
        Err(_) => return Check::new(NAME, Verdict::Fail, format!("{shown}: no answer within {} s", CHECK_TIMEOUT.as_secs())),
        Ok(Err(e)) => return Check::new(NAME, Verdict::Fail, format!("{shown}: {e}")),
        Ok(Ok(status)) => status,
    };
    let (transport, transport_verdict) = store_transport(url);
    let schema = if !status.unknown.is_empty() {
        return Check::new(
            NAME,
            Verdict::Fail,
            format!("{shown}: the schema is newer than this byok ({} unknown migrations); upgrade byok", status.unknown.len()),
        );
    } else if !status.failed.is_empty() {
        return Check::new(NAME, Verdict::Fail, format!("{shown}: a migration started and did not finish; see `byok migrate status`"));
    } else if status.pending.is_empty() {
        "schema current".to_string()
    } else if auto_migrate == byok_store::AutoMigrate::No {
        return Check::new(
            NAME,
            Verdict::Fail,
            format!("{shown}: {} migrations pending and --no-auto-migrate is set: run `byok migrate up` first", status.pending.len()),
        );
    } else {
        format!("{} migrations pending (byok serve applies them at start)", status.pending.len())
    };
    Check::new(NAME, transport_verdict, format!("{shown}: reachable, {schema}, {transport}"))
}

/// How the store's connection is protected, and whether that will do in production.
fn store_transport(url: &str) -> (String, Verdict) {
    let Ok(parsed) = url::Url::parse(url) else { return ("a URL that does not parse".into(), Verdict::Fail) };
    if parsed.scheme() == "sqlite" {
        return ("SQLite (one node only; use PostgreSQL for more)".into(), Verdict::Ok);
    }
    let sslmode = parsed.query_pairs().find(|(k, _)| k == "sslmode").map(|(_, v)| v.into_owned()).unwrap_or_else(|| "prefer".into());
    let loopback = match parsed.host() {
        // A `postgres://` URL's host is opaque to the url crate: an address arrives as a name.
        Some(url::Host::Domain(d)) => {
            d == "localhost" || d.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // A Unix socket (host in the query): never leaves the machine.
        None => true,
    };
    match sslmode.as_str() {
        "verify-full" => ("TLS, the server's certificate and name verified (sslmode=verify-full)".into(), Verdict::Ok),
        "verify-ca" => ("TLS, the server's certificate verified but not its name (sslmode=verify-ca)".into(), Verdict::Warn),
        mode if loopback => (format!("sslmode={mode} on loopback"), Verdict::Ok),
        "require" => ("TLS without verifying the server (sslmode=require): use verify-full".into(), Verdict::Warn),
        mode => (
            format!("sslmode={mode} to a host that is not loopback: the connection may be plaintext; use sslmode=verify-full"),
            Verdict::Fail,
        ),
    }
}

/// The API's TLS files: they load as `byok serve` loads them, and last 30 days more.
fn tls(params: &ServeParams, now: time::OffsetDateTime) -> Check {
    const NAME: &str = "API TLS";
    let Some(files) = &params.tls else {
        return if params.listen.ip().is_loopback() {
            Check::new(NAME, Verdict::Warn, "none: the API serves plain HTTP (on loopback, behind a TLS proxy?)")
        } else {
            Check::new(
                NAME,
                Verdict::Fail,
                format!("none: the API would serve plain HTTP on {}; give --tls-cert and --tls-key", params.listen),
            )
        };
    };
    let summary = match byok_server::tls::inspect(files) {
        Ok(s) => s,
        Err(e) => return Check::new(NAME, Verdict::Fail, e.to_string()),
    };
    let not_after = time::OffsetDateTime::from_unix_timestamp(summary.not_after).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let until = crate::commands::rfc3339(not_after);
    let names = if summary.dns_names.is_empty() { summary.subject.clone() } else { summary.dns_names.join(", ") };
    let mutual = if files.client_ca.is_some() { ", client certificates required" } else { "" };
    if not_after <= now {
        Check::new(NAME, Verdict::Fail, format!("{}: expired at {until}", files.cert.display()))
    } else if not_after - now < CERTIFICATE_MARGIN {
        Check::new(
            NAME,
            Verdict::Fail,
            format!("{}: expires at {until}, within {} days; renew it", files.cert.display(), CERTIFICATE_MARGIN.whole_days()),
        )
    } else {
        Check::new(NAME, Verdict::Ok, format!("{} for {names}, valid until {until}{mutual}", files.cert.display()))
    }
}

/// Placeholders people leave in configuration files.
const PLACEHOLDERS: [&str; 10] =
    ["changeme", "change-me", "change_me", "secret", "password", "token", "operator", "service", "test", "example"];

/// The configured tokens are not placeholders and are long enough; generated ones are fine.
fn tokens(params: &ServeParams) -> Check {
    const NAME: &str = "tokens";
    let mut problems = Vec::new();
    for (which, token) in [("operator", &params.operator_token), ("service", &params.service_token)] {
        let Some(token) = token else { continue };
        let lowered = token.to_ascii_lowercase();
        if PLACEHOLDERS.iter().any(|p| lowered.contains(p)) && token.len() < 2 * MIN_TOKEN_CHARS {
            problems.push(format!("the {which} token is a placeholder"));
        } else if token.chars().count() < MIN_TOKEN_CHARS {
            problems.push(format!("the {which} token is shorter than {MIN_TOKEN_CHARS} characters"));
        }
    }
    if problems.is_empty() {
        let how = match (&params.operator_token, &params.service_token) {
            (None, None) => "generated (in the data directory, mode 0600)",
            _ => "configured, none a placeholder",
        };
        Check::new(NAME, Verdict::Ok, how)
    } else {
        Check::new(NAME, Verdict::Fail, format!("{}: leave them out to have them generated", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stores_transport_is_judged_by_where_it_goes() {
        let judge = |url: &str| store_transport(url).1;
        assert_eq!(judge("sqlite://data/byok.db?mode=rwc"), Verdict::Ok);
        assert_eq!(judge("postgres://byok@127.0.0.1/byok"), Verdict::Ok);
        assert_eq!(judge("postgres://byok@localhost:5432/byok"), Verdict::Ok);
        assert_eq!(judge("postgres://byok@[::1]:5432/byok"), Verdict::Ok);
        assert_eq!(judge("postgres://byok@10.0.0.7:5432/byok"), Verdict::Fail);
        assert_eq!(judge("postgres://byok@db.internal/byok"), Verdict::Fail);
        assert_eq!(judge("postgres://byok@db.internal/byok?sslmode=prefer"), Verdict::Fail);
        assert_eq!(judge("postgres://byok@db.internal/byok?sslmode=require"), Verdict::Warn);
        assert_eq!(judge("postgres://byok@db.internal/byok?sslmode=verify-full"), Verdict::Ok);
    }
}
