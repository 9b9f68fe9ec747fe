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

/// Compares in constant time: every byte is looked at whatever the first difference (a key that
/// came back from KMS is compared with the one sent).
impl PartialEq for TenantKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for TenantKey {}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKey(** redacted **)")
    }
}

#[cfg(test)]
mod tests {
    use super::TenantKey;

    #[test]
    fn keys_compare_by_value() {
        let a = TenantKey::generate().expect("key");
        assert_eq!(a, TenantKey::from_bytes(a.expose()).expect("same bytes"));
        let mut other = *a.expose();
        other[31] ^= 1;
        assert_ne!(a, TenantKey::from_bytes(&other).expect("one bit off"));
    }
}
