//! Product services signing in with their own AWS IAM role (`POST /v1/auth/aws`), as Vault's AWS
//! auth method lets them: the service signs an `sts:GetCallerIdentity` request, byok checks it
//! is that request and was signed for this broker, STS checks the signature and names the
//! caller, and an assumed role configured by the operator (`byok identity add`) gets a
//! short-lived service token reaching its tenants only.
//!
//! Refused, each with its reason: no `X-Byok-Server-Id` header among the signed headers, or one
//! naming another broker (a request signed for another deployment cannot be replayed here); any
//! other action than `GetCallerIdentity`; a request dated more than 15 minutes from now; a
//! signature any node already took (a replay, recorded in the store); anything STS refuses; a caller that is not an
//! assumed role; a role no identity names.

use byok_kms::{AccessError, SignedCallerIdentity};
use byok_store::{ServiceReach, TokenScope};
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;

use crate::broker::Broker;
pub use crate::config::AwsSignIn;
use crate::error::BrokerError;
use crate::tokens::IssuedToken;

/// The header that names the broker a sign-in was signed for.
pub const SERVER_ID_HEADER: &str = "x-byok-server-id";

/// How far a signed request's date may be from now.
const SKEW: time::Duration = time::Duration::minutes(15);

/// How long a taken signature is remembered: past its date's window on either side, so that no
/// request the date check lets through is remembered for less than its life.
const REPLAY_WINDOW: time::Duration = time::Duration::minutes(35);

/// The IAM role an assumed-role ARN is a session of: `arn:aws:sts::A:assumed-role/R/S` →
/// `arn:aws:iam::A:role/R`. Users and roots are not product services: `None`.
pub fn role_of(caller_arn: &str) -> Option<String> {
    let rest = caller_arn.strip_prefix("arn:aws:sts::")?;
    let (account, rest) = rest.split_once(':')?;
    let mut parts = rest.strip_prefix("assumed-role/")?.split('/');
    let role = parts.next().filter(|r| !r.is_empty())?;
    parts.next().filter(|s| !s.is_empty())?;
    Some(format!("arn:aws:iam::{account}:role/{role}"))
}

/// A role's ARN without its path: what its sessions' ARNs name (`assumed-role/NAME/…`).
fn without_path(role: &byok_domain::RoleArn) -> String {
    format!("arn:aws:iam::{}:role/{}", role.account(), role.name())
}

/// The form body as (name, value) pairs.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn refused(why: impl Into<String>) -> BrokerError {
    BrokerError::SignInRefused(why.into())
}

/// The request's own checks, before STS is asked: the action, the server id among the signed
/// headers, the date. Returns the signature (the replay key).
pub fn check_request(request: &SignedCallerIdentity, server_id: &str, now: OffsetDateTime) -> Result<String, BrokerError> {
    let mut fields = form(&request.body);
    fields.sort();
    if fields != [("Action".to_string(), "GetCallerIdentity".to_string()), ("Version".to_string(), "2011-06-15".to_string())] {
        return Err(refused("the request must be exactly sts:GetCallerIdentity (Action=GetCallerIdentity&Version=2011-06-15)"));
    }
    let authorization = request.header("authorization").ok_or_else(|| refused("the request is not signed (no Authorization header)"))?;
    let signed_headers = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .ok_or_else(|| refused("the Authorization header is not SigV4"))?;
    if !signed_headers.split(';').any(|h| h.trim().eq_ignore_ascii_case(SERVER_ID_HEADER)) {
        return Err(refused(format!("{SERVER_ID_HEADER} must be one of the signed headers")));
    }
    match request.header(SERVER_ID_HEADER) {
        Some(id) if id == server_id => {}
        Some(other) => return Err(refused(format!("the request was signed for broker {other}, not this one"))),
        None => return Err(refused(format!("no {SERVER_ID_HEADER} header"))),
    }
    let date = request.header("x-amz-date").ok_or_else(|| refused("no X-Amz-Date header"))?;
    let parsed = time::PrimitiveDateTime::parse(date, &time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .map(|d| d.assume_utc())
        .or_else(|_| OffsetDateTime::parse(date, &Iso8601::DEFAULT))
        .map_err(|_| refused("X-Amz-Date is not a date"))?;
    if (now - parsed).abs() > SKEW {
        return Err(refused("the signed request is more than 15 minutes from now: sign a fresh one"));
    }
    authorization
        .split("Signature=")
        .nth(1)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refused("the Authorization header has no signature"))
}

impl Broker {
    /// With sign-in with AWS enabled.
    pub fn with_aws_sign_in(mut self, sign_in: AwsSignIn) -> Self {
        self.aws_sign_in = Some(sign_in);
        self
    }

    /// Whether this broker takes sign-ins with AWS, and the server id they must name.
    pub fn aws_sign_in_server_id(&self) -> Option<&str> {
        self.aws_sign_in.as_ref().map(|s| s.server_id.as_str())
    }

