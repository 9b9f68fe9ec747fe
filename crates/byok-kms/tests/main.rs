//! byok-kms against localcloud: the SDK implementation's classification of real answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod against_localcloud;
