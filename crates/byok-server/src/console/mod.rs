//! The web console under `/console`: what a tenant admin and an operator see, server-rendered
//! (maud escapes every string it is given), with a stylesheet and a few lines of script.
//!
//! # Layout
//! - this file: the router, security headers (a strict Content-Security-Policy), the error pages;
//! - [`guide`]: the customer guide, served at `/console/guide` with an anchor per step;
//! - [`session`]: sign-in with a token exchanged for a session cookie, CSRF tokens, expiry;
//! - [`layout`]: the page frame and shared bits (times, deadlines);
//! - [`shown`]: a tenant's state as its pages show it (suspended and restoring among them);
//! - [`tenant`]: a tenant's overview, its onboarding and "Verify now";
//! - [`steps`]: the overview's "What to do", one card per failing region with runnable commands;
//! - [`webhooks`]: the overview's webhook endpoints (add, test, new secret, remove) and email contacts;
//! - [`ticket`]: the revocation ticket, comments, "Access restored — verify now";
//! - [`audit`]: the audit log, newest first, filtered and paged in the store, exported as shown;
//! - [`audit_chart`]: its chart of key uses per day and per hour, counted by the store;
//! - [`operator`]: health, held revocations to release or dismiss, tiles per state, every tenant paged.

pub mod audit;
pub mod audit_chart;
pub mod guide;
pub mod layout;
pub mod operator;
pub mod session;
pub mod shown;
pub mod signin;
pub mod steps;
pub mod tenant;
pub mod ticket;
pub mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;

use crate::state::AppState;

pub const CSS: &str = include_str!("../../static/console.css");
pub const JS: &str = include_str!("../../static/console.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(signin::home))
        .route("/console/", get(signin::home))
        .route("/console/static/console.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }))
        .route("/console/static/console.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS) }))
        .route("/console/guide", get(guide::page))
        .route("/console/signin", get(signin::signin_page).post(signin::signin))
        .route("/console/signout", post(signin::signout))
        .route("/console/tenants/{id}", get(tenant::overview))
        .route("/console/tenants/{id}/verify", post(tenant::verify))
        .route("/console/tenants/{id}/state", get(tenant::watch))
        .route("/console/tenants/{id}/ticket", get(ticket::page))
        .route("/console/tenants/{id}/comment", post(ticket::comment))
        .route("/console/tenants/{id}/restore", post(ticket::restore))
        .route("/console/tenants/{id}/audit", get(audit::page))
        .route("/console/tenants/{id}/audit/export", get(audit::export))
        .route("/console/tenants/{id}/webhooks", post(webhooks::add))
        .route("/console/tenants/{id}/webhooks/{webhook}/{action}", post(webhooks::act))
        .route("/console/tenants/{id}/contacts", post(webhooks::contacts))
        .route("/console/operator", get(operator::page))
        .route("/console/operator/holds/{id}/release", post(operator::release))
        .route("/console/operator/holds/{id}/dismiss", post(operator::dismiss))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Every console response: nothing but our own stylesheet and script may run, nothing may
/// frame the page, no referrer leaves it.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A tenant id from a path: one that cannot be is a page that does not exist.
pub(super) fn tenant_id(raw: &str) -> Result<byok_domain::TenantId, PageError> {
    raw.parse().map_err(|_| PageError::NotFound)
}

/// A page that went wrong, in the console's own frame.
#[derive(Debug)]
pub enum PageError {
    /// Missing, or another tenant's: the same words either way.
    NotFound,
    /// The form's CSRF token did not match the session's.
    Csrf,
    /// The viewer's scope does not reach this page.
    Forbidden,
    /// Something the broker refused or failed at, said in words.
    Broker(byok_broker::BrokerError),
}

impl From<byok_broker::BrokerError> for PageError {
    fn from(e: byok_broker::BrokerError) -> Self {
        match e {
            byok_broker::BrokerError::UnknownTenant(_) | byok_broker::BrokerError::UnknownTicket(_) => PageError::NotFound,
            other => PageError::Broker(other),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here for you.".to_string()),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is no longer valid (it was sent from another page or session). Go back, reload, and try again.".to_string(),
            ),
            PageError::Forbidden => {
                (StatusCode::FORBIDDEN, "Not for this sign-in", "Sign in with a token that reaches this page.".to_string())
            }
            PageError::Broker(e) => {
                let (code, _, message, _) = crate::error::broker_parts(e);
                if code.is_server_error() {
                    tracing::error!(error = ?e, "console page failed");
                    (code, "Something failed", message)
                } else {
                    (code, "Not possible now", message)
                }
            }
        };
        // No state here: the error pages carry no brand.
        let body = layout::bare("Console", title, html! { h1 { (title) } p { (text) } p { a href="/console" { "Back to the console" } } });
        (status, body).into_response()
    }
}
