//! A table of trust-policy evaluation cases: what STS AssumeRole decides for each caller.

use localcloud::policy::{Caller, Decision, Policy, PolicyKind, RequestContext};
use serde_json::{Value, json};

const PROVIDER: &str = "279766244153";
const ROLE: &str = "arn:aws:iam::279766244153:role/Cryptor-OSB-Provider";

fn session(account: &str, role: &str) -> Caller {
    Caller::AssumedRole {
        account: account.into(),
        role_name: role.into(),
        role_path: "/".into(),
        role_id: "AROAEXAMPLE".into(),
        session_name: "byok-probe".into(),
    }
}

fn statement(effect: &str, principal: Value, action: Value, condition: Option<Value>) -> Value {
    let mut s = json!({ "Effect": effect, "Principal": principal, "Action": action });
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

fn decide(statements: Vec<Value>, caller: &Caller, external_id: Option<&str>) -> Decision {
    let doc = json!({ "Version": "2012-10-17", "Statement": statements }).to_string();
    let policy = Policy::parse(&doc, PolicyKind::Trust, |_| true).expect("valid policy");
    let mut ctx = RequestContext::new(caller, "sts:AssumeRole", "arn:aws:iam::111122223333:role/byok-key-management");
    if let Some(id) = external_id {
        ctx = ctx.with("sts:ExternalId", id);
    }
    policy.evaluate(&ctx)
}

#[test]
fn trust_policy_cases() {
    use Decision::{Allow, ExplicitDeny, ImplicitDeny};
    let provider = session(PROVIDER, "Cryptor-OSB-Provider");
    let other_role = session(PROVIDER, "Intern");
    let stranger = session("999988887777", "Cryptor-OSB-Provider");
    let root = Caller::Root { account: PROVIDER.into() };
    let ext = Some(json!({ "StringEquals": { "sts:ExternalId": "byok-4f1c" } }));
    let allow_role = |cond: Option<Value>| statement("Allow", json!({ "AWS": ROLE }), json!("sts:AssumeRole"), cond);

    // (name, statements, caller, external id sent, expected decision)
    type Case<'a> = (&'a str, Vec<Value>, &'a Caller, Option<&'a str>, Decision);
    let cases: Vec<Case<'_>> = vec![
        ("role principal, its session", vec![allow_role(None)], &provider, None, Allow),
        ("role principal, another role's session", vec![allow_role(None)], &other_role, None, ImplicitDeny),
        ("role principal, same name in another account", vec![allow_role(None)], &stranger, None, ImplicitDeny),
        ("external id required, missing", vec![allow_role(ext.clone())], &provider, None, ImplicitDeny),
        ("external id required, wrong", vec![allow_role(ext.clone())], &provider, Some("byok-0000"), ImplicitDeny),
        ("external id required, right", vec![allow_role(ext.clone())], &provider, Some("byok-4f1c"), Allow),
        (
            "the provider's statement set to Deny",
            vec![statement("Deny", json!({ "AWS": ROLE }), json!("sts:AssumeRole"), None)],
            &provider,
            None,
            ExplicitDeny,
        ),
        (
            "Deny beats Allow",
            vec![allow_role(ext.clone()), statement("Deny", json!({ "AWS": ROLE }), json!("sts:AssumeRole"), None)],
            &provider,
            Some("byok-4f1c"),
            ExplicitDeny,
        ),
        (
            "a Deny for someone else leaves the Allow",
            vec![
                allow_role(None),
                statement("Deny", json!({ "AWS": format!("arn:aws:iam::{PROVIDER}:role/Intern") }), json!("sts:AssumeRole"), None),
            ],
            &provider,
            None,
            Allow,
        ),
        ("principal *", vec![statement("Allow", json!("*"), json!("sts:AssumeRole"), None)], &stranger, None, Allow),
        ("principal AWS *", vec![statement("Allow", json!({ "AWS": "*" }), json!("sts:AssumeRole"), None)], &stranger, None, Allow),
        (
            "account id principal, same account",
            vec![statement("Allow", json!({ "AWS": PROVIDER }), json!("sts:AssumeRole"), None)],
            &other_role,
            None,
            Allow,
        ),
        (
            "account id principal, other account",
            vec![statement("Allow", json!({ "AWS": PROVIDER }), json!("sts:AssumeRole"), None)],
            &stranger,
            None,
            ImplicitDeny,
        ),
        (
            "account root principal",
            vec![statement("Allow", json!({ "AWS": format!("arn:aws:iam::{PROVIDER}:root") }), json!("sts:AssumeRole"), None)],
            &provider,
            None,
            Allow,
        ),
        (
            "principal list",
            vec![statement("Allow", json!({ "AWS": ["arn:aws:iam::999988887777:root", ROLE] }), json!("sts:AssumeRole"), None)],
            &provider,
            None,
            Allow,
        ),
        (
            "session ARN principal",
            vec![statement(
                "Allow",
                json!({ "AWS": format!("arn:aws:sts::{PROVIDER}:assumed-role/Cryptor-OSB-Provider/byok-probe") }),
                json!("sts:AssumeRole"),
                None,
            )],
            &provider,
            None,
            Allow,
        ),
        ("action wildcard sts:*", vec![statement("Allow", json!({ "AWS": ROLE }), json!("sts:*"), None)], &provider, None, Allow),
        (
            "action wildcard sts:Assume?ole",
            vec![statement("Allow", json!({ "AWS": ROLE }), json!("sts:Assume?ole"), None)],
            &provider,
            None,
            Allow,
        ),
        (
            "action case-insensitive",
            vec![statement("Allow", json!({ "AWS": ROLE }), json!("STS:assumerole"), None)],
            &provider,
            None,
            Allow,
        ),
        (
            "another action only",
            vec![statement("Allow", json!({ "AWS": ROLE }), json!(["sts:TagSession", "sts:AssumeRoleWithSAML"]), None)],
            &provider,
            None,
            ImplicitDeny,
        ),
        (
            "StringLike external id",
            vec![allow_role(Some(json!({ "StringLike": { "sts:ExternalId": "byok-*" } })))],
            &provider,
            Some("byok-anything"),
            Allow,
        ),
        (
            "StringLike external id, no match",
            vec![allow_role(Some(json!({ "StringLike": { "sts:ExternalId": "byok-*" } })))],
            &provider,
            Some("other"),
            ImplicitDeny,
        ),
        (
            "StringEquals on aws:PrincipalArn",
            vec![statement("Allow", json!("*"), json!("sts:AssumeRole"), Some(json!({ "StringEquals": { "aws:PrincipalArn": ROLE } })))],
            &provider,
            None,
            Allow,
        ),
        (
            "aws:PrincipalArn of another role",
            vec![statement("Allow", json!("*"), json!("sts:AssumeRole"), Some(json!({ "StringEquals": { "aws:PrincipalArn": ROLE } })))],
            &other_role,
            None,
            ImplicitDeny,
        ),
        (
            "condition keys are case-insensitive",
            vec![allow_role(Some(json!({ "StringEquals": { "STS:EXTERNALID": "byok-4f1c" } })))],
            &provider,
            Some("byok-4f1c"),
            Allow,
        ),
        (
            "Deny unless the external id matches, and it is missing",
            vec![
                allow_role(None),
                statement(
                    "Deny",
                    json!("*"),
                    json!("sts:AssumeRole"),
                    Some(json!({ "StringNotEquals": { "sts:ExternalId": "byok-4f1c" } })),
                ),
            ],
            &provider,
            None,
            ExplicitDeny,
        ),
        (
            "Deny unless the external id matches, and it does",
            vec![
                allow_role(None),
                statement(
                    "Deny",
                    json!("*"),
                    json!("sts:AssumeRole"),
                    Some(json!({ "StringNotEquals": { "sts:ExternalId": "byok-4f1c" } })),
                ),
            ],
            &provider,
            Some("byok-4f1c"),
            Allow,
        ),
        (
            "StringEqualsIfExists with the key absent",
            vec![allow_role(Some(json!({ "StringEqualsIfExists": { "sts:ExternalId": "byok-4f1c" } })))],
            &provider,
            None,
            Allow,
        ),
        (
            "NotPrincipal Deny spares the named principal",
            vec![allow_role(None), json!({ "Effect": "Deny", "NotPrincipal": { "AWS": ROLE }, "Action": "sts:AssumeRole" })],
            &provider,
            None,
            Allow,
        ),
        (
            "a service principal never matches a signed caller",
            vec![statement("Allow", json!({ "Service": "ec2.amazonaws.com" }), json!("sts:AssumeRole"), None)],
            &provider,
            None,
            ImplicitDeny,
        ),
        (
            "root credentials are a principal of their account",
            vec![statement("Allow", json!({ "AWS": PROVIDER }), json!("sts:AssumeRole"), None)],
            &root,
            None,
            Allow,
        ),
    ];
    let mut failures = Vec::new();
    for (name, statements, caller, external_id, expected) in cases {
        let got = decide(statements, caller, external_id);
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_trust_policies_are_refused() {
    for (doc, why) in [
        ("{", "invalid Json"),
        (r#"{"Statement":[]}"#, "Statement"),
        (r#"{"Version":"2099-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#, "version"),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"AssumeRole"}}"#, "vendor"),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}}"#, "Resource"),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/ghost"},"Action":"sts:AssumeRole"}}"#,
            "Invalid principal",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"NumericFoo":{"a":"1"}}}}"#,
            "Condition type",
        ),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Surprise":1}}"#, "Unknown field"),
    ] {
        let err = Policy::parse(doc, PolicyKind::Trust, |_| false).expect_err(doc);
        assert!(err.0.contains(why), "{doc}: {err}");
    }
}

