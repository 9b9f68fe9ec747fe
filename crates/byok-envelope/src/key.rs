//! The tenant key.

use zeroize::Zeroizing;

/// A tenant's 256-bit key. Zeroized on drop; `Debug` prints nothing of it.
#[derive(Clone)]
pub struct TenantKey(Zeroizing<[u8; 32]>);

impl TenantKey {
    /// A fresh random key from the system RNG (aws-lc). `None` only without an entropy source.
    pub fn generate() -> Option<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut()).ok()?;
        Some(Self(bytes))
    }

    /// A key unwrapped from KMS; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    /// The raw key, to wrap it under KMS. Keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKey(** redacted **)")
    }
}
