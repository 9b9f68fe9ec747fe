//! The AWS SDK implementation of [`KeyService`].

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use byok_domain::{KeyArn, KeyMode, Region, TenantBinding, TenantId};
use byok_envelope::TenantKey;
use time::OffsetDateTime;

use crate::error::{AccessError, Fault};
use crate::sdk::{https_client, traced};
use crate::{KeyService, KeyState, KeyStatus, Purpose, wrap_context};

/// How to reach AWS (or localcloud).
#[derive(Clone)]
pub struct AwsKeyServiceConfig {
    /// The provider's own identity: the principal the customers' trust policies name.
    pub provider_credentials: SharedCredentialsProvider,
    /// `Some(url)` for localcloud; `None` for AWS's own endpoints.
    pub endpoint_url: Option<String>,
    /// Region for STS calls.
    pub sts_region: String,
    /// Per-attempt timeout for every AWS call.
    pub call_timeout: Duration,
    /// Attempts per call, retries included (1 = no retry).
    pub max_attempts: u32,
    /// Data-path sessions are replaced this long before they expire.
    pub session_refresh_margin: Duration,
    /// Requested session length.
    pub session_duration: Duration,
    /// The SDK's standard configuration (environment, shared config and credentials files,
    /// profiles, web identity, instance metadata, `AWS_ENDPOINT_URL` and the per-service
    /// `AWS_ENDPOINT_URL_STS`/`_KMS`): where STS and KMS clients start from, when given.
    pub sdk: Option<aws_types::SdkConfig>,
}

impl std::fmt::Debug for AwsKeyServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeyServiceConfig")
            .field("endpoint_url", &self.endpoint_url)
            .field("sts_region", &self.sts_region)
            .finish_non_exhaustive()
    }
}

impl AwsKeyServiceConfig {
    pub fn new(provider_credentials: SharedCredentialsProvider, endpoint_url: Option<String>) -> Self {
        Self {
            provider_credentials,
            endpoint_url,
            sts_region: "us-east-1".into(),
            call_timeout: Duration::from_secs(5),
            max_attempts: 2,
            session_refresh_margin: Duration::from_secs(300),
            session_duration: Duration::from_secs(3600),
            sdk: None,
        }
    }

    /// Everything from the SDK's standard configuration (`aws_config::load_defaults`): the
    /// provider's credentials chain, its region for STS, and every endpoint override. This is
    /// the real-AWS path; pointing `AWS_ENDPOINT_URL` at a localcloud tests it as it is.
    pub fn from_sdk_config(sdk: &aws_types::SdkConfig) -> Option<Self> {
        let credentials = sdk.credentials_provider()?;
        let mut config = Self::new(credentials, None);
        if let Some(region) = sdk.region() {
            config.sts_region = region.to_string();
        }
        config.sdk = Some(sdk.clone());
        Some(config)
    }
}

/// What a data-path session is cached under: the role and the external id it was assumed with.
fn session_key(binding: &TenantBinding) -> String {
    format!("{}\n{}", binding.role_arn, binding.external_id.as_str())
}

/// A reusable data-path session.
struct Session {
    credentials: Credentials,
    expires: OffsetDateTime,
}

/// [`KeyService`] over the AWS SDK for Rust.
///
/// Every STS and KMS client shares one HTTPS client, so connections are pooled across
/// tenants and calls: a KMS client is built per session (its credentials are the session's),
/// and building one without a shared HTTP client would mean a new TLS configuration and a new
/// connection for every call — at 10,000 tenants, 20,000 handshakes per monitor pass.
pub struct AwsKeyService {
    config: AwsKeyServiceConfig,
    http: aws_sdk_kms::config::SharedHttpClient,
    /// For the provider's own identity (`GetCallerIdentity`), in `sts_region`.
    sts: aws_sdk_sts::Client,
    /// AssumeRole goes to the STS endpoint of the tenant's first region (the location's
    /// nearest), one client per region.
    regional_sts: Mutex<HashMap<String, aws_sdk_sts::Client>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// KMS with the provider's own identity, one client per region (the provider-held layer).
    provider_kms: Mutex<HashMap<String, aws_sdk_kms::Client>>,
}

impl std::fmt::Debug for AwsKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeyService").field("config", &self.config).finish_non_exhaustive()
    }
}

