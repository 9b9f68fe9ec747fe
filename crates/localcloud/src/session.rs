//! Role-session credentials, sealed into their own session token.
//!
//! Like real STS, the session token carries the session: who assumed which role, until when.
//! It is sealed with AES-256-GCM under the data directory's session secret, and the session's
//! secret access key is derived from that secret and the access key id, so nothing is stored
//! per session, sessions survive a restart, and a tampered token does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::Secret32;
use crate::state::ids;

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub access_key_id: String,
    pub account: String,
    pub role_name: String,
    pub role_path: String,
    pub role_id: String,
    pub session_name: String,
    /// Unix seconds (localcloud's clock) after which the credentials are refused.
    pub expires: i64,
    /// Whether the session was made by a role session (role chaining, capped at one hour).
    pub chained: bool,
}

impl SessionClaims {
    /// The claims of a new session of `role` (the access key id is filled in by [`issue`]).
    pub fn for_role(role: &crate::state::Role, session_name: &str, expires: i64, chained: bool) -> Self {
        Self {
            access_key_id: String::new(),
            account: role.account.clone(),
            role_name: role.name.clone(),
            role_path: role.path.clone(),
            role_id: role.role_id.clone(),
            session_name: session_name.to_string(),
            expires,
            chained,
        }
    }
}

/// Credentials handed out by AssumeRole.
pub struct IssuedSession {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: String,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

const TOKEN_AAD: &[u8] = b"localcloud-session-v1";

fn sealing_key(secret: &Secret32) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, secret.expose()).ok().map(LessSafeKey::new)
}

/// The secret access key of a session access key id.
pub fn derive_secret(secret: &Secret32, access_key_id: &str) -> Zeroizing<String> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.expose()), access_key_id.as_bytes());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&tag.as_ref()[..30]))
}

/// Issues a new session for the claims (the access key id in them is replaced by a fresh one).
pub fn issue(secret: &Secret32, mut claims: SessionClaims) -> Option<IssuedSession> {
    claims.access_key_id = ids::upper("ASIA", 16);
    let key = sealing_key(secret)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).ok()?;
    let mut sealed = serde_json::to_vec(&claims).ok()?;
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(TOKEN_AAD), &mut sealed).ok()?;
    let mut token = nonce.to_vec();
    token.extend_from_slice(&sealed);
    Some(IssuedSession {
        secret_access_key: derive_secret(secret, &claims.access_key_id),
        access_key_id: claims.access_key_id,
        session_token: base64::engine::general_purpose::STANDARD.encode(token),
    })
}

/// Opens a session token; `None` if it was not issued by this localcloud or was altered.
pub fn open(secret: &Secret32, token: &str) -> Option<SessionClaims> {
    let mut bytes = base64::engine::general_purpose::STANDARD.decode(token).ok()?;
    if bytes.len() < NONCE_LEN + 16 {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
    let key = sealing_key(secret)?;
    let plain = key.open_in_place(nonce, Aad::from(TOKEN_AAD), &mut bytes[NONCE_LEN..]).ok()?;
    serde_json::from_slice(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let secret = Secret32::random();
        let claims = SessionClaims {
            access_key_id: String::new(),
            account: "111122223333".into(),
            role_name: "r".into(),
            role_path: "/".into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: "s".into(),
            expires: 10,
            chained: false,
        };
        let issued = issue(&secret, claims.clone()).expect("issue");
        let opened = open(&secret, &issued.session_token).expect("open");
        assert_eq!(opened.access_key_id, issued.access_key_id);
        assert_eq!(*derive_secret(&secret, &opened.access_key_id), *issued.secret_access_key);
        let mut raw = base64::engine::general_purpose::STANDARD.decode(&issued.session_token).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(open(&secret, &base64::engine::general_purpose::STANDARD.encode(raw)).is_none());
        assert!(open(&Secret32::random(), &issued.session_token).is_none());
    }
}
