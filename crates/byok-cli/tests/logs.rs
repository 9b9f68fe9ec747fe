//! Operating `byok serve` as a process: logs a pipeline can read (`--log-format json` writes one
//! JSON object a line on stderr, start-up lines included; text written to a file or a pipe
//! carries no colour codes), and a drain on SIGTERM (`/readyz` says 503 while it still serves).

use std::process::Stdio;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// Starts `byok serve` with these extra arguments, waits for its API, stops it: its stderr.
async fn serve_stderr(extra: &[&str]) -> String {
    serve_stderr_after(extra, &[], "").await
}

/// [`serve_stderr`], with `serve_args` after `serve`, and a GET of `path` (if any) before it stops.
async fn serve_stderr_after(extra: &[&str], serve_args: &[&str], path: &str) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let (api, lc) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(extra)
        .args(["serve", "--listen", &format!("127.0.0.1:{api}"), "--localcloud-listen", &format!("127.0.0.1:{lc}"), "--data-dir"])
        .arg(dir.path().join("data"))
        .args(serve_args)
        .env("BYOK_LOG", "info")
        .env_remove("BYOK_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byok serve");
    let mut up = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", api)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "byok serve did not come up");
    // The start-up lines follow the listener by a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !path.is_empty() {
        let (status, _) =
            localcloud::admin_client::send(&format!("http://127.0.0.1:{api}"), "GET", path, &[], Vec::new()).await.expect("request");
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.start_kill().expect("kill");
    let out = child.wait_with_output().await.expect("output");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_and_text_has_no_colour_codes() {
    let json = serve_stderr(&["--log-format", "json"]).await;
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["level"].is_string() && event["fields"].is_object(), "{line}");
    }
    assert!(json.contains("byok broker listening on"), "the start-up lines are events too: {json}");

    // With --access-log, a line per request with its id.
    let access = serve_stderr_after(&["--log-format", "json"], &["--access-log"], "/livez").await;
    let line = access
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["target"] == "byok::access")
        .unwrap_or_else(|| panic!("no access log line: {access}"));
    assert_eq!((line["fields"]["route"].as_str(), line["fields"]["status"].as_u64()), (Some("/livez"), Some(200)), "{line}");
    assert!(line["fields"]["request_id"].as_str().is_some_and(|id| id.len() == 16), "{line}");
    assert!(!json.contains("byok::access"), "no access log unless asked for");

    let text = serve_stderr(&[]).await;
    assert!(text.contains("byok broker listening on"), "{text}");
    assert!(text.contains("this node now leads"), "a log event, not only the start-up lines: {text}");
    assert!(!text.contains('\u{1b}'), "no colour codes into a pipe: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_not_ready_but_still_serving_then_stops() {
    let dir = tempfile::tempdir().expect("dir");
    let (api, lc) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["serve", "--listen", &format!("127.0.0.1:{api}"), "--localcloud-listen", &format!("127.0.0.1:{lc}"), "--drain-seconds", "2"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("BYOK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byok serve");
    let get = |path: &'static str| async move {
        let (status, _) = localcloud::admin_client::send(&format!("http://127.0.0.1:{api}"), "GET", path, &[], Vec::new()).await.ok()?;
        Some(status)
    };
    let mut ready = false;
    for _ in 0..400 {
        if get("/readyz").await == Some(200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "byok serve never became ready");
    let pid = child.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let mut drained = false;
    for _ in 0..40 {
        if get("/readyz").await == Some(503) {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(drained, "not ready during the drain");
    assert_eq!(get("/livez").await, Some(200), "still answering while it drains");
    let exited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("it stops after the drain").expect("wait");
    assert!(exited.success(), "{exited:?}");
}
