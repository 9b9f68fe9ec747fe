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
        mode: mode_name(&t.binding.mode),
        context_tag: t.binding.mode.context_tag().map(ToString::to_string),
        role_arn: t.binding.role().map(|(role, _)| role.to_string()),
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

pub fn mode_name(mode: &byok_domain::KeyMode) -> byok_api::KeyModeName {
    match mode {
        byok_domain::KeyMode::Byok => byok_api::KeyModeName::Byok,
        byok_domain::KeyMode::Cmk { .. } => byok_api::KeyModeName::Cmk,
        byok_domain::KeyMode::Provider => byok_api::KeyModeName::Provider,
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

pub fn denial(d: byok_domain::Denial) -> byok_api::DenialKind {
    use byok_api::DenialKind as Api;
    use byok_domain::Denial;
    match d {
        Denial::TrustPolicy => Api::TrustPolicy,
        Denial::KeyDisabled => Api::KeyDisabled,
        Denial::KeyPendingDeletion => Api::KeyPendingDeletion,
        Denial::KeyNotFound => Api::KeyNotFound,
        Denial::KeyPolicy => Api::KeyPolicy,
        Denial::IncorrectKey => Api::IncorrectKey,
    }
}

pub fn region_access(a: &byok_domain::RegionAccess) -> byok_api::RegionAccess {
    match a {
        byok_domain::RegionAccess::Ok => byok_api::RegionAccess::Ok,
        byok_domain::RegionAccess::Denied { denial: d, message } => {
            byok_api::RegionAccess::Denied { denial: denial(*d), message: message.clone() }
        }
        byok_domain::RegionAccess::Unknown { message } => byok_api::RegionAccess::Unknown { message: message.clone() },
    }
}

pub fn region_result(r: &byok_domain::RegionResult) -> byok_api::RegionResult {
    byok_api::RegionResult {
        region: r.region.to_string(),
        access: region_access(&r.access),
        remedy: r.remedy.clone(),
        latency_ms: r.latency_ms,
    }
}

pub fn last_check(c: byok_broker::LastCheck) -> byok_api::LastCheck {
    byok_api::LastCheck { at: c.at, purpose: c.purpose.session_name().to_string(), regions: c.regions.iter().map(region_result).collect() }
}

pub fn restoration(r: &byok_broker::Restoration) -> byok_api::Restoration {
    byok_api::Restoration {
        tenant: r.tenant.to_string(),
        restored: r.restored,
        regions: r.regions.iter().map(region_result).collect(),
        missing: r.missing.clone(),
        already_active: r.already_active,
    }
}

pub fn verification(v: &byok_broker::Verification) -> byok_api::Verification {
    byok_api::Verification {
        tenant: v.tenant.to_string(),
        ok: v.ok,
        trust_ok: v.trust_ok,
        trust_problem: v.trust_problem.clone(),
        warnings: v.warnings.clone(),
        regions: v
            .regions
            .iter()
            .map(|r| byok_api::RegionCheck {
                region: r.region.to_string(),
                ok: r.ok,
                key_arn: r.key_arn.clone(),
                problem: r.problem.clone(),
            })
            .collect(),
    }
}

pub fn instructions(i: byok_broker::Instructions) -> byok_api::Instructions {
    byok_api::Instructions {
        tenant: i.tenant.to_string(),
        account_id: i.account_id,
        mode: mode_name(&i.mode),
        context_tag: i.mode.context_tag().map(ToString::to_string),
        provider_principal: i.provider_principal,
        role_name: i.role_name,
        role_arn: i.role_arn,
        external_id: i.external_id,
        alias: i.alias,
        regions: i.regions.iter().map(ToString::to_string).collect(),
        trust_policy: i.trust_policy,
        key_policy: i.key_policy,
        commands: i.commands,
        cloudformation: i.cloudformation,
        terraform: i.terraform,
    }
}

/// A held revocation; its detail is what each region answered, as the API shows a region.
pub fn held_revocation(h: byok_broker::HeldRevocation) -> byok_api::HeldRevocation {
    let detail: Vec<serde_json::Value> =
        h.regions.iter().map(|r| serde_json::json!({ "region": r.region.to_string(), "access": region_access(&r.access) })).collect();
    byok_api::HeldRevocation { tenant: h.tenant.to_string(), detected_at: h.detected_at, detail: serde_json::Value::Array(detail) }
}

pub fn chain_check(c: byok_broker::ChainCheck) -> byok_api::ChainCheck {
    byok_api::ChainCheck { ok: c.ok, entries: c.entries, head: c.head, first_bad: c.first_bad, problem: c.problem }
}

pub fn checkpoint(c: byok_broker::audit_signing::Checkpoint) -> byok_api::AuditCheckpoint {
    byok_api::AuditCheckpoint {
        tenant: c.tenant,
        seq: c.seq,
        hash: c.hash,
        signed_at: c.signed_at,
        key_id: c.key_id,
        public_key: c.public_key,
        signature: c.signature,
    }
}

pub fn webhook(w: &byok_domain::Webhook, now: time::OffsetDateTime) -> byok_api::WebhookInfo {
    byok_api::WebhookInfo {
        id: w.id.clone(),
        tenant: w.tenant.as_ref().map(ToString::to_string),
        url: w.url.clone(),
        events: w.events.clone(),
        secrets_in_force: w.signing_secrets(now).count(),
        created_at: w.created_at,
    }
}

pub fn new_webhook(n: byok_broker::webhooks::NewWebhook, now: time::OffsetDateTime) -> byok_api::NewWebhookResponse {
    byok_api::NewWebhookResponse { webhook: webhook(&n.webhook, now), secret: n.secret }
}

pub fn delivery(d: byok_domain::Delivery) -> byok_api::DeliveryInfo {
    byok_api::DeliveryInfo {
        event_id: d.message_id(),
        seq: d.seq,
        event_type: d.event_type,
        status: d.status.as_str().to_string(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_error: d.last_error,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}
