//! Signing in and out of the console, and who a request's session cookie belongs to
//! ([`Viewer`] as an extractor); the sessions themselves are [`super::session`]'s.

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use byok_store::TokenScope;
use maud::html;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::session::{COOKIE, CsrfForm, Flash, NONCE_TTL, SIGNIN_COOKIE, Viewer, cookie, cookie_name, same, secure, set_cookie};
use super::{PageError, layout};
use crate::state::AppState;

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
            Ok(Some(scope @ (TokenScope::Operator | TokenScope::TenantAdmin(_)))) => {
                Ok(Viewer { scope, csrf, session: id, product: state.product_name.clone() })
            }
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
    signin_form(&state, &headers, None, None)
}

/// A form sent after the session expired: sign in again, and come back to `next` with the
/// typed `draft` put back (nothing is sent on the viewer's behalf).
pub fn signin_to_continue(state: &AppState, headers: &HeaderMap, next: &str, draft: &str) -> Response {
    let problem = "Your session ended before the comment was sent. Sign in again: it comes back, unsent, on the same page.";
    signin_form(state, headers, Some(problem), Some((next, draft)))
}

/// Where a sign-in may continue to: a console page of ours, never another site.
fn continue_to(next: &str) -> Option<&str> {
    let ours = next.starts_with("/console/tenants/") && next.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b));
    ours.then_some(next)
}

fn signin_form(state: &AppState, headers: &HeaderMap, problem: Option<&str>, resume: Option<(&str, &str)>) -> Response {
    let Some(nonce) = state.console.issue_nonce() else { return PageError::Forbidden.into_response() };
    let page = layout::bare(
        &state.product_name,
        "Sign in",
        html! {
            h1 { "Sign in to " (state.product_name) }
            p.muted { "Use the tenant admin token you were given when your tenant was added, or the operator token." }
            @if let Some(problem) = problem { p.bad role="alert" { (problem) } }
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf" value=(nonce);
                @if let Some((next, draft)) = resume {
                    input type="hidden" name="next" value=(next);
                    input type="hidden" name="draft" value=(draft);
                }
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
    /// The page to return to, and the text typed there before the session expired.
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    draft: Option<String>,
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
        Ok(Some(TokenScope::Service(_))) => {
            return signin_form(&state, &headers, Some("A service token reaches data, not the console."), resume(&form));
        }
        Ok(None) | Err(_) => return signin_form(&state, &headers, Some("That token is not valid (or no longer)."), resume(&form)),
    }
    state.console.forget_nonce(&form.csrf);
    let Some((id, _csrf)) = state.console.create(token) else { return PageError::Forbidden.into_response() };
    let next = match resume(&form) {
        Some((next, draft)) => {
            state.console.set_flash(&id, Flash::Draft { problem: None, text: draft.to_string() });
            next
        }
        None => "/console",
    };
    let mut response = Redirect::to(next).into_response();
    let ttl = state.console.ttl().as_secs();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, &id, ttl, secure));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0, secure));
    response
}

/// The page and draft a sign-in carries on to, when the form named a page of ours.
fn resume(form: &SignInForm) -> Option<(&str, &str)> {
    let next = continue_to(form.next.as_deref()?)?;
    Some((next, form.draft.as_deref().unwrap_or_default()))
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
