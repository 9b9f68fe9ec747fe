"""Every localcloud operation through boto3, on its success and error paths.

Run by the Rust test `boto3::every_operation_through_boto3`, which starts localcloud and sets
LOCALCLOUD_ENDPOINT. Error codes are checked exactly: they are what an SDK user branches on.
"""

import base64
import json
import os
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["LOCALCLOUD_ENDPOINT"]
REGION = "eu-west-1"
OTHER_REGION = "eu-central-1"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def admin(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ENDPOINT + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


def client(service, creds, region=REGION):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds.get("session_token"),
        config=NO_RETRY,
    )


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def trust(effect, principal, external_id=None, extra=None):
    statement = {"Effect": effect, "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    statements = [statement] + (extra or [])
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@pytest.fixture(scope="module")
def world():
    provider = admin("POST", "/_localcloud/accounts", {"name": "provider"})
    customer = admin("POST", "/_localcloud/accounts", {"name": "customer"})
    iam = client("iam", provider)
    iam.create_role(
        RoleName="provider-broker",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        ),
    )
    # The broker's own account lets it use KMS keys and assume roles (identity policies):
    # cross-account use then depends on each key's policy or role's trust policy, as on AWS,
    # where both must allow it.
    iam.put_role_policy(
        RoleName="provider-broker",
        PolicyName="kms-use",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:*", "sts:AssumeRole"], "Resource": "*"}]}
        ),
    )
    broker_arn = f"arn:aws:iam::{provider['account_id']}:role/provider-broker"
    broker = admin("POST", "/_localcloud/role-credentials", {"role_arn": broker_arn})
    yield {"provider": provider, "customer": customer, "broker": broker, "broker_arn": broker_arn}
    admin("POST", "/_localcloud/clock", {"offset_seconds": 0})


# ---- IAM ---------------------------------------------------------------------------------


def test_iam_roles(world):
    iam = client("iam", world["customer"])
    doc = trust("Allow", world["broker_arn"], "ext-123456")
    role = iam.create_role(RoleName="byok-key-management", AssumeRolePolicyDocument=doc, Description="byok", MaxSessionDuration=7200)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{world['customer']['account_id']}:role/byok-key-management"
    assert role["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName="BYOK-KEY-MANAGEMENT")["Role"]  # names are case-insensitive
    assert got["AssumeRolePolicyDocument"] == json.loads(doc)
    assert got["MaxSessionDuration"] == 7200
    assert "byok-key-management" in [r["RoleName"] for r in iam.list_roles()["Roles"]]

    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="byok-key-management", AssumeRolePolicyDocument=doc)
    assert error_code(e) == "EntityAlreadyExists"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="nope")
    assert error_code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="bad name!", AssumeRolePolicyDocument=doc)
    assert error_code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="r2", AssumeRolePolicyDocument=doc, MaxSessionDuration=50000)
    assert error_code(e) == "ValidationError"

    for bad in [
        "not json",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "sts:AssumeRole"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:role/ghost"}, "Action": "sts:AssumeRole"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Condition": {"Whatever": {"a": "b"}}}]}),
    ]:
        with pytest.raises(ClientError) as e:
            iam.update_assume_role_policy(RoleName="byok-key-management", PolicyDocument=bad)
        assert error_code(e) == "MalformedPolicyDocument", bad
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName="nope", PolicyDocument=doc)
    assert error_code(e) == "NoSuchEntity"

    iam.create_role(RoleName="short-lived", AssumeRolePolicyDocument=doc)
    iam.delete_role(RoleName="short-lived")
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName="short-lived")
    assert error_code(e) == "NoSuchEntity"


# ---- STS ---------------------------------------------------------------------------------


