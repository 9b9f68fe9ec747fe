//! Webhooks as a customer receives them: a receiver written with the `standardwebhooks` library
//! (tests/webhooks/receiver.py) fails once, answers too slowly once, then recovers. byok retries
//! with backoff under the same event id, so after de-duplication by id the receiver holds every
//! event exactly once, in the order they happened, each signature verified; a rotated secret
//! signs beside the old one until the receiver switches.

use std::time::{Duration, Instant};

use byok_cli::serve::ServeArgs;
use byok_testkit::aws_ok;
use serde_json::{Value, json};

use crate::support::{api, endpoint, onboard, start_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

fn byok(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_byok")).args(args).output().expect("byok");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "byok {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// The receiver's log, once `accepted` events arrived (90 s at most).
async fn accepted(log: &std::path::Path, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines: Vec<Value> =
            std::fs::read_to_string(log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("a log line")).collect();
        if lines.iter().filter(|l| l["outcome"] == "accepted").count() >= count || started.elapsed() > Duration::from_secs(90) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_slow_receiver_gets_every_event_once_in_order_signed() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start_with(&dir.path().join("data"), ServeArgs { monitor_interval_seconds: Some(1), ..ServeArgs::default() }).await;
    let (op, svc) = (b.operator_token.as_deref().expect("op").to_string(), b.service_token.as_deref().expect("svc").to_string());
    let (_, creds, added) = onboard(&b, "acme-corp", "acme", "eu", dir.path()).await;
    let admin = added["admin_token"].as_str().expect("token").to_string();
    let role = added["instructions"]["role_name"].as_str().expect("role").to_string();
    let trust = added["instructions"]["trust_policy"].clone();

    // The customer's receiver, and its endpoint added by the tenant's admin with the CLI.
    let (port, secrets, log) = (free_port(), dir.path().join("secrets"), dir.path().join("received.jsonl"));
    let url = format!("http://127.0.0.1:{port}/byok");
    let api_url = b.api_url();
    let said = byok(&["webhook", "add", &url, "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    let id = said.split_whitespace().nth(1).expect("the webhook's id").to_string();
    let secret = said.lines().find_map(|l| l.strip_prefix("secret: ")).expect("the secret").to_string();
    assert!(secret.starts_with("whsec_"), "{said}");
    std::fs::write(&secrets, &secret).expect("secret file");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
    let mut receiver = tokio::process::Command::new(byok_testkit::aws::venv().join("bin/python"))
        .arg(script)
        .args([&port.to_string(), &secrets.display().to_string(), &log.display().to_string(), "11"])
        .kill_on_drop(true)
        .spawn()
        .expect("the receiver");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another tenant's admin or a service token reaches none of it.
    let (status, _) = api(&b, Some(&svc), "GET", "/v1/tenants/acme/webhooks", None).await;
    assert_eq!(status, 403);

    // Four events: a test, a key rotation, the customer's revocation, the restoration.
    byok(&["webhook", "test", &id, "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    let (status, _) = api(&b, Some(&op), "POST", "/v1/tenants/acme/rotate", None).await;
    assert_eq!(status, 200);
    let mut deny = trust.clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    let ep = endpoint(&b);
    aws_ok(&ep, &creds, "us-east-1", &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &deny.to_string()])
        .await;
    let started = Instant::now();
    loop {
        let (_, shown) = api(&b, Some(&admin), "GET", "/v1/tenants/acme", None).await;
        if shown["state"] == "revoked" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not revoked: {shown}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // "Restored" too early: the trust policy still denies. The customer's systems hear it.
    let (status, refused) = api(&b, Some(&admin), "POST", "/v1/tenants/acme/restore", None).await;
    assert_eq!((status, &refused["restored"]), (409, &json!(false)), "{refused}");
    // Past the second in which a restoration's answer is shared with callers right after it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    aws_ok(&ep, &creds, "us-east-1", &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &trust.to_string()])
        .await;
    let (status, answer) = api(&b, Some(&admin), "POST", "/v1/tenants/acme/restore", None).await;
    assert_eq!((status, &answer["restored"]), (200, &json!(true)), "{answer}");

    let lines = accepted(&log, 5).await;
    let got: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "accepted").collect();
    let types: Vec<&str> = got.iter().map(|l| l["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, ["webhook.test", "key.rotated", "tenant.revoked", "restoration.refused", "tenant.restored"], "{lines:?}");
    let refused_event = got[3];
    assert!(
        refused_event["missing"]
            .as_array()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|s| s.as_str().is_some_and(|s| s.contains("steps")))),
        "what is still missing, in the guide's words: {refused_event}"
    );
    assert!(lines.iter().all(|l| l["verified"] == true), "every request is signed with the secret: {lines:?}");
    let seqs: Vec<i64> =
        got.iter().map(|l| l["id"].as_str().and_then(|i| i.strip_prefix("evt_")).and_then(|n| n.parse().ok()).expect("evt_N")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in the order they happened: {seqs:?}");
    // Each tenant event carries a checkpoint: its own audit entry signed with the operator's key.
    for l in &got {
        let checkpoint: byok_broker::audit_signing::Checkpoint =
            serde_json::from_value(l["checkpoint"].clone()).unwrap_or_else(|e| panic!("no checkpoint in {l}: {e}"));
        checkpoint.verify().expect("signed with the operator's key");
        assert_eq!((checkpoint.tenant.as_str(), Some(checkpoint.seq)), ("acme", l["audit_seq"].as_i64()), "{l}");
    }
    // The first event was tried three times under one id: refused, too slow, accepted.
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[1]["outcome"], "slow");
    assert!(lines.iter().take(3).all(|l| l["id"] == lines[0]["id"]), "{lines:?}");
    let deliveries = byok(&["webhook", "deliveries", &id, "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    assert!(deliveries.contains(&format!("evt_{} webhook.test delivered attempts=3", seqs[0])), "{deliveries}");

    // A rotation: the new secret and the old one both sign until the receiver switches.
    let rotated = byok(&["webhook", "rotate-secret", &id, "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    let new_secret = rotated.lines().find_map(|l| l.strip_prefix("secret: ")).expect("new secret").to_string();
    assert_ne!(new_secret, secret);
    byok(&["webhook", "test", &id, "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    let lines = accepted(&log, 6).await;
    let last = lines.iter().rfind(|l| l["outcome"] == "accepted").expect("delivered");
    assert!(last["verified"] == true && last["signatures"] == 2, "the old secret still verifies: {last}");
    std::fs::write(&secrets, &new_secret).expect("the receiver switches");
    byok(&["webhook", "test", &id, "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    let lines = accepted(&log, 7).await;
    let last = lines.iter().rfind(|l| l["outcome"] == "accepted").expect("delivered");
    assert!(last["verified"] == true, "the new secret verifies: {last}");
    let listed = byok(&["webhook", "list", "--tenant", "acme", "--api", &api_url, "--token", &admin]);
    assert!(listed.contains(&id) && listed.contains("2 secret(s) in force"), "{listed}");
    receiver.start_kill().expect("kill");
}
