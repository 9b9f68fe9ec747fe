//! byok's record format: each tenant's records sealed with AES-256-GCM under subkeys derived
//! from the tenant key, which itself only ever exists wrapped by the customer's KMS keys or
//! in memory, zeroized on drop.
//!
//! # Layout
//! - [`TenantKey`]: the 256-bit tenant key (zeroizing, redacted).
//! - [`RecordSealer`]: seals and opens records for one tenant key; caches derived subkeys.
//! - [`Plaintext`]: an opened record, wiped on drop with one `memset` + barrier ([`wipe`]).
//! - this page: the format.
//!
//! # Format, version 1
//!
//! ```text
//! offset  size  field
//! 0       1     version = 0x01
//! 1       4     tenant key generation, u32 big-endian
//! 5       16    salt: picks the subkey = HKDF-SHA256(salt, tenant key, "byok record key v1" | tenant id)
//! 21      12    nonce = 4 random bytes fixed per subkey | 8-byte big-endian counter
//! 33      n     AES-256-GCM ciphertext
//! 33+n    16    GCM tag
//!
//! AAD = "byok-record" 0x00 | u16 len | tenant id | u32 len | record context | bytes 0..33
//! ```
//!
//! Why: a tenant key must carry far more than GCM's 2^32 random-nonce budget (the product
//! promises no nonce-reuse risk below 2^40 records per tenant key). Each broker node derives a
//! fresh subkey from a random 128-bit salt the first time it writes with a tenant key, then
//! numbers its records with a counter, so nonces under one subkey never repeat; after 2^32
//! records it draws a new salt. Reuse would need two 128-bit salts *and* two 32-bit prefixes
//! to collide. The steady-state cost per record is the AEAD plus a counter increment; opening
//! derives each salt's subkey once and caches it.
//!
//! The AAD binds the tenant, the caller's record context (its record id) and the header, so a
//! record moved to another tenant or record, truncated, or altered in any byte fails to open.
#![forbid(unsafe_code)]

mod key;
mod plaintext;
mod sealer;

pub use key::TenantKey;
pub use plaintext::{Plaintext, wipe};
pub use sealer::{EnvelopeError, HEADER_LEN, OVERHEAD, RecordSealer, VERSION, generation_of};
