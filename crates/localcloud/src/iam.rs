//! IAM (Query protocol): roles, their trust policies, and their identity policies (inline and
//! customer-managed), which decide with the key policy whether a role may use a KMS key.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cloud::{Call, Cloud};
use crate::error::{AwsError, AwsResult};
use crate::policy::{Caller, Identity, Policy, PolicyKind};
use crate::protocol::{QueryParams, Service, elem};
use crate::state::{Change, ManagedPolicy, Role, State, ids};
use crate::trail::TrailNote;

const SERVICE: Service = Service::Iam;

pub fn handle(cloud: &Cloud, call: &Call, action: &str, params: &QueryParams, note: &mut TrailNote) -> AwsResult<Option<String>> {
    let account = call.caller.account().to_string();
    authorize_write(call, action, &account, params)?;
    match action {
        "CreateRole" => create_role(cloud, &account, params, note).map(Some),
        "GetRole" => {
            let name = params.require(SERVICE, "RoleName")?;
            let guard = cloud.read();
            let role = find(&guard.state, &account, name)?;
            note.resources.push(role.arn());
            Ok(Some(format!("<Role>{}</Role>", role_xml(role))))
        }
        "ListRoles" => {
            let prefix = params.get("PathPrefix").unwrap_or("/");
            let max = params.int(SERVICE, "MaxItems")?.unwrap_or(100).clamp(1, 1000) as usize;
            let marker = params.get("Marker");
            let guard = cloud.read();
            let mut roles = guard
                .state
                .roles
                .values()
                .filter(|r| r.account == account && r.path.starts_with(prefix))
                .skip_while(|r| marker.is_some_and(|m| r.name.to_ascii_lowercase().as_str() <= m));
            let page: Vec<&Role> = roles.by_ref().take(max).collect();
            let truncated = roles.next().is_some();
            let mut xml = format!("<IsTruncated>{truncated}</IsTruncated><Roles>");
            for role in &page {
                xml.push_str(&format!("<member>{}</member>", role_xml(role)));
            }
            xml.push_str("</Roles>");
            if truncated {
                if let Some(last) = page.last() {
                    xml.push_str(&elem("Marker", &last.name.to_ascii_lowercase()));
                }
            }
            Ok(Some(xml))
        }
        "UpdateAssumeRolePolicy" => {
            let name = params.require(SERVICE, "RoleName")?;
            let document = params.require(SERVICE, "PolicyDocument")?;
            let mut guard = cloud.write();
            let role = find(&guard.state, &account, name)?;
            note.resources.push(role.arn());
            let name = role.name.clone();
            validate_trust_policy(&guard.state, document)?;
            cloud.commit(&mut guard, SERVICE, Change::RoleTrustPolicyUpdated { account, name, policy: document.to_string() })?;
            Ok(None)
        }
        "DeleteRole" => {
            let name = params.require(SERVICE, "RoleName")?;
            let mut guard = cloud.write();
            let role = find(&guard.state, &account, name)?;
            note.resources.push(role.arn());
            let name = role.name.clone();
            cloud.commit(&mut guard, SERVICE, Change::RoleDeleted { account, name })?;
            Ok(None)
        }
        "PutRolePolicy" => {
            let role = params.require(SERVICE, "RoleName")?;
            let name = policy_name(params.require(SERVICE, "PolicyName")?)?;
            let document = params.require(SERVICE, "PolicyDocument")?;
            validate_identity_policy(document)?;
            let mut guard = cloud.write();
            let found = find(&guard.state, &account, role)?;
            note.resources.push(found.arn());
            let role = found.name.clone();
            cloud.commit(
                &mut guard,
                SERVICE,
                Change::RolePolicyPut { account, role, name: name.to_string(), document: document.to_string() },
            )?;
            Ok(None)
        }
        "GetRolePolicy" => {
            let role = params.require(SERVICE, "RoleName")?;
            let name = params.require(SERVICE, "PolicyName")?;
            let guard = cloud.read();
            let found = find(&guard.state, &account, role)?;
            note.resources.push(found.arn());
            let document = found.inline_policies.get(name).ok_or_else(|| no_such_policy(role, name))?;
            Ok(Some(format!(
                "{}{}{}",
                elem("RoleName", &found.name),
                elem("PolicyName", name),
                elem("PolicyDocument", &utf8_percent_encode(document, NON_ALPHANUMERIC).to_string())
            )))
        }
        "DeleteRolePolicy" => {
            let role = params.require(SERVICE, "RoleName")?;
            let name = params.require(SERVICE, "PolicyName")?;
            let mut guard = cloud.write();
            let found = find(&guard.state, &account, role)?;
            note.resources.push(found.arn());
            if !found.inline_policies.contains_key(name) {
                return Err(no_such_policy(role, name));
            }
            let role = found.name.clone();
            cloud.commit(&mut guard, SERVICE, Change::RolePolicyDeleted { account, role, name: name.to_string() })?;
            Ok(None)
        }
        "ListRolePolicies" => {
            let role = params.require(SERVICE, "RoleName")?;
            let guard = cloud.read();
            let found = find(&guard.state, &account, role)?;
            let mut xml = String::from("<IsTruncated>false</IsTruncated><PolicyNames>");
            for name in found.inline_policies.keys() {
                xml.push_str(&elem("member", name));
            }
            xml.push_str("</PolicyNames>");
            Ok(Some(xml))
        }
        "CreatePolicy" => {
            let name = policy_name(params.require(SERVICE, "PolicyName")?)?;
            let document = params.require(SERVICE, "PolicyDocument")?;
            let path = params.get("Path").unwrap_or("/");
            validate_identity_policy(document)?;
            let policy = ManagedPolicy {
                account: account.clone(),
                name: name.to_string(),
                path: path.to_string(),
                policy_id: ids::upper("ANPA", 17),
                document: document.to_string(),
                created: cloud.clock.now().unix_timestamp(),
            };
            let mut guard = cloud.write();
            if guard.state.managed_policies.contains_key(&policy.arn()) {
                return Err(AwsError::new(
                    "EntityAlreadyExists",
                    409,
                    format!("A policy called {name} already exists. Duplicate names are not allowed."),
                ));
            }
            note.resources.push(policy.arn());
            let xml = format!(
                "<Policy>{}{}{}{}{}<DefaultVersionId>v1</DefaultVersionId><AttachmentCount>0</AttachmentCount><IsAttachable>true</IsAttachable>{}</Policy>",
                elem("PolicyName", &policy.name),
                elem("PolicyId", &policy.policy_id),
                elem("Arn", &policy.arn()),
                elem("Path", &policy.path),
                elem("CreateDate", &iso_time(policy.created)),
                elem("UpdateDate", &iso_time(policy.created)),
            );
            cloud.commit(&mut guard, SERVICE, Change::PolicyCreated(policy))?;
            Ok(Some(xml))
        }
        "AttachRolePolicy" | "DetachRolePolicy" => {
            let role = params.require(SERVICE, "RoleName")?;
            let arn = params.require(SERVICE, "PolicyArn")?;
            let mut guard = cloud.write();
            let found = find(&guard.state, &account, role)?;
            note.resources.push(found.arn());
            let role = found.name.clone();
            let attached = found.attached_policies.contains(arn);
            if !guard.state.managed_policies.contains_key(arn) {
                return Err(AwsError::new("NoSuchEntity", 404, format!("Policy {arn} does not exist or is not attachable.")));
            }
            let change = if action == "AttachRolePolicy" {
                Change::RolePolicyAttached { account, role, arn: arn.to_string() }
            } else if attached {
                Change::RolePolicyDetached { account, role, arn: arn.to_string() }
            } else {
                return Err(AwsError::new("NoSuchEntity", 404, format!("Policy {arn} was not found.")));
            };
            cloud.commit(&mut guard, SERVICE, change)?;
            Ok(None)
        }
        "ListAttachedRolePolicies" => {
            let role = params.require(SERVICE, "RoleName")?;
            let guard = cloud.read();
            let found = find(&guard.state, &account, role)?;
            let mut xml = String::from("<IsTruncated>false</IsTruncated><AttachedPolicies>");
            for arn in &found.attached_policies {
                let name = guard.state.managed_policies.get(arn).map(|p| p.name.clone()).unwrap_or_default();
                xml.push_str(&format!("<member>{}{}</member>", elem("PolicyName", &name), elem("PolicyArn", arn)));
            }
            xml.push_str("</AttachedPolicies>");
            Ok(Some(xml))
        }
        other => Err(AwsError::unknown_operation(SERVICE, other)),
    }
}

