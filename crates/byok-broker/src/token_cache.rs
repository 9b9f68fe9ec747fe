//! What this node read about tokens, and when: the bounded cache in front of the store that
//! keeps the data plane off the store on every request (see [`crate::tokens`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use byok_store::TokenRecord;
use parking_lot::RwLock;

/// Tokens known is bounded: unknown tokens are never cached, and known ones are few.
const MAX_TOKENS: usize = 100_000;

/// What this node read about one token, and when.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) record: TokenRecord,
    pub(crate) read_at: Instant,
}

impl CachedToken {
    /// Whether it was read within `ttl`.
    pub(crate) fn fresh(&self, ttl: Duration) -> bool {
        self.read_at.elapsed() < ttl
    }
}

/// Token hash → what this node read about it.
#[derive(Debug, Default)]
pub(crate) struct TokenCache(RwLock<HashMap<String, CachedToken>>);

impl TokenCache {
    pub(crate) fn get(&self, hash: &str) -> Option<CachedToken> {
        self.0.read().get(hash).cloned()
    }

    /// Remembers a token the store knows (while there is room).
    pub(crate) fn remember(&self, hash: String, record: &TokenRecord) {
        let mut map = self.0.write();
        if map.len() < MAX_TOKENS || map.contains_key(&hash) {
            map.insert(hash, CachedToken { record: record.clone(), read_at: Instant::now() });
        }
    }

    /// Forgets every token (one was revoked somewhere).
    pub(crate) fn forget_all(&self) {
        self.0.write().clear();
    }
}
