//! Console sessions (the pages that sign in and out are in `signin.rs`): a tenant admin or
//! operator token is exchanged for a session cookie
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

use axum::http::{HeaderMap, HeaderValue, header};
use byok_store::TokenScope;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use zeroize::Zeroizing;

use super::PageError;

pub(super) const COOKIE: &str = "byok_session";
pub(super) const SIGNIN_COOKIE: &str = "byok_signin";

/// Sessions one token may hold at once; one more ends the oldest.
pub const MAX_SESSIONS_PER_TOKEN: usize = 5;
/// How long a sign-in form's nonce stays good.
pub(super) const NONCE_TTL: Duration = Duration::from_secs(600);
/// Nonces kept at most (forms fetched and never posted); past it the oldest go first.
const MAX_NONCES: usize = 10_000;

/// One signed-in browser.
struct Session {
    token: Zeroizing<String>,
    csrf: String,
    expires: Instant,
    /// What the last form did, shown once by the page it redirected to.
    flash: Option<Flash>,
}

/// What a form did, kept in the session for the page its POST redirects to
/// (POST-redirect-GET: a reload never resends a form) and shown there once.
#[derive(Debug, Clone)]
pub enum Flash {
    /// "Access restored — verify now" (or a "ready" comment): the answer region by region.
    Restoration(byok_broker::Restoration),
    /// "Verify now" during onboarding.
    Verification(byok_broker::Verification),
    /// A sentence saying what was done.
    Notice(String),
    /// A comment not taken (why, beside the field), or typed before a session expired: the
    /// text goes back into the box.
    Draft { problem: Option<String>, text: String },
    /// A form's field not taken: which form, why (shown beside the field), what was typed.
    Field { form: &'static str, problem: String, value: String },
    /// A webhook's new signing secret, shown once (after "Add" or "New secret").
    Secret { webhook: String, secret: ShownOnce },
}

/// A secret a page shows once: wiped when dropped, never in `Debug` or a log.
#[derive(Clone)]
pub struct ShownOnce(pub Zeroizing<String>);

impl std::fmt::Debug for ShownOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShownOnce(<redacted>)")
    }
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
    pub(super) fn issue_nonce(&self) -> Option<String> {
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
    pub(super) fn nonce_ok(&self, nonce: &str) -> bool {
        let nonces = self.nonces.lock();
        !nonce.is_empty() && nonces.get(nonce).is_some_and(|expires| *expires > Instant::now())
    }

    pub(super) fn forget_nonce(&self, nonce: &str) {
        self.nonces.lock().remove(nonce);
    }

    pub(super) fn create(&self, token: &str) -> Option<(String, String)> {
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
            Session { token: Zeroizing::new(token.to_string()), csrf: csrf.clone(), expires: Instant::now() + self.ttl, flash: None },
        );
        Some((id, csrf))
    }

    pub(super) fn get(&self, id: &str) -> Option<(Zeroizing<String>, String)> {
        let map = self.map.lock();
        map.get(id).filter(|s| s.expires > Instant::now()).map(|s| (s.token.clone(), s.csrf.clone()))
    }

    /// Keeps what a form did for the page it redirects to (the newest replaces an older one).
    pub(super) fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(session) = self.map.lock().get_mut(id) {
            session.flash = Some(flash);
        }
    }

    /// What the last form did, once.
    pub(super) fn take_flash(&self, id: &str) -> Option<Flash> {
        self.map.lock().get_mut(id).and_then(|s| s.flash.take())
    }

    pub(super) fn remove(&self, id: &str) {
        self.map.lock().remove(id);
    }
}

pub(super) fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// Whether the browser reached us over TLS: configured so, or a proxy says so.
pub(super) fn secure(sessions: &Sessions, headers: &HeaderMap) -> bool {
    sessions.secure || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A cookie's name: with the `__Host-` prefix when `Secure` (browsers then refuse it from any
/// other host or path, and from plain HTTP); browsers refuse that prefix without `Secure`.
pub(super) fn cookie_name(name: &str, secure: bool) -> String {
    if secure { format!("__Host-{name}") } else { name.to_string() }
}

pub(super) fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
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
    pub(super) session: String,
    /// The product's name the pages carry (`--product-name`).
    pub product: std::sync::Arc<str>,
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

/// A form whose only field is the page's CSRF token (sign-out, verify, restore).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}
