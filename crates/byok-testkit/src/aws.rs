//! The real `aws` CLI from the project's virtualenv, with nothing from the user's own config.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

/// Credentials as the CLI and SDKs take them.
#[derive(Debug, Clone)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The project's virtualenv (`BYOK_VENV`, else `.venv` at the workspace root).
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("BYOK_VENV").map(PathBuf::from).unwrap_or_else(|| crate::workspace().join(".venv"));
    assert!(
        venv.join("bin/aws").exists(),
        "no aws CLI in {}: run scripts/setup-venv (or point BYOK_VENV at a virtualenv with scripts/requirements-test.txt)",
        venv.display()
    );
    venv
}

pub async fn aws(endpoint: &str, creds: &Creds, region: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(venv().join("bin/aws"));
    cmd.args(["--endpoint-url", endpoint, "--region", region, "--output", "json"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key);
    if let Some(token) = &creds.session_token {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    cmd.output().await.expect("run aws")
}

/// Runs `aws`, expecting success; its JSON output (`null` if it printed nothing).
pub async fn aws_ok(endpoint: &str, creds: &Creds, region: &str, args: &[&str]) -> Value {
    let out = aws(endpoint, creds, region, args).await;
    assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }
}

/// Runs `aws`, expecting it to fail with `code`; its error text.
pub async fn aws_err(endpoint: &str, creds: &Creds, region: &str, args: &[&str], code: &str) -> String {
    let out = aws(endpoint, creds, region, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && stderr.contains(&format!("({code})")), "aws {args:?} should fail with {code}, said: {stderr}");
    stderr
}
