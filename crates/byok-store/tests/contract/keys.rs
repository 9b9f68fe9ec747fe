//! Key generations in the store: rotation, retiring, shredding and rekeying.

use byok_domain::{Event, Tenant, TenantId, TenantState};
use byok_store::{KeyChange, Store, StoreError, WrappedKey};
use time::Duration;

use super::{note, tenant, wrapped};

/// Rotation, retiring, shredding and rekeying on a tenant of its own.
pub async fn key_changes<S: Store>(store: &S) {
    let mut t = tenant("gamma");
    t.binding.account = "444455556666".parse().expect("account");
    store.insert_tenant(&t).await.expect("insert gamma");
    change_keys(store, &t).await;
}

fn generation_keys(t: &Tenant, generation: u32, label: &str) -> Vec<WrappedKey> {
    let mut keys = wrapped(t);
    for k in &mut keys {
        k.generation = generation;
        k.wrapped = format!("{label}-g{generation}-{}", k.region).into_bytes();
    }
    keys
}

/// Rotation, retiring, shredding and rekeying: each atomic, by compare-and-set, on active
/// tenants only. (`t` is onboarding when this starts.)
pub(super) async fn change_keys<S: Store>(store: &S, t: &Tenant) {
    let at = t.created_at + Duration::days(30);
    let g1 = generation_keys(t, 1, "wrapped");
    let verify = TenantState::Onboarding.apply(Event::Verified).expect("verify");
    let rotated = t.keys.rotated(at).expect("rotate");
    let g2 = generation_keys(t, 2, "kept");
    assert!(
        matches!(
            store.change_keys(&t.id, 1, &rotated, KeyChange::Rotate { keys: &g2 }, &note("x")).await,
            Err(StoreError::Conflict { .. })
        ),
        "only an active tenant's keys change"
    );
    let active = store.activate(&t.id, 1, &t.binding, &g1, &verify, &note("verified")).await.expect("activate");
    assert_eq!(active.keys, t.keys, "a new tenant has one generation");
    assert!(matches!(
        store.change_keys(&t.id, 1, &rotated, KeyChange::Rotate { keys: &g2 }, &note("x")).await,
        Err(StoreError::Conflict { expected: 1, .. })
    ));
    let ghost: TenantId = "ghost".parse().expect("id");
    assert!(matches!(store.change_keys(&ghost, 1, &rotated, KeyChange::Retire, &note("x")).await, Err(StoreError::NotFound(_))));

    let after = store.change_keys(&t.id, 2, &rotated, KeyChange::Rotate { keys: &g2 }, &note("rotated")).await.expect("rotate");
    assert_eq!((after.keys.current, after.keys.rotated_at, after.version), (2, at, 3));
    assert_eq!(store.tenant(&t.id).await.expect("get").expect("tenant"), after, "read back as written");
    let both: Vec<WrappedKey> = g1.iter().chain(&g2).cloned().collect();
    assert_eq!(store.wrapped_keys(&t.id).await.expect("keys"), both, "by generation, then region");
    // The same generation twice is refused as a whole.
    assert!(store.change_keys(&t.id, 3, &rotated, KeyChange::Rotate { keys: &g2 }, &note("x")).await.is_err());
    assert_eq!(store.tenant(&t.id).await.expect("get").expect("tenant").version, 3, "nothing changed");

    let retired = after.keys.with_min_decryption(2).expect("retire");
    let after = store.change_keys(&t.id, 3, &retired, KeyChange::Retire, &note("retired")).await.expect("retire");
    assert_eq!((after.keys.min_decryption, after.keys.kept_from), (2, 1));
    assert_eq!(store.wrapped_keys(&t.id).await.expect("keys").len(), 4, "retiring erases nothing");
    let after = store.change_keys(&t.id, 4, &retired.shredded(), KeyChange::Shred, &note("shredded")).await.expect("shred");
    assert_eq!(after.keys.kept_from, 2);
    assert_eq!(store.wrapped_keys(&t.id).await.expect("keys"), g2, "generation 1 is gone, generation 2 kept");
    let what: Vec<String> = super::proven(store).await.proven.into_iter().map(|e| e.what).collect();
    assert_eq!(what, ["shredded"]);

    // Rekey: one region's key replaced in the binding and in every kept generation, at once.
    let region = t.binding.keys[1].region.clone();
    let mut binding = t.binding.clone();
    binding.keys[1].key_arn = format!("arn:aws:kms:{region}:444455556666:key/replacement").parse().expect("arn");
    let mut replaced = vec![g2[1].clone()];
    replaced[0].key_arn = binding.keys[1].key_arn.clone();
    replaced[0].wrapped = b"rekeyed".to_vec();
    let after = store
        .change_keys(&t.id, 5, &after.keys, KeyChange::Rekey { binding: &binding, region: &region, keys: &replaced }, &note("rekeyed"))
        .await
        .expect("rekey");
    assert_eq!((after.binding.clone(), after.version), (binding, 6));
    assert_eq!(store.wrapped_keys(&t.id).await.expect("keys"), vec![g2[0].clone(), replaced[0].clone()]);
    let what: Vec<String> = super::proven(store).await.proven.into_iter().map(|e| e.what).collect();
    assert_eq!(what, ["rekeyed"]);

    // Migrate: the key mode and every region's key switched with every wrapped key, at once.
    let mut cmk = after.binding.clone();
    cmk.mode = byok_domain::KeyMode::Cmk { context_tag: Some("Acme01".parse().expect("tag")) };
    for k in &mut cmk.keys {
        k.key_arn = format!("arn:aws:kms:{}:111122223333:key/cmk", k.region).parse().expect("arn");
    }
    let moved: Vec<WrappedKey> = cmk
        .keys
        .iter()
        .map(|k| WrappedKey { region: k.region.clone(), key_arn: k.key_arn.clone(), generation: 2, wrapped: b"migrated".to_vec() })
        .collect();
    let stale = store.change_keys(&t.id, 5, &after.keys, KeyChange::Migrate { binding: &cmk, keys: &moved }, &note("x")).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "compare-and-set on the version");
    let after = store
        .change_keys(&t.id, 6, &after.keys, KeyChange::Migrate { binding: &cmk, keys: &moved }, &note("migrated"))
        .await
        .expect("migrate");
    assert_eq!((after.binding.clone(), after.version), (cmk, 7));
    assert_eq!(store.wrapped_keys(&t.id).await.expect("keys"), moved);
    let what: Vec<String> = super::proven(store).await.proven.into_iter().map(|e| e.what).collect();
    assert_eq!(what, ["migrated"]);

    // Adoption: switched like a migration, with the adoption in the binding and a fresh
    // generation 3; finishing writes the binding without it and erases what is below 3, at once.
    let mut adopting = after.binding.clone();
    adopting.adoption =
        Some(byok_domain::Adoption { first_generation: 3, provider_keys: Vec::new(), switched_at: time::OffsetDateTime::UNIX_EPOCH });
    let fresh: Vec<WrappedKey> = moved.iter().map(|k| WrappedKey { generation: 3, wrapped: b"fresh".to_vec(), ..k.clone() }).collect();
    let both: Vec<WrappedKey> = moved.iter().chain(&fresh).cloned().collect();
    let rotated = after.keys.rotated(at).expect("rotate");
    let after = store
        .change_keys(&t.id, 7, &rotated, KeyChange::Migrate { binding: &adopting, keys: &both }, &note("adopted"))
        .await
        .expect("adopt");
    assert_eq!((after.binding.adoption.as_ref().map(|a| a.first_generation), after.keys.current), (Some(3), 3));
    let what: Vec<String> = super::proven(store).await.proven.into_iter().map(|e| e.what).collect();
    assert_eq!(what, ["migrated"], "the provider-held wrapping of generation 2 is erased, its rewrap kept");
    let finished = rotated.with_min_decryption(3).expect("retire").shredded();
    let mut done = adopting.clone();
    done.adoption = None;
    let stale = store.change_keys(&t.id, 7, &finished, KeyChange::FinishAdoption { binding: &done }, &note("x")).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "compare-and-set on the version");
    let after =
        store.change_keys(&t.id, 8, &finished, KeyChange::FinishAdoption { binding: &done }, &note("finished")).await.expect("finish");
    assert_eq!((after.binding.adoption.clone(), after.keys.kept_from, after.keys.min_decryption), (None, 3, 3));
    assert_eq!(store.wrapped_keys(&t.id).await.expect("keys"), fresh, "only the fresh generation is kept");
    let what: Vec<String> = super::proven(store).await.proven.into_iter().map(|e| e.what).collect();
    assert_eq!(what, ["adoption finished"]);

    // Adoption progress: every node adds its own count; the sum and the span are the tenant's.
    let (first, last) = (t.created_at, t.created_at + Duration::seconds(10));
    store.note_adoption_rewraps(&t.id, 30, first).await.expect("node a");
    store.note_adoption_rewraps(&t.id, 12, last).await.expect("node b");
    let progress = store.adoption_progress().await.expect("progress");
    let mine = progress.iter().find(|p| p.tenant == t.id).expect("gamma's progress");
    assert_eq!((mine.records, mine.first_at, mine.last_at), (42, first, last));
}
