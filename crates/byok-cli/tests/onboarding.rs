//! Issue 3's user journey: onboarding with the printed commands, the data plane over HTTP
//! and in-process, refusals with their messages, isolation, tampering, restart.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use byok_testkit::aws_ok;
use serde_json::{Value, json};

use crate::support::{api, customer, endpoint, restart, run_setup, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_onboards_a_tenant_and_encrypts() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start(&dir.path().join("data")).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let svc = b.service_token.as_deref().expect("service token").to_string();
    let (account, creds) = customer(&b, "acme-corp").await;

    let (status, added) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "acme", "location": "us", "account_id": account }))).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["tenant"]["state"], "onboarding");
    let script = added["instructions"]["commands"].as_str().expect("commands");
    assert!(script.contains(b.provider_role_arn.as_str()) && script.contains("sts:ExternalId"), "{script}");
    let (status, early) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": "aGk=" }))).await;
    assert_eq!((status, early["error"].as_str()), (409, Some("tenant_not_active")));

    run_setup(&b, &creds, script, dir.path()).await;
    let (status, verified) = api(&b, Some(&op), "POST", "/v1/tenants/acme/verify", None).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["regions"].as_array().map(Vec::len), Some(2));
    let (_, shown) = api(&b, Some(&op), "GET", "/v1/tenants/acme", None).await;
    assert_eq!(shown["state"], "active");
    assert_eq!(shown["regions"][0]["region"], "us-east-1", "nearest region first");

    // JSON over HTTP, then raw bytes, then in-process: each opens what the others sealed.
    let plaintext = STANDARD.encode(b"the tenant's record");
    let (status, sealed) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": plaintext, "context": "issue-42" }))).await;
    assert_eq!(status, 200, "{sealed}");
    let ciphertext = sealed["ciphertext"].as_str().expect("ciphertext").to_string();
    let (status, opened) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(json!({ "ciphertext": ciphertext, "context": "issue-42" }))).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())));
    let tenant = "acme".parse().expect("id");
    let in_process = b.broker.decrypt(&tenant, b"issue-42", &STANDARD.decode(&ciphertext).expect("b64")).await.expect("in-process decrypt");
    assert_eq!(in_process.as_slice(), b"the tenant's record");
    let raw = raw_call(&b, &svc, "encrypt", "issue-43", b"raw bytes").await;
    assert_eq!(raw.0, 200);
    let back = raw_call(&b, &svc, "decrypt", "issue-43", &raw.1).await;
    assert_eq!((back.0, back.1.as_slice()), (200, &b"raw bytes"[..]));

    // Tampering and the wrong record are refused, never answered with garbage.
    let mut tampered = STANDARD.decode(&ciphertext).expect("b64");
    tampered[40] ^= 1;
    let (status, err) = api(
        &b,
        Some(&svc),
        "POST",
        "/v1/tenants/acme/decrypt",
        Some(json!({ "ciphertext": STANDARD.encode(&tampered), "context": "issue-42" })),
    )
    .await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_ciphertext")));
    let (status, _) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(json!({ "ciphertext": ciphertext, "context": "issue-41" }))).await;
    assert_eq!(status, 400);

    // Isolation: a second tenant in another account cannot read acme's records, and tokens
    // reach only what their scope allows.
    let (account2, creds2) = customer(&b, "beta-corp").await;
    let (_, added2) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "beta", "location": "us", "account_id": account2 }))).await;
    run_setup(&b, &creds2, added2["instructions"]["commands"].as_str().expect("commands"), &tempdir_in(dir.path(), "beta")).await;
    assert_eq!(api(&b, Some(&op), "POST", "/v1/tenants/beta/verify", None).await.0, 200);
    let (status, _) =
        api(&b, Some(&svc), "POST", "/v1/tenants/beta/decrypt", Some(json!({ "ciphertext": ciphertext, "context": "issue-42" }))).await;
    assert_eq!(status, 400, "acme's record does not open as beta's");
    let acme_admin = added["admin_token"].as_str().expect("token");
    assert_eq!(api(&b, Some(acme_admin), "GET", "/v1/tenants/acme", None).await.0, 200);
    // A product service that serves acme alone gets a token for acme alone, from the CLI.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["token", "create", "--kind", "service", "--tenant", "acme", "--api", &b.api_url(), "--token", &op])
        .output()
        .await
        .expect("byok token create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let acme_only = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let encrypt = json!({ "plaintext": "aGk=", "context": "r" });
    assert_eq!(api(&b, Some(&acme_only), "POST", "/v1/tenants/acme/encrypt", Some(encrypt.clone())).await.0, 200);
    assert_eq!(api(&b, Some(&acme_only), "POST", "/v1/tenants/beta/encrypt", Some(encrypt.clone())).await.0, 403, "not beta's");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["token", "create", "--kind", "service", "--api", &b.api_url(), "--token", &op])
        .output()
        .await
        .expect("byok token create");
    assert!(!out.status.success(), "every tenant only when asked for (--all-tenants)");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["token", "list", "--api", &b.api_url(), "--token", &op])
        .output()
        .await
        .expect("byok token list");
    assert!(String::from_utf8_lossy(&out.stdout).contains("(all tenants)"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(api(&b, Some(acme_admin), "GET", "/v1/tenants/beta", None).await.0, 404, "another tenant's admin learns nothing");
    assert_eq!(
        api(&b, Some(acme_admin), "POST", "/v1/tenants/acme/decrypt", Some(json!({ "ciphertext": ciphertext, "context": "issue-42" })))
            .await
            .0,
        403
    );
    assert_eq!(api(&b, Some(acme_admin), "GET", "/v1/tenants", None).await.0, 403);
    assert_eq!(api(&b, Some(&svc), "GET", "/v1/tenants/acme", None).await.0, 403);
    assert_eq!(api(&b, Some("byok_op_wrong"), "GET", "/v1/tenants", None).await.0, 401);
    assert_eq!(api(&b, None, "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": "aGk=" }))).await.0, 401);

    // Bad requests get the API's error body.
    for (body, want) in
        [(json!({ "plaintext": "%%%" }), "invalid_request"), (json!({ "plaintext": "aGk=", "extra": 1 }), "invalid_request")]
    {
        let (status, err) = api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(body)).await;
        assert_eq!((status, err["error"].as_str()), (400, Some(want)), "{err}");
    }
    assert_eq!(api(&b, Some(&svc), "POST", "/v1/tenants/Not_Valid/encrypt", Some(json!({ "plaintext": "aGk=" }))).await.0, 400);
    assert_eq!(
        api(&b, Some(&svc), "POST", "/v1/tenants/ghost/encrypt", Some(json!({ "plaintext": "aGk=" }))).await.1["error"],
        "unknown_tenant"
    );
    let big = STANDARD.encode(vec![0u8; 2 * 1024 * 1024]);
    assert_eq!(api(&b, Some(&svc), "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": big }))).await.0, 413);

    // Metrics count cache hits and KMS calls by outcome.
    let metrics = text(&b, "/metrics").await;
    assert!(metrics.contains("byok_key_cache_hits_total"), "{metrics}");
    assert!(metrics.contains("byok_kms_calls_total{operation=\"Decrypt\",outcome=\"ok\"}"), "{metrics}");
    assert!(metrics.contains("byok_http_requests_total{method=\"POST\",route=\"/v1/tenants/{id}/encrypt\",status=\"200\"}"), "{metrics}");
    let openapi: Value = serde_json::from_str(&text(&b, "/openapi.json").await).expect("openapi");
    for path in [
        "/v1/tenants",
        "/v1/tenants/{id}",
        "/v1/tenants/{id}/verify",
        "/v1/tenants/{id}/encrypt",
        "/v1/tenants/{id}/decrypt",
        "/healthz",
        "/metrics",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} missing from openapi.json");
    }

    // A revoked tenant is refused at once, with its deadline.
    b.broker.revoke(&"beta".parse().expect("id")).await.expect("revoke");
    let (status, err) = api(&b, Some(&svc), "POST", "/v1/tenants/beta/encrypt", Some(json!({ "plaintext": "aGk=" }))).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("tenant_keys_revoked")));
    assert!(err["deadline"].as_str().is_some(), "{err}");

    // A restart (broker and embedded localcloud) keeps everything decryptable.
    let localcloud_addr = b.localcloud.as_ref().expect("embedded").addr;
    b.stop().await.expect("stop");
    let b = restart(&dir.path().join("data"), localcloud_addr).await;
    let (status, opened) =
        api(&b, Some(&svc), "POST", "/v1/tenants/acme/decrypt", Some(json!({ "ciphertext": ciphertext, "context": "issue-42" }))).await;
    assert_eq!((status, opened["plaintext"].as_str()), (200, Some(plaintext.as_str())), "{opened}");
    assert_eq!(api(&b, Some(&svc), "POST", "/v1/tenants/beta/encrypt", Some(json!({ "plaintext": "aGk=" }))).await.0, 403, "still revoked");
    b.stop().await.expect("stop");
}