/// AssumeRole weighs the trust policy *and* the caller's identity policies, as AWS does:
/// - <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html>:
///   across accounts, the trust policy must allow the caller (or its account) and the caller's
///   identity policy must allow `sts:AssumeRole`;
/// - <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_compare-resource-policies.html>
///   and <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>:
///   within one account, a trust policy that names the caller's role allows on its own, one that
///   names only the account delegates to the caller's identity policies; an explicit Deny in any
///   policy wins.
#[test]
fn assume_role_weighs_the_callers_identity_policies() {
    use Decision::{Allow, ExplicitDeny, ImplicitDeny};
    use localcloud::policy::{Identity, resource_decision};
    let identity = |statements: Vec<Value>| {
        let doc = json!({ "Version": "2012-10-17", "Statement": statements }).to_string();
        Identity::Role(vec![std::sync::Arc::new(Policy::parse(&doc, PolicyKind::Identity, |_| true).expect("identity policy"))])
    };
    let allow_assume = || identity(vec![json!({ "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*" })]);
    let deny_assume = || {
        identity(vec![
            json!({ "Effect": "Allow", "Action": "*", "Resource": "*" }),
            json!({ "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*" }),
        ])
    };
    let nothing = || Identity::Role(Vec::new());
    let trust = |principal: &str, effect: &str| {
        let doc = json!({ "Version": "2012-10-17", "Statement": [statement(effect, json!({ "AWS": principal }), json!("sts:AssumeRole"), None)] });
        Policy::parse(&doc.to_string(), PolicyKind::Trust, |_| true).expect("trust policy")
    };
    let provider = session(PROVIDER, "Cryptor-OSB-Provider");
    const CUSTOMER: &str = "111122223333";
    const TARGET: &str = "arn:aws:iam::111122223333:role/byok-key-management";
    let same_account_role = "arn:aws:iam::279766244153:role/byok-canary";
    let cases: Vec<(&str, Policy, Identity, &str, Decision)> = vec![
        ("cross-account, trust names the role, identity allows", trust(ROLE, "Allow"), allow_assume(), CUSTOMER, Allow),
        ("cross-account, trust names the role, no identity Allow", trust(ROLE, "Allow"), nothing(), CUSTOMER, ImplicitDeny),
        ("cross-account, trust names the account, identity allows", trust(PROVIDER, "Allow"), allow_assume(), CUSTOMER, Allow),
        ("cross-account, identity denies explicitly", trust(ROLE, "Allow"), deny_assume(), CUSTOMER, ExplicitDeny),
        ("cross-account, trust denies, identity allows", trust(ROLE, "Deny"), allow_assume(), CUSTOMER, ExplicitDeny),
        ("same account, trust names the role: enough alone", trust(ROLE, "Allow"), nothing(), PROVIDER, Allow),
        ("same account, trust names only the account", trust(PROVIDER, "Allow"), nothing(), PROVIDER, ImplicitDeny),
        ("same account, account principal and identity Allow", trust(PROVIDER, "Allow"), allow_assume(), PROVIDER, Allow),
        ("same account, identity denies explicitly", trust(ROLE, "Allow"), deny_assume(), PROVIDER, ExplicitDeny),
    ];
    for (what, policy, identity, role_account, want) in cases {
        let resource = if role_account == PROVIDER { same_account_role } else { TARGET };
        let ctx = RequestContext::new(&provider, "sts:AssumeRole", resource);
        assert_eq!(resource_decision(&policy, &identity, &ctx, role_account), want, "{what}");
    }
}
