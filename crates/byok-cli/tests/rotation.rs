//! Rotation and rekey through `byok serve` with its embedded localcloud, the customer playing
//! their part with the real `aws` CLI: `byok tenant rotate` seals new records under a new
//! generation while old ones keep opening; the customer replaces a region's key and re-points
//! its alias, and `byok tenant rekey` verifies the new key, rewraps every generation and only
//! then switches; every bad replacement is refused with its reason and changes nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_cli::serve::ServeArgs;
use byok_testkit::{Creds, aws::aws_ok};
use serde_json::{Value, json};

use crate::support::{api, customer, endpoint, onboard, start_with};

fn generation(ciphertext: &Value) -> u32 {
    let bytes = STANDARD.decode(ciphertext.as_str().expect("ciphertext")).expect("b64");
    u32::from_be_bytes(bytes[1..5].try_into().expect("header"))
}

async fn byok(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok")).args(args).output().await.expect("byok");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A new key in `region` of the customer's account, with the key policy the setup printed.
async fn new_key(ep: &str, creds: &Creds, region: &str, policy: Option<&Value>) -> String {
    let mut args = vec!["kms", "create-key", "--description", "replacement"];
    let text;
    if let Some(policy) = policy {
        text = policy.to_string();
        args.extend(["--policy", &text]);
    }
    aws_ok(ep, creds, region, &args).await["KeyMetadata"]["Arn"].as_str().expect("arn").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_then_replace_a_regions_key() {
    let dir = tempfile::tempdir().expect("dir");
    // The monitor stays out of the way (its first pass runs before the tenant exists).
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(3600), ..ServeArgs::default() }).await;
    let (op, svc) =
        (b.operator_token.as_deref().expect("operator token").to_string(), b.service_token.as_deref().expect("service token").to_string());
    let (_, creds, added) = onboard(&b, "acme-corp", "acme", "us", dir.path()).await;
    let key_policy = added["instructions"]["key_policy"].clone();
    let admin = added["admin_token"].as_str().expect("token").to_string();
    let seal = |text: &str, context: &str| json!({ "plaintext": STANDARD.encode(text), "context": context });
    let open = |c: &Value, context: &str| json!({ "ciphertext": c, "context": context });
    let (_, first) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(seal("first", "r1"))).await;
    assert_eq!(generation(&first["ciphertext"]), 1);

    // Rotation, with the CLI.
    let (ok, said) = byok(&["tenant", "rotate", "acme", "--api", &b.api_url(), "--token", &op]).await;
    assert!(ok && said.contains("generation 2"), "{said}");
    let (_, second) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(seal("second", "r2"))).await;
    assert_eq!(generation(&second["ciphertext"]), 2);
    for (record, context, text) in [(&first, "r1", "first"), (&second, "r2", "second")] {
        let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(open(&record["ciphertext"], context))).await;
        assert_eq!((status, opened["plaintext"].as_str()), (200, Some(STANDARD.encode(text).as_str())), "{opened}");
    }
    let (status, moved) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/rewrap", Some(open(&first["ciphertext"], "r1"))).await;
    assert_eq!((status, generation(&moved["ciphertext"])), (200, 2), "{moved}");

    // Bad replacements for us-west-2, each refused with its reason; nothing changes.
    let ep = endpoint(&b);
    let (_, before) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    let old_west = before["regions"][1]["key_arn"].as_str().expect("key").to_string();
    let (_, other_creds) = customer(&b, "someone-else").await;
    let foreign = new_key(&ep, &other_creds, "us-west-2", None).await;
    let no_policy = new_key(&ep, &creds, "us-west-2", None).await;
    let disabled = new_key(&ep, &creds, "us-west-2", Some(&key_policy)).await;
    aws_ok(&ep, &creds, "us-west-2", &["kms", "disable-key", "--key-id", &disabled]).await;
    let east = new_key(&ep, &creds, "us-east-1", Some(&key_policy)).await;
    for (key, why) in [
        (foreign.as_str(), "could not be described"),
        (no_policy.as_str(), "could not be described"),
        (disabled.as_str(), "not enabled"),
        (east.as_str(), "us-east-1"),
        (old_west.as_str(), "already"),
    ] {
        let (status, refused) =
            api(&b, Some(&op), "POST", "/v1/tenants/acme/rekey", Some(json!({ "region": "us-west-2", "key": key }))).await;
        assert_eq!((status, refused["error"].as_str()), (422, Some("rekey_refused")), "{key}: {refused}");
        assert!(refused["message"].as_str().expect("message").contains(why), "{key}: {refused}");
    }
    let (status, refused) = api(&b, Some(&op), "POST", "/v1/tenants/acme/rekey", Some(json!({ "region": "eu-west-1" }))).await;
    assert_eq!(status, 422, "{refused}");
    let (_, after) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!((&after["regions"], &after["version"]), (&before["regions"], &before["version"]), "nothing changed");

    // The new key fails half-way (it encrypts, then refuses to decrypt): nothing changes.
    let replacement = new_key(&ep, &creds, "us-west-2", Some(&key_policy)).await;
    let fault = json!({ "service": "kms", "region": "us-west-2", "operation": "Decrypt", "kind": "refuse", "code": "AccessDeniedException", "count": 1 });
    let (status, _) =
        localcloud::admin_client::request_as(&ep, crate::support::admin_token(&b), "POST", "/_localcloud/faults", Some(&fault))
            .await
            .expect("fault");
    assert_eq!(status, 201);
    let rekey = json!({ "region": "us-west-2", "key": replacement });
    let (status, refused) = api(&b, Some(&op), "POST", "/v1/tenants/acme/rekey", Some(rekey.clone())).await;
    assert_eq!(status, 422, "{refused}");
    let (_, after) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!(after["regions"], before["regions"], "a rekey that fails half-way changes nothing");

    // The customer re-points the alias to the replacement; `byok tenant rekey` follows it.
    aws_ok(&ep, &creds, "us-west-2", &["kms", "update-alias", "--alias-name", "alias/byok-acme", "--target-key-id", &replacement]).await;
    let (ok, said) = byok(&["tenant", "rekey", "acme", "--region", "us-west-2", "--api", &b.api_url(), "--token", &op]).await;
    assert!(ok && said.contains(&replacement), "{said}");
    let (_, after) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!(after["regions"][1]["key_arn"], replacement);
    assert_eq!(after["regions"][0], before["regions"][0], "us-east-1 untouched");

    // Proof that us-west-2 now holds every generation under the replacement: the old key
    // disabled, us-east-1 unreachable, and both generations still open (from us-west-2).
    aws_ok(&ep, &creds, "us-west-2", &["kms", "disable-key", "--key-id", &old_west]).await;
    let down = json!({ "service": "kms", "region": "us-east-1", "kind": "drop" });
    assert_eq!(
        localcloud::admin_client::request_as(&ep, crate::support::admin_token(&b), "POST", "/_localcloud/faults", Some(&down))
            .await
            .expect("fault")
            .0,
        201
    );
    for (record, context, text) in [(&first, "r1", "first"), (&second, "r2", "second")] {
        let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(open(&record["ciphertext"], context))).await;
        assert_eq!((status, opened["plaintext"].as_str()), (200, Some(STANDARD.encode(text).as_str())), "{opened}");
    }
    localcloud::admin_client::request_as(&ep, crate::support::admin_token(&b), "DELETE", "/_localcloud/faults", None::<&Value>)
        .await
        .expect("clear");

    // The customer's audit log says what happened, refusals included.
    let (_, log) = api(&b, Some(&admin), "GET", "/v1/tenants/acme/audit?limit=1000", None).await;
    let keys: Vec<(String, String)> = log
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["kind"] == "keys")
        .map(|e| {
            let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap_or("{}")).expect("detail");
            (e["reason"].as_str().unwrap_or("").to_string(), detail["outcome"].as_str().unwrap_or("").to_string())
        })
        .collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(r, o)| (&r[..], &o[..])).collect();
    assert_eq!(keys.first(), Some(&("rotated", "")), "{keys:?}");
    // Five bad keys and the half-way failure (a region the tenant has no key in is the
    // operator's mistake, not a use of the customer's keys).
    assert_eq!(keys.iter().filter(|k| *k == &("rekeyed", "refused")).count(), 6, "{keys:?}");
    // The rekey, then the proof that the replaced key's wrapped copies left the database.
    assert_eq!(keys[keys.len() - 2..], [("rekeyed", "rekeyed"), ("erased", "")], "{keys:?}");
    // Every use of the customer's keys for rotation and rekey is there with its reason (also the
    // STS session name the customer's CloudTrail shows: byok-rotate, byok-rekey).
    let reasons: Vec<&str> =
        log.as_array().expect("log").iter().filter(|e| e["kind"] == "key_use").filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"rotate") && reasons.contains(&"rekey"), "{reasons:?}");
    b.stop().await.expect("stop");
}

