//! The one way byok opens HTTPS as a client outside the AWS SDK (the STS forwarder of AWS
//! sign-in, webhook and audit-sink deliveries, the OTLP trace exporter): hyper's connector over
//! rustls on aws-lc-rs, with the platform's trust roots (and optionally `AWS_CA_BUNDLE`'s), HTTP/1.1,
//! a 5 s connect timeout, and plain `http://` allowed where the caller allows it.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

/// The connector every such client wraps.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Which certificates a client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The platform's roots.
    Platform,
    /// The platform's and those in the PEM file `AWS_CA_BUNDLE` names, if set (as the AWS
    /// SDK and CLI do: a client that talks to AWS-compatible endpoints).
    PlatformAndAwsCaBundle,
}

/// A connector over rustls with `roots`; `https_or_http`: the scheme of each URL decides (the
/// caller has already refused plain `http://` where it must not go).
pub fn connector(roots: Roots) -> Result<Connector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = store.add(cert);
    }
    if roots == Roots::PlatformAndAwsCaBundle
        && let Some(path) = std::env::var_os("AWS_CA_BUNDLE")
    {
        use rustls::pki_types::pem::PemObject;
        if let Ok(certs) = rustls::pki_types::CertificateDer::pem_file_iter(&path) {
            for cert in certs.flatten() {
                let _ = store.add(cert);
            }
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http))
}
