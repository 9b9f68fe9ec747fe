//! `byok serve --tls-cert --tls-key [--client-ca]`: HTTPS with HTTP/1.1 and HTTP/2 by ALPN, no
//! plaintext on the TLS port, the certificate renewed in place without a restart, the console's
//! cookies `Secure`, mutual TLS refusing a client without a certificate from the CA, and the
//! `byok` CLI over HTTPS with `--ca-file`. Certificates are made here, at test time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use byok_cli::serve::ServeArgs;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::support::start_with;

/// A CA, and certificates it signs.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate for `names` (DNS names or IP addresses): its PEM and its key's PEM.
    fn issue(&self, common_name: &str, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// A TLS client trusting `ca`, offering `alpn`, with a client certificate if given.
fn connector(ca: &str, alpn: &[&[u8]], client: Option<(&str, &str)>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("CA pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().expect("versions");
    let builder = builder.with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                rustls::pki_types::pem::PemObject::pem_slice_iter(cert.as_bytes()).collect::<Result<_, _>>().expect("client cert");
            let key: PrivateKeyDer<'static> = rustls::pki_types::pem::PemObject::from_pem_slice(key.as_bytes()).expect("client key");
            builder.with_client_auth_cert(chain, key).expect("client auth")
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn handshake(api: &std::net::SocketAddr, connector: &TlsConnector) -> std::io::Result<Tls> {
    let tcp = tokio::net::TcpStream::connect(api).await?;
    connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await
}

/// `GET path` over an established TLS stream, with HTTP/2 or HTTP/1.1 as negotiated; the
/// status and the response's headers.
async fn get(tls: Tls, path: &str) -> Result<(u16, hyper::HeaderMap), hyper::Error> {
    request(tls, "GET", path, None).await.map(|(status, headers, _)| (status, headers))
}

/// A request over an established TLS stream (HTTP/2 or HTTP/1.1 as negotiated), a JSON body if
/// given; the status, headers and body.
async fn request(tls: Tls, method: &str, path: &str, body: Option<&str>) -> Result<(u16, hyper::HeaderMap, Vec<u8>), hyper::Error> {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let uri = if h2 { format!("https://localhost{path}") } else { path.to_string() };
    let mut builder = hyper::Request::builder().method(method).uri(uri);
    if !h2 {
        builder = builder.header(hyper::header::HOST, "localhost");
    }
    if body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default().to_string()))).expect("request");
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, headers, bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_https_renewed_in_place_and_mutual_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("byok test CA");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let (cert, key) = ca.issue("first", &["localhost", "127.0.0.1"]);
    let cert_file = write(dir.path(), "api.crt", &cert);
    let key_file = write(dir.path(), "api.key", &key);
    let b = start_with(
        &dir.path().join("data"),
        ServeArgs { tls_cert: Some(cert_file.clone()), tls_key: Some(key_file.clone()), ..ServeArgs::default() },
    )
    .await;
    assert!(b.api_url().starts_with("https://127.0.0.1:"), "{}", b.api_url());

    // HTTP/2 and HTTP/1.1, each by ALPN.
    let tls = handshake(&b.api, &connector(&ca.pem, &[b"h2", b"http/1.1"], None)).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(get(tls, "/livez").await.expect("h2 GET").0, 200);
    let tls = handshake(&b.api, &connector(&ca.pem, &[b"http/1.1"], None)).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, headers) = get(tls, "/console/signin").await.expect("h1 GET");
    assert_eq!(status, 200);
    let cookie = headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cookie.starts_with("__Host-") && cookie.contains("Secure"), "console cookies are Secure under TLS: {cookie}");

    // No plaintext on the TLS port: an HTTP request gets no HTTP answer.
    let plain = localcloud::admin_client::send(&format!("http://{}", b.api), "GET", "/livez", &[], Vec::new()).await;
    assert!(!matches!(plain, Ok((200, _))), "plaintext HTTP was answered on the TLS port: {plain:?}");

    // The CLI over HTTPS: with the CA it works; without it the server is not trusted.
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let cli = |with_ca: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_byok"));
        cmd.args(["tenant", "list", "--api", &b.api_url(), "--token", &op]).env_remove("BYOK_CA_FILE").env("SSL_CERT_FILE", "/nonexistent");
        if with_ca {
            cmd.arg("--ca-file").arg(&ca_file);
        }
        cmd.output().expect("byok")
    };
    let trusted = cli(true);
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert_eq!(String::from_utf8_lossy(&trusted.stdout).trim(), "[]");
    let untrusted = cli(false);
    assert!(!untrusted.status.success(), "an unknown CA must not be trusted");
    let said = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(said.contains("cannot reach") || said.contains("certificate"), "{said}");

    // Renewal: new files in place; the server presents the new certificate without a restart.
    let first = tls_peer(&b.api, &ca.pem).await;
    let (renewed, renewed_key) = ca.issue("renewed", &["localhost", "127.0.0.1"]);
    std::fs::write(&key_file, &renewed_key).expect("key");
    std::fs::write(&cert_file, &renewed).expect("cert");
    let started = Instant::now();
    loop {
        let now = tls_peer(&b.api, &ca.pem).await;
        if now != first {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the renewed certificate was not picked up within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A half-written renewal (a key that does not fit) keeps the certificate in use.
    let (_, other_key) = ca.issue("stray", &["localhost"]);
    std::fs::write(&key_file, &other_key).expect("key");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_ne!(tls_peer(&b.api, &ca.pem).await, first, "still serving");
    let tls = handshake(&b.api, &connector(&ca.pem, &[b"http/1.1"], None)).await.expect("still serving after a bad renewal");
    assert_eq!(get(tls, "/livez").await.expect("GET").0, 200);
    b.stop().await.expect("stop");

    // Mutual TLS: a client certificate from the client CA is required.
    let clients = Ca::new("byok client CA");
    let client_ca = write(dir.path(), "clients.pem", &clients.pem);
    let (cert, key) = ca.issue("mtls", &["localhost", "127.0.0.1"]);
    let (cert_file, key_file) = (write(dir.path(), "m.crt", &cert), write(dir.path(), "m.key", &key));
    let m = start_with(
        &dir.path().join("data-mtls"),
        ServeArgs {
            tls_cert: Some(cert_file),
            tls_key: Some(key_file),
            client_ca: Some(client_ca),
            client_identity: vec!["billing-service=acme".into()],
            ..ServeArgs::default()
        },
    )
    .await;
    let refused = match handshake(&m.api, &connector(&ca.pem, &[b"http/1.1"], None)).await {
        Err(_) => true,
        // TLS 1.3: the server's refusal arrives after the client's handshake completes.
        Ok(tls) => get(tls, "/livez").await.is_err(),
    };
    assert!(refused, "a client without a certificate was served under mutual TLS");
    let (service_cert, service_key) = clients.issue("billing-service", &["billing.internal"]);
    let billing = connector(&ca.pem, &[b"h2"], Some((&service_cert, &service_key)));
    let tls = handshake(&m.api, &billing).await.expect("mutual TLS");
    assert_eq!(get(tls, "/livez").await.expect("GET").0, 200);
    // The certificate is the service identity its common name maps to, with no bearer token:
    // it reaches acme (no such tenant yet: 404), not globex (403).
    let record = r#"{"plaintext":"aGk=","context":"r1"}"#;
    let tls = handshake(&m.api, &billing).await.expect("mutual TLS");
    let (status, _, body) = request(tls, "POST", "/v1/tenants/acme/encrypt", Some(record)).await.expect("POST");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("unknown_tenant"), "{}", String::from_utf8_lossy(&body));
    let tls = handshake(&m.api, &billing).await.expect("mutual TLS");
    let (status, _, body) = request(tls, "POST", "/v1/tenants/globex/encrypt", Some(record)).await.expect("POST");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // Nor is it the operator.
    let tls = handshake(&m.api, &billing).await.expect("mutual TLS");
    assert_eq!(get(tls, "/v1/tenants").await.expect("GET").0, 403);
    // The operator's CLI presents a certificate too (--client-cert/--client-key) and its token.
    let (ops_cert, ops_key) = clients.issue("operator-laptop", &["ops.internal"]);
    let (ops_cert, ops_key) = (write(dir.path(), "ops.crt", &ops_cert), write(dir.path(), "ops.key", &ops_key));
    let op = m.operator_token.as_deref().expect("operator token").to_string();
    let cli = |with_cert: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_byok"));
        cmd.args(["tenant", "list", "--api", &m.api_url(), "--token", &op, "--ca-file"]).arg(&ca_file);
        if with_cert {
            cmd.arg("--client-cert").arg(&ops_cert).arg("--client-key").arg(&ops_key);
        }
        cmd.output().expect("byok")
    };
    let with = cli(true);
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
    assert_eq!(String::from_utf8_lossy(&with.stdout).trim(), "[]");
    assert!(!cli(false).status.success(), "no client certificate, no answer under mutual TLS");
    // A certificate from the client CA whose name maps to nothing is no identity.
    let (unmapped_cert, unmapped_key) = clients.issue("reporting-service", &["reporting.internal"]);
    let tls = handshake(&m.api, &connector(&ca.pem, &[b"http/1.1"], Some((&unmapped_cert, &unmapped_key)))).await.expect("mutual TLS");
    let (status, _, _) = request(tls, "POST", "/v1/tenants/acme/encrypt", Some(record)).await.expect("POST");
    assert_eq!(status, 401);
    let (stranger_cert, stranger_key) = ca.issue("stranger", &["stranger.internal"]);
    let stranger = match handshake(&m.api, &connector(&ca.pem, &[b"http/1.1"], Some((&stranger_cert, &stranger_key)))).await {
        Err(_) => true,
        Ok(tls) => get(tls, "/livez").await.is_err(),
    };
    assert!(stranger, "a client certificate from another CA was accepted");
    m.stop().await.expect("stop");
}

