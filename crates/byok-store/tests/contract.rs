//! What every [`Store`] must do.

use byok_domain::{Author, Event, RegionKey, Tenant, TenantBinding, TenantId, TenantState, TicketStatus};
use byok_store::{Store, StoreError, TokenScope, WrappedKey};
use time::{Duration, OffsetDateTime};

fn tenant(id: &str) -> Tenant {
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
        },
        state: TenantState::Onboarding,
        version: 1,
        created_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
    }
}

/// A stand-in audit seal (the broker's real one hashes; the store only chains and writes).
fn note(what: &'static str) -> impl for<'p> Fn(i64, &'p str) -> byok_store::AuditEntry + Send + Sync {
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

fn wrapped(t: &Tenant) -> Vec<WrappedKey> {
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

pub async fn run<S: Store + Clone + 'static>(store: &S) {
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

    // Tokens by hash, with their scope.
    store.put_token("aa11", &TokenScope::Operator).await.expect("token");
    store.put_token("bb22", &TokenScope::Service).await.expect("token");
    store.put_token("cc33", &TokenScope::TenantAdmin("beta".parse().expect("id"))).await.expect("token");
    assert_eq!(store.token_scope("aa11").await.expect("scope"), Some(TokenScope::Operator));
    assert_eq!(store.token_scope("bb22").await.expect("scope"), Some(TokenScope::Service));
    assert_eq!(store.token_scope("cc33").await.expect("scope"), Some(TokenScope::TenantAdmin("beta".parse().expect("id"))));
    assert_eq!(store.token_scope("dd44").await.expect("scope"), None);

    // Tickets and their comments.
    let beta: TenantId = "beta".parse().expect("id");
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_500).expect("time");
    let ticket = store.open_ticket(&beta, "BYOK revocation started for AWS account 111122223333", "detected …", at).await.expect("open");
    assert_eq!((ticket.status, ticket.reminders_sent), (TicketStatus::Open, 0));
    let second = store.open_ticket(&a.id, "another", "x", at).await.expect("open");
    assert!(second.id > ticket.id);
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
    // Transitions wrote theirs in their own transactions, and only when they happened:
    // activation, the one revocation that won, the one destruction that was not refused.
    let all = store.audit(None, 0, 100).await.expect("audit");
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=19).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash), "the chain never forks");
    let transitions: Vec<&str> = all.iter().filter(|e| e.kind == "transition").map(|e| e.reason.as_str()).collect();
    assert_eq!(transitions, ["verified", "revocation", "deadline"]);
    assert_eq!(store.audit(Some(&a.id), 0, 100).await.expect("audit").len(), 3 + 8);
    assert_eq!(store.audit(None, 10, 3).await.expect("audit").iter().map(|e| e.seq).collect::<Vec<_>>(), [11, 12, 13]);
}

pub async fn survives_reconnect<S: Store>(store: &S) {
    let a = store.tenant(&"acme".parse().expect("id")).await.expect("get").expect("acme");
    assert!(matches!(a.state, TenantState::Destroyed { .. }));
    assert_eq!(a.version, 4);
    assert_eq!(store.tenants().await.expect("list").len(), 2);
    assert_eq!(store.token_scope("bb22").await.expect("scope"), Some(TokenScope::Service));
}
