//! API tokens. A token is 32 random bytes, shown once; only its SHA-256 is stored. Tokens have
//! a lifecycle: an id (the first 12 hex digits of the hash), a creation time, an optional
//! expiry, a revocation time. Configured tokens (`--operator-token`, `--service-token`) retire
//! the previously configured one when they change; issued ones are created and revoked through
//! the operator's API.
//!
//! Each node keeps what it read about a token for at most `token_cache_ttl` (5 s), so the data
//! plane does not query the store on every request and a revocation reaches every node within
//! that bound.

use aws_lc_rs::digest;
use byok_store::{TokenOrigin, TokenRecord, TokenScope};
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

/// The prefix of a new token of `scope`.
fn prefix(scope: &TokenScope) -> &'static str {
    scope.token_prefix()
}

/// A newly issued token: its value (shown once) and its record.
pub struct IssuedToken {
    pub token: Zeroizing<String>,
    pub record: TokenRecord,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("token", &"** redacted **").field("record", &self.record).finish()
    }
}

impl Broker {
    /// Registers a configured token (operator or service): recorded if new, and every other
    /// configured token of the same scope is retired.
    pub async fn register_token(&self, token: &str, scope: TokenScope) -> Result<(), BrokerError> {
        let hash = hash(token);
        let now = self.clock.now();
        if self.store.token(&hash).await?.is_none() {
            self.store.put_token(&hash, &scope, TokenOrigin::Configured, now, None).await?;
        }
        let retired = self.store.revoke_tokens_like(&scope, TokenOrigin::Configured, Some(&hash), now).await?;
        if retired > 0 {
            tracing::warn!(retired, "the configured token changed: the previous one no longer works");
        }
        self.forget_tokens();
        Ok(())
    }

    /// Records a token generated for the cluster (see `byok serve`), if not already there. Unlike
    /// [`Self::register_token`] it retires nothing: it is the cluster's one generated token of
    /// its scope, chosen once in the store.
    pub async fn add_generated_token(&self, token: &str, scope: TokenScope) -> Result<(), BrokerError> {
        let hash = hash(token);
        if self.store.token(&hash).await?.is_none() {
            self.store.put_token(&hash, &scope, TokenOrigin::Configured, self.clock.now(), None).await?;
        }
        self.forget_tokens();
        Ok(())
    }

    /// What a bearer token may reach now, if anything.
    pub async fn token_scope(&self, token: &str) -> Result<Option<TokenScope>, BrokerError> {
        let hash = hash(token);
        let fresh = self.token_cache.get(&hash);
        let record = match fresh.clone().filter(|c| c.fresh(self.config.token_cache_ttl)) {
            Some(cached) => Some(cached.record),
            None => {
                let record = match self.store.token(&hash).await {
                    Ok(record) => record,
                    // The store is down: a token this node already knew keeps working (as the
                    // cached keys do), an unknown one cannot be checked.
                    Err(e) if e.is_unavailable() => match fresh {
                        Some(stale) => {
                            let valid = stale.record.valid_at(self.clock.now());
                            return Ok(valid.then_some(stale.record.scope));
                        }
                        None => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                };
                if let Some(found) = &record {
                    self.token_cache.remember(hash, found);
                }
                record
            }
        };
        Ok(record.filter(|r| r.valid_at(self.clock.now())).map(|r| r.scope))
    }

    /// Issues a token of `scope`, valid for `valid_for` (or until revoked). With `replace`,
    /// every other issued token of the same scope (for a tenant admin: of the same tenant) is
    /// revoked at once: how a tenant admin token is reissued.
    pub async fn issue_token(
        &self,
        scope: TokenScope,
        valid_for: Option<time::Duration>,
        replace: bool,
    ) -> Result<IssuedToken, BrokerError> {
        match &scope {
            TokenScope::TenantAdmin(id) => {
                self.tenant(id).await?;
            }
            TokenScope::Service(byok_store::ServiceReach::Tenants(ids)) => {
                for id in ids {
                    self.tenant(id).await?;
                }
            }
            TokenScope::Service(byok_store::ServiceReach::AllTenants) | TokenScope::Operator => {}
        }
        let token = generate(prefix(&scope)).ok_or(BrokerError::Rng)?;
        let hash = hash(&token);
        let now = self.clock.now();
        let record = self.store.put_token(&hash, &scope, TokenOrigin::Issued, now, valid_for.map(|d| now + d)).await?;
        if replace {
            self.store.revoke_tokens_like(&scope, TokenOrigin::Issued, Some(&hash), now).await?;
            self.forget_tokens();
        }
        Ok(IssuedToken { token, record })
    }

    /// Every token (never a value).
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, BrokerError> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes a token by id: it stops working on this node at once, on every node within the
    /// token cache's bound.
    pub async fn revoke_token(&self, id: &str) -> Result<(), BrokerError> {
        if !self.store.revoke_token(id, self.clock.now()).await? {
            return Err(BrokerError::UnknownToken(id.to_string()));
        }
        self.forget_tokens();
        Ok(())
    }

    pub(crate) fn forget_tokens(&self) {
        self.token_cache.forget_all();
    }
}
