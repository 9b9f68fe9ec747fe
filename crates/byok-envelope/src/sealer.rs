//! Sealing and opening records under one tenant key.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

use crate::{Plaintext, TenantKey};

pub const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 1 + 4 + SALT_LEN + NONCE_LEN;
/// Bytes a sealed record adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Records sealed under one subkey before a new salt is drawn.
const RECORDS_PER_SUBKEY: u64 = 1 << 32;
/// Subkeys kept for opening; past this the cache starts over (they are cheap to re-derive).
const MAX_CACHED_SUBKEYS: usize = 4096;
/// The AAD's first bytes: what the rest of it is.
const AAD_LABEL: &[u8] = b"byok-record\0";

/// Why a record could not be opened. Deliberately vague about *which* byte was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a byok record: {0} bytes is shorter than the {OVERHEAD}-byte minimum")]
    Truncated(usize),
    #[error("record format version {0} is not supported (this build reads version {VERSION})")]
    UnknownVersion(u8),
    #[error("record was sealed under tenant key generation {found}, this key is generation {expected}")]
    WrongKeyGeneration { found: u32, expected: u32 },
    #[error("record does not authenticate: it was altered, truncated, or belongs to another tenant or record")]
    Forged,
    #[error("the system random number generator failed")]
    Rng,
}

/// The subkey a node writes with: its salt, a fixed nonce prefix, and a record counter.
struct WriterKey {
    salt: [u8; SALT_LEN],
    prefix: [u8; 4],
    counter: AtomicU64,
    aead: Arc<LessSafeKey>,
}

/// Seals and opens records for one tenant key. Share it (`Arc`) across threads: sealing
/// takes a read lock and an atomic increment; subkeys are derived once per salt.
pub struct RecordSealer {
    key: TenantKey,
    generation: u32,
    tenant: Vec<u8>,
    writer: RwLock<Arc<WriterKey>>,
    readers: RwLock<HashMap<[u8; SALT_LEN], Arc<LessSafeKey>>>,
}

impl std::fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSealer")
            .field("tenant", &String::from_utf8_lossy(&self.tenant))
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The tenant key generation a record was sealed under, read from its header (not yet
/// authenticated: the open that follows checks it, as the header is part of the AAD).
pub fn generation_of(record: &[u8]) -> Result<u32, EnvelopeError> {
    if record.len() < OVERHEAD {
        return Err(EnvelopeError::Truncated(record.len()));
    }
    if record[0] != VERSION {
        return Err(EnvelopeError::UnknownVersion(record[0]));
    }
    Ok(u32::from_be_bytes([record[1], record[2], record[3], record[4]]))
}

fn random<const N: usize>() -> Result<[u8; N], EnvelopeError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| EnvelopeError::Rng)?;
    Ok(b)
}

impl RecordSealer {
    /// A sealer for `tenant`'s key of the given generation.
    pub fn new(tenant: &str, key: TenantKey, generation: u32) -> Result<Self, EnvelopeError> {
        let tenant = tenant.as_bytes().to_vec();
        let writer = Self::new_writer(&key, &tenant)?;
        let mut readers = HashMap::new();
        readers.insert(writer.salt, writer.aead.clone());
        Ok(Self { key, generation, tenant, writer: RwLock::new(Arc::new(writer)), readers: RwLock::new(readers) })
    }