fn timeouts(d: Duration) -> aws_sdk_sts::config::timeout::TimeoutConfig {
    aws_sdk_sts::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(d)
        .connect_timeout(d.min(Duration::from_secs(2)))
        .build()
}

/// Classifies any SDK error: service answers by code, everything else by what failed.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: SdkError<E, R>,
    status: Option<u16>,
    region: Option<&Region>,
) -> AccessError {
    let region = region.cloned();
    match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            AccessError::from_code(e.code(), status, e.message().unwrap_or_default().to_string(), region)
        }
        SdkError::TimeoutError(_) => AccessError::Transient { fault: Fault::Timeout, region, message: "the call timed out".into() },
        SdkError::DispatchFailure(d) => {
            let fault = if d.is_timeout() { Fault::Timeout } else { Fault::Network };
            AccessError::Transient { fault, region, message: format!("{:?}", d.as_connector_error().map(ToString::to_string)) }
        }
        SdkError::ResponseError(_) => {
            AccessError::Transient { fault: Fault::Network, region, message: "the response was cut short or unreadable".into() }
        }
        _ => AccessError::Other { code: "ClientError".into(), message: err.to_string() },
    }
}

/// Classifies a KMS call's failure in `region`.
pub(crate) fn kms_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
    region: &Region,
) -> AccessError {
    let status = e.raw_response().map(|r| r.status().as_u16());
    classify(e, status, Some(region))
}

fn status_of<E, R: HttpStatus>(err: &SdkError<E, R>) -> Option<u16> {
    err.raw_response().map(HttpStatus::status)
}

