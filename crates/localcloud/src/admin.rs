//! The `/_localcloud` admin surface: not an AWS API. Accounts, role credentials as an instance
//! profile would hand them out, fault injection, the clock, and the audit trail.
//!
//! | method and path | body / query | answer |
//! |---|---|---|
//! | `GET /_localcloud/health` | | `{"status":"ok"}` |
//! | `POST /_localcloud/accounts` | `{"name", "account_id"?}` | 201 `{"account_id","name","access_key_id","secret_access_key"}` |
//! | `GET /_localcloud/accounts` | | `[{"account_id","name","access_key_id"}]` |
//! | `POST /_localcloud/accounts/ID/fixture` | `{"roles":[{"name","trust_policy"}],"keys":[{"region","alias"?,"description"?,"policy"?}]}` | 201 `{"roles":[ARN],"keys":[{"region","key_id","arn","alias"}]}` ([`crate::fixture`]) |
//! | `POST /_localcloud/role-credentials` | `{"role_arn","session_name"?,"duration_seconds"?}` | `{"access_key_id","secret_access_key","session_token","expiration"}` |
//! | `GET /_localcloud/faults` | | the rules in force |
//! | `POST /_localcloud/faults` | a [`FaultSpec`] | 201 the rule with its `id` |
//! | `DELETE /_localcloud/faults[/ID]` | | `{"removed": N}` |
//! | `GET /_localcloud/clock` | | `{"now","offset_seconds"}` |
//! | `POST /_localcloud/clock` | `{"offset_seconds"}` or `{"advance_seconds"}` | the clock |
//! | `GET /_localcloud/trail` | `?since=SEQ&event=NAME&account=ID&limit=N` | JSON lines |
//!
//! These endpoints mint credentials and move the clock, so they answer the local machine only
//! ([`guard`]): a peer that is not loopback, a request with an `Origin` (a web page), a `Host`
//! that is not a loopback name (DNS rebinding), or a write that is not `application/json` (a
//! cross-site form post) is refused; with `--admin-token` a bearer token is required too.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::cloud::{AdminError, Cloud};
use crate::faults::FaultSpec;
use crate::protocol::HttpResponse;
use crate::session::{self, SessionClaims};
use crate::sigv4::query_pairs;

pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    json_response(status, &json!({ "error": code, "message": message.into() }))
}

fn admin_error(e: AdminError) -> HttpResponse {
    match e {
        AdminError::Invalid(m) => error(StatusCode::BAD_REQUEST, "invalid_request", m),
        AdminError::Conflict(m) => error(StatusCode::CONFLICT, "conflict", m),
        AdminError::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", m),
        AdminError::Persist(e) => {
            tracing::error!(error = %e, "admin request could not be persisted");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the change could not be saved; see the localcloud log")
        }
    }
}

/// Why an admin request was turned away.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    pub fn response(self) -> HttpResponse {
        error(self.status, self.code, self.message)
    }
}

/// Whether this request may reach the admin endpoints at all.
pub fn guard(cloud: &Cloud, peer: std::net::SocketAddr, method: &Method, headers: &http::HeaderMap) -> Result<(), Refusal> {
    let error = |status, code, message: String| Refusal { status, code, message };
    if !peer.ip().is_loopback() && !peer.ip().to_canonical().is_loopback() {
        return Err(error(StatusCode::FORBIDDEN, "forbidden", "the /_localcloud endpoints answer the local machine only".into()));
    }
    if headers.contains_key(http::header::ORIGIN) {
        return Err(error(StatusCode::FORBIDDEN, "forbidden", "the /_localcloud endpoints do not answer web pages (Origin header)".into()));
    }
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !is_loopback_host(host) {
        return Err(error(StatusCode::FORBIDDEN, "forbidden", format!("Host '{host}' is not a loopback name")));
    }
    if *method != Method::GET && *method != Method::HEAD && *method != Method::DELETE {
        let json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
        if !json {
            return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "admin writes are application/json".into()));
        }
    }
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !cloud.admin_token_ok(bearer) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this localcloud requires its admin token (Authorization: Bearer …)".into(),
        ));
    }
    Ok(())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The body as `T`, or the 400 answer that says why not.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, HttpResponse> {
    serde_json::from_slice(body).map_err(|e| invalid_json(format!("the request body is not what this endpoint takes: {e}")))
}

fn invalid_json(message: String) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, "invalid_json", message)
}

