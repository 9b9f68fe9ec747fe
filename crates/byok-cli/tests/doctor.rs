//! `byok doctor` as an operator runs it before going live: the real binary with `--real-aws`,
//! the provider's credentials in the standard `AWS_*` variables and `AWS_ENDPOINT_URL` pointing
//! at a localcloud (the real-AWS code path, as `real_aws.rs` runs it). A good configuration
//! passes every check with exit code 0; then each check fails once, on a configuration broken
//! in its own way, with exit code 1 and only the checks that depend on it failing beside it.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use byok_testkit::Cloud;
use rcgen::{CertificateParams, KeyPair};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// A self-signed certificate for localhost valid for `days` more days: (cert path, key path).
fn certificate(dir: &Path, name: &str, days: i64) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let cert = params.self_signed(&key).expect("certificate");
    let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

/// One doctor run: its exit status, its output, and the names of the checks that failed.
struct Run {
    ok: bool,
    out: String,
    failed: BTreeSet<String>,
}

struct Doctor {
    base: Vec<String>,
    env: Vec<(String, String)>,
}

impl Doctor {
    async fn run(&self, replace: &[(&str, &str)], extra: &[&str], env: &[(&str, &str)]) -> Run {
        // `replace` swaps a flag's value in the good configuration.
        let mut args = self.base.clone();
        for (flag, value) in replace {
            let at = args.iter().position(|a| a == flag).expect("flag in the base configuration");
            args[at + 1] = value.to_string();
        }
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
            .arg("doctor")
            .args(&args)
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BYOK_LOG", "error")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .output()
            .await
            .expect("run byok doctor");
        let out = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        let failed = out
            .lines()
            .filter_map(|l| l.strip_prefix("[FAIL] "))
            .filter_map(|l| l.split_once(':').map(|(name, _)| name.to_string()))
            .collect();
        Run { ok: output.status.success(), out, failed }
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_passes_a_good_configuration_and_names_each_broken_part() {
    let cloud = Cloud::start().await;
    let canary = cloud.canary().await;
    let provider = cloud.provider_credentials().await;
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = certificate(dir.path(), "api", 90);
    let data = dir.path().join("data");
    let doctor = Doctor {
        base: [
            "--real-aws",
            "--provider-role-arn",
            &cloud.provider_role_arn,
            "--canary-role-arn",
            &canary.role_arn,
            "--canary-external-id",
            &canary.external_id,
            "--listen",
            "127.0.0.1:8443",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--store-url",
            &format!("sqlite://{}?mode=rwc", dir.path().join("byok.db").display()),
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        env: [
            ("HOME", dir.path().to_str().expect("utf-8")),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", &provider.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &provider.secret_access_key),
            ("AWS_SESSION_TOKEN", provider.session_token.as_deref().unwrap_or_default()),
            ("AWS_ENDPOINT_URL", &cloud.endpoint()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };

    let good = doctor.run(&[], &[], &[]).await;
    assert!(good.ok, "a good configuration passes:\n{}", good.out);
    for name in ["configuration", "data directory", "store", "API TLS", "tokens", "provider identity", "canary", "STS and KMS endpoints"] {
        assert!(good.out.contains(&format!("[  ok] {name}: ")), "{name} is checked and passes:\n{}", good.out);
    }
    assert!(good.out.contains("8 checks: 8 ok, 0 warnings, 0 failed"), "{}", good.out);
    assert!(!data.exists(), "the doctor changes nothing: no data directory made");

    // Each part broken once.
    let bad_config = doctor.run(&[], &["--drain-seconds", "9999"], &[]).await;
    assert!(!bad_config.ok && bad_config.failed == names(&["configuration"]), "{}", bad_config.out);
    assert!(bad_config.out.contains("--drain-seconds is 0 to 600"), "{}", bad_config.out);

    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).expect("dir");
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = doctor.run(&[("--data-dir", open_dir.to_str().expect("utf-8"))], &[], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["data directory"])), "{}", run.out);
    assert!(run.out.contains("chmod 0700"), "{}", run.out);

    let closed = free_port();
    let run = doctor.run(&[("--store-url", &format!("postgres://byok@127.0.0.1:{closed}/byok"))], &[], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["store"])), "{}", run.out);

    let (soon_cert, soon_key) = certificate(dir.path(), "soon", 10);
    let run =
        doctor.run(&[("--tls-cert", soon_cert.to_str().expect("utf-8")), ("--tls-key", soon_key.to_str().expect("utf-8"))], &[], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["API TLS"])), "{}", run.out);
    assert!(run.out.contains("within 30 days"), "{}", run.out);
    let (_, other_key) = certificate(dir.path(), "other", 90);
    let run = doctor.run(&[("--tls-key", other_key.to_str().expect("utf-8"))], &[], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["API TLS"])), "a key that does not fit: {}", run.out);

    let run = doctor.run(&[], &["--operator-token", "change-me"], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["tokens"])), "{}", run.out);
    assert!(run.out.contains("the operator token is a placeholder"), "{}", run.out);

    let someone_else = format!("arn:aws:iam::{}:role/SomeoneElse", cloud.provider_account);
    let run = doctor.run(&[("--provider-role-arn", &someone_else)], &[], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["provider identity"])), "{}", run.out);
    assert!(run.out.contains("not the provider role"), "{}", run.out);

    let run = doctor.run(&[("--canary-external-id", "not-the-canary-external-id")], &[], &[]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["canary"])), "{}", run.out);
    assert!(run.out.contains("canary role"), "{}", run.out);

    // KMS unreachable: the endpoint check names it, and the canary (which uses KMS) fails too.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = doctor.run(&[], &[], &[("AWS_ENDPOINT_URL_KMS", &nowhere)]).await;
    assert_eq!((run.ok, &run.failed), (false, &names(&["STS and KMS endpoints", "canary"])), "{}", run.out);
    assert!(run.out.contains(&nowhere), "{}", run.out);
}

