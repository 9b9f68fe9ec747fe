//! [`crate::TokenStore`] on SQL: aPI token hashes and their scopes.

use async_trait::async_trait;
use byok_domain::TenantId;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, corrupt, optional_time, time_of};
use crate::{ServiceReach, StoreError, TokenOrigin, TokenRecord, TokenScope, TokenStore, token_id};

pub(super) fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let hash: String = row.try_get("hash")?;
    let scope: String = row.try_get("scope")?;
    let tenant: Option<String> = row.try_get("tenant_id")?;
    let reach: Option<String> = row.try_get("service_tenants")?;
    let scope = match (scope.as_str(), tenant) {
        ("operator", _) => TokenScope::Operator,
        ("service", _) => TokenScope::Service(match reach {
            None => ServiceReach::AllTenants,
            Some(list) => {
                ServiceReach::Tenants(list.split(',').map(|id| id.parse().map_err(|e| corrupt("token", e))).collect::<Result<_, _>>()?)
            }
        }),
        ("tenant", Some(id)) => TokenScope::TenantAdmin(id.parse().map_err(|e| corrupt("token", e))?),
        (other, _) => return Err(corrupt("token", format!("unknown scope '{other}'"))),
    };
    let origin = match row.try_get::<String, _>("origin")?.as_str() {
        "configured" => TokenOrigin::Configured,
        "issued" => TokenOrigin::Issued,
        other => return Err(corrupt("token", format!("unknown origin '{other}'"))),
    };
    Ok(TokenRecord {
        id: token_id(&hash),
        scope,
        origin,
        created_at: time_of(row, "created_at")?,
        expires_at: optional_time(row, "expires_at")?,
        revoked_at: optional_time(row, "revoked_at")?,
    })
}

pub(super) fn origin_name(origin: TokenOrigin) -> &'static str {
    match origin {
        TokenOrigin::Configured => "configured",
        TokenOrigin::Issued => "issued",
    }
}

pub(super) fn scope_parts(scope: &TokenScope) -> (&'static str, Option<String>) {
    match scope {
        TokenScope::Operator => ("operator", None),
        TokenScope::Service(_) => ("service", None),
        TokenScope::TenantAdmin(id) => ("tenant", Some(id.to_string())),
    }
}

/// A service token's tenants as stored (`None`: every tenant; not a service token: `None`).
pub(super) fn service_tenants(scope: &TokenScope) -> Option<String> {
    match scope {
        TokenScope::Service(ServiceReach::Tenants(tenants)) => Some(tenants.iter().map(TenantId::as_str).collect::<Vec<_>>().join(",")),
        TokenScope::Service(ServiceReach::AllTenants) | TokenScope::Operator | TokenScope::TenantAdmin(_) => None,
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn put_token(
        &self,
        hash: &str,
        scope: &TokenScope,
        origin: TokenOrigin,
        at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<TokenRecord, StoreError> {
        let (kind, tenant) = scope_parts(scope);
        sqlx::query(self.sql(
            "INSERT INTO tokens (hash, scope, tenant_id, created_at, expires_at, origin, service_tenants) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(hash)
        .bind(kind)
        .bind(tenant)
        .bind(at.unix_timestamp())
        .bind(expires_at.map(OffsetDateTime::unix_timestamp))
        .bind(origin_name(origin))
        .bind(service_tenants(scope))
        .execute(&self.pool)
        .await?;
        Ok(TokenRecord { id: token_id(hash), scope: scope.clone(), origin, created_at: at, expires_at, revoked_at: None })
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(self.sql("SELECT * FROM tokens WHERE hash = ?")).bind(hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at DESC, hash").fetch_all(&self.pool).await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let pattern = format!("{id}%");
        let done = sqlx::query(self.sql("UPDATE tokens SET revoked_at = ? WHERE hash LIKE ? AND revoked_at IS NULL"))
            .bind(at.unix_timestamp())
            .bind(pattern)
            .execute(&self.pool)
            .await?;
        self.notify_tokens().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_tokens_like(
        &self,
        scope: &TokenScope,
        origin: TokenOrigin,
        keep: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let (kind, tenant) = scope_parts(scope);
        let done = sqlx::query(self.sql(
            "UPDATE tokens SET revoked_at = ? WHERE scope = ? AND COALESCE(tenant_id, '') = ? AND COALESCE(service_tenants, '') = ? \
             AND origin = ? AND hash <> ? AND revoked_at IS NULL",
        ))
        .bind(at.unix_timestamp())
        .bind(kind)
        .bind(tenant.unwrap_or_default())
        .bind(service_tenants(scope).unwrap_or_default())
        .bind(origin_name(origin))
        .bind(keep.unwrap_or_default())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            self.notify_tokens().await?;
        }
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn put_aws_identity(&self, role_arn: &str, reach: &ServiceReach, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO aws_identities (role_arn, service_tenants, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (role_arn) DO UPDATE SET service_tenants = excluded.service_tenants",
        ))
        .bind(role_arn)
        .bind(reach_text(reach))
        .bind(at.unix_timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn aws_identity(&self, role_arn: &str) -> Result<Option<ServiceReach>, StoreError> {
        let row = sqlx::query(self.sql("SELECT service_tenants FROM aws_identities WHERE role_arn = ?"))
            .bind(role_arn)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| reach_of(r.try_get("service_tenants")?)).transpose()
    }

    async fn aws_identities(&self) -> Result<Vec<(String, ServiceReach)>, StoreError> {
        let rows = sqlx::query("SELECT role_arn, service_tenants FROM aws_identities ORDER BY role_arn").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>("role_arn")?, reach_of(r.try_get("service_tenants")?)?))).collect()
    }

    async fn first_use_of_signature(&self, signature: &str, at: OffsetDateTime, forget_before: OffsetDateTime) -> Result<bool, StoreError> {
        sqlx::query(self.sql("DELETE FROM sign_in_signatures WHERE seen_at < ?"))
            .bind(forget_before.unix_timestamp())
            .execute(&self.pool)
            .await?;
        // The primary key decides between racing nodes: exactly one insert takes.
        let taken =
            sqlx::query(self.sql("INSERT INTO sign_in_signatures (signature, seen_at) VALUES (?, ?) ON CONFLICT (signature) DO NOTHING"))
                .bind(signature)
                .bind(at.unix_timestamp())
                .execute(&self.pool)
                .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn remove_aws_identity(&self, role_arn: &str) -> Result<bool, StoreError> {
        let gone = sqlx::query(self.sql("DELETE FROM aws_identities WHERE role_arn = ?")).bind(role_arn).execute(&self.pool).await?;
        Ok(gone.rows_affected() > 0)
    }
}

/// A reach as stored: the tenants comma-separated, `None` for every tenant.
fn reach_text(reach: &ServiceReach) -> Option<String> {
    match reach {
        ServiceReach::AllTenants => None,
        ServiceReach::Tenants(tenants) => Some(tenants.iter().map(TenantId::as_str).collect::<Vec<_>>().join(",")),
    }
}

fn reach_of(stored: Option<String>) -> Result<ServiceReach, StoreError> {
    match stored {
        None => Ok(ServiceReach::AllTenants),
        Some(list) => Ok(ServiceReach::Tenants(
            list.split(',').map(|id| id.parse().map_err(|e| corrupt("aws identity", e))).collect::<Result<_, _>>()?,
        )),
    }
}
