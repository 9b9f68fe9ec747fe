//! OpenTelemetry traces over OTLP/HTTP (`byok serve --otlp-endpoint URL`): the spans the broker
//! already opens (each request, each STS and KMS call, each store transaction, each monitor
//! pass), exported as protobuf to `URL/v1/traces` in batches by the OpenTelemetry SDK; a caller's
//! W3C `traceparent` makes its trace the request's parent (the propagator set here is the one
//! `byok-server` reads).
//!
//! Only the spans of byok's own crates are exported ([`EXPORTED`]), whatever the log filter says,
//! so `BYOK_LOG` and traces are set apart. An exporter that cannot reach its collector drops
//! batches (the SDK's bounded queue) and never slows or fails a request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::Targets;

use crate::error::CliError;

/// The crates whose spans are exported, at `info`.
pub const EXPORTED: [&str; 4] = ["byok_server", "byok_broker", "byok_kms", "byok_store"];

/// The exporter's own HTTP client: hyper over byok's HTTPS connector ([`byok_kms::https`]), on a
/// current-thread runtime of its own. The SDK's batch processor exports from its own thread and
/// blocks there on each export; running the request on that thread's runtime keeps it off the
/// server's runtime, and needs no second HTTP stack (opentelemetry-otlp's ready-made clients
/// are reqwest's, which byok does not otherwise build).
struct OtlpClient {
    runtime: tokio::runtime::Runtime,
    client: Client<byok_kms::https::Connector, Full<Bytes>>,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpClient")
    }
}

/// How long one export may take before the batch is dropped.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl OtlpClient {
    fn new() -> Result<Self, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Config(format!("--otlp-endpoint: no runtime for the exporter: {e}")))?;
        let https = byok_kms::https::connector(byok_kms::https::Roots::Platform)
            .map_err(|e| CliError::Config(format!("--otlp-endpoint: TLS: {e}")))?;
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(https);
        Ok(Self { runtime, client })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let client = self.client.clone();
        self.runtime.block_on(async move {
            let response = tokio::time::timeout(EXPORT_TIMEOUT, client.request(request)).await??;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// The tracer provider exporting to `endpoint` (`http(s)://host:port`, `/v1/traces` added when
/// the path is empty), and the W3C trace-context propagator set for the whole process.
pub fn provider(endpoint: &str) -> Result<SdkTracerProvider, CliError> {
    let url: http::Uri = endpoint.parse().map_err(|e| CliError::Config(format!("--otlp-endpoint {endpoint}: {e}")))?;
    let host = url.host().unwrap_or_default();
    let loopback = host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme_str() {
        _ if host.is_empty() => return Err(CliError::Config(format!("--otlp-endpoint {endpoint}: must be https://host[:port][/path]"))),
        Some("https") => {}
        // Spans name tenants and routes: they leave this machine encrypted, as webhooks and
        // the audit sink do; plain HTTP only to a collector on this machine (an agent, a sidecar).
        Some("http") if loopback => {}
        Some("http") => {
            return Err(CliError::Config(format!(
                "--otlp-endpoint {endpoint}: must be https:// (plain http:// only to a collector on this machine)"
            )));
        }
        _ => return Err(CliError::Config(format!("--otlp-endpoint {endpoint}: must be https://host[:port][/path]"))),
    }
    let traces = match url.path() {
        "" | "/" => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
        _ => endpoint.to_string(),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpClient::new()?)
        .with_endpoint(traces)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| CliError::Config(format!("--otlp-endpoint {endpoint}: {e}")))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("byok")
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// The layer that turns byok's spans into OpenTelemetry spans for `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    let targets = EXPORTED.iter().fold(Targets::new(), |t, name| t.with_target(*name, tracing::Level::INFO));
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("byok"))
        // Spans carry what they name; busy/idle times, threads and source lines are noise to a collector.
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_filter(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_leave_this_machine_only_over_https() {
        for refused in ["http://collector.internal:4318", "http://10.0.0.5:4318", "ftp://127.0.0.1:4318", "127.0.0.1:4318"] {
            let e = provider(refused).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("must be https://"), "{refused}: {e}");
        }
        assert!(provider("https://").is_err(), "no host");
        for taken in ["http://127.0.0.1:4318", "http://localhost:4318/v1/traces", "http://[::1]:4318", "https://collector.internal:4318"] {
            let provider = provider(taken).unwrap_or_else(|e| panic!("{taken}: {e}"));
            let _ = provider.shutdown();
        }
    }
}