/// The HTTP status of a raw SDK response.
trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_sts::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl AwsKeyService {
    pub fn new(config: AwsKeyServiceConfig) -> Self {
        // With AWS_CA_BUNDLE set, always this client: the SDK's own would not read it.
        let http = match std::env::var_os("AWS_CA_BUNDLE") {
            Some(_) => https_client(),
            None => config.sdk.as_ref().and_then(aws_types::SdkConfig::http_client).unwrap_or_else(https_client),
        };
        let sts = Self::sts_client(&config, &http, &config.sts_region);
        Self {
            sts,
            http,
            config,
            regional_sts: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            provider_kms: Mutex::new(HashMap::new()),
        }
    }

    fn sts_client(config: &AwsKeyServiceConfig, http: &aws_sdk_kms::config::SharedHttpClient, region: &str) -> aws_sdk_sts::Client {
        let base = match &config.sdk {
            Some(sdk) => aws_sdk_sts::config::Builder::from(sdk),
            None => aws_sdk_sts::Config::builder(),
        };
        let mut sts = base
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(region.to_string()))
            .credentials_provider(config.provider_credentials.clone())
            .http_client(http.clone())
            .timeout_config(timeouts(config.call_timeout))
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::standard().with_max_attempts(config.max_attempts));
        if let Some(url) = &config.endpoint_url {
            sts = sts.endpoint_url(url);
        }
        aws_sdk_sts::Client::from_conf(sts.build())
    }

    /// The STS client for a tenant: its first region's regional endpoint.
    fn sts_for(&self, binding: &TenantBinding) -> aws_sdk_sts::Client {
        match binding.keys.first() {
            Some(key) => self.sts_in(&key.region),
            None => self.sts.clone(),
        }
    }

    /// The STS client of `region`'s regional endpoint.
    fn sts_in(&self, region: &Region) -> aws_sdk_sts::Client {
        let mut clients = self.regional_sts.lock();
        clients.entry(region.to_string()).or_insert_with_key(|region| Self::sts_client(&self.config, &self.http, region)).clone()
    }

    async fn assume(&self, binding: &TenantBinding, purpose: Purpose, with_external_id: bool) -> Result<Session, AccessError> {
        self.assume_via(&self.sts_for(binding), binding, purpose, with_external_id).await
    }

    /// A key-policy (CMK) tenant has no role: asking to assume one is a bug, said as such
    /// (never a denial).
    fn no_role(binding: &TenantBinding) -> Result<(), AccessError> {
        match binding.role() {
            Some(_) => Ok(()),
            None => Err(AccessError::Other {
                code: "NoRole".into(),
                message: "a key-policy (CMK) tenant has no role to assume: its keys are used by the provider's own principal".into(),
            }),
        }
    }

    async fn assume_via(
        &self,
        sts: &aws_sdk_sts::Client,
        binding: &TenantBinding,
        purpose: Purpose,
        with_external_id: bool,
    ) -> Result<Session, AccessError> {
        let mut request = sts
            .assume_role()
            .role_arn(binding.role_arn.as_str())
            .role_session_name(purpose.session_name())
            .duration_seconds(i32::try_from(self.config.session_duration.as_secs()).unwrap_or(3600));
        if with_external_id {
            request = request.external_id(binding.external_id.as_str());
        }
        let region = sts.config().region().map(|r| r.to_string()).unwrap_or_default();
        let out = traced("STS", "AssumeRole", &region, request.send()).await.map_err(|e| {
            let status = status_of(&e);
            classify(e, status, None)
        })?;
        let c = out
            .credentials()
            .ok_or_else(|| AccessError::Other { code: "NoCredentials".into(), message: "AssumeRole returned no credentials".into() })?;
        let expires = OffsetDateTime::from_unix_timestamp(c.expiration().secs()).unwrap_or_else(|_| OffsetDateTime::now_utc());
        Ok(Session {
            credentials: Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "byok-assume-role",
            ),
            expires,
        })
    }

    /// Session credentials for `purpose`: reused on the data path until near expiry, fresh
    /// for everything else.
    /// A binding without keys yet (onboarding) assumes at the STS endpoint of `region`, the
    /// region of the key it is about to use.
    async fn session(&self, binding: &TenantBinding, region: &Region, purpose: Purpose) -> Result<Credentials, AccessError> {
        // One session per (role, external id): two tenants may share a role name across
        // accounts, never a session.
        let cache_key = session_key(binding);
        if purpose == Purpose::Data {
            let margin = time::Duration::try_from(self.config.session_refresh_margin).unwrap_or(time::Duration::minutes(5));
            if let Some(s) = self.sessions.lock().get(&cache_key) {
                if s.expires - margin > OffsetDateTime::now_utc() {
                    return Ok(s.credentials.clone());
                }
            }
        }
        let sts = self.sts_in(binding.keys.first().map_or(region, |k| &k.region));
        let session = self.assume_via(&sts, binding, purpose, true).await?;
        let credentials = session.credentials.clone();
        if purpose == Purpose::Data {
            self.sessions.lock().insert(cache_key, session);
        }
        Ok(credentials)
    }

    /// A KMS client in `region` with these credentials and every shared setting (the SDK's
    /// standard configuration, the shared HTTPS pool, timeouts, retries, the endpoint).
    fn kms_client(
        &self,
        credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
        region: &Region,
        cache_identity: bool,
    ) -> aws_sdk_kms::Client {
        let base = match &self.config.sdk {
            Some(sdk) => aws_sdk_kms::config::Builder::from(sdk),
            None => aws_sdk_kms::Config::builder(),
        };
        let mut conf = base
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .credentials_provider(credentials)
            .http_client(self.http.clone())
            .timeout_config(timeouts(self.config.call_timeout))
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::standard().with_max_attempts(self.config.max_attempts));
        if !cache_identity {
            conf = conf.identity_cache(aws_sdk_kms::config::IdentityCache::no_cache());
        }
        if let Some(url) = &self.config.endpoint_url {
            conf = conf.endpoint_url(url);
        }
        aws_sdk_kms::Client::from_conf(conf.build())
    }

    fn kms(&self, credentials: Credentials, region: &Region) -> aws_sdk_kms::Client {
        // Session credentials are used for this client's calls only: nothing to cache.
        self.kms_client(credentials, region, false)
    }

    /// KMS in `region` for one check: the assumed session's (BYOK), or the provider's own (CMK).
    fn kms_in(&self, session: &crate::RoleSession, region: &Region) -> aws_sdk_kms::Client {
        match &session.credentials {
            Some(credentials) => self.kms(credentials.clone(), region),
            None => self.provider_kms(region),
        }
    }

    /// What DescribeKey is asked for: across accounts (a CMK tenant's key, used by the
    /// provider's own principal) KMS finds a key only by its ARN or an alias ARN, so an alias
    /// name (`alias/byok-acme`) becomes the alias ARN in the tenant's account.
    fn key_ref(binding: &TenantBinding, region: &Region, key_ref: &str) -> String {
        match (binding.role(), key_ref.strip_prefix("alias/")) {
            (None, Some(alias)) => format!("arn:aws:kms:{region}:{}:alias/{alias}", binding.account),
            _ => key_ref.to_string(),
        }
    }

    /// KMS in `region` as the provider itself (its credentials, refreshed by the SDK's cache),
    /// one client per region.
    pub(crate) fn provider_kms(&self, region: &Region) -> aws_sdk_kms::Client {
        let mut clients = self.provider_kms.lock();
        clients.entry(region.to_string()).or_insert_with(|| self.kms_client(self.config.provider_credentials.clone(), region, true)).clone()
    }

    /// Runs `call` with a KMS client on the purpose's session. A reused (data-path) session
    /// that AWS reports expired is dropped and the call made once more on a new one: an expired
    /// session just means assume again.
    async fn with_kms<T, Fut>(
        &self,
        binding: &TenantBinding,
        region: &Region,
        purpose: Purpose,
        call: impl Fn(aws_sdk_kms::Client) -> Fut,
    ) -> Result<T, AccessError>
    where
        Fut: std::future::Future<Output = Result<T, AccessError>>,
    {
        // A key-policy (CMK) tenant's key is used by the provider's own principal: no role.
        if binding.role().is_none() {
            return call(self.provider_kms(region)).await;
        }
        let first = call(self.kms(self.session(binding, region, purpose).await?, region)).await;
        match first {
            Err(AccessError::Transient { fault: Fault::ExpiredSession, .. }) if purpose == Purpose::Data => {
                self.forget(binding);
                call(self.kms(self.session(binding, region, purpose).await?, region)).await
            }
            other => other,
        }
    }

    async fn describe(kms: aws_sdk_kms::Client, key_ref: &str, region: &Region) -> Result<KeyStatus, AccessError> {
        let out = traced("KMS", "DescribeKey", region.as_str(), kms.describe_key().key_id(key_ref).send())
            .await
            .map_err(|e| kms_error(e, region))?;
        let meta = out
            .key_metadata()
            .ok_or_else(|| AccessError::Other { code: "NoMetadata".into(), message: "DescribeKey returned no metadata".into() })?;
        Ok(KeyStatus {
            arn: meta.arn().unwrap_or_default().to_string(),
            state: meta.key_state().map(|s| KeyState::from(s.as_str())).unwrap_or(KeyState::Other(String::new())),
            enabled: meta.enabled(),
        })
    }

    async fn encrypt(
        kms: aws_sdk_kms::Client,
        mode: &KeyMode,
        key_arn: &KeyArn,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
    ) -> Result<Vec<u8>, AccessError> {
        let mut request = kms.encrypt().key_id(key_arn.as_str()).plaintext(Blob::new(key.expose().to_vec()));
        for (k, v) in wrap_context(tenant, mode) {
            request = request.encryption_context(k, v);
        }
        let out = traced("KMS", "Encrypt", region.as_str(), request.send()).await.map_err(|e| kms_error(e, region))?;
        out.ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| AccessError::Other { code: "NoCiphertext".into(), message: "Encrypt returned no ciphertext".into() })
    }

    async fn decrypt(
        kms: aws_sdk_kms::Client,
        mode: &KeyMode,
        key_arn: &KeyArn,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
    ) -> Result<TenantKey, AccessError> {
        let mut request = kms.decrypt().key_id(key_arn.as_str()).ciphertext_blob(Blob::new(wrapped.to_vec()));
        for (k, v) in wrap_context(tenant, mode) {
            request = request.encryption_context(k, v);
        }
        let out = traced("KMS", "Decrypt", region.as_str(), request.send()).await.map_err(|e| kms_error(e, region))?;
        let plaintext = out.plaintext().map(|b| zeroize::Zeroizing::new(b.as_ref().to_vec()));
        plaintext
            .and_then(|p| TenantKey::from_bytes(&p))
            .ok_or_else(|| AccessError::Corrupt { region: region.clone(), message: "the unwrapped tenant key is not 32 bytes".into() })
    }

    fn key<'b>(binding: &'b TenantBinding, region: &Region) -> Result<&'b KeyArn, AccessError> {
        binding
            .key_for(region)
            .ok_or_else(|| AccessError::Other { code: "NoKeyForRegion".into(), message: format!("the tenant has no key in {region}") })
    }
}

