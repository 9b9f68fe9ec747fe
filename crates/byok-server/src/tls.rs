//! HTTPS for the API: rustls on aws-lc-rs, TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2 chosen by ALPN.
//! The certificate and key are read again when their files change ([`watch`]), so a renewal
//! needs no restart; a file that does not parse is logged and the certificate in use stays.
//! With a client CA, every connection must present a certificate it issued (mutual TLS); the
//! certificate's subject reaches handlers as a [`ClientCertificate`] extension.
//!
//! [`serve_tls`] accepts connections itself (hyper-util's HTTP/1 and HTTP/2 server over
//! tokio-rustls) so that each request can carry its connection's peer address and client
//! certificate; shutdown is graceful as for plain HTTP.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tower::ServiceExt;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight get once shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// Where the API's certificate and key live, and the CA of client certificates, if required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: CA certificates whose client certificates are required on every connection.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate in {path} does not parse: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("the key in {path} does not fit: {source}")]
    Key {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("the client CA in {path} is not usable: {detail}")]
    ClientCa { path: String, detail: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The client certificate a connection presented (mutual TLS), as handlers see it in the
/// request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject's common name, which `--client-identity` maps to a service identity.
    pub common_name: Option<String>,
}

impl ClientCertificate {
    /// Reads the subject of a DER certificate (already verified by the handshake).
    pub fn from_der(der: &[u8]) -> Self {
        let common_name = x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, cert)| cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string));
        Self { common_name }
    }
}

/// The certificate in use, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read.
    seen: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    fn read(path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError + '_ {
        move |source| TlsError::Read { path: path.display().to_string(), source }
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.cert).map_err(read(&files.cert))?.collect::<Result<_, _>>().map_err(read(&files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(read(&files.key))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified =
        CertifiedKey::from_der(chain, key, &provider).map_err(|source| TlsError::Key { path: files.key.display().to_string(), source })?;
    Ok(certified)
}

impl ReloadingCertificate {
    /// Reads the files now.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let seen = (modified(&files.cert), modified(&files.key));
        let current = load(&files)?;
        Ok(Self { files, current: RwLock::new(Arc::new(current)), seen: Mutex::new(seen) })
    }

    /// Reads the files again if either changed since; returns whether the certificate in use
    /// changed. A pair that does not load (a renewal half-written) keeps the old one.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = (modified(&self.files.cert), modified(&self.files.key));
        if *self.seen.lock() == now {
            return Ok(false);
        }
        let fresh = load(&self.files)?;
        *self.current.write() = Arc::new(fresh);
        *self.seen.lock() = now;
        Ok(true)
    }
}

/// What a certificate says of itself, for `byok doctor`: whom it names and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The leaf's subject, as X.509 prints it.
    pub subject: String,
    /// The leaf's DNS names (subject alternative names).
    pub dns_names: Vec<String>,
    /// The end of the leaf's validity, Unix seconds.
    pub not_after: i64,
}

/// Loads `files` as `byok serve` would (the key must fit the certificate, the client CA must
/// be usable) and describes the leaf certificate.
pub fn inspect(files: &TlsFiles) -> Result<CertificateSummary, TlsError> {
    server_config(files)?;
    let certified = load(files)?;
    let leaf = certified.cert.first().ok_or_else(|| TlsError::NoCertificate(files.cert.display().to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| TlsError::Unreadable { path: files.cert.display().to_string(), detail: e.to_string() })?;
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) | Err(_) => Vec::new(),
    };
    Ok(CertificateSummary { subject: cert.subject().to_string(), dns_names, not_after: cert.validity().not_after.timestamp() })
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// The server's TLS configuration over a reloading certificate: TLS 1.2 and 1.3, ALPN `h2`
/// then `http/1.1`, and client certificates required when a client CA is given.
pub fn server_config(files: &TlsFiles) -> Result<(Arc<rustls::ServerConfig>, Arc<ReloadingCertificate>), TlsError> {
    let certificate = Arc::new(ReloadingCertificate::new(files.clone())?);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let refused = |detail: String| TlsError::ClientCa { path: path.display().to_string(), detail };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| refused(e.to_string()))? {
                roots.add(cert.map_err(|e| refused(e.to_string()))?).map_err(|e| refused(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(refused("no CA certificate in it".into()));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().map_err(|e| refused(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certificate.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), certificate))
}

/// Looks at the certificate's files every `every` until `shutdown`, and reloads them when they
/// change.
pub async fn watch(certificate: Arc<ReloadingCertificate>, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => match certificate.reload_if_changed() {
                Ok(true) => tracing::warn!(cert = %certificate.files.cert.display(), "TLS certificate reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "the TLS certificate's files changed but do not load; the certificate in use stays"),
            },
            () = &mut shutdown => return,
        }
    }
}

/// Serves `router` over TLS on `listener` until `shutdown`, then lets requests in flight finish
/// (bounded). Each request carries `ConnectInfo<SocketAddr>` and, under mutual TLS, the
/// [`ClientCertificate`].
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(peer = %peer, "TLS handshake timed out"),
            };
            let client = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| ClientCertificate::from_der(c));
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                if let Some(client) = &client {
                    request.extensions_mut().insert(client.clone());
                }
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running 10 s after shutdown; stopping anyway");
    }
    Ok(())
}
