//! A minimal client for the `/_localcloud` admin endpoints (used by the CLI and by test kits).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why an admin request failed to get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint '{0}' is not http://HOST:PORT")]
    BadEndpoint(String),
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[source] http::Error),
    #[error("the answer is not JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Sends one request and returns the status and JSON body (`null` for an empty body).
pub async fn request(endpoint: &str, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), ClientError> {
    let authority = endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ClientError::BadEndpoint(endpoint.into()))?;
    let stream = tokio::net::TcpStream::connect(authority).await.map_err(ClientError::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(ClientError::Http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let payload = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload)))
        .map_err(ClientError::Request)?;
    let resp = sender.send_request(req).await.map_err(ClientError::Http)?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(ClientError::Http)?.to_bytes();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).map_err(ClientError::Json)? };
    Ok((status, value))
}
