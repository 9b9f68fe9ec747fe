//! The console's own rules, through the router: sign-in and its cookie, CSRF on every form,
//! sessions that expire, a forged cookie, another tenant's page looking exactly like a missing
//! one, every user-provided string escaped, and a strict Content-Security-Policy.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{OPERATOR, SERVICE, world};

pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

pub(crate) async fn send(router: &axum::Router, method: &str, path: &str, cookie: Option<&str>, form: Option<String>) -> Page {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let response = router.clone().oneshot(request.body(body).expect("request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8_lossy(&response.into_body().collect().await.expect("body").to_bytes()).into_owned();
    Page { status, headers, body }
}

pub(crate) fn set_cookie(page: &Page, name: &str) -> Option<String> {
    page.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let first = v.split(';').next()?;
        let (k, value) = first.split_once('=')?;
        (k == name && !value.is_empty()).then(|| first.to_string())
    })
}

pub(crate) fn hidden_csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    body[at..].split('"').next().expect("value").to_string()
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Signs in with `token`; the session cookie and the session's CSRF token.
pub(crate) async fn sign_in(router: &axum::Router, token: &str) -> (String, String) {
    let page = send(router, "GET", "/console/signin", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let pre = set_cookie(&page, "byok_signin").expect("sign-in cookie");
    let signed =
        send(router, "POST", "/console/signin", Some(&pre), Some(form(&[("token", token), ("csrf", &hidden_csrf(&page.body))]))).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let cookie = set_cookie(&signed, "byok_session").expect("session cookie");
    let raw = signed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("byok_session="))
        .expect("cookie")
        .to_string();
    assert!(raw.contains("HttpOnly") && raw.contains("SameSite=Strict") && raw.contains("Max-Age="), "{raw}");
    let home = send(router, "GET", "/console/operator", Some(&cookie), None).await;
    let csrf = if home.status == StatusCode::OK { hidden_csrf(&home.body) } else { String::new() };
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_csrf_scopes_escaping_and_headers() {
    let w = world().await;
    let r = &w.router;

    // Not signed in, or a forged cookie: to the sign-in page.
    for cookie in [None, Some("byok_session=forged")] {
        let page = send(r, "GET", "/console/tenants/acme", cookie, None).await;
        assert_eq!(
            (page.status, page.headers.get(header::LOCATION).and_then(|v| v.to_str().ok())),
            (StatusCode::SEE_OTHER, Some("/console/signin"))
        );
    }
    // A wrong token, a service token: refused with words; a sign-in form from elsewhere: 403.
    let page = send(r, "GET", "/console/signin", None, None).await;
    let pre = set_cookie(&page, "byok_signin").expect("cookie");
    let nonce = hidden_csrf(&page.body);
    let wrong = send(r, "POST", "/console/signin", Some(&pre), Some(form(&[("token", "byok_op_nope"), ("csrf", &nonce)]))).await;
    assert!(wrong.status == StatusCode::OK && wrong.body.contains("not valid"), "{}", wrong.body);
    let service = send(r, "POST", "/console/signin", Some(&pre), Some(form(&[("token", SERVICE), ("csrf", &nonce)]))).await;
    assert!(service.body.contains("service token"), "{}", service.body);
    let forged = send(r, "POST", "/console/signin", None, Some(form(&[("token", OPERATOR), ("csrf", "x")]))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A cookie/form pair that matches itself but that this server never issued: refused, empty
    // or made up alike.
    for made_up in ["", "x", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"] {
        let cookie = format!("byok_signin={made_up}");
        let forged = send(r, "POST", "/console/signin", Some(&cookie), Some(form(&[("token", OPERATOR), ("csrf", made_up)]))).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "a pair the server never issued: {made_up:?}");
    }
    // A nonce signs in once.
    let page = send(r, "GET", "/console/signin", None, None).await;
    let (pre, nonce) = (set_cookie(&page, "byok_signin").expect("cookie"), hidden_csrf(&page.body));
    let once = send(r, "POST", "/console/signin", Some(&pre), Some(form(&[("token", OPERATOR), ("csrf", &nonce)]))).await;
    assert_eq!(once.status, StatusCode::SEE_OTHER);
    let twice = send(r, "POST", "/console/signin", Some(&pre), Some(form(&[("token", OPERATOR), ("csrf", &nonce)]))).await;
    assert_eq!(twice.status, StatusCode::FORBIDDEN, "a used nonce is gone");

    // The tenant admin of acme sees acme, and beta exactly as a tenant that does not exist.
    let (acme, _) = sign_in(r, &w.acme_admin).await;
    let home = send(r, "GET", "/console", Some(&acme), None).await;
    assert_eq!(home.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/console/tenants/acme"));
    let own = send(r, "GET", "/console/tenants/acme", Some(&acme), None).await;
    assert!(own.status == StatusCode::OK && own.body.contains("Tenant acme"), "{}", own.body);
    let csp = own.headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let other = send(r, "GET", "/console/tenants/beta", Some(&acme), None).await;
    let missing = send(r, "GET", "/console/tenants/nobody", Some(&acme), None).await;
    assert_eq!((other.status, missing.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(other.body, missing.body, "another tenant's page is the missing page");
    assert_eq!(send(r, "GET", "/console/operator", Some(&acme), None).await.status, StatusCode::NOT_FOUND);
    for path in ["/console/tenants/beta/ticket", "/console/tenants/beta/audit"] {
        assert_eq!(send(r, "GET", path, Some(&acme), None).await.status, StatusCode::NOT_FOUND, "{path}");
    }

    // A comment with markup shows as text; a form without the session's CSRF token is refused.
    let acme_id: byok_domain::TenantId = "acme".parse().expect("id");
    w.broker.revoke(&acme_id).await.expect("revoke");
    let ticket_page = send(r, "GET", "/console/tenants/acme/ticket", Some(&acme), None).await;
    assert!(ticket_page.body.contains("BYOK revocation started for AWS account"), "{}", ticket_page.body);
    let csrf = hidden_csrf(&ticket_page.body);
    let ticket = w.broker.tickets(Some(&acme_id)).await.expect("tickets")[0].id.to_string();
    let evil = "<script>alert('x')</script> & <b>bold</b>";
    let refused = send(
        r,
        "POST",
        "/console/tenants/acme/comment",
        Some(&acme),
        Some(form(&[("csrf", "wrong"), ("ticket", &ticket), ("body", evil)])),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Form expired"));
    let posted =
        send(r, "POST", "/console/tenants/acme/comment", Some(&acme), Some(form(&[("csrf", &csrf), ("ticket", &ticket), ("body", evil)])))
            .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let shown = send(r, "GET", "/console/tenants/acme/ticket", Some(&acme), None).await;
    assert!(shown.body.contains("&lt;script&gt;alert(") && !shown.body.contains("<script>alert("), "escaped");
    assert!(shown.body.contains("&lt;b&gt;bold&lt;/b&gt;"));
    // The revoked overview counts down to the deadline.
    let overview = send(r, "GET", "/console/tenants/acme", Some(&acme), None).await;
    assert!(overview.body.contains("data-deadline=") && overview.body.contains("Revoked since"), "{}", overview.body);
    // The audit page draws its chart server-side.
    let audit = send(r, "GET", "/console/tenants/acme/audit?reason=transition", Some(&acme), None).await;
    assert!(audit.body.contains("<svg") && audit.body.contains("revocation"), "{}", audit.body);

    // The operator sees every tenant.
    let (op, op_csrf) = sign_in(r, OPERATOR).await;
    let all = send(r, "GET", "/console/operator?q=be", Some(&op), None).await;
    assert!(
        all.body.contains("<td class=\"id\"><a href=\"/console/tenants/beta\">")
            && !all.body.contains("<td class=\"id\"><a href=\"/console/tenants/acme\">"),
        "search: {}",
        all.body
    );
    let revoked = send(r, "GET", "/console/operator?state=revoked", Some(&op), None).await;
    assert!(
        revoked.body.contains("href=\"/console/tenants/acme/ticket\">#1</a>") && revoked.body.contains("15d 0h 0m left"),
        "{}",
        revoked.body
    );
    assert!(!revoked.body.contains("<td class=\"id\"><a href=\"/console/tenants/beta\">"), "the state filter: {}", revoked.body);
    // Sign-out ends the session.
    let out = send(r, "POST", "/console/signout", Some(&op), Some(form(&[("csrf", &op_csrf)]))).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(send(r, "GET", "/console/operator", Some(&op), None).await.status, StatusCode::SEE_OTHER);

    // Onboarding: the setup to copy, both policies, and "Verify now" with the answer.
    let (op2, op2_csrf) = sign_in(r, OPERATOR).await;
    w.broker.add_tenant(&"gamma".parse().expect("id"), "us", &"111122223333".parse().expect("account")).await.expect("add");
    let onboarding = send(r, "GET", "/console/tenants/gamma", Some(&op2), None).await;
    for needle in ["Onboarding:", "data-copy=\"setup-text\"", "aws iam create-role", "ByokTenantKeyUse", "sts:ExternalId", "Verify now"] {
        assert!(onboarding.body.contains(needle), "{needle}: {}", onboarding.body);
    }
    // Verify first, then numbered steps; the policies collapsed; the other forms one tab away.
    let verify_at = onboarding.body.find("Verify now").expect("verify");
    assert!(verify_at < onboarding.body.find("Set up your AWS account").expect("setup"), "Verify at the top");
    assert!(
        onboarding.body.contains("<ol class=\"steps\">") && onboarding.body.contains("<summary>The trust policy of"),
        "{}",
        onboarding.body
    );
    assert!(!onboarding.body.contains("<h2>Regions</h2>"), "no empty region table while onboarding");
    assert!(onboarding.body.contains("aria-current=\"page\">Shell (aws CLI)</a>"), "{}", onboarding.body);
    let cf = send(r, "GET", "/console/tenants/gamma?setup=cloudformation", Some(&op2), None).await;
    assert!(cf.body.contains("AWS::IAM::Role") && !cf.body.contains("aws iam create-role"), "{}", cf.body);
    let tf = send(r, "GET", "/console/tenants/gamma?setup=terraform", Some(&op2), None).await;
    assert!(tf.body.contains("resource &quot;aws_iam_role&quot;") || tf.body.contains("resource \"aws_iam_role\""), "{}", tf.body);
    let verified = send(r, "POST", "/console/tenants/gamma/verify", Some(&op2), Some(form(&[("csrf", &op2_csrf)]))).await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "POST-redirect-GET: {}", verified.body);
    let answer = send(r, "GET", "/console/tenants/gamma", Some(&op2), None).await;
    assert!(answer.body.contains("Verified: the tenant is active."), "{}", answer.body);
    let reloaded = send(r, "GET", "/console/tenants/gamma", Some(&op2), None).await;
    assert!(!reloaded.body.contains("Verified: the tenant is active."), "the answer is shown once: {}", reloaded.body);
    assert_eq!(
        send(r, "POST", "/console/tenants/gamma/verify", Some(&op2), Some(form(&[("csrf", "nope")]))).await.status,
        StatusCode::FORBIDDEN
    );

    // At most five sessions per token: signing in a sixth time ends the oldest.
    let sessions: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(sign_in(r, &w.acme_admin).await.0);
        }
        v
    };
    assert_eq!(send(r, "GET", "/console/tenants/acme", Some(&sessions[0]), None).await.status, StatusCode::SEE_OTHER, "the oldest ended");
    for cookie in &sessions[1..] {
        assert_eq!(send(r, "GET", "/console/tenants/acme", Some(cookie), None).await.status, StatusCode::OK);
    }

    // Served over TLS (or configured so): cookies are Secure, `__Host-` prefixed, on path /; the
    // plain name is not read.
    let secure = app(AppState::new(w.broker.clone()).with_secure_cookies(true), DEFAULT_BODY_LIMIT);
    let page = send(&secure, "GET", "/console/signin", None, None).await;
    let raw = page.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("cookie").to_string();
    assert!(raw.starts_with("__Host-byok_signin=") && raw.contains("; Secure") && raw.contains("Path=/;"), "{raw}");
    let pre = set_cookie(&page, "__Host-byok_signin").expect("cookie");
    let signed =
        send(&secure, "POST", "/console/signin", Some(&pre), Some(form(&[("token", OPERATOR), ("csrf", &hidden_csrf(&page.body))]))).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let session = set_cookie(&signed, "__Host-byok_session").expect("a __Host- session cookie");
    assert_eq!(send(&secure, "GET", "/console/operator", Some(&session), None).await.status, StatusCode::OK);
    let plain = session.replacen("__Host-", "", 1);
    assert_eq!(send(&secure, "GET", "/console/operator", Some(&plain), None).await.status, StatusCode::SEE_OTHER);

    // Sessions expire.
    let short = app(AppState::new(w.broker.clone()).with_console_ttl(Duration::from_millis(300)), DEFAULT_BODY_LIMIT);
    let (cookie, _) = sign_in(&short, OPERATOR).await;
    assert_eq!(send(&short, "GET", "/console/operator", Some(&cookie), None).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(send(&short, "GET", "/console/operator", Some(&cookie), None).await.status, StatusCode::SEE_OTHER);
}

/// A tenant whose revocation is held for a person is still `active` in the store, but its key
/// is not served: its customer must not be told "Active: your data is available", and the
/// operator's table and counts say "suspended (held)" too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_tenant_is_shown_suspended_under_review_not_active() {
    use byok_store::AlertStore as _;
    let w = world().await;
    let r = &w.router;
    let at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
    let hold = byok_domain::Hold { tenant: "beta".parse().expect("id"), detected_at: at, regions: Vec::new(), created_at: at };
    assert!(w.store.hold(&hold).await.expect("hold"));

    let (beta, _) = sign_in(r, &w.beta_admin).await;
    for path in ["/console/tenants/beta", "/console/tenants/beta/ticket"] {
        let page = send(r, "GET", path, Some(&beta), None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains("Suspended under review since"), "{path}: {}", page.body);
        assert!(!page.body.contains("your data is available"), "{path}: {}", page.body);
    }
    // What the pages' script watches says the same, and only to those who may see the tenant.
    let watched = send(r, "GET", "/console/tenants/beta/state", Some(&beta), None).await;
    assert_eq!(watched.body, "{\"state\":\"suspended\"}");
    assert!(send(r, "GET", "/console/tenants/beta", Some(&beta), None).await.body.contains("data-state=\"suspended\""));
    assert_eq!(send(r, "GET", "/console/tenants/acme/state", Some(&beta), None).await.status, StatusCode::NOT_FOUND);
    // acme, not held, is active as before.
    let (acme, _) = sign_in(r, &w.acme_admin).await;
    let page = send(r, "GET", "/console/tenants/acme", Some(&acme), None).await;
    assert!(page.body.contains("Active: your data is available"), "{}", page.body);

    let (op, _) = sign_in(r, OPERATOR).await;
    let page = send(r, "GET", "/console/operator", Some(&op), None).await;
    assert!(page.body.contains("suspended (held)"), "{}", page.body);
    assert!(page.body.contains("<strong>1</strong> active") && page.body.contains("<strong>1</strong> suspended (held)"), "{}", page.body);
}

/// A destroyed tenant gets a final page: what was erased and when, that nothing restores it,
/// no steps to "enable the key"; its closed ticket takes no comment, in the console or the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_tenant_gets_a_final_page_and_a_closed_ticket() {
    let w = world().await;
    let r = &w.router;
    let beta: byok_domain::TenantId = "beta".parse().expect("id");
    w.broker.revoke(&beta).await.expect("revoke");
    w.clock.advance(time::Duration::days(16));
    w.broker.destroy(&beta).await.expect("destroy");

    let (cookie, _) = sign_in(r, &w.beta_admin).await;
    let page = send(r, "GET", "/console/tenants/beta", Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("This tenant&#39;s data is erased") || page.body.contains("This tenant's data is erased"), "{}", page.body);
    assert!(page.body.contains("Nothing can restore it"), "{}", page.body);
    assert!(!page.body.contains("What to do") && !page.body.contains("Enable"), "no steps on a final page: {}", page.body);

    let ticket = send(r, "GET", "/console/tenants/beta/ticket", Some(&cookie), None).await;
    let tickets = w.broker.tickets(Some(&beta)).await.expect("tickets");
    assert_eq!(tickets[0].status, byok_domain::TicketStatus::Closed, "a destroyed tenant's ticket is closed");
    assert!(ticket.body.contains("takes no more comments") && !ticket.body.contains("Add comment"), "{}", ticket.body);
    let refused = w.broker.comment(tickets[0].id, byok_domain::Author::Customer, "hello?").await;
    assert!(matches!(&refused, Err(byok_broker::BrokerError::Invalid(m)) if m.contains("closed")), "{refused:?}");
}

/// The deadline as a customer must read it at 2 a.m.: a countdown on the overview and the
/// ticket alike, every time in UTC inside `<time>` (the script adds the viewer's zone), a red
/// banner in the last 24 hours, and once passed a clear "deadline passed" with no "verify now"
/// button (a restoration is refused from then on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_counts_down_turns_urgent_and_passes() {
    let w = world().await;
    let r = &w.router;
    let beta: byok_domain::TenantId = "beta".parse().expect("id");
    w.broker.revoke(&beta).await.expect("revoke");
    let (cookie, _) = sign_in(r, &w.beta_admin).await;
    for path in ["/console/tenants/beta", "/console/tenants/beta/ticket"] {
        let page = send(r, "GET", path, Some(&cookie), None).await;
        assert!(page.body.contains("data-deadline=") && page.body.contains("15d 0h 0m left"), "{path}: {}", page.body);
        assert!(!page.body.contains("Less than 24 hours") && !page.body.contains("role=\"alert\""), "{path}: {}", page.body);
        assert!(page.body.contains("<time datetime=\"") && page.body.contains(" UTC</time>"), "{path}: {}", page.body);
        assert!(!page.body.contains("Z UTC") && !page.body.contains("Z</time>"), "no raw RFC 3339 shown: {}", page.body);
    }

    w.clock.advance(time::Duration::days(14) + time::Duration::hours(2));
    for path in ["/console/tenants/beta", "/console/tenants/beta/ticket"] {
        let page = send(r, "GET", path, Some(&cookie), None).await;
        assert!(page.body.contains("Less than 24 hours left.") && page.body.contains("22h 0m left"), "{path}: {}", page.body);
        assert!(page.body.contains("class=\"card banner urgent\"") && page.body.contains("role=\"alert\""), "{path}: {}", page.body);
    }
    let ticket = send(r, "GET", "/console/tenants/beta/ticket", Some(&cookie), None).await;
    assert!(ticket.body.contains("Access restored — verify now"), "still restorable: {}", ticket.body);

    w.clock.advance(time::Duration::hours(22));
    for path in ["/console/tenants/beta", "/console/tenants/beta/ticket"] {
        let page = send(r, "GET", path, Some(&cookie), None).await;
        assert!(page.body.contains("Deadline passed.") && !page.body.contains("data-deadline="), "{path}: {}", page.body);
        assert!(!page.body.contains("Access restored — verify now") && !page.body.contains("To restore:"), "{path}: {}", page.body);
    }
    let refused = w.broker.restore(&beta).await;
    assert!(refused.is_err(), "the page says what the broker does: {refused:?}");
}

