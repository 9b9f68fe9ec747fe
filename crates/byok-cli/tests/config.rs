//! Configuration in two stages: flags and environment over the TOML file over the defaults,
//! validated once.

use byok_cli::serve::{Aws, ServeArgs, ServeParams};

#[test]
fn file_then_flags_then_defaults() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("byok.toml");
    std::fs::write(
        &path,
        r#"
listen = "127.0.0.1:9090"
role_name = "atlassian-key-management"
alias_prefix = "alias/cryptor-"
cache_ttl_seconds = 120
monitor_interval_seconds = 1
product_name = "Acme Cloud"

[locations]
eu = ["eu-central-1", "eu-west-1"]
mars = ["us-east-1"]
"#,
    )
    .expect("write");
    let params = ServeParams::from_args(ServeArgs { config: Some(path.clone()), cache_ttl_seconds: Some(60), ..ServeArgs::default() })
        .expect("valid");
    assert_eq!(params.listen.to_string(), "127.0.0.1:9090", "from the file");
    assert_eq!(params.role_name, "atlassian-key-management");
    assert_eq!(params.alias_prefix, "alias/cryptor-");
    assert_eq!(params.cache_ttl.as_secs(), 60, "the flag wins over the file");
    assert_eq!(params.monitor_interval.as_secs(), 1);
    assert!(params.locations.get("mars").is_ok() && params.locations.get("us").is_err(), "the file's table replaces the defaults");
    assert!(matches!(params.aws, Aws::Embedded(_)));
    assert_eq!(params.grace_days, 15, "a default");
    assert_eq!(params.product_name, "Acme Cloud", "the console's name, from the file");
    let branded = ServeParams::from_args(ServeArgs { product_name: Some("Initech".into()), ..ServeArgs::default() }).expect("valid");
    assert_eq!(branded.product_name, "Initech");
    assert_eq!(ServeParams::from_args(ServeArgs::default()).expect("valid").product_name, "byok", "the default");

    for (toml, why) in [
        ("cache_ttl_seconds = 0", "TTL"),
        ("monitor_interval_seconds = 0", "monitor interval"),
        ("grace_days = 0", "grace period"),
        ("surprise = 1", "unknown field"),
        ("aws_endpoint = \"ftp://kms.example\"", "http://"),
        ("real_aws = true", "--provider-role-arn"),
        ("[locations]\nempty = []", "no regions"),
        ("product_name = \"\"", "--product-name"),
    ] {
        std::fs::write(&path, toml).expect("write");
        let err = ServeParams::from_args(ServeArgs { config: Some(path.clone()), ..ServeArgs::default() }).expect_err(toml);
        assert!(err.to_string().contains(why), "{toml}: {err}");
    }
}
