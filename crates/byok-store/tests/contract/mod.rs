//! What every [`Store`] must do.

use byok_domain::{
    AlertKind, AlertStatus, Author, Event, KeyGenerations, RegionKey, Tenant, TenantBinding, TenantId, TenantState, TicketStatus,
};
use byok_store::{Hold, Store, StoreError, TokenOrigin, TokenScope, WrappedKey};
use time::{Duration, OffsetDateTime};

mod audit_views;
mod keys;
mod schema;
mod webhooks;

pub use audit_views::audit_views;
pub use keys::key_changes;
pub use schema::migrations_on_purpose;
pub use webhooks::webhooks;

pub(super) fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.parse().expect("id"),
        location: "us".into(),
        binding: TenantBinding {
            account: "111122223333".parse().expect("account"),
            role_arn: "arn:aws:iam::111122223333:role/byok-key-management".parse().expect("role"),
            external_id: "byok-ext-1".parse().expect("ext"),
            keys: ["us-east-1", "us-west-2"]
                .iter()
                .map(|r| RegionKey {
                    region: r.parse().expect("region"),
                    key_arn: format!("arn:aws:kms:{r}:111122223333:key/k-{r}").parse().expect("arn"),
                })
                .collect(),
            legacy_trust: false,
            mode: byok_domain::KeyMode::Byok,
            adoption: None,
        },
        state: TenantState::Onboarding,
        keys: KeyGenerations::first(OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")),
        version: 1,
        created_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
    }
}

