//! `byok audit export`: the log older than a time, streamed to stdout as JSON lines in order
//! (the CLI never holds it whole); `--prune` then drops what was exported, and the chain still
//! verifies from the checkpoint the prune left.

use crate::support::{byok_as as byok, onboard, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_streams_in_order_and_a_prune_keeps_the_chain() {
    let dir = tempfile::tempdir().expect("dir");
    let b = start(&dir.path().join("data")).await;
    onboard(&b, "export-corp", "acme", "us", dir.path()).await;
    let op = b.operator_token.as_deref().expect("operator token").to_string();
    let api = b.api_url();

    let exported = byok(&["audit", "export", "--before", "2100-01-01T00:00:00Z"], &api, &op);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&exported.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(lines.len() >= 2, "onboarding wrote entries: {lines:?}");
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "every entry, in order: {seqs:?}");

    // A prune waits for the webhook dispatcher to have turned the entries into events (it says
    // so meanwhile): tried until it has, within a few of the leader's rounds.
    let mut pruned = byok(&["audit", "export", "--before", "2100-01-01T00:00:00Z", "--prune"], &api, &op);
    for _ in 0..40 {
        if pruned.status.success() {
            break;
        }
        assert!(
            String::from_utf8_lossy(&pruned.stderr).contains("not yet turned into webhook events"),
            "{}",
            String::from_utf8_lossy(&pruned.stderr)
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        pruned = byok(&["audit", "export", "--before", "2100-01-01T00:00:00Z", "--prune"], &api, &op);
    }
    let said = String::from_utf8_lossy(&pruned.stderr);
    assert!(pruned.status.success() && said.contains("pruned ") && said.contains(" entries through "), "{said}");
    let verified = byok(&["audit", "verify"], &api, &op);
    assert!(verified.status.success(), "the chain verifies from the checkpoint: {}", String::from_utf8_lossy(&verified.stdout));

    // A time that is not one: said, nothing written.
    let bad = byok(&["audit", "export", "--before", "yesterday"], &api, &op);
    assert!(!bad.status.success() && bad.stdout.is_empty(), "{}", String::from_utf8_lossy(&bad.stdout));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"), "{}", String::from_utf8_lossy(&bad.stderr));
    b.stop().await.expect("stop");
}
