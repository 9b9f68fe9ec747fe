//! Three `byok serve` nodes sharing one PostgreSQL and one localcloud, each with a data
//! directory of its own (as separate machines have): the cluster's identity — tokens, the
//! canary, the provider account in localcloud — comes from the store, so the first node's
//! tokens work on every node and whichever node leads passes the canary. Only the leader probes
//! (each (tenant, region) once per interval in total, counted in localcloud's trail); `kill -9`
//! of the leader hands the lease to another node within 15 s; with that one frozen past its
//! lease too, the third node leads, and a customer's trust Deny is refused by it at once and by
//! the frozen node as soon as it wakes, with exactly one ticket. A node cut off from PostgreSQL
//! (through a proxy the test severs) keeps serving cached keys, writes and decides nothing,
//! then rejoins; two nodes racing restorations end consistent with one ticket. An operator's
//! webhook receiver gets a test event sent just before the leader's kill and the revocation
//! decided after it, each once by id, in order, signed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use byok_cli::client::{ApiArgs, Client};
use byok_testkit::{Cloud, Creds, aws_ok};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::run_setup_at;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

struct Node {
    child: tokio::process::Child,
    port: u16,
    name: String,
}

async fn node(data: &std::path::Path, store: &str, aws: &str, name: &str) -> Node {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--aws-endpoint", aws, "--store-url", store, "--node-id", name])
        .args(["--monitor-interval-seconds", "1", "--lease-ttl-seconds", "3", "--data-dir"])
        .arg(data)
        .env("BYOK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byok serve");
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Node { child, port, name: name.to_string() };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} did not come up");
}

/// The leader a node names in `/healthz`.
async fn leader_of(port: u16) -> Option<String> {
    call(port, "", "GET", "/healthz", None).await.1["leader_node"].as_str().map(str::to_string)
}

async fn call(port: u16, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = Client::new(&ApiArgs::new(format!("http://127.0.0.1:{port}"), Some(token.into()), ".")).expect("client");
    match client.send(method, path, body.as_ref()).await {
        Ok(answer) => (answer.status, answer.value()),
        Err(_) => (0, Value::Null),
    }
}

/// A fresh schema in the test PostgreSQL: the admin connection, the schema, and the store URL.
async fn pg_schema() -> (sqlx::AnyConnection, String, String) {
    let base = std::env::var("BYOK_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test (set BYOK_TEST_POSTGRES_URL): {e}"));
    let schema = format!("byok_nodes_{}_{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000);
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (admin, schema, store)
}

/// Where `host:port` sits in a database URL.
fn authority(url: &str) -> std::ops::Range<usize> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let start = url[after_scheme..].find('@').map_or(after_scheme, |i| after_scheme + i + 1);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    start..end
}

/// The address a database URL names.
async fn database_addr(url: &str) -> std::net::SocketAddr {
    let host_port = &url[authority(url)];
    let host_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") };
    tokio::net::lookup_host(host_port).await.expect("resolve").next().expect("an address")
}

