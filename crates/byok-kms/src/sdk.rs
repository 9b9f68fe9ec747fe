//! The AWS SDK's plumbing shared by every STS and KMS client byok builds: one HTTPS client (with
//! `AWS_CA_BUNDLE` read as the other SDKs read it) and a span per call.

/// The CA bundle named by `AWS_CA_BUNDLE` (as the AWS CLI and the other SDKs read it), added to
/// the platform's roots: an endpoint with a private CA (a localcloud serving HTTPS, a VPC
/// endpoint behind an inspecting proxy). A bundle that cannot be read is logged and ignored.
fn ca_bundle() -> Option<Vec<u8>> {
    let path = std::env::var_os("AWS_CA_BUNDLE")?;
    match std::fs::read(&path) {
        Ok(pem) => Some(pem),
        Err(e) => {
            tracing::error!(path = %std::path::Path::new(&path).display(), error = %e, "AWS_CA_BUNDLE cannot be read; using the platform's roots only");
            None
        }
    }
}

/// The SDK's default HTTPS client (rustls on aws-lc, proxies from the environment, the
/// platform's roots and `AWS_CA_BUNDLE`), built once.
pub(crate) fn https_client() -> aws_sdk_kms::config::SharedHttpClient {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    let context = ca_bundle()
        .and_then(|pem| tls::TlsContext::builder().with_trust_store(tls::TrustStore::default().with_pem_certificate(pem)).build().ok());
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        if let Some(context) = &context {
            connector = connector.tls_context(context.clone());
        }
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// One AWS call as a span (OpenTelemetry's RPC conventions: `rpc.system` `aws-api`, the
/// service and operation, the region), marked as an error when it fails; exported with
/// `byok serve --otlp-endpoint`.
pub(crate) async fn traced<T, E>(
    service: &'static str,
    method: &'static str,
    region: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "aws",
        otel.name = %format_args!("{service}.{method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "aws-api",
        rpc.service = service,
        rpc.method = method,
        cloud.region = region,
    );
    let answer = call.instrument(span.clone()).await;
    if answer.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    answer
}
