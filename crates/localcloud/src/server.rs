//! The HTTP front: one port for KMS, IAM, STS and the `/_localcloud` admin surface.
//!
//! A plain hyper accept loop rather than a router: AWS requests are routed by their SigV4
//! scope and `X-Amz-Target`/`Action`, not by path, and an injected "dropped connection" fault
//! needs to close the connection without answering, which a service error does in hyper.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::admin;
use crate::auth;
use crate::cloud::{Call, Cloud};
use crate::error::AwsError;
use crate::faults::FaultKind;
use crate::policy::Caller;
use crate::protocol::{self, HttpResponse, QueryParams, Service};
use crate::sigv4::{self, RequestParts};
use crate::state::ids;
use crate::trail::{TrailEvent, TrailNote, UserIdentity};
use crate::{iam, kms, sts};

/// The largest request body accepted (KMS's largest field is 6 KiB of base64 ciphertext;
/// policies are 32 KiB).
pub const MAX_BODY: usize = 256 * 1024;

/// How long in-flight requests get to finish after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An injected fault that closes the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// Serves `cloud` on `listener` until `shutdown` completes, then drains connections.
pub async fn serve(listener: TcpListener, cloud: Arc<Cloud>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    serve_with(listener, cloud, None, shutdown).await
}

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// HTTPS like real AWS endpoints: the certificate (PEM, its chain after it) and its key.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let unreadable = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| TlsSetupError::Read { path: path.clone(), detail: e.to_string() }
    };
    let chain = CertificateDer::pem_file_iter(cert).map_err(unreadable(cert))?.collect::<Result<Vec<_>, _>>().map_err(unreadable(cert))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(unreadable(key))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_with(
    listener: TcpListener,
    cloud: Arc<Cloud>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn({
        let cloud = cloud.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                cloud.sweep_deleted_keys();
            }
        }
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let cloud = cloud.clone();
                let service = service_fn(move |req| {
                    let cloud = cloud.clone();
                    async move { handle(cloud, peer, req).await }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
                let watcher = graceful.watcher();
                let tls = tls.clone();
                connections.spawn(async move {
                    let ended = match tls {
                        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                        Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                            Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => return tracing::debug!("TLS handshake timed out"),
                        },
                    };
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    sweeper.abort();
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    connections.abort_all();
    Ok(())
}

/// Binds `addr` and serves until ctrl-c / SIGTERM.
pub async fn run(addr: SocketAddr, cloud: Arc<Cloud>) -> std::io::Result<()> {
    run_with(addr, cloud, None).await
}

/// [`run`], over TLS when `tls` is given.
pub async fn run_with(addr: SocketAddr, cloud: Arc<Cloud>, tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %listener.local_addr()?, scheme, "localcloud listening");
    serve_with(listener, cloud, tls, shutdown_signal()).await
}

/// Resolves on ctrl-c or SIGTERM (also used by `byok serve`, which embeds localcloud).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

async fn handle(cloud: Arc<Cloud>, peer: SocketAddr, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                return Ok(admin::json_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &serde_json::json!({ "__type": "RequestEntityTooLargeException", "message": format!("Request body exceeds {MAX_BODY} bytes") }),
                ));
            }
            return Err(DropConnection);
        }
    };
    let path = parts.uri.path();
    if path == "/_localcloud" || path.starts_with("/_localcloud/") {
        if let Err(refused) = admin::guard(&cloud, peer, &parts.method, &parts.headers) {
            return Ok(refused.response());
        }
        return Ok(admin::handle(&cloud, &parts.method, path, parts.uri.query().unwrap_or(""), &body).await);
    }
    aws(&cloud, &parts, body).await
}

