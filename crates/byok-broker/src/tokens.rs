//! API tokens. A token is 32 random bytes, shown once; only its SHA-256 is stored, and
//! configured tokens are compared by hash in constant time.

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

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
