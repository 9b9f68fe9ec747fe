//! A minimal HTTP/1 client: one request on one loopback connection, the status and the body.
//! Shared by the `/_localcloud` admin calls here, the `byok` CLI's API client and the
//! provider-credential fetch, so there is one hand-written hyper client, not three. (A full
//! client crate — reqwest with its TLS stack — would double the build for plain-HTTP calls to
//! localhost.)

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why a request failed to get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint '{0}' is not http://HOST:PORT")]
    BadEndpoint(String),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[source] http::Error),
    #[error("the answer is not JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// The `HOST:PORT` of an `http://HOST:PORT[/]` endpoint.
pub fn authority(endpoint: &str) -> Result<&str, ClientError> {
    endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ClientError::BadEndpoint(endpoint.into()))
}

/// Sends one request to `endpoint` (`http://HOST:PORT`) and returns the status and body.
/// `Host` is set from the endpoint; `headers` come in addition.
pub async fn send(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(u16, Bytes), ClientError> {
    let authority = authority(endpoint)?;
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|source| ClientError::Connect { authority: authority.to_string(), source })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(ClientError::Http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut request = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request = request.header(http::header::HOST, authority);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(ClientError::Request)?;
    let response = sender.send_request(request).await.map_err(ClientError::Http)?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(ClientError::Http)?.to_bytes();
    Ok((status, bytes))
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