async fn aws(cloud: &Cloud, parts: &http::request::Parts, body: Bytes) -> Result<HttpResponse, DropConnection> {
    let request_id = ids::request_id();
    let headers: Vec<(String, String)> =
        parts.headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers,
        body: &body,
    };
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let query_params =
        || if parts.method == Method::GET { QueryParams::parse(request.query.as_bytes()) } else { QueryParams::parse(&body) };

    // Which service: the SigV4 scope says; without one, guess for the error's vocabulary.
    let (service, region) = match sigv4::peek_scope(&request) {
        Some((name, region)) => match Service::from_scope(&name) {
            Some(service) => (service, region),
            None => {
                let error =
                    AwsError::new("UnrecognizedServiceException", 400, format!("localcloud emulates kms, iam and sts, not '{name}'"));
                return Ok(protocol::json_error(&request_id, &error));
            }
        },
        None => {
            let guess = if target.is_some() {
                Service::Kms
            } else if matches!(query_params().get("Action"), Some("AssumeRole" | "GetCallerIdentity")) {
                Service::Sts
            } else {
                Service::Iam
            };
            let error = auth::sigv4_error(
                guess,
                sigv4::verify(&request, time::OffsetDateTime::now_utc(), true, |_| None).err().unwrap_or(sigv4::SigV4Error::Missing),
            );
            return Ok(protocol::error_response(guess, &request_id, &error));
        }
    };
    let query = (service != Service::Kms).then(query_params);
    let operation = match (service, target, &query) {
        (Service::Kms, Some(t), _) => t.strip_prefix("TrentService.").unwrap_or(t).to_string(),
        (Service::Kms, None, _) => String::new(),
        (_, _, Some(q)) => q.get("Action").unwrap_or_default().to_string(),
        (_, _, None) => String::new(),
    };

    let outcome = cloud.faults.check(service, &region, &operation);
    if let Some(delay) = outcome.delay {
        tokio::time::sleep(delay).await;
    }
    match outcome.failure {
        None | Some(FaultKind::Latency { .. }) => {}
        Some(FaultKind::Drop) => return Err(DropConnection),
        Some(FaultKind::Throttle) => return Ok(protocol::error_response(service, &request_id, &AwsError::throttled(service))),
        Some(FaultKind::Error { status }) => {
            return Ok(protocol::error_response(service, &request_id, &AwsError::internal(service, status)));
        }
        Some(FaultKind::Refuse { code }) => return Ok(protocol::error_response(service, &request_id, &code.error(&operation))),
    }

    let call = match auth::authenticate(cloud, service, &request, &request_id) {
        Ok(call) => call,
        Err(error) => return Ok(protocol::error_response(service, &request_id, &error)),
    };
    let mut note = TrailNote::default();
    let response = match (service, query) {
        (Service::Kms, _) => {
            let result = if operation.is_empty() {
                Err(AwsError::unknown_operation(service, "(no X-Amz-Target)"))
            } else {
                parse_json(&body).and_then(|input| kms::handle(cloud, &call, &operation, &input, &mut note))
            };
            record(cloud, &call, &operation, &note, result.as_ref().err());
            match result {
                Ok(value) => protocol::json_ok(&request_id, &value),
                Err(error) => protocol::json_error(&request_id, &error),
            }
        }
        (_, query) => {
            let params = query.unwrap_or_default();
            let result = if operation.is_empty() {
                Err(AwsError::new("MissingAction", 400, "Missing Action"))
            } else if service == Service::Iam {
                iam::handle(cloud, &call, &operation, &params, &mut note)
            } else {
                sts::handle(cloud, &call, &operation, &params, &mut note)
            };
            record(cloud, &call, &operation, &note, result.as_ref().err());
            match result {
                Ok(xml) => protocol::query_ok(service, &operation, &request_id, xml.as_deref()),
                Err(error) => protocol::query_error(service, &request_id, &error),
            }
        }
    };
    Ok(response)
}

fn parse_json(body: &[u8]) -> Result<Value, AwsError> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|e| AwsError::new("SerializationException", 400, format!("The request body is not valid JSON: {e}")))
}

fn record(cloud: &Cloud, call: &Call, operation: &str, note: &TrailNote, error: Option<&AwsError>) {
    let (kind, session_name) = match &call.caller {
        Caller::Root { .. } => ("Root", None),
        Caller::AssumedRole { session_name, .. } => ("AssumedRole", Some(session_name.clone())),
    };
    cloud.trail.record(TrailEvent {
        seq: 0,
        event_time: cloud.clock.now().format(&Rfc3339).unwrap_or_default(),
        event_source: call.service.event_source().to_string(),
        event_name: operation.to_string(),
        aws_region: call.region.clone(),
        request_id: call.request_id.clone(),
        recipient_account_id: note.recipient_account.clone().unwrap_or_else(|| call.caller.account().to_string()),
        user_identity: Some(UserIdentity {
            kind: kind.to_string(),
            arn: call.caller.arn(),
            account_id: call.caller.account().to_string(),
            access_key_id: call.access_key_id.clone(),
            session_name,
        }),
        resources: note.resources.clone(),
        encryption_context: note.encryption_context.clone(),
        request_parameters: note.request_parameters.clone(),
        error_code: error.map(|e| e.code.to_string()),
        error_message: error.map(|e| e.message.clone()),
    });
}

/// A running server, for tests and for embedding: `localcloud::spawn` binds `127.0.0.1:0`.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub cloud: Arc<Cloud>,
    scheme: &'static str,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT` (`https://` over TLS), for `--endpoint-url`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops accepting, drains in-flight requests, and waits.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

/// Starts a server for `cloud` on `addr` in the current tokio runtime.
pub async fn spawn(addr: SocketAddr, cloud: Arc<Cloud>) -> std::io::Result<Running> {
    spawn_with(addr, cloud, None).await
}

/// [`spawn`], over TLS when `tls` is given.
pub async fn spawn_with(addr: SocketAddr, cloud: Arc<Cloud>, tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, cloud.clone(), tls, async move {
        let _ = rx.await;
    }));
    Ok(Running { addr, cloud, scheme, shutdown: Some(tx), task })
}
