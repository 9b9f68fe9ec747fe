//! localcloud's integration tests, in one binary (one link on two cores).
//!
//! - `sigv4_vectors`: the published AWS SigV4 suite against the verifier.
//! - `guide_cli`: the customer guide's procedure (`docs/customer-guide.md`) with the real `aws` CLI.
//! - `boto3`: every operation's success and error paths through boto3 (pytest).
//! - `rust_sdk`: the AWS SDK for Rust, the way the broker uses it.
//! - `trust_policy`: a table of trust-policy evaluation cases.
//! - `auth_errors`, `bad_input`: every way a request can be refused.
//! - `persistence`, `faults`, `clock_and_trail`: state across restarts, injected faults, time.
//! - `fixture`: the bulk setup endpoint benchmarks use.
//! - `tls`: HTTPS for the aws CLI, boto3 and the Rust SDK.

// Test code may fail loudly: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod boto3;
mod cross_account_kms;
mod faults_and_trail;
mod fixture;
mod guide_cli;
mod persistence;
mod policy_property;
mod refusals;
mod rust_sdk;
mod sigv4_vectors;
mod tls;
mod trust_policy;
