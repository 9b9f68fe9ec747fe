//! The binaries' one HTTP client: hyper-util's pooled client over rustls (aws-lc-rs; the
//! platform's trust roots, or the bundle `SSL_CERT_FILE` names), with a connect timeout and a
//! whole-request timeout. It serves the `/_localcloud` admin calls here, the `byok` CLI's API
//! client and the localcloud bootstrap's signed AWS calls. `http://` and `https://` endpoints.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why a request failed to get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint '{0}' is not http(s)://HOST:PORT")]
    BadEndpoint(String),
    #[error("cannot reach {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("{endpoint} did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout { endpoint: String },
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[source] http::Error),
    #[error("the answer is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("TLS cannot be set up: {0}")]
    Tls(#[source] rustls::Error),
    #[error("{path} is not usable for TLS: {detail}")]
    CaFile { path: String, detail: String },
    #[error("cannot write the answer where it goes: {0}")]
    Sink(#[source] std::io::Error),
}

/// The `HOST:PORT` of an `http(s)://HOST:PORT[/]` endpoint.
pub fn authority(endpoint: &str) -> Result<&str, ClientError> {
    endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .map(|a| a.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ClientError::BadEndpoint(endpoint.into()))
}

static CLIENT: OnceLock<HttpsClient> = OnceLock::new();

/// The process's client, built once: connections are pooled across calls.
fn client() -> Result<&'static HttpsClient, ClientError> {
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let built = build(Vec::new(), None)?;
    Ok(CLIENT.get_or_init(|| built))
}

/// Trusts the CA certificates in the PEM file `path` too (`byok --ca-file`: a private CA's
/// certificate for an API served over HTTPS). Call it before the first request.
pub fn trust_ca_file(path: &std::path::Path) -> Result<(), ClientError> {
    configure(Some(path), None)
}

/// Sets the client's TLS before its first request: CA certificates to trust besides the
/// platform's (`ca_file`), and a client certificate and key to present (mutual TLS).
pub fn configure(ca_file: Option<&std::path::Path>, client: Option<(&std::path::Path, &std::path::Path)>) -> Result<(), ClientError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let unusable = |path: &std::path::Path, detail: String| ClientError::CaFile { path: path.display().to_string(), detail };
    let mut extra = Vec::new();
    if let Some(path) = ca_file {
        extra = CertificateDer::pem_file_iter(path)
            .map_err(|e| unusable(path, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(path, e.to_string()))?;
        if extra.is_empty() {
            return Err(unusable(path, "no certificate in it".into()));
        }
    }
    let identity = match client {
        None => None,
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| unusable(cert, e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unusable(cert, e.to_string()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| unusable(key, e.to_string()))?;
            Some((chain, key))
        }
    };
    let built = build(extra, identity)?;
    CLIENT.set(built).map_err(|_| ClientError::CaFile { path: "(TLS settings)".into(), detail: "the client is already in use".into() })
}

type Identity = (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>);

fn build(extra: Vec<rustls::pki_types::CertificateDer<'static>>, identity: Option<Identity>) -> Result<HttpsClient, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    http.enforce_http(false);
    // The platform's roots (or `SSL_CERT_FILE`'s) and any CA given; none at all on a minimal
    // container: plain HTTP still works, and an https:// endpoint is refused as unverifiable
    // rather than trusted blindly.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    for cert in extra {
        roots.add(cert).map_err(ClientError::Tls)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?
        .with_root_certificates(roots);
    let tls = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(ClientError::Tls)?,
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
    let https = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(https))
}

/// Sends one request (its URI absolute: `http(s)://HOST:PORT/…`); the status and body.
pub async fn send_request(request: http::Request<Vec<u8>>) -> Result<(u16, Bytes), ClientError> {
    let endpoint = request.uri().authority().map(ToString::to_string).unwrap_or_default();
    let request = request.map(|body| Full::new(Bytes::from(body)));
    let call = async {
        let response = client()?.request(request).await.map_err(|source| ClientError::Connect { endpoint: endpoint.clone(), source })?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(ClientError::Http)?.to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, call).await.map_err(|_| ClientError::Timeout { endpoint: endpoint.clone() })?
}

/// Sends one request to `endpoint` (`http(s)://HOST:PORT`) and returns the status and body.
/// `Host` is set from the endpoint; `headers` come in addition.
pub async fn send(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(u16, Bytes), ClientError> {
    authority(endpoint)?;
    let mut request = http::Request::builder().method(method).uri(format!("{}{path}", endpoint.trim_end_matches('/')));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send_request(request.body(body).map_err(ClientError::Request)?).await
}

/// Sends a GET-like request (no body) and hands a 2xx answer's body to `sink` chunk by chunk
/// as it arrives, never holding it whole (an audit export can be larger than memory); the
/// wait for the answer to start is bounded, its length is not. Returns the status, and the
/// body of an answer that is not 2xx (an error is small).
pub async fn send_streaming(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(u16, Bytes), ClientError> {
    authority(endpoint)?;
    let mut request = http::Request::builder().method(method).uri(format!("{}{path}", endpoint.trim_end_matches('/')));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Full::new(Bytes::new())).map_err(ClientError::Request)?;
    let started = client()?.request(request);
    let response = tokio::time::timeout(REQUEST_TIMEOUT, started)
        .await
        .map_err(|_| ClientError::Timeout { endpoint: endpoint.to_string() })?
        .map_err(|source| ClientError::Connect { endpoint: endpoint.to_string(), source })?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if !(200..300).contains(&status) {
        return Ok((status, body.collect().await.map_err(ClientError::Http)?.to_bytes()));
    }
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.map_err(ClientError::Http)?.data_ref() {
            sink(data).map_err(ClientError::Sink)?;
        }
    }
    Ok((status, Bytes::new()))
}

/// An admin request: JSON in, the status and JSON body out (`null` for an empty body). The
/// admin token, when the localcloud requires one, comes from `LOCALCLOUD_ADMIN_TOKEN`.
pub async fn request(endpoint: &str, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), ClientError> {
    request_as(endpoint, None, method, path, body).await
}

/// [`request`] with the admin token given (`None`: `LOCALCLOUD_ADMIN_TOKEN`, if set).
pub async fn request_as(
    endpoint: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ClientError> {
    let payload = match body {
        Some(b) => serde_json::to_vec(b).map_err(ClientError::Json)?,
        None => Vec::new(),
    };
    let token = token
        .map(|t| zeroize::Zeroizing::new(t.to_string()))
        .or_else(|| std::env::var("LOCALCLOUD_ADMIN_TOKEN").ok().map(zeroize::Zeroizing::new));
    let authorization = token.map(|t| zeroize::Zeroizing::new(format!("Bearer {}", t.as_str())));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &authorization {
        headers.push(("authorization", a.as_str()));
    }
    let (status, bytes) = send(endpoint, method, path, &headers, payload).await?;
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).map_err(ClientError::Json)? };
    Ok((status, value))
}
