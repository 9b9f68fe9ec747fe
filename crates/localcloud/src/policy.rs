//! IAM policy documents: parsing, validation and evaluation, for trust policies (STS
//! AssumeRole) and key policies (KMS).
//!
//! This is the part the other emulators skip, and the part BYOK depends on: a `Deny` statement
//! is evaluated and beats every `Allow`; principals, actions (with `*`/`?` wildcards) and string
//! conditions (`sts:ExternalId`, `aws:PrincipalArn`, `kms:EncryptionContext:…`) are matched the
//! way IAM matches them. Identity-based policies (a role's inline and attached policies) are
//! evaluated beside key and trust policies ([`resource_decision`]) and alone for IAM writes.
//! What is not modelled: permission boundaries, SCPs, session policies.

use std::collections::HashMap;

use std::sync::Arc;

use serde_json::Value;

/// The principal making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An account's root credentials.
    Root { account: String },
    /// A session of an assumed role.
    AssumedRole { account: String, role_name: String, role_path: String, role_id: String, session_name: String },
}

impl Caller {
    pub fn account(&self) -> &str {
        match self {
            Caller::Root { account } | Caller::AssumedRole { account, .. } => account,
        }
    }

    /// The ARN that `GetCallerIdentity` and error messages show.
    pub fn arn(&self) -> String {
        match self {
            Caller::Root { account } => format!("arn:aws:iam::{account}:root"),
            Caller::AssumedRole { account, role_name, session_name, .. } => {
                format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
            }
        }
    }

    /// `aws:PrincipalArn`: for a role session, the role's ARN (not the session's).
    pub fn principal_arn(&self) -> String {
        match self {
            Caller::Root { account } => format!("arn:aws:iam::{account}:root"),
            Caller::AssumedRole { account, role_name, role_path, .. } => format!("arn:aws:iam::{account}:role{role_path}{role_name}"),
        }
    }
}

/// Which kind of document: they differ in which fields are required or forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A role's trust policy: `Principal` required, `Resource` forbidden.
    Trust,
    /// A KMS key policy: `Principal` and `Resource` required.
    Key,
    /// An IAM identity policy on a role (inline or customer-managed): no `Principal`,
    /// `Resource` (or `NotResource`) required.
    Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// The outcome of evaluating a request against one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allowed it and none denied it.
    Allow,
    /// A statement denied it explicitly.
    ExplicitDeny,
    /// No statement applied.
    ImplicitDeny,
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    principals: Option<Principals>,
    /// The `Service` principals named (`ec2.amazonaws.com`): who may assume a role for an
    /// instance profile.
    services: Vec<String>,
    not_principal: bool,
    actions: Vec<String>,
    not_action: bool,
    resources: Option<Vec<String>>,
    /// `NotResource`: the statement applies to every resource *except* those listed.
    not_resource: bool,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
enum Principals {
    Everyone,
    Aws(Vec<String>),
    /// Service or federated principals: they never match a signed caller here.
    Other,
}

#[derive(Debug, Clone)]
struct Condition {
    op: StringOp,
    negated: bool,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum StringOp {
    Equals,
    EqualsIgnoreCase,
    Like,
}

/// Why a document was refused; the message is IAM's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// What the evaluation needs to know about the request.
#[derive(Debug)]
pub struct RequestContext<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    pub resource: &'a str,
    /// Condition keys, lower-cased.
    pub keys: HashMap<String, String>,
}

impl<'a> RequestContext<'a> {
    pub fn new(caller: &'a Caller, action: &'a str, resource: &'a str) -> Self {
        let mut keys = HashMap::new();
        keys.insert("aws:principalarn".into(), caller.principal_arn());
        keys.insert("aws:principalaccount".into(), caller.account().to_string());
        keys.insert("aws:userid".into(), caller.arn());
        Self { caller, action, resource, keys }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.keys.insert(key.to_ascii_lowercase(), value.into());
        self
    }
}

impl Policy {
    /// A policy that grants nothing: what a stored document that no longer parses means.
    pub fn deny_all() -> Self {
        Self { statements: Vec::new() }
    }

    /// Parses and validates a document. `principal_exists` answers whether an ARN principal
    /// names something that exists (IAM refuses `Invalid principal in policy` otherwise).
    pub fn parse(document: &str, kind: PolicyKind, principal_exists: impl Fn(&str) -> bool) -> Result<Self, PolicyError> {
        let doc: Value = serde_json::from_str(document).map_err(|_| PolicyError("This policy contains invalid Json".into()))?;
        let obj = doc.as_object().ok_or_else(|| PolicyError("This policy contains invalid Json".into()))?;
        if let Some(version) = obj.get("Version") {
            if version != "2012-10-17" && version != "2008-10-17" {
                return Err(PolicyError("The policy must contain a valid version string".into()));
            }
        }
        for field in obj.keys() {
            if !["Version", "Id", "Statement"].contains(&field.as_str()) {
                return Err(PolicyError(format!("Syntax errors in policy. Unknown field {field}")));
            }
        }
        let statements = match obj.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect::<Vec<_>>(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => return Err(PolicyError("Syntax errors in policy. Missing required field Statement".into())),
        };
        let statements = statements.into_iter().map(|s| parse_statement(s, kind, &principal_exists)).collect::<Result<_, _>>()?;
        Ok(Self { statements })
    }