/// `byok provider setup` as the operator guide tells it: each account's part run with the real
/// `aws` CLI against a localcloud (the provider role in one account, the canary in a second),
/// then `byok doctor --real-aws` as a session of the new provider role passes — the printed
/// least-privilege policy is enough for everything byok proves. The CloudFormation templates
/// hold the same policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_provider_setup_is_what_the_doctor_then_finds() {
    let cloud = Cloud::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let provider = cloud.customer("provider-two").await;
    let canary = cloud.customer("provider-two-canary").await;
    let external_id = "canary-ext-0123456789";
    let setup = |format: &'static str, part: &'static str| {
        let (p, c) = (provider.account.clone(), canary.account.clone());
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byok"))
                .args(["provider", "setup", "--provider-account-id", &p, "--canary-account-id", &c])
                .args(["--canary-external-id", external_id, "--format", format, "--part", part])
                .output()
                .await
                .expect("byok provider setup");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).expect("utf-8")
        }
    };
    crate::support::run_setup_at(&cloud.endpoint(), &provider.root, &setup("script", "provider").await, &dir.path().join("p")).await;
    crate::support::run_setup_at(&cloud.endpoint(), &canary.root, &setup("script", "canary").await, &dir.path().join("c")).await;

    let role_arn = format!("arn:aws:iam::{}:role/byok-provider", provider.account);
    let (status, creds) = cloud
        .admin("POST", "/_localcloud/role-credentials", Some(serde_json::json!({ "role_arn": role_arn, "session_name": "broker" })))
        .await;
    assert_eq!(status, 200, "{creds}");
    let canary_role = format!("arn:aws:iam::{}:role/byok-canary", canary.account);
    let canary_cmk = format!("arn:aws:kms:us-east-1:{}:alias/byok-canary-cmk", canary.account);
    let data = dir.path().join("data");
    let doctor = Doctor {
        base: [
            "--real-aws",
            "--provider-role-arn",
            &role_arn,
            "--canary-role-arn",
            &canary_role,
            "--canary-external-id",
            external_id,
            "--canary-cmk-key",
            &canary_cmk,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--data-dir".to_string(), data.display().to_string()])
        .collect(),
        env: [
            ("HOME", dir.path().display().to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", creds["access_key_id"].as_str().expect("key").into()),
            ("AWS_SECRET_ACCESS_KEY", creds["secret_access_key"].as_str().expect("secret").into()),
            ("AWS_SESSION_TOKEN", creds["session_token"].as_str().unwrap_or_default().into()),
            ("AWS_ENDPOINT_URL", cloud.endpoint()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    let run = doctor.run(&[], &[], &[]).await;
    assert!(run.failed.is_empty(), "the printed setup passes every AWS check:\n{}", run.out);
    assert!(run.out.contains("[  ok] provider identity: ") && run.out.contains("[  ok] canary: "), "{}", run.out);
    assert!(run.out.contains(&format!("the key-policy canary {canary_cmk} did the same for the provider itself")), "{}", run.out);

    // The templates carry the same policies as the scripts.
    let provider_cfn: serde_json::Value = serde_json::from_str(&setup("cloudformation", "provider").await).expect("JSON template");
    let role = &provider_cfn["Resources"]["ByokProviderRole"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let script = setup("script", "provider").await;
    let policy = &role["Properties"]["Policies"][0]["PolicyDocument"];
    let in_script: serde_json::Value = serde_json::from_str(
        script.split("byok-provider-policy.json <<'POLICY'\n").nth(1).and_then(|r| r.split("\nPOLICY").next()).expect("heredoc"),
    )
    .expect("policy JSON");
    assert_eq!(policy, &in_script);
    let canary_cfn: serde_json::Value = serde_json::from_str(&setup("cloudformation", "canary").await).expect("JSON template");
    assert_eq!(canary_cfn["Resources"]["ByokCanaryKey"]["Type"], "AWS::KMS::Key");
    assert_eq!(canary_cfn["Resources"]["ByokCanaryAlias"]["Properties"]["AliasName"], "alias/byok-canary");
    let trust = canary_cfn["Resources"]["ByokCanaryRole"]["Properties"]["AssumeRolePolicyDocument"].to_string();
    assert!(trust.contains(&role_arn) && trust.contains(external_id), "{trust}");
}
