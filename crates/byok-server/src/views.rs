//! From the broker's and the store's values to the API's types ([`byok_api`]): the one place
//! that decides what of a stored row a client sees (never a key, wrapped or not).

use byok_domain::Tenant;
use time::format_description::well_known::Rfc3339;

pub fn tenant(t: &Tenant) -> byok_api::TenantStatus {
    byok_api::TenantStatus {
        id: t.id.to_string(),
        location: t.location.clone(),
        state: t.state,
        account_id: t.binding.account.to_string(),
        role_arn: t.binding.role_arn.to_string(),
        legacy_trust: t.binding.legacy_trust,
        regions: t
            .binding
            .keys
            .iter()
            .map(|k| byok_api::RegionStatus { region: k.region.to_string(), key_arn: k.key_arn.to_string() })
            .collect(),
        keys: t.keys,
        version: t.version,
        created_at: t.created_at.format(&Rfc3339).unwrap_or_default(),
        last_check: None,
    }
}

pub fn ticket(t: byok_store::Ticket) -> byok_api::Ticket {
    byok_api::Ticket {
        id: t.id,
        tenant: t.tenant,
        title: t.title,
        status: t.status,
        reminders_sent: t.reminders_sent,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

pub fn comment(c: byok_store::Comment) -> byok_api::Comment {
    byok_api::Comment { id: c.id, author: c.author, body: c.body, created_at: c.created_at }
}

pub fn audit_entry(e: byok_store::AuditEntry) -> byok_api::AuditEntry {
    byok_api::AuditEntry {
        seq: e.seq,
        tenant: e.tenant,
        at: e.at,
        kind: e.kind,
        reason: e.reason,
        detail: e.detail,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

pub fn alert(a: byok_store::Alert) -> byok_api::Alert {
    byok_api::Alert {
        id: a.id,
        kind: a.kind,
        title: a.title,
        body: a.body,
        status: a.status,
        opened_at: a.opened_at,
        updated_at: a.updated_at,
    }
}

pub fn token(t: byok_store::TokenRecord) -> byok_api::TokenInfo {
    let (kind, tenant, tenants, all_tenants) = match t.scope {
        byok_store::TokenScope::Operator => (byok_api::TokenKind::Operator, None, Vec::new(), false),
        byok_store::TokenScope::Service(byok_store::ServiceReach::AllTenants) => (byok_api::TokenKind::Service, None, Vec::new(), true),
        byok_store::TokenScope::Service(byok_store::ServiceReach::Tenants(ids)) => {
            (byok_api::TokenKind::Service, None, ids.iter().map(ToString::to_string).collect(), false)
        }
        byok_store::TokenScope::TenantAdmin(id) => (byok_api::TokenKind::TenantAdmin, Some(id.to_string()), Vec::new(), false),
    };
    let origin = match t.origin {
        byok_store::TokenOrigin::Configured => "configured",
        byok_store::TokenOrigin::Issued => "issued",
    };
    byok_api::TokenInfo {
        id: t.id,
        kind,
        tenant,
        tenants,
        all_tenants,
        origin: origin.to_string(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
    }
}