    /// Evaluates a request: an explicit Deny wins, then any Allow, else an implicit deny.
    pub fn evaluate(&self, ctx: &RequestContext<'_>) -> Decision {
        let mut allowed = false;
        for statement in &self.statements {
            if statement.applies(ctx) {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed { Decision::Allow } else { Decision::ImplicitDeny }
    }

    /// Whether a trust policy lets an AWS service (`ec2.amazonaws.com`, for an instance
    /// profile) assume the role: an unconditional Allow naming the service (or everyone), and
    /// no Deny naming it (or everyone), whatever that Deny's conditions.
    pub fn service_may_assume(&self, service: &str) -> bool {
        let names = |st: &Statement| matches!(st.principals, Some(Principals::Everyone)) || st.services.iter().any(|s| s == service);
        let acts = |st: &Statement| {
            let listed = st.actions.iter().any(|a| wildcard_match(&a.to_ascii_lowercase(), "sts:assumerole"));
            listed != st.not_action
        };
        let mut allowed = false;
        for st in self.statements.iter().filter(|st| !st.not_principal && names(st) && acts(st)) {
            match st.effect {
                Effect::Deny => return false,
                Effect::Allow if st.conditions.is_empty() => allowed = true,
                Effect::Allow => {}
            }
        }
        allowed
    }

    /// The decision for statements that name the caller directly: a principal naming an
    /// account (its id or its root ARN) matches only that account's root here, because on AWS
    /// such a statement does not grant the account's roles anything by itself — it lets the
    /// account's IAM policies decide.
    pub fn evaluate_direct(&self, ctx: &RequestContext<'_>) -> Decision {
        let mut allowed = false;
        for statement in &self.statements {
            if statement.applies_as(ctx, true) {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed { Decision::Allow } else { Decision::ImplicitDeny }
    }
}

/// A caller's identity-based policies: a root has every permission of its own account; a role
/// session has what its role's inline and attached policies grant (nothing, if it has none or
/// the role is gone).
#[derive(Debug, Clone)]
pub enum Identity {
    Root,
    Role(Vec<Arc<Policy>>),
}

impl Identity {
    /// What the identity policies say about this request.
    pub fn evaluate(&self, ctx: &RequestContext<'_>) -> Decision {
        match self {
            Identity::Root => Decision::Allow,
            Identity::Role(policies) => {
                let mut allowed = false;
                for policy in policies {
                    match policy.evaluate(ctx) {
                        Decision::ExplicitDeny => return Decision::ExplicitDeny,
                        Decision::Allow => allowed = true,
                        Decision::ImplicitDeny => {}
                    }
                }
                if allowed { Decision::Allow } else { Decision::ImplicitDeny }
            }
        }
    }
}

/// Whether a request on a resource with a resource-based policy is allowed, as AWS decides it
/// for KMS keys (key policies) and for AssumeRole (trust policies); see [`kms_decision`] for
/// the rule and <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html>
/// and <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_compare-resource-policies.html>:
/// an explicit Deny in either policy wins; across accounts both the resource policy and the
/// caller's identity policies must allow; within an account a resource policy naming the
/// principal itself suffices, and one naming only the account needs the caller's Allow.
pub fn resource_decision(resource_policy: &Policy, identity: &Identity, ctx: &RequestContext<'_>, resource_account: &str) -> Decision {
    kms_decision(resource_policy, identity, ctx, resource_account)
}

/// Whether a request to use a KMS key is allowed, as AWS decides it
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html> and
/// <https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-cross-account.html>):
/// an explicit Deny in the key policy or an identity policy wins; in the key's own account, the
/// key policy must allow the principal directly, or allow the account (which "enables IAM
/// policies") and an identity policy allow the request; from another account, the key policy
/// must allow that account or principal *and* an identity policy in the caller's account must
/// allow the request.
pub fn kms_decision(key_policy: &Policy, identity: &Identity, ctx: &RequestContext<'_>, key_account: &str) -> Decision {
    if key_policy.evaluate(ctx) == Decision::ExplicitDeny {
        return Decision::ExplicitDeny;
    }
    let identity = identity.evaluate(ctx);
    if identity == Decision::ExplicitDeny {
        return Decision::ExplicitDeny;
    }
    let direct = key_policy.evaluate_direct(ctx) == Decision::Allow;
    let root = Caller::Root { account: ctx.caller.account().to_string() };
    let mut root_ctx = RequestContext::new(&root, ctx.action, ctx.resource);
    root_ctx.keys = ctx.keys.clone();
    let account_enabled = key_policy.evaluate_direct(&root_ctx) == Decision::Allow;
    let identity_allows = identity == Decision::Allow;
    let allowed = if ctx.caller.account() == key_account {
        direct || (account_enabled && identity_allows)
    } else {
        (direct || account_enabled) && identity_allows
    };
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

fn parse_statement(value: &Value, kind: PolicyKind, principal_exists: &impl Fn(&str) -> bool) -> Result<Statement, PolicyError> {
    let obj = value.as_object().ok_or_else(|| PolicyError("Syntax errors in policy. Statement must be an object".into()))?;
    for field in obj.keys() {
        if !["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"]
            .contains(&field.as_str())
        {
            return Err(PolicyError(format!("Syntax errors in policy. Unknown field {field}")));
        }
    }
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(PolicyError(format!("Invalid effect: {other}"))),
        None => return Err(PolicyError("Syntax errors in policy. Missing required field Effect".into())),
    };
    let (principal_value, not_principal) = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(p), None) => (Some(p), false),
        (None, Some(p)) => (Some(p), true),
        (None, None) => (None, false),
        (Some(_), Some(_)) => return Err(PolicyError("Syntax errors in policy. Principal and NotPrincipal are exclusive".into())),
    };
    let principals = match (kind, principal_value) {
        (PolicyKind::Identity, Some(_)) => return Err(PolicyError("Policy document should not specify a principal.".into())),
        (PolicyKind::Identity, None) => None,
        (PolicyKind::Trust | PolicyKind::Key, None) => {
            return Err(PolicyError("Syntax errors in policy. Missing required field Principal".into()));
        }
        (PolicyKind::Trust | PolicyKind::Key, Some(v)) => Some(parse_principals(v, principal_exists)?),
    };
    let (actions, not_action) = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(a), None) => (string_list(a, "Action")?, false),
        (None, Some(a)) => (string_list(a, "NotAction")?, true),
        _ => return Err(PolicyError("Syntax errors in policy. Exactly one of Action and NotAction is required".into())),
    };
    for action in &actions {
        if action != "*" && !action.contains(':') {
            return Err(PolicyError(format!("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ({action})")));
        }
    }
    let (resource_value, not_resource) = match (obj.get("Resource"), obj.get("NotResource")) {
        (Some(r), None) => (Some(r), false),
        (None, Some(r)) => (Some(r), true),
        (None, None) => (None, false),
        (Some(_), Some(_)) => return Err(PolicyError("Syntax errors in policy. Resource and NotResource are exclusive".into())),
    };
    let resources = match (kind, resource_value) {
        (PolicyKind::Trust, Some(_)) => return Err(PolicyError("Has prohibited field Resource".into())),
        (PolicyKind::Trust, None) => None,
        (PolicyKind::Key | PolicyKind::Identity, None) => {
            return Err(PolicyError("Syntax errors in policy. Missing required field Resource".into()));
        }
        (PolicyKind::Key | PolicyKind::Identity, Some(r)) => Some(string_list(r, "Resource")?),
    };
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(ops)) => {
            let mut out = Vec::new();
            for (op_name, block) in ops {
                let (op, negated, if_exists) = parse_operator(op_name)?;
                let block = block
                    .as_object()
                    .ok_or_else(|| PolicyError(format!("Syntax errors in policy. Condition {op_name} must be an object")))?;
                for (key, values) in block {
                    out.push(Condition { op, negated, if_exists, key: key.to_ascii_lowercase(), values: string_list(values, key)? });
                }
            }
            out
        }
        Some(_) => return Err(PolicyError("Syntax errors in policy. Condition must be an object".into())),
    };
    let services = principal_value.and_then(|v| v.get("Service")).map(|v| string_list(v, "Service")).transpose()?.unwrap_or_default();
    Ok(Statement { effect, principals, services, not_principal, actions, not_action, resources, not_resource, conditions })
}