/// "What to do" while revoked: one card per failing region and only those, the command with
/// the region's real key ARN, a link to the key in its region's KMS console and to the guide's
/// step (served by the console); a trust policy that refuses the provider gets one IAM card for
/// every region, with the policy to copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_are_one_card_per_failing_region_and_run_as_printed() {
    use byok_kms::{AccessError, Denial};
    let w = world().await;
    let r = &w.router;
    let beta: byok_domain::TenantId = "beta".parse().expect("id");
    let west: byok_domain::Region = "us-west-2".parse().expect("region");
    let tenant = w.broker.tenant(&beta).await.expect("tenant");
    let west_key = tenant.binding.key_for(&west).expect("west key").to_string();
    let east_key = tenant.binding.key_for(&"us-east-1".parse().expect("region")).expect("east key").to_string();
    w.broker.revoke(&beta).await.expect("revoke");
    let disabled = AccessError::Denied { denial: Denial::KeyDisabled, region: Some(west.clone()), message: "key is disabled".into() };
    w.kms.fail(Some(west.clone()), Some(disabled));
    let still = w.broker.restore(&beta).await.expect("restore");
    assert!(!still.restored, "{still:?}");

    let (cookie, _) = sign_in(r, &w.beta_admin).await;
    let page = send(r, "GET", "/console/tenants/beta", Some(&cookie), None).await;
    let body = &page.body;
    assert!(body.contains("What to do") && body.contains("id=\"step-us-west-2\""), "{body}");
    assert!(!body.contains("id=\"step-us-east-1\"") && !body.contains("id=\"step-iam\""), "only the failing region: {body}");
    assert!(body.contains(&format!("aws kms enable-key --region us-west-2 --key-id {west_key}")), "{body}");
    assert!(!body.contains(&east_key) || !body.contains("--region us-east-1"), "no step for the region that works: {body}");
    assert!(!body.contains("KEY_ARN") && !body.contains("--key-id KEY"), "no placeholder: {body}");
    let key_id = west_key.rsplit_once("key/").expect("key id").1;
    assert!(body.contains(&format!("https://us-west-2.console.aws.amazon.com/kms/home?region=us-west-2#/kms/keys/{key_id}")), "{body}");
    assert!(body.contains("href=\"/console/guide#step-9\"") && body.contains("data-copy=\"cmd-us-west-2\""), "{body}");
    assert!(body.contains("tabindex=\"0\""), "code blocks take keyboard focus: {body}");
    assert!(!body.contains("byok-probe") && !body.contains("real unwrap"), "no jargon: {body}");

    // The trust policy refuses the provider: one IAM card, for both regions, with the policy.
    w.kms.fail(Some(west), None);
    let trust =
        AccessError::Denied { denial: Denial::TrustPolicy, region: None, message: "not authorized to perform sts:AssumeRole".into() };
    w.kms.fail(None, Some(trust));
    w.broker.restore(&beta).await.expect("restore");
    let page = send(r, "GET", "/console/tenants/beta", Some(&cookie), None).await;
    let body = &page.body;
    assert_eq!(body.matches("id=\"step-iam\"").count(), 1, "{body}");
    assert!(body.contains("Found in us-east-1, us-west-2"), "{body}");
    assert!(!body.contains("id=\"step-us-west-2\""), "a trust failure is not a key failure: {body}");
    assert!(body.contains("--policy-document file://byok-trust-policy-beta.json") && body.contains("sts:ExternalId"), "{body}");
    assert!(body.contains("href=\"/console/guide#step-3\""), "{body}");

    // The guide the links point at, served by the console, each step anchored.
    let guide = send(r, "GET", "/console/guide", None, None).await;
    assert_eq!(guide.status, StatusCode::OK);
    assert!(guide.body.contains("<a id=\"step-3\"></a>") && guide.body.contains("<a id=\"step-9\"></a>"), "{}", guide.body);
}