def test_sts_assume_role_evaluates_the_trust_policy(world):
    customer_iam = client("iam", world["customer"])
    sts = client("sts", world["broker"])
    role_arn = f"arn:aws:iam::{world['customer']['account_id']}:role/byok-key-management"

    me = sts.get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{world['provider']['account_id']}:assumed-role/provider-broker/localcloud-instance"
    assert client("sts", world["customer"]).get_caller_identity()["Arn"].endswith(":root")

    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="byok-probe", ExternalId="ext-123456", DurationSeconds=900)
    assert out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/byok-key-management/byok-probe")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    session = {
        "access_key_id": out["Credentials"]["AccessKeyId"],
        "secret_access_key": out["Credentials"]["SecretAccessKey"],
        "session_token": out["Credentials"]["SessionToken"],
    }
    who = client("sts", session).get_caller_identity()
    assert who["Account"] == world["customer"]["account_id"]
    assert who["UserId"].endswith(":byok-probe")

    for kwargs in [{}, {"ExternalId": "ext-wrong"}]:
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=role_arn, RoleSessionName="byok-probe", **kwargs)
        assert error_code(e) == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn.replace("byok-key-management", "ghost"), RoleSessionName="s1", ExternalId="ext-123456")
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        client("sts", world["customer"]).assume_role(RoleArn=role_arn, RoleSessionName="root-try", ExternalId="ext-123456")
    assert error_code(e) == "AccessDenied"
    # Duration: over the role's maximum, and over the role-chaining hour.
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", ExternalId="ext-123456", DurationSeconds=7201)
    assert error_code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", ExternalId="ext-123456", DurationSeconds=3601)
    assert "role chaining" in str(e.value)

    # An explicit Deny beats an Allow in the same policy.
    deny_too = trust(
        "Allow",
        world["broker_arn"],
        "ext-123456",
        extra=[{"Effect": "Deny", "Principal": {"AWS": world["broker_arn"]}, "Action": "sts:*"}],
    )
    customer_iam.update_assume_role_policy(RoleName="byok-key-management", PolicyDocument=deny_too)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="byok-probe", ExternalId="ext-123456")
    assert error_code(e) == "AccessDenied"
    # ... and a session made before the Deny keeps working, as on AWS.
    assert client("sts", session).get_caller_identity()["Account"] == world["customer"]["account_id"]
    customer_iam.update_assume_role_policy(RoleName="byok-key-management", PolicyDocument=trust("Allow", world["broker_arn"], "ext-123456"))
    sts.assume_role(RoleArn=role_arn, RoleSessionName="byok-probe", ExternalId="ext-123456")


# ---- KMS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key(world):
    kms = client("kms", world["customer"])
    meta = kms.create_key(Description="cryptor key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/byok-t1", TargetKeyId=meta["KeyId"])
    return meta


def test_kms_describe_list_and_aliases(world, key):
    kms = client("kms", world["customer"])
    assert key["KeyState"] == "Enabled" and key["Enabled"] is True
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT" and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    alias_arn = f"arn:aws:kms:{REGION}:{world['customer']['account_id']}:alias/byok-t1"
    for ref in [key["KeyId"], key["Arn"], "alias/byok-t1", alias_arn]:
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["Arn"] == key["Arn"]
    for ref, code in [
        ("00000000-0000-4000-8000-000000000000", "NotFoundException"),
        ("alias/none", "NotFoundException"),
        ("not-a-key", "NotFoundException"),
        ("arn:aws:kms:nowhere", "InvalidArnException"),
        (key["Arn"].replace(REGION, OTHER_REGION), "NotFoundException"),
    ]:
        with pytest.raises(ClientError) as e:
            kms.describe_key(KeyId=ref)
        assert error_code(e) == code, ref

    # A key in another region is another key: not listed here.
    client("kms", world["customer"], OTHER_REGION).create_key(Description="elsewhere")
    for _ in range(3):
        kms.create_key()
    page = kms.list_keys(Limit=2)
    assert len(page["Keys"]) == 2 and page["Truncated"] is True
    rest = kms.list_keys(Marker=page["NextMarker"])
    listed = [k["KeyId"] for k in page["Keys"] + rest["Keys"]]
    assert key["KeyId"] in listed and len(listed) == 4 and len(set(listed)) == 4

    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/byok-t1", TargetKeyId=key["KeyId"])
    assert error_code(e) == "AlreadyExistsException"
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="byok-no-prefix", TargetKeyId=key["KeyId"])
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/aws/reserved", TargetKeyId=key["KeyId"])
    assert error_code(e) == "InvalidAliasNameException"
    kms.create_alias(AliasName="alias/byok-extra", TargetKeyId=key["KeyId"])
    names = [a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]]
    assert names == ["alias/byok-extra", "alias/byok-t1"]
    kms.delete_alias(AliasName="alias/byok-extra")
    with pytest.raises(ClientError) as e:
        kms.delete_alias(AliasName="alias/byok-extra")
    assert error_code(e) == "NotFoundException"