/// `prove_erasures`, asked again (5 s at most) while some older snapshot still sees the deleted
/// rows: the cases run in parallel on one PostgreSQL, and a neighbour's query in flight holds
/// the proof back exactly as it would in production (`erasure_waits_for_old_snapshots`).
pub(super) async fn proven<S: Store>(store: &S) -> byok_store::ErasureProof {
    for _ in 0..50 {
        let proof = store.prove_erasures().await.expect("prove");
        if proof.pending.is_empty() {
            return proof;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    store.prove_erasures().await.expect("prove")
}

/// A stand-in audit seal (the broker's real one hashes; the store only chains and writes).
pub(super) fn note(what: &'static str) -> impl for<'p> Fn(i64, &'p str) -> byok_store::AuditEntry + Send + Sync {
    move |seq, prev: &str| byok_store::AuditEntry {
        seq,
        tenant: Some("acme".into()),
        at: 1_800_000_000,
        kind: "transition".into(),
        reason: what.into(),
        detail: "{}".into(),
        prev_hash: prev.into(),
        hash: format!("{prev}>{seq}"),
    }
}

pub(super) fn wrapped(t: &Tenant) -> Vec<WrappedKey> {
    t.binding
        .keys
        .iter()
        .map(|k| WrappedKey {
            region: k.region.clone(),
            key_arn: k.key_arn.clone(),
            generation: 1,
            wrapped: format!("wrapped-{}", k.region).into_bytes(),
        })
        .collect()
}

/// acme destroyed (verified, revoked, destroyed: three transitions in the audit log) and beta
/// onboarding, with nothing else written.
async fn destroyed_acme<S: Store>(store: &S) -> Tenant {
    let a = tenant("acme");
    store.insert_tenant(&a).await.expect("insert");
    store.insert_tenant(&tenant("beta")).await.expect("insert beta");
    let verify = TenantState::Onboarding.apply(Event::Verified).expect("verify");
    store.activate(&a.id, 1, &a.binding, &wrapped(&a), &verify, &note("verified")).await.expect("activate");
    let since = OffsetDateTime::from_unix_timestamp(1_800_000_100).expect("time");
    let revoke = TenantState::Active.apply(Event::RevocationDetected { at: since, grace: Duration::days(15) }).expect("revoke");
    store.set_state(&a.id, 2, &revoke, &note("revocation")).await.expect("revoke");
    let destroy = revoke.to().apply(Event::DeadlinePassed { at: since + Duration::days(15) }).expect("destroy");
    store.destroy(&a.id, 3, &destroy, &note("deadline")).await.expect("destroy");
    a
}

const T0: i64 = 1_800_000_200;

/// Tenants inserted and listed; activation, revocation and destruction by compare-and-set; erasures proven.
pub async fn tenants_and_lifecycle<S: Store + Clone + 'static>(store: &S) {
    // Insert, read back, list; duplicates refused.
    let a = tenant("acme");
    store.insert_tenant(&a).await.expect("insert");
    assert_eq!(store.tenant(&a.id).await.expect("get"), Some(a.clone()));
    assert!(matches!(store.insert_tenant(&a).await, Err(StoreError::AlreadyExists(_))));
    store.insert_tenant(&tenant("beta")).await.expect("insert beta");
    let ids: Vec<String> = store.tenants().await.expect("list").into_iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["acme", "beta"]);
    let ghost: TenantId = "ghost".parse().expect("id");
    assert_eq!(store.tenant(&ghost).await.expect("get"), None);

    // Activation stores keys and state together, by compare-and-set.
    let keys = wrapped(&a);
    let verify = TenantState::Onboarding.apply(Event::Verified).expect("verify");
    assert!(matches!(
        store.activate(&a.id, 7, &a.binding, &keys, &verify, &note("verified")).await,
        Err(StoreError::Conflict { expected: 7, .. })
    ));
    assert!(store.wrapped_keys(&a.id).await.expect("keys").is_empty(), "a refused activation stores nothing");
    let mut verified = a.binding.clone();
    verified.legacy_trust = true;
    let active = store.activate(&a.id, 1, &verified, &keys, &verify, &note("verified")).await.expect("activate");
    assert_eq!((active.state, active.version), (TenantState::Active, 2));
    assert_eq!(store.tenant(&a.id).await.expect("get").expect("tenant").binding, verified, "the verified binding is stored");
    assert_eq!(store.wrapped_keys(&a.id).await.expect("keys"), keys);
    // Revocation: one writer wins a race, the others are told to re-read.
    let since = OffsetDateTime::from_unix_timestamp(1_800_000_100).expect("time");
    let revoke = TenantState::Active.apply(Event::RevocationDetected { at: since, grace: Duration::days(15) }).expect("revoke");
    let revoked = revoke.to();
    assert!(matches!(store.set_state(&ghost, 1, &revoke, &note("x")).await, Err(StoreError::NotFound(_))));
    // Each method writes only its own transitions.
    assert!(matches!(store.set_state(&a.id, 2, &verify, &note("x")).await, Err(StoreError::WrongTransition { .. })));
    assert!(matches!(store.destroy(&a.id, 2, &revoke, &note("x")).await, Err(StoreError::WrongTransition { .. })));
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = a.id.clone();
        racers.push(tokio::spawn(async move { store.set_state(&id, 2, &revoke, &note("revocation")).await }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.expect("join") {
            Ok(t) => {
                won += 1;
                assert_eq!((t.state, t.version), (revoked, 3));
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one compare-and-set wins");
    assert_eq!(store.tenant(&a.id).await.expect("get").expect("tenant").state, revoked);
    let inactive: Vec<String> = store.inactive_tenants().await.expect("inactive").iter().map(ToString::to_string).collect();
    assert_eq!(inactive, ["acme", "beta"], "revoked and onboarding");
    let census = store.tenant_census().await.expect("census");
    assert_eq!(census.by_state.get("revoked").copied(), Some(1));
    assert_eq!(census.by_state.get("onboarding").copied(), Some(1));
    assert_eq!(census.next_deadline, Some(since + Duration::days(15)), "the nearest deadline");
    // A transition from a state the tenant is no longer in is refused, whatever the version.
    let stale = TenantState::Active.apply(Event::RevocationDetected { at: since, grace: Duration::days(15) }).expect("revoke");
    assert!(matches!(store.set_state(&a.id, 3, &stale, &note("x")).await, Err(StoreError::Conflict { .. })));

    // Destruction erases every wrapped key, atomically with the state.
    let destroy = revoked.apply(Event::DeadlinePassed { at: since + Duration::days(15) }).expect("destroy");
    let destroyed = destroy.to();
    assert!(matches!(store.destroy(&a.id, 2, &destroy, &note("deadline")).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.wrapped_keys(&a.id).await.expect("keys").len(), 2, "a refused destruction erases nothing");
    let gone = store.destroy(&a.id, 3, &destroy, &note("deadline")).await.expect("destroy");
    assert_eq!((gone.state, gone.version), (destroyed, 4));
    assert!(store.wrapped_keys(&a.id).await.expect("keys").is_empty());
    // The erasure is recorded with the destruction and proven apart from it, once.
    let proof = proven(store).await;
    assert_eq!((proof.proven.len(), proof.pending.len(), &proof.reason), (1, 0, &None), "{proof:?}");
    assert_eq!((proof.proven[0].tenant.as_str(), proof.proven[0].what.as_str()), ("acme", "destroyed"));
    assert_eq!(store.prove_erasures().await.expect("prove"), byok_store::ErasureProof::default(), "nothing left to prove");
}

/// Provider-held keys, one per tenant and region.
pub async fn provider_keys<S: Store>(store: &S) {
    let a = destroyed_acme(store).await;
    // Provider-held keys: one per (tenant, region), the first writer's; those of destroyed
    // tenants are listed for deletion until it is scheduled.
    let (r1, r2) = (a.binding.keys[0].region.clone(), a.binding.keys[1].region.clone());
    let beta_id: TenantId = "beta".parse().expect("id");
    assert_eq!(store.provider_key(&a.id, &r1).await.expect("get"), None);
    let t = OffsetDateTime::from_unix_timestamp(1_800_000_300).expect("time");
    let first = store.add_provider_key(&a.id, &r1, "arn:aws:kms:r1:279766244153:key/first", t).await.expect("add");
    let second = store.add_provider_key(&a.id, &r1, "arn:aws:kms:r1:279766244153:key/second", t).await.expect("add");
    assert_eq!(
        (first.key_arn.as_str(), second.key_arn.as_str()),
        ("arn:aws:kms:r1:279766244153:key/first", "arn:aws:kms:r1:279766244153:key/first")
    );
    store.add_provider_key(&a.id, &r2, "arn:aws:kms:r2:279766244153:key/k2", t).await.expect("add");
    store.add_provider_key(&beta_id, &r1, "arn:aws:kms:r1:279766244153:key/beta", t).await.expect("add");
    let due: Vec<(String, String)> =
        store.provider_keys_to_destroy().await.expect("due").into_iter().map(|(id, k)| (id.to_string(), k.key_arn)).collect();
    assert_eq!(due.len(), 2, "the destroyed tenant's two keys, not the onboarding tenant's: {due:?}");
    assert!(due.iter().all(|(id, _)| id == "acme"), "{due:?}");
    store.provider_key_destroyed(&a.id, &r1, t + Duration::days(7)).await.expect("scheduled");
    assert_eq!(store.provider_key(&a.id, &r1).await.expect("get").and_then(|k| k.deletion_date), Some(t + Duration::days(7)));
    assert_eq!(store.provider_keys_to_destroy().await.expect("due").len(), 1, "the scheduled one is done");
    store.provider_key_destroyed(&a.id, &r2, t + Duration::days(7)).await.expect("scheduled");
}

/// Tokens by hash, with scope, origin, expiry and revocation.
pub async fn tokens<S: Store + Clone + 'static>(store: &S) {
    store.insert_tenant(&tenant("acme")).await.expect("insert");
    store.insert_tenant(&tenant("beta")).await.expect("insert beta");
    let t0 = OffsetDateTime::from_unix_timestamp(T0).expect("time");
    // Tokens by hash, with their scope, origin, expiry and revocation.
    let beta_admin = TokenScope::TenantAdmin("beta".parse().expect("id"));
    let scope = |hash: &'static str| {
        let store = store.clone();
        async move { store.token(hash).await.expect("token").filter(|r| r.valid_at(t0 + Duration::minutes(1))).map(|r| r.scope) }
    };
    store.put_token("aa11aa11aa11aa11", &TokenScope::Operator, TokenOrigin::Configured, t0, None).await.expect("token");
    store
        .put_token("bb22bb22bb22bb22", &TokenScope::Service(byok_store::ServiceReach::AllTenants), TokenOrigin::Configured, t0, None)
        .await
        .expect("token");
    let issued =
        store.put_token("cc33cc33cc33cc33", &beta_admin, TokenOrigin::Issued, t0, Some(t0 + Duration::days(1))).await.expect("token");
    assert_eq!(issued.id, "cc33cc33cc33");
    assert_eq!(scope("aa11aa11aa11aa11").await, Some(TokenScope::Operator));
    assert_eq!(scope("bb22bb22bb22bb22").await, Some(TokenScope::Service(byok_store::ServiceReach::AllTenants)));
    assert_eq!(scope("cc33cc33cc33cc33").await, Some(beta_admin.clone()));
    assert_eq!(scope("dd44dd44dd44dd44").await, None);
    let expiring = store.token("cc33cc33cc33cc33").await.expect("token").expect("there");
    assert!(expiring.valid_at(t0 + Duration::hours(23)) && !expiring.valid_at(t0 + Duration::days(1)), "expires");
    // A new configured operator token retires the old one; issued ones are untouched.
    store.put_token("ee55ee55ee55ee55", &TokenScope::Operator, TokenOrigin::Configured, t0, None).await.expect("token");
    assert_eq!(
        store.revoke_tokens_like(&TokenScope::Operator, TokenOrigin::Configured, Some("ee55ee55ee55ee55"), t0).await.expect("retire"),
        1
    );
    assert_eq!(scope("aa11aa11aa11aa11").await, None, "retired");
    assert_eq!(scope("ee55ee55ee55ee55").await, Some(TokenScope::Operator));
    // Revocation by id; an unknown or malformed id revokes nothing.
    assert!(store.revoke_token("cc33cc33cc33", t0).await.expect("revoke"));
    assert!(!store.revoke_token("cc33cc33cc33", t0).await.expect("again"), "already revoked");
    assert!(!store.revoke_token("%", t0).await.expect("pattern"), "not a LIKE pattern");
    assert_eq!(scope("cc33cc33cc33cc33").await, None);
    assert_eq!(store.tokens().await.expect("list").len(), 4);
    // A service token limited to some tenants keeps its list.
    let some: byok_store::ServiceReach =
        byok_store::ServiceReach::Tenants(["acme".parse().expect("id"), "beta".parse().expect("id")].into_iter().collect());
    store.put_token("ff66ff66ff66ff66", &TokenScope::Service(some.clone()), TokenOrigin::Issued, t0, None).await.expect("token");
    let read = scope("ff66ff66ff66ff66").await;
    assert_eq!(read, Some(TokenScope::Service(some.clone())));
    assert!(some.reaches(&"beta".parse().expect("id")) && !some.reaches(&"ghost".parse().expect("id")));
}

/// Cluster settings: the first writer wins.
pub async fn settings<S: Store + Clone + 'static>(store: &S) {
    let t0 = OffsetDateTime::from_unix_timestamp(T0).expect("time");
    // Cluster settings: the first writer wins, every later caller reads the first value.
    assert_eq!(store.setting("canary").await.expect("setting"), None);
    assert_eq!(store.setting_or_insert("canary", "first", t0).await.expect("insert"), "first");
    assert_eq!(store.setting_or_insert("canary", "second", t0).await.expect("insert"), "first", "first writer wins");
    assert_eq!(store.setting("canary").await.expect("setting").as_deref(), Some("first"));
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        racers.spawn(async move { store.setting_or_insert("raced", &format!("node-{i}"), t0).await.expect("race") });
    }
    let seen: std::collections::HashSet<String> = racers.join_all().await.into_iter().collect();
    assert_eq!(seen.len(), 1, "racing nodes all read one value: {seen:?}");
}

/// Operator alerts: one open per kind.
pub async fn alerts<S: Store>(store: &S) {
    let t0 = OffsetDateTime::from_unix_timestamp(T0).expect("time");
    // Operator alerts: one open per kind, whoever asks; resolved, another may open.
    let opened = store.open_alert(AlertKind::ProviderIdentity, "Provider identity failing: x", "body", t0).await.expect("open");
    assert!(opened.is_some());
    assert_eq!(store.open_alert(AlertKind::ProviderIdentity, "again", "body", t0).await.expect("open"), None, "opened once");
    assert!(store.open_alert(AlertKind::RevocationsHeld, "held", "body", t0).await.expect("open").is_some(), "another kind");
    assert_eq!(store.alerts(true).await.expect("alerts").len(), 2);
    let resolved = store.resolve_alert(AlertKind::ProviderIdentity, t0).await.expect("resolve").expect("was open");
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(store.resolve_alert(AlertKind::ProviderIdentity, t0).await.expect("resolve"), None);
    assert!(store.open_alert(AlertKind::ProviderIdentity, "again", "body", t0).await.expect("open").is_some());
    assert_eq!(store.alerts(false).await.expect("alerts").len(), 3);
}

/// Held revocations, with their regions typed.
pub async fn holds<S: Store>(store: &S) {
    let t0 = OffsetDateTime::from_unix_timestamp(T0).expect("time");
    store.insert_tenant(&tenant("beta")).await.expect("insert beta");
    // Holds: the first detection stays; removed once.
    let hold = Hold {
        tenant: "beta".parse().expect("id"),
        detected_at: t0,
        regions: vec![byok_domain::HeldRegion {
            region: "eu-west-1".parse().expect("region"),
            access: byok_domain::RegionAccess::Denied { denial: byok_domain::Denial::KeyDisabled, message: "disabled".into() },
        }],
        created_at: t0,
    };
    assert!(store.hold(&hold).await.expect("hold"));
    assert!(!store.hold(&Hold { detected_at: t0 + Duration::hours(1), ..hold.clone() }).await.expect("again"));
    assert_eq!(store.holds().await.expect("holds"), std::slice::from_ref(&hold));
    assert_eq!(store.remove_hold(&hold.tenant).await.expect("remove"), Some(hold.clone()));
    assert_eq!(store.remove_hold(&hold.tenant).await.expect("remove"), None);
}

/// Tickets and their comments; one live ticket per tenant.
pub async fn tickets<S: Store + Clone + 'static>(store: &S) {
    let a = tenant("acme");
    store.insert_tenant(&a).await.expect("insert");
    store.insert_tenant(&tenant("beta")).await.expect("insert beta");
    // Tickets and their comments.
    let beta: TenantId = "beta".parse().expect("id");
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_500).expect("time");
    let ticket = store.open_ticket(&beta, "BYOK revocation started for AWS account 111122223333", "detected …", at).await.expect("open");
    assert_eq!((ticket.status, ticket.reminders_sent), (TicketStatus::Open, 0));
    let second = store.open_ticket(&a.id, "another", "x", at).await.expect("open");
    assert!(second.id > ticket.id);
    // One live ticket per tenant, whoever races to open it.
    let mut racers = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        let beta = beta.clone();
        racers.push(tokio::spawn(async move { store.open_ticket(&beta, "dup", "x", at).await }));
    }
    for r in racers {
        assert!(matches!(r.await.expect("join"), Err(StoreError::TicketExists(_))), "beta already has a live ticket");
    }
    // A reminder is claimed once.
    assert!(store.claim_reminder(ticket.id, 0, 1, at).await.expect("claim"));
    assert!(!store.claim_reminder(ticket.id, 0, 1, at).await.expect("claim again"), "claimed by someone else already");
    store.update_ticket(ticket.id, TicketStatus::Open, Some(0), at).await.expect("reset");
    let comment = store.add_comment(ticket.id, Author::Customer, "ready", at + Duration::minutes(1)).await.expect("comment");
    assert_eq!(comment.author, Author::Customer);
    store.update_ticket(ticket.id, TicketStatus::Resolved, Some(1), at + Duration::minutes(2)).await.expect("update");
    let (t, comments) = store.ticket(ticket.id).await.expect("get").expect("ticket");
    assert_eq!((t.status, t.reminders_sent, t.updated_at), (TicketStatus::Resolved, 1, at + Duration::minutes(2)));
    assert_eq!(
        comments.iter().map(|c| (c.author.as_str(), c.body.as_str())).collect::<Vec<_>>(),
        [("byok", "detected …"), ("customer", "ready")]
    );
    assert_eq!(store.tickets(Some(&beta)).await.expect("list").len(), 1);
    assert_eq!(store.tickets(None).await.expect("all").iter().map(|t| t.id).collect::<Vec<_>>(), [second.id, ticket.id]);
    assert!(matches!(store.add_comment(9999, Author::Customer, "x", at).await, Err(StoreError::NoTicket(9999))));
    assert!(store.ticket(9999).await.expect("get").is_none());
}

