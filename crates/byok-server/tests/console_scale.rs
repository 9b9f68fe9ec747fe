//! The console at scale and for the operator: the audit page over 100,000 entries, the
//! operator's tiles, pages and hold decisions, and the product's name on every page.

use axum::http::{StatusCode, header};
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};

use crate::console::{form, hidden_csrf, send, sign_in};
use crate::{OPERATOR, world};

/// The operator's list at 10,000 tenants' scale: tiles per state that filter, pages of 100,
/// and held revocations decided with Release and Dismiss buttons (POST-redirect-GET), the
/// counts agreeing everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_filters_pages_and_decides_holds() {
    use byok_store::AlertStore as _;
    let w = world().await;
    let r = &w.router;
    for i in 0..230 {
        w.broker.add_tenant(&format!("t{i:03}").parse().expect("id"), "us", &"111122223333".parse().expect("account")).await.expect("add");
    }
    let at = w.broker.clock().now();
    for id in ["acme", "beta"] {
        let hold = byok_domain::Hold { tenant: id.parse().expect("id"), detected_at: at, regions: Vec::new(), created_at: at };
        assert!(w.store.hold(&hold).await.expect("hold"));
    }
    let (op, _) = sign_in(r, OPERATOR).await;
    let page = send(r, "GET", "/console/operator", Some(&op), None).await;
    let body = &page.body;
    assert!(body.contains("<strong>232</strong> all") && body.contains("<strong>230</strong> onboarding"), "{body}");
    assert!(body.contains("<strong>2</strong> suspended (held)") && body.contains("<strong>0</strong> active"), "{body}");
    assert!(body.contains("2 suspended (held) for a person to decide"), "the same count: {body}");
    assert!(body.contains("Tenants 1–100 of 232.") && body.contains("Page 1 of 3"), "{body}");
    let last = send(r, "GET", "/console/operator?state=onboarding&page=2", Some(&op), None).await;
    assert!(last.body.contains("Tenants 201–230 of 230.") && last.body.contains("t229") && !last.body.contains(">t199<"), "{}", last.body);

    // Release acme (revoked, with its ticket), dismiss beta (active again).
    let csrf = hidden_csrf(body);
    let released = send(r, "POST", "/console/operator/holds/acme/release", Some(&op), Some(form(&[("csrf", &csrf)]))).await;
    assert_eq!(released.status, StatusCode::SEE_OTHER);
    let after = send(r, "GET", "/console/operator", Some(&op), None).await;
    assert!(after.body.contains("acme is revoked; its customer has until"), "{}", after.body);
    let dismissed = send(r, "POST", "/console/operator/holds/beta/dismiss", Some(&op), Some(form(&[("csrf", &csrf)]))).await;
    assert_eq!(dismissed.status, StatusCode::SEE_OTHER);
    let after = send(r, "GET", "/console/operator", Some(&op), None).await;
    assert!(after.body.contains("beta&#39;s hold is dismissed") || after.body.contains("beta's hold is dismissed"), "{}", after.body);
    assert!(after.body.contains("<strong>1</strong> revoked") && after.body.contains("<strong>1</strong> active"), "{}", after.body);
    assert!(!after.body.contains("for a person to decide"), "{}", after.body);
    assert!(matches!(w.broker.tenant(&"acme".parse().expect("id")).await.expect("t").state, byok_domain::TenantState::Revoked { .. }));
    // Deciding again: the hold is gone, said in words; a tenant admin cannot decide at all.
    let again = send(r, "POST", "/console/operator/holds/beta/dismiss", Some(&op), Some(form(&[("csrf", &csrf)]))).await;
    assert!(again.status.is_client_error(), "{}", again.status);
    let (admin, _) = sign_in(r, &w.acme_admin).await;
    let csrf_admin = hidden_csrf(&send(r, "GET", "/console/tenants/acme/ticket", Some(&admin), None).await.body);
    let refused = send(r, "POST", "/console/operator/holds/acme/release", Some(&admin), Some(form(&[("csrf", &csrf_admin)]))).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}