fn no_such_policy(role: &str, name: &str) -> AwsError {
    AwsError::new("NoSuchEntity", 404, format!("The role policy with name {name} cannot be found for role {role}."))
}

fn policy_name(name: &str) -> AwsResult<&str> {
    if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)) {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{name}' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
            ),
        ));
    }
    Ok(name)
}

fn validate_identity_policy(document: &str) -> AwsResult<()> {
    if document.len() > 10_240 {
        return Err(AwsError::new("LimitExceeded", 409, "Maximum policy size of 10240 bytes exceeded."));
    }
    Policy::parse(document, PolicyKind::Identity, |_| true).map_err(|e| AwsError::new("MalformedPolicyDocument", 400, e.0))?;
    Ok(())
}

fn create_role(cloud: &Cloud, account: &str, params: &QueryParams, note: &mut TrailNote) -> AwsResult<String> {
    let name = params.require(SERVICE, "RoleName")?;
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)) {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{name}' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
            ),
        ));
    }
    let path = params.get("Path").unwrap_or("/");
    if !path.starts_with('/') || !path.ends_with('/') || path.len() > 512 {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "The specified value for path is invalid: '{path}'. It must begin and end with / and contain only alphanumeric characters and/or / characters."
            ),
        ));
    }
    let max_session = params.int(SERVICE, "MaxSessionDuration")?.unwrap_or(3600);
    if !(3600..=43200).contains(&max_session) {
        return Err(AwsError::validation(
            SERVICE,
            format!(
                "1 validation error detected: Value '{max_session}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            ),
        ));
    }
    let document = params.require(SERVICE, "AssumeRolePolicyDocument")?;
    let mut guard = cloud.write();
    if guard.state.role(account, name).is_some() {
        return Err(AwsError::new("EntityAlreadyExists", 409, format!("Role with name {name} already exists.")));
    }
    validate_trust_policy(&guard.state, document)?;
    let role = Role {
        account: account.to_string(),
        name: name.to_string(),
        path: path.to_string(),
        role_id: ids::upper("AROA", 17),
        trust_policy: document.to_string(),
        description: params.get("Description").map(str::to_string),
        max_session_duration: max_session,
        created: cloud.clock.now().unix_timestamp(),
        inline_policies: Default::default(),
        attached_policies: Default::default(),
    };
    note.resources.push(role.arn());
    let xml = format!("<Role>{}</Role>", role_xml(&role));
    cloud.commit(&mut guard, SERVICE, Change::RoleCreated(role))?;
    Ok(xml)
}