#[async_trait]
impl KeyService for AwsKeyService {
    async fn assume_fresh(&self, binding: &TenantBinding, purpose: Purpose, with_external_id: bool) -> Result<(), AccessError> {
        Self::no_role(binding)?;
        self.assume(binding, purpose, with_external_id).await.map(|_| ())
    }

    async fn assume_fresh_in(
        &self,
        binding: &TenantBinding,
        region: &Region,
        purpose: Purpose,
        with_external_id: bool,
    ) -> Result<(), AccessError> {
        Self::no_role(binding)?;
        self.assume_via(&self.sts_in(region), binding, purpose, with_external_id).await.map(|_| ())
    }

    async fn describe_key(
        &self,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
        purpose: Purpose,
    ) -> Result<KeyStatus, AccessError> {
        let key_ref = Self::key_ref(binding, region, key_ref);
        self.with_kms(binding, region, purpose, |kms| Self::describe(kms, &key_ref, region)).await
    }

    async fn wrap(
        &self,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
        purpose: Purpose,
    ) -> Result<Vec<u8>, AccessError> {
        let key_arn = Self::key(binding, region)?;
        self.with_kms(binding, region, purpose, |kms| Self::encrypt(kms, &binding.mode, key_arn, region, tenant, key)).await
    }

    async fn wrap_in(
        &self,
        session: &crate::RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
    ) -> Result<Vec<u8>, AccessError> {
        let key_arn = Self::key(binding, region)?;
        Self::encrypt(self.kms_in(session, region), &binding.mode, key_arn, region, tenant, key).await
    }

