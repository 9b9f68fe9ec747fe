//! The HTTP layer on its own: `app()` called with `tower::ServiceExt::oneshot`, no socket, the
//! broker on a SQLite store and the KMS test double (the subject here is routing, scopes and
//! status codes, not KMS; the real-AWS-wire paths are tested in `byok-cli` against localcloud).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_debug_implementations)]

mod alert_rules;
mod batch;
mod checkpoints;
mod console;
mod console_browser;
mod console_notify;
mod console_scale;
mod errors;
mod keys;
mod limits;
mod scopes;
mod tokens;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use byok_broker::{Broker, BrokerConfig, ManualClock};
use byok_domain::TenantId;
use byok_kms::FakeKeyService;
use byok_server::{AppState, DEFAULT_BODY_LIMIT, app};
use byok_store::{SqlStore, TokenScope};
use http_body_util::BodyExt;
use serde_json::Value;
use time::OffsetDateTime;
use tower::ServiceExt;

pub const OPERATOR: &str = "byok_op_test";
pub const SERVICE: &str = "byok_svc_test";

/// A broker with two active tenants, `acme` and `beta`, and their admin tokens.
pub struct World {
    pub broker: Arc<Broker>,
    pub store: Arc<SqlStore>,
    pub kms: Arc<FakeKeyService>,
    pub router: axum::Router,
    pub acme_admin: String,
    pub beta_admin: String,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`], its broker configured by `configure` first.
pub async fn world_with(configure: impl FnOnce(&mut BrokerConfig)) -> World {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("byok.db")).await.expect("store"));
    let kms = Arc::new(FakeKeyService::default());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t")));
    let mut config = BrokerConfig::new("arn:aws:iam::279766244153:role/Cryptor-OSB-Provider".parse().expect("arn"));
    // The double lets any role be assumed, with or without the external id.
    config.allow_legacy_trust = true;
    configure(&mut config);
    let signer = byok_broker::audit_signing::AuditSigner::from_pkcs8(&byok_broker::audit_signing::AuditSigner::generate().expect("key"))
        .expect("signer");
    let broker = Arc::new(Broker::new(config, store.clone(), kms.clone(), clock.clone()).with_audit_signer(signer));
    broker.register_token(OPERATOR, TokenScope::Operator).await.expect("operator");
    broker.register_token(SERVICE, TokenScope::Service(byok_store::ServiceReach::AllTenants)).await.expect("service");
    let mut admins = Vec::new();
    for id in ["acme", "beta"] {
        let id: TenantId = id.parse().expect("id");
        let added = broker.add_tenant(&id, "us", &"111122223333".parse().expect("account")).await.expect("add");
        assert!(broker.verify_tenant(&id).await.expect("verify").ok);
        admins.push(added.admin_token.to_string());
    }
    let router = app(AppState::new(broker.clone()), DEFAULT_BODY_LIMIT);
    let beta_admin = admins.pop().expect("beta");
    let acme_admin = admins.pop().expect("acme");
    World { broker, store, kms, router, acme_admin, beta_admin, clock, _dir: dir }
}

impl World {
    /// The store, for a second node.
    pub fn broker_store(&self) -> Arc<SqlStore> {
        self.store.clone()
    }
}

/// One request through the router: status and JSON body (`null` if none or not JSON).
pub async fn call(router: &axum::Router, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    raw(router, request.body(body).expect("request")).await
}

pub async fn raw(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}
