//! Email to a tenant's contacts, against a real SMTP server (aiosmtpd, tests/email/smtp_server.py):
//! the customer's revocation and the restoration each reach every contact once, in text and
//! HTML, with the deadline in UTC and links to the console.

use std::time::{Duration, Instant};

use byok_cli::serve::ServeArgs;
use byok_testkit::aws_ok;
use serde_json::{Value, json};

use crate::support::{api, endpoint, onboard, start_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// The messages received so far, oldest first, once `count` arrived (60 s at most).
async fn received(dir: &std::path::Path, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        if names.len() >= count || started.elapsed() > Duration::from_secs(60) {
            return names.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")).collect();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_emailed_the_revocation_and_the_restoration() {
    let dir = tempfile::tempdir().expect("dir");
    let (smtp_port, inbox) = (free_port(), dir.path().join("inbox"));
    std::fs::create_dir_all(&inbox).expect("inbox");
    let mut smtp = tokio::process::Command::new(byok_testkit::aws::venv().join("bin/python"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/email/smtp_server.py"))
        .args([&smtp_port.to_string(), &inbox.display().to_string()])
        .kill_on_drop(true)
        .spawn()
        .expect("the SMTP server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = start_with(
        &dir.path().join("data"),
        ServeArgs {
            monitor_interval_seconds: Some(1),
            smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
            smtp_from: Some("Provider byok <byok@provider.example>".into()),
            public_url: Some("https://byok.provider.example".into()),
            ..ServeArgs::default()
        },
    )
    .await;
    let (_, creds, added) = onboard(&b, "acme-corp", "acme", "eu", dir.path()).await;
    let admin = added["admin_token"].as_str().expect("token").to_string();
    let role = added["instructions"]["role_name"].as_str().expect("role").to_string();
    let trust = added["instructions"]["trust_policy"].clone();

    // The tenant's admin names two contacts with the CLI; a bad address is refused.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_byok"))
        .args([
            "tenant",
            "contacts",
            "set",
            "acme",
            "security@acme.example",
            "Ops <ops@acme.example>",
            "--api",
            &b.api_url(),
            "--token",
            &admin,
        ])
        .output()
        .expect("byok");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, bad) = api(&b, Some(&admin), "PUT", "/v1/tenants/acme/contacts", Some(json!({ "emails": ["not an address"] }))).await;
    assert_eq!(status, 400, "{bad}");
    let (_, shown) = api(&b, Some(&admin), "GET", "/v1/tenants/acme/contacts", None).await;
    assert_eq!(shown["emails"].as_array().map(Vec::len), Some(2), "{shown}");

    // The customer revokes, then restores.
    let mut deny = trust.clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    let ep = endpoint(&b);
    aws_ok(&ep, &creds, "us-east-1", &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &deny.to_string()])
        .await;
    let mail = received(&inbox, 2).await;
    assert_eq!(mail.len(), 2, "one revocation email per contact: {mail:?}");
    for m in &mail {
        assert_eq!(m["subject"], "Action needed: access to your BYOK keys was revoked (tenant acme)", "{m}");
        assert_eq!(m["mail_from"], "byok@provider.example");
        assert!(m["from"].as_str().is_some_and(|f| f.contains("Provider byok")), "{m}");
        assert_eq!(m["content_type"], "multipart/alternative", "text and HTML: {m}");
        let text = m["text"].as_str().unwrap_or_default();
        assert!(text.contains("eu-central-1") && text.contains(" UTC") && text.contains("erased"), "{text}");
        assert!(text.contains("https://byok.provider.example/console/tenants/acme/ticket"), "{text}");
        assert!(text.contains("Audit checkpoint") && text.contains("\"signature\""), "the signed checkpoint travels by email too: {text}");
        let html = m["html"].as_str().unwrap_or_default();
        assert!(html.contains("href=\"https://byok.provider.example/console/tenants/acme\""), "{html}");
        assert!(m["message_id"].as_str().is_some_and(|id| id.starts_with("<evt_")), "{m}");
    }
    let mut to: Vec<String> = mail.iter().map(|m| m["rcpt_tos"][0].as_str().unwrap_or_default().to_string()).collect();
    to.sort();
    assert_eq!(to, ["ops@acme.example", "security@acme.example"]);

    aws_ok(&ep, &creds, "us-east-1", &["iam", "update-assume-role-policy", "--role-name", &role, "--policy-document", &trust.to_string()])
        .await;
    let (status, answer) = api(&b, Some(&admin), "POST", "/v1/tenants/acme/restore", None).await;
    assert_eq!(status, 200, "{answer}");
    let mail = received(&inbox, 4).await;
    let restored: Vec<&Value> = mail.iter().filter(|m| m["subject"] == "Access restored for tenant acme").collect();
    assert_eq!(restored.len(), 2, "{mail:?}");
    smtp.start_kill().expect("kill");
}