fn tempdir_in(base: &std::path::Path, name: &str) -> std::path::PathBuf {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

async fn text(b: &byok_cli::serve::Running, path: &str) -> String {
    let stream = tokio::net::TcpStream::connect(b.api).await.expect("connect");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder().uri(path).header("host", "x").body(http_body_util::Empty::<bytes::Bytes>::new()).expect("req");
    let resp = tx.send_request(req).await.expect("send");
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn raw_call(b: &byok_cli::serve::Running, token: &str, op: &str, context: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let stream = tokio::net::TcpStream::connect(b.api).await.expect("connect");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("/v1/tenants/acme/{op}"))
        .header("host", "x")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .header("x-byok-context", context)
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(body)))
        .expect("req");
    let resp = tx.send_request(req).await.expect("send");
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
    (status, bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_refusals_say_what_to_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start(&dir.path().join("data")).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let add = |id: &'static str, account: String| {
        let op = op.clone();
        let b = &b;
        async move {
            let (status, added) =
                api(b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": id, "location": "us", "account_id": account }))).await;
            assert_eq!(status, 201, "{added}");
            added["instructions"]["commands"].as_str().expect("commands").to_string()
        }
    };
    let verify = |id: &'static str| {
        let op = op.clone();
        let b = &b;
        async move { api(b, Some(&op), "POST", &format!("/v1/tenants/{id}/verify"), None).await }
    };

    // A legacy trust policy: no sts:ExternalId condition. Refused, saying which condition.
    let (account, creds) = customer(&b, "legacy-corp").await;
    let script = add("legacy", account).await;
    let without_condition = with_policy(&script, |policy| {
        policy["Statement"][0].as_object_mut().expect("statement").remove("Condition");
    });
    run_setup(&b, &creds, &without_condition, &dir.path().join("legacy")).await;
    let (status, v) = verify("legacy").await;
    assert_eq!(status, 422, "{v}");
    assert!(v["trust_problem"].as_str().is_some_and(|p| p.contains("without the external id") && p.contains("sts:ExternalId")), "{v}");

    // A disabled key in one region: that region is named, with the command that fixes it.
    let (account, creds) = customer(&b, "disabled-corp").await;
    let script = add("disabled", account).await;
    run_setup(&b, &creds, &script, &dir.path().join("disabled")).await;
    // DisableKey takes a key id or ARN, not an alias (as on AWS): look it up first.
    let described = aws_ok(&endpoint(&b), &creds, "us-west-2", &["kms", "describe-key", "--key-id", "alias/byok-disabled"]).await;
    let west_key = described["KeyMetadata"]["Arn"].as_str().expect("arn").to_string();
    aws_ok(&endpoint(&b), &creds, "us-west-2", &["kms", "disable-key", "--key-id", &west_key]).await;
    let (status, v) = verify("disabled").await;
    assert_eq!(status, 422, "{v}");
    let regions = v["regions"].as_array().expect("regions");
    assert_eq!(regions[0]["ok"], true);
    let west = regions[1]["problem"].as_str().unwrap_or_default();
    assert!(west.contains("Disabled") && west.contains("aws kms enable-key --region us-west-2"), "{west}");
    aws_ok(&endpoint(&b), &creds, "us-west-2", &["kms", "enable-key", "--key-id", &west_key]).await;
    let (status, v) = verify("disabled").await;
    assert_eq!(status, 200, "fixed as told, it verifies: {v}");

    // Trust Deny: the role cannot be assumed at all.
    let (account, creds) = customer(&b, "deny-corp").await;
    let script = add("denied", account).await;
    let deny = with_policy(&script, |policy| policy["Statement"][0]["Effect"] = json!("Deny"));
    run_setup(&b, &creds, &deny, &dir.path().join("denied")).await;
    let (status, v) = verify("denied").await;
    assert_eq!(status, 422, "{v}");
    assert!(v["trust_problem"].as_str().is_some_and(|p| p.contains("cannot assume")), "{v}");
    assert!(v["regions"][0]["problem"].as_str().is_some_and(|p| p.contains("role must be fixed first")), "{v}");

    // A missing key: the customer skipped a region.
    let (account, creds) = customer(&b, "partial-corp").await;
    let script = add("partial", account).await;
    let only_east = script.split("\n# 3.").next().expect("part").to_string();
    run_setup(&b, &creds, &only_east, &dir.path().join("partial")).await;
    let (status, v) = verify("partial").await;
    assert_eq!(status, 422);
    assert!(v["regions"][1]["problem"].as_str().is_some_and(|p| p.contains("no key with alias alias/byok-partial in us-west-2")), "{v}");
    b.stop().await.expect("stop");
}

