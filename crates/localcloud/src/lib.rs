//! localcloud: the customer's AWS account on one machine.
//!
//! An emulator of the parts of IAM, STS and KMS that bring-your-own-key depends on, speaking
//! AWS's own wire protocols so that the `aws` CLI, boto3 and the AWS SDK for Rust work against
//! it unchanged (`--endpoint-url`). It is faithful exactly where BYOK lives: a `Deny` in a trust
//! policy is evaluated, a disabled key refuses to encrypt, a key pending deletion is in
//! `KMSInvalidStateException`, and every request is SigV4-verified.
//!
//! # Layout
//! - [`server`]: the HTTP front on one port; routes by SigV4 scope; injected faults.
//! - [`sigv4`]: request signature verification (and signing, for tests), pure.
//! - [`auth`]: who is calling: root keys and sealed role sessions; each service's auth errors.
//! - [`session`]: role-session credentials sealed into their session token (nothing stored).
//! - [`policy`]: IAM policy documents, for trust policies and key policies.
//! - [`iam`], [`sts`], [`kms`]: the three services' operations.
//! - [`protocol`]: JSON 1.1 and Query wire formats; [`error`]: AWS error codes and statuses.
//! - [`state`]: the model, changed only by journaled [`state::Change`]s; survives restarts.
//! - [`cloud`]: state + clock + trail + faults as one shareable value.
//! - [`trail`]: the CloudTrail-like record of every call; [`faults`]: fault injection.
//! - [`fixture`]: bulk setup of roles and keys for benchmarks (an admin endpoint).
//! - [`admin`]: the `/_localcloud` endpoints; [`admin_client`]: a small HTTP/1 client for them
//!   (also the `byok` CLI's).
//! - [`cli`]: the `localcloud` command (the binary is a thin wrapper).
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_client;
pub mod auth;
pub mod cli;
pub mod cloud;
pub mod error;
pub mod faults;
pub mod fixture;
pub mod iam;
pub mod kms;
pub mod policy;
pub mod protocol;
pub mod secret;
pub mod server;
pub mod session;
pub mod sigv4;
pub mod state;
pub mod sts;
pub mod trail;

pub use cloud::Cloud;
pub use server::{Running, spawn};
