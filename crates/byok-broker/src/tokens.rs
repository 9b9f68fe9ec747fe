//! API tokens. A token is 32 random bytes, shown once; only its SHA-256 is stored, and
//! configured tokens are compared by hash in constant time. The broker resolves a bearer token
//! to its scope through a small in-memory map, so the data plane does not query the store on
//! every request.

use aws_lc_rs::digest;
use byok_store::TokenScope;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::broker::Broker;
use crate::error::BrokerError;

/// A new token with a readable prefix (`byok_op_…`, `byok_svc_…`, `byok_tenant_…`).
pub fn generate(prefix: &str) -> Option<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(bytes.as_mut()).ok()?;
    Some(Zeroizing::new(format!("{prefix}_{}", hex::encode(bytes.as_ref()))))
}

/// The hex SHA-256 a token is stored and looked up by.
pub fn hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// Constant-time equality of two token hashes.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Broker {
    /// Registers a configured token (operator or service) if it is not known yet.
    pub async fn register_token(&self, token: &str, scope: TokenScope) -> Result<(), BrokerError> {
        let hash = hash(token);
        if self.store.token_scope(&hash).await?.is_none() {
            self.store.put_token(&hash, &scope).await?;
        }
        Ok(())
    }

    /// What a bearer token may reach, if anything.
    pub async fn token_scope(&self, token: &str) -> Result<Option<TokenScope>, BrokerError> {
        let hash = hash(token);
        if let Some(scope) = self.token_scopes.read().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            return Ok(Some(scope.clone()));
        }
        let scope = self.store.token_scope(&hash).await?;
        if let Some(found) = &scope {
            let mut cache = self.token_scopes.write().unwrap_or_else(|p| p.into_inner());
            // Bounded: unknown tokens are never cached, and known ones are few.
            if cache.len() < 100_000 {
                cache.insert(hash, found.clone());
            }
        }
        Ok(scope)
    }
}