/// The script with its trust policy changed by `edit` (to get the setup wrong on purpose).
fn with_policy(script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let (head, rest) = script.split_once("<<'POLICY'\n").expect("heredoc");
    let (policy, tail) = rest.split_once("\nPOLICY\n").expect("heredoc end");
    let mut policy: Value = serde_json::from_str(policy).expect("policy JSON");
    edit(&mut policy);
    format!("{head}<<'POLICY'\n{policy}\nPOLICY\n{tail}")
}

/// Two tenants whose keys are in the same AWS account: each setup gets its own role and its own
/// policy files, so the second neither overwrites the first's files nor stops on
/// EntityAlreadyExists; both verify. Each key carries the least-privilege policy printed: the
/// account administers, the role only describes and uses it for its tenant's context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_in_one_account_get_their_own_role_and_files() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start(&dir.path().join("data")).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let (account, creds) = customer(&b, "shared-corp").await;
    let mut roles = Vec::new();
    for tenant in ["wiki", "tracker"] {
        let (status, added) =
            api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": tenant, "location": "de", "account_id": account }))).await;
        assert_eq!(status, 201, "{added}");
        // Both scripts run in the same directory, one after the other.
        run_setup(&b, &creds, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
        let (status, verified) = api(&b, Some(&op), "POST", &format!("/v1/tenants/{tenant}/verify"), None).await;
        assert_eq!(status, 200, "{verified}");
        roles.push(added["instructions"]["role_name"].as_str().expect("role").to_string());
        let key_policy = &added["instructions"]["key_policy"];
        let sids: Vec<&str> = key_policy["Statement"].as_array().expect("statements").iter().filter_map(|s| s["Sid"].as_str()).collect();
        assert_eq!(sids, ["AccountAdministration", "ByokDescribeKey", "ByokTenantKeyUse"], "{key_policy}");
        assert_eq!(key_policy["Statement"][2]["Condition"]["StringEquals"]["kms:EncryptionContext:byok:tenant"], tenant);
        // The key in AWS has that very policy.
        let (_, status) = api(&b, Some(&op), "GET", &format!("/v1/tenants/{tenant}"), None).await;
        let key = status["regions"][0]["key_arn"].as_str().expect("key").to_string();
        let got =
            aws_ok(&endpoint(&b), &creds, "eu-central-1", &["kms", "get-key-policy", "--key-id", &key, "--policy-name", "default"]).await;
        let policy: Value = serde_json::from_str(got["Policy"].as_str().expect("policy")).expect("json");
        assert_eq!(&policy, key_policy);
    }
    assert_eq!(roles, ["byok-key-management", "byok-key-management-tracker"]);
    for file in
        ["byok-trust-policy-wiki.json", "byok-trust-policy-tracker.json", "byok-key-policy-wiki.json", "byok-key-policy-tracker.json"]
    {
        assert!(dir.path().join(file).exists(), "{file}");
    }
}