fn find<'s>(state: &'s State, account: &str, name: &str) -> AwsResult<&'s Role> {
    state.role(account, name).ok_or_else(|| AwsError::new("NoSuchEntity", 404, format!("The role with name {name} cannot be found.")))
}

pub(crate) fn validate_trust_policy(state: &State, document: &str) -> AwsResult<()> {
    if document.len() > 2048 {
        return Err(AwsError::new("LimitExceeded", 409, "Cannot exceed quota for ACLSizePerRole: 2048"));
    }
    Policy::parse(document, PolicyKind::Trust, |arn| principal_exists(state, arn))
        .map_err(|e| AwsError::new("MalformedPolicyDocument", 400, e.0))?;
    Ok(())
}

/// Whether an ARN principal names something that exists, as IAM checks on every policy write.
pub fn principal_exists(state: &State, arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some("aws"), Some(service), Some(_), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if !state.accounts.contains_key(account) {
        return false;
    }
    match (service, resource) {
        ("iam", "root") => true,
        ("iam", r) if r.starts_with("role/") => {
            let name = r.rsplit('/').next().unwrap_or_default();
            state.role(account, name).is_some_and(|role| role.arn() == arn)
        }
        ("sts", r) => r.starts_with("assumed-role/") && r.split('/').count() == 3,
        _ => false,
    }
}