pub(crate) fn location(page: &Page) -> Option<String> {
    page.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Every console form redirects (a reload never resends it) and the page it lands on shows the
/// answer once; a comment refused keeps its text beside the reason; a comment typed into an
/// expired session comes back, unsent, after signing in again; automatic answers are styled
/// apart and a run of identical ones is shown once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_redirect_keep_what_was_typed_and_survive_an_expired_session() {
    let w = world().await;
    let r = &w.router;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    w.broker.revoke(&acme).await.expect("revoke");
    let (cookie, _) = sign_in(r, &w.acme_admin).await;
    let csrf = hidden_csrf(&send(r, "GET", "/console/tenants/acme/ticket", Some(&cookie), None).await.body);
    let ticket = w.broker.tickets(Some(&acme)).await.expect("tickets")[0].id.to_string();

    // "Access restored — verify now": 303 to the ticket, the answer there once.
    for _ in 0..3 {
        let posted = send(r, "POST", "/console/tenants/acme/restore", Some(&cookie), Some(form(&[("csrf", &csrf)]))).await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&posted).as_deref(), Some("/console/tenants/acme/ticket"));
    }
    let landed = send(r, "GET", "/console/tenants/acme/ticket", Some(&cookie), None).await;
    assert!(landed.body.contains("Access is restored."), "{}", landed.body);
    let again = send(r, "GET", "/console/tenants/acme/ticket", Some(&cookie), None).await;
    assert!(!again.body.contains("Access is restored."), "shown once: {}", again.body);
    assert!(again.body.contains("class=\"comment by-system\"") && again.body.contains("Automatic message"), "{}", again.body);

    // A blank comment and a long one: back to the ticket, the reason beside the box, the text kept.
    let blank = send(
        r,
        "POST",
        "/console/tenants/acme/comment",
        Some(&cookie),
        Some(form(&[("csrf", &csrf), ("ticket", &ticket), ("body", "  ")])),
    )
    .await;
    assert_eq!((blank.status, location(&blank).as_deref()), (StatusCode::SEE_OTHER, Some("/console/tenants/acme/ticket")));
    let page = send(r, "GET", "/console/tenants/acme/ticket", Some(&cookie), None).await;
    assert!(page.body.contains("id=\"body-problem\" role=\"alert\"") && page.body.contains("it is empty"), "{}", page.body);
    assert!(page.body.contains("aria-describedby=\"body-problem\""), "{}", page.body);
    let long = format!("keep me {}", "x".repeat(16_400));
    let refused = send(
        r,
        "POST",
        "/console/tenants/acme/comment",
        Some(&cookie),
        Some(form(&[("csrf", &csrf), ("ticket", &ticket), ("body", &long)])),
    )
    .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let page = send(r, "GET", "/console/tenants/acme/ticket", Some(&cookie), None).await;
    assert!(
        page.body.contains("at most 16384 characters") && page.body.contains(">keep me xxxx"),
        "the text is kept: {}",
        &page.body[..2000.min(page.body.len())]
    );

    // The session expires with a comment typed: sign in again, and the text is back, unsent.
    let comments_before = w.broker.ticket(ticket.parse().expect("id")).await.expect("ticket").1.len();
    let typed = "We re-enabled the key in us-west-2 & checked CloudTrail.";
    let expired = send(
        r,
        "POST",
        "/console/tenants/acme/comment",
        Some("byok_session=gone"),
        Some(form(&[("csrf", &csrf), ("ticket", &ticket), ("body", typed)])),
    )
    .await;
    assert_eq!(expired.status, StatusCode::OK, "the sign-in form, not a bare redirect");
    assert!(
        expired.body.contains("Your session ended") && expired.body.contains("name=\"next\" value=\"/console/tenants/acme/ticket\""),
        "{}",
        expired.body
    );
    assert!(expired.body.contains("re-enabled the key in us-west-2 &amp; checked CloudTrail."), "{}", expired.body);
    let pre = set_cookie(&expired, "byok_signin").expect("sign-in cookie");
    let signed = send(
        r,
        "POST",
        "/console/signin",
        Some(&pre),
        Some(form(&[
            ("token", &w.acme_admin),
            ("csrf", &hidden_csrf(&expired.body)),
            ("next", "/console/tenants/acme/ticket"),
            ("draft", typed),
        ])),
    )
    .await;
    assert_eq!((signed.status, location(&signed).as_deref()), (StatusCode::SEE_OTHER, Some("/console/tenants/acme/ticket")));
    let session = set_cookie(&signed, "byok_session").expect("session");
    let back = send(r, "GET", "/console/tenants/acme/ticket", Some(&session), None).await;
    assert!(back.body.contains(">We re-enabled the key in us-west-2 &amp; checked CloudTrail.</textarea>"), "{}", back.body);
    assert_eq!(
        w.broker.ticket(ticket.parse().expect("id")).await.expect("ticket").1.len(),
        comments_before,
        "nothing sent on the viewer's behalf"
    );
    // Only our own pages: a sign-in never continues to another site.
    let pre = set_cookie(&expired, "byok_signin").expect("sign-in cookie");
    let page = send(r, "GET", "/console/signin", Some(&pre), None).await;
    let pre = set_cookie(&page, "byok_signin").expect("cookie");
    let elsewhere = send(
        r,
        "POST",
        "/console/signin",
        Some(&pre),
        Some(form(&[
            ("token", &w.acme_admin),
            ("csrf", &hidden_csrf(&page.body)),
            ("next", "//evil.example/console/tenants/x"),
            ("draft", "x"),
        ])),
    )
    .await;
    assert_eq!(location(&elsewhere).as_deref(), Some("/console"));
}