/// The printed setup without its key-policy grant (keys created with the default policy, as a
/// hurried admin might): AWS refuses the role, and so does localcloud; verify names the
/// statements to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_without_the_key_policy_grant_fails_verify_naming_the_statement() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start(&dir.path().join("data")).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let (account, creds) = customer(&b, "hurried-corp").await;
    let (_, added) =
        api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "hurried", "location": "de", "account_id": account }))).await;
    let script = added["instructions"]["commands"].as_str().expect("commands").replace(" --policy file://byok-key-policy-hurried.json", "");
    assert!(!script.contains("--policy file://"), "the grant is gone from the script");
    run_setup(&b, &creds, &script, dir.path()).await;
    let (status, verified) = api(&b, Some(&op), "POST", "/v1/tenants/hurried/verify", None).await;
    assert_eq!(status, 422, "{verified}");
    let problem = verified["regions"][0]["problem"].as_str().expect("problem");
    assert!(problem.contains("ByokDescribeKey") && problem.contains("ByokTenantKeyUse"), "{problem}");
    assert!(problem.contains("kms:EncryptionContext:byok:tenant"), "the statement itself is shown: {problem}");
    // The customer applies the printed key policy: verify passes.
    let (_, s) = api(&b, Some(&op), "GET", "/v1/tenants/hurried/setup", None).await;
    let policy = s["key_policy"].to_string();
    let keys = aws_ok(&endpoint(&b), &creds, "eu-central-1", &["kms", "list-aliases"]).await;
    let key =
        keys["Aliases"].as_array().expect("aliases").iter().find(|a| a["AliasName"] == "alias/byok-hurried").expect("alias")["TargetKeyId"]
            .as_str()
            .expect("key")
            .to_string();
    aws_ok(
        &endpoint(&b),
        &creds,
        "eu-central-1",
        &["kms", "put-key-policy", "--key-id", &key, "--policy-name", "default", "--policy", &policy],
    )
    .await;
    assert_eq!(api(&b, Some(&op), "POST", "/v1/tenants/hurried/verify", None).await.0, 200);
}

