//! Runs `tests/python/test_boto3.py` (pytest) against a fresh localcloud.

use crate::support::{Localcloud, venv, workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_through_boto3() {
    let lc = Localcloud::start().await;
    let script = workspace().join("crates/localcloud/tests/python/test_boto3.py");
    let out = tokio::process::Command::new(venv().join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"])
        .arg(&script)
        .env("LOCALCLOUD_ENDPOINT", lc.endpoint())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .expect("run pytest");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "boto3 suite failed:\n{report}");
    // pytest's own summary, so that a suite that collected nothing cannot pass.
    assert!(report.contains(" passed"), "no boto3 test ran:\n{report}");
}
