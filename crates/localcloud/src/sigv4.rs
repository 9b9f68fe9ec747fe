//! AWS Signature Version 4 verification, header and query (presigned) forms.
//!
//! Written here rather than taken from a crate: `aws-sigv4` (smithy-rs) only *signs*, and the
//! server-side verifiers on crates.io are unmaintained or pull in a whole web framework. The
//! canonicalisation below follows the SigV4 specification and is checked against the published
//! AWS signing test suite (`shared/vectors/sigv4`, see `tests/sigv4_vectors.rs`).
//!
//! Everything here is pure: the caller supplies the request parts, a way to look up a secret
//! for an access key id, and the current time. Deciding *which* error code a failure becomes is
//! the caller's business (it differs between the JSON and the Query services).

use aws_lc_rs::{digest, hmac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use subtle::ConstantTimeEq;
use time::{OffsetDateTime, PrimitiveDateTime, format_description::FormatItem, macros::format_description};

/// Characters SigV4 leaves alone: RFC 3986 unreserved. Everything else is `%XX`-encoded.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// The most a request's signing time may differ from the server's clock (AWS uses 5 minutes).
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// SHA-256 of the empty string, the payload hash of a body-less request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The parts of an HTTP request that SigV4 covers, as they came off the wire.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded as the client sent it).
    pub path: &'a str,
    /// The raw query string without the `?`, empty if none.
    pub query: &'a str,
    /// Header names and values in arrival order; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// What a verified request was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedScope {
    pub access_key_id: String,
    /// The date part of the credential scope (`YYYYMMDD`).
    pub date: String,
    pub region: String,
    pub service: String,
    /// The request's signing time.
    pub time: OffsetDateTime,
    /// `X-Amz-Security-Token`, when the request carried one (it is always a signed part).
    pub security_token: Option<String>,
}

/// Why a request was refused. The caller turns these into the service's own error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Request is missing Authentication Token")]
    Missing,
    #[error("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters: {0}")]
    Malformed(String),
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired { signed: String, earliest: String, now: String },
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 5 min.)")]
    NotYetValid { signed: String, latest: String, now: String },
}

/// Where the signature sits, and everything parsed from it.
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    /// `X-Amz-Expires` of a presigned request.
    expires: Option<i64>,
    presigned: bool,
}

/// Reads the credential scope (service and region) without verifying anything, so that the
/// server can route the request and pick the service's error vocabulary before verifying it.
pub fn peek_scope(parts: &RequestParts<'_>) -> Option<(String, String)> {
    let auth = parse_authorization(parts).ok()?;
    Some((auth.service, auth.region))
}

/// Verifies a request. `secret_for` returns the secret access key for an access key id, or
/// `None` if the key is unknown. `normalize_path` is true for every service but S3.
pub fn verify(
    parts: &RequestParts<'_>,
    now: OffsetDateTime,
    normalize_path: bool,
    secret_for: impl FnOnce(&str) -> Option<zeroize::Zeroizing<String>>,
) -> Result<SignedScope, SigV4Error> {
    let auth = parse_authorization(parts)?;
    let signed_at = PrimitiveDateTime::parse(&auth.amz_date, AMZ_DATE)
        .map_err(|_| SigV4Error::Malformed(format!("bad X-Amz-Date '{}'", auth.amz_date)))?
        .assume_utc();
    if !auth.amz_date.starts_with(&auth.date) {
        return Err(SigV4Error::Malformed("credential date does not match X-Amz-Date".into()));
    }
    check_time(signed_at, now, auth.expires)?;

    let secret = secret_for(&auth.access_key_id).ok_or_else(|| SigV4Error::UnknownAccessKey(auth.access_key_id.clone()))?;
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let matches = |token_signed: bool| {
        let canonical = canonical_request(parts, &auth, normalize_path, token_signed);
        let string_to_sign = format!("AWS4-HMAC-SHA256\n{}\n{}\n{}", auth.amz_date, scope, hex_sha256(canonical.as_bytes()));
        let expected = signature(&secret, &auth.date, &auth.region, &auth.service, &string_to_sign);
        bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes()))
    };
    // Some signers add a presigned URL's session token after signing (the suite's
    // `omit_session_token` cases); the token is then not part of the canonical query.
    let token_in_query = auth.presigned && query_pairs(parts.query).iter().any(|(k, _)| k == "X-Amz-Security-Token");
    if !(matches(true) || (token_in_query && matches(false))) {
        return Err(SigV4Error::SignatureMismatch);
    }
    let security_token = if auth.presigned {
        query_pairs(parts.query).into_iter().find(|(k, _)| k == "X-Amz-Security-Token").map(|(_, v)| v)
    } else {
        header_value(&parts.headers, "x-amz-security-token")
    };
    Ok(SignedScope {
        access_key_id: auth.access_key_id,
        date: auth.date,
        region: auth.region,
        service: auth.service,
        time: signed_at,
        security_token,
    })
}