/// `url` pointed at `addr` instead.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let at = authority(url);
    format!("{}{addr}{}", &url[..at.start], &url[at.end..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_leader_revocation_everywhere_and_failover() {
    let (mut admin, schema, store) = pg_schema().await;

    let cloud = Cloud::start().await;
    let aws = cloud.endpoint();
    let dir = tempfile::tempdir().expect("dir");
    let data = |n: usize| dir.path().join(format!("node-{n}"));
    // The first node creates the cluster's provider identity, canary and tokens; then the others,
    // each on a data directory of its own, with nothing copied.
    let mut nodes = vec![node(&data(1), &store, &aws, "node-1").await];
    for n in [2, 3] {
        nodes.push(node(&data(n), &store, &aws, &format!("node-{n}")).await);
    }
    let op = std::fs::read_to_string(data(1).join("operator.token")).expect("token").trim().to_string();
    let svc = std::fs::read_to_string(data(1).join("service.token")).expect("token").trim().to_string();
    for n in [2, 3] {
        for file in ["operator.token", "service.token", "canary.json", "provider-account.json"] {
            assert!(!data(n).join(file).exists(), "node-{n} made no {file} of its own");
        }
    }
    // Node 1's tokens work on every node (and a later start of node 2 retires nothing).
    for n in &nodes {
        let (status, body) = call(n.port, &op, "GET", "/v1/tenants", None).await;
        assert_eq!(status, 200, "the operator token works on port {}: {body}", n.port);
    }

    let customer = cloud.customer("acme-corp").await;
    let (status, added) =
        call(nodes[0].port, &op, "POST", "/v1/tenants", Some(json!({ "id": "acme", "location": "us", "account_id": customer.account })))
            .await;
    assert_eq!(status, 201, "{added}");
    run_setup_at(&aws, &customer.root, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
    assert_eq!(call(nodes[1].port, &op, "POST", "/v1/tenants/acme/verify", None).await.0, 200);
    let (_, sealed) =
        call(nodes[2].port, &svc, "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": "eA==", "context": "r1" }))).await;
    let decrypt = json!({ "ciphertext": sealed["ciphertext"], "context": "r1" });
    for n in &nodes {
        assert_eq!(call(n.port, &svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await.0, 200, "every node serves");
    }

    // The operator's webhook endpoint (every tenant's events), and a customer's receiver behind
    // it: events must reach it exactly once by id, in order, whichever node leads.
    let (hook_port, hook_dir) = (free_port(), tempfile::tempdir().expect("dir"));
    let (secrets, received) = (hook_dir.path().join("secrets"), hook_dir.path().join("received.jsonl"));
    let (status, hook) =
        call(nodes[0].port, &op, "POST", "/v1/webhooks", Some(json!({ "url": format!("http://127.0.0.1:{hook_port}/byok") }))).await;
    assert_eq!(status, 201, "{hook}");
    std::fs::write(&secrets, hook["secret"].as_str().expect("secret")).expect("secret file");
    let hook_id = hook["webhook"]["id"].as_str().expect("id").to_string();
    let mut receiver = tokio::process::Command::new(byok_testkit::aws::venv().join("bin/python"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py"))
        .args([&hook_port.to_string(), &secrets.display().to_string(), &received.display().to_string(), "-1"])
        .kill_on_drop(true)
        .spawn()
        .expect("the receiver");

    // One leader, named by every node.
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        let names = [leader_of(nodes[0].port).await, leader_of(nodes[1].port).await, leader_of(nodes[2].port).await];
        if let [Some(a), Some(b), Some(c)] = &names {
            if a == b && b == c {
                break a.clone();
            }
        }
        assert!(Instant::now() < deadline, "no agreed leader: {names:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Only the leader probes: over 5 s at a 1 s interval, about 5 probe sessions, not 15.
    let last = |events: &[Value]| events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let since = last(&cloud.trail(0, None).await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = cloud.trail(since, Some(&customer.account)).await;
    let probes = window
        .iter()
        .filter(|e| {
            e["event_name"] == "AssumeRole" && e["user_identity"]["session_name"].as_str().is_some() && e.to_string().contains("byok-probe")
        })
        .count();
    let assumes = window.iter().filter(|e| e["event_name"] == "AssumeRole").count();
    eprintln!("MEASURE three nodes, 5 s at a 1 s interval: {assumes} AssumeRole in the customer's account ({probes} named byok-probe)");
    assert!((3..=8).contains(&assumes), "one prober, not three: {assumes} AssumeRole in 5 s");

    // A test event, sent through one node just before the leader dies.
    assert_eq!(call(nodes[1].port, &op, "POST", &format!("/v1/webhooks/{hook_id}/test"), None).await.0, 202);

    // kill -9 the leader: another node leads within 15 s.
    let position = |name: &str, nodes: &[Node]| nodes.iter().position(|n| n.name == name).expect("a node of ours leads");
    let mut dead = nodes.remove(position(&leader, &nodes));
    let killed = Instant::now();
    dead.child.start_kill().expect("SIGKILL");
    dead.child.wait().await.expect("reaped");
    let second = loop {
        if let Some(name) = leader_of(nodes[0].port).await.filter(|n| *n != leader) {
            break name;
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "no new leader within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("MEASURE failover after kill -9 of {leader}: {second} leads after {:?}", killed.elapsed());

    // Freeze that one past its lease: the last node leads (whichever node made the canary).
    let frozen = position(&second, &nodes);
    let awake = 1 - frozen;
    signal(&nodes[frozen], "STOP");
    let stopped = Instant::now();
    loop {
        if leader_of(nodes[awake].port).await.as_deref() == Some(nodes[awake].name.as_str()) {
            break;
        }
        assert!(stopped.elapsed() < Duration::from_secs(15), "{} does not take over from the frozen {second}", nodes[awake].name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("MEASURE {second} frozen: {} leads after {:?}", nodes[awake].name, stopped.elapsed());

    // The customer denies: the leading node refuses within a couple of intervals.
    let mut deny = added["instructions"]["trust_policy"].clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    let role = added["instructions"]["role_name"].as_str().expect("role").to_string();
    let started = Instant::now();
    aws_ok(
        &aws,
        &customer.root,
        "us-east-1",
        &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &deny.to_string()],
    )
    .await;
    let refused = until_status(nodes[awake].port, &svc, &decrypt, 403, Duration::from_secs(10)).await;
    eprintln!(
        "MEASURE trust Deny to refused on {} (leading, not the canary's creator unless it is node-1): {refused:?}",
        nodes[awake].name
    );
    // The frozen node wakes: it leads no more, learns of the revocation from the store, refuses.
    signal(&nodes[frozen], "CONT");
    let woke = Instant::now();
    until_status(nodes[frozen].port, &svc, &decrypt, 403, Duration::from_secs(10)).await;
    eprintln!("MEASURE the frozen node refuses {:?} after it wakes ({:?} after the Deny)", woke.elapsed(), started.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await; // both nodes' next passes
    for n in &nodes {
        let (_, tickets) = call(n.port, &op, "GET", "/v1/tickets", None).await;
        assert_eq!(tickets.as_array().map(Vec::len), Some(1), "exactly one ticket, seen from {}: {tickets}", n.name);
    }
    let _: Creds = customer.root.clone();

    // The receiver got the test event and the revocation, each once by id, in order, signed:
    // delivered by whichever node led when each was due.
    let started = Instant::now();
    let accepted = loop {
        let lines: Vec<Value> =
            std::fs::read_to_string(&received).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("a log line")).collect();
        let accepted: Vec<Value> = lines.iter().filter(|l| l["outcome"] == "accepted").cloned().collect();
        if accepted.iter().any(|l| l["type"] == "tenant.revoked") || started.elapsed() > Duration::from_secs(30) {
            assert!(lines.iter().all(|l| l["verified"] == true), "{lines:?}");
            break accepted;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let types: Vec<&str> = accepted.iter().map(|l| l["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, ["webhook.test", "tenant.revoked"], "{accepted:?}");
    receiver.start_kill().expect("kill the receiver");

    drop(nodes);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await.expect("drop schema");
}

/// Sends SIGSTOP or SIGCONT to a node.
fn signal(node: &Node, which: &str) {
    let pid = node.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill").args([format!("-{which}"), pid]).status().expect("kill");
    assert!(status.success(), "kill -{which}");
}

/// Decrypts `decrypt` on the node until it answers `want`, for at most `within`; how long it took.
async fn until_status(port: u16, svc: &str, decrypt: &Value, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = call(port, svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
        if status == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "node on port {port} still answers {status} {body}, not {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_store_serves_its_cache_decides_nothing_and_rejoins() {
    let (mut admin, schema, store) = pg_schema().await;
    let cloud = Cloud::start().await;
    let aws = cloud.endpoint();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("node-1");
    // Node A reaches PostgreSQL directly and leads; node B goes through a proxy the test severs.
    let a = node(&data, &store, &aws, "node-1").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while leader_of(a.port).await.as_deref() != Some("node-1") {
        assert!(Instant::now() < deadline, "node-1 does not lead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let proxy = byok_testkit::proxy::Proxy::start(database_addr(&store).await).await;
    let proxied = via(&store, proxy.addr);
    let b = node(&dir.path().join("node-2"), &proxied, &aws, "node-2").await;
    let op = std::fs::read_to_string(data.join("operator.token")).expect("token").trim().to_string();
    let svc = std::fs::read_to_string(data.join("service.token")).expect("token").trim().to_string();

    let customer = cloud.customer("acme-corp").await;
    let (status, added) =
        call(a.port, &op, "POST", "/v1/tenants", Some(json!({ "id": "acme", "location": "us", "account_id": customer.account }))).await;
    assert_eq!(status, 201, "{added}");
    run_setup_at(&aws, &customer.root, added["instructions"]["commands"].as_str().expect("commands"), dir.path()).await;
    assert_eq!(call(a.port, &op, "POST", "/v1/tenants/acme/verify", None).await.0, 200);
    let (_, sealed) = call(b.port, &svc, "POST", "/v1/tenants/acme/encrypt", Some(json!({ "plaintext": "eA==", "context": "r1" }))).await;
    let decrypt = json!({ "ciphertext": sealed["ciphertext"], "context": "r1" });
    assert_eq!(call(b.port, &svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await.0, 200, "B's cache is warm");

    // Cut off: B serves from its cache, refuses writes with 503, and decides nothing; it says it
    // is not ready, so that a load balancer prefers the others.
    assert_eq!(call(b.port, "", "GET", "/readyz", None).await.0, 200, "ready while its store answers");
    proxy.sever().await;
    let (status, ready) = call(b.port, "", "GET", "/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready["reason"].as_str().is_some_and(|r| r.contains("store")), "{ready}");
    assert_eq!(call(b.port, "", "GET", "/livez", None).await.0, 200, "still live");
    for _ in 0..5 {
        let (status, body) = call(b.port, &svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await;
        assert_eq!(status, 200, "a cached key keeps serving while the store is away: {body}");
    }
    let (status, body) =
        call(b.port, &op, "POST", "/v1/tenants", Some(json!({ "id": "beta", "location": "us", "account_id": customer.account }))).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("store_unavailable")), "{body}");
    // The customer denies meanwhile: the leader (A) revokes; B, cut off, cannot know and cannot
    // decide, and goes on serving its cached key.
    let mut deny = added["instructions"]["trust_policy"].clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    let role = added["instructions"]["role_name"].as_str().expect("role").to_string();
    let set_trust = |policy: Value| {
        let (aws, root, role) = (aws.clone(), customer.root.clone(), role.clone());
        async move {
            aws_ok(
                &aws,
                &root,
                "us-east-1",
                &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &policy.to_string()],
            )
            .await;
        }
    };
    set_trust(deny).await;
    until_status(a.port, &svc, &decrypt, 403, Duration::from_secs(10)).await;
    assert_eq!(call(b.port, &svc, "POST", "/v1/tenants/acme/decrypt", Some(decrypt.clone())).await.0, 200, "B still serves its cache");

    // Rejoined: B learns of the revocation from the store and refuses too.
    proxy.restore();
    let rejoined = until_status(b.port, &svc, &decrypt, 403, Duration::from_secs(15)).await;
    eprintln!("MEASURE a node cut off from PostgreSQL refuses a revoked tenant {rejoined:?} after the store returns");
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(b.port, "", "GET", "/readyz", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "ready again once the store answers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, tickets) = call(b.port, &op, "GET", "/v1/tickets", None).await;
    assert_eq!(tickets.as_array().map(Vec::len), Some(1), "one ticket: {tickets}");

    // The customer restores and says "ready" on both nodes at once: one restoration, one ticket.
    set_trust(added["instructions"]["trust_policy"].clone()).await;
    let (ra, rb) = tokio::join!(
        call(a.port, &op, "POST", "/v1/tenants/acme/restore", None),
        call(b.port, &op, "POST", "/v1/tenants/acme/restore", None)
    );
    assert!(ra.0 == 200 || rb.0 == 200, "one of them restores: {ra:?} {rb:?}");
    for (status, body) in [&ra, &rb] {
        assert!([200, 409].contains(status), "{status} {body}");
    }
    for port in [a.port, b.port] {
        until_status(port, &svc, &decrypt, 200, Duration::from_secs(10)).await;
        assert_eq!(call(port, &op, "GET", "/v1/tenants/acme", None).await.1["state"], "active");
    }
    let (_, tickets) = call(a.port, &op, "GET", "/v1/tickets", None).await;
    assert_eq!(tickets.as_array().map(Vec::len), Some(1), "still one ticket: {tickets}");
    assert_eq!(tickets[0]["status"], "resolved", "{tickets}");

    drop((a, b));
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await.expect("drop schema");
}