    /// Checks a signed `GetCallerIdentity`, asks STS who signed it, and issues the configured
    /// identity's short-lived service token.
    pub async fn sign_in_with_aws(&self, request: &SignedCallerIdentity) -> Result<(IssuedToken, String), BrokerError> {
        let sign_in = self.aws_sign_in.as_ref().ok_or(BrokerError::SignInDisabled)?;
        let signature = check_request(request, &sign_in.server_id, self.clock.now())?;
        // Recorded in the store, so that a replay to another node is refused too.
        let now = self.clock.now();
        if !self.store.first_use_of_signature(&signature, now, now - REPLAY_WINDOW).await? {
            return Err(refused("this signed request was already used: sign a fresh one"));
        }
        let caller = match sign_in.verifier.caller(request).await {
            Ok(caller) => caller,
            Err(e @ AccessError::Transient { .. }) => return Err(BrokerError::KeyServiceUnavailable(e)),
            Err(e) => return Err(refused(format!("STS refused the signed request: {e}"))),
        };
        let role = role_of(&caller.arn).ok_or_else(|| refused(format!("{} is not an assumed IAM role", caller.arn)))?;
        let reach = self.store.aws_identity(&role).await?.ok_or_else(|| refused(format!("no identity is configured for {role}")))?;
        let issued = self.issue_token(TokenScope::Service(reach), Some(sign_in.token_ttl), false).await?;
        self.audit(
            None,
            crate::events::AuditEvent::Token(crate::events::TokenEvent::AwsSignIn),
            serde_json::json!({ "role": role, "caller": caller.arn, "token": issued.record.id }),
        )
        .await;
        Ok((issued, role))
    }

    /// Configures (or replaces) the tenants an IAM role's sign-ins reach.
    /// Returns the ARN it is kept under: without a path, as the role's sessions name it.
    pub async fn add_aws_identity(&self, role_arn: &byok_domain::RoleArn, reach: ServiceReach) -> Result<String, BrokerError> {
        if let ServiceReach::Tenants(ids) = &reach {
            if ids.is_empty() {
                return Err(BrokerError::Invalid("an identity reaches at least one tenant (or every tenant, asked for)".into()));
            }
            for id in ids {
                self.tenant(id).await?;
            }
        }
        self.store.put_aws_identity(&without_path(role_arn), &reach, self.clock.now()).await?;
        Ok(without_path(role_arn))
    }

    /// Every configured IAM identity.
    pub async fn aws_identities(&self) -> Result<Vec<(String, ServiceReach)>, BrokerError> {
        Ok(self.store.aws_identities().await?)
    }

    /// Removes an IAM identity; its tokens run out on their own (15 minutes by default).
    pub async fn remove_aws_identity(&self, role_arn: &str) -> Result<(), BrokerError> {
        let key = role_arn.parse::<byok_domain::RoleArn>().map(|r| without_path(&r)).unwrap_or_else(|_| role_arn.to_string());
        if self.store.remove_aws_identity(&key).await? { Ok(()) } else { Err(BrokerError::UnknownIdentity(role_arn.to_string())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &str, headers: &[(&str, &str)]) -> SignedCallerIdentity {
        SignedCallerIdentity {
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AK/20261207/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-byok-server-id, Signature=abc123";

    #[test]
    fn only_a_fresh_get_caller_identity_signed_for_this_broker() {
        let now = time::macros::datetime!(2026-12-07 10:00 UTC);
        let good = [("authorization", AUTH), ("x-amz-date", "20261207T100500Z"), ("x-byok-server-id", "byok.example")];
        assert_eq!(check_request(&signed(BODY, &good), "byok.example", now).expect("valid"), "abc123");
        let cases: Vec<(&str, SignedCallerIdentity, &str)> = vec![
            ("another action", signed("Action=GetSessionToken&Version=2011-06-15", &good), "GetCallerIdentity"),
            ("an extra field", signed(&format!("{BODY}&Extra=1"), &good), "GetCallerIdentity"),
            ("another broker", signed(BODY, &[good[0], good[1], ("x-byok-server-id", "other.example")]), "not this one"),
            ("no server id", signed(BODY, &good[..2]), "x-byok-server-id"),
            ("stale", signed(BODY, &[good[0], ("x-amz-date", "20261207T093000Z"), good[2]]), "15 minutes"),
            ("unsigned", signed(BODY, &good[1..]), "not signed"),
            (
                "server id not signed",
                signed(
                    BODY,
                    &[
                        (
                            "authorization",
                            "AWS4-HMAC-SHA256 Credential=AK/20261207/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=x",
                        ),
                        good[1],
                        good[2],
                    ],
                ),
                "signed headers",
            ),
        ];
        for (case, request, why) in cases {
            let err = check_request(&request, "byok.example", now).expect_err(case).to_string();
            assert!(err.contains(why), "{case}: {err}");
        }
    }

    #[test]
    fn an_assumed_role_session_is_its_role() {
        assert_eq!(
            role_of("arn:aws:sts::111122223333:assumed-role/billing/i-0abc").as_deref(),
            Some("arn:aws:iam::111122223333:role/billing")
        );
        assert_eq!(role_of("arn:aws:iam::111122223333:user/alice"), None);
        assert_eq!(role_of("arn:aws:iam::111122223333:root"), None);
        assert_eq!(role_of("arn:aws:sts::111122223333:assumed-role/billing"), None);
        // A role configured with a path is kept as its sessions name it.
        let with_path: byok_domain::RoleArn = "arn:aws:iam::111122223333:role/services/billing".parse().expect("arn");
        assert_eq!(without_path(&with_path), "arn:aws:iam::111122223333:role/billing");
    }
}