/// The certificate the server presents now (DER).
async fn tls_peer(api: &std::net::SocketAddr, ca: &str) -> Vec<u8> {
    let tls = handshake(api, &connector(ca, &[b"http/1.1"], None)).await.expect("handshake");
    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).expect("a certificate")
}

#[test]
fn tls_settings_must_come_in_pairs() {
    let bad = |args: ServeArgs| byok_cli::serve::ServeParams::from_args(args).expect_err("refused").to_string();
    assert!(bad(ServeArgs { tls_cert: Some("c".into()), ..ServeArgs::default() }).contains("--tls-key"));
    assert!(bad(ServeArgs { tls_key: Some("k".into()), ..ServeArgs::default() }).contains("--tls-cert"));
    assert!(bad(ServeArgs { client_ca: Some("ca".into()), ..ServeArgs::default() }).contains("HTTPS"));
    assert!(bad(ServeArgs { client_identity: vec!["svc=acme".into()], ..ServeArgs::default() }).contains("--client-ca"));
    let mtls = |identity: &str| ServeArgs {
        tls_cert: Some("c".into()),
        tls_key: Some("k".into()),
        client_ca: Some("ca".into()),
        client_identity: vec![identity.into()],
        ..ServeArgs::default()
    };
    assert!(bad(mtls("no-equals")).contains("NAME=TENANT"));
    assert!(bad(mtls("svc=Not A Tenant")).contains("tenant"));
    let ok = byok_cli::serve::ServeParams::from_args(mtls("svc=acme,globex")).expect("valid");
    assert_eq!(ok.client_identities.len(), 1);
}

