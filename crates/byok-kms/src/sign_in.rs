//! Sign-in with AWS IAM: a product service signs an `sts:GetCallerIdentity` request with its
//! own credentials and hands it to byok; byok forwards it unchanged to STS, which checks the
//! signature and names the caller (Vault's AWS auth method works the same way). byok never sees
//! the service's secret, and a request signed for another host is refused by STS itself.
//!
//! [`StsForwarder`] sends the request to a fixed endpoint (a localcloud) or to the regional STS
//! endpoint of the request's own credential scope; the host the request was signed for must be
//! that endpoint's, so byok cannot be made to send it anywhere else.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{AccessError, Fault};

/// A signed `GetCallerIdentity` request as the service made it: its headers and body.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedCallerIdentity {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for SignedCallerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SignedCallerIdentity").field("headers", &names).finish_non_exhaustive()
    }
}

impl SignedCallerIdentity {
    /// The value of header `name` (case-insensitive), if sent once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found.next()?;
        found.next().is_none().then_some(first.1.as_str())
    }
}

/// Who STS says signed the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, or a user's or root's ARN.
    pub arn: String,
    pub account: String,
}

/// Asks STS who signed a request.
#[async_trait]
pub trait CallerIdentityVerifier: Send + Sync + std::fmt::Debug {
    async fn caller(&self, request: &SignedCallerIdentity) -> Result<CallerIdentity, AccessError>;
}

/// Forwards signed `GetCallerIdentity` requests to STS over HTTPS (the platform's roots and
/// `AWS_CA_BUNDLE`).
#[derive(Debug, Clone)]
pub struct StsForwarder {
    endpoint: Option<String>,
    client: Client<crate::https::Connector, Full<Bytes>>,
}

/// How long STS has to answer.
const STS_TIMEOUT: Duration = Duration::from_secs(10);

impl StsForwarder {
    /// Forwards to `endpoint` (`http(s)://HOST:PORT`, a localcloud), or with `None` to
    /// `https://sts.REGION.amazonaws.com` of each request's credential scope.
    pub fn new(endpoint: Option<String>) -> Result<Self, AccessError> {
        let https = crate::https::connector(crate::https::Roots::PlatformAndAwsCaBundle)
            .map_err(|e| AccessError::Other { code: "Tls".into(), message: e.to_string() })?;
        Ok(Self {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Where this request goes: the fixed endpoint, or its credential scope's regional STS.
    fn endpoint_for(&self, request: &SignedCallerIdentity) -> Result<String, AccessError> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        let region = scope_region(request).ok_or_else(|| refused("the request carries no SigV4 credential scope with a region"))?;
        Ok(format!("https://sts.{region}.amazonaws.com"))
    }
}

/// The region of the request's SigV4 credential scope, if it names a sane one.
fn scope_region(request: &SignedCallerIdentity) -> Option<&str> {
    request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
}

fn refused(message: &str) -> AccessError {
    AccessError::Other { code: "SignInRefused".into(), message: message.into() }
}

/// The text of the first `<name>` element in an STS answer.
fn element(xml: &str, name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) => inside = e.name().as_ref() == name.as_bytes(),
            quick_xml::events::Event::Text(t) if inside => return t.decode().ok().map(|v| v.trim().to_string()),
            quick_xml::events::Event::End(_) => inside = false,
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

#[async_trait]
impl CallerIdentityVerifier for StsForwarder {
    async fn caller(&self, request: &SignedCallerIdentity) -> Result<CallerIdentity, AccessError> {
        let endpoint = self.endpoint_for(request)?;
        let authority = endpoint.split("://").nth(1).unwrap_or_default();
        // The request must be signed for the host it is sent to: byok sends it nowhere else. (A
        // client that left Host out signed the URL's host; STS then checks it is this one.)
        if request.header("host").is_some_and(|host| host != authority) {
            return Err(refused(&format!("the request is signed for another host than {authority}")));
        }
        let mut builder = http::Request::builder().method("POST").uri(format!("{endpoint}/"));
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("content-length") {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        let http_request = builder.body(Full::new(Bytes::from(request.body.clone()))).map_err(|e| refused(&e.to_string()))?;
        let transient = |message: String| AccessError::Transient { fault: Fault::Network, region: None, message };
        let call = async {
            let response = self.client.request(http_request).await.map_err(|e| transient(format!("STS at {endpoint}: {e}")))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| transient(e.to_string()))?.to_bytes();
            Ok::<_, AccessError>((status, String::from_utf8_lossy(&body).into_owned()))
        };
        // A span like the SDK calls' (`STS.GetCallerIdentity` in the caller's region).
        let region = scope_region(request).unwrap_or_default();
        let (status, xml) = crate::sdk::traced("STS", "GetCallerIdentity", region, async {
            tokio::time::timeout(STS_TIMEOUT, call).await.map_err(|_| transient(format!("STS at {endpoint} did not answer")))?
        })
        .await?;
        match status {
            200 => match (element(&xml, "Arn"), element(&xml, "Account")) {
                (Some(arn), Some(account)) => Ok(CallerIdentity { arn, account }),
                _ => Err(refused("STS answered without the caller's ARN")),
            },
            500..=599 => Err(transient(format!("STS answered {status}"))),
            _ => {
                let code = element(&xml, "Code").unwrap_or_else(|| format!("HTTP {status}"));
                let message = element(&xml, "Message").unwrap_or_default();
                Err(AccessError::Other { code, message })
            }
        }
    }
}