def test_kms_cryptography_and_context(world, key):
    kms = client("kms", world["customer"])
    ctx = {"tenant": "t1", "purpose": "tenant-key"}
    enc = kms.encrypt(KeyId="alias/byok-t1", Plaintext=b"tenant key bytes", EncryptionContext=ctx)
    assert enc["KeyId"] == key["Arn"] and enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == b"tenant key bytes" and dec["KeyId"] == key["Arn"]
    assert kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx, KeyId="alias/byok-t1")["Plaintext"] == b"tenant key bytes"

    for bad_ctx in [{}, {"tenant": "t2", "purpose": "tenant-key"}, {**ctx, "extra": "x"}]:
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=bad_ctx)
        assert error_code(e) == "InvalidCiphertextException"
    blob = bytearray(enc["CiphertextBlob"])
    for i in [0, len(blob) // 2, len(blob) - 1]:
        tampered = bytearray(blob)
        tampered[i] ^= 1
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=bytes(tampered), EncryptionContext=ctx)
        assert error_code(e) in ("InvalidCiphertextException", "NotFoundException")
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=b"garbage", EncryptionContext=ctx)
    assert error_code(e) == "InvalidCiphertextException"

    other = kms.create_key(Description="other")["KeyMetadata"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx, KeyId=other["KeyId"])
    assert error_code(e) == "IncorrectKeyException"

    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)
    assert error_code(e) == "DryRunOperationException"

    gdk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)
    assert len(gdk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=gdk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == gdk["Plaintext"]
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)["Plaintext"]) == 64
    assert len(kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_128")["Plaintext"]) == 16
    for kwargs in [{}, {"KeySpec": "AES_256", "NumberOfBytes": 32}]:
        with pytest.raises(ClientError) as e:
            kms.generate_data_key(KeyId=key["KeyId"], **kwargs)
        assert error_code(e) == "ValidationException"
    wp = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)
    assert "Plaintext" not in wp
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"]) == 32

    re = kms.re_encrypt(
        CiphertextBlob=enc["CiphertextBlob"],
        SourceEncryptionContext=ctx,
        DestinationKeyId=other["Arn"],
        DestinationEncryptionContext={"tenant": "t1"},
    )
    assert re["SourceKeyId"] == key["Arn"] and re["KeyId"] == other["Arn"]
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"tenant": "t1"})["Plaintext"] == b"tenant key bytes"
    kms.disable_key(KeyId=other["KeyId"])
    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext=ctx, DestinationKeyId=other["KeyId"])
    assert error_code(e) == "DisabledException"


