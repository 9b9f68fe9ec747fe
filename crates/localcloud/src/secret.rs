//! Key material: 32 secret bytes that zeroize on drop and never print.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A 256-bit secret (a KMS key's backing key, the session-sealing key).
#[derive(Clone, Default)]
pub struct Secret32(Zeroizing<[u8; 32]>);

impl Secret32 {
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        // aws-lc's RNG fails only without an OS entropy source; there is no safe fallback.
        while aws_lc_rs::rand::fill(bytes.as_mut()).is_err() {}
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("** redacted **")
    }
}

/// Serialized as base64 into the data directory (an emulator's keys are on its disk by design).
impl Serialize for Secret32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }
}

impl<'de> Deserialize<'de> for Secret32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| serde::de::Error::custom("a secret must be 32 bytes"))?;
        Ok(Self(Zeroizing::new(array)))
    }
}
