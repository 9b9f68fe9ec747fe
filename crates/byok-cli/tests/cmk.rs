//! Customer-managed keys (issue 21): a tenant whose keys grant the provider by key policy alone,
//! through `byok serve` with its embedded localcloud and the customer playing their part with the
//! real `aws` CLI. From `byok tenant add --mode cmk --context-tag` to the setup as printed, the
//! verification, the data plane with no AssumeRole anywhere, the context tag in the customer's
//! trail, revocation by a key scheduled for deletion, a removed grant and a key-policy Deny, and
//! restoration by "ready" on the ticket; and the key-policy canary keeping a fault in the
//! provider's own KMS permissions from ever revoking a CMK customer.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_cli::serve::ServeArgs;
use byok_testkit::aws_ok;
use serde_json::{Value, json};

use crate::support::{admin_token, api, byok_as, customer, endpoint, run_setup, start_with, wait_for};

/// Every trail event since `since` whose call touched `account` or was made by it.
async fn trail(b: &byok_cli::serve::Running, account: &str, since: u64) -> Vec<Value> {
    let bearer = format!("Bearer {}", admin_token(b).expect("the embedded localcloud's admin token"));
    let path = format!("/_localcloud/trail?since={since}&account={account}");
    let (status, body) =
        localcloud::admin_client::send(&endpoint(b), "GET", &path, &[("authorization", bearer.as_str())], Vec::new()).await.expect("trail");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8_lossy(&body).lines().map(|l| serde_json::from_str::<Value>(l).expect("json")).collect()
}