/// The audit page with 100,000 entries over 40 days: newest first, keyset pages that follow on,
/// a "since today" filter that shows all of today's entries, a bad date refused beside its
/// field, counts per day and per hour from the store, sentences instead of JSON, and the export
/// of exactly the filtered view. (How long the first page takes is printed, and recorded in
/// BENCHMARKS.md; never asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_holds_at_scale() {
    use byok_store::AuditStore as _;
    let w = world().await;
    let r = &w.router;
    let now = w.broker.clock().now().unix_timestamp();
    let today = now - now.rem_euclid(86_400);
    // 100,000 entries, one every ~35 s over the 40 days before now: 8 of them today, the
    // rest earlier; one in twenty a data key use, the rest probes.
    const N: i64 = 100_000;
    let step = (40 * 86_400 - (now - today)) / (N - 8);
    let stamps: Vec<i64> = (0..N - 8)
        .map(|i| today - 40 * 86_400 + (now - today) + i * step)
        .filter(|t| *t < today)
        .chain((1..=8).map(|i| now + i * 60))
        .collect();
    // The world's own entries (onboarding), written today too.
    let own_today =
        w.store.audit(Some(&"acme".parse().expect("id")), 0, 1_000).await.expect("audit").iter().filter(|e| e.at >= today).count();
    let seals: Vec<_> = stamps
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let (at, reason) = (*at, if i % 20 == 0 { "data" } else { "probe" });
            move |seq: i64, prev: &str| byok_store::AuditEntry {
                seq,
                tenant: Some("acme".into()),
                at,
                kind: "key_use".into(),
                reason: reason.into(),
                detail: format!("{{\"region\":\"us-east-1\",\"at\":{at}}}"),
                prev_hash: prev.to_string(),
                hash: format!("{seq:064x}"),
            }
        })
        .collect();
    for chunk in seals.chunks(10_000) {
        let refs: Vec<byok_store::Seal<'_>> = chunk.iter().map(|s| s as byok_store::Seal<'_>).collect();
        w.store.append_audit_many(&refs).await.expect("append");
    }
    let (cookie, _) = sign_in(r, &w.acme_admin).await;

    let started = std::time::Instant::now();
    let first = send(r, "GET", "/console/tenants/acme/audit", Some(&cookie), None).await;
    eprintln!("audit first page with {} entries: {:?}", stamps.len(), started.elapsed());
    assert_eq!(first.status, StatusCode::OK);
    let rows: Vec<&str> = first.body.split("<tr><td><time datetime=\"").skip(1).map(|r| &r[..20]).collect();
    assert_eq!(rows.first().copied(), Some(byok_server_utc(now + 8 * 60).as_str()), "the newest entry first");
    assert!(rows.windows(2).all(|w| w[0] >= w[1]), "newest first all the way: {rows:?}");
    assert!(!first.body.contains("{&quot;") && !first.body.contains("{\"region"), "no raw JSON");
    assert!(first.body.contains("Key used: periodic check") && first.body.contains("region: </span>us-east-1"), "sentences and pairs");
    // The next page follows on: older, none repeated.
    let older = first.body.split("href=\"/console/tenants/acme/audit?before=").nth(1).expect("an 'Older entries' link");
    let before: i64 = older.split('"').next().expect("seq").parse().expect("a sequence number");
    let second = send(r, "GET", &format!("/console/tenants/acme/audit?before={before}"), Some(&cookie), None).await;
    assert!(second.body.contains("Newest") && second.body.contains("Older entries"), "{}", &second.body[..2000]);
    let seqs = |body: &str| body.matches("<tr><td><time").count();
    assert_eq!((seqs(&first.body), seqs(&second.body)), (50, 50));

    // Since today: all 8 of today's entries, and no next page.
    let day = time::OffsetDateTime::from_unix_timestamp(today).expect("t").date().to_string();
    let since = send(r, "GET", &format!("/console/tenants/acme/audit?since={day}"), Some(&cookie), None).await;
    assert_eq!(seqs(&since.body), 8 + own_today, "every entry of today");
    assert!(!since.body.contains("Older entries"), "and nothing more");
    // A bad date: said beside its field, kept as typed, nothing listed as if it had filtered.
    let bad = send(r, "GET", "/console/tenants/acme/audit?since=2026-13-45", Some(&cookie), None).await;
    assert!(bad.body.contains("id=\"since-problem\" role=\"alert\"") && bad.body.contains("value=\"2026-13-45\""), "{}", &bad.body[..3000]);
    assert_eq!(seqs(&bad.body), 0);
    assert!(bad.body.contains("aria-invalid=\"true\""));
    // The charts: per day over 30 days and per hour of today, counted by the store.
    assert!(first.body.contains("Key uses per day") && first.body.contains("Key uses per hour on"), "two charts");
    let md = format!(
        "{:02}-{:02}",
        u8::from(time::OffsetDateTime::from_unix_timestamp(today).expect("t").month()),
        time::OffsetDateTime::from_unix_timestamp(today).expect("t").day()
    );
    let data_today = stamps.iter().enumerate().filter(|(i, t)| **t >= today && i % 20 == 0).count();
    let probes_today = 8 - data_today;
    assert!(first.body.contains(&format!("<title>{md}: {probes_today} × periodic check</title>")), "today's bar: {}", &first.body[..6000]);
    // The export is the filtered view, every line of it.
    let export = send(r, "GET", &format!("/console/tenants/acme/audit/export?since={day}"), Some(&cookie), None).await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/x-ndjson"));
    assert_eq!(export.body.lines().count(), 8 + own_today, "{}", export.body);
    let all = send(r, "GET", "/console/tenants/acme/audit/export?reason=data", Some(&cookie), None).await;
    let data = stamps.iter().enumerate().filter(|(i, _)| i % 20 == 0).count();
    assert!(all.body.lines().count() >= data, "{} data entries exported of at least {data}", all.body.lines().count());
}

/// `--product-name`: the console's header, titles and sign-in carry the provider's name, not "byok".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_carries_the_product_name() {
    let w = world().await;
    let branded = app(AppState::new(w.broker.clone()).with_product_name("Acme Cloud"), DEFAULT_BODY_LIMIT);
    let signin = send(&branded, "GET", "/console/signin", None, None).await;
    assert!(
        signin.body.contains("Sign in to Acme Cloud") && signin.body.contains("<title>Sign in · Acme Cloud</title>"),
        "{}",
        signin.body
    );
    let (cookie, _) = sign_in(&branded, &w.acme_admin).await;
    for path in ["/console/tenants/acme", "/console/tenants/acme/ticket", "/console/tenants/acme/audit", "/console/guide"] {
        let page = send(&branded, "GET", path, Some(&cookie), None).await;
        assert!(page.body.contains("<span class=\"brand\">Acme Cloud</span>"), "{path}: {}", page.body);
        assert!(!page.body.contains(">byok<") && !page.body.contains("· byok</title>"), "{path}: {}", page.body);
    }
}

fn byok_server_utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t).expect("t").format(&time::format_description::well_known::Rfc3339).expect("fmt")
}