fn parse_fault(body: &[u8]) -> Result<FaultSpec, HttpResponse> {
    let value: Value = parse(body)?;
    match value.as_object().and_then(|o| o.keys().find(|k| !FaultSpec::FIELDS.contains(&k.as_str()))) {
        Some(unknown) => Err(invalid_json(format!("unknown field `{unknown}`; a fault takes {:?}", FaultSpec::FIELDS))),
        None => parse(body),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
    #[serde(default)]
    account_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleCredentialsRequest {
    role_arn: String,
    #[serde(default)]
    session_name: Option<String>,
    #[serde(default)]
    duration_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    #[serde(default)]
    offset_seconds: Option<i64>,
    #[serde(default)]
    advance_seconds: Option<i64>,
}

pub async fn handle(cloud: &Cloud, method: &Method, path: &str, query: &str, body: &[u8]) -> HttpResponse {
    let route = path.trim_start_matches("/_localcloud").trim_end_matches('/');
    match (method, route) {
        (&Method::GET, "/health") => json_response(StatusCode::OK, &json!({ "status": "ok" })),
        (&Method::POST, "/accounts") => match parse::<NewAccount>(body) {
            Err(refused) => refused,
            Ok(req) => match cloud.create_account(&req.name, req.account_id.as_deref()) {
                Ok(c) => json_response(
                    StatusCode::CREATED,
                    &json!({ "account_id": c.account_id, "name": c.name, "access_key_id": c.access_key_id, "secret_access_key": *c.secret_access_key }),
                ),
                Err(e) => admin_error(e),
            },
        },
        (&Method::GET, "/accounts") => {
            let guard = cloud.read();
            let list: Vec<Value> = guard
                .state
                .accounts
                .values()
                .map(|a| json!({ "account_id": a.id, "name": a.name, "access_key_id": a.access_key_id }))
                .collect();
            json_response(StatusCode::OK, &Value::Array(list))
        }
        (&Method::POST, "/role-credentials") => match parse::<RoleCredentialsRequest>(body) {
            Err(refused) => refused,
            Ok(req) => role_credentials(cloud, req),
        },
        (&Method::GET, "/faults") => json_response(StatusCode::OK, &serde_json::to_value(cloud.faults.list()).unwrap_or_default()),
        (&Method::POST, "/faults") => match parse_fault(body) {
            Err(refused) => refused,
            Ok(spec) => match cloud.faults.add(spec) {
                Ok(rule) => json_response(StatusCode::CREATED, &serde_json::to_value(rule).unwrap_or_default()),
                Err(e) => error(StatusCode::BAD_REQUEST, "invalid_fault", e.0),
            },
        },
        (&Method::DELETE, "/faults") => json_response(StatusCode::OK, &json!({ "removed": cloud.faults.clear(None) })),
        (&Method::DELETE, r) if r.starts_with("/faults/") => {
            let removed = cloud.faults.clear(Some(&r["/faults/".len()..]));
            if removed == 0 {
                error(StatusCode::NOT_FOUND, "not_found", "no fault rule with that id")
            } else {
                json_response(StatusCode::OK, &json!({ "removed": removed }))
            }
        }
        (&Method::POST, r) if r.starts_with("/accounts/") && r.ends_with("/fixture") => {
            let account = &r["/accounts/".len()..r.len() - "/fixture".len()];
            match parse::<crate::fixture::Fixture>(body) {
                Err(refused) => refused,
                Ok(fixture) => {
                    cloud.add_fixture(account, fixture).map_or_else(admin_error, |made| json_response(StatusCode::CREATED, &made))
                }
            }
        }
        (&Method::GET, "/clock") => clock(cloud),
        (&Method::POST, "/clock") => match parse::<ClockRequest>(body) {
            Err(refused) => refused,
            Ok(ClockRequest { offset_seconds: Some(o), advance_seconds: None }) => {
                cloud.set_clock_offset(o).map_or_else(admin_error, |()| clock(cloud))
            }
            Ok(ClockRequest { offset_seconds: None, advance_seconds: Some(a) }) => match cloud.clock.offset().checked_add(a) {
                Some(offset) => cloud.set_clock_offset(offset).map_or_else(admin_error, |()| clock(cloud)),
                None => error(StatusCode::BAD_REQUEST, "invalid_request", "advance_seconds is out of range"),
            },
            Ok(_) => error(StatusCode::BAD_REQUEST, "invalid_request", "give exactly one of offset_seconds and advance_seconds"),
        },
        (&Method::GET, "/trail") => trail(cloud, query),
        (_, "/health" | "/accounts" | "/role-credentials" | "/faults" | "/clock" | "/trail") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{method} is not allowed on {path}"))
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", format!("no admin endpoint at {path}")),
    }
}

fn clock(cloud: &Cloud) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({ "now": cloud.clock.now().format(&Rfc3339).unwrap_or_default(), "offset_seconds": cloud.clock.offset() }),
    )
}