/// A key policy with the account's administration and, unless `provider` is `None`, the
/// provider's statements taken from `full` (what setup wrote) with `effect`.
fn key_policy_with(full: &Value, provider_effect: Option<&str>) -> String {
    let mut policy = full.clone();
    let statements = policy["Statement"].as_array_mut().expect("statements");
    match provider_effect {
        None => statements.retain(|s| s["Sid"] == "AccountAdministration"),
        Some(effect) => {
            for s in statements.iter_mut().filter(|s| s["Sid"] != "AccountAdministration") {
                s["Effect"] = json!(effect);
            }
        }
    }
    policy.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmk_tenant_lives_by_its_key_policy_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let (op, svc) =
        (b.operator_token.as_deref().expect("operator token").to_string(), b.service_token.as_deref().expect("service token").to_string());
    let (account, creds) = customer(&b, "acme-corp").await;
    let ep = endpoint(&b);
    let api_url = b.api_url();

    // A bad context tag, or one on a BYOK tenant, is refused and adds nothing.
    let out = byok_as(
        &["tenant", "add", "acme", "--location", "us", "--account-id", &account, "--mode", "cmk", "--context-tag", "acme-01"],
        &api_url,
        &op,
    );
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("1 to 12 letters and digits"), "{out:?}");
    let (status, refused) = api(
        &b,
        Some(&op),
        "POST",
        "/v1/tenants",
        Some(json!({ "id": "acme", "location": "us", "account_id": account, "context_tag": "Acme01" })),
    )
    .await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_request")), "{refused}");
    assert_eq!(api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await.0, 404, "nothing was added");

    // Added from the CLI: the tag is shown back for confirmation, and the setup has no role.
    let out = byok_as(
        &["tenant", "add", "acme", "--location", "us", "--account-id", &account, "--mode", "cmk", "--context-tag", "Acme01"],
        &api_url,
        &op,
    );
    let (script, said) = (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string());
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Context tag: Acme01") && said.contains("cannot be changed once the tenant is active"), "{said}");
    assert!(!script.contains("create-role") && !script.contains("sts:AssumeRole") && !script.contains("ExternalId"), "{script}");
    assert!(script.contains(&b.provider_role_arn) && script.contains("\"kms:EncryptionContext:byok:context-tag\": \"Acme01\""), "{script}");
    for (format, role_resource) in [("cloudformation", "AWS::IAM::Role"), ("terraform", "aws_iam_role")] {
        let out = byok_as(&["tenant", "setup", "acme", "--format", format], &api_url, &op);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && !text.contains(role_resource), "{format}: {text}");
        assert!(text.contains("byok:context-tag") && text.contains(&b.provider_role_arn), "{format}: {text}");
    }
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!(
        (shown["mode"].as_str(), shown["context_tag"].as_str(), shown.get("role_arn")),
        (Some("cmk"), Some("Acme01"), None),
        "{shown}"
    );

    // Verified before the keys exist: each region says what is missing.
    let (status, early) = api(&b, Some(&op), "POST", "/v1/tenants/acme/verify", None).await;
    assert_eq!(status, 422, "{early}");
    assert!(
        early["regions"]
            .as_array()
            .expect("regions")
            .iter()
            .all(|r| r["problem"].as_str().is_some_and(|p| p.contains("no key with alias"))),
        "{early}"
    );
    let since = trail(&b, &account, 0).await.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    run_setup(&b, &creds, &script, dir.path()).await;
    let (status, verified) = api(&b, Some(&op), "POST", "/v1/tenants/acme/verify", None).await;
    assert_eq!((status, verified["ok"].as_bool()), (200, Some(true)), "{verified}");

    let plaintext = STANDARD.encode("a cmk tenant's record");
    let (status, sealed) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": plaintext, "context": "r1" }))).await;
    assert_eq!(status, 200, "{sealed}");
    let decrypt = json!({ "ciphertext": sealed["ciphertext"], "context": "r1" });
    let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())));
    tokio::time::sleep(Duration::from_millis(2500)).await; // a few monitor passes

    // The customer's own trail: the provider role itself used the keys, never an AssumeRole,
    // and every use carries the tenant and the context tag in its encryption context.
    let events = trail(&b, &account, since).await;
    let provider_uses: Vec<&Value> = events
        .iter()
        .filter(|e| e["user_identity"]["arn"].as_str().is_some_and(|a| a.contains("assumed-role/Cryptor-OSB-Provider/")))
        .collect();
    assert!(events.iter().all(|e| e["event_name"] != "AssumeRole"), "no role, no AssumeRole: {events:?}");
    for name in ["DescribeKey", "Encrypt", "Decrypt"] {
        assert!(provider_uses.iter().any(|e| e["event_name"] == name), "no {name} by the provider in {events:?}");
    }
    for e in provider_uses.iter().filter(|e| e["event_name"] == "Encrypt" || e["event_name"] == "Decrypt") {
        assert_eq!(e["encryption_context"]["byok:context-tag"], "Acme01", "{e}");
        assert_eq!(e["encryption_context"]["byok:tenant"], "acme", "{e}");
        assert_eq!(e["recipient_account_id"].as_str(), Some(account.as_str()), "{e}");
    }

    // Revocation: the customer schedules the us-west-2 key for deletion.
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    let key = |i: usize| shown["regions"][i]["key_arn"].as_str().expect("key").to_string();
    let (east_key, west_key) = (key(0), key(1));
    aws_ok(&ep, &creds, "us-west-2", &["kms", "schedule-key-deletion", "--key-id", &west_key, "--pending-window-in-days", "7"]).await;
    let revoked = wait_for(Duration::from_secs(30), || async {
        let (status, body) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
        (status == 403 && body["error"] == "tenant_keys_revoked").then_some(())
    })
    .await;
    assert!(revoked.is_some(), "the monitor did not revoke the cmk tenant");
    let ticket = {
        let (_, tickets) = api(&b, Some(&op), "GET", "/v1/tickets", None).await;
        assert_eq!(tickets.as_array().map(Vec::len), Some(1), "{tickets}");
        assert_eq!(tickets[0]["title"].as_str(), Some(format!("BYOK revocation started for AWS account {account}").as_str()));
        let (_, detail) = api(&b, Some(&op), "GET", &format!("/v1/tickets/{}", tickets[0]["id"]), None).await;
        let body = detail["comments"][0]["body"].as_str().expect("opening").to_string();
        assert!(body.contains("us-west-2: the key is scheduled for deletion"), "{body}");
        assert!(body.contains("customer-managed keys section") && !body.contains("IAM >"), "the ticket names key steps, no role: {body}");
        tickets[0]["id"].as_i64().expect("id")
    };
    let (_, status_now) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    let denied: Vec<(&str, &str)> = status_now["last_check"]["regions"]
        .as_array()
        .expect("checklist")
        .iter()
        .filter(|r| r["result"] == "denied")
        .map(|r| (r["region"].as_str().unwrap_or_default(), r["denial"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(denied, [("us-west-2", "key_pending_deletion")], "{status_now}");

    // While revoked the customer also takes the provider's statements out of the us-east-1 key
    // policy: "ready" is refused and names both regions and their steps.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("byok-key-policy-acme.json")).expect("the policy setup wrote"))
            .expect("json");
    aws_ok(
        &ep,
        &creds,
        "us-east-1",
        &["kms", "put-key-policy", "--key-id", &east_key, "--policy-name", "default", "--policy", &key_policy_with(&written, None)],
    )
    .await;
    let admin = said.split_whitespace().find(|w| w.starts_with("byok_tenant_")).expect("the admin token `tenant add` printed").to_string();
    let (status, answer) = api(&b, Some(&admin), "POST", "/v1/tenants/acme/restore", None).await;
    assert_eq!(status, 409, "{answer}");
    let missing: Vec<String> =
        answer["missing"].as_array().expect("missing").iter().filter_map(Value::as_str).map(str::to_string).collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing[0].starts_with("us-east-1:") && missing[0].contains("no longer lets the provider use the key"), "{missing:?}");
    assert!(missing[0].contains("file://byok-key-policy-acme.json"), "{missing:?}");
    assert!(missing[1].starts_with("us-west-2:") && missing[1].contains("cancel-key-deletion"), "{missing:?}");

    // The customer runs the commands as printed (in the directory setup ran in), then says ready.
    for step in &missing {
        let (_, command) = step.rsplit_once(" (").expect("a command in parentheses");
        for call in command.trim_end_matches(')').split(" && ") {
            let words: Vec<&str> = call.split_whitespace().collect();
            assert_eq!(words[0], "aws", "{call}");
            let at = words.iter().position(|w| *w == "--region").expect("--region");
            let args: Vec<String> = words[1..]
                .iter()
                .enumerate()
                .filter(|(i, _)| *i + 1 != at && *i + 1 != at + 1)
                .map(|(_, w)| match w.strip_prefix("file://") {
                    Some(file) => std::fs::read_to_string(dir.path().join(file)).expect("the policy file setup wrote"),
                    None => (*w).to_string(),
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            aws_ok(&ep, &creds, words[at + 1], &args).await;
        }
    }
    let (status, answer) =
        api(&b, Some(&admin), "POST", &format!("/v1/tickets/{ticket}/comments"), Some(json!({ "body": "Done, ready for restoration" })))
            .await;
    assert_eq!((status, answer["restoration"]["restored"].as_bool()), (201, Some(true)), "{answer}");
    let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())), "{opened}");

    // A key-policy Deny for the provider revokes too.
    aws_ok(
        &ep,
        &creds,
        "us-east-1",
        &["kms", "put-key-policy", "--key-id", &east_key, "--policy-name", "default", "--policy", &key_policy_with(&written, Some("Deny"))],
    )
    .await;
    let revoked = wait_for(Duration::from_secs(30), || async {
        let (_, s) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
        (s["state"] == "revoked").then_some(s)
    })
    .await
    .expect("a key-policy Deny did not revoke");
    let east = &revoked["last_check"]["regions"][0];
    assert_eq!((east["region"].as_str(), east["denial"].as_str()), (Some("us-east-1"), Some("key_policy")), "{revoked}");
    // The customer's own root is never locked out of its key by any of this.
    aws_ok(&ep, &creds, "us-east-1", &["kms", "describe-key", "--key-id", &east_key]).await;
    b.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_policy_canary_keeps_a_provider_fault_from_revoking_cmk_tenants() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let (account, creds) = customer(&b, "globex").await;
    let (status, added) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "globex", "location": "de", "account_id": account, "mode": "cmk" })))
            .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["instructions"]["mode"], "cmk");
    assert!(added["instructions"].get("context_tag").is_none() && added["instructions"].get("role_name").is_none(), "{added}");
    run_setup(&b, &creds, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
    assert_eq!(api(&b, Some(&op), "POST", "/v1/tenants/globex/verify", None).await.0, 200);
    let healthy =
        wait_for(Duration::from_secs(10), || async { (api(&b, None, "GET", "/healthz", None).await.1["status"] == "ok").then_some(()) })
            .await;
    assert!(healthy.is_some());

    // The provider's own identity policy loses its customer-managed-key statements (a bad
    // deploy, an SCP): every CMK key now refuses the provider — and so does the canary's.
    let (provider_account, root) = crate::support::provider_account(&dir.path().join("data")).await;
    let ep = endpoint(&b);
    let full = byok_broker::setup::provider_role_policy(&provider_account);
    let mut broken: Value = serde_json::from_str(&full).expect("policy");
    broken["Statement"]
        .as_array_mut()
        .expect("statements")
        .retain(|s| !s["Sid"].as_str().unwrap_or_default().contains("CustomerManagedKeys"));
    let put = async |policy: &str| {
        let args = [
            "iam",
            "put-role-policy",
            "--role-name",
            "Cryptor-OSB-Provider",
            "--policy-name",
            "byok-provider",
            "--policy-document",
            policy,
        ];
        aws_ok(&ep, &root, "us-east-1", &args).await;
    };
    put(&broken.to_string()).await;
    let degraded = wait_for(Duration::from_secs(15), || async {
        (api(&b, None, "GET", "/healthz", None).await.1["status"] == "degraded").then_some(())
    })
    .await;
    assert!(degraded.is_some(), "the key-policy canary did not catch the provider's fault");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, tenant) = api(&b, Some(&op), "GET", "/v1/tenants/globex", None).await;
    assert_eq!(tenant["state"], "active", "a provider fault is never a cmk customer's revocation: {tenant}");
    assert_eq!(api(&b, Some(&op), "GET", "/v1/tickets", None).await.1, json!([]));
    let (_, alerts) = api(&b, Some(&op), "GET", "/v1/alerts?open=true", None).await;
    let alert = alerts[0]["body"].as_str().unwrap_or_default().to_string() + alerts[0]["title"].as_str().unwrap_or_default();
    assert!(alert.contains("key-policy canary"), "{alerts}");

    // Put back: healthy again, and the tenant never moved.
    put(&full).await;
    let healthy =
        wait_for(Duration::from_secs(15), || async { (api(&b, None, "GET", "/healthz", None).await.1["status"] == "ok").then_some(()) })
            .await;
    assert!(healthy.is_some(), "healthz stayed degraded");
    let (_, tenant) = api(&b, Some(&op), "GET", "/v1/tenants/globex", None).await;
    assert_eq!(tenant["state"], "active");
    let _ = creds;
    b.stop().await.expect("stop");
}

