//! An in-memory [`KeyService`] for tests whose subject is not KMS (the cache, the store, the
//! HTTP layer). Every region can be set to answer a given error; calls are counted.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use byok_domain::{Region, TenantBinding, TenantId};
use byok_envelope::TenantKey;

use crate::error::AccessError;
use crate::{KeyService, KeyState, KeyStatus, Purpose};

#[derive(Debug, Default)]
pub struct FakeKeyService {
    /// wrapped handle → tenant key bytes.
    wrapped: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    /// A region (or `None` for STS) that answers this error.
    failures: Mutex<HashMap<Option<Region>, AccessError>>,
    pub unwraps: AtomicUsize,
    pub assumes: AtomicUsize,
    /// How long each unwrap takes (tests of timeouts and load).
    delay: Mutex<Option<std::time::Duration>>,
}

impl FakeKeyService {
    /// Makes every call for `region` (`None`: AssumeRole) fail with `error` until cleared.
    pub fn fail(&self, region: Option<Region>, error: Option<AccessError>) {
        let mut f = self.failures.lock();
        match error {
            Some(e) => f.insert(region, e),
            None => f.remove(&region),
        };
    }

    /// Makes every unwrap take `delay` (`None`: no wait).
    pub fn delay(&self, delay: Option<std::time::Duration>) {
        *self.delay.lock() = delay;
    }

    fn check(&self, region: Option<&Region>) -> Result<(), AccessError> {
        let f = self.failures.lock();
        match f.get(&None).or_else(|| region.and_then(|r| f.get(&Some(r.clone())))) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl KeyService for FakeKeyService {
    async fn assume_fresh(&self, _: &TenantBinding, _: Purpose, _: bool) -> Result<(), AccessError> {
        self.assumes.fetch_add(1, Ordering::SeqCst);
        self.check(None)
    }

    async fn describe_key(&self, binding: &TenantBinding, region: &Region, key_ref: &str, _: Purpose) -> Result<KeyStatus, AccessError> {
        self.check(Some(region))?;
        let arn = if key_ref.starts_with("arn:") {
            key_ref.to_string()
        } else {
            format!("arn:aws:kms:{region}:{}:key/fake-{region}", binding.account)
        };
        Ok(KeyStatus { arn, state: KeyState::Enabled, enabled: true })
    }

    async fn wrap(
        &self,
        _: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
        _: Purpose,
    ) -> Result<Vec<u8>, AccessError> {
        self.check(Some(region))?;
        let handle = format!("{tenant}/{region}/{}", self.wrapped.lock().len()).into_bytes();
        self.wrapped.lock().insert(handle.clone(), key.expose().to_vec());
        Ok(handle)
    }

    async fn unwrap(&self, _: &TenantBinding, region: &Region, _: &TenantId, wrapped: &[u8], _: Purpose) -> Result<TenantKey, AccessError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        // Yield, so that concurrent callers really overlap in tests of single flight.
        tokio::task::yield_now().await;
        let delay = *self.delay.lock();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.check(Some(region))?;
        let map = self.wrapped.lock();
        map.get(wrapped)
            .and_then(|k| TenantKey::from_bytes(k))
            .ok_or_else(|| AccessError::Corrupt { region: region.clone(), message: "unknown wrapped key".into() })
    }

    async fn assume_session(&self, binding: &TenantBinding, purpose: Purpose) -> Result<crate::RoleSession, AccessError> {
        if binding.role().is_none() {
            return Ok(crate::RoleSession::provider());
        }
        self.assume_fresh(binding, purpose, true).await?;
        Ok(crate::RoleSession { credentials: Some(aws_credential_types::Credentials::new("FAKE", "fake", None, None, "fake")) })
    }

    async fn describe_key_in(
        &self,
        _: &crate::RoleSession,
        binding: &TenantBinding,
        region: &Region,
        key_ref: &str,
    ) -> Result<KeyStatus, AccessError> {
        self.describe_key(binding, region, key_ref, Purpose::Probe).await
    }

    async fn wrap_in(
        &self,
        _: &crate::RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        key: &TenantKey,
    ) -> Result<Vec<u8>, AccessError> {
        self.wrap(binding, region, tenant, key, Purpose::Probe).await
    }

    async fn unwrap_in(
        &self,
        _: &crate::RoleSession,
        binding: &TenantBinding,
        region: &Region,
        tenant: &TenantId,
        wrapped: &[u8],
    ) -> Result<TenantKey, AccessError> {
        self.unwrap(binding, region, tenant, wrapped, Purpose::Probe).await
    }

    fn forget(&self, _: &TenantBinding) {}

    async fn caller_identity(&self) -> Result<String, AccessError> {
        self.check(None)?;
        Ok("arn:aws:sts::279766244153:assumed-role/Cryptor-OSB-Provider/byok-broker".into())
    }
}
