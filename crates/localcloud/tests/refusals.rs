//! Every way a request can be refused gets AWS's own code and status, never a 500, and the
//! server stays up: authentication failures, malformed input, unknown operations.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{Creds, Localcloud, SignWith, account, admin, create_role, kms, kms_at, query, role_credentials, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures_use_each_services_codes() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let acct = account(&ep, "customer", None).await;
    let host = ep.trim_start_matches("http://");
    let now = OffsetDateTime::now_utc();

    // No signature at all.
    let (status, _, body) =
        send(&ep, "POST", "/", &[("x-amz-target".into(), "TrentService.ListKeys".into()), ("host".into(), host.into())], b"{}".to_vec())
            .await
            .expect("answer");
    assert_eq!((status, code(&body)), (400, "MissingAuthenticationTokenException".into()));
    let (status, _, body) =
        send(&ep, "POST", "/", &[("host".into(), host.into())], b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())
            .await
            .expect("answer");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("<Code>MissingAuthenticationToken</Code>"));

    let unknown = Creds { access_key_id: "AKIAUNKNOWNUNKNOWN00".into(), ..acct.root.clone() };
    let wrong_secret = Creds { secret_access_key: format!("{}x", acct.root.secret_access_key), ..acct.root.clone() };
    let cases: Vec<(&Creds, OffsetDateTime, u16, &str, &str)> = vec![
        (&unknown, now, 400, "UnrecognizedClientException", "security token included in the request is invalid"),
        (&wrong_secret, now, 400, "InvalidSignatureException", "signature we calculated does not match"),
        (&acct.root, now - time::Duration::minutes(10), 400, "InvalidSignatureException", "Signature expired"),
        (&acct.root, now + time::Duration::minutes(10), 400, "InvalidSignatureException", "Signature not yet current"),
    ];
    for (creds, at, status, code_want, message) in cases {
        let (got, body) = kms_at(&ep, creds, "eu-west-1", "ListKeys", &json!({}), at).await;
        assert_eq!((got, body["__type"].as_str().unwrap_or_default()), (status, code_want), "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(message), "{body}");
    }
    for (creds, code_want) in [(&unknown, "InvalidClientTokenId"), (&wrong_secret, "SignatureDoesNotMatch")] {
        let (status, xml) = query(&ep, creds, "sts", "us-east-1", &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]).await;
        assert_eq!(status, 403, "{xml}");
        assert!(xml.contains(&format!("<Code>{code_want}</Code>")), "{xml}");
    }

    // Instance-profile credentials only for a role that trusts EC2, as on AWS.
    let other = create_role(&ep, &acct.root, "not-for-ec2").await;
    let deny_ec2 = r#"{"Statement":[{"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (status, xml) = query(
        &ep,
        &acct.root,
        "iam",
        "us-east-1",
        &[("Action", "UpdateAssumeRolePolicy"), ("Version", "2010-05-08"), ("RoleName", "not-for-ec2"), ("PolicyDocument", deny_ec2)],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let (status, body) = admin(&ep, "POST", "/_localcloud/role-credentials", Some(json!({ "role_arn": other }))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("access_denied")), "{body}");

    // A role session: tampered token, then an expired one (the clock moved past its end).
    let role_arn = create_role(&ep, &acct.root, "app").await;
    let session = role_credentials(&ep, &role_arn).await;
    let mut tampered = session.clone();
    // Change the first character (to one it is not: a token that already starts with 'A' would
    // otherwise come out untouched, one run in sixty-four).
    tampered.session_token = session.session_token.as_ref().map(|t| format!("{}{}", if t.starts_with('A') { 'B' } else { 'A' }, &t[1..]));
    let (status, body) = kms(&ep, &tampered, "eu-west-1", "ListKeys", json!({})).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("UnrecognizedClientException")), "{body}");
    let (status, _) = kms(&ep, &session, "eu-west-1", "ListKeys", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(admin(&ep, "POST", "/_localcloud/clock", Some(json!({ "advance_seconds": 3601 }))).await.0, 200);
    let (status, body) = kms(&ep, &session, "eu-west-1", "ListKeys", json!({})).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("ExpiredTokenException")), "{body}");
    let (status, xml) = query(&ep, &session, "iam", "us-east-1", &[("Action", "ListRoles")]).await;
    assert_eq!(status, 403);
    assert!(xml.contains("<Code>ExpiredToken</Code>"), "{xml}");
    let (status, xml) = query(&ep, &session, "sts", "us-east-1", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 400);
    assert!(xml.contains("<Code>ExpiredTokenException</Code>"), "{xml}");
}

