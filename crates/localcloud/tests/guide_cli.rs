//! The customer's side of `docs/customer-guide.md` (steps 1–12), with the real `aws` CLI: the
//! trust statement set to Deny refuses the provider's AssumeRole, `update-assume-role-policy`
//! back to Allow lets it through; `disable-key` stops Encrypt, Decrypt and GenerateDataKey with
//! `DisabledException`, `enable-key` restores them; each region is independent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::support::{Creds, Localcloud, account, aws_err, aws_ok, role_credentials, trust_policy};

const REGIONS: [&str; 2] = ["eu-central-1", "eu-west-1"];
const PROVIDER_ACCOUNT: &str = "279766244153";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_procedure_works_step_by_step_with_the_aws_cli() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();

    // The provider, with its own role (Cryptor-OSB-Provider), as its broker runs.
    let provider = account(&ep, "provider", Some(PROVIDER_ACCOUNT)).await;
    let provider_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws_ok(
        &ep,
        &provider.root,
        "us-east-1",
        &["iam", "create-role", "--role-name", "Cryptor-OSB-Provider", "--assume-role-policy-document", provider_trust],
    )
    .await;
    // Its own permission to assume customers' roles (on AWS, cross-account AssumeRole needs the
    // caller's identity policy to allow it, beside the role's trust policy).
    let may_assume =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/*"}]}"#;
    aws_ok(
        &ep,
        &provider.root,
        "us-east-1",
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "Cryptor-OSB-Provider",
            "--policy-name",
            "assume-customer-roles",
            "--policy-document",
            may_assume,
        ],
    )
    .await;
    let provider_role = format!("arn:aws:iam::{PROVIDER_ACCOUNT}:role/Cryptor-OSB-Provider");
    let broker = role_credentials(&ep, &provider_role).await;

    // The customer: the role (the vendor's name, atlassian-key-management) with a trust statement for the provider, and a key per region.
    let customer = account(&ep, "customer", None).await;
    let c = &customer.root;
    let external_id = "byok-tenant-4f1c2a";
    let allow = trust_policy("Allow", &provider_role, Some(external_id));
    let role = aws_ok(
        &ep,
        c,
        "us-east-1",
        &["iam", "create-role", "--role-name", "atlassian-key-management", "--assume-role-policy-document", &allow],
    )
    .await;
    let role_arn = role["Role"]["Arn"].as_str().expect("role arn").to_string();
    // The role may use the account's keys: an identity policy (the default key policy lets IAM
    // policies decide; byok's own setup grants it in each key's policy instead).
    let kms_use = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:DescribeKey","kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}]}"#;
    aws_ok(
        &ep,
        c,
        "us-east-1",
        &["iam", "put-role-policy", "--role-name", "atlassian-key-management", "--policy-name", "kms-use", "--policy-document", kms_use],
    )
    .await;
    assert_eq!(role_arn, format!("arn:aws:iam::{}:role/atlassian-key-management", customer.id));
    let mut keys = Vec::new();
    for region in REGIONS {
        let key = aws_ok(&ep, c, region, &["kms", "create-key", "--description", "cryptor key"]).await;
        let key_id = key["KeyMetadata"]["KeyId"].as_str().expect("key id").to_string();
        aws_ok(&ep, c, region, &["kms", "create-alias", "--alias-name", "alias/cryptor-byok", "--target-key-id", &key_id]).await;
        keys.push(key["KeyMetadata"]["Arn"].as_str().expect("arn").to_string());
    }

    // The provider assumes the customer's role with the external id, and uses each key.
    let session = assume(&ep, &broker, &role_arn, Some(external_id)).await.expect("assume with the external id");
    aws_err(
        &ep,
        &broker,
        "us-east-1",
        &["sts", "assume-role", "--role-arn", &role_arn, "--role-session-name", "byok-probe"],
        "AccessDenied",
    )
    .await;
    let mut blobs = Vec::new();
    for (region, key) in REGIONS.iter().zip(&keys) {
        // CLI v1 sends a blob argument's text as the bytes; ciphertext goes back in as fileb://.
        let out = aws_ok(
            &ep,
            &session,
            region,
            &["kms", "encrypt", "--key-id", key, "--plaintext", "hello-byok", "--encryption-context", "tenant=t1"],
        )
        .await;
        let path = lc.dir.path().join(format!("{region}.blob"));
        std::fs::write(&path, STANDARD.decode(out["CiphertextBlob"].as_str().expect("blob")).expect("base64")).expect("write blob");
        blobs.push(format!("fileb://{}", path.display()));
    }

    // Revocation, the way the guide undoes it: the provider's statement set to Deny.
    let deny = trust_policy("Deny", &provider_role, Some(external_id));
    aws_ok(
        &ep,
        c,
        "us-east-1",
        &["iam", "update-assume-role-policy", "--role-name", "atlassian-key-management", "--policy-document", &deny],
    )
    .await;
    let refused = aws_err(&ep, &broker, "us-east-1", &assume_args(&role_arn, external_id), "AccessDenied").await;
    assert!(refused.contains("is not authorized to perform: sts:AssumeRole"), "{refused}");
    // Steps 3–8: the statement back to Allow; the provider gets through again.
    let got = aws_ok(&ep, c, "us-east-1", &["iam", "get-role", "--role-name", "atlassian-key-management"]).await;
    assert_eq!(got["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Effect"], "Deny");
    aws_ok(
        &ep,
        c,
        "us-east-1",
        &["iam", "update-assume-role-policy", "--role-name", "atlassian-key-management", "--policy-document", &allow],
    )
    .await;
    assume(&ep, &broker, &role_arn, Some(external_id)).await.expect("assume after the restore");

    // Revocation by key: disabled in eu-west-1 only; eu-central-1 keeps working.
    let (west, west_key, west_blob) = (REGIONS[1], &keys[1], &blobs[1]);
    aws_ok(&ep, c, west, &["kms", "disable-key", "--key-id", west_key]).await;
    let described = aws_ok(&ep, c, west, &["kms", "describe-key", "--key-id", "alias/cryptor-byok"]).await;
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");
    assert_eq!(described["KeyMetadata"]["Enabled"], false);
    aws_err(&ep, &session, west, &["kms", "encrypt", "--key-id", west_key, "--plaintext", "hello-byok"], "DisabledException").await;
    aws_err(
        &ep,
        &session,
        west,
        &["kms", "decrypt", "--ciphertext-blob", west_blob, "--encryption-context", "tenant=t1"],
        "DisabledException",
    )
    .await;
    aws_err(&ep, &session, west, &["kms", "generate-data-key", "--key-id", west_key, "--key-spec", "AES_256"], "DisabledException").await;
    let central =
        aws_ok(&ep, &session, REGIONS[0], &["kms", "decrypt", "--ciphertext-blob", &blobs[0], "--encryption-context", "tenant=t1"]).await;
    assert_eq!(central["Plaintext"], STANDARD.encode("hello-byok"));

    // Steps 9–12: select the keys prefixed cryptor, Key actions → Enable.
    let aliases = aws_ok(&ep, c, west, &["kms", "list-aliases"]).await;
    let cryptor: Vec<&Value> = aliases["Aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .filter(|a| a["AliasName"].as_str().is_some_and(|n| n.starts_with("alias/cryptor")))
        .collect();
    assert_eq!(cryptor.len(), 1);
    aws_ok(&ep, c, west, &["kms", "enable-key", "--key-id", cryptor[0]["TargetKeyId"].as_str().expect("target")]).await;
    let back = aws_ok(&ep, &session, west, &["kms", "decrypt", "--ciphertext-blob", west_blob, "--encryption-context", "tenant=t1"]).await;
    assert_eq!(back["Plaintext"], STANDARD.encode("hello-byok"));
    assert_eq!(back["KeyId"], west_key.as_str());

    // The wrong context, or the wrong region, is not a way in.
    aws_err(
        &ep,
        &session,
        west,
        &["kms", "decrypt", "--ciphertext-blob", west_blob, "--encryption-context", "tenant=t2"],
        "InvalidCiphertextException",
    )
    .await;
    aws_err(
        &ep,
        &session,
        REGIONS[0],
        &["kms", "decrypt", "--ciphertext-blob", west_blob, "--encryption-context", "tenant=t1"],
        "InvalidCiphertextException",
    )
    .await;
}

fn assume_args<'a>(role_arn: &'a str, external_id: &'a str) -> Vec<&'a str> {
    vec!["sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "byok-probe", "--external-id", external_id]
}

/// `aws sts assume-role`, returning the session's credentials or the CLI's error text.
async fn assume(ep: &str, creds: &Creds, role_arn: &str, external_id: Option<&str>) -> Result<Creds, String> {
    let mut args = vec!["sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "byok-probe"];
    if let Some(id) = external_id {
        args.extend(["--external-id", id]);
    }
    let out = crate::support::aws(ep, creds, "us-east-1", &args).await;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let c = &v["Credentials"];
    assert!(v["AssumedRoleUser"]["Arn"].as_str().is_some_and(|a| a.ends_with(":assumed-role/atlassian-key-management/byok-probe")), "{v}");
    Ok(Creds {
        access_key_id: c["AccessKeyId"].as_str().unwrap_or_default().into(),
        secret_access_key: c["SecretAccessKey"].as_str().unwrap_or_default().into(),
        session_token: c["SessionToken"].as_str().map(str::to_string),
    })
}
