//! Erasure that reaches backups: a `pg_dump` taken while a tenant is active, restored after the
//! tenant was destroyed, gives a broker that cannot open the tenant's data — even with the
//! customer's role and keys all re-enabled — because every wrapped key in it is sealed under a
//! provider-held key that the destruction disabled and scheduled for deletion. Without that
//! layer the restored rows would hold customer-wrapped keys the re-enabled customer key opens.

use std::process::Command;
use std::sync::Arc;

use byok_broker::{Broker, BrokerConfig, BrokerError, Clock, ManualClock, monitor};
use byok_domain::{TenantId, TenantState};
use byok_store::SqlStore;
use byok_testkit::Cloud;
use time::OffsetDateTime;

use crate::localcloud_kms;
use crate::revocation::canary_config;

const ROLE: &str = "byok-key-management";

fn psql(url: &str, args: &[&str]) -> String {
    let out = Command::new("psql").arg(url).args(["-v", "ON_ERROR_STOP=1", "-q"]).args(args).output().expect("psql (PostgreSQL's client)");
    assert!(out.status.success(), "psql {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_after_destruction_opens_nothing() {
    let mut pg = crate::PgSchema::new("byok_backup").await;
    let (base, schema, url) = (pg.base.clone(), pg.schema.clone(), pg.url.clone());
    let tag = schema.trim_start_matches("byok_backup_").to_string();

    let cloud = Cloud::start().await;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let config = || {
        let mut config = BrokerConfig::new(cloud.provider_role_arn.parse().expect("arn"));
        config.grace_period = time::Duration::seconds(2);
        config
    };
    let canary = canary_config(&cloud.canary().await);
    let mut first = config();
    first.canary = Some(canary.clone());
    let broker =
        Arc::new(Broker::new(first, Arc::new(SqlStore::connect(&url).await.expect("store")), localcloud_kms(&cloud).await, clock.clone()));
    let customer = cloud.customer("customer").await;
    let tenant: TenantId = "acme".parse().expect("id");
    let added = broker.add_tenant(&tenant, "de", &customer.account.parse().expect("account")).await.expect("add");
    let external_id = added.instructions.external_id.clone().expect("a BYOK tenant has an external id");
    customer.create_role(ROLE, &cloud.provider_role_arn, Some(&external_id)).await;
    let key_arn = customer.create_key("eu-central-1", &added.instructions.alias).await;
    assert!(broker.verify_tenant(&tenant).await.expect("verify").ok);
    let record = broker.encrypt(&tenant, b"r1", b"kept in a backup").await.expect("encrypt");

    // The nightly backup, taken while the tenant is active.
    let dump = tempfile::NamedTempFile::new().expect("dump file");
    let out = Command::new("pg_dump")
        .args(["--no-owner", "--schema", &schema, "--file"])
        .arg(dump.path())
        .arg(&base)
        .output()
        .expect("pg_dump (PostgreSQL's client)");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));

    // The customer revokes; the grace period (2 s here, on PostgreSQL's clock) passes; the
    // tenant is destroyed.
    clock.advance(OffsetDateTime::now_utc() - clock.now());
    customer.set_trust(ROLE, "Deny", &cloud.provider_role_arn, Some(&external_id)).await;
    let mut pass = monitor::run_once(&broker).await;
    assert_eq!(pass.revoked, ["acme"]);
    // On a loaded machine the revoking pass itself can outlast the 2 s grace period (its
    // detection time is the test clock's, the deadline PostgreSQL's): then that same pass
    // destroys. Otherwise a later one does; a pass whose last look at the provider fails (the
    // test's AWS calls time out at 700 ms) postpones the destruction, as in production.
    if pass.destroyed.is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        pass = monitor::run_once(&broker).await;
    }
    for _ in 0..10 {
        if !pass.destroyed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        pass = monitor::run_once(&broker).await;
    }
    assert_eq!(pass.destroyed, ["acme"], "{pass:?} {:?}", broker.tenant(&tenant).await.expect("t").state);

    // The backup restored into a database of its own; the customer re-enables everything.
    let restored_db = format!("byok_restored_{tag}");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {restored_db}"))).execute(&mut pg.admin).await.expect("database");
    let restored_base = match base.rfind('/') {
        Some(at) => format!("{}/{restored_db}{}", &base[..at], base[at..].find('?').map(|q| &base[at + q..]).unwrap_or("")),
        None => panic!("a database URL ends with /DATABASE: {base}"),
    };
    psql(&restored_base, &["-f", &dump.path().display().to_string()]);
    customer.set_trust(ROLE, "Allow", &cloud.provider_role_arn, Some(&external_id)).await;
    customer.aws("eu-central-1", &["kms", "enable-key", "--key-id", &key_arn]).await;
    let restored_url = crate::PgSchema::in_schema(&restored_base, &schema);
    let mut second = config();
    second.canary = Some(canary);
    let restored =
        Broker::new(second, Arc::new(SqlStore::connect(&restored_url).await.expect("restored store")), localcloud_kms(&cloud).await, clock);
    assert_eq!(restored.tenant(&tenant).await.expect("tenant").state, TenantState::Active, "the backup predates the revocation");
    let opened = restored.decrypt(&tenant, b"r1", &record).await;
    assert!(
        matches!(opened, Err(BrokerError::KeyServiceUnavailable(_))),
        "the restored rows open nothing, customer key re-enabled or not: {:?}",
        opened.as_ref().map(|p| p.as_slice().len())
    );

    drop(restored);
    drop(broker);
    let drop = format!("DROP DATABASE {restored_db} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut pg.admin).await.expect("drop database");
    pg.drop().await;
}
