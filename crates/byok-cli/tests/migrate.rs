//! Migrations on purpose, as an operator runs them: `byok migrate status` says what is pending
//! (exit 1), `up --dry-run` names it and changes nothing, `byok serve --no-auto-migrate` refuses
//! to start and says what to run, `up` applies, and then the node starts.

use std::process::{Output, Stdio};
use std::time::Duration;

fn byok(args: &[&str], data: &std::path::Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("BYOK_STORE_URL")
        .env_remove("BYOK_CONFIG")
        .env("BYOK_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run byok")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn pending_migrations_are_applied_on_purpose() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let known = byok_store::migrations::known(byok_store::Dialect::Sqlite);
    let newest = known.last().expect("migrations").to_string();

    let status = byok(&["migrate", "status"], &data);
    assert_eq!(status.status.code(), Some(1), "not current: {}", text(&status));
    assert!(text(&status).contains(&format!("pending: {}", known[0])), "{}", text(&status));

    let dry = byok(&["migrate", "up", "--dry-run"], &data);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains(&format!("would apply {}", known.len())) && text(&dry).contains(&newest), "{}", text(&dry));
    assert_eq!(byok(&["migrate", "status"], &data).status.code(), Some(1), "a dry run applies nothing");

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["serve", "--no-auto-migrate", "--listen", "127.0.0.1:0", "--localcloud-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("BYOK_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run byok serve");
    assert!(!refused.status.success(), "started on pending migrations: {}", text(&refused));
    assert!(text(&refused).contains("migrations are pending") && text(&refused).contains("byok migrate up"), "{}", text(&refused));

    let up = byok(&["migrate", "up"], &data);
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains(&format!("applied {}", known.len())), "{}", text(&up));
    let again = byok(&["migrate", "up"], &data);
    assert!(text(&again).contains("nothing to apply"), "{}", text(&again));
    let status = byok(&["migrate", "status"], &data);
    assert!(status.status.success() && text(&status).contains("schema: current"), "{}", text(&status));
    assert!(text(&status).contains(&format!("newest: {newest}")), "{}", text(&status));

    // Now --no-auto-migrate starts.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args(["serve", "--no-auto-migrate", "--listen", "127.0.0.1:0", "--localcloud-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("BYOK_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(2));
    let exited = child.try_wait().expect("wait");
    let _ = child.kill();
    let _ = child.wait();
    assert!(exited.is_none(), "a current schema starts: {exited:?}");
}
