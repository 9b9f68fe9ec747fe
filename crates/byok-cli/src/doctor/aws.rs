//! The doctor's AWS checks, through the same code `byok serve --real-aws` runs: the SDK's
//! standard configuration (credentials chain, region, endpoint overrides), the provider's
//! identity, the canary, and every configured region's STS and KMS endpoints.

use std::collections::BTreeSet;

use byok_kms::{AwsKeyService, AwsKeyServiceConfig, KeyService};

use super::{CHECK_TIMEOUT, Check, Verdict};
use crate::serve::{Aws, ServeParams};

/// The provider identity, canary and endpoint checks (`--real-aws`); against a localcloud,
/// one line saying they do not apply.
pub(super) async fn checks(params: &ServeParams) -> Vec<Check> {
    let (provider_role_arn, canary) = match &params.aws {
        Aws::Real { provider_role_arn, canary } => (provider_role_arn, canary),
        Aws::Embedded(_) | Aws::Endpoint(_) => {
            return vec![Check::new(
                "AWS",
                Verdict::Warn,
                "a localcloud, not AWS: the provider identity, canary and endpoint checks apply with --real-aws",
            )];
        }
    };
    let mut checks = Vec::new();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = match AwsKeyServiceConfig::from_sdk_config(&sdk) {
        Some(config) => AwsKeyService::new(config),
        None => {
            checks.push(Check::new(
                "provider identity",
                Verdict::Fail,
                "no AWS credentials found (environment, profile, web identity, instance profile, …)",
            ));
            checks.push(endpoints(params, canary, &sdk).await);
            return checks;
        }
    };
    checks.push(identity(&kms, provider_role_arn).await);
    checks.push(canary_check(&kms, canary).await);
    checks.push(endpoints(params, canary, &sdk).await);
    checks
}

/// `GetCallerIdentity` names the configured provider role (or a session of it).
async fn identity(kms: &AwsKeyService, provider_role_arn: &str) -> Check {
    const NAME: &str = "provider identity";
    let expected: byok_domain::RoleArn = match provider_role_arn.parse() {
        Ok(arn) => arn,
        Err(e) => return Check::new(NAME, Verdict::Fail, format!("--provider-role-arn {provider_role_arn}: {e}")),
    };
    match tokio::time::timeout(CHECK_TIMEOUT, kms.caller_identity()).await {
        Err(_) => Check::new(NAME, Verdict::Fail, format!("STS GetCallerIdentity: no answer within {} s", CHECK_TIMEOUT.as_secs())),
        Ok(Err(e)) => Check::new(NAME, Verdict::Fail, format!("STS GetCallerIdentity: {e}")),
        Ok(Ok(caller)) if byok_broker::provider::is_provider(&caller, &expected) => {
            Check::new(NAME, Verdict::Ok, format!("the credentials are {caller}, the provider role"))
        }
        Ok(Ok(caller)) => Check::new(
            NAME,
            Verdict::Fail,
            format!("the credentials are {caller}, not the provider role {expected}: byok would refuse to judge any tenant"),
        ),
    }
}

/// The canary, proven as the monitor proves it before any denial counts.
async fn canary_check(kms: &AwsKeyService, canary: &byok_broker::CanaryConfig) -> Check {
    const NAME: &str = "canary";
    match tokio::time::timeout(CHECK_TIMEOUT, byok_broker::provider::prove_canary(kms, canary)).await {
        Err(_) => Check::new(NAME, Verdict::Fail, format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        Ok(Err(e)) => Check::new(NAME, Verdict::Fail, e.to_string()),
        Ok(Ok(())) => Check::new(
            NAME,
            Verdict::Ok,
            format!(
                "{} assumed with its external id; {} in {} wrapped and unwrapped a fresh key; {}",
                canary.role_arn,
                canary.key,
                canary.region,
                match &canary.key_policy_key {
                    Some(key) => format!("the key-policy canary {key} did the same for the provider itself"),
                    None => "no key-policy canary (--canary-cmk-key): customer-managed-key tenants cannot be added".into(),
                }
            ),
        ),
    }
}

/// The STS and KMS endpoint of every region the locations table names (and the canary's)
/// answers HTTP: the SDK's endpoint overrides where set, else AWS's regional endpoints.
async fn endpoints(params: &ServeParams, canary: &byok_broker::CanaryConfig, sdk: &aws_types::SdkConfig) -> Check {
    const NAME: &str = "STS and KMS endpoints";
    if let Ok(bundle) = std::env::var("AWS_CA_BUNDLE") {
        // As the SDK does: a private CA for the endpoints. The client is built once per process.
        if let Err(e) = localcloud::admin_client::trust_ca_file(std::path::Path::new(&bundle)) {
            return Check::new(NAME, Verdict::Fail, format!("AWS_CA_BUNDLE: {e}"));
        }
    }
    let mut regions = BTreeSet::new();
    for code in params.locations.codes() {
        if let Ok(location) = params.locations.get(code) {
            regions.extend(location.regions.iter().map(|r| r.as_str().to_string()));
        }
    }
    regions.insert(canary.region.as_str().to_string());
    let global = sdk.endpoint_url().map(str::to_string).or_else(|| non_empty_env("AWS_ENDPOINT_URL"));
    let mut urls = BTreeSet::new();
    for region in &regions {
        for (service, variable) in [("sts", "AWS_ENDPOINT_URL_STS"), ("kms", "AWS_ENDPOINT_URL_KMS")] {
            let url = non_empty_env(variable).or_else(|| global.clone()).unwrap_or_else(|| regional(service, region));
            urls.insert(url);
        }
    }
    let probes = urls.iter().map(|url| async move { (url.clone(), reachable(url).await) });
    let results = futures_util::future::join_all(probes).await;
    let failing: Vec<String> = results.iter().filter_map(|(url, r)| r.as_ref().err().map(|e| format!("{url}: {e}"))).collect();
    if failing.is_empty() {
        Check::new(NAME, Verdict::Ok, format!("{} endpoints for {} regions answer", urls.len(), regions.len()))
    } else {
        Check::new(NAME, Verdict::Fail, format!("{} of {} do not answer: {}", failing.len(), urls.len(), failing.join("; ")))
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// AWS's regional endpoint of `service` (STS regional, never the global `sts.amazonaws.com`).
fn regional(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://{service}.{region}.{suffix}")
}

/// Any HTTP answer (AWS answers an unsigned `GET /` with an error document) means reachable.
async fn reachable(url: &str) -> Result<u16, String> {
    let endpoint = url.trim_end_matches('/');
    match tokio::time::timeout(CHECK_TIMEOUT, localcloud::admin_client::send(endpoint, "GET", "/", &[], Vec::new())).await {
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok((status, _))) => Ok(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_endpoints_follow_the_partition() {
        assert_eq!(regional("sts", "eu-central-1"), "https://sts.eu-central-1.amazonaws.com");
        assert_eq!(regional("kms", "cn-north-1"), "https://kms.cn-north-1.amazonaws.com.cn");
    }
}