fn check_time(signed_at: OffsetDateTime, now: OffsetDateTime, expires: Option<i64>) -> Result<(), SigV4Error> {
    let fmt = |t: OffsetDateTime| t.format(AMZ_DATE).unwrap_or_default();
    if let Some(expires) = expires {
        // A presigned URL is valid from its signing time for X-Amz-Expires seconds. Checked
        // arithmetic: a URL dated 9999 must be refused, not overflow.
        let valid_until = signed_at.checked_add(time::Duration::seconds(expires));
        if valid_until.is_none_or(|until| now > until) && signed_at <= now {
            return Err(SigV4Error::Expired {
                signed: fmt(signed_at),
                earliest: now.checked_sub(time::Duration::seconds(expires)).map(fmt).unwrap_or_default(),
                now: fmt(now),
            });
        }
        if signed_at > now + MAX_CLOCK_SKEW {
            return Err(SigV4Error::NotYetValid { signed: fmt(signed_at), latest: fmt(now + MAX_CLOCK_SKEW), now: fmt(now) });
        }
        return Ok(());
    }
    if signed_at < now - MAX_CLOCK_SKEW {
        return Err(SigV4Error::Expired { signed: fmt(signed_at), earliest: fmt(now - MAX_CLOCK_SKEW), now: fmt(now) });
    }
    if signed_at > now + MAX_CLOCK_SKEW {
        return Err(SigV4Error::NotYetValid { signed: fmt(signed_at), latest: fmt(now + MAX_CLOCK_SKEW), now: fmt(now) });
    }
    Ok(())
}

fn parse_authorization(parts: &RequestParts<'_>) -> Result<Authorization, SigV4Error> {
    if let Some(header) = header_value(&parts.headers, "authorization") {
        let rest =
            header.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| SigV4Error::Malformed("only AWS4-HMAC-SHA256 is supported".into()))?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for item in rest.split(',') {
            let item = item.trim();
            if let Some(v) = item.strip_prefix("Credential=") {
                credential = Some(v.to_string());
            } else if let Some(v) = item.strip_prefix("SignedHeaders=") {
                signed_headers = Some(v.to_string());
            } else if let Some(v) = item.strip_prefix("Signature=") {
                signature = Some(v.to_string());
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
            return Err(SigV4Error::Malformed(header));
        };
        let amz_date = header_value(&parts.headers, "x-amz-date")
            .or_else(|| header_value(&parts.headers, "date"))
            .ok_or_else(|| SigV4Error::Malformed("missing X-Amz-Date".into()))?;
        return build_auth(&credential, &signed_headers, signature, amz_date, None, false);
    }
    let query = query_pairs(parts.query);
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match get("X-Amz-Algorithm") {
        None => Err(SigV4Error::Missing),
        Some(alg) if alg != "AWS4-HMAC-SHA256" => Err(SigV4Error::Malformed("only AWS4-HMAC-SHA256 is supported".into())),
        Some(_) => {
            let need = |name: &str| get(name).ok_or_else(|| SigV4Error::Malformed(format!("missing {name}")));
            let expires = need("X-Amz-Expires")?
                .parse::<i64>()
                .ok()
                .filter(|e| (1..=604_800).contains(e))
                .ok_or_else(|| SigV4Error::Malformed("X-Amz-Expires must be 1 to 604800 seconds".into()))?;
            build_auth(
                &need("X-Amz-Credential")?,
                &need("X-Amz-SignedHeaders")?,
                need("X-Amz-Signature")?,
                need("X-Amz-Date")?,
                Some(expires),
                true,
            )
        }
    }
}

fn build_auth(
    credential: &str,
    signed_headers: &str,
    signature: String,
    amz_date: String,
    expires: Option<i64>,
    presigned: bool,
) -> Result<Authorization, SigV4Error> {
    let fields: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = fields.as_slice() else {
        return Err(SigV4Error::Malformed(format!("bad credential scope '{credential}'")));
    };
    // As AWS does: the host, and (for a signed header request) the date, must be signed.
    let names: Vec<String> = signed_headers.split(';').map(str::to_ascii_lowercase).collect();
    if !names.iter().any(|n| n == "host") {
        return Err(SigV4Error::Malformed("the signed headers must include host".into()));
    }
    if !presigned && !names.iter().any(|n| n == "x-amz-date" || n == "date") {
        return Err(SigV4Error::Malformed("the signed headers must include x-amz-date".into()));
    }
    Ok(Authorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers.split(';').map(str::to_ascii_lowercase).collect(),
        signature,
        amz_date,
        expires,
        presigned,
    })
}

/// Returns the header's values joined by `,` the way the canonical request joins repeats.
fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<String> =
        headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| canonical_header_value(v)).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Trims a header value and folds each run of white space (including line folds) to one space.
fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_request(parts: &RequestParts<'_>, auth: &Authorization, normalize_path: bool, token_signed: bool) -> String {
    let mut out = String::with_capacity(256 + parts.query.len());
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(&canonical_uri(parts.path, normalize_path));
    out.push('\n');
    out.push_str(&canonical_query(parts.query, auth.presigned, token_signed));
    out.push('\n');
    for name in &auth.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(&parts.headers, name).unwrap_or_default());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&auth.signed_headers.join(";"));
    out.push('\n');
    if parts.body.is_empty() {
        out.push_str(EMPTY_SHA256);
    } else {
        out.push_str(&hex_sha256(parts.body));
    }
    out
}

