//! Generated identity policies checked against a reference evaluator written straight from
//! AWS's documentation of policy evaluation, not from localcloud's code:
//! - <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>:
//!   an explicit Deny in any statement that applies wins; otherwise an Allow that applies
//!   allows; otherwise the request is implicitly denied.
//! - <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html>
//!   and `…_notresource.html`: `NotAction`/`NotResource` apply to everything *not* listed.
//! - <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>:
//!   action names match case-insensitively with `*` and `?`; `StringEquals` is exact and
//!   case-sensitive, `StringLike` takes `*` and `?`; a missing key makes a condition false,
//!   except for negated operators and `…IfExists`, which are then true; all conditions of a
//!   statement must hold, any value of a key may match.
//!
//! The generator is a fixed-seed xorshift (no shrinking needed: a failure prints the policy
//! and the request), so CI runs the same 3,000 cases every time.

use std::collections::HashMap;

use localcloud::policy::{Caller, Decision, Policy, PolicyKind, RequestContext};
use serde_json::{Value, json};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const ACTIONS: [&str; 6] = ["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:ReEncryptFrom", "sts:AssumeRole"];
const ACTION_PATTERNS: [&str; 9] =
    ["kms:Decrypt", "kms:*", "*", "kms:Re*", "kms:GenerateDataKey*", "KMS:decrypt", "kms:?ncrypt", "sts:*", "kms:Describe?ey"];
const RESOURCES: [&str; 3] =
    ["arn:aws:kms:eu-west-1:111122223333:key/k1", "arn:aws:kms:eu-west-1:111122223333:key/k2", "arn:aws:kms:us-east-1:444455556666:key/k3"];
const RESOURCE_PATTERNS: [&str; 6] = [
    "*",
    "arn:aws:kms:eu-west-1:111122223333:key/k1",
    "arn:aws:kms:eu-west-1:111122223333:key/*",
    "arn:aws:kms:*:444455556666:key/*",
    "arn:aws:kms:eu-west-1:111122223333:key/K1",
    "arn:aws:kms:?u-west-1:*",
];
const OPERATORS: [&str; 8] = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "StringEqualsIfExists",
    "StringNotEqualsIfExists",
    "StringLikeIfExists",
    "StringEqualsIgnoreCase",
];
const KEYS: [&str; 2] = ["kms:EncryptionContext:tenant", "aws:PrincipalAccount"];
const VALUES: [&str; 6] = ["acme", "ACME", "a*", "beta", "111122223333", "?cme"];

fn list(rng: &mut Rng, items: &[&str], max: u64) -> Value {
    let n = 1 + rng.next() % max;
    let chosen: Vec<&str> = (0..n).map(|_| *rng.pick(items)).collect();
    if chosen.len() == 1 && rng.chance(50) { json!(chosen[0]) } else { json!(chosen) }
}

fn statement(rng: &mut Rng) -> Value {
    let mut st = serde_json::Map::new();
    st.insert("Effect".into(), json!(if rng.chance(30) { "Deny" } else { "Allow" }));
    st.insert(if rng.chance(25) { "NotAction" } else { "Action" }.into(), list(rng, &ACTION_PATTERNS, 3));
    st.insert(if rng.chance(20) { "NotResource" } else { "Resource" }.into(), list(rng, &RESOURCE_PATTERNS, 2));
    if rng.chance(50) {
        let mut ops = serde_json::Map::new();
        for _ in 0..(1 + rng.next() % 2) {
            let mut block = serde_json::Map::new();
            block.insert((*rng.pick(&KEYS)).into(), list(rng, &VALUES, 2));
            ops.insert((*rng.pick(&OPERATORS)).into(), Value::Object(block));
        }
        st.insert("Condition".into(), Value::Object(ops));
    }
    Value::Object(st)
}

