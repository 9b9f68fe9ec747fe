//! Traces over OTLP/HTTP: `byok serve --otlp-endpoint` (the binary, as an operator runs it) sends
//! its spans to a receiver this test starts (`tests/traces/otlp_receiver.py`, which decodes the
//! real protobuf messages with the `opentelemetry-proto` package). A request carrying a W3C
//! `traceparent` is a child of the caller's span; its STS and KMS calls and its store
//! transaction are the request's descendants; each monitor pass is a root with its probes under
//! it.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::support::run_setup_at;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// The spans received so far.
fn spans(file: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(file).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("a span")).collect()
}

/// Whether `span` descends from the span `ancestor` within its trace.
fn descends(span: &Value, ancestor: &str, by_id: &HashMap<String, Value>) -> bool {
    let mut parent = span["parent"].as_str().unwrap_or_default().to_string();
    for _ in 0..32 {
        if parent == ancestor {
            return true;
        }
        match by_id.get(&parent) {
            Some(p) => parent = p["parent"].as_str().unwrap_or_default().to_string(),
            None => return false,
        }
    }
    false
}

async fn call(api: &str, token: &str, method: &str, path: &str, extra: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
    headers.extend_from_slice(extra);
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, bytes) = localcloud::admin_client::send(api, method, path, &headers, body).await.expect("request");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_with_the_callers_trace_as_parent() {
    let dir = tempfile::tempdir().expect("dir");
    let received = dir.path().join("spans.jsonl");
    let venv = byok_testkit::aws::venv();
    let root = byok_testkit::workspace();
    let mut receiver = tokio::process::Command::new(venv.join("bin/python"))
        .arg(root.join("crates/byok-cli/tests/traces/otlp_receiver.py"))
        .arg(&received)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the receiver");
    let mut first = String::new();
    tokio::io::BufReader::new(receiver.stdout.take().expect("stdout")).read_line(&mut first).await.expect("port");
    let collector = format!("http://127.0.0.1:{}", first.trim());

    let (api_port, lc_port) = (free_port(), free_port());
    let data = dir.path().join("data");
    let mut byok = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["serve", "--listen", &format!("127.0.0.1:{api_port}"), "--localcloud-listen", &format!("127.0.0.1:{lc_port}")])
        .args(["--monitor-interval-seconds", "1", "--otlp-endpoint", &collector, "--data-dir"])
        .arg(&data)
        .env("BYOK_LOG", "warn")
        // Batches leave every 200 ms (the SDK's variable), so the test waits little.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byok serve");
    let api = format!("http://127.0.0.1:{api_port}");
    let aws = format!("http://127.0.0.1:{lc_port}");
    let mut up = false;
    for _ in 0..400 {
        if data.join("operator.token").exists() && tokio::net::TcpStream::connect(("127.0.0.1", api_port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "byok serve did not come up");
    let op = std::fs::read_to_string(data.join("operator.token")).expect("operator token").trim().to_string();
    let lc_admin = std::fs::read_to_string(data.join("localcloud-admin.token")).expect("localcloud token").trim().to_string();

    // A customer sets up its side with the aws CLI; the provider adds and verifies the tenant.
    let (status, account) =
        localcloud::admin_client::request_as(&aws, Some(&lc_admin), "POST", "/_localcloud/accounts", Some(&json!({ "name": "acme-corp" })))
            .await
            .expect("account");
    assert_eq!(status, 201, "{account}");
    let creds = byok_testkit::aws::Creds {
        access_key_id: account["access_key_id"].as_str().expect("key").into(),
        secret_access_key: account["secret_access_key"].as_str().expect("secret").into(),
        session_token: None,
    };
    let tenant = json!({ "id": "acme", "location": "eu", "account_id": account["account_id"] });
    let (status, added) = call(&api, &op, "POST", "/v1/tenants", &[], Some(tenant)).await;
    assert_eq!(status, 201, "{added}");
    run_setup_at(&aws, &creds, added["instructions"]["commands"].as_str().expect("commands"), &dir.path().join("setup")).await;

    // The caller's trace: W3C trace-context version 00, sampled.
    let (trace, caller) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{trace}-{caller}-01");
    let (status, verified) = call(&api, &op, "POST", "/v1/tenants/acme/verify", &[("traceparent", &traceparent)], None).await;
    assert_eq!(status, 200, "{verified}");

    // Wait for the request's spans and a monitor pass that probed the tenant.
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = spans(&received);
        let request = seen.iter().any(|s| s["trace_id"] == trace && s["parent"] == caller);
        let pass = seen.iter().any(|s| s["name"] == "monitor.pass" && s["attributes"]["byok.tenants_probed"].as_i64() >= Some(1));
        if request && pass {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_id: HashMap<String, Value> = seen.iter().map(|s| (s["span_id"].as_str().expect("id").to_string(), s.clone())).collect();
    let dump = || seen.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("\n");

    let request =
        seen.iter().find(|s| s["trace_id"] == trace && s["parent"] == caller).unwrap_or_else(|| panic!("no request span:\n{}", dump()));
    assert_eq!(request["name"], "POST /v1/tenants/{id}/verify", "{request}");
    assert_eq!(request["kind"], "SPAN_KIND_SERVER", "{request}");
    assert_eq!(request["service"], "byok", "{request}");
    assert_eq!(request["attributes"]["http.route"], "/v1/tenants/{id}/verify", "{request}");
    assert_eq!(request["attributes"]["http.request.method"], "POST", "{request}");
    assert_eq!(request["attributes"]["http.response.status_code"], 200, "{request}");
    assert!(request["attributes"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{request}");
    let request_id = request["span_id"].as_str().expect("span id");

    // The request's own work: AssumeRole, then KMS in each of the location's regions, and the
    // transaction that made the tenant active, all in the caller's trace under the request.
    let under = |name: &str| seen.iter().filter(|s| s["name"] == name && s["trace_id"] == trace && descends(s, request_id, &by_id)).count();
    assert!(under("STS.AssumeRole") >= 1, "no AssumeRole under the request:\n{}", dump());
    assert!(under("KMS.Decrypt") >= 2, "no KMS.Decrypt per region under the request:\n{}", dump());
    assert_eq!(under("store.activate"), 1, "the activation's transaction:\n{}", dump());
    let decrypt = seen.iter().find(|s| s["name"] == "KMS.Decrypt" && s["trace_id"] == trace).expect("decrypt");
    assert_eq!(decrypt["kind"], "SPAN_KIND_CLIENT", "{decrypt}");
    assert_eq!(decrypt["attributes"]["rpc.system"], "aws-api", "{decrypt}");
    assert_eq!(decrypt["attributes"]["rpc.service"], "KMS", "{decrypt}");
    assert!(["eu-west-1", "eu-central-1"].contains(&decrypt["attributes"]["cloud.region"].as_str().unwrap_or_default()), "{decrypt}");
    assert_eq!(decrypt["status"], "STATUS_CODE_UNSET", "a call that worked is no error: {decrypt}");

    // A monitor pass is a root span of its own trace, its probe's calls under it.
    let pass = seen
        .iter()
        .find(|s| s["name"] == "monitor.pass" && s["attributes"]["byok.tenants_probed"].as_i64() >= Some(1))
        .unwrap_or_else(|| panic!("no monitor pass:\n{}", dump()));
    assert_eq!(pass["parent"], "", "{pass}");
    let pass_id = pass["span_id"].as_str().expect("id");
    let probes = seen.iter().filter(|s| s["trace_id"] == pass["trace_id"] && descends(s, pass_id, &by_id));
    let names: Vec<&str> = probes.filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"STS.AssumeRole") || names.contains(&"KMS.Decrypt"), "the pass's probes: {names:?}\n{}", dump());

    // A span ends up nowhere but in its own trace: none of the pass's spans in the caller's.
    assert!(seen.iter().filter(|s| s["trace_id"] == trace).all(|s| s["name"] != "monitor.pass"));
    byok.start_kill().expect("kill");
    let _ = byok.wait().await;
    receiver.start_kill().expect("kill receiver");
}
