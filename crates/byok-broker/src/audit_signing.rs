//! Keyed checkpoints of the audit chain: the operator's Ed25519 key signs a chain position
//! (an entry's sequence number and hash, for one tenant, at a time), and the signed checkpoint
//! goes to the tenant with each event it is told of. The hash chain alone can be recomputed by
//! anyone who can write to the database; a checkpoint the customer holds cannot: a later
//! rewrite of their history gives that entry another hash, which the checkpoint contradicts
//! (`byok audit verify --checkpoint FILE`). No I/O here: the key's bytes come from the caller.

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// What a checkpoint's signature covers, as one line per field.
pub const DOMAIN: &str = "byok-audit-checkpoint/v1";

/// A signed chain position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The tenant it was issued to.
    pub tenant: String,
    /// The entry's sequence number and hash.
    pub seq: i64,
    pub hash: String,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// The first 16 bytes of SHA-256 of the public key, in hex: which operator key signed.
    pub key_id: String,
    /// The Ed25519 public key, base64.
    pub public_key: String,
    /// The Ed25519 signature of [`Checkpoint::message`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: the domain, then each field on its own line.
    pub fn message(tenant: &str, seq: i64, hash: &str, signed_at: &str) -> String {
        format!("{DOMAIN}\n{tenant}\n{seq}\n{hash}\n{signed_at}")
    }

    /// Whether the signature is the named key's over these fields.
    pub fn verify(&self) -> Result<(), CheckpointError> {
        let public = STANDARD.decode(&self.public_key).map_err(|_| CheckpointError::Malformed("public_key is not base64"))?;
        if key_id(&public) != self.key_id {
            return Err(CheckpointError::Malformed("key_id does not name public_key"));
        }
        let sig = STANDARD.decode(&self.signature).map_err(|_| CheckpointError::Malformed("signature is not base64"))?;
        let message = Self::message(&self.tenant, self.seq, &self.hash, &self.signed_at);
        signature::UnparsedPublicKey::new(&signature::ED25519, &public)
            .verify(message.as_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is malformed: {0}")]
    Malformed(&'static str),
    #[error("the checkpoint's signature does not verify: it was altered, or not signed by that key")]
    BadSignature,
}

/// Why a signing key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    #[error("the audit signing key is not an Ed25519 key in PKCS#8")]
    NotEd25519,
    #[error("the system random number generator failed")]
    Random,
}

fn key_id(public: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
    hex::encode(&digest.as_ref()[..16])
}

/// The operator's signing key.
pub struct AuditSigner {
    key: Ed25519KeyPair,
    key_id: String,
    public_key: String,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// A fresh key, as PKCS#8 bytes to keep (mode 0600).
    pub fn generate() -> Result<zeroize::Zeroizing<Vec<u8>>, SigningKeyError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).map_err(|_| SigningKeyError::Random)?;
        Ok(zeroize::Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The key in these PKCS#8 bytes.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SigningKeyError> {
        let key = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SigningKeyError::NotEd25519)?;
        let public = key.public_key().as_ref().to_vec();
        Ok(Self { key_id: key_id(&public), public_key: STANDARD.encode(&public), key })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `tenant`'s chain position (`seq`, `hash`) now.
    pub fn sign(&self, tenant: &str, seq: i64, hash: &str, now: time::OffsetDateTime) -> Checkpoint {
        let signed_at = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let message = Checkpoint::message(tenant, seq, hash, &signed_at);
        let signature = STANDARD.encode(self.key.sign(message.as_bytes()).as_ref());
        Checkpoint {
            tenant: tenant.to_string(),
            seq,
            hash: hash.to_string(),
            signed_at,
            key_id: self.key_id.clone(),
            public_key: self.public_key.clone(),
            signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_and_any_change_to_it_does_not() {
        let signer = AuditSigner::from_pkcs8(&AuditSigner::generate().expect("key")).expect("signer");
        let at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        let cp = signer.sign("acme", 42, &"ab".repeat(32), at);
        cp.verify().expect("verifies");
        assert_eq!(cp.key_id, signer.key_id());
        for tampered in [
            Checkpoint { seq: 43, ..cp.clone() },
            Checkpoint { hash: "cd".repeat(32), ..cp.clone() },
            Checkpoint { tenant: "globex".into(), ..cp.clone() },
            Checkpoint { signed_at: "2030-01-01T00:00:00Z".into(), ..cp.clone() },
        ] {
            assert_eq!(tampered.verify(), Err(CheckpointError::BadSignature), "{tampered:?}");
        }
        let other = AuditSigner::from_pkcs8(&AuditSigner::generate().expect("key")).expect("signer");
        let forged = Checkpoint { public_key: other.sign("acme", 42, &cp.hash, at).public_key, ..cp.clone() };
        assert!(matches!(forged.verify(), Err(CheckpointError::Malformed(_))), "another key under this key id");
        assert_eq!(AuditSigner::from_pkcs8(b"not a key").err(), Some(SigningKeyError::NotEd25519));
    }
}
