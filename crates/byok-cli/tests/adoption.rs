//! Provider-held keys and adoption (issue 21): a tenant that starts on KMS keys byok makes in the
//! provider's own account, is never revoked when those keys fail (the provider's fault), then moves
//! onto keys its customer makes with the real `aws` CLI, online: the switch while a service reads,
//! the provider-held keys scheduled for deletion, records moved with `rewrap/batch` and counted,
//! the adoption finished (older generations shredded), and the customer's own revocation working.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_cli::serve::ServeArgs;
use byok_testkit::aws_ok;
use serde_json::{Value, json};

use crate::support::{api, byok_as, customer, endpoint, provider_account, run_setup, start_with, wait_for};

async fn state(b: &byok_cli::serve::Running, op: &str) -> Value {
    api(b, Some(op), "GET", "/v1/tenants/hooli", None).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_held_tenant_adopts_its_customers_keys_online() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let b = start_with(&data, ServeArgs { monitor_interval_seconds: Some(1), cache_ttl_seconds: Some(1), ..ServeArgs::default() }).await;
    let (op, svc) =
        (b.operator_token.as_deref().expect("operator token").to_string(), b.service_token.as_deref().expect("service token").to_string());
    let api_url = b.api_url();
    let ep = endpoint(&b);
    let (provider, provider_creds) = provider_account(&data).await;

    // Added on provider-held keys: active at once, keys in the provider's own account.
    let out = byok_as(&["tenant", "add", "hooli", "--location", "us", "--mode", "provider"], &api_url, &op);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("provider-held keys (active)"), "{said}{}", String::from_utf8_lossy(&out.stdout));
    let shown = state(&b, &op).await;
    assert_eq!((shown["mode"].as_str(), shown["state"].as_str()), (Some("provider"), Some("active")), "{shown}");
    let provider_keys: Vec<String> =
        shown["regions"].as_array().expect("regions").iter().map(|r| r["key_arn"].as_str().expect("arn").to_string()).collect();
    assert_eq!(provider_keys.len(), 2, "{shown}");
    assert!(provider_keys.iter().all(|k| k.split(':').nth(4) == Some(provider.as_str())), "{provider_keys:?} in {provider}");
    let (status, refused) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "x", "location": "us", "account_id": provider, "mode": "provider" })))
            .await;
    assert_eq!(status, 400, "provider-held tenants have their own route: {refused}");

    let mut records = Vec::new();
    for i in 0..30 {
        let plaintext = STANDARD.encode(format!("hooli record {i}"));
        let context = format!("r{i}");
        let (status, sealed) =
            api(&b, Some(&svc), "POST", "/v1/tenants/hooli/encrypt", Some(json!({ "plaintext": plaintext, "context": context }))).await;
        assert_eq!(status, 200, "{sealed}");
        records.push((json!({ "ciphertext": sealed["ciphertext"], "context": context }), plaintext));
    }

    // The provider's own key fails (disabled by mistake): an outage, never a revocation.
    let region_of = |arn: &str| arn.split(':').nth(3).expect("region").to_string();
    let east = provider_keys.iter().find(|k| region_of(k) == "us-east-1").expect("east key").clone();
    aws_ok(&ep, &provider_creds, "us-east-1", &["kms", "disable-key", "--key-id", &east]).await;
    let seen = wait_for(Duration::from_secs(10), || async {
        let shown = state(&b, &op).await;
        let checked = shown["last_check"]["regions"].as_array().cloned().unwrap_or_default();
        checked.iter().any(|r| r["result"] == "unknown" && r["region"] == "us-east-1").then_some(shown)
    })
    .await;
    let Some(shown) = seen else { panic!("the probe saw the provider-held key fail: {}", state(&b, &op).await) };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(state(&b, &op).await["state"], "active", "a provider-held key's failure never revokes: {shown}");
    let (_, tickets) = api(&b, Some(&op), "GET", "/v1/tickets", None).await;
    assert!(tickets.as_array().is_none_or(Vec::is_empty), "no customer ticket: {tickets}");
    // Both provider-held keys refusing, the cache expired: the data path answers "unavailable"
    // (the provider's outage), not "access denied", and still nothing revokes.
    let west = provider_keys.iter().find(|k| region_of(k) == "us-west-2").expect("west key").clone();
    aws_ok(&ep, &provider_creds, "us-west-2", &["kms", "disable-key", "--key-id", &west]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, refused) = api(&b, Some(&svc), "POST", "/v1/tenants/hooli/decrypt", Some(records[0].0.clone())).await;
    assert_eq!((status, refused["error"].as_str()), (503, Some("key_service_unavailable")), "{refused}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state(&b, &op).await["state"], "active");
    aws_ok(&ep, &provider_creds, "us-west-2", &["kms", "enable-key", "--key-id", &west]).await;
    aws_ok(&ep, &provider_creds, "us-east-1", &["kms", "enable-key", "--key-id", &east]).await;

    // Adoption before the customer's keys exist: refused, named, nothing changed.
    let (account, creds) = customer(&b, "hooli-inc").await;
    let adopt = ["tenant", "adopt", "hooli", "--to", "cmk", "--account-id", &account, "--context-tag", "Hooli1"];
    let out = byok_as(&adopt, &api_url, &op);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("us-east-1"), "{out:?}");
    assert_eq!(state(&b, &op).await["mode"], "provider");

    // The customer runs the printed setup (keys whose policies grant the provider).
    let out = byok_as(&[&adopt[..], &["--setup"]].concat(), &api_url, &op);
    let script = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && script.matches("aws kms create-key").count() == 2, "{script}");
    assert!(script.contains("byok tenant adopt hooli --to cmk"), "{script}");
    run_setup(&b, &creds, &script, &dir.path().join("adopt")).await;

    // A service reads every record while the operator switches the tenant.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = crate::support::keep_reading(api_url.clone(), svc.clone(), "hooli", records.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = byok_as(&adopt, &api_url, &op);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("switched to the customer's keys (cmk, context tag Hooli1)") && said.contains("generation 2"), "{said}");
    assert_eq!(said.matches("disabled, deleted by AWS on").count(), 2, "{said}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = reader.await.expect("reader");
    eprintln!("MEASURE decrypts during adoption: {ok} served, {} failed", failed.len());
    assert!(ok > 0 && failed.is_empty(), "{failed:?}");

    let shown = state(&b, &op).await;
    assert_eq!((shown["mode"].as_str(), shown["context_tag"].as_str()), (Some("cmk"), Some("Hooli1")), "{shown}");
    assert_eq!(shown["keys"]["current"], 2, "{shown}");
    assert!(
        shown["regions"].as_array().expect("regions").iter().all(|r| r["key_arn"].as_str().unwrap_or("").contains(&account)),
        "{shown}"
    );
    for key in &provider_keys {
        let described = aws_ok(&ep, &provider_creds, &region_of(key), &["kms", "describe-key", "--key-id", key]).await;
        assert_eq!(described["KeyMetadata"]["KeyState"], "PendingDeletion", "{described}");
    }

    // Records move onto the fresh generation with rewrap/batch; every node's count reaches the report.
    let out = byok_as(&["tenant", "adoptions"], &api_url, &op);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 adopting; 0 records rewrapped"), "{out:?}");
    let items: Vec<Value> = records.iter().map(|(r, _)| r.clone()).collect();
    let (status, moved) = api(&b, Some(&svc), "POST", "/v1/tenants/hooli/rewrap/batch", Some(json!({ "items": items }))).await;
    assert_eq!((status, moved["failed"].as_u64()), (200, Some(0)), "{moved}");
    let rewrapped: Vec<(Value, String)> = records
        .iter()
        .zip(moved["results"].as_array().expect("results"))
        .map(|((r, p), m)| (json!({ "ciphertext": m["ciphertext"], "context": r["context"] }), p.clone()))
        .collect();
    let counted = wait_for(Duration::from_secs(10), || async {
        let (_, report) = api(&b, Some(&op), "GET", "/v1/adoptions", None).await;
        (report["records_rewrapped"] == 30).then_some(report)
    })
    .await;
    let report = counted.expect("30 records counted within a few seconds");
    assert_eq!((report["adopting"].as_u64(), report["tenants"][0]["phase"].as_str()), (Some(1), Some("adopting")), "{report}");
    let out = byok_as(&["tenant", "adoptions"], &api_url, &op);
    assert!(String::from_utf8_lossy(&out.stdout).contains("hooli: adopting since"), "{out:?}");

    // Finishing needs --yes; then generation 1 is gone: old ciphertexts refused, moved ones open.
    let out = byok_as(&["tenant", "adopt", "hooli", "--finish"], &api_url, &op);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--yes"), "{out:?}");
    let out = byok_as(&["tenant", "adopt", "hooli", "--finish", "--yes"], &api_url, &op);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && said.contains("generations 1 retired and shredded"), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let (status, refused) = api(&b, Some(&svc), "POST", "/v1/tenants/hooli/decrypt", Some(records[0].0.clone())).await;
    assert_eq!((status, refused["error"].as_str()), (410, Some("generation_retired")), "{refused}");
    for (request, plaintext) in &rewrapped {
        let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/hooli/decrypt", Some(request.clone())).await;
        assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())), "{opened}");
    }
    let (_, report) = api(&b, Some(&op), "GET", "/v1/adoptions", None).await;
    assert_eq!((report["adopting"].as_u64(), report["waiting"].as_u64()), (Some(0), Some(0)), "{report}");
    let (_, log) = api(&b, Some(&op), "GET", "/v1/tenants/hooli/audit", None).await;
    let reasons: Vec<&str> = log.as_array().expect("entries").iter().filter_map(|e| e["reason"].as_str()).collect();
    for reason in ["adopted", "provider_keys_destroyed", "adoption_finished"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }

    // Adopting again is refused; and now the customer's decision revokes.
    let out = byok_as(&adopt, &api_url, &op);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already uses the customer's keys"), "{out:?}");
    let customer_key = shown["regions"][0]["key_arn"].as_str().expect("key").to_string();
    aws_ok(&ep, &creds, &region_of(&customer_key), &["kms", "disable-key", "--key-id", &customer_key]).await;
    let revoked = wait_for(Duration::from_secs(15), || async {
        let shown = state(&b, &op).await;
        (shown["state"]["kind"] == "revoked" || shown["state"] == "revoked").then_some(shown)
    })
    .await;
    assert!(revoked.is_some(), "the customer's disabled key revokes: {}", state(&b, &op).await);
    b.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_adoption_reports_each_tenant_and_stops_before_the_next_switch_on_ctrl_c() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs::default()).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let api_url = b.api_url();
    for id in ["f1", "f2", "f3"] {
        let (status, added) = api(&b, Some(&op), "POST", "/v1/provider-held-tenants", Some(json!({ "id": id, "location": "us" }))).await;
        assert_eq!(status, 201, "{added}");
    }
    let (status, again) = api(&b, Some(&op), "POST", "/v1/provider-held-tenants", Some(json!({ "id": "f1", "location": "us" }))).await;
    assert_eq!(status, 409, "{again}");
    let (account, creds) = customer(&b, "fleet-one").await;
    let out = byok_as(&["tenant", "adopt", "f1", "--to", "cmk", "--account-id", &account, "--setup"], &api_url, &op);
    assert!(out.status.success(), "{out:?}");
    run_setup(&b, &creds, &String::from_utf8_lossy(&out.stdout), &dir.path().join("f1")).await;
    let plan = dir.path().join("plan.txt");
    std::fs::write(&plan, format!("# the fleet\nf1 {account} cmk\nf2 444455556666 cmk\nf3 444455556666 byok\n")).expect("plan");

    let mut fleet = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["tenant", "adopt", "--plan", plan.to_str().expect("path"), "--interval", "30", "--api", &api_url, "--token", &op])
        .env("BYOK_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("byok");
    let mut lines = tokio::io::BufReader::new(fleet.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("in time").expect("read").expect("a line");
    assert!(first.starts_with("[1/3] f1 switched in"), "{first}");
    // The operator stops the fleet while it waits before f2.
    let pid = fleet.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
    let mut rest = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.expect("in time").expect("read") {
        rest.push(line);
    }
    let status = fleet.wait().await.expect("exit");
    assert!(!status.success(), "an aborted fleet is not a success: {rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("aborted: 1 of 3 tenants switched; f2")), "{rest:?}");
    let modes: Vec<Value> = modes_of(&b, &op, &["f1", "f2", "f3"]).await;
    assert_eq!(modes, [json!("cmk"), json!("provider"), json!("provider")]);
    let out = byok_as(&["tenant", "adoptions"], &api_url, &op);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("2 tenants on provider-held keys; 1 adopting"), "{out:?}");
    b.stop().await.expect("stop");
}

async fn modes_of(b: &byok_cli::serve::Running, op: &str, ids: &[&str]) -> Vec<Value> {
    let mut modes = Vec::new();
    for id in ids {
        modes.push(api(b, Some(op), "GET", &format!("/v1/tenants/{id}"), None).await.1["mode"].clone());
    }
    modes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_held_tenant_adopts_a_role_based_setup() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let (op, svc) =
        (b.operator_token.as_deref().expect("operator token").to_string(), b.service_token.as_deref().expect("service token").to_string());
    let api_url = b.api_url();
    let (status, added) =
        api(&b, Some(&op), "POST", "/v1/provider-held-tenants", Some(json!({ "id": "umbrella", "location": "eu" }))).await;
    assert_eq!(status, 201, "{added}");
    let plaintext = STANDARD.encode("umbrella record");
    let (status, sealed) =
        api(&b, Some(&svc), "POST", "/v1/tenants/umbrella/encrypt", Some(json!({ "plaintext": plaintext, "context": "u1" }))).await;
    assert_eq!(status, 200, "{sealed}");
    let record = json!({ "ciphertext": sealed["ciphertext"], "context": "u1" });

    let (account, creds) = customer(&b, "umbrella-corp").await;
    let adopt = ["tenant", "adopt", "umbrella", "--to", "byok", "--account-id", &account];
    let out = byok_as(&adopt, &api_url, &op);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("refused the provider"), "no role yet: {out:?}");
    let (status, setup) =
        api(&b, Some(&op), "POST", "/v1/tenants/umbrella/adoption-setup", Some(json!({ "to": "byok", "account_id": account }))).await;
    assert_eq!(status, 200, "{setup}");
    let script = setup["commands"].as_str().expect("commands");
    assert!(script.contains("aws iam create-role") && script.contains("byok tenant adopt umbrella --to byok"), "{script}");
    run_setup(&b, &creds, script, &dir.path().join("umbrella")).await;

    let out = byok_as(&adopt, &api_url, &op);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && said.contains("switched to the customer's keys (byok)"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/umbrella", None).await;
    assert_eq!((shown["mode"].as_str(), shown["keys"]["current"].as_u64()), (Some("byok"), Some(2)), "{shown}");
    assert_eq!(shown["role_arn"].as_str(), setup["role_arn"].as_str(), "{shown}");
    let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/umbrella/decrypt", Some(record)).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())), "through the customer's role now: {opened}");

    // The customer's trust Deny now revokes.
    let mut deny = setup["trust_policy"].clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    let role = setup["role_name"].as_str().expect("role");
    aws_ok(
        &endpoint(&b),
        &creds,
        "eu-central-1",
        &["iam", "update-assume-role-policy", "--role-name", role, "--policy-document", &deny.to_string()],
    )
    .await;
    let revoked = wait_for(Duration::from_secs(15), || async {
        let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/umbrella", None).await;
        (shown["state"] == "revoked").then_some(shown)
    })
    .await;
    assert!(revoked.is_some(), "the customer's role refusing revokes");
    b.stop().await.expect("stop");
}
