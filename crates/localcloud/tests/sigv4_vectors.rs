//! The AWS SigV4 signing test suite (`shared/vectors/sigv4`): every signed request verifies
//! with its case's credentials and time, and fails after any change to a signed part.

use std::fs;
use std::path::{Path, PathBuf};

use localcloud::sigv4::{RequestParts, SigV4Error, verify};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::support::workspace;

fn vectors_dir() -> PathBuf {
    let dir =
        std::env::var_os("BYOK_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("../shared")).join("vectors/sigv4/v4");
    assert!(dir.is_dir(), "SigV4 vectors not found at {} (set BYOK_SHARED_DIR to the shared/ folder)", dir.display());
    dir
}

/// A request as the suite writes it: request line, headers (with folded continuation lines),
/// a blank line, the body.
struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        let uri = rest.rsplit_once(" HTTP/").map(|(u, _)| u).expect("HTTP version");
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("continuation after a header");
                last.1.push(' ');
                last.1.push_str(line.trim());
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.to_string(), v.to_string()));
            }
        }
        Self { method: method.into(), path: path.into(), query: query.into(), headers, body: body.as_bytes().to_vec() }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts { method: &self.method, path: &self.path, query: &self.query, headers: self.headers.clone(), body: &self.body }
    }
}

struct Case {
    name: String,
    secret: String,
    normalize: bool,
    time: OffsetDateTime,
}

fn cases() -> Vec<(Case, PathBuf)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(vectors_dir()).expect("read vectors") {
        let dir = entry.expect("entry").path();
        let Ok(context) = fs::read_to_string(dir.join("context.json")) else { continue };
        let context: Value = serde_json::from_str(&context).expect("context.json");
        out.push((
            Case {
                name: dir.file_name().expect("name").to_string_lossy().into_owned(),
                secret: context["credentials"]["secret_access_key"].as_str().expect("secret").to_string(),
                normalize: context["normalize"].as_bool().unwrap_or(true),
                time: OffsetDateTime::parse(context["timestamp"].as_str().expect("timestamp"), &Rfc3339).expect("time"),
            },
            dir,
        ));
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

fn check(case: &Case, request: &RawRequest) -> Result<(), SigV4Error> {
    verify(&request.parts(), case.time, case.normalize, |_| Some(Zeroizing::new(case.secret.clone()))).map(|_| ())
}

fn signed_headers(request: &RawRequest) -> Vec<String> {
    let auth = request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.clone());
    match auth {
        Some(auth) => {
            auth.split("SignedHeaders=").nth(1).and_then(|s| s.split(',').next()).unwrap_or("").split(';').map(str::to_string).collect()
        }
        None => request
            .query
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
            .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy().split(';').map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// Every way to change one signed part of the request.
fn tamperings(request: &RawRequest) -> Vec<(String, RawRequest)> {
    let copy = |f: &dyn Fn(&mut RawRequest)| {
        let mut r = RawRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        };
        f(&mut r);
        r
    };
    let mut out = vec![
        ("method".to_string(), copy(&|r| r.method = if r.method == "GET" { "POST".into() } else { "GET".into() })),
        ("path".to_string(), copy(&|r| r.path.push('x'))),
        ("query".to_string(), copy(&|r| r.query = if r.query.is_empty() { "extra=1".into() } else { format!("{}&extra=1", r.query) })),
        ("body".to_string(), copy(&|r| r.body.extend_from_slice(b"x"))),
    ];
    for name in signed_headers(request) {
        if name == "host" || name.starts_with("x-amz-") || name.starts_with("my-") || name.starts_with("content-") {
            out.push((
                format!("header {name}"),
                copy(&|r| {
                    for (k, v) in r.headers.iter_mut() {
                        if k.eq_ignore_ascii_case(&name) {
                            v.push('x');
                        }
                    }
                }),
            ));
        }
    }
    out
}

#[test]
fn every_signed_request_verifies_and_any_change_is_refused() {
    let mut verified = 0;
    for (case, dir) in cases() {
        for form in ["header", "query"] {
            let Ok(text) = fs::read_to_string(dir.join(format!("{form}-signed-request.txt"))) else { continue };
            let request = RawRequest::parse(&text);
            check(&case, &request).unwrap_or_else(|e| panic!("{} ({form}) should verify: {e}", case.name));
            verified += 1;
            for (what, tampered) in tamperings(&request) {
                // A path change that normalisation undoes, or an unsigned body, is not a change.
                if what == "body" && !has_body(&dir) {
                    continue;
                }
                assert!(check(&case, &tampered).is_err(), "{} ({form}): changing the {what} went unnoticed", case.name);
            }
            let late = Case { time: case.time + time::Duration::minutes(if form == "query" { 61 } else { 6 }), ..clone_case(&case) };
            assert!(matches!(check(&late, &request), Err(SigV4Error::Expired { .. })), "{} ({form}) should have expired", case.name);
            let wrong_secret = Case { secret: format!("{}x", case.secret), ..clone_case(&case) };
            assert_eq!(check(&wrong_secret, &request), Err(SigV4Error::SignatureMismatch), "{} ({form})", case.name);
        }
    }
    assert!(verified >= 70, "only {verified} signed requests found in the suite");
}

fn has_body(dir: &Path) -> bool {
    fs::read_to_string(dir.join("request.txt")).map(|t| t.split_once("\n\n").is_some_and(|(_, b)| !b.is_empty())).unwrap_or(false)
}

fn clone_case(c: &Case) -> Case {
    Case { name: c.name.clone(), secret: c.secret.clone(), normalize: c.normalize, time: c.time }
}

#[test]
fn the_session_token_is_read_from_a_signed_request() {
    let (case, dir) = cases().into_iter().find(|(c, _)| c.name == "get-vanilla-with-session-token").expect("case");
    let request = RawRequest::parse(&fs::read_to_string(dir.join("header-signed-request.txt")).expect("file"));
    let scope = verify(&request.parts(), case.time, true, |_| Some(Zeroizing::new(case.secret.clone()))).expect("verifies");
    assert_eq!(scope.security_token.as_deref(), Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"));
    assert_eq!((scope.region.as_str(), scope.service.as_str()), ("us-east-1", "service"));
}