/// The path, dot segments and repeated slashes removed when normalising, then every byte
/// outside the unreserved set and `/` percent-encoded (so an already-encoded `%3D` becomes
/// `%253D`: non-S3 services encode twice).
fn canonical_uri(path: &str, normalize: bool) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let path = if normalize { normalize_path(path) } else { path.to_string() };
    path.split('/').map(|segment| utf8_percent_encode(segment, SIGV4_ENCODE).to_string()).collect::<Vec<_>>().join("/")
}

fn normalize_path(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = format!("/{}", stack.join("/"));
    if trailing && !stack.is_empty() {
        out.push('/');
    }
    out
}

/// Decoded `(name, value)` pairs of a raw query string, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode_str(k).decode_utf8_lossy().into_owned(), percent_decode_str(v).decode_utf8_lossy().into_owned())
        })
        .collect()
}

fn canonical_query(query: &str, presigned: bool, token_signed: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| !(presigned && (k == "X-Amz-Signature" || (!token_signed && k == "X-Amz-Security-Token"))))
        .map(|(k, v)| (utf8_percent_encode(&k, SIGV4_ENCODE).to_string(), utf8_percent_encode(&v, SIGV4_ENCODE).to_string()))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// The hex signature of `string_to_sign` under the key derived from `secret` for the scope.
pub fn signature(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    let k_secret = zeroize::Zeroizing::new(format!("AWS4{secret}"));
    let k_date = hmac_sha256(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(k_date.as_ref(), region.as_bytes());
    let k_service = hmac_sha256(k_region.as_ref(), service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"aws4_request");
    hex::encode(hmac_sha256(k_signing.as_ref(), string_to_sign.as_bytes()))
}

/// Credentials and scope to sign with, the way an AWS SDK would (header form). Used by
/// localcloud's tests to send requests no SDK would (skewed, tampered, unsigned parts).
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Signer<'_> {
    /// The headers to send (host, date, token, `extra_headers`, authorization).
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        path: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
        at: OffsetDateTime,
    ) -> Vec<(String, String)> {
        let Signer { access_key_id, secret, session_token, region, service } = *self;
        let amz_date = at.format(AMZ_DATE).unwrap_or_default();
        let date = amz_date[..8].to_string();
        let mut headers: Vec<(String, String)> = vec![("host".into(), host.into()), ("x-amz-date".into(), amz_date.clone())];
        if let Some(token) = session_token {
            headers.push(("x-amz-security-token".into(), token.into()));
        }
        headers.extend(extra_headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())));
        let mut names: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        names.dedup();
        let auth = Authorization {
            access_key_id: access_key_id.into(),
            date: date.clone(),
            region: region.into(),
            service: service.into(),
            signed_headers: names.clone(),
            signature: String::new(),
            amz_date: amz_date.clone(),
            expires: None,
            presigned: false,
        };
        let parts = RequestParts { method, path, query: "", headers: headers.clone(), body };
        let canonical = canonical_request(&parts, &auth, true, true);
        let scope = format!("{date}/{region}/{service}/aws4_request");
        let sts = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex_sha256(canonical.as_bytes()));
        let sig = signature(secret, &date, region, service, &sts);
        headers.push((
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={sig}", names.join(";")),
        ));
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dot_segments_and_slashes() {
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("/./"), "/");
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("/a/./b/"), "/a/b/");
    }

    #[test]
    fn own_signature_verifies_and_tampering_fails() {
        let at = OffsetDateTime::now_utc();
        let body = br#"{"KeyId":"abc"}"#;
        let signer = Signer { access_key_id: "AKID", secret: "secret", session_token: None, region: "eu-west-1", service: "kms" };
        let headers = signer.sign("POST", "localhost", "/", &[("x-amz-target", "TrentService.Encrypt")], body, at);
        let parts = RequestParts { method: "POST", path: "/", query: "", headers: headers.clone(), body };
        let scope = verify(&parts, at, true, |_| Some(zeroize::Zeroizing::new("secret".into()))).expect("verifies");
        assert_eq!((scope.region.as_str(), scope.service.as_str()), ("eu-west-1", "kms"));
        let tampered = RequestParts { body: br#"{"KeyId":"abd"}"#, ..parts.clone() };
        assert_eq!(verify(&tampered, at, true, |_| Some(zeroize::Zeroizing::new("secret".into()))), Err(SigV4Error::SignatureMismatch));
        let late = at + time::Duration::minutes(6);
        assert!(matches!(verify(&parts, late, true, |_| Some(zeroize::Zeroizing::new("secret".into()))), Err(SigV4Error::Expired { .. })));
        assert!(matches!(verify(&parts, at, true, |_| None), Err(SigV4Error::UnknownAccessKey(_))));
    }
}
