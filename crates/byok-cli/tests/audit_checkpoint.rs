//! A customer's evidence against a rewritten history: the tenant admin fetches a checkpoint
//! (their newest audit entry signed with the operator's key), and `byok audit verify
//! --checkpoint` later holds the log to it — it passes while the log is as it was, and fails
//! when the entry's hash in the store no longer matches (someone with write access rewrote it)
//! or when the checkpoint itself was altered.

use std::process::Output;

use crate::support::{byok_as as byok, onboard, start};

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_checkpoint_holds_the_log_to_what_the_customer_was_told() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let b = start(&data).await;
    let (_, _, added) = onboard(&b, "checkpoint-corp", "acme", "us", dir.path()).await;
    let admin = added["admin_token"].as_str().expect("tenant admin token").to_string();
    assert!(std::fs::metadata(data.join("audit-signing.key")).is_ok(), "the key was made on first start");

    // The tenant admin fetches a checkpoint and keeps it.
    let fetched = byok(&["audit", "checkpoint", "--tenant", "acme"], &b.api_url(), &admin);
    assert!(fetched.status.success(), "{}", text(&fetched));
    let path = dir.path().join("checkpoint.json");
    std::fs::write(&path, &fetched.stdout).expect("write");
    let checkpoint: serde_json::Value = serde_json::from_slice(&fetched.stdout).expect("JSON");
    let seq = checkpoint["seq"].as_i64().expect("seq");

    let verified = byok(&["audit", "verify", "--checkpoint", path.to_str().expect("utf-8")], &b.api_url(), &admin);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("checkpoint holds"), "{}", text(&verified));

    // An altered checkpoint does not verify.
    let mut altered = checkpoint.clone();
    altered["seq"] = serde_json::json!(seq - 1);
    let altered_path = dir.path().join("altered.json");
    std::fs::write(&altered_path, altered.to_string()).expect("write");
    let refused = byok(&["audit", "verify", "--checkpoint", altered_path.to_str().expect("utf-8")], &b.api_url(), &admin);
    assert!(!refused.status.success() && text(&refused).contains("signature does not verify"), "{}", text(&refused));

    // Someone with write access to the database rewrites that entry (and could recompute the
    // chain after it): the checkpoint contradicts the log.
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", data.join("byok.db").display());
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("open the store");
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE audit_log SET hash = '{}' WHERE seq = {seq}", "0".repeat(64))))
        .execute(&mut db)
        .await
        .expect("rewrite");
    let contradicted = byok(&["audit", "verify", "--checkpoint", path.to_str().expect("utf-8")], &b.api_url(), &admin);
    assert!(!contradicted.status.success(), "{}", text(&contradicted));
    assert!(text(&contradicted).contains("the log was rewritten"), "{}", text(&contradicted));
    b.stop().await.expect("stop");
}