/// `byok serve --aws-endpoint https://…` against a localcloud serving HTTPS with a private CA:
/// with `AWS_CA_BUNDLE` the bootstrap and the AWS SDK trust it and the monitor's passes prove the
/// provider (canary included) over HTTPS; without it, the node refuses to start and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byok_serve_against_an_https_aws_endpoint_with_aws_ca_bundle() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("aws endpoint CA");
    let ca_file = write(dir.path(), "aws-ca.pem", &ca.pem);
    let (cert, key) = ca.issue("localcloud", &["localhost", "127.0.0.1"]);
    let (cert_file, key_file) = (write(dir.path(), "lc.crt", &cert), write(dir.path(), "lc.key", &key));
    let cloud = Arc::new(localcloud::Cloud::open(None).expect("cloud"));
    let tls = localcloud::server::tls_acceptor(&cert_file, &key_file).expect("TLS");
    let lc = localcloud::server::spawn_with("127.0.0.1:0".parse().expect("addr"), cloud, Some(tls)).await.expect("localcloud");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let serve = |data: &str, bundle: Option<&Path>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--aws-endpoint", &lc.endpoint()])
            .args(["--monitor-interval-seconds", "1", "--data-dir"])
            .arg(dir.path().join(data))
            .env("BYOK_LOG", "warn")
            .env("SSL_CERT_FILE", "/nonexistent")
            .env_remove("AWS_CA_BUNDLE")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(bundle) = bundle {
            cmd.env("AWS_CA_BUNDLE", bundle);
        }
        cmd
    };

    // Without the CA: refused at start, naming the endpoint.
    let refused = tokio::time::timeout(Duration::from_secs(60), serve("untrusted", None).output()).await.expect("exits").expect("byok");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("127.0.0.1"), "{said}");

    // With AWS_CA_BUNDLE: a pass proves the provider over HTTPS.
    let mut child = serve("trusted", Some(&ca_file)).spawn().expect("byok serve");
    let api = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let (status, body) = localcloud::admin_client::send(&api, "GET", "/metrics", &[], Vec::new()).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body).into_owned();
        let proven = text.lines().any(|l| l.starts_with("byok_monitor_last_success_timestamp_seconds ") && !l.ends_with(" 0"));
        if status == 200 && proven {
            break;
        }
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("byok serve exited: {exit}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no pass proved the provider over HTTPS within 60 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, health) = localcloud::admin_client::send(&api, "GET", "/healthz", &[], Vec::new()).await.expect("healthz");
    let health: serde_json::Value = serde_json::from_slice(&health).expect("json");
    assert_eq!(health["provider_healthy"], true, "{health}");
    child.kill().await.expect("kill");
    lc.stop().await.expect("stop");
}
