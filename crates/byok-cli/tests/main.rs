//! `byok serve` as a new user meets it: the broker with its embedded localcloud, the customer
//! running the printed setup script with the real `aws` CLI, then the data plane over HTTP
//! and in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adoption;
mod api_fuzz;
mod audit_checkpoint;
mod audit_export;
mod audit_sink;
mod aws_sign_in;
mod browser;
mod cluster;
mod cmk;
mod config;
mod crash;
mod demo;
mod doctor;
mod email;
mod logs;
mod migrate;
mod never_fooled;
mod onboarding;
mod real_aws;
mod revocation;
mod rotation;
mod support;
mod tls;
mod traces;
mod webhooks;
