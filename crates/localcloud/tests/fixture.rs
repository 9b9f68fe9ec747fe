//! The bulk fixture endpoint: what it makes answers the real APIs as if the customer had made
//! it call by call, and a refused fixture changes nothing.

use serde_json::json;

use crate::support::{Localcloud, account, admin, kms, query, role_credentials, xml_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_makes_a_usable_role_and_keys_or_nothing() {
    let lc = Localcloud::start().await;
    let ep = lc.endpoint();
    let provider = account(&ep, "provider", None).await;
    let customer = account(&ep, "customer", None).await;
    let provider_role = crate::support::create_role(&ep, &provider.root, "broker").await;
    let trust = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "AWS": provider_role },
        "Action": "sts:AssumeRole", "Condition": { "StringEquals": { "sts:ExternalId": "ext-1" } } }] });
    let path = format!("/_localcloud/accounts/{}/fixture", customer.id);

    // Refused as a whole: the second key's alias is invalid, so the role is not made either.
    let bad = json!({ "roles": [{ "name": "byok-acme", "trust_policy": trust }],
        "keys": [{ "region": "us-east-1", "alias": "alias/byok" }, { "region": "us-west-2", "alias": "alias/aws/x" }] });
    let (status, body) = admin(&ep, "POST", &path, Some(bad)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, xml) =
        query(&ep, &customer.root, "iam", "us-east-1", &[("Action", "GetRole"), ("Version", "2010-05-08"), ("RoleName", "byok-acme")])
            .await;
    assert_eq!(status, 404, "nothing was made: {xml}");
    let untrusting = json!({ "roles": [{ "name": "r", "trust_policy": { "Statement": [{ "Effect": "Allow",
        "Principal": { "AWS": "arn:aws:iam::999999999999:role/nobody" }, "Action": "sts:AssumeRole" }] } }] });
    let (status, body) = admin(&ep, "POST", &path, Some(untrusting)).await;
    assert_eq!(status, 400, "a principal that does not exist is refused as IAM refuses it: {body}");
    assert!(body["message"].as_str().unwrap().contains("MalformedPolicyDocument"), "{body}");
    let (status, _) = admin(&ep, "POST", "/_localcloud/accounts/123456789012/fixture", Some(json!({}))).await;
    assert_eq!(status, 404, "unknown account");

    let good = json!({ "roles": [{ "name": "byok-acme", "trust_policy": trust }],
        "keys": [{ "region": "us-east-1", "alias": "alias/byok" }, { "region": "us-west-2", "alias": "alias/byok" }] });
    let (status, made) = admin(&ep, "POST", &path, Some(good.clone())).await;
    assert_eq!(status, 201, "{made}");
    let role_arn = made["roles"][0].as_str().unwrap();
    assert_eq!(role_arn, format!("arn:aws:iam::{}:role/byok-acme", customer.id));
    let (status, _) = admin(&ep, "POST", &path, Some(good)).await;
    assert_eq!(status, 409, "the same role twice is a conflict");

    // The role is assumable by the provider with the external id, and the keys answer by alias.
    let broker = role_credentials(&ep, &provider_role).await;
    let assume = |ext: &'static str| {
        let (ep, broker, role_arn) = (ep.clone(), broker.clone(), role_arn.to_string());
        async move {
            query(
                &ep,
                &broker,
                "sts",
                "us-east-1",
                &[
                    ("Action", "AssumeRole"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", &role_arn),
                    ("RoleSessionName", "probe"),
                    ("ExternalId", ext),
                ],
            )
            .await
        }
    };
    assert_eq!(assume("wrong").await.0, 403);
    let (status, xml) = assume("ext-1").await;
    assert_eq!(status, 200, "{xml}");
    for (i, region) in ["us-east-1", "us-west-2"].into_iter().enumerate() {
        let (status, key) = kms(&ep, &customer.root, region, "DescribeKey", json!({ "KeyId": "alias/byok" })).await;
        assert_eq!(status, 200, "{key}");
        assert_eq!(key["KeyMetadata"]["Arn"], made["keys"][i]["arn"]);
        assert_eq!(key["KeyMetadata"]["KeyState"], "Enabled");
    }
    assert!(xml_text(&xml, "AccessKeyId").is_some());
}