    fn derive(key: &TenantKey, tenant: &[u8], salt: &[u8; SALT_LEN]) -> Result<LessSafeKey, EnvelopeError> {
        let info: [&[u8]; 2] = [b"byok record key v1", tenant];
        let prk = Salt::new(HKDF_SHA256, salt).extract(key.expose());
        let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| EnvelopeError::Rng)?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }

    fn new_writer(key: &TenantKey, tenant: &[u8]) -> Result<WriterKey, EnvelopeError> {
        let salt = random::<SALT_LEN>()?;
        Ok(WriterKey { salt, prefix: random::<4>()?, counter: AtomicU64::new(0), aead: Arc::new(Self::derive(key, tenant, &salt)?) })
    }

    /// Calls `f` with the record's AAD, built on the stack when it fits (the common case:
    /// short tenant ids and record contexts), so a record costs no allocation for it.
    fn with_aad<R>(&self, context: &[u8], header: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
        const STACK_AAD: usize = 256;
        let len = AAD_LABEL.len() + 2 + self.tenant.len() + 4 + context.len() + header.len();
        if len <= STACK_AAD {
            let mut buf = [0u8; STACK_AAD];
            self.write_aad(context, header, &mut buf[..len]);
            f(&buf[..len])
        } else {
            let mut buf = vec![0u8; len];
            self.write_aad(context, header, &mut buf);
            f(&buf)
        }
    }

    /// Writes the AAD into `out`, which is exactly its length.
    fn write_aad(&self, context: &[u8], header: &[u8], out: &mut [u8]) {
        let parts: [&[u8]; 6] =
            [AAD_LABEL, &(self.tenant.len() as u16).to_be_bytes(), &self.tenant, &(context.len() as u32).to_be_bytes(), context, header];
        let mut at = 0;
        for part in parts {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }

    /// The writer subkey and the next counter value, rotating the salt when one is used up.
    fn next_nonce(&self) -> Result<(Arc<WriterKey>, u64), EnvelopeError> {
        loop {
            let writer = self.writer.read().clone();
            let n = writer.counter.fetch_add(1, Ordering::Relaxed);
            if n < RECORDS_PER_SUBKEY {
                return Ok((writer, n));
            }
            let mut slot = self.writer.write();
            if Arc::ptr_eq(&slot, &writer) {
                let fresh = Self::new_writer(&self.key, &self.tenant)?;
                self.readers.write().insert(fresh.salt, fresh.aead.clone());
                *slot = Arc::new(fresh);
            }
        }
    }

    /// Seals `plaintext`, bound to this tenant and to `context` (the caller's record id).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let (writer, counter) = self.next_nonce()?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&writer.salt);
        out.extend_from_slice(&writer.prefix);
        out.extend_from_slice(&counter.to_be_bytes());
        let nonce: [u8; NONCE_LEN] = out[1 + 4 + SALT_LEN..HEADER_LEN].try_into().map_err(|_| EnvelopeError::Rng)?;
        out.extend_from_slice(plaintext);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = self
            .with_aad(context, header, |aad| {
                writer.aead.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
            })
            .map_err(|_| EnvelopeError::Rng)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a record sealed by [`seal`](Self::seal) for this tenant with the same `context`.
    pub fn open(&self, context: &[u8], record: &[u8]) -> Result<Plaintext, EnvelopeError> {
        let generation = generation_of(record)?;
        if generation != self.generation {
            return Err(EnvelopeError::WrongKeyGeneration { found: generation, expected: self.generation });
        }
        let salt: [u8; SALT_LEN] = record[5..5 + SALT_LEN].try_into().map_err(|_| EnvelopeError::Forged)?;
        let nonce: [u8; NONCE_LEN] = record[5 + SALT_LEN..HEADER_LEN].try_into().map_err(|_| EnvelopeError::Forged)?;
        let aead = self.reader(&salt)?;
        // Wrapped before decrypting, so a failed open (which may leave partial plaintext
        // in the buffer) wipes it too.
        let mut buf = Plaintext::new(record[HEADER_LEN..].to_vec());
        let len = self
            .with_aad(context, &record[..HEADER_LEN], |aad| {
                aead.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf.as_mut_vec()).map(|p| p.len())
            })
            .map_err(|_| EnvelopeError::Forged)?;
        buf.as_mut_vec().truncate(len);
        Ok(buf)
    }

    fn reader(&self, salt: &[u8; SALT_LEN]) -> Result<Arc<LessSafeKey>, EnvelopeError> {
        if let Some(k) = self.readers.read().get(salt) {
            return Ok(k.clone());
        }
        let derived = Arc::new(Self::derive(&self.key, &self.tenant, salt)?);
        let mut readers = self.readers.write();
        if readers.len() >= MAX_CACHED_SUBKEYS {
            readers.clear();
        }
        readers.insert(*salt, derived.clone());
        Ok(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(tenant: &str, key: &TenantKey) -> RecordSealer {
        RecordSealer::new(tenant, key.clone(), 1).expect("sealer")
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let key = TenantKey::generate().expect("key");
        let a = sealer("tenant-a", &key);
        let record = a.seal(b"record-1", b"hello").expect("seal");
        assert_eq!(record.len(), 5 + OVERHEAD);
        assert_eq!(a.open(b"record-1", &record).expect("open").as_slice(), b"hello");
        // Another node (another sealer, another salt) with the same key opens it too.
        let a2 = sealer("tenant-a", &key);
        assert_eq!(a2.open(b"record-1", &record).expect("open").as_slice(), b"hello");
        assert_ne!(a2.seal(b"r", b"x").expect("seal")[5..21], record[5..21], "each node draws its own salt");

        assert_eq!(a.open(b"record-2", &record), Err(EnvelopeError::Forged), "another record");
        assert_eq!(sealer("tenant-b", &key).open(b"record-1", &record), Err(EnvelopeError::Forged), "another tenant, same key");
        assert_eq!(
            sealer("tenant-a", &TenantKey::generate().expect("k")).open(b"record-1", &record),
            Err(EnvelopeError::Forged),
            "another key"
        );
        for i in 0..record.len() {
            let mut t = record.clone();
            t[i] ^= 0x01;
            assert!(a.open(b"record-1", &t).is_err(), "byte {i} altered went unnoticed");
        }
        assert_eq!(a.open(b"record-1", &record[..record.len() - 1]), Err(EnvelopeError::Forged));
        assert_eq!(a.open(b"record-1", &record[..10]), Err(EnvelopeError::Truncated(10)));
        let mut v2 = record.clone();
        v2[0] = 2;
        assert_eq!(a.open(b"record-1", &v2), Err(EnvelopeError::UnknownVersion(2)));
        let next_generation = RecordSealer::new("tenant-a", key.clone(), 2).expect("sealer");
        assert_eq!(next_generation.open(b"record-1", &record), Err(EnvelopeError::WrongKeyGeneration { found: 1, expected: 2 }));
    }

    /// The AAD is exactly the documented layout, whether built on the stack or on the heap:
    /// records open with the subkey and an AAD assembled here by hand from the format page.
    #[test]
    fn aad_matches_the_documented_format_for_short_and_long_contexts() {
        let key = TenantKey::generate().expect("key");
        let a = sealer("tenant-a", &key);
        for context in [b"record-1".to_vec(), vec![b'c'; 1000]] {
            let mut record = a.seal(&context, b"payload").expect("seal");
            let salt: [u8; SALT_LEN] = record[5..5 + SALT_LEN].try_into().expect("salt");
            let nonce: [u8; NONCE_LEN] = record[5 + SALT_LEN..HEADER_LEN].try_into().expect("nonce");
            let mut aad = b"byok-record\0".to_vec();
            aad.extend_from_slice(&8u16.to_be_bytes());
            aad.extend_from_slice(b"tenant-a");
            aad.extend_from_slice(&(context.len() as u32).to_be_bytes());
            aad.extend_from_slice(&context);
            aad.extend_from_slice(&record[..HEADER_LEN]);
            let subkey = RecordSealer::derive(&key, b"tenant-a", &salt).expect("derive");
            let opened = subkey
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_slice()), &mut record[HEADER_LEN..])
                .expect("opens with the documented AAD");
            assert_eq!(opened, b"payload");
        }
    }

    #[test]
    fn nonces_count_up_and_never_repeat() {
        let a = sealer("t", &TenantKey::generate().expect("key"));
        let nonces: std::collections::HashSet<Vec<u8>> =
            (0..1000).map(|_| a.seal(b"", b"").expect("seal")[5..HEADER_LEN].to_vec()).collect();
        assert_eq!(nonces.len(), 1000);
    }

    #[test]
    fn a_used_up_subkey_rotates_to_a_new_salt() {
        let a = sealer("t", &TenantKey::generate().expect("key"));
        let first = a.seal(b"c", b"x").expect("seal");
        a.writer.read().counter.store(RECORDS_PER_SUBKEY, Ordering::Relaxed);
        let second = a.seal(b"c", b"y").expect("seal");
        assert_ne!(first[5..21], second[5..21], "new salt");
        assert_eq!(&second[25..33], &0u64.to_be_bytes(), "counter restarts under the new subkey");
        assert_eq!(a.open(b"c", &first).expect("old still opens").as_slice(), b"x");
        assert_eq!(a.open(b"c", &second).expect("new opens").as_slice(), b"y");
    }

    #[test]
    fn keys_do_not_print() {
        let key = TenantKey::generate().expect("key");
        assert_eq!(format!("{key:?}"), "TenantKey(** redacted **)");
        assert!(!format!("{:?}", sealer("t", &key)).contains(&format!("{:?}", key.expose())));
    }
}