/// `*` and `?` glob, as the documentation describes it.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(&pattern.chars().collect::<Vec<_>>(), &text.chars().collect::<Vec<_>>())
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn reference(policy: &Value, action: &str, resource: &str, keys: &HashMap<String, String>) -> Decision {
    let mut allowed = false;
    for st in policy["Statement"].as_array().into_iter().flatten() {
        let action_listed = strings(st.get("Action").or(st.get("NotAction")).unwrap_or(&Value::Null))
            .iter()
            .any(|p| glob(&p.to_lowercase(), &action.to_lowercase()));
        let action_applies = if st.get("NotAction").is_some() { !action_listed } else { action_listed };
        let resource_listed =
            strings(st.get("Resource").or(st.get("NotResource")).unwrap_or(&Value::Null)).iter().any(|p| glob(p, resource));
        let resource_applies = if st.get("NotResource").is_some() { !resource_listed } else { resource_listed };
        let conditions_hold = st.get("Condition").and_then(Value::as_object).into_iter().flatten().all(|(op, block)| {
            block.as_object().into_iter().flatten().all(|(key, values)| {
                let negated = op.contains("Not");
                let if_exists = op.ends_with("IfExists");
                let base = op.trim_end_matches("IfExists");
                match keys.get(&key.to_lowercase()) {
                    None => negated || if_exists,
                    Some(actual) => {
                        let any = strings(values).iter().any(|expected| match base {
                            "StringEquals" | "StringNotEquals" => expected == actual,
                            "StringEqualsIgnoreCase" => expected.to_lowercase() == actual.to_lowercase(),
                            _ => glob(expected, actual),
                        });
                        any != negated
                    }
                }
            })
        });
        if action_applies && resource_applies && conditions_hold {
            if st["Effect"] == "Deny" {
                return Decision::ExplicitDeny;
            }
            allowed = true;
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

#[test]
fn generated_identity_policies_match_the_documented_evaluation() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let caller = Caller::Root { account: "111122223333".into() };
    let mut decided = HashMap::new();
    for case in 0..3000 {
        let statements: Vec<Value> = (0..(1 + rng.next() % 3)).map(|_| statement(&mut rng)).collect();
        let policy = json!({ "Version": "2012-10-17", "Statement": statements });
        let parsed = Policy::parse(&policy.to_string(), PolicyKind::Identity, |_| true).expect("a generated policy parses");
        let action = *rng.pick(&ACTIONS);
        let resource = *rng.pick(&RESOURCES);
        let mut ctx = RequestContext::new(&caller, action, resource);
        if rng.chance(60) {
            ctx = ctx.with("kms:EncryptionContext:tenant", *rng.pick(&["acme", "ACME", "beta", "abc"]));
        }
        let want = reference(&policy, action, resource, &ctx.keys);
        let got = parsed.evaluate(&ctx);
        assert_eq!(got, want, "case {case}: {action} on {resource} with {:?}\n{policy:#}", ctx.keys);
        *decided.entry(format!("{want:?}")).or_insert(0) += 1;
    }
    // The generator reaches every outcome often enough to mean something.
    for outcome in ["Allow", "ExplicitDeny", "ImplicitDeny"] {
        assert!(decided.get(outcome).copied().unwrap_or(0) > 200, "{decided:?}");
    }
}

/// AssumeRole decided from a generated trust policy and a generated identity policy, against
/// the documented combination
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html>,
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_compare-resource-policies.html>):
/// an explicit Deny in either wins; across accounts both must allow (the trust policy naming the
/// caller's role or its account); within the role's account a trust statement naming the
/// caller's role allows alone, one naming only the account needs the identity Allow.
#[test]
fn generated_assume_role_decisions_match_the_documented_combination() {
    use localcloud::policy::{Identity, resource_decision};
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let caller = Caller::AssumedRole {
        account: "279766244153".into(),
        role_name: "provider".into(),
        role_path: "/".into(),
        role_id: "AROAPROVIDER".into(),
        session_name: "s".into(),
    };
    let principals = [
        "arn:aws:iam::279766244153:role/provider",
        "279766244153",
        "arn:aws:iam::279766244153:root",
        "arn:aws:iam::999988887777:role/other",
        "*",
    ];
    let mut decided = HashMap::new();
    for case in 0..2000 {
        let trust_statements: Vec<Value> = (0..(1 + rng.next() % 2))
            .map(|_| {
                json!({
                    "Effect": if rng.chance(25) { "Deny" } else { "Allow" },
                    "Principal": { "AWS": *rng.pick(&principals) },
                    "Action": *rng.pick(&["sts:AssumeRole", "sts:*", "kms:Decrypt"]),
                })
            })
            .collect();
        let trust = json!({ "Version": "2012-10-17", "Statement": trust_statements });
        let identity_doc =
            json!({ "Version": "2012-10-17", "Statement": (0..(rng.next() % 3)).map(|_| statement(&mut rng)).collect::<Vec<_>>() });
        let role_account = *rng.pick(&["279766244153", "111122223333"]);
        let resource = format!("arn:aws:iam::{role_account}:role/target");
        let trust_policy = Policy::parse(&trust.to_string(), PolicyKind::Trust, |_| true).expect("trust parses");
        let identity = match identity_doc["Statement"].as_array().map(Vec::len) {
            Some(0) | None => Identity::Role(Vec::new()),
            Some(_) => Identity::Role(vec![std::sync::Arc::new(
                Policy::parse(&identity_doc.to_string(), PolicyKind::Identity, |_| true).expect("identity parses"),
            )]),
        };
        let ctx = RequestContext::new(&caller, "sts:AssumeRole", &resource);
        let got = resource_decision(&trust_policy, &identity, &ctx, role_account);

        // The reference, from the documents above.
        let acts = |st: &Value| glob(&st["Action"].as_str().unwrap_or("").to_lowercase(), "sts:assumerole");
        let names = |st: &Value, direct: bool| {
            let p = st["Principal"]["AWS"].as_str().unwrap_or("");
            match p {
                "*" => true,
                "arn:aws:iam::279766244153:role/provider" => true,
                "279766244153" | "arn:aws:iam::279766244153:root" => !direct,
                _ => false,
            }
        };
        let statements = trust["Statement"].as_array().cloned().unwrap_or_default();
        let trust_denies = statements.iter().any(|st| st["Effect"] == "Deny" && acts(st) && names(st, false));
        let trust_allows_direct = statements.iter().any(|st| st["Effect"] == "Allow" && acts(st) && names(st, true));
        let trust_allows_account = statements.iter().any(|st| st["Effect"] == "Allow" && acts(st) && names(st, false));
        let identity_says = if identity_doc["Statement"].as_array().is_some_and(Vec::is_empty) {
            Decision::ImplicitDeny
        } else {
            reference(&identity_doc, "sts:AssumeRole", &resource, &ctx.keys)
        };
        let want = if trust_denies || identity_says == Decision::ExplicitDeny {
            Decision::ExplicitDeny
        } else if role_account == "279766244153" {
            if trust_allows_direct || (trust_allows_account && identity_says == Decision::Allow) {
                Decision::Allow
            } else {
                Decision::ImplicitDeny
            }
        } else if trust_allows_account && identity_says == Decision::Allow {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        };
        assert_eq!(got, want, "case {case}: role in {role_account}\ntrust {trust:#}\nidentity {identity_doc:#}");
        *decided.entry(format!("{want:?}")).or_insert(0) += 1;
    }
    for outcome in ["Allow", "ExplicitDeny", "ImplicitDeny"] {
        assert!(decided.get(outcome).copied().unwrap_or(0) > 100, "{decided:?}");
    }
}