def test_kms_key_states(world):
    kms = client("kms", world["customer"])
    k = kms.create_key(Description="states")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=k, Plaintext=b"data")["CiphertextBlob"]
    kms.disable_key(KeyId=k)
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Disabled"
    for call in [lambda: kms.encrypt(KeyId=k, Plaintext=b"x"), lambda: kms.decrypt(CiphertextBlob=blob), lambda: kms.generate_data_key(KeyId=k, KeySpec="AES_256")]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "DisabledException"
    kms.enable_key(KeyId=k)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"data"

    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=31)
    assert error_code(e) == "ValidationException"
    out = kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    meta = kms.describe_key(KeyId=k)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "DeletionDate" in meta
    for call in [
        lambda: kms.encrypt(KeyId=k, Plaintext=b"x"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.enable_key(KeyId=k),
        lambda: kms.disable_key(KeyId=k),
        lambda: kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=k)
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Disabled"  # as on AWS
    with pytest.raises(ClientError) as e:
        kms.cancel_key_deletion(KeyId=k)
    assert error_code(e) == "KMSInvalidStateException"
    kms.enable_key(KeyId=k)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"data"


def test_kms_key_policies_and_cross_account(world):
    kms = client("kms", world["customer"])
    account = world["customer"]["account_id"]
    k = kms.create_key(Description="policy")["KeyMetadata"]
    policy = json.loads(kms.get_key_policy(KeyId=k["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
    with pytest.raises(ClientError) as e:
        kms.get_key_policy(KeyId=k["KeyId"], PolicyName="other")
    assert error_code(e) == "NotFoundException"

    # The provider's session, cross-account by key ARN: refused until the policy names it.
    provider_kms = client("kms", world["broker"])
    with pytest.raises(ClientError) as e:
        provider_kms.encrypt(KeyId=k["Arn"], Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        provider_kms.encrypt(KeyId=k["KeyId"], Plaintext=b"x")  # a bare id means the caller's account
    assert error_code(e) == "NotFoundException"
    root = {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}
    provider = {"Sid": "provider", "Effect": "Allow", "Principal": {"AWS": world["broker_arn"]}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}
    kms.put_key_policy(KeyId=k["KeyId"], PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [root, provider]}))
    blob = provider_kms.encrypt(KeyId=k["Arn"], Plaintext=b"x")["CiphertextBlob"]
    assert provider_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    with pytest.raises(ClientError) as e:
        provider_kms.generate_data_key(KeyId=k["Arn"], KeySpec="AES_256")
    assert error_code(e) == "AccessDeniedException"

    # A key-policy Deny revokes even the key's own account.
    deny = {"Sid": "deny", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}
    kms.put_key_policy(KeyId=k["KeyId"], PolicyName="default", Policy=json.dumps({"Statement": [root, provider, deny]}))
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "AccessDeniedException"
    assert "explicit deny" in str(e.value)

    # The lockout safety check, and its bypass.
    lockout = json.dumps({"Statement": [provider]})
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=k["KeyId"], PolicyName="default", Policy=lockout)
    assert error_code(e) == "MalformedPolicyDocumentException"
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=k["KeyId"], PolicyName="default", Policy="{not json")
    assert error_code(e) == "MalformedPolicyDocumentException"
    kms.put_key_policy(KeyId=k["KeyId"], PolicyName="default", Policy=lockout, BypassPolicyLockoutSafetyCheck=True)
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=k["KeyId"])
    assert error_code(e) == "AccessDeniedException"


def test_kms_encryption_context_conditions(world):
    kms = client("kms", world["customer"])
    account = world["customer"]["account_id"]
    policy = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": "t1"}},
            },
        ]
    }
    k = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    ok = kms.encrypt(KeyId=k, Plaintext=b"x", EncryptionContext={"tenant": "t1"})["CiphertextBlob"]
    other = kms.encrypt(KeyId=k, Plaintext=b"x", EncryptionContext={"tenant": "t2"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ok, EncryptionContext={"tenant": "t1"})["Plaintext"] == b"x"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=other, EncryptionContext={"tenant": "t2"})
    assert error_code(e) == "AccessDeniedException"


def test_unsupported_key_specs_are_refused(world):
    kms = client("kms", world["customer"])
    with pytest.raises(ClientError) as e:
        kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    assert error_code(e) == "UnsupportedOperationException"


# ---- time: last, since it moves the clock ------------------------------------------------


