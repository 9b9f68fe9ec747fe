//! Key generations over HTTP: rotation keeps old records opening and seals new ones under the
//! new generation; rewrap moves records forward without showing plaintext; a retired
//! generation is refused (alone, in a batch); shredding is final; only an active tenant's keys
//! change, and only the operator changes them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_store::prelude::*;
use serde_json::{Value, json};

use crate::{OPERATOR, SERVICE, call, world};

fn generation(ciphertext: &Value) -> u32 {
    let bytes = STANDARD.decode(ciphertext.as_str().expect("ciphertext")).expect("b64");
    u32::from_be_bytes(bytes[1..5].try_into().expect("header"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_rewrap_retire_and_shred() {
    let w = world().await;
    let r = &w.router;
    let seal = |text: &str, context: &str| json!({ "plaintext": STANDARD.encode(text), "context": context });
    let (status, old) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/encrypt", Some(seal("old", "r1"))).await;
    assert_eq!(status, 200);
    assert_eq!(generation(&old["ciphertext"]), 1);

    // Only the operator rotates.
    assert_eq!(call(r, Some(SERVICE), "POST", "/v1/tenants/acme/rotate", None).await.0, 403);
    assert_eq!(call(r, Some(&w.acme_admin), "POST", "/v1/tenants/acme/rotate", None).await.0, 403);
    let unwraps = w.kms.unwraps.load(std::sync::atomic::Ordering::SeqCst);
    let (status, rotated) = call(r, Some(OPERATOR), "POST", "/v1/tenants/acme/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let after_rotation = w.kms.unwraps.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(after_rotation - unwraps, 2, "each region's wrap of the new generation is checked by unwrapping it");
    let unwraps = after_rotation;
    assert_eq!((rotated["keys"]["current"].as_u64(), rotated["keys"]["min_decryption"].as_u64()), (Some(2), Some(1)));

    // New records are generation 2; the old one still opens (both generations unwrapped once).
    let (_, new) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/encrypt", Some(seal("new", "r2"))).await;
    assert_eq!(generation(&new["ciphertext"]), 2);
    let open = |c: &Value, context: &str| json!({ "ciphertext": c, "context": context });
    let (status, opened) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt", Some(open(&old["ciphertext"], "r1"))).await;
    assert_eq!((status.as_u16(), opened["plaintext"].as_str()), (200, Some(STANDARD.encode("old").as_str())));
    assert_eq!(w.kms.unwraps.load(std::sync::atomic::Ordering::SeqCst) - unwraps, 2, "one unwrap per readable generation");

    // Rewrap: the old record under generation 2, same context; the answer holds no plaintext.
    let (status, moved) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/rewrap", Some(open(&old["ciphertext"], "r1"))).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved.as_object().expect("object").keys().collect::<Vec<_>>(), ["ciphertext"]);
    assert_eq!(generation(&moved["ciphertext"]), 2);
    let (_, opened) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt", Some(open(&moved["ciphertext"], "r1"))).await;
    assert_eq!(opened["plaintext"], STANDARD.encode("old"));
    // A rewrap batch: another tenant's record, the wrong context and a good one.
    let beta = STANDARD.encode(w.broker.encrypt(&"beta".parse().expect("id"), b"r1", b"beta's").await.expect("beta"));
    let items = json!({ "items": [open(&old["ciphertext"], "r1"), open(&json!(beta), "r1"), open(&old["ciphertext"], "r9")] });
    let (status, batch) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/rewrap/batch", Some(items)).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(generation(&batch["results"][0]["ciphertext"]), 2);
    assert_eq!(batch["results"][1]["error"]["code"], "invalid_ciphertext");
    assert_eq!(batch["results"][2]["error"]["code"], "invalid_ciphertext");
    assert_eq!(batch["failed"], 2);

    // Retire generation 1: its records are refused with their own code, alone in a batch.
    let min = |g: u32| json!({ "generation": g });
    let path = "/v1/tenants/acme/min-decryption-generation";
    assert_eq!(call(r, Some(SERVICE), "PUT", path, Some(min(2))).await.0, 403);
    let (status, retired) = call(r, Some(OPERATOR), "PUT", path, Some(min(2))).await;
    assert_eq!((status.as_u16(), retired["keys"]["min_decryption"].as_u64()), (200, Some(2)), "{retired}");
    let (status, refused) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt", Some(open(&old["ciphertext"], "r1"))).await;
    assert_eq!((status.as_u16(), refused["error"].as_str()), (410, Some("generation_retired")), "{refused}");
    assert!(refused["message"].as_str().expect("message").contains("generation 1"), "{refused}");
    assert_eq!(call(r, Some(SERVICE), "POST", "/v1/tenants/acme/rewrap", Some(open(&old["ciphertext"], "r1"))).await.0, 410);
    let items = json!({ "items": [open(&old["ciphertext"], "r1"), open(&new["ciphertext"], "r2")] });
    let (_, batch) = call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt/batch", Some(items)).await;
    assert_eq!(batch["results"][0]["error"]["code"], "generation_retired", "{batch}");
    assert_eq!(batch["results"][1]["plaintext"], STANDARD.encode("new"));
    for bad in [0, 3] {
        let (status, body) = call(r, Some(OPERATOR), "PUT", path, Some(min(bad))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (409, Some("invalid_generation")), "{bad}: {body}");
    }
    // Lowered again while the keys are kept: the old record opens again.
    assert_eq!(call(r, Some(OPERATOR), "PUT", path, Some(min(1))).await.0, 200);
    assert_eq!(call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt", Some(open(&old["ciphertext"], "r1"))).await.0, 200);

    // Shred: generation 1's keys erased; it cannot come back.
    assert_eq!(call(r, Some(OPERATOR), "PUT", path, Some(min(2))).await.0, 200);
    let (status, shredded) = call(r, Some(OPERATOR), "POST", "/v1/tenants/acme/shred-retired", None).await;
    assert_eq!((status.as_u16(), shredded["keys"]["kept_from"].as_u64()), (200, Some(2)), "{shredded}");
    let kept = w.store.wrapped_keys(&"acme".parse().expect("id")).await.expect("keys");
    assert!(kept.iter().all(|k| k.generation == 2) && kept.len() == 2, "{kept:?}");
    assert_eq!(call(r, Some(OPERATOR), "PUT", path, Some(min(1))).await.0, 409);
    assert_eq!(call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt", Some(open(&old["ciphertext"], "r1"))).await.0, 410);
    assert_eq!(call(r, Some(SERVICE), "POST", "/v1/tenants/acme/decrypt", Some(open(&moved["ciphertext"], "r1"))).await.0, 200);

    // Every change is in the tenant's audit log.
    let (_, log) = call(r, Some(&w.acme_admin), "GET", "/v1/tenants/acme/audit", None).await;
    let reasons: Vec<&str> =
        log.as_array().expect("log").iter().filter(|e| e["kind"] == "keys").filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        ["rotated", "min_decryption", "min_decryption", "min_decryption", "shredded", "erased"],
        "the shredding, then its proof"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_active_tenants_keys_change() {
    let w = world().await;
    let r = &w.router;
    w.broker.revoke(&"acme".parse().expect("id")).await.expect("revoke");
    for (method, path, body) in [
        ("POST", "/v1/tenants/acme/rotate", None),
        ("PUT", "/v1/tenants/acme/min-decryption-generation", Some(json!({ "generation": 1 }))),
        ("POST", "/v1/tenants/acme/shred-retired", None),
        ("POST", "/v1/tenants/acme/rekey", Some(json!({ "region": "us-west-2" }))),
    ] {
        let (status, answer) = call(r, Some(OPERATOR), method, path, body).await;
        assert_eq!((status.as_u16(), answer["error"].as_str()), (409, Some("invalid_state")), "{path}: {answer}");
        assert!(answer["message"].as_str().expect("message").contains("revoked"), "{answer}");
    }
    let acme = w.broker.tenant(&"acme".parse().expect("id")).await.expect("acme");
    assert_eq!(acme.keys.current, 1, "nothing changed");
    let (status, answer) = call(r, Some(OPERATOR), "POST", "/v1/tenants/ghost/rotate", None).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (404, Some("unknown_tenant")));
    let (status, _) = call(r, Some(OPERATOR), "PUT", "/v1/tenants/beta/min-decryption-generation", Some(json!({ "generation": -1 }))).await;
    assert_eq!(status, 400);
}

/// A node that has not heard of another node's rotation still opens the new records: the
/// generation in the header sends it to the store once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_rotation_reloads_once() {
    let w = world().await;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    w.broker.encrypt(&acme, b"c", b"warm the cache").await.expect("gen 1");
    let other = byok_broker::Broker::new(w.broker.config().clone(), w.broker_store(), w.kms.clone(), w.broker.clock().clone());
    other.rotate(&acme).await.expect("rotate on the other node");
    let record = other.encrypt(&acme, b"c", b"from generation 2").await.expect("gen 2");
    assert_eq!(w.broker.decrypt(&acme, b"c", &record).await.expect("reloaded").as_slice(), b"from generation 2");
    // A header naming a generation that does not exist is refused without a reload.
    let mut forged = record.clone();
    forged[1..5].copy_from_slice(&9u32.to_be_bytes());
    let unwraps = w.kms.unwraps.load(std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(w.broker.decrypt(&acme, b"c", &forged).await, Err(byok_broker::BrokerError::Envelope(_))));
    assert_eq!(w.kms.unwraps.load(std::sync::atomic::Ordering::SeqCst), unwraps, "no unwrap for a forged generation");
}

/// `--rotate-after-days`: the leader's pass rotates every active tenant whose generation is
/// that old, and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_rotates_keys_that_are_due() {
    let w = world().await;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    w.broker.revoke(&"beta".parse().expect("id")).await.expect("beta revoked");
    let mut config = w.broker.config().clone();
    config.rotate_after = Some(time::Duration::days(90));
    let start = w.broker.clock().now();
    let clock = std::sync::Arc::new(byok_broker::ManualClock::new(start + time::Duration::days(89)));
    let node = std::sync::Arc::new(byok_broker::Broker::new(config, w.broker_store(), w.kms.clone(), clock.clone()));
    byok_broker::monitor::run_once(&node).await;
    assert_eq!(node.tenant(&acme).await.expect("acme").keys.current, 1, "not due yet");
    clock.advance(time::Duration::days(1));
    byok_broker::monitor::run_once(&node).await;
    let rotated = node.tenant(&acme).await.expect("acme");
    assert_eq!((rotated.keys.current, rotated.keys.rotated_at), (2, start + time::Duration::days(90)));
    assert_eq!(node.tenant(&"beta".parse().expect("id")).await.expect("beta").keys.current, 1, "a revoked tenant is not rotated");
    byok_broker::monitor::run_once(&node).await;
    assert_eq!(node.tenant(&acme).await.expect("acme").keys.current, 2, "counted from the last rotation");
}

/// AWS throttling or away during a rekey is an outage (503, retry), never the customer's key
/// refusing: nothing changes and nothing is written to the customer's audit log as a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_rekey_is_an_outage_not_a_refusal() {
    let w = world().await;
    let west: byok_domain::Region = "us-west-2".parse().expect("region");
    let fault =
        byok_kms::AccessError::Transient { fault: byok_kms::Fault::Throttled, region: Some(west.clone()), message: "slow down".into() };
    w.kms.fail(Some(west), Some(fault));
    let before = w.broker.tenant(&"acme".parse().expect("id")).await.expect("acme");
    let rekey = json!({ "region": "us-west-2", "key": "arn:aws:kms:us-west-2:111122223333:key/replacement" });
    let (status, answer) = call(&w.router, Some(OPERATOR), "POST", "/v1/tenants/acme/rekey", Some(rekey)).await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (503, Some("key_service_unavailable")), "{answer}");
    assert_eq!(w.broker.tenant(&"acme".parse().expect("id")).await.expect("acme"), before, "nothing changed");
    let (_, log) = call(&w.router, Some(&w.acme_admin), "GET", "/v1/tenants/acme/audit", None).await;
    assert!(!log.as_array().expect("log").iter().any(|e| e["kind"] == "keys"), "no refusal recorded: {log}");
}
