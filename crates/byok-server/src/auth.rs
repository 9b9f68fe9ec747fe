//! Bearer tokens and scopes. An operator token reaches tenant administration, a service
//! token every tenant's data plane, a tenant admin token its own tenant's status only.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use byok_domain::TenantId;
use byok_store::TokenScope;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller's scope, from `Authorization: Bearer …`.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenScope);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = bearer else {
            // No token: under mutual TLS, the client certificate's mapped service identity.
            let name = parts.extensions.get::<crate::tls::ClientCertificate>().and_then(|c| c.common_name.clone());
            let reach = name.as_ref().and_then(|n| state.client_identities.get(n));
            return match (name, reach) {
                (Some(name), Some(reach)) => {
                    if let Err(refused) = state.limits.admit(&format!("certificate:{name}")) {
                        return Err(state.limits.refuse(refused).await);
                    }
                    Ok(Caller(TokenScope::Service(reach.clone())))
                }
                _ => Err(ApiError::Unauthorized),
            };
        };
        match state.broker.token_scope(token).await? {
            Some(scope) => {
                // Each token its own rate (a token is the identity), by its hash: no token's
                // value is kept in memory for it.
                if state.limits.per_identity().is_some()
                    && let Err(refused) = state.limits.admit(&byok_broker::tokens::hash(token))
                {
                    return Err(state.limits.refuse(refused).await);
                }
                Ok(Caller(scope))
            }
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// A caller that must be the operator, judged from the headers alone: a route taking a body
/// names it before the body, so that anyone else gets 403 before the body is parsed (never a
/// 400 that describes an operator route's schema).
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::from_request_parts(parts, state).await?.operator()?;
        Ok(Operator)
    }
}

impl Caller {
    pub fn operator(&self) -> Result<(), ApiError> {
        match self.0 {
            TokenScope::Operator => Ok(()),
            TokenScope::Service(_) | TokenScope::TenantAdmin(_) => Err(ApiError::Forbidden),
        }
    }

    /// A service token that reaches this tenant's data (every tenant, or a list naming it).
    pub fn service_for(&self, tenant: &TenantId) -> Result<(), ApiError> {
        match &self.0 {
            TokenScope::Service(reach) if reach.reaches(tenant) => Ok(()),
            TokenScope::Service(_) | TokenScope::Operator | TokenScope::TenantAdmin(_) => Err(ApiError::Forbidden),
        }
    }

    /// The operator, or the admin of this very tenant.
    pub fn tenant_admin(&self, tenant: &TenantId) -> Result<(), ApiError> {
        match &self.0 {
            TokenScope::Operator => Ok(()),
            TokenScope::TenantAdmin(own) if own == tenant => Ok(()),
            // Another tenant's admin learns nothing, not even whether the tenant exists.
            TokenScope::TenantAdmin(_) => Err(ApiError::NotFound(format!("no tenant '{tenant}'"))),
            TokenScope::Service(_) => Err(ApiError::Forbidden),
        }
    }
}
