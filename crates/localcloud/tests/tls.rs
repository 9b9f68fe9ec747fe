//! `localcloud serve --tls-cert/--tls-key`: HTTPS as real AWS endpoints serve it, for the aws
//! CLI (`--ca-bundle`), boto3 (`verify=`) and the AWS SDK for Rust (a trust store with the CA).
//! A client that does not trust the CA is refused; certificates are made here, at test time.

use std::sync::Arc;

use aws_credential_types::Credentials;
use byok_testkit::{Creds, aws};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::support::venv;

/// A CA, and a server certificate for 127.0.0.1 and localhost it signed: (CA PEM, cert PEM, key PEM).
fn certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "localcloud test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("params");
    server.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &issuer).expect("certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_for_the_aws_cli_boto3_and_the_rust_sdk() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = certificates();
    let (ca_file, cert_file, key_file) = (dir.path().join("ca.pem"), dir.path().join("lc.crt"), dir.path().join("lc.key"));
    std::fs::write(&ca_file, &ca).expect("ca");
    std::fs::write(&cert_file, &cert).expect("cert");
    std::fs::write(&key_file, &key).expect("key");
    let cloud = Arc::new(localcloud::Cloud::open(None).expect("cloud"));
    let account = cloud.create_account("tls-customer", None).expect("account");
    let tls = localcloud::server::tls_acceptor(&cert_file, &key_file).expect("TLS");
    let lc = localcloud::server::spawn_with("127.0.0.1:0".parse().expect("addr"), cloud, Some(tls)).await.expect("localcloud");
    let endpoint = lc.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let creds = Creds {
        access_key_id: account.access_key_id.clone(),
        secret_access_key: account.secret_access_key.to_string(),
        session_token: None,
    };

    // The aws CLI: with the CA bundle it works; without, the certificate is not trusted.
    let ca_arg = ca_file.display().to_string();
    let who = aws(&endpoint, &creds, "us-east-1", &["--ca-bundle", &ca_arg, "sts", "get-caller-identity"]).await;
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
    assert!(String::from_utf8_lossy(&who.stdout).contains(&account.account_id));
    let key = aws(&endpoint, &creds, "eu-west-1", &["--ca-bundle", &ca_arg, "kms", "create-key"]).await;
    assert!(key.status.success(), "{}", String::from_utf8_lossy(&key.stderr));
    let untrusted = aws(&endpoint, &creds, "us-east-1", &["sts", "get-caller-identity"]).await;
    assert!(!untrusted.status.success());
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains("SSL") || said.contains("certificate"), "{said}");

    // boto3 with verify= the CA.
    let script = r#"
import os, sys, boto3
kms = boto3.client("kms", endpoint_url=os.environ["LC"], region_name="us-east-1", verify=os.environ["CA"],
                   aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])
key = kms.create_key()["KeyMetadata"]["KeyId"]
blob = kms.encrypt(KeyId=key, Plaintext=b"over tls")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"
print("boto3 ok")
"#;
    let out = tokio::process::Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .env("LC", &endpoint)
        .env("CA", &ca_file)
        .env("AK", &creds.access_key_id)
        .env("SK", &creds.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("python");
    assert!(String::from_utf8_lossy(&out.stdout).contains("boto3 ok"), "{}", String::from_utf8_lossy(&out.stderr));

    // The AWS SDK for Rust with a trust store holding the CA.
    use aws_smithy_http_client::{Builder, tls};
    let trust = tls::TlsContext::builder()
        .with_trust_store(tls::TrustStore::empty().with_pem_certificate(ca.into_bytes()))
        .build()
        .expect("TLS context");
    let http = Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc)).tls_context(trust).build_https();
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .http_client(http)
        .credentials_provider(Credentials::new(&creds.access_key_id, &creds.secret_access_key, None, None, "tls-test"))
        .build();
    let who = aws_sdk_sts::Client::from_conf(conf).get_caller_identity().send().await.expect("GetCallerIdentity over HTTPS");
    assert_eq!(who.account(), Some(account.account_id.as_str()));
    lc.stop().await.expect("stop");
}