    async fn unwrap(
        &self,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
        purpose: Purpose,
    ) -> Result<TenantKey, AccessError> {
        let key_arn = Self::key(binding, region)?;
        self.with_kms(binding, region, purpose, |kms| Self::decrypt(kms, &binding.mode, key_arn, region, tenant, wrapped)).await
    }

    async fn assume_session(&self, binding: &TenantBinding, purpose: Purpose) -> Result<crate::RoleSession, AccessError> {
        if binding.role().is_none() {
            return Ok(crate::RoleSession::provider());
        }
        Ok(crate::RoleSession { credentials: Some(self.assume(binding, purpose, true).await?.credentials) })
    }

    async fn describe_key_in(
        &self,
        session: &crate::RoleSession,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
    ) -> Result<KeyStatus, AccessError> {
        Self::describe(self.kms_in(session, region), &Self::key_ref(binding, region, key_ref), region).await
    }

    async fn unwrap_in(
        &self,
        session: &crate::RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
    ) -> Result<TenantKey, AccessError> {
        let key_arn = Self::key(binding, region)?;
        Self::decrypt(self.kms_in(session, region), &binding.mode, key_arn, region, tenant, wrapped).await
    }

    fn forget(&self, binding: &TenantBinding) {
        if binding.role().is_none() {
            return;
        }
        self.sessions.lock().remove(&session_key(binding));
    }

    async fn create_provider_key(&self, region: &Region, tenant: &TenantId) -> Result<Option<KeyArn>, AccessError> {
        let description = format!("byok provider-held layer of tenant {tenant}: deleted when the tenant is destroyed");
        self.layer_create(region, tenant, description).await.map(Some)
    }

    async fn create_provider_held_key(&self, region: &Region, tenant: &TenantId) -> Result<Option<KeyArn>, AccessError> {
        let description = format!("byok provider-held key of tenant {tenant}: used until the customer brings their own keys, then deleted");
        self.layer_create(region, tenant, description).await.map(Some)
    }

    async fn provider_seal(&self, key: &KeyArn, tenant: &TenantId, inner: &[u8]) -> Result<Vec<u8>, AccessError> {
        self.layer_seal(key, tenant, inner).await
    }

    async fn provider_open(&self, key: &KeyArn, tenant: &TenantId, outer: &[u8]) -> Result<Vec<u8>, AccessError> {
        self.layer_open(key, tenant, outer).await
    }

    async fn destroy_provider_key(&self, key: &KeyArn) -> Result<OffsetDateTime, AccessError> {
        self.layer_destroy(key).await
    }

    async fn caller_identity(&self) -> Result<String, AccessError> {
        let region = self.sts.config().region().map(|r| r.to_string()).unwrap_or_default();
        let out = traced("STS", "GetCallerIdentity", &region, self.sts.get_caller_identity().send()).await.map_err(|e| {
            let status = status_of(&e);
            match classify(e, status, None) {
                // Whatever STS refuses here is about the provider itself.
                AccessError::Denied { message, .. } => AccessError::Provider { message },
                other => other,
            }
        })?;
        Ok(out.arn().unwrap_or_default().to_string())
    }
}