/// The audit log: numbered without gaps under racing writers, chained, pruned from a checkpoint.
pub async fn audit_chain<S: Store + Clone + 'static>(store: &S) {
    let a = destroyed_acme(store).await;
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_500).expect("time");
    // The audit log: appends are numbered without gaps and each sees the previous hash, even
    // when many writers race.
    let mut writers = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let tenant = if i % 2 == 0 { Some("acme".to_string()) } else { None };
            store
                .append_audit(&move |seq, prev: &str| byok_store::AuditEntry {
                    seq,
                    tenant: tenant.clone(),
                    at: 1_800_000_000 + seq,
                    kind: "key_use".into(),
                    reason: "probe".into(),
                    detail: format!("{{\"writer\":{i}}}"),
                    prev_hash: prev.to_string(),
                    hash: format!("{prev}>{seq}"),
                })
                .await
        }));
    }
    for w in writers {
        w.await.expect("join").expect("append");
    }
    // A batch is chained in its order, in one transaction.
    let batch_note = |i: i64| {
        move |seq: i64, prev: &str| byok_store::AuditEntry {
            seq,
            tenant: None,
            at: 1_800_000_000 + seq,
            kind: "key_use".into(),
            reason: "probe".into(),
            detail: format!("{{\"batch\":{i}}}"),
            prev_hash: prev.to_string(),
            hash: format!("{prev}>{seq}"),
        }
    };
    let (b1, b2) = (batch_note(1), batch_note(2));
    let batch = store.append_audit_many(&[&b1, &b2]).await.expect("batch");
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[1].prev_hash, batch[0].hash);
    assert_eq!(batch[1].seq, batch[0].seq + 1);
    assert!(store.append_audit_many(&[]).await.expect("empty batch").is_empty());
    // Transitions wrote theirs in their own transactions, and only when they happened:
    // activation, the one revocation that won, the one destruction that was not refused.
    let all = store.audit(None, 0, 100).await.expect("audit");
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=21).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash), "the chain never forks");
    let transitions: Vec<&str> = all.iter().filter(|e| e.kind == "transition").map(|e| e.reason.as_str()).collect();
    assert_eq!(transitions, ["verified", "revocation", "deadline"]);
    assert_eq!(store.audit(Some(&a.id), 0, 100).await.expect("audit").len(), 3 + 8);
    // A tenant's newest entry (what a checkpoint for it signs); none for a tenant without any.
    let newest = all.iter().rev().find(|e| e.tenant.as_deref() == Some("acme")).expect("acme's").clone();
    assert_eq!(store.newest_audit(&a.id).await.expect("newest"), Some(newest));
    assert_eq!(store.newest_audit(&"nobody".parse().expect("id")).await.expect("newest"), None);
    // A streaming sink's cursor: from the start, moved only from where it is.
    assert_eq!(store.sink_cursor("syslog://siem:514").await.expect("cursor"), 0);
    assert!(store.advance_sink_cursor("syslog://siem:514", 0, 7, at).await.expect("advance"));
    assert!(!store.advance_sink_cursor("syslog://siem:514", 0, 9, at).await.expect("a stale leader"), "moved only from where it is");
    assert_eq!(store.sink_cursor("syslog://siem:514").await.expect("cursor"), 7);
    assert_eq!(store.sink_cursor("file:/var/log/byok.jsonl").await.expect("another sink"), 0);
    assert_eq!(store.audit(None, 10, 3).await.expect("audit").iter().map(|e| e.seq).collect::<Vec<_>>(), [11, 12, 13]);

    // Pruning exported entries: only with the last pruned entry's hash; the checkpoint then
    // carries the chain, and new entries follow it.
    let cut = all[4].clone();
    assert_eq!(store.prune_audit(cut.seq, "wrong", at).await.expect("prune"), None);
    assert_eq!(store.prune_audit(cut.seq, &cut.hash, at).await.expect("prune"), Some(5));
    assert_eq!(store.audit_checkpoint().await.expect("checkpoint"), Some((cut.seq, cut.hash.clone())));
    assert_eq!(store.audit(None, 0, 100).await.expect("audit").first().map(|e| e.seq), Some(cut.seq + 1));
    let last = all.last().expect("last").clone();
    store.prune_audit(last.seq, &last.hash, at).await.expect("prune").expect("all of it");
    let next = store.append_audit(&note("after")).await.expect("append after pruning everything");
    assert_eq!((next.seq, next.prev_hash.as_str()), (last.seq + 1, last.hash.as_str()), "the chain goes on from the checkpoint");
}

