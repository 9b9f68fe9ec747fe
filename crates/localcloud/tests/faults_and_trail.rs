//! Fault injection per service and region, and the CloudTrail-like trail.

use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{Localcloud, SignWith, account, admin, create_role, kms, query, role_credentials, send};

async fn fault(ep: &str, spec: Value) -> String {
    let (status, rule) = admin(ep, "POST", "/_localcloud/faults", Some(spec)).await;
    assert_eq!(status, 201, "{rule}");
    rule["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_hit_only_their_service_and_region() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let acct = account(&ep, "customer", None).await;
    let root = &acct.root;
    let list = |region: &'static str| kms(&ep, root, region, "ListKeys", json!({}));

    let id = fault(&ep, json!({ "service": "kms", "region": "eu-west-1", "kind": "throttle" })).await;
    for _ in 0..3 {
        let (status, body) = list("eu-west-1").await;
        assert_eq!((status, body["__type"].as_str()), (400, Some("ThrottlingException")));
    }
    assert_eq!(list("eu-central-1").await.0, 200, "another region is not affected");
    let (status, _) = query(&ep, root, "sts", "eu-west-1", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 200, "another service is not affected");
    let (_, rules) = admin(&ep, "GET", "/_localcloud/faults", None).await;
    assert_eq!(rules[0]["hits"], 3);
    assert_eq!(admin(&ep, "DELETE", &format!("/_localcloud/faults/{id}"), None).await.0, 200);
    assert_eq!(list("eu-west-1").await.0, 200);

    fault(&ep, json!({ "service": "sts", "kind": "error", "status": 500 })).await;
    let (status, xml) = query(&ep, root, "sts", "us-east-1", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 500);
    assert!(xml.contains("<Type>Receiver</Type>"), "{xml}");
    fault(&ep, json!({ "service": "kms", "operation": "ListKeys", "kind": "error", "status": 503, "count": 2 })).await;
    assert_eq!(list("eu-central-1").await.0, 503);
    assert_eq!(list("eu-central-1").await.0, 503);
    assert_eq!(list("eu-central-1").await.0, 200, "a counted rule retires");

    // A dropped connection gets no answer at all.
    fault(&ep, json!({ "service": "kms", "kind": "drop", "count": 1 })).await;
    let host = ep.trim_start_matches("http://");
    let headers = root.signer("eu-west-1", "kms").sign(
        "POST",
        host,
        "/",
        &[("x-amz-target", "TrentService.ListKeys")],
        b"{}",
        time::OffsetDateTime::now_utc(),
    );
    assert!(send(&ep, "POST", "/", &headers, b"{}".to_vec()).await.is_none());

    // Latency delays the answer by at least what was asked.
    fault(&ep, json!({ "service": "kms", "kind": "latency", "ms": 300, "count": 1 })).await;
    let started = Instant::now();
    assert_eq!(list("eu-west-1").await.0, 200);
    assert!(started.elapsed().as_millis() >= 300);

    // A probability of 0 never fires; clearing removes everything.
    fault(&ep, json!({ "kind": "throttle", "probability": 0.0 })).await;
    assert_eq!(list("eu-west-1").await.0, 200);
    let (status, cleared) = admin(&ep, "DELETE", "/_localcloud/faults", None).await;
    assert_eq!(status, 200);
    assert!(cleared["removed"].as_u64().is_some_and(|n| n >= 2), "{cleared}");
    assert_eq!(admin(&ep, "GET", "/_localcloud/faults", None).await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_records_who_did_what_and_never_secrets() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let acct = account(&ep, "customer", None).await;
    let role_arn = create_role(&ep, &acct.root, "byok-key-management").await;
    let session = role_credentials(&ep, &role_arn).await;
    let (_, created) = kms(&ep, &acct.root, "eu-west-1", "CreateKey", json!({})).await;
    let key = created["KeyMetadata"]["Arn"].as_str().expect("arn").to_string();
    let plaintext_b64 = "dGhlLXNlY3JldC1wbGFpbnRleHQ=";
    let (_, sealed) = kms(
        &ep,
        &session,
        "eu-west-1",
        "Encrypt",
        json!({ "KeyId": key, "Plaintext": plaintext_b64, "EncryptionContext": { "tenant": "t1" } }),
    )
    .await;
    kms(&ep, &acct.root, "eu-west-1", "DisableKey", json!({ "KeyId": key })).await;
    kms(
        &ep,
        &session,
        "eu-west-1",
        "Decrypt",
        json!({ "CiphertextBlob": sealed["CiphertextBlob"], "EncryptionContext": { "tenant": "t1" } }),
    )
    .await;

    let host = ep.trim_start_matches("http://").to_string();
    let (_, _, body) = send(&ep, "GET", "/_localcloud/trail", &[("host".into(), host.clone())], Vec::new()).await.expect("trail");
    let text = String::from_utf8_lossy(&body).into_owned();
    for secret in [
        plaintext_b64,
        acct.root.secret_access_key.as_str(),
        session.secret_access_key.as_str(),
        session.session_token.as_deref().unwrap_or("?"),
    ] {
        assert!(!text.contains(secret), "the trail holds a secret");
    }
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event_name"].as_str()).collect();
    assert_eq!(names, ["CreateRole", "PutRolePolicy", "CreateKey", "Encrypt", "DisableKey", "Decrypt"]);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let encrypt = &events[3];
    assert_eq!(encrypt["user_identity"]["type"], "AssumedRole");
    assert_eq!(encrypt["user_identity"]["session_name"], "broker");
    assert_eq!(encrypt["resources"][0], key.as_str());
    assert_eq!(encrypt["encryption_context"]["tenant"], "t1");
    assert_eq!(encrypt["aws_region"], "eu-west-1");
    let decrypt = &events[5];
    assert_eq!(decrypt["error_code"], "DisabledException");

    // Filters and paging.
    let since = seqs[3];
    let (status, _, page) =
        send(&ep, "GET", &format!("/_localcloud/trail?since={since}&event=Decrypt&limit=5"), &[("host".into(), host.clone())], Vec::new())
            .await
            .expect("trail");
    let page = String::from_utf8_lossy(&page).into_owned();
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.lines().count(), 1, "{page}");
    assert!(page.contains("\"event_name\":\"Decrypt\""), "{page}");
}