/// A customer who replaces a key by re-pointing its alias needs no provider action: the leader's
/// monitor notices and rekeys (and refuses, once, a re-pointing to a key it cannot use).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_pointed_alias_is_followed() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let (op, svc) =
        (b.operator_token.as_deref().expect("operator token").to_string(), b.service_token.as_deref().expect("service token").to_string());
    let (_, creds, added) = onboard(&b, "acme-corp", "acme", "us", dir.path()).await;
    let key_policy = added["instructions"]["key_policy"].clone();
    let (_, sealed) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": STANDARD.encode("kept"), "context": "r1" })))
            .await;
    let ep = endpoint(&b);
    let west = |shown: &Value| shown["regions"][1]["key_arn"].as_str().unwrap_or_default().to_string();
    let (_, before) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;

    // First to a disabled key: refused (once, in the audit log); the old key stays.
    let disabled = new_key(&ep, &creds, "us-west-2", Some(&key_policy)).await;
    aws_ok(&ep, &creds, "us-west-2", &["kms", "disable-key", "--key-id", &disabled]).await;
    aws_ok(&ep, &creds, "us-west-2", &["kms", "update-alias", "--alias-name", "alias/byok-acme", "--target-key-id", &disabled]).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!((west(&shown), &shown["state"]), (west(&before), &json!("active")), "a disabled replacement is not followed");

    // Then to a good replacement: followed within a few passes.
    let replacement = new_key(&ep, &creds, "us-west-2", Some(&key_policy)).await;
    aws_ok(&ep, &creds, "us-west-2", &["kms", "update-alias", "--alias-name", "alias/byok-acme", "--target-key-id", &replacement]).await;
    let started = std::time::Instant::now();
    loop {
        let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
        if west(&shown) == replacement {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the re-pointed alias was not followed: {shown}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, opened) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(json!({ "ciphertext": sealed["ciphertext"], "context": "r1" }))).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(STANDARD.encode("kept").as_str())));
    let (_, log) = api(&b, Some(&op), "GET", "/v1/tenants/acme/audit?limit=10000", None).await;
    let outcomes: Vec<String> = log
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["kind"] == "keys")
        .filter_map(|e| serde_json::from_str::<Value>(e["detail"].as_str()?).ok()?["outcome"].as_str().map(String::from))
        .collect();
    assert_eq!(outcomes, ["refused", "rekeyed"], "one refusal, then the rekey");
    b.stop().await.expect("stop");
}