fn parse_operator(name: &str) -> Result<(StringOp, bool, bool), PolicyError> {
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (op, negated) = match base {
        "StringEquals" | "ArnEquals" => (StringOp::Equals, false),
        "StringNotEquals" | "ArnNotEquals" => (StringOp::Equals, true),
        "StringEqualsIgnoreCase" => (StringOp::EqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringOp::EqualsIgnoreCase, true),
        "StringLike" | "ArnLike" => (StringOp::Like, false),
        "StringNotLike" | "ArnNotLike" => (StringOp::Like, true),
        "Bool" => (StringOp::EqualsIgnoreCase, false),
        other => return Err(PolicyError(format!("Invalid Condition type : {other}"))),
    };
    Ok((op, negated, if_exists))
}

fn parse_principals(value: &Value, principal_exists: &impl Fn(&str) -> bool) -> Result<Principals, PolicyError> {
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Everyone),
        Value::Object(map) => {
            let mut aws = Vec::new();
            let mut other = false;
            for (kind, v) in map {
                match kind.as_str() {
                    "AWS" => {
                        for p in string_list(v, "AWS")? {
                            if p != "*" && !is_account_id(&p) && (!p.starts_with("arn:aws:") || !principal_exists(&p)) {
                                return Err(PolicyError(format!("Invalid principal in policy: \"AWS\":\"{p}\"")));
                            }
                            aws.push(p);
                        }
                    }
                    "Service" | "Federated" | "CanonicalUser" => {
                        string_list(v, kind)?;
                        other = true;
                    }
                    k => return Err(PolicyError(format!("Invalid principal in policy: \"{k}\""))),
                }
            }
            if aws.iter().any(|p| p == "*") {
                Ok(Principals::Everyone)
            } else if aws.is_empty() && other {
                Ok(Principals::Other)
            } else {
                Ok(Principals::Aws(aws))
            }
        }
        _ => Err(PolicyError("Invalid principal in policy".into())),
    }
}

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(PolicyError(format!("Syntax errors in policy. {field} must hold strings"))),
            })
            .collect(),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        _ => Err(PolicyError(format!("Syntax errors in policy. {field} must be a string or a list of strings"))),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Statement {
    fn applies(&self, ctx: &RequestContext<'_>) -> bool {
        self.applies_as(ctx, false)
    }

    /// With `direct`, a principal naming an account matches only that account's root.
    fn applies_as(&self, ctx: &RequestContext<'_>, direct: bool) -> bool {
        let principal_match = match &self.principals {
            None => true,
            Some(Principals::Everyone) => true,
            Some(Principals::Other) => false,
            Some(Principals::Aws(list)) => list.iter().any(|p| {
                let names_account = is_account_id(p) || p.ends_with(":root");
                if direct && names_account && !matches!(ctx.caller, Caller::Root { .. }) { false } else { principal_matches(p, ctx.caller) }
            }),
        };
        if principal_match == self.not_principal {
            return false;
        }
        let action_match = self.actions.iter().any(|a| wildcard_match(&a.to_ascii_lowercase(), &ctx.action.to_ascii_lowercase()));
        if action_match == self.not_action {
            return false;
        }
        if let Some(resources) = &self.resources {
            if resources.iter().any(|r| wildcard_match(r, ctx.resource)) == self.not_resource {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(&ctx.keys))
    }
}

impl Condition {
    fn holds(&self, keys: &HashMap<String, String>) -> bool {
        let Some(actual) = keys.get(&self.key) else {
            // A missing key satisfies a negated operator and any `…IfExists`, nothing else.
            return self.negated || self.if_exists;
        };
        let any = self.values.iter().any(|expected| match self.op {
            StringOp::Equals => expected == actual,
            StringOp::EqualsIgnoreCase => expected.eq_ignore_ascii_case(actual),
            StringOp::Like => wildcard_match(expected, actual),
        });
        any != self.negated
    }
}

/// Whether a policy's principal entry names the caller.
fn principal_matches(principal: &str, caller: &Caller) -> bool {
    if principal == "*" {
        return true;
    }
    if is_account_id(principal) {
        return caller.account() == principal;
    }
    let Some(rest) = principal.strip_prefix("arn:aws:") else { return false };
    let mut parts = rest.splitn(4, ':');
    let (Some(service), Some(_region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if account != caller.account() {
        return false;
    }
    match (service, resource) {
        ("iam", "root") => true,
        ("iam", r) if r.starts_with("role/") => match caller {
            // A role ARN names every session of that role (the path is part of the ARN).
            Caller::AssumedRole { role_name, role_path, .. } => r == format!("role{role_path}{role_name}"),
            Caller::Root { .. } => false,
        },
        ("sts", r) => match caller {
            Caller::AssumedRole { role_name, session_name, .. } => r == format!("assumed-role/{role_name}/{session_name}"),
            Caller::Root { .. } => false,
        },
        _ => false,
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("kms:*", "kms:Decrypt"));
        assert!(wildcard_match("kms:Gen*Key*", "kms:GenerateDataKeyWithoutPlaintext"));
        assert!(wildcard_match("sts:Assume?ole", "sts:AssumeRole"));
        assert!(!wildcard_match("kms:Encrypt", "kms:Decrypt"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "acbd"));
    }
}