def test_sessions_expire_and_deletion_windows_pass(world):
    kms = client("kms", world["customer"])
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/doomed", TargetKeyId=k)
    kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)
    sts = client("sts", world["broker"])
    role_arn = f"arn:aws:iam::{world['customer']['account_id']}:role/byok-key-management"
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="byok-data", ExternalId="ext-123456", DurationSeconds=900)["Credentials"]
    session = {"access_key_id": out["AccessKeyId"], "secret_access_key": out["SecretAccessKey"], "session_token": out["SessionToken"]}
    client("sts", session).get_caller_identity()

    admin("POST", "/_localcloud/clock", {"advance_seconds": 901})
    for service, call in [("sts", lambda c: c.get_caller_identity()), ("kms", lambda c: c.list_keys())]:
        with pytest.raises(ClientError) as e:
            call(client(service, session))
        assert error_code(e) == "ExpiredTokenException"
    with pytest.raises(ClientError) as e:
        client("iam", session).list_roles()
    assert error_code(e) == "ExpiredToken"

    admin("POST", "/_localcloud/clock", {"advance_seconds": 7 * 86400})
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=k)
    assert error_code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="alias/doomed")
    assert error_code(e) == "NotFoundException"
    assert k not in [x["KeyId"] for x in kms.list_keys(Limit=1000)["Keys"]]


# ---- Who may use a key: key policy and identity policies together ---------------------------
# Written from AWS's documentation of how access to a KMS key is determined:
# https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html (the key policy
# must allow; a statement naming the account root enables IAM policies; an explicit deny
# anywhere wins), https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-cross-account.html
# (cross-account use needs the key policy *and* an IAM policy in the caller's account), and
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html.


def _role_session(world, account_creds, name, trust_doc=None):
    iam = client("iam", account_creds)
    doc = trust_doc or trust("Allow", world["broker_arn"], "ext-policies-1")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc)["Role"]["Arn"]
    broker = admin("POST", "/_localcloud/role-credentials", {"role_arn": world["broker_arn"]})  # fresh: earlier tests move the clock
    sts = client("sts", broker)
    out = sts.assume_role(RoleArn=arn, RoleSessionName="byok-probe", ExternalId="ext-policies-1")["Credentials"]
    creds = {"access_key_id": out["AccessKeyId"], "secret_access_key": out["SecretAccessKey"], "session_token": out["SessionToken"]}
    return iam, arn, creds


