//! The `byok` CLI's client for the broker's API: typed requests and answers ([`byok_api`]),
//! over the one small HTTP/1 client the workspace shares (plain HTTP on loopback or behind a
//! TLS proxy).

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::CliError;

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
    /// A PEM file of CA certificates to trust for an `https://` API (a private CA); the
    /// system's roots (or `SSL_CERT_FILE`) are trusted anyway.
    #[arg(long, env = "BYOK_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate (PEM) to present, for an API that requires mutual TLS; needs
    /// --client-key.
    #[arg(long, env = "BYOK_CLIENT_CERT", global = true, requires = "client_key")]
    pub client_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "BYOK_CLIENT_KEY", global = true, requires = "client_cert")]
    pub client_key: Option<std::path::PathBuf>,
}

impl ApiArgs {
    /// The API at `api` with `token` (`None`: the operator token in `data_dir`), over the
    /// system's trust roots and no client certificate.
    pub fn new(api: impl Into<String>, token: Option<String>, data_dir: impl Into<std::path::PathBuf>) -> Self {
        Self { api: api.into(), token, data_dir: data_dir.into(), ca_file: None, client_cert: None, client_key: None }
    }
}

impl std::fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiArgs").field("api", &self.api).field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

pub struct Client {
    endpoint: String,
    token: Zeroizing<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// An answer: its status and its body, not yet read as any type.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    body: bytes::Bytes,
}

impl Answer {
    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, CliError> {
        serde_json::from_slice(&self.body).map_err(|source| CliError::Unexpected { status: self.status, source })
    }

    /// The body as `T` if the status is 2xx, else the API's error.
    pub fn ok<T: DeserializeOwned>(&self) -> Result<T, CliError> {
        if (200..300).contains(&self.status) { self.json() } else { Err(self.error()) }
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, whatever it holds (`null` when empty or not JSON).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The API's error body, as an error.
    pub fn error(&self) -> CliError {
        match serde_json::from_slice(&self.body) {
            Ok(body) => CliError::Api { status: self.status, body },
            Err(source) => CliError::Unexpected { status: self.status, source },
        }
    }
}

impl Client {
    pub fn new(args: &ApiArgs) -> Result<Self, CliError> {
        localcloud::admin_client::authority(&args.api).map_err(|_| CliError::BadApi(args.api.clone()))?;
        let client = args.client_cert.as_deref().zip(args.client_key.as_deref());
        if args.ca_file.is_some() || client.is_some() {
            localcloud::admin_client::configure(args.ca_file.as_deref(), client)
                .map_err(|source| CliError::Unreachable { api: args.api.clone(), source })?;
        }
        let token = match &args.token {
            Some(t) => Zeroizing::new(t.clone()),
            None => {
                let path = args.data_dir.join("operator.token");
                let text = std::fs::read_to_string(&path).map_err(|source| CliError::NoToken { path: path.clone(), source })?;
                Zeroizing::new(text.trim().to_string())
            }
        };
        Ok(Self { endpoint: args.api.trim_end_matches('/').to_string(), token })
    }

    /// The broker's API endpoint (`http(s)://HOST:PORT`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: &str, path: &str, body: Option<&impl Serialize>) -> Result<Answer, CliError> {
        let payload = match body {
            Some(b) => serde_json::to_vec(b).map_err(|source| CliError::Unexpected { status: 0, source })?,
            None => Vec::new(),
        };
        let authorization = Zeroizing::new(format!("Bearer {}", *self.token));
        let headers = [("content-type", "application/json"), ("authorization", authorization.as_str())];
        let (status, body) = localcloud::admin_client::send(&self.endpoint, method, path, &headers, payload)
            .await
            .map_err(|source| CliError::Unreachable { api: self.endpoint.clone(), source })?;
        Ok(Answer { status, body })
    }

    /// A GET whose 2xx answer goes to `sink` as it arrives (see
    /// [`localcloud::admin_client::send_streaming`]); an answer that is not 2xx is returned whole.
    pub async fn stream(&self, path: &str, sink: impl FnMut(&[u8]) -> std::io::Result<()>) -> Result<Answer, CliError> {
        let authorization = Zeroizing::new(format!("Bearer {}", *self.token));
        let headers = [("authorization", authorization.as_str())];
        let (status, body) = localcloud::admin_client::send_streaming(&self.endpoint, "GET", path, &headers, sink)
            .await
            .map_err(|source| CliError::Unreachable { api: self.endpoint.clone(), source })?;
        Ok(Answer { status, body })
    }

    /// Sends a request and reads a 2xx answer as `T`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&impl Serialize>) -> Result<T, CliError> {
        self.send(method, path, body).await?.ok()
    }

    /// A GET, read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call("GET", path, None::<&()>).await
    }
}
