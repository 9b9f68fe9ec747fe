//! The overview's notification forms, through the router: a customer adds a webhook endpoint
//! with the events it wants and sees its signing secret once, gets a new secret, removes the
//! endpoint, and sets the email contacts; every refusal comes back beside its field with the
//! text kept, nothing saved; another tenant's endpoint cannot be touched.

use axum::http::StatusCode;

use crate::console::{form, hidden_csrf, send, sign_in};
use crate::{world, world_with};

/// The overview as `cookie` sees it now, and its CSRF token.
async fn overview(router: &axum::Router, cookie: &str) -> (String, String) {
    let page = send(router, "GET", "/console/tenants/acme", Some(cookie), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = hidden_csrf(&page.body);
    (page.body, csrf)
}

/// Posts `pairs` to `path`: it must answer with a redirect back to the overview.
async fn post(router: &axum::Router, cookie: &str, path: &str, pairs: &[(&str, &str)]) {
    let answer = send(router, "POST", path, Some(cookie), Some(form(pairs))).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}: {}", answer.body);
    let to = answer.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(to.starts_with("/console/tenants/acme#"), "{path} went to {to}");
}

fn secret_in(body: &str) -> Option<String> {
    let at = body.find("whsec_")?;
    Some(body[at..].split('<').next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_adds_rotates_and_removes_a_webhook_from_the_overview() {
    let w = world().await;
    let r = &w.router;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    let (cookie, _) = sign_in(r, &w.acme_admin).await;
    let (body, csrf) = overview(r, &cookie).await;
    assert!(body.contains("No endpoint yet") && body.contains("Add endpoint"), "{body}");

    // Refusals: beside the field, the address kept, nothing saved.
    let add = "/console/tenants/acme/webhooks";
    for (url, events, why) in [
        ("", vec![], "Write the endpoint&#39;s address first"),
        ("http://hooks.example.com/byok", vec![], "must be https://"),
        ("https://hooks.example.com/byok", vec!["tenant.nope"], "unknown event type tenant.nope"),
    ] {
        let mut pairs = vec![("csrf", csrf.as_str()), ("url", url)];
        pairs.extend(events.iter().map(|e| ("events", *e)));
        post(r, &cookie, add, &pairs).await;
        let (body, _) = overview(r, &cookie).await;
        let why_plain = why.replace("&#39;", "'");
        assert!(body.contains(why) || body.contains(&why_plain), "{url}: {body}");
        assert!(body.contains("id=\"webhook-url-problem\"") && body.contains("aria-describedby=\"webhook-url-problem\""), "{body}");
        assert!(body.contains(&format!("value=\"{url}\"")), "the address is kept: {body}");
        assert!(w.broker.webhooks(Some(&acme)).await.expect("list").is_empty(), "{url}: nothing saved");
    }
    // A form without the session's CSRF token does nothing.
    let forged = send(r, "POST", add, Some(&cookie), Some(form(&[("csrf", "forged"), ("url", "https://evil.example/x")]))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(w.broker.webhooks(Some(&acme)).await.expect("list").is_empty());

    // Added with two events: the secret is shown once, on the page the form redirects to.
    let url = "https://hooks.example.com/byok";
    post(r, &cookie, add, &[("csrf", &csrf), ("url", url), ("events", "tenant.revoked"), ("events", "tenant.restored")]).await;
    let (body, csrf) = overview(r, &cookie).await;
    let first = secret_in(&body).unwrap_or_else(|| panic!("the secret is shown: {body}"));
    assert!(body.contains("shown this once") && body.contains("Events: tenant.revoked, tenant.restored"), "{body}");
    let (again, _) = overview(r, &cookie).await;
    assert_eq!(secret_in(&again), None, "shown once only: {again}");
    let hooks = w.broker.webhooks(Some(&acme)).await.expect("list");
    assert_eq!(hooks.len(), 1);
    assert_eq!((hooks[0].url.as_str(), hooks[0].events.clone()), (url, vec!["tenant.revoked".to_string(), "tenant.restored".to_string()]));
    assert_eq!(hooks[0].secrets[0].secret, first, "the secret shown is the one that signs");
    let id = hooks[0].id.clone();

    // A new secret: shown once, and the old one still signs for a while.
    post(r, &cookie, &format!("/console/tenants/acme/webhooks/{id}/rotate"), &[("csrf", &csrf)]).await;
    let (body, csrf) = overview(r, &cookie).await;
    let second = secret_in(&body).expect("the new secret");
    assert_ne!(first, second);
    let hook = w.broker.webhook(Some(&acme), &id).await.expect("webhook");
    assert_eq!(hook.secrets.len(), 2, "both sign during the rotation");
    assert_eq!(hook.secrets[0].secret, second);

    // Another tenant's admin cannot see or touch it.
    let (beta, _) = sign_in(r, &w.beta_admin).await;
    let beta_page = send(r, "GET", "/console/tenants/beta", Some(&beta), None).await;
    let beta_csrf = hidden_csrf(&beta_page.body);
    for path in [format!("/console/tenants/acme/webhooks/{id}/remove"), format!("/console/tenants/beta/webhooks/{id}/remove")] {
        let refused = send(r, "POST", &path, Some(&beta), Some(form(&[("csrf", &beta_csrf)]))).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}: {}", refused.body);
    }
    assert_eq!(w.broker.webhooks(Some(&acme)).await.expect("list").len(), 1);

    // A button that does not exist is a page that does not exist.
    let unknown =
        send(r, "POST", &format!("/console/tenants/acme/webhooks/{id}/explode"), Some(&cookie), Some(form(&[("csrf", &csrf)]))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    post(r, &cookie, &format!("/console/tenants/acme/webhooks/{id}/remove"), &[("csrf", &csrf)]).await;
    let (body, _) = overview(r, &cookie).await;
    assert!(body.contains(&format!("Removed {url}")), "{body}");
    assert!(w.broker.webhooks(Some(&acme)).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_contacts_are_set_from_the_overview_when_the_provider_has_a_relay() {
    // Without a relay the page says so, with no form to fill in for nothing.
    let w = world().await;
    let (cookie, _) = sign_in(&w.router, &w.acme_admin).await;
    let (body, _) = overview(&w.router, &cookie).await;
    assert!(body.contains("Email is not set up on this deployment") && !body.contains("Save contacts"), "{body}");

    let w = world_with(|c| {
        c.smtp = Some(byok_broker::email::SmtpConfig {
            url: "smtp://127.0.0.1:2525".into(),
            from: "Northwind <byok@northwind.example>".into(),
            console_url: None,
        })
    })
    .await;
    let r = &w.router;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    let (cookie, _) = sign_in(r, &w.acme_admin).await;
    let (_, csrf) = overview(r, &cookie).await;
    post(r, &cookie, "/console/tenants/acme/contacts", &[("csrf", &csrf), ("contacts", "ops@acme.example\r\n\r\n  sec@acme.example  ")])
        .await;
    let (body, csrf) = overview(r, &cookie).await;
    assert!(body.contains("Saved 2 contact(s): ops@acme.example, sec@acme.example."), "{body}");
    assert_eq!(w.broker.contacts(&acme).await.expect("contacts"), ["ops@acme.example", "sec@acme.example"]);
    assert!(body.contains("ops@acme.example\nsec@acme.example</textarea>"), "the saved list is in the box: {body}");
    // The contacts are not webhook endpoints: no "Send test event" for them.
    assert!(!body.contains("mailto:"), "{body}");

    // A bad address: beside the box, the text kept, the saved contacts unchanged.
    post(r, &cookie, "/console/tenants/acme/contacts", &[("csrf", &csrf), ("contacts", "ops@acme.example\nnot-an-address")]).await;
    let (body, csrf) = overview(r, &cookie).await;
    assert!(body.contains("not-an-address is not an email address") && body.contains("id=\"contacts-problem\""), "{body}");
    assert!(body.contains("ops@acme.example\nnot-an-address</textarea>"), "{body}");
    assert_eq!(w.broker.contacts(&acme).await.expect("contacts").len(), 2);

    // Emptied: no contacts.
    post(r, &cookie, "/console/tenants/acme/contacts", &[("csrf", &csrf), ("contacts", "")]).await;
    assert!(w.broker.contacts(&acme).await.expect("contacts").is_empty());
}
