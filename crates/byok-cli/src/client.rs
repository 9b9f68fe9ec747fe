//! A small HTTP client for the broker's API (plain HTTP on loopback or behind a TLS proxy).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use zeroize::Zeroizing;

/// Where the broker is and the token to use.
#[derive(clap::Args)]
pub struct ApiArgs {
    /// The broker's API.
    #[arg(long, env = "BYOK_API", default_value = "http://127.0.0.1:8080", global = true)]
    pub api: String,
    /// The bearer token (default: the operator token `byok serve` wrote into --data-dir).
    #[arg(long, env = "BYOK_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    #[arg(long, env = "BYOK_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: std::path::PathBuf,
}

impl std::fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiArgs").field("api", &self.api).field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

pub struct Client {
    authority: String,
    token: Zeroizing<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("authority", &self.authority).finish_non_exhaustive()
    }
}

/// A failed answer as one line: the API's code and message.
pub fn error_text(status: u16, body: &Value) -> String {
    format!("{} ({status}): {}", body["error"].as_str().unwrap_or("error"), body["message"].as_str().unwrap_or("no message"))
}

impl Client {
    pub fn new(args: &ApiArgs) -> Result<Self, String> {
        let authority = args
            .api
            .strip_prefix("http://")
            .map(|a| a.trim_end_matches('/').to_string())
            .ok_or_else(|| format!("--api must be http://HOST:PORT, not {}", args.api))?;
        let token = match &args.token {
            Some(t) => Zeroizing::new(t.clone()),
            None => {
                let path = args.data_dir.join("operator.token");
                Zeroizing::new(
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            format!("no --token and cannot read {}: {e} (is `byok serve` running with this --data-dir?)", path.display())
                        })?
                        .trim()
                        .to_string(),
                )
            }
        };
        Ok(Self { authority, token })
    }

    /// Sends a request; the status and JSON body.
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("cannot reach the broker at {}: {e}", self.authority))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {}", *self.token))
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| format!("the broker answered something that is not JSON: {e}"))?
        };
        Ok((status, value))
    }

    /// Sends a request and expects a 2xx answer.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (status, value) = self.send(method, path, body).await?;
        if (200..300).contains(&status) { Ok(value) } else { Err(error_text(status, &value)) }
    }
}
