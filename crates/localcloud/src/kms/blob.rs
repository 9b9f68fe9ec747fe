//! localcloud's KMS ciphertext blob: self-describing, bound to its key and encryption context.
//!
//! ```text
//! "LC" 0x01 | arn_len: u8 | key ARN | nonce: 12 | AES-256-GCM(plaintext) | tag: 16
//! AAD = "localcloud-kms-v1" 0x00 | key ARN | encryption context, canonical
//! ```
//!
//! The key ARN travels in the blob so that Decrypt needs no KeyId (as on AWS, cross-account
//! included). The encryption context is encoded without ambiguity: pairs sorted by key, each
//! key and value length-prefixed, so `{"a":"bc"}` and `{"ab":"c"}` never collide.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::secret::Secret32;

const MAGIC: &[u8; 3] = b"LC\x01";
const TAG_LEN: usize = 16;

/// A blob split into its parts (not yet authenticated).
#[derive(Debug)]
pub struct Parsed<'a> {
    pub key_arn: &'a str,
    nonce: [u8; NONCE_LEN],
    sealed: &'a [u8],
}

pub fn parse(blob: &[u8]) -> Option<Parsed<'_>> {
    let rest = blob.strip_prefix(MAGIC)?;
    let (&arn_len, rest) = rest.split_first()?;
    let arn_len = arn_len as usize;
    if rest.len() < arn_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let key_arn = std::str::from_utf8(&rest[..arn_len]).ok()?;
    let nonce = rest[arn_len..arn_len + NONCE_LEN].try_into().ok()?;
    Some(Parsed { key_arn, nonce, sealed: &rest[arn_len + NONCE_LEN..] })
}

fn aad(key_arn: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + key_arn.len());
    out.extend_from_slice(b"localcloud-kms-v1\0");
    out.extend_from_slice(key_arn.as_bytes());
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn cipher(material: &Secret32) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, material.expose()).ok().map(LessSafeKey::new)
}

/// Seals `plaintext` under the key; `None` only if the system RNG fails.
pub fn seal(material: &Secret32, key_arn: &str, context: &BTreeMap<String, String>, plaintext: &[u8]) -> Option<Vec<u8>> {
    let arn_len = u8::try_from(key_arn.len()).ok()?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).ok()?;
    let mut out = Vec::with_capacity(MAGIC.len() + 1 + key_arn.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(arn_len);
    out.extend_from_slice(key_arn.as_bytes());
    out.extend_from_slice(&nonce);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    let tag = cipher(material)?
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(key_arn, context)), &mut out[body_start..])
        .ok()?;
    out.extend_from_slice(tag.as_ref());
    Some(out)
}

/// Opens a parsed blob; `None` if it was altered or the context differs.
pub fn open(material: &Secret32, parsed: &Parsed<'_>, context: &BTreeMap<String, String>) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let mut buf = zeroize::Zeroizing::new(parsed.sealed.to_vec());
    let len = cipher(material)?
        .open_in_place(Nonce::assume_unique_for_key(parsed.nonce), Aad::from(aad(parsed.key_arn, context)), buf.as_mut_slice())
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_context_and_detects_tampering() {
        let key = Secret32::random();
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/k";
        let ctx: BTreeMap<String, String> = [("a".to_string(), "bc".to_string())].into();
        let blob = seal(&key, arn, &ctx, b"secret").expect("seal");
        let parsed = parse(&blob).expect("parse");
        assert_eq!(parsed.key_arn, arn);
        assert_eq!(open(&key, &parsed, &ctx).expect("open").as_slice(), b"secret");
        let other: BTreeMap<String, String> = [("ab".to_string(), "c".to_string())].into();
        assert!(open(&key, &parsed, &other).is_none());
        assert!(open(&Secret32::random(), &parsed, &ctx).is_none());
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x40;
            let ok = parse(&t).and_then(|p| (p.key_arn == arn).then(|| open(&key, &p, &ctx)).flatten());
            assert!(ok.is_none(), "flipping byte {i} went unnoticed");
        }
        assert!(parse(&blob[..blob.len() - 20]).is_none() || open(&key, &parse(&blob[..blob.len() - 20]).expect("p"), &ctx).is_none());
    }
}
