//! `byok token`: list, create (or reissue), revoke.

use byok_api as api;
use clap::Subcommand;

use super::{rfc3339, status_name};
use crate::client::Client;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Every token (never a value).
    List,
    /// Issue a token; prints its value once.
    Create {
        /// operator, service or tenant_admin.
        #[arg(long)]
        kind: String,
        /// With tenant_admin: whose. With service: a tenant whose data it reaches (repeat it
        /// for several).
        #[arg(long)]
        tenant: Vec<String>,
        /// With service: every tenant's data (asked for explicitly; prefer --tenant).
        #[arg(long)]
        all_tenants: bool,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Revoke the other issued tokens of this kind (and tenant): a reissue.
        #[arg(long)]
        replace: bool,
    },
    /// Revoke a token by id (it stops working on every node within 5 s).
    Revoke { id: String },
}

pub(crate) async fn run(client: Client, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::List => {
            let tokens: Vec<api::TokenInfo> = client.tokens().await?;
            for t in tokens {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {}", rfc3339(at)),
                    (None, Some(at)) => format!("expires {}", rfc3339(at)),
                    (None, None) => "live".to_string(),
                };
                let reach = match (t.tenant, t.all_tenants) {
                    (Some(tenant), _) => tenant,
                    (None, true) => "(all tenants)".to_string(),
                    (None, false) => t.tenants.join(","),
                };
                println!("{} {:<12} {:<10} {:<10} created {} {state}", t.id, status_name(&t.kind), reach, t.origin, rfc3339(t.created_at));
            }
            Ok(())
        }
        TokenCommand::Create { kind, tenant, all_tenants, expires_in_days, replace } => {
            let kind: api::TokenKind = serde_json::from_value(serde_json::Value::String(kind.clone()))
                .map_err(|_| CliError::Config(format!("--kind is operator, service or tenant_admin, not {kind}")))?;
            let (tenant, tenants) = match (kind, tenant.as_slice()) {
                (api::TokenKind::Service, _) => (None, tenant),
                (api::TokenKind::TenantAdmin | api::TokenKind::Operator, []) => (None, Vec::new()),
                (api::TokenKind::TenantAdmin | api::TokenKind::Operator, [one]) => (Some(one.clone()), Vec::new()),
                (api::TokenKind::TenantAdmin | api::TokenKind::Operator, [_, _, ..]) => {
                    return Err(CliError::Config("only a service token takes several --tenant".into()));
                }
            };
            let request = api::NewTokenRequest { kind, tenant, tenants, all_tenants, expires_in_days, replace };
            let issued: api::NewTokenResponse = client.issue_token(&request).await?;
            eprintln!("token {} issued; its value, shown once:", issued.info.id);
            println!("{}", issued.token);
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let answer = client.revoke_token(&id).await?;
            if answer.status != 204 {
                return Err(answer.error());
            }
            println!("token {id} revoked");
            Ok(())
        }
    }
}
