//! Signatures of AWS sign-ins this node has already taken: the same signed request presented
//! again within its validity is refused (see [`crate::aws_sign_in`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a signed `GetCallerIdentity` is remembered: past this, STS refuses it anyway.
pub(crate) const REMEMBER: Duration = Duration::from_secs(20 * 60);
/// The most signatures kept (a flood of sign-ins evicts the oldest first).
const MAX: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct SignInReplays(Mutex<HashMap<String, Instant>>);

impl SignInReplays {
    /// Records `signature`; false if it was seen within [`REMEMBER`] (a replay).
    pub(crate) fn first_use(&self, signature: &str) -> bool {
        let mut seen = self.0.lock();
        let now = Instant::now();
        if seen.len() >= MAX {
            seen.retain(|_, at| now.duration_since(*at) < REMEMBER);
            if seen.len() >= MAX {
                if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                    seen.remove(&oldest);
                }
            }
        }
        match seen.get(signature) {
            Some(at) if now.duration_since(*at) < REMEMBER => false,
            Some(_) | None => {
                seen.insert(signature.to_string(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_taken_once() {
        let r = SignInReplays::default();
        assert!(r.first_use("abc"));
        assert!(!r.first_use("abc"), "a replay");
        assert!(r.first_use("def"));
    }
}
