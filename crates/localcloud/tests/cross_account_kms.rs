//! A customer's key used from another account, as customer-managed keys (CMK) are: with the real
//! `aws` CLI, decided as AWS decides it.
//!
//! <https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html>:
//! "Giving users in a different account permission to use a KMS key requires two different types
//! of policies": the key policy must give the external account (or a principal in it) permission,
//! and an IAM policy in the external account must delegate that permission to its users and
//! roles. An explicit Deny in either wins. Across accounts a key is named by its key ARN or alias
//! ARN, never by an alias name (which is looked up in the caller's own account).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{Localcloud, account, aws_err, aws_ok, role_credentials, send};

const REGION: &str = "eu-central-1";

/// A key policy: the customer administers; `grants` are the statements for the provider.
fn policy(customer: &str, grants: Vec<Value>) -> String {
    let mut statements = vec![
        json!({ "Sid": "Admin", "Effect": "Allow", "Principal": { "AWS": format!("arn:aws:iam::{customer}:root") }, "Action": "kms:*", "Resource": "*" }),
    ];
    statements.extend(grants);
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// The provider's statements: DescribeKey, and Encrypt/Decrypt — under `context` if given (a
/// context condition on DescribeKey would never match: it has no encryption context).
fn grant(effect: &str, principal: &str, context: Option<(&str, &str)>) -> Vec<Value> {
    let mut crypto = json!({
        "Effect": effect,
        "Principal": { "AWS": principal },
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*"
    });
    if let Some((k, v)) = context {
        crypto["Condition"] = json!({ "StringEquals": { format!("kms:EncryptionContext:{k}"): v } });
    }
    vec![json!({ "Effect": effect, "Principal": { "AWS": principal }, "Action": "kms:DescribeKey", "Resource": "*" }), crypto]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_another_account_needs_its_key_policy_and_the_callers_own_allow() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let provider = account(&ep, "provider", None).await;
    let customer = account(&ep, "customer", None).await;
    let (p, c) = (&provider.root, &customer.root);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws_ok(&ep, p, "us-east-1", &["iam", "create-role", "--role-name", "broker", "--assume-role-policy-document", trust]).await;
    let role = format!("arn:aws:iam::{}:role/broker", provider.id);
    let broker = role_credentials(&ep, &role).await;
    let identity = |actions: &str| {
        json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "arn:aws:kms:*:*:key/*" }] })
            .to_string()
    };
    let put_identity = async |document: String| {
        aws_ok(
            &ep,
            p,
            "us-east-1",
            &["iam", "put-role-policy", "--role-name", "broker", "--policy-name", "kms", "--policy-document", &document],
        )
        .await;
    };

    let key =
        aws_ok(&ep, c, REGION, &["kms", "create-key", "--policy", &policy(&customer.id, grant("Allow", &role, Some(("tenant", "acme"))))])
            .await;
    let arn = key["KeyMetadata"]["Arn"].as_str().expect("arn").to_string();
    aws_ok(&ep, c, REGION, &["kms", "create-alias", "--alias-name", "alias/byok-acme", "--target-key-id", &arn]).await;
    let alias_arn = format!("arn:aws:kms:{REGION}:{}:alias/byok-acme", customer.id);
    // CLI v1 sends a blob argument's text as the bytes (and answers blobs in base64).
    let plaintext = "tenant-key".to_string();
    let encrypt = |key: &str, tenant: &str| {
        let context = format!("tenant={tenant}");
        vec![
            "kms".to_string(),
            "encrypt".into(),
            "--key-id".into(),
            key.into(),
            "--plaintext".into(),
            plaintext.clone(),
            "--encryption-context".into(),
            context,
        ]
    };
    let run_ok = async |v: Vec<String>| aws_ok(&ep, &broker, REGION, &v.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let run_err =
        async |v: Vec<String>, code: &str| aws_err(&ep, &broker, REGION, &v.iter().map(String::as_str).collect::<Vec<_>>(), code).await;

    // The key policy allows the role, but the role's own account has not delegated it: refused.
    let refused = run_err(encrypt(&arn, "acme"), "AccessDeniedException").await;
    assert!(refused.contains("broker"), "{refused}");
    aws_err(&ep, &broker, REGION, &["kms", "describe-key", "--key-id", &arn], "AccessDeniedException").await;

    // With the role's own Allow: described by key ARN and by alias ARN, and used under the context.
    put_identity(identity("kms:*")).await;
    for id in [&arn, &alias_arn] {
        let described = aws_ok(&ep, &broker, REGION, &["kms", "describe-key", "--key-id", id]).await;
        assert_eq!(described["KeyMetadata"]["Arn"].as_str(), Some(arn.as_str()));
    }
    // An alias name is looked up in the caller's own account, where there is none.
    aws_err(&ep, &broker, REGION, &["kms", "describe-key", "--key-id", "alias/byok-acme"], "NotFoundException").await;
    let sealed = run_ok(encrypt(&arn, "acme")).await;
    let path = lc.dir.path().join("sealed.bin");
    std::fs::write(&path, STANDARD.decode(sealed["CiphertextBlob"].as_str().expect("blob")).expect("base64")).expect("write");
    let blob = format!("fileb://{}", path.display());
    let decrypt = |context: &str| {
        vec![
            "kms".to_string(),
            "decrypt".into(),
            "--ciphertext-blob".into(),
            blob.clone(),
            "--encryption-context".into(),
            context.to_string(),
        ]
    };
    let opened = run_ok(decrypt("tenant=acme")).await;
    assert_eq!(opened["Plaintext"].as_str(), Some(STANDARD.encode(&plaintext).as_str()));
    // Another tenant's context is outside the grant.
    run_err(encrypt(&arn, "globex"), "AccessDeniedException").await;

    // The role's own policy allows only DescribeKey: the key policy alone does not make up for it.
    put_identity(identity("kms:DescribeKey")).await;
    aws_ok(&ep, &broker, REGION, &["kms", "describe-key", "--key-id", &arn]).await;
    run_err(decrypt("tenant=acme"), "AccessDeniedException").await;
    put_identity(identity("kms:*")).await;

    // A key policy naming the provider's account (not the role) delegates to that account's IAM.
    let by_account = policy(&customer.id, grant("Allow", &format!("arn:aws:iam::{}:root", provider.id), None));
    aws_ok(&ep, c, REGION, &["kms", "put-key-policy", "--key-id", &arn, "--policy-name", "default", "--policy", &by_account]).await;
    run_ok(decrypt("tenant=acme")).await;
    // Without any statement for the provider: refused, whatever its own policy says.
    aws_ok(
        &ep,
        c,
        REGION,
        &["kms", "put-key-policy", "--key-id", &arn, "--policy-name", "default", "--policy", &policy(&customer.id, vec![])],
    )
    .await;
    run_err(decrypt("tenant=acme"), "AccessDeniedException").await;
    // An explicit Deny in the key policy wins over every Allow.
    let denied = policy(&customer.id, [grant("Allow", &role, None), grant("Deny", &role, None)].concat());
    aws_ok(&ep, c, REGION, &["kms", "put-key-policy", "--key-id", &arn, "--policy-name", "default", "--policy", &denied]).await;
    run_err(decrypt("tenant=acme"), "AccessDeniedException").await;
    // So does one in the caller's own policy.
    aws_ok(
        &ep,
        c,
        REGION,
        &[
            "kms",
            "put-key-policy",
            "--key-id",
            &arn,
            "--policy-name",
            "default",
            "--policy",
            &policy(&customer.id, grant("Allow", &role, None)),
        ],
    )
    .await;
    run_ok(decrypt("tenant=acme")).await;
    let deny_own = json!({ "Version": "2012-10-17", "Statement": [
        { "Effect": "Allow", "Action": "kms:*", "Resource": "*" },
        { "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*" }
    ] });
    put_identity(deny_own.to_string()).await;
    run_err(decrypt("tenant=acme"), "AccessDeniedException").await;
    put_identity(identity("kms:*")).await;
    // A disabled key refuses the provider as it refuses its owner.
    aws_ok(&ep, c, REGION, &["kms", "disable-key", "--key-id", &arn]).await;
    run_err(decrypt("tenant=acme"), "DisabledException").await;

    // The customer reads the provider's use in its own trail: the event is recorded for the key's
    // account, with the provider's identity and the encryption context as CloudTrail shows them.
    let host = ep.trim_start_matches("http://").to_string();
    let path = format!("/_localcloud/trail?account={}&event=Decrypt", customer.id);
    let (_, _, body) = send(&ep, "GET", &path, &[("host".into(), host)], Vec::new()).await.expect("trail");
    let events: Vec<Value> = String::from_utf8_lossy(&body).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let ok = events.iter().find(|e| e["error_code"].is_null()).expect("a successful cross-account Decrypt in the customer's trail");
    assert_eq!(ok["recipient_account_id"].as_str(), Some(customer.id.as_str()), "{ok}");
    assert_eq!(ok["user_identity"]["account_id"].as_str(), Some(provider.id.as_str()), "{ok}");
    assert!(ok["user_identity"]["arn"].as_str().is_some_and(|a| a.contains(":assumed-role/broker/")), "{ok}");
    assert_eq!(ok["encryption_context"], json!({ "tenant": "acme" }), "{ok}");
    assert!(events.iter().any(|e| e["error_code"] == "AccessDeniedException"), "refusals are in the trail too");
}
