//! State survives a restart and a `kill -9`: accounts, roles, keys, aliases, key states, the
//! clock, role sessions, and ciphertexts made before.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::support::{Creds, account, admin, create_role, kms, query, role_credentials, start_in, xml_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().expect("dir");
    let first = start_in(dir.path()).await;
    let ep = first.endpoint();
    let acct = account(&ep, "customer", None).await;
    let role_arn = create_role(&ep, &acct.root, "app").await;
    let session = role_credentials(&ep, &role_arn).await;
    let (_, created) = kms(&ep, &acct.root, "eu-west-1", "CreateKey", json!({ "Description": "kept" })).await;
    let key = created["KeyMetadata"]["Arn"].as_str().expect("arn").to_string();
    kms(&ep, &acct.root, "eu-west-1", "CreateAlias", json!({ "AliasName": "alias/kept", "TargetKeyId": key })).await;
    let (_, sealed) = kms(
        &ep,
        &session,
        "eu-west-1",
        "Encrypt",
        json!({ "KeyId": "alias/kept", "Plaintext": "c2VjcmV0", "EncryptionContext": { "t": "1" } }),
    )
    .await;
    let (_, doomed) = kms(&ep, &acct.root, "eu-west-1", "CreateKey", json!({})).await;
    let doomed = doomed["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    kms(&ep, &acct.root, "eu-west-1", "ScheduleKeyDeletion", json!({ "KeyId": doomed, "PendingWindowInDays": 7 })).await;
    admin(&ep, "POST", "/_localcloud/clock", Some(json!({ "offset_seconds": 60 }))).await;
    first.stop().await.expect("stop");

    // A crash while appending leaves a torn last line: it was never acknowledged, and is skipped.
    let mut journal = std::fs::OpenOptions::new().append(true).open(dir.path().join("journal.jsonl")).expect("journal");
    journal.write_all(b"{\"KeyDeleted\":{\"id\":[\"").expect("torn write");

    let second = start_in(dir.path()).await;
    let ep = second.endpoint();
    let (status, opened) = kms(
        &ep,
        &session,
        "eu-west-1",
        "Decrypt",
        json!({ "CiphertextBlob": sealed["CiphertextBlob"], "EncryptionContext": { "t": "1" } }),
    )
    .await;
    assert_eq!((status, opened["Plaintext"].as_str()), (200, Some("c2VjcmV0")), "{opened}");
    let (_, described) = kms(&ep, &acct.root, "eu-west-1", "DescribeKey", json!({ "KeyId": doomed })).await;
    assert_eq!(described["KeyMetadata"]["KeyState"], "PendingDeletion");
    let (status, xml) = query(&ep, &acct.root, "iam", "us-east-1", &[("Action", "GetRole"), ("RoleName", "app")]).await;
    assert_eq!((status, xml_text(&xml, "Arn")), (200, Some(role_arn)));
    let (_, clock) = admin(&ep, "GET", "/_localcloud/clock", None).await;
    assert_eq!(clock["offset_seconds"], 60);
    let (status, accounts) = admin(&ep, "GET", "/_localcloud/accounts", None).await;
    assert_eq!((status, accounts[0]["account_id"].as_str()), (200, Some(acct.id.as_str())));
    // The trail of the first life is still there.
    let host = ep.trim_start_matches("http://").to_string();
    let (status, _, trail) =
        crate::support::send(&ep, "GET", "/_localcloud/trail?event=Encrypt", &[("host".into(), host)], Vec::new()).await.expect("trail");
    let trail = String::from_utf8_lossy(&trail).into_owned();
    assert_eq!(status, 200, "{trail}");
    let names: Vec<String> =
        trail.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["event_name"].to_string()).collect();
    assert_eq!(names, ["\"Encrypt\""], "{trail}");
    second.stop().await.expect("stop");
}

/// The admin endpoint refuses a clock offset past ten years; a journal that holds one anyway
/// (edited by hand, or from an older release) is replayed without it instead of stopping the
/// cloud at start, and the clock stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_saved_clock_offset_does_not_stop_a_start() {
    let dir = tempfile::tempdir().expect("dir");
    let first = start_in(dir.path()).await;
    let ep = first.endpoint();
    admin(&ep, "POST", "/_localcloud/clock", Some(json!({ "offset_seconds": 120 }))).await;
    let (status, refused) = admin(&ep, "POST", "/_localcloud/clock", Some(json!({ "offset_seconds": i64::MAX }))).await;
    assert_eq!(status, 400, "{refused}");
    first.stop().await.expect("stop");
    let mut journal = std::fs::OpenOptions::new().append(true).open(dir.path().join("journal.jsonl")).expect("journal");
    for seconds in [i64::MAX, i64::MIN] {
        journal.write_all(format!("{}\n", json!({ "ClockOffsetSet": { "seconds": seconds } })).as_bytes()).expect("write");
    }
    drop(journal);
    let second = start_in(dir.path()).await;
    let ep = second.endpoint();
    let (status, clock) = admin(&ep, "GET", "/_localcloud/clock", None).await;
    assert_eq!((status, clock["offset_seconds"].as_i64()), (200, Some(120)), "the last sane offset stays: {clock}");
    let acct = account(&ep, "after", None).await;
    let (status, _) = kms(&ep, &acct.root, "eu-west-1", "CreateKey", json!({})).await;
    assert_eq!(status, 200);
    second.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let ep = format!("http://127.0.0.1:{port}");
    let spawn = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_localcloud"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn localcloud")
    };
    let wait_up = || async {
        for _ in 0..100 {
            if localcloud::admin_client::request(&ep, "GET", "/_localcloud/health", None).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("localcloud did not come up at {ep}");
    };
    let mut child = spawn();
    wait_up().await;
    // The account comes from the CLI, as the README shows.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_localcloud"))
        .args(["account", "create", "--name", "customer", "--endpoint", &ep])
        .output()
        .await
        .expect("run localcloud account create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let root = Creds {
        access_key_id: created["access_key_id"].as_str().expect("key").into(),
        secret_access_key: created["secret_access_key"].as_str().expect("secret").into(),
        session_token: None,
    };
    let acct = crate::support::Account { id: created["account_id"].as_str().expect("id").into(), root };
    let mut keys = Vec::new();
    for i in 0..20 {
        let (status, created) = kms(&ep, &acct.root, "eu-west-1", "CreateKey", json!({ "Description": format!("k{i}") })).await;
        assert_eq!(status, 200);
        keys.push(created["KeyMetadata"]["KeyId"].as_str().expect("id").to_string());
    }
    kms(&ep, &acct.root, "eu-west-1", "DisableKey", json!({ "KeyId": keys[3] })).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");

    let mut child = spawn();
    wait_up().await;
    let creds = acct.root.clone();
    let (_, listed) = kms(&ep, &creds, "eu-west-1", "ListKeys", json!({ "Limit": 1000 })).await;
    assert_eq!(listed["Keys"].as_array().map(Vec::len), Some(20), "{listed}");
    let (_, described) = kms(&ep, &creds, "eu-west-1", "DescribeKey", json!({ "KeyId": keys[3] })).await;
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}
