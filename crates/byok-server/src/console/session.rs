//! Signing in: a tenant admin or operator token is exchanged for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, expiring; `Secure` and named with the `__Host-` prefix when
//! the console is served over TLS or configured so); each session has a CSRF token that every
//! form carries. The sign-in form's nonce is one this node issued (kept ten minutes), so an
//! empty or made-up cookie/form pair does not sign anyone in. Each token has at most
//! [`MAX_SESSIONS_PER_TOKEN`] sessions: signing in again ends its oldest. Sessions live in this
//! node's memory; the token behind a session is checked again on every page, so revoking the
//! token ends the session within the token cache's bound.

use parking_lot::Mutex;
use std::collections::HashMap;
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

/// Sessions one token may hold at once; one more ends the oldest.
pub const MAX_SESSIONS_PER_TOKEN: usize = 5;
/// How long a sign-in form's nonce stays good.
const NONCE_TTL: Duration = Duration::from_secs(600);
/// Nonces kept at most (forms fetched and never posted); past it the oldest go first.
const MAX_NONCES: usize = 10_000;

/// One signed-in browser.
struct Session {
    token: Zeroizing<String>,
    csrf: String,
    expires: Instant,
}

/// This node's sessions and the sign-in nonces it issued.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    nonces: Mutex<HashMap<String, Instant>>,
    ttl: Duration,
    /// Cookies always `Secure` with the `__Host-` prefix (the console is served over TLS, or
    /// behind a proxy that terminates it); otherwise only for requests a proxy marks https.
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(ttl: Duration, secure: bool) -> Self {
        Self { map: Mutex::new(HashMap::new()), nonces: Mutex::new(HashMap::new()), ttl, secure }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new sign-in nonce, remembered until used or expired.
    fn issue_nonce(&self) -> Option<String> {
        let nonce = random()?;
        let mut nonces = self.nonces.lock();
        let now = Instant::now();
        nonces.retain(|_, expires| *expires > now);
        if nonces.len() >= MAX_NONCES {
            if let Some(oldest) = nonces.iter().min_by_key(|(_, e)| **e).map(|(n, _)| n.clone()) {
                nonces.remove(&oldest);
            }
        }
        nonces.insert(nonce.clone(), now + NONCE_TTL);
        Some(nonce)
    }

    /// Whether `nonce` is one this node issued and is still good.
    fn nonce_ok(&self, nonce: &str) -> bool {
        let nonces = self.nonces.lock();
        !nonce.is_empty() && nonces.get(nonce).is_some_and(|expires| *expires > Instant::now())
    }

    fn forget_nonce(&self, nonce: &str) {
        self.nonces.lock().remove(nonce);
    }

    fn create(&self, token: &str) -> Option<(String, String)> {
        let id = random()?;
        let csrf = random()?;
        let mut map = self.map.lock();
        map.retain(|_, s| s.expires > Instant::now());
        // At most MAX_SESSIONS_PER_TOKEN per token: the oldest ends.
        let mut own: Vec<(String, Instant)> =
            map.iter().filter(|(_, s)| same(&s.token, token)).map(|(id, s)| (id.clone(), s.expires)).collect();
        own.sort_by_key(|(_, expires)| *expires);
        let excess = (own.len() + 1).saturating_sub(MAX_SESSIONS_PER_TOKEN);
        for (old, _) in own.into_iter().take(excess) {
            map.remove(&old);
        }
        map.insert(
            id.clone(),
            Session { token: Zeroizing::new(token.to_string()), csrf: csrf.clone(), expires: Instant::now() + self.ttl },
        );
        Some((id, csrf))
    }

    fn get(&self, id: &str) -> Option<(Zeroizing<String>, String)> {
        let map = self.map.lock();
        map.get(id).filter(|s| s.expires > Instant::now()).map(|s| (s.token.clone(), s.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        self.map.lock().remove(id);
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

/// Whether the browser reached us over TLS: configured so, or a proxy says so.
fn secure(sessions: &Sessions, headers: &HeaderMap) -> bool {
    sessions.secure || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A cookie's name: with the `__Host-` prefix when `Secure` (browsers then refuse it from any
/// other host or path, and from plain HTTP); browsers refuse that prefix without `Secure`.
fn cookie_name(name: &str, secure: bool) -> String {
    if secure { format!("__Host-{name}") } else { name.to_string() }
}

fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let name = cookie_name(name, secure);
    // `__Host-` cookies must have `Path=/`.
    let (path, secure) = if secure { ("/", "; Secure") } else { ("/console", "") };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
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
            TokenScope::TenantAdmin(_) | TokenScope::Service(_) => Err(PageError::NotFound),
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
        let id = cookie(&parts.headers, &cookie_name(COOKIE, secure(&state.console, &parts.headers))).ok_or(SignIn)?;
        let (token, csrf) = state.console.get(&id).ok_or(SignIn)?;
        match state.broker.token_scope(&token).await {
            Ok(Some(scope @ (TokenScope::Operator | TokenScope::TenantAdmin(_)))) => Ok(Viewer { scope, csrf, session: id }),
            Ok(Some(TokenScope::Service(_)) | None) | Err(_) => {
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
        TokenScope::Operator | TokenScope::Service(_) => Redirect::to("/console/operator"),
    }
}

pub async fn signin_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signin_form(&state, &headers, None)
}

fn signin_form(state: &AppState, headers: &HeaderMap, problem: Option<&str>) -> Response {
    let Some(nonce) = state.console.issue_nonce() else { return PageError::Forbidden.into_response() };
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
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, &nonce, NONCE_TTL.as_secs(), secure(&state.console, headers)));
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
    // Login CSRF: the form's nonce must match the cookie set with the form, and be one this
    // node issued (an empty or made-up pair matches itself).
    let secure = secure(&state.console, &headers);
    if !cookie(&headers, &cookie_name(SIGNIN_COOKIE, secure)).is_some_and(|c| same(&c, &form.csrf)) || !state.console.nonce_ok(&form.csrf) {
        return PageError::Csrf.into_response();
    }
    let token = form.token.trim();
    match state.broker.token_scope(token).await {
        Ok(Some(TokenScope::Operator | TokenScope::TenantAdmin(_))) => {}
        Ok(Some(TokenScope::Service(_))) => return signin_form(&state, &headers, Some("A service token reaches data, not the console.")),
        Ok(None) | Err(_) => return signin_form(&state, &headers, Some("That token is not valid (or no longer).")),
    }
    state.console.forget_nonce(&form.csrf);
    let Some((id, _csrf)) = state.console.create(token) else { return PageError::Forbidden.into_response() };
    let mut response = Redirect::to("/console").into_response();
    let ttl = state.console.ttl.as_secs();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, &id, ttl, secure));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0, secure));
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
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(COOKIE, "", 0, secure(&state.console, &headers)));
    Ok(response)
}