/// Credentials for a role with no trust check, as EC2 or ECS hand a workload its role: how a
/// provider's broker gets its own identity (roots may not call AssumeRole on AWS).
fn role_credentials(cloud: &Cloud, req: RoleCredentialsRequest) -> HttpResponse {
    let duration = req.duration_seconds.unwrap_or(3600);
    if !(900..=43_200).contains(&duration) {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "duration_seconds is 900 to 43200");
    }
    let guard = cloud.read();
    let Some(role) = crate::sts::parse_role_arn(&req.role_arn)
        .and_then(|(account, name)| guard.state.role(&account, &name))
        .filter(|r| r.arn() == req.role_arn)
    else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no role {}", req.role_arn));
    };
    // As on AWS, an instance profile's credentials come only for a role that trusts EC2.
    let trusts_ec2 = crate::policy::Policy::parse(&role.trust_policy, crate::policy::PolicyKind::Trust, |_| true)
        .is_ok_and(|p| p.service_may_assume("ec2.amazonaws.com"));
    if !trusts_ec2 {
        return error(
            StatusCode::FORBIDDEN,
            "access_denied",
            format!("the trust policy of {} does not let ec2.amazonaws.com assume it", req.role_arn),
        );
    }
    let expires = cloud.clock.now().unix_timestamp() + duration;
    let session_name = req.session_name.unwrap_or_else(|| "localcloud-instance".into());
    let claims = SessionClaims::for_role(role, &session_name, expires, false);
    match session::issue(&guard.state.session_secret, claims) {
        Some(s) => json_response(
            StatusCode::OK,
            &json!({
                "access_key_id": s.access_key_id,
                "secret_access_key": *s.secret_access_key,
                "session_token": s.session_token,
                "expiration": crate::iam::iso_time(expires),
            }),
        ),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "could not issue a session"),
    }
}

fn trail(cloud: &Cloud, query: &str) -> HttpResponse {
    let params = query_pairs(query);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let since = match get("since").map(str::parse::<u64>).transpose() {
        Ok(s) => s.unwrap_or(0),
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_request", "since is a sequence number"),
    };
    let limit = match get("limit").map(str::parse::<usize>).transpose() {
        Ok(l) => l.unwrap_or(usize::MAX),
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_request", "limit is a number"),
    };
    let (event, account) = (get("event"), get("account"));
    let events = cloud.trail.query(
        since,
        |e| {
            event.is_none_or(|n| e.event_name == n)
                && account.is_none_or(|a| e.recipient_account_id == a || e.user_identity.as_ref().is_some_and(|u| u.account_id == a))
        },
        limit,
    );
    let mut body = Vec::new();
    for e in events {
        if serde_json::to_writer(&mut body, e.as_ref()).is_ok() {
            body.push(b'\n');
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn only_the_local_machine_reaches_the_admin_endpoints() {
        let cloud = Cloud::open(None).expect("cloud");
        let local: std::net::SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let ok = headers(&[("host", "127.0.0.1:4566"), ("content-type", "application/json")]);
        assert!(guard(&cloud, local, &Method::POST, &ok).is_ok());
        assert!(guard(&cloud, "[::1]:5000".parse().expect("addr"), &Method::GET, &headers(&[("host", "[::1]:4566")])).is_ok());
        assert!(guard(&cloud, local, &Method::GET, &headers(&[("host", "localhost")])).is_ok());
        // A peer on the network, handed to the guard as the server would.
        for peer in ["10.0.0.5:5000", "192.168.1.20:5000", "[2001:db8::1]:5000"] {
            let refused = guard(&cloud, peer.parse().expect("addr"), &Method::POST, &ok).expect_err(peer);
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
        }
        // A web page: its Origin, a rebound host name, a form post.
        let page = headers(&[("host", "127.0.0.1:4566"), ("origin", "https://evil.example"), ("content-type", "application/json")]);
        assert_eq!(guard(&cloud, local, &Method::POST, &page).expect_err("origin").status, StatusCode::FORBIDDEN);
        let rebound = headers(&[("host", "evil.example:4566"), ("content-type", "application/json")]);
        assert_eq!(guard(&cloud, local, &Method::POST, &rebound).expect_err("host").status, StatusCode::FORBIDDEN);
        let form = headers(&[("host", "127.0.0.1:4566"), ("content-type", "text/plain")]);
        assert_eq!(guard(&cloud, local, &Method::POST, &form).expect_err("text/plain").status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // With an admin token, it is required.
        cloud.set_admin_token(Some(zeroize::Zeroizing::new("s3cret-admin".into())));
        assert_eq!(guard(&cloud, local, &Method::POST, &ok).expect_err("no token").status, StatusCode::UNAUTHORIZED);
        let mut with = ok.clone();
        with.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert_eq!(guard(&cloud, local, &Method::POST, &with).expect_err("wrong").status, StatusCode::UNAUTHORIZED);
        with.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret-admin"));
        assert!(guard(&cloud, local, &Method::POST, &with).is_ok());
    }
}
