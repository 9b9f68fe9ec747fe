//! A caller's W3C trace context (`traceparent`, `tracestate`) as the parent of its request's
//! span, through the process's propagator (set by `byok serve --otlp-endpoint`; without it, the
//! no-op propagator reads nothing and this costs a header lookup).

use axum::http::HeaderMap;

/// Reads trace-context headers.
struct Headers<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes the caller's trace, if its request carries one, the parent of `span`.
pub fn follow_caller(span: &tracing::Span, headers: &HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    let _ = span.set_parent(parent);
}