/// The setup in its other two formats says the same thing as the script: one CloudFormation
/// template (parsed as YAML, CloudFormation's tags included) and Terraform (its embedded
/// policies parsed), each with the role, the trust policy, and per region the key with the
/// least-privilege key policy and its alias.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_as_cloudformation_and_terraform() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start(&dir.path().join("data")).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let (account, _) = customer(&b, "iac-corp").await;
    let (_, added) = api(&b, Some(&op), "POST", "/v1/tenants", Some(json!({ "id": "iac", "location": "eu", "account_id": account }))).await;
    let instructions = &added["instructions"];
    let byok = |format: &'static str| {
        let api_url = b.api_url();
        let op = op.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
                .args(["tenant", "setup", "iac", "--format", format, "--api", &api_url, "--token", &op])
                .output()
                .await
                .expect("byok tenant setup");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).expect("utf-8")
        }
    };

    let template = byok("cloudformation").await;
    let path = dir.path().join("byok-iac.yaml");
    std::fs::write(&path, &template).expect("write");
    let parse = r#"
import json, sys, yaml
class L(yaml.SafeLoader): pass
L.add_multi_constructor("!", lambda loader, suffix, node: {suffix: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_scalar(node)})
print(json.dumps(yaml.load(open(sys.argv[1]), Loader=L)))
"#;
    let out = tokio::process::Command::new(byok_testkit::aws::venv().join("bin/python"))
        .args(["-c", parse])
        .arg(&path)
        .output()
        .await
        .expect("python");
    assert!(out.status.success(), "not YAML: {}", String::from_utf8_lossy(&out.stderr));
    let cfn: Value = serde_json::from_slice(&out.stdout).expect("json");
    let resources = &cfn["Resources"];
    assert_eq!(resources["ByokRole"]["Type"], "AWS::IAM::Role");
    assert_eq!(resources["ByokRole"]["Properties"]["RoleName"], instructions["role_name"]);
    assert_eq!(resources["ByokRole"]["Properties"]["AssumeRolePolicyDocument"], instructions["trust_policy"]);
    assert_eq!(resources["ByokKey"]["Properties"]["KeyPolicy"], instructions["key_policy"]);
    assert_eq!(resources["ByokAlias"]["Properties"]["AliasName"], instructions["alias"]);
    assert!(
        template.contains("--region eu-central-1") && template.contains("--region eu-west-1 ") && template.contains("CreateRole=false")
    );

    let terraform = byok("terraform").await;
    assert_eq!(terraform.matches('{').count(), terraform.matches('}').count(), "balanced braces");
    let policies: Vec<Value> = terraform
        .split("<<POLICY\n")
        .skip(1)
        .map(|rest| serde_json::from_str(rest.split("\nPOLICY").next().expect("heredoc end")).expect("policy JSON"))
        .collect();
    assert_eq!(policies.len(), 3, "the trust policy and one key policy per region");
    assert_eq!(policies[0], instructions["trust_policy"]);
    assert!(policies[1..].iter().all(|p| *p == instructions["key_policy"]));
    for needle in [
        "resource \"aws_iam_role\" \"byok\"",
        "resource \"aws_kms_key\" \"eu_central_1\"",
        "resource \"aws_kms_alias\" \"eu_west_1\"",
        "region = \"eu-west-1\"",
    ] {
        assert!(terraform.contains(needle), "{needle} missing:\n{terraform}");
    }
}
