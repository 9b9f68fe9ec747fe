//! Who is calling: SigV4 verification against root keys and sealed role sessions, with each
//! service's own error codes for every way it can fail.

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::cloud::{Call, Cloud};
use crate::error::AwsError;
use crate::policy::Caller;
use crate::protocol::Service;
use crate::session;
use crate::sigv4::{self, RequestParts, SigV4Error};

/// Authenticates a request for `service`. The request id is the caller's to assign.
pub fn authenticate(cloud: &Cloud, service: Service, parts: &RequestParts<'_>, request_id: &str) -> Result<Call, AwsError> {
    // Resolved inside the secret lookup so that the state is read once.
    let mut resolved: Option<Resolved> = None;
    let scope = sigv4::verify(parts, OffsetDateTime::now_utc(), true, |access_key_id| {
        let token = security_token(parts);
        let (secret, r) = resolve(cloud, access_key_id, token.as_deref())?;
        resolved = Some(r);
        Some(secret)
    })
    .map_err(|e| sigv4_error(service, e))?;
    let resolved = resolved.ok_or_else(|| sigv4_error(service, SigV4Error::UnknownAccessKey(scope.access_key_id.clone())))?;
    if let Some(expires) = resolved.expires {
        if cloud.clock.now().unix_timestamp() >= expires {
            return Err(expired_token(service));
        }
    }
    if Service::from_scope(&scope.service) != Some(service) {
        return Err(AwsError::new(
            if service == Service::Kms { "InvalidSignatureException" } else { "SignatureDoesNotMatch" },
            if service == Service::Kms { 400 } else { 403 },
            format!("Credential should be scoped to correct service: '{}'.", service.name()),
        ));
    }
    let identity = crate::iam::identity_of(&cloud.read().state, &resolved.caller);
    Ok(Call {
        service,
        region: scope.region,
        caller: resolved.caller,
        access_key_id: scope.access_key_id,
        request_id: request_id.to_string(),
        identity,
    })
}

struct Resolved {
    caller: Caller,
    expires: Option<i64>,
}

fn security_token(parts: &RequestParts<'_>) -> Option<String> {
    parts
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"))
        .map(|(_, v)| v.trim().to_string())
        .or_else(|| sigv4::query_pairs(parts.query).into_iter().find(|(k, _)| k == "X-Amz-Security-Token").map(|(_, v)| v))
}

/// The secret for an access key id, and who it belongs to.
fn resolve(cloud: &Cloud, access_key_id: &str, token: Option<&str>) -> Option<(Zeroizing<String>, Resolved)> {
    let guard = cloud.read();
    let state = &guard.state;
    if let Some(account) = state.account_for_access_key(access_key_id) {
        // Root keys carry no session token; one sent with them is not theirs.
        if token.is_some() {
            return None;
        }
        return Some((account.secret_access_key.clone(), Resolved { caller: Caller::Root { account: account.id.clone() }, expires: None }));
    }
    let claims = session::open(&state.session_secret, token?)?;
    if claims.access_key_id != access_key_id {
        return None;
    }
    let secret = session::derive_secret(&state.session_secret, access_key_id);
    let caller = Caller::AssumedRole {
        account: claims.account,
        role_name: claims.role_name,
        role_path: claims.role_path,
        role_id: claims.role_id,
        session_name: claims.session_name,
    };
    Some((secret, Resolved { caller, expires: Some(claims.expires) }))
}

fn expired_token(service: Service) -> AwsError {
    let message = "The security token included in the request is expired";
    match service {
        Service::Kms => AwsError::new("ExpiredTokenException", 400, message),
        Service::Sts => AwsError::new("ExpiredTokenException", 400, message),
        Service::Iam => AwsError::new("ExpiredToken", 403, message),
    }
}

/// SigV4 failures in the service's vocabulary (KMS: `…Exception`, 400; Query: bare codes, 403).
pub fn sigv4_error(service: Service, error: SigV4Error) -> AwsError {
    let message = error.to_string();
    let kms = service == Service::Kms;
    match error {
        SigV4Error::Missing if kms => AwsError::new("MissingAuthenticationTokenException", 400, message),
        SigV4Error::Missing => AwsError::new("MissingAuthenticationToken", 403, message),
        SigV4Error::Malformed(_) if kms => AwsError::new("IncompleteSignatureException", 400, message),
        SigV4Error::Malformed(_) => AwsError::new("IncompleteSignature", 400, message),
        SigV4Error::UnknownAccessKey(_) if kms => AwsError::new("UnrecognizedClientException", 400, message),
        SigV4Error::UnknownAccessKey(_) => AwsError::new("InvalidClientTokenId", 403, message),
        SigV4Error::SignatureMismatch | SigV4Error::Expired { .. } | SigV4Error::NotYetValid { .. } if kms => {
            AwsError::new("InvalidSignatureException", 400, message)
        }
        SigV4Error::SignatureMismatch | SigV4Error::Expired { .. } | SigV4Error::NotYetValid { .. } => {
            AwsError::new("SignatureDoesNotMatch", 403, message)
        }
    }
}