fn code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| v["__type"].as_str().map(str::to_string)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_with_the_right_code() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let acct = account(&ep, "customer", None).await;
    let root = &acct.root;
    let (_, created) = kms(&ep, root, "eu-west-1", "CreateKey", json!({})).await;
    let key = created["KeyMetadata"]["KeyId"].as_str().expect("key").to_string();

    // Raw bodies, signed correctly, that no SDK would send.
    let host = ep.trim_start_matches("http://");
    for (target, body, want) in [
        ("TrentService.Encrypt", &b"{not json"[..], "SerializationException"),
        ("TrentService.Encrypt", b"[1,2]", "SerializationException"),
        ("TrentService.Frobnicate", b"{}", "UnknownOperationException"),
    ] {
        let headers = root.signer("eu-west-1", "kms").sign("POST", host, "/", &[("x-amz-target", target)], body, OffsetDateTime::now_utc());
        let (status, _, answer) = send(&ep, "POST", "/", &headers, body.to_vec()).await.expect("answer");
        assert_eq!((status, code(&answer)), (400, want.to_string()), "{target} {}", String::from_utf8_lossy(body));
    }
    let big = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![0u8; 4097]);
    for (operation, input, want) in [
        ("Encrypt", json!({ "KeyId": 7, "Plaintext": "aGk=" }), "SerializationException"),
        ("Encrypt", json!({ "KeyId": key, "Plaintext": "not base64!" }), "SerializationException"),
        ("Encrypt", json!({ "KeyId": key, "Plaintext": big }), "ValidationException"),
        ("Encrypt", json!({ "Plaintext": "aGk=" }), "ValidationException"),
        ("Encrypt", json!({ "KeyId": key, "Plaintext": "aGk=", "EncryptionContext": { "a": 1 } }), "SerializationException"),
        ("Encrypt", json!({ "KeyId": key, "Plaintext": "aGk=", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256" }), "InvalidKeyUsageException"),
        ("Encrypt", json!({ "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "Plaintext": "aGk=" }), "NotFoundException"),
        ("Decrypt", json!({ "CiphertextBlob": "aGVsbG8gd29ybGQ=" }), "InvalidCiphertextException"),
        ("Decrypt", json!({}), "ValidationException"),
        ("ScheduleKeyDeletion", json!({ "KeyId": key, "PendingWindowInDays": 6 }), "ValidationException"),
        ("ListKeys", json!({ "Limit": 0 }), "ValidationException"),
        ("CreateAlias", json!({ "AliasName": "alias/x", "TargetKeyId": "alias/y" }), "NotFoundException"),
        ("UpdateAlias", json!({ "AliasName": "alias/none", "TargetKeyId": key }), "NotFoundException"),
        ("UpdateAlias", json!({ "AliasName": "alias/none" }), "ValidationException"),
        ("PutKeyPolicy", json!({ "KeyId": key, "Policy": "[]" }), "MalformedPolicyDocumentException"),
    ] {
        let (status, body) = kms(&ep, root, "eu-west-1", operation, input.clone()).await;
        assert_eq!((status, body["__type"].as_str().unwrap_or_default()), (400, want), "{operation} {input}: {body}");
    }

    for (service, params, status_want, want) in [
        ("iam", vec![("Action", "Frobnicate")], 400, "InvalidAction"),
        ("iam", vec![("Version", "2010-05-08")], 400, "MissingAction"),
        ("iam", vec![("Action", "GetRole")], 400, "MissingParameter"),
        ("iam", vec![("Action", "ListRoles"), ("MaxItems", "many")], 400, "ValidationError"),
        ("iam", vec![("Action", "CreateRole"), ("RoleName", "r"), ("AssumeRolePolicyDocument", "%%%")], 400, "MalformedPolicyDocument"),
        ("sts", vec![("Action", "AssumeRole"), ("RoleArn", "arn:aws:iam::1:role/x"), ("RoleSessionName", "a b")], 400, "ValidationError"),
    ] {
        let (status, xml) = query(&ep, root, service, "us-east-1", &params).await;
        assert_eq!(status, status_want, "{params:?}: {xml}");
        assert!(xml.contains(&format!("<Code>{want}</Code>")), "{params:?}: {xml}");
    }

    // Too large a body; a service localcloud does not emulate; the admin surface's own errors.
    let huge = vec![b'x'; 300 * 1024];
    let (status, _, _) = send(&ep, "POST", "/", &[("host".into(), host.into())], huge).await.expect("answer");
    assert_eq!(status, 413);
    let s3 = root.signer("us-east-1", "s3").sign("GET", host, "/", &[], b"", OffsetDateTime::now_utc());
    let (status, _, body) = send(&ep, "GET", "/", &s3, Vec::new()).await.expect("answer");
    assert_eq!((status, code(&body)), (400, "UnrecognizedServiceException".into()));
    for (method, path, body, status_want) in [
        ("POST", "/_localcloud/accounts", Some(json!({ "nome": "x" })), 400),
        ("POST", "/_localcloud/accounts", Some(json!({ "name": "x", "account_id": "12" })), 400),
        ("POST", "/_localcloud/faults", Some(json!({ "kind": "meteor" })), 400),
        ("POST", "/_localcloud/faults", Some(json!({ "kind": "error", "status": 404 })), 400),
        ("POST", "/_localcloud/faults", Some(json!({ "kind": "throttle", "colour": "red" })), 400),
        ("POST", "/_localcloud/clock", Some(json!({})), 400),
        ("DELETE", "/_localcloud/faults/none", None, 404),
        ("GET", "/_localcloud/nothing", None, 404),
        ("PUT", "/_localcloud/clock", None, 405),
    ] {
        let (status, answer) = admin(&ep, method, path, body.clone()).await;
        assert_eq!(status, status_want, "{method} {path} {body:?}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    let (status, health) = admin(&ep, "GET", "/_localcloud/health", None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

/// Input that once panicked the handler or broke the data directory for good: a presigned URL
/// dated in the year 9999, a clock moved a million years, a signature that leaves out `host`.
/// Each is refused with a 4xx and the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_panics() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let acct = account(&ep, "customer", None).await;
    let far = format!(
        "/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}%2F99991231%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature={}",
        acct.root.access_key_id,
        "0".repeat(64)
    );
    let host = ep.trim_start_matches("http://").to_string();
    let (status, _, body) =
        send(&ep, "GET", &far, &[("host".into(), host.clone())], Vec::new()).await.expect("an answer, not a dropped connection");
    assert!((400..500).contains(&status), "{status} {}", String::from_utf8_lossy(&body));

    // The clock: absurd offsets are refused before anything is saved.
    for body in [
        json!({ "offset_seconds": i64::MAX }),
        json!({ "advance_seconds": 1_000_000i64 * 365 * 86_400 }),
        json!({ "advance_seconds": i64::MIN }),
    ] {
        let (status, answer) = admin(&ep, "POST", "/_localcloud/clock", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (status, clock) = admin(&ep, "GET", "/_localcloud/clock", None).await;
    assert_eq!((status, clock["offset_seconds"].as_i64()), (200, Some(0)), "{clock}");

    // A header signature whose signed headers leave out host.
    let signed = acct.root.signer("us-east-1", "sts").sign(
        "POST",
        &host,
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"Action=GetCallerIdentity&Version=2011-06-15",
        OffsetDateTime::now_utc(),
    );
    let without_host: Vec<(String, String)> =
        signed
            .into_iter()
            .map(|(k, v)| {
                if k == "authorization" {
                    (k, v.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;"))
                } else {
                    (k, v)
                }
            })
            .collect();
    let (status, _, body) =
        send(&ep, "POST", "/", &without_host, b"Action=GetCallerIdentity&Version=2011-06-15".to_vec()).await.expect("answer");
    assert!((400..500).contains(&status), "{status} {}", String::from_utf8_lossy(&body));
    // Still serving.
    assert_eq!(admin(&ep, "GET", "/_localcloud/health", None).await.0, 200);
}

/// The admin endpoints over a real socket: a web page's request (Origin), a rebound host name,
/// and a cross-site form post are refused; a token, once required, is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoints_refuse_web_pages() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let host = ep.trim_start_matches("http://").to_string();
    let body = br#"{"advance_seconds": 86400}"#.to_vec();
    let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    for (headers, want) in [
        (h(&[("host", &host), ("content-type", "application/json"), ("origin", "https://evil.example")]), 403),
        (h(&[("host", "evil.example:4566"), ("content-type", "application/json")]), 403),
        (h(&[("host", &host), ("content-type", "text/plain")]), 415),
        (h(&[("host", &host)]), 415),
    ] {
        let (status, _, answer) = send(&ep, "POST", "/_localcloud/clock", &headers, body.clone()).await.expect("answer");
        assert_eq!(status, want, "{headers:?}: {}", String::from_utf8_lossy(&answer));
    }
    let (_, clock) = admin(&ep, "GET", "/_localcloud/clock", None).await;
    assert_eq!(clock["offset_seconds"].as_i64(), Some(0), "no refused request moved the clock");
    lc.running.cloud.set_admin_token(Some(zeroize::Zeroizing::new("admin-secret".into())));
    let ok = h(&[("host", &host), ("content-type", "application/json")]);
    assert_eq!(send(&ep, "POST", "/_localcloud/clock", &ok, body.clone()).await.expect("answer").0, 401);
    let mut with = ok.clone();
    with.push(("authorization".into(), "Bearer admin-secret".into()));
    assert_eq!(send(&ep, "POST", "/_localcloud/clock", &with, body).await.expect("answer").0, 200);
}

/// A role session writes IAM only as far as its identity policies allow (a session with no
/// permissions rewrote a customer role's trust policy and put `Allow * *` on its own role), and
/// an explicit `Deny sts:AssumeRole` in the caller's own policy beats any trust policy.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_sessions_are_held_to_their_identity_policies() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let acct = account(&ep, "customer", None).await;
    // "app" may use KMS and assume roles, nothing in IAM.
    let app = create_role(&ep, &acct.root, "app").await;
    create_role(&ep, &acct.root, "victim").await;
    let session = role_credentials(&ep, &app).await;
    let iam = |creds: Creds, params: Vec<(&'static str, String)>| {
        let ep = ep.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("Version", "2010-05-08")];
            all.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
            query(&ep, &creds, "iam", "us-east-1", &all).await
        }
    };
    let open_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let everything = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let writes = [
        vec![("Action", "UpdateAssumeRolePolicy".to_string()), ("RoleName", "victim".into()), ("PolicyDocument", open_trust.into())],
        vec![
            ("Action", "PutRolePolicy".into()),
            ("RoleName", "app".into()),
            ("PolicyName", "all".into()),
            ("PolicyDocument", everything.into()),
        ],
        vec![("Action", "CreateRole".into()), ("RoleName", "new".into()), ("AssumeRolePolicyDocument", open_trust.into())],
        vec![("Action", "DeleteRole".into()), ("RoleName", "victim".into())],
    ];
    for params in &writes {
        let (status, xml) = iam(session.clone(), params.clone()).await;
        assert_eq!(status, 403, "{params:?}: {xml}");
        assert!(xml.contains("<Code>AccessDenied</Code>") && xml.contains("is not authorized to perform: iam:"), "{xml}");
    }
    // Reads stay open, and the root grants one write on one role: that one goes through.
    assert_eq!(iam(session.clone(), vec![("Action", "GetRole".into()), ("RoleName", "victim".into())]).await.0, 200);
    let grant = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:UpdateAssumeRolePolicy","Resource":"arn:aws:iam::*:role/victim"}]}"#;
    let (status, xml) = iam(
        acct.root.clone(),
        vec![
            ("Action", "PutRolePolicy".into()),
            ("RoleName", "app".into()),
            ("PolicyName", "grant".into()),
            ("PolicyDocument", grant.into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(iam(session.clone(), writes[0].clone()).await.0, 200, "allowed on victim");
    assert_eq!(iam(session.clone(), writes[1].clone()).await.0, 403, "still nothing else");

    // An explicit Deny of sts:AssumeRole in the caller's own policy beats a trust policy that
    // names it (victim now trusts everyone).
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    let (status, xml) = iam(
        acct.root.clone(),
        vec![
            ("Action", "PutRolePolicy".into()),
            ("RoleName", "app".into()),
            ("PolicyName", "no-assume".into()),
            ("PolicyDocument", deny.into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let victim = format!("arn:aws:iam::{}:role/victim", acct.id);
    let (status2, xml2) = query(
        &ep,
        &session,
        "sts",
        "us-east-1",
        &[("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", &victim), ("RoleSessionName", "s1")],
    )
    .await;
    assert_eq!(status2, 403, "{xml2}");
    assert!(xml2.contains("<Code>AccessDenied</Code>"), "{xml2}");
}