/// A customer-managed-key tenant's pages: the mode and context tag said, the setup without a
/// role (the key policy grants the provider), and no trust policy anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmk_tenant_is_shown_with_its_mode_and_context_tag() {
    let w = crate::world_with(|c| {
        c.canary = Some(byok_broker::CanaryConfig {
            role_arn: "arn:aws:iam::444455556666:role/byok-canary".parse().expect("arn"),
            external_id: "canary-external-id-0001".parse().expect("external id"),
            key: "alias/byok-canary".into(),
            region: byok_domain::Region::us_east_1(),
            key_policy_key: Some("arn:aws:kms:us-east-1:444455556666:alias/byok-canary-cmk".into()),
        })
    })
    .await;
    let r = &w.router;
    let id: byok_domain::TenantId = "delta".parse().expect("id");
    let mode = byok_domain::KeyMode::Cmk { context_tag: Some("Delta01".parse().expect("tag")) };
    let added = w.broker.add_tenant_in_mode(&id, "us", &"111122223333".parse().expect("account"), mode).await.expect("add");
    let (op, csrf) = sign_in(r, OPERATOR).await;
    let onboarding = send(r, "GET", "/console/tenants/delta", Some(&op), None).await;
    for needle in [
        "customer-managed keys (key policy), context tag <code>Delta01</code>",
        "Your context tag is <code>Delta01</code>",
        "aws kms create-key",
        "Cryptor-OSB-Provider",
        "byok:context-tag",
    ] {
        assert!(onboarding.body.contains(needle), "{needle}: {}", onboarding.body);
    }
    for absent in ["aws iam create-role", "The trust policy of", "sts:ExternalId", "the role can be assumed"] {
        assert!(!onboarding.body.contains(absent), "{absent}: {}", onboarding.body);
    }
    assert_eq!(
        send(r, "POST", "/console/tenants/delta/verify", Some(&op), Some(form(&[("csrf", &csrf)]))).await.status,
        StatusCode::SEE_OTHER
    );
    let (admin, _) = sign_in(r, &added.admin_token).await;
    let overview = send(r, "GET", "/console/tenants/delta", Some(&admin), None).await;
    assert!(overview.body.contains("Active") && overview.body.contains("context tag <code>Delta01</code>"), "{}", overview.body);
    assert!(!overview.body.contains(" · role "), "no role to show: {}", overview.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_held_tenant_is_shown_as_such() {
    use byok_store::prelude::*;
    let w = crate::world().await;
    let mut tenant = w.broker.tenant(&"acme".parse().expect("id")).await.expect("acme");
    tenant.id = "held".parse().expect("id");
    tenant.binding.mode = byok_domain::KeyMode::Provider;
    tenant.state = byok_domain::TenantState::Onboarding;
    tenant.version = 1;
    w.store.insert_tenant(&tenant).await.expect("insert");
    let (op, _) = sign_in(&w.router, OPERATOR).await;
    let page = send(&w.router, "GET", "/console/tenants/held", Some(&op), None).await;
    assert!(
        page.body.contains("provider-held keys (in the provider&#39;s account, until you bring yours)")
            || page.body.contains("provider-held keys (in the provider's account, until you bring yours)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(" · role ") && !page.body.contains("customer-managed keys (key policy)"), "{}", page.body);
}
