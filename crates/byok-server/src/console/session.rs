//! Signing in: a tenant admin or operator token is exchanged for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS, expiring); each session has a CSRF token
//! that every form carries. Sessions live in this node's memory; the token behind a session is
//! checked again on every page, so revoking the token ends the session within the token cache's
//! bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use byok_store::TokenScope;
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{PageError, layout};
use crate::AppState;

const COOKIE: &str = "byok_session";
const SIGNIN_COOKIE: &str = "byok_signin";

/// One signed-in browser.
struct Session {
    token: Zeroizing<String>,
    csrf: String,
    expires: Instant,
}

/// This node's sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { map: Mutex::new(HashMap::new()), ttl }
    }

    fn create(&self, token: &str) -> Option<(String, String)> {
        let id = random()?;
        let csrf = random()?;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > Instant::now());
        map.insert(
            id.clone(),
            Session { token: Zeroizing::new(token.to_string()), csrf: csrf.clone(), expires: Instant::now() + self.ttl },
        );
        Some((id, csrf))
    }

    fn get(&self, id: &str) -> Option<(Zeroizing<String>, String)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).map(|s| (s.token.clone(), s.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so).
fn secure(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The signed-in viewer of a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub scope: TokenScope,
    pub csrf: String,
    session: String,
}

impl Viewer {
    /// The operator, or the admin of this very tenant; anyone else sees "not found".
    pub fn may_see(&self, tenant: &byok_domain::TenantId) -> Result<(), PageError> {
        match &self.scope {
            TokenScope::Operator => Ok(()),
            TokenScope::TenantAdmin(own) if own == tenant => Ok(()),
            TokenScope::TenantAdmin(_) | TokenScope::Service => Err(PageError::NotFound),
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.scope, TokenScope::Operator)
    }

    /// A form's CSRF token must be this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if same(sent, &self.csrf) { Ok(()) } else { Err(PageError::Csrf) }
    }
}

/// Not signed in (no, an expired or a forged cookie, a revoked token): to the sign-in page.
#[derive(Debug)]
pub struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/console/signin").into_response()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = SignIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignIn> {
        let id = cookie(&parts.headers, COOKIE).ok_or(SignIn)?;
        let (token, csrf) = state.console.get(&id).ok_or(SignIn)?;
        match state.broker.token_scope(&token).await {
            Ok(Some(scope @ (TokenScope::Operator | TokenScope::TenantAdmin(_)))) => Ok(Viewer { scope, csrf, session: id }),
            Ok(Some(TokenScope::Service) | None) | Err(_) => {
                state.console.remove(&id);
                Err(SignIn)
            }
        }
    }
}

/// `/console`: the operator's view, or the tenant admin's own tenant.
pub async fn home(viewer: Viewer) -> Redirect {
    match &viewer.scope {
        TokenScope::TenantAdmin(id) => Redirect::to(&format!("/console/tenants/{id}")),
        TokenScope::Operator | TokenScope::Service => Redirect::to("/console/operator"),
    }
}

pub async fn signin_page(headers: HeaderMap) -> Response {
    signin_form(&headers, None)
}

fn signin_form(headers: &HeaderMap, problem: Option<&str>) -> Response {
    let Some(nonce) = random() else { return PageError::Forbidden.into_response() };
    let page = layout::bare(
        "Sign in",
        html! {
            h1 { "Sign in to byok" }
            p.muted { "Use the tenant admin token you were given when your tenant was added, or the operator token." }
            @if let Some(problem) = problem { p.bad role="alert" { (problem) } }
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf" value=(nonce);
                label for="token" { "Token" }
                input type="password" id="token" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        },
    );
    let mut response = page.into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, &nonce, 600, secure(headers)));
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: Zeroizing<String>,
    csrf: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm").field("token", &"** redacted **").finish_non_exhaustive()
    }
}

pub async fn signin(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SignInForm>) -> Response {
    // Login CSRF: the form's nonce must match the cookie set with the form.
    if !cookie(&headers, SIGNIN_COOKIE).is_some_and(|c| same(&c, &form.csrf)) {
        return PageError::Csrf.into_response();
    }
    let token = form.token.trim();
    match state.broker.token_scope(token).await {
        Ok(Some(TokenScope::Operator | TokenScope::TenantAdmin(_))) => {}
        Ok(Some(TokenScope::Service)) => return signin_form(&headers, Some("A service token reaches data, not the console.")),
        Ok(None) | Err(_) => return signin_form(&headers, Some("That token is not valid (or no longer).")),
    }
    let Some((id, _csrf)) = state.console.create(token) else { return PageError::Forbidden.into_response() };
    let mut response = Redirect::to("/console").into_response();
    let ttl = state.console.ttl.as_secs();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, &id, ttl, secure(&headers)));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0, secure(&headers)));
    response
}

/// A form whose only field is the page's CSRF token (sign-out, verify, restore).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

pub async fn signout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    state.console.remove(&viewer.session);
    let mut response = Redirect::to("/console/signin").into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(COOKIE, "", 0, secure(&headers)));
    Ok(response)
}
