//! STS (Query protocol): AssumeRole, with the role's trust policy evaluated against the caller,
//! and GetCallerIdentity.

use crate::cloud::{Call, Cloud};
use crate::error::{AwsError, AwsResult};
use crate::iam::{iso_time, principal_exists};
use crate::policy::{Caller, Decision, Policy, PolicyKind, RequestContext};
use crate::protocol::{QueryParams, Service, elem};
use crate::session::{self, SessionClaims};
use crate::state::Role;
use crate::trail::TrailNote;

const SERVICE: Service = Service::Sts;

/// The longest session a role session may start (role chaining), in seconds.
const CHAINED_MAX: i64 = 3600;

pub fn handle(cloud: &Cloud, call: &Call, action: &str, params: &QueryParams, note: &mut TrailNote) -> AwsResult<Option<String>> {
    match action {
        "GetCallerIdentity" => {
            let user_id = match &call.caller {
                Caller::Root { account } => account.clone(),
                Caller::AssumedRole { role_id, session_name, .. } => format!("{role_id}:{session_name}"),
            };
            Ok(Some(format!("{}{}{}", elem("UserId", &user_id), elem("Account", call.caller.account()), elem("Arn", &call.caller.arn()))))
        }
        "AssumeRole" => assume_role(cloud, call, params, note).map(Some),
        other => Err(AwsError::unknown_operation(SERVICE, other)),
    }
}

fn assume_role(cloud: &Cloud, call: &Call, params: &QueryParams, note: &mut TrailNote) -> AwsResult<String> {
    let role_arn = params.require(SERVICE, "RoleArn")?;
    let session_name = params.require(SERVICE, "RoleSessionName")?;
    let external_id = params.get("ExternalId");
    let duration = params.int(SERVICE, "DurationSeconds")?;
    note.resources.push(role_arn.to_string());
    note.request_parameters = Some(serde_json::json!({
        "roleArn": role_arn,
        "roleSessionName": session_name,
        "externalId": external_id,
        "durationSeconds": duration,
    }));
    if session_name.len() < 2
        || session_name.len() > 64
        || !session_name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            ),
        ));
    }
    if let Some(id) = external_id {
        if id.len() < 2 || id.len() > 1224 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c)) {
            return Err(AwsError::validation(
                SERVICE,
                format!(
                    "1 validation error detected: Value '{id}' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*"
                ),
            ));
        }
    }
    let denied = || {
        AwsError::access_denied(
            SERVICE,
            format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", call.caller.arn()),
        )
    };
    if matches!(call.caller, Caller::Root { .. }) {
        return Err(AwsError::access_denied(SERVICE, "Roles may not be assumed by root accounts."));
    }
    let guard = cloud.read();
    let state = &guard.state;
    // A role that does not exist is refused exactly like one that does not trust the caller,
    // so that AssumeRole cannot be used to probe for role names.
    let role: &Role = parse_role_arn(role_arn)
        .and_then(|(account, name)| state.role(&account, &name))
        .filter(|r| r.arn() == role_arn)
        .ok_or_else(denied)?;
    note.recipient_account = Some(role.account.clone());
    let policy = Policy::parse(&role.trust_policy, PolicyKind::Trust, |arn| principal_exists(state, arn)).map_err(|_| denied())?;
    let mut ctx = RequestContext::new(&call.caller, "sts:AssumeRole", role_arn).with("sts:RoleSessionName", session_name);
    if let Some(id) = external_id {
        ctx = ctx.with("sts:ExternalId", id);
    }
    // The trust policy and the caller's own identity policies, as AWS weighs them: an explicit
    // Deny in either wins; from another account both must allow; within the role's account a
    // trust policy naming the caller's role suffices, one naming only the account does not.
    if crate::policy::resource_decision(&policy, &call.identity, &ctx, &role.account) != Decision::Allow {
        return Err(denied());
    }
    let chained = matches!(call.caller, Caller::AssumedRole { .. });
    let duration = duration.unwrap_or(3600);
    if duration < 900 {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            ),
        ));
    }
    if chained && duration > CHAINED_MAX {
        return Err(AwsError::validation(
            SERVICE,
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > role.max_session_duration {
        return Err(AwsError::validation(SERVICE, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."));
    }
    let expires = cloud.clock.now().unix_timestamp() + duration;
    let claims = SessionClaims::for_role(role, session_name, expires, chained);
    let issued = session::issue(&state.session_secret, claims).ok_or_else(|| AwsError::internal(SERVICE, 500))?;
    Ok(format!(
        "<AssumedRoleUser>{}{}</AssumedRoleUser><Credentials>{}{}{}{}</Credentials>",
        elem("AssumedRoleId", &format!("{}:{session_name}", role.role_id)),
        elem("Arn", &format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", role.account, role.name)),
        elem("AccessKeyId", &issued.access_key_id),
        elem("SecretAccessKey", &issued.secret_access_key),
        elem("SessionToken", &issued.session_token),
        elem("Expiration", &iso_time(expires)),
    ))
}

/// `arn:aws:iam::ACCOUNT:role/PATH/NAME` → (account, name).
pub fn parse_role_arn(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_and_name = resource.strip_prefix("role/")?;
    let name = path_and_name.rsplit('/').next()?;
    Some((account.to_string(), name.to_string()))
}