pub fn iso_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

fn role_xml(role: &Role) -> String {
    let mut xml = String::new();
    xml.push_str(&elem("Path", &role.path));
    xml.push_str(&elem("RoleName", &role.name));
    xml.push_str(&elem("RoleId", &role.role_id));
    xml.push_str(&elem("Arn", &role.arn()));
    xml.push_str(&elem("CreateDate", &iso_time(role.created)));
    // IAM returns policy documents URL-encoded; the SDKs decode them.
    xml.push_str(&elem("AssumeRolePolicyDocument", &utf8_percent_encode(&role.trust_policy, NON_ALPHANUMERIC).to_string()));
    if let Some(d) = &role.description {
        xml.push_str(&elem("Description", d));
    }
    xml.push_str(&elem("MaxSessionDuration", &role.max_session_duration.to_string()));
    xml
}

/// IAM writes by a role session are authorized against its identity policies, as on AWS: an
/// account's root may do anything in its account; a session may only do what its role's
/// policies allow (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>),
/// so a session with no permissions cannot rewrite a trust policy or grant itself more.
/// Reads are left open (a role needs `iam:GetRole` on AWS; nothing here depends on refusing it).
fn authorize_write(call: &Call, action: &str, account: &str, params: &QueryParams) -> AwsResult<()> {
    if matches!(call.caller, crate::policy::Caller::Root { .. }) {
        return Ok(());
    }
    let role = |name: &str| format!("arn:aws:iam::{account}:role{}{name}", params.get("Path").unwrap_or("/"));
    let resource = match action {
        "CreateRole"
        | "UpdateAssumeRolePolicy"
        | "DeleteRole"
        | "PutRolePolicy"
        | "DeleteRolePolicy"
        | "AttachRolePolicy"
        | "DetachRolePolicy" => role(params.get("RoleName").unwrap_or_default()),
        "CreatePolicy" => {
            format!("arn:aws:iam::{account}:policy{}{}", params.get("Path").unwrap_or("/"), params.get("PolicyName").unwrap_or_default())
        }
        _ => return Ok(()),
    };
    let full = format!("iam:{action}");
    let ctx = crate::policy::RequestContext::new(&call.caller, &full, &resource);
    match call.identity.evaluate(&ctx) {
        crate::policy::Decision::Allow => Ok(()),
        crate::policy::Decision::ExplicitDeny => Err(AwsError::access_denied(
            SERVICE,
            format!(
                "User: {} is not authorized to perform: {full} on resource: {resource} with an explicit deny in an identity-based policy",
                call.caller.arn()
            ),
        )),
        crate::policy::Decision::ImplicitDeny => Err(AwsError::access_denied(
            SERVICE,
            format!(
                "User: {} is not authorized to perform: {full} on resource: {resource} because no identity-based policy allows the {full} action",
                call.caller.arn()
            ),
        )),
    }
}

/// A caller's identity-based policies as the state holds them now.
pub fn identity_of(state: &crate::state::State, caller: &Caller) -> Identity {
    match caller {
        Caller::Root { .. } => Identity::Root,
        Caller::AssumedRole { account, role_name, role_id, .. } => {
            let Some(role) = state.role(account, role_name).filter(|r| &r.role_id == role_id) else {
                return Identity::Role(Vec::new());
            };
            let documents = role
                .inline_policies
                .values()
                .chain(role.attached_policies.iter().filter_map(|arn| state.managed_policies.get(arn).map(|p| &p.document)));
            Identity::Role(
                documents.filter_map(|d| Policy::parse(d, PolicyKind::Identity, |_| true).ok()).map(std::sync::Arc::new).collect(),
            )
        }
    }
}