def test_identity_and_key_policies_decide_together(world):
    customer = world["customer"]
    account = customer["account_id"]
    kms = client("kms", customer)
    key = kms.create_key(Description="default policy")["KeyMetadata"]
    iam, role_arn, session = _role_session(world, customer, "policy-subject")
    role_kms = client("kms", session)

    # Same account, default key policy (root only), no identity policy: refused, as on AWS.
    with pytest.raises(ClientError) as e:
        role_kms.describe_key(KeyId=key["Arn"])
    assert error_code(e) == "AccessDeniedException"

    # An inline identity policy grants it (the root statement enables IAM policies).
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"], "Resource": key["Arn"]}]}
    iam.put_role_policy(RoleName="policy-subject", PolicyName="use", PolicyDocument=json.dumps(allow))
    assert iam.list_role_policies(RoleName="policy-subject")["PolicyNames"] == ["use"]
    assert iam.get_role_policy(RoleName="policy-subject", PolicyName="use")["PolicyDocument"] == allow
    role_kms.describe_key(KeyId=key["Arn"])
    blob = role_kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["CiphertextBlob"]

    # An explicit Deny in an identity policy wins over any Allow.
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]}
    iam.put_role_policy(RoleName="policy-subject", PolicyName="deny", PolicyDocument=json.dumps(deny))
    with pytest.raises(ClientError) as e:
        role_kms.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "AccessDeniedException"
    iam.delete_role_policy(RoleName="policy-subject", PolicyName="deny")
    assert role_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    iam.delete_role_policy(RoleName="policy-subject", PolicyName="use")
    with pytest.raises(ClientError) as e:
        iam.delete_role_policy(RoleName="policy-subject", PolicyName="use")
    assert error_code(e) == "NoSuchEntity"

    # NotResource: everything but this key.
    not_this = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "NotResource": key["Arn"]}]}
    iam.put_role_policy(RoleName="policy-subject", PolicyName="not-this", PolicyDocument=json.dumps(not_this))
    with pytest.raises(ClientError) as e:
        role_kms.describe_key(KeyId=key["Arn"])
    assert error_code(e) == "AccessDeniedException"
    other = kms.create_key(Description="another")["KeyMetadata"]
    role_kms.describe_key(KeyId=other["Arn"])
    iam.delete_role_policy(RoleName="policy-subject", PolicyName="not-this")

    # A customer-managed policy, attached and detached.
    managed = client("iam", customer).create_policy(PolicyName="kms-describe", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]}))["Policy"]
    assert managed["Arn"] == f"arn:aws:iam::{account}:policy/kms-describe"
    iam.attach_role_policy(RoleName="policy-subject", PolicyArn=managed["Arn"])
    attached = iam.list_attached_role_policies(RoleName="policy-subject")["AttachedPolicies"]
    assert attached == [{"PolicyName": "kms-describe", "PolicyArn": managed["Arn"]}]
    role_kms.describe_key(KeyId=key["Arn"])
    iam.detach_role_policy(RoleName="policy-subject", PolicyArn=managed["Arn"])
    with pytest.raises(ClientError) as e:
        role_kms.describe_key(KeyId=key["Arn"])
    assert error_code(e) == "AccessDeniedException"

    # The key policy naming the role directly needs no identity policy (same account), and its
    # encryption-context condition is enforced.
    root = {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}
    grant = {"Sid": "use", "Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": ["kms:DescribeKey", "kms:Encrypt"], "Resource": "*",
             "Condition": {"StringEqualsIfExists": {"kms:EncryptionContext:byok:tenant": "acme"}}}
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps({"Statement": [root, grant]}))
    role_kms.describe_key(KeyId=key["Arn"])
    role_kms.encrypt(KeyId=key["Arn"], Plaintext=b"x", EncryptionContext={"byok:tenant": "acme"})
    with pytest.raises(ClientError) as e:
        role_kms.encrypt(KeyId=key["Arn"], Plaintext=b"x", EncryptionContext={"byok:tenant": "other"})
    assert error_code(e) == "AccessDeniedException"

    # Identity policies must not name a principal.
    with pytest.raises(ClientError) as e:
        iam.put_role_policy(RoleName="policy-subject", PolicyName="bad", PolicyDocument=json.dumps(
            {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}))
    assert error_code(e) == "MalformedPolicyDocument"


def test_cross_account_use_needs_both_policies(world):
    customer = world["customer"]
    account = customer["account_id"]
    kms = client("kms", customer)
    key = kms.create_key(Description="cross-account")["KeyMetadata"]
    provider = world["provider"]
    piam = client("iam", provider)
    ec2 = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    arn = piam.create_role(RoleName="bare-broker", AssumeRolePolicyDocument=ec2)["Role"]["Arn"]
    bare = admin("POST", "/_localcloud/role-credentials", {"role_arn": arn})
    bare_kms = client("kms", bare)
    root = {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}
    external = {"Sid": "provider-account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{provider['account_id']}:root"}, "Action": "kms:DescribeKey", "Resource": "*"}
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps({"Statement": [root, external]}))
    # The key policy allows the provider's account, but the role has no identity policy: refused.
    with pytest.raises(ClientError) as e:
        bare_kms.describe_key(KeyId=key["Arn"])
    assert error_code(e) == "AccessDeniedException"
    # With its own account's identity policy too: allowed.
    piam.put_role_policy(RoleName="bare-broker", PolicyName="kms", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]}))
    bare2 = admin("POST", "/_localcloud/role-credentials", {"role_arn": arn})
    client("kms", bare2).describe_key(KeyId=key["Arn"])
