//! [`CliError`]: every way a `byok` command fails, with its cause kept. `main` prints it as
//! `error: …` and exits non-zero.

use std::path::PathBuf;

use byok_api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag, environment variable or config file value that cannot be used.
    #[error("{0}")]
    Config(String),
    #[error("--api must be http://HOST:PORT or https://HOST:PORT, not {0}")]
    BadApi(String),
    #[error("no --token and cannot read {}: {source} (is `byok serve` running with this --data-dir?)", path.display())]
    NoToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach the broker at {api}: {source}")]
    Unreachable {
        api: String,
        #[source]
        source: localcloud::admin_client::ClientError,
    },
    /// The broker answered with an error body.
    #[error("{} ({status}): {}", body.error, body.message)]
    Api { status: u16, body: ErrorBody },
    #[error("the broker answered something unexpected ({status}): {source}")]
    Unexpected {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the record is not base64: {0}")]
    NotBase64(#[source] base64::DecodeError),
    #[error("tenant {0} is not verified yet")]
    NotVerified(String),
    #[error("tenant {0} is still revoked")]
    StillRevoked(String),
    #[error("audit log broken at entry {first_bad}: {problem}")]
    AuditBroken { first_bad: i64, problem: String },
    #[error("the audit checkpoint does not hold: {0}")]
    CheckpointContradicted(String),
    #[error("localcloud at {endpoint}: {source}")]
    Localcloud {
        endpoint: String,
        #[source]
        source: localcloud::admin_client::ClientError,
    },
    #[error("localcloud refused {what} ({status}): {answer}")]
    LocalcloudRefused { what: String, status: u16, answer: String },
    #[error("TLS for the API: {0}")]
    Tls(#[source] byok_server::tls::TlsError),
    #[error("cannot sign the AWS request: {0}")]
    Signing(String),
    #[error("cannot start the embedded localcloud: {0}")]
    LocalcloudStart(#[source] localcloud::state::PersistError),
    #[error("cannot open the store: {0}")]
    Store(#[from] byok_store::StoreError),
    #[error(transparent)]
    Broker(#[from] byok_broker::BrokerError),
    #[error(transparent)]
    InvalidId(#[from] byok_domain::IdError),
    /// A step of `byok demo` did not turn out as the story says.
    #[error("{0}")]
    Demo(String),
}

impl CliError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }
}