/// Issue 21 item 4: a live role-based tenant moves onto customer-managed keys while a product
/// service keeps reading its records: refused (and nothing changed) until the customer's key
/// policies grant the provider, then switched in one write with no failed request; afterwards
/// the role is not used at all, so the customer can take it away without revoking anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_byok_tenant_moves_to_cmk_while_served() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let (op, svc) =
        (b.operator_token.as_deref().expect("operator token").to_string(), b.service_token.as_deref().expect("service token").to_string());
    let (account, creds, added) = crate::support::onboard(&b, "initech", "initech", "us", dir.path()).await;
    let api_url = b.api_url();
    let mut records = Vec::new();
    for i in 0..20 {
        let plaintext = STANDARD.encode(format!("record {i}"));
        let context = format!("r{i}");
        let (status, sealed) =
            api(&b, Some(&svc), "POST", "/v1/tenants/initech/encrypt", Some(json!({ "plaintext": plaintext, "context": context }))).await;
        assert_eq!(status, 200, "{sealed}");
        records.push((json!({ "ciphertext": sealed["ciphertext"], "context": context }), plaintext));
    }

    // Before the customer grants the provider: refused, named, nothing changed.
    let out = byok_as(&["tenant", "migrate", "initech", "--to", "cmk", "--context-tag", "Initech1"], &api_url, &op);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("refused in us-east-1") && said.contains("grant the provider"), "{said}");
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/initech", None).await;
    assert_eq!((shown["mode"].as_str(), shown["state"].as_str()), (Some("byok"), Some("active")), "{shown}");

    // The customer runs the printed setup: the provider's statements beside the role's.
    let out = byok_as(&["tenant", "migrate", "initech", "--to", "cmk", "--context-tag", "Initech1", "--setup"], &api_url, &op);
    let script = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && script.matches("aws kms put-key-policy").count() == 2, "{script}");
    run_setup(&b, &creds, &script, &dir.path().join("migrate")).await;

    // A product service reads every record in a loop while the operator moves the tenant.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = crate::support::keep_reading(api_url.clone(), svc.clone(), "initech", records.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = byok_as(&["tenant", "migrate", "initech", "--to", "cmk", "--context-tag", "Initech1"], &api_url, &op);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("switched to customer-managed keys, context tag Initech1") && said.contains("generations 1 rewrapped"), "{said}");
    let switched = trail(&b, &account, 0).await.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = reader.await.expect("reader");
    eprintln!("MEASURE decrypts during the move to CMK: {ok} served, {} failed", failed.len());
    assert!(ok > 0 && failed.is_empty(), "{failed:?}");

    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/initech", None).await;
    assert_eq!(
        (shown["mode"].as_str(), shown["context_tag"].as_str(), shown.get("role_arn")),
        (Some("cmk"), Some("Initech1"), None),
        "{shown}"
    );
    let (_, log) = api(&b, Some(&op), "GET", "/v1/tenants/initech/audit", None).await;
    assert!(log.as_array().expect("entries").iter().any(|e| e["reason"] == "migrated"), "{log}");

    // The customer takes the role away: nothing revokes, every record still opens (the key
    // cache purged at the switch, so through the provider's own use of the keys).
    let role = added["instructions"]["role_name"].as_str().expect("role");
    let mut deny = added["instructions"]["trust_policy"].clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    aws_ok(
        &endpoint(&b),
        &creds,
        "us-east-1",
        &["iam", "update-assume-role-policy", "--role-name", role, "--policy-document", &deny.to_string()],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (request, plaintext) in &records {
        let (status, opened) = api(&b, Some(&svc), "POST", "/v1/tenants/initech/decrypt", Some(request.clone())).await;
        assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())), "{opened}");
    }
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/initech", None).await;
    assert_eq!(shown["state"], "active", "{shown}");
    let after = trail(&b, &account, switched).await;
    assert!(after.iter().all(|e| e["event_name"] != "AssumeRole"), "the role is not used after the switch: {after:?}");
    let used = after.iter().filter(|e| e["event_name"] == "Decrypt" && e["encryption_context"]["byok:context-tag"] == "Initech1").count();
    assert!(used > 0, "the provider uses the keys itself, under the tag: {after:?}");
    // Moving again is refused: it already uses customer-managed keys.
    let out = byok_as(&["tenant", "migrate", "initech", "--to", "cmk"], &api_url, &op);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already uses customer-managed keys"), "{out:?}");
    b.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_role_based_tenants_moves_to_cmk_from_a_plan() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs::default()).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let api_url = b.api_url();
    let (_, creds, _) = crate::support::onboard(&b, "fleet-a", "fa", "us", &dir.path().join("a")).await;
    crate::support::onboard(&b, "fleet-b", "fb", "us", &dir.path().join("b")).await;
    // fa's customer granted the provider; fb's has not yet.
    let out = byok_as(&["tenant", "migrate", "fa", "--to", "cmk", "--context-tag", "FleetA", "--setup"], &api_url, &op);
    assert!(out.status.success(), "{out:?}");
    run_setup(&b, &creds, &String::from_utf8_lossy(&out.stdout), &dir.path().join("grant")).await;
    let plan = dir.path().join("plan.txt");
    std::fs::write(&plan, "# the fleet\nfa FleetA\nfb   # not granted yet\n").expect("plan");

    let out = byok_as(&["tenant", "migrate", "--plan", plan.to_str().expect("path"), "--to", "cmk"], &api_url, &op);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not switched: fb"), "{out:?}");
    assert!(said.contains("[1/2] fa switched to customer-managed keys in") && said.contains("[2/2] fb refused:"), "{said}");
    assert!(said.contains("1 of 2 tenants switched"), "{said}");
    let (_, fa) = api(&b, Some(&op), "GET", "/v1/tenants/fa", None).await;
    let (_, fb) = api(&b, Some(&op), "GET", "/v1/tenants/fb", None).await;
    assert_eq!((fa["mode"].as_str(), fa["context_tag"].as_str(), fb["mode"].as_str()), (Some("cmk"), Some("FleetA"), Some("byok")));
    b.stop().await.expect("stop");
}
