//! The audit log streamed out, as an operator's SIEM receives it: to a syslog server (RFC 5424
//! over TCP, octet-counted) that is down when the entries are written and comes up later — it
//! then gets every entry, in order, none twice in a row, the first one included — and to a file
//! of JSON lines that matches the log. Pruning stops short of what the sink has not taken.

use std::time::{Duration, Instant};

use byok_cli::serve::ServeArgs;
use tokio::io::AsyncReadExt;

use crate::support::{onboard, start_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// Reads RFC 6587 octet-counted frames from every connection until `want` messages arrived.
async fn receive(listener: tokio::net::TcpListener, want: usize) -> Vec<String> {
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages.len() < want {
        assert!(Instant::now() < deadline, "only {} of {want} messages arrived", messages.len());
        let Ok(Ok((mut conn, _))) = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await else { continue };
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.expect("read");
        let mut rest = raw.as_slice();
        while !rest.is_empty() {
            let space = rest.iter().position(|b| *b == b' ').expect("a length, then a space");
            let len: usize = std::str::from_utf8(&rest[..space]).expect("digits").parse().expect("a length");
            let frame = &rest[space + 1..space + 1 + len];
            messages.push(String::from_utf8(frame.to_vec()).expect("UTF-8"));
            rest = &rest[space + 1 + len..];
        }
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_reaches_a_syslog_server_that_was_down_and_a_file() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let args = ServeArgs { audit_sink: Some(format!("syslog://127.0.0.1:{port}")), ..ServeArgs::default() };
    let b = start_with(&dir.path().join("data"), args).await;
    // The syslog server is down while the tenant is onboarded and its key used.
    onboard(&b, "sink-corp", "acme", "us", dir.path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let entries = b.broker.audit_log(None, 0, 10_000).await.expect("audit");
    assert!(entries.len() >= 2, "{entries:?}");
    let op = b.operator_token.as_deref().expect("op").to_string();
    let last = entries.last().expect("entries").clone();
    let (status, refused) = crate::support::api(
        &b,
        Some(&op),
        "POST",
        "/v1/audit/prune",
        Some(serde_json::json!({ "through_seq": last.seq, "hash": last.hash })),
    )
    .await;
    assert_eq!(status, 400, "nothing the sink has not taken is pruned: {refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("audit sink"), "{refused}");

    // It comes up: everything written meanwhile arrives, in order, from the first entry.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the syslog port");
    let messages = receive(listener, entries.len()).await;
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m.split("seq=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|s| s.parse().ok()).expect("seq"))
        .collect();
    assert_eq!(&seqs[..entries.len()], entries.iter().map(|e| e.seq).collect::<Vec<_>>().as_slice(), "in order, none missing");
    for (m, e) in messages.iter().zip(&entries) {
        assert!(m.starts_with("<110>1 ") && m.contains(" byok - ") && m.contains("[byok@32473 "), "RFC 5424: {m}");
        let body: byok_store::AuditEntry = serde_json::from_str(m.rsplit_once("] ").expect("message").1).expect("the entry as JSON");
        assert_eq!(&body, e);
    }
    b.stop().await.expect("stop");

    // A file sink: JSON lines, the log as it is.
    let file = dir.path().join("audit.jsonl");
    let args = ServeArgs { audit_sink: Some(format!("file:{}", file.display())), ..ServeArgs::default() };
    let b = start_with(&dir.path().join("data2"), args).await;
    onboard(&b, "file-corp", "globex", "us", dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let entries = b.broker.audit_log(None, 0, 10_000).await.expect("audit");
        let lines: Vec<byok_store::AuditEntry> =
            std::fs::read_to_string(&file).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        if lines == entries {
            break;
        }
        assert!(Instant::now() < deadline, "the file does not hold the log:\n{lines:?}\n{entries:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.stop().await.expect("stop");
}

/// An HTTPS-style sink (plain HTTP on loopback here): batches POSTed as `audit.entries` webhooks
/// signed with the sink's secret, verified by a receiver written with the `standardwebhooks`
/// library; down while the entries are written, it gets them all when it comes up, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_reaches_a_webhook_receiver_that_was_down() {
    let dir = tempfile::tempdir().expect("dir");
    let (port, secrets, log) = (free_port(), dir.path().join("secrets"), dir.path().join("received.jsonl"));
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    std::fs::write(&secrets, secret).expect("secret file");
    // Without its secret the setting is refused, saying what is missing.
    let refused = byok_cli::serve::ServeParams::from_args(ServeArgs {
        audit_sink: Some(format!("http://127.0.0.1:{port}/audit")),
        ..ServeArgs::default()
    });
    assert!(refused.is_err_and(|e| e.to_string().contains("--audit-sink-secret")));
    let args = ServeArgs {
        audit_sink: Some(format!("http://127.0.0.1:{port}/audit")),
        audit_sink_secret: Some(secret.into()),
        ..ServeArgs::default()
    };
    let b = start_with(&dir.path().join("data"), args).await;
    onboard(&b, "hook-corp", "acme", "us", dir.path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let entries = b.broker.audit_log(None, 0, 10_000).await.expect("audit");
    assert!(entries.len() >= 2, "{entries:?}");

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
    let mut receiver = tokio::process::Command::new(byok_testkit::aws::venv().join("bin/python"))
        .arg(script)
        .args([&port.to_string(), &secrets.display().to_string(), &log.display().to_string(), "-1"])
        .kill_on_drop(true)
        .spawn()
        .expect("the receiver");
    let deadline = Instant::now() + Duration::from_secs(60);
    let received: Vec<serde_json::Value> = loop {
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("log line")).collect();
        let seqs = lines.iter().flat_map(|l| l["seqs"].as_array().cloned().unwrap_or_default()).count();
        if seqs >= entries.len() {
            break lines;
        }
        assert!(Instant::now() < deadline, "only {seqs} of {} entries arrived: {lines:?}", entries.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(received.iter().all(|r| r["verified"] == true && r["type"] == "audit.entries"), "signed batches: {received:?}");
    let seqs: Vec<i64> =
        received.iter().flat_map(|r| r["seqs"].as_array().cloned().unwrap_or_default()).filter_map(|s| s.as_i64()).collect();
    assert_eq!(&seqs[..entries.len()], entries.iter().map(|e| e.seq).collect::<Vec<_>>().as_slice(), "in order, from the first");
    assert!(received.iter().all(|r| r["id"].as_str().is_some_and(|id| id.starts_with("audit_"))), "{received:?}");
    receiver.start_kill().expect("kill");
    b.stop().await.expect("stop");
}