/// Tenants by the customer's account (an indexed column).
pub async fn tenants_by_account<S: Store>(store: &S) {
    store.insert_tenant(&tenant("acme")).await.expect("insert");
    store.insert_tenant(&tenant("beta")).await.expect("insert beta");
    // Tenants by the customer's account (an indexed column).
    // gamma is a customer-managed-key tenant: its key mode and context tag come back as written.
    let mut elsewhere = tenant("gamma");
    elsewhere.binding.account = "444455556666".parse().expect("account");
    elsewhere.binding.mode = byok_domain::KeyMode::Cmk { context_tag: Some("Gamma01".parse().expect("tag")) };
    store.insert_tenant(&elsewhere).await.expect("insert gamma");
    assert_eq!(store.tenant(&elsewhere.id).await.expect("read").expect("gamma"), elsewhere);
    let in_account = |account: &'static str| async move {
        let found = store.tenants_in_account(&account.parse().expect("account")).await.expect("by account");
        found.into_iter().map(|t| t.id.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(in_account("111122223333").await, ["acme", "beta"]);
    assert_eq!(in_account("444455556666").await, ["gamma"]);
    assert!(in_account("999999999999").await.is_empty());
}

/// What `survives_reconnect` reads back on a new connection.
pub async fn written_before_reconnect<S: Store>(store: &S) {
    destroyed_acme(store).await;
    store.insert_tenant(&tenant("gamma")).await.expect("insert gamma");
    let t0 = OffsetDateTime::from_unix_timestamp(T0).expect("time");
    store
        .put_token("bb22bb22bb22bb22", &TokenScope::Service(byok_store::ServiceReach::AllTenants), TokenOrigin::Configured, t0, None)
        .await
        .expect("token");
}

/// A destroyed tenant whose erasure was proven, for checks of what is left on disk.
pub async fn destroyed<S: Store>(store: &S) {
    destroyed_acme(store).await;
    assert_eq!(proven(store).await.proven.len(), 1);
}

/// The leader lease: on a shared store one holder at a time, judged by the database's clock;
/// renewed by its holder; taken over once it lapses or is released. On a single-node store the
/// caller always holds it.
pub async fn lease<S: Store>(store: &S, shared: bool) {
    let ttl = std::time::Duration::from_millis(800);
    assert!(store.acquire_lease("node-a", ttl).await.expect("a").is_some(), "the first taker holds it");
    if !shared {
        assert!(store.acquire_lease("node-b", ttl).await.expect("b").is_some(), "one node: always the leader");
        return;
    }
    assert_eq!(store.acquire_lease("node-b", ttl).await.expect("b"), None, "held by a");
    assert_eq!(store.lease_holder().await.expect("holder").map(|(h, _)| h), Some("node-a".to_string()));
    assert!(store.acquire_lease("node-a", ttl).await.expect("renew").is_some(), "its holder renews it");
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert!(store.acquire_lease("node-b", ttl).await.expect("b").is_some(), "lapsed: b takes over");
    assert_eq!(store.acquire_lease("node-a", ttl).await.expect("a"), None, "a lost it");
    store.release_lease("node-b").await.expect("release");
    assert!(store.acquire_lease("node-a", ttl).await.expect("a").is_some(), "released: taken at once");
}

pub async fn survives_reconnect<S: Store>(store: &S) {
    let a = store.tenant(&"acme".parse().expect("id")).await.expect("get").expect("acme");
    assert!(matches!(a.state, TenantState::Destroyed { .. }));
    assert_eq!(a.version, 4);
    assert_eq!(store.tenants().await.expect("list").len(), 3);
    assert_eq!(
        store.token("bb22bb22bb22bb22").await.expect("token").map(|r| r.scope),
        Some(TokenScope::Service(byok_store::ServiceReach::AllTenants))
    );
}

/// An erasure is never proven while a snapshot older than it is open (a `REPEATABLE READ`
/// report, a running `pg_dump`): `VACUUM FULL` would copy the deleted row versions into the
/// new file. `hold` opens such a snapshot on another connection and `release` ends it;
/// `file_has` says whether the table's file holds the bytes (None: the file is not readable
/// from here).
pub async fn erasure_waits_for_old_snapshots<S, H, R, F>(store: &S, hold: H, release: R, file_has: F)
where
    S: Store,
    H: std::future::Future<Output = ()>,
    R: std::future::Future<Output = ()>,
    F: AsyncFn(&[u8]) -> Option<bool>,
{
    let mut t = tenant("snapshot");
    t.binding.keys.truncate(1);
    store.insert_tenant(&t).await.expect("insert");
    let keys: Vec<WrappedKey> =
        wrapped(&t).into_iter().map(|k| WrappedKey { wrapped: b"kept-by-a-snapshot-0123456789".to_vec(), ..k }).collect();
    let verify = TenantState::Onboarding.apply(Event::Verified).expect("verify");
    store.activate(&t.id, 1, &t.binding, &keys, &verify, &note("verified")).await.expect("activate");
    let since = OffsetDateTime::from_unix_timestamp(1_800_000_100).expect("time");
    let revoke = TenantState::Active.apply(Event::RevocationDetected { at: since, grace: Duration::days(15) }).expect("revoke");
    store.set_state(&t.id, 2, &revoke, &note("revoked")).await.expect("revoke");
    hold.await;
    let destroy = revoke.to().apply(Event::DeadlinePassed { at: since + Duration::days(15) }).expect("destroy");
    store.destroy(&t.id, 3, &destroy, &note("deadline")).await.expect("destroy");
    let blocked = store.prove_erasures().await.expect("prove");
    assert!(blocked.proven.is_empty(), "never proven while an older snapshot lives: {blocked:?}");
    assert_eq!(blocked.pending.len(), 1, "{blocked:?}");
    let reason = blocked.reason.clone().unwrap_or_default();
    assert!(reason.contains("older snapshots can still see the deleted keys") && reason.contains("session"), "{reason}");
    if let Some(present) = file_has(b"kept-by-a-snapshot").await {
        eprintln!("NOTE: while the snapshot is open the deleted key is {} the table's file", if present { "still in" } else { "not in" });
    }
    release.await;
    let proof = store.prove_erasures().await.expect("prove");
    assert_eq!((proof.proven.len(), proof.pending.len()), (1, 0), "proven once the snapshot ended: {proof:?}");
    if let Some(present) = file_has(b"kept-by-a-snapshot").await {
        assert!(!present, "a proven erasure leaves no copy in the table's file");
    }
}

/// Product services' IAM identities: recorded, replaced, listed, removed.
pub async fn aws_identities<S: Store>(store: &S) {
    let at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
    let billing = "arn:aws:iam::111122223333:role/billing";
    let tenants = |ids: &[&str]| byok_store::ServiceReach::Tenants(ids.iter().map(|i| i.parse().expect("id")).collect());
    assert_eq!(store.aws_identity(billing).await.expect("read"), None);
    store.put_aws_identity(billing, &tenants(&["acme", "globex"]), at).await.expect("put");
    assert_eq!(store.aws_identity(billing).await.expect("read"), Some(tenants(&["acme", "globex"])));
    // Replaced, not duplicated.
    store.put_aws_identity(billing, &tenants(&["acme"]), at).await.expect("replace");
    store.put_aws_identity("arn:aws:iam::111122223333:role/batch", &byok_store::ServiceReach::AllTenants, at).await.expect("put");
    let all = store.aws_identities().await.expect("list");
    assert_eq!(
        all,
        [
            ("arn:aws:iam::111122223333:role/batch".to_string(), byok_store::ServiceReach::AllTenants),
            (billing.to_string(), tenants(&["acme"])),
        ]
    );
    assert!(store.remove_aws_identity(billing).await.expect("remove"));
    assert!(!store.remove_aws_identity(billing).await.expect("again"), "gone already");
    assert_eq!(store.aws_identity(billing).await.expect("read"), None);
    // Sign-in signatures: the first use takes, a second is a replay; expired ones are forgotten.
    let later = at + time::Duration::minutes(30);
    assert!(store.first_use_of_signature("sig-1", at, at - time::Duration::minutes(20)).await.expect("first"));
    assert!(!store.first_use_of_signature("sig-1", at, at - time::Duration::minutes(20)).await.expect("again"), "a replay");
    assert!(store.first_use_of_signature("sig-2", at, at - time::Duration::minutes(20)).await.expect("another"));
    assert!(
        store.first_use_of_signature("sig-1", later, later - time::Duration::minutes(20)).await.expect("expired"),
        "forgotten once expired"
    );
}
