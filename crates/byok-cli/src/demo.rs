//! `byok demo`: the customer guide's story (`docs/customer-guide.md`) end to end, on an
//! embedded localcloud in a temporary directory, printing each step and how long it took.
//!
//! The customer's actions are real signed AWS API calls to localcloud (the same requests the
//! `aws` command shown beside each step sends); the provider's are the broker's own. With
//! `--mode cmk` the same story with customer-managed keys: no role, each key's policy grants the
//! provider, revoking and restoring are the keys alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use byok_broker::{Broker, BrokerError, OffsetClock};
use byok_domain::{TenantId, TenantState};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::provider::{AwsKeys, form, signed_request};
use crate::serve::{self, ServeArgs, ServeParams};

const ROLE: &str = "atlassian-key-management";
/// The CMK tenant's context tag.
const CONTEXT_TAG: &str = "Acme01";

/// Which of the vendor's two models the demo plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoMode {
    /// Role-based BYOK, the seed's procedure.
    Byok,
    /// Customer-managed keys, by key policy alone.
    Cmk,
}
const REGIONS: [&str; 2] = ["eu-central-1", "eu-west-1"];

/// The customer's AWS account, driven through its root credentials.
struct Customer {
    endpoint: String,
    account: String,
    access_key_id: String,
    secret: zeroize::Zeroizing<String>,
}

impl Customer {
    async fn iam(&self, params: &[(&str, &str)]) -> Result<String, CliError> {
        let body = form(params);
        let keys = AwsKeys { access_key_id: &self.access_key_id, secret: &self.secret };
        let (status, text) = signed_request(
            &self.endpoint,
            &keys,
            "us-east-1",
            "iam",
            &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body.into_bytes(),
        )
        .await?;
        if status == 200 { Ok(text) } else { Err(CliError::Demo(format!("IAM refused ({status}): {text}"))) }
    }

    async fn kms(&self, region: &str, operation: &str, input: Value) -> Result<Value, CliError> {
        let target = format!("TrentService.{operation}");
        let keys = AwsKeys { access_key_id: &self.access_key_id, secret: &self.secret };
        let headers = [("x-amz-target", target.as_str()), ("content-type", "application/x-amz-json-1.1")];
        let (status, text) = signed_request(&self.endpoint, &keys, region, "kms", &headers, input.to_string().into_bytes()).await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 200 { Ok(value) } else { Err(CliError::Demo(format!("KMS {operation} in {region} refused ({status}): {text}"))) }
    }

    async fn set_trust(&self, policy: &Value) -> Result<(), CliError> {
        self.iam(&[
            ("Action", "UpdateAssumeRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", ROLE),
            ("PolicyDocument", &policy.to_string()),
        ])
        .await
        .map(|_| ())
    }

    async fn key_action(&self, region: &str, key_arn: &str, operation: &str) -> Result<(), CliError> {
        self.kms(region, operation, json!({ "KeyId": key_arn })).await.map(|_| ())
    }
}

struct Narrator {
    step: usize,
    started: Instant,
}

impl Narrator {
    fn step(&mut self, what: &str) {
        self.step += 1;
        self.started = Instant::now();
        println!("\n[{:>2}] {what}", self.step);
    }

    fn aws(&self, command: &str) {
        println!("     $ aws {command}");
    }

    fn result(&self, what: impl std::fmt::Display) {
        println!("     → {what}  ({})", human(self.started.elapsed()));
    }
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{:.2} s", d.as_secs_f64()) }
}

async fn wait_until<F: std::future::Future<Output = bool>>(limit: Duration, mut done: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn read_all(broker: &Broker, tenant: &TenantId, records: &[(String, Vec<u8>)]) -> Result<usize, BrokerError> {
    for (id, record) in records {
        broker.decrypt(tenant, id.as_bytes(), record).await?;
    }
    Ok(records.len())
}

/// Plays the story; an error names the step that failed.
pub async fn run(mode: DemoMode) -> Result<(), CliError> {
    let cmk = mode == DemoMode::Cmk;
    let dir = tempfile::tempdir().map_err(CliError::io("cannot make a temporary directory"))?;
    let clock = Arc::new(OffsetClock::default());
    let mut n = Narrator { step: 0, started: Instant::now() };
    println!("byok demo: the customer procedure \"Restore access to your BYOK encryption keys\", end to end.");
    if cmk {
        println!("Customer-managed keys: no role; each key's policy grants the provider, under the tenant's context tag {CONTEXT_TAG}.");
    }
    println!("Everything runs here: an embedded localcloud plays the customer's AWS account.");

    n.step("The provider starts byok (broker + embedded localcloud, probing every second)");
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".parse().map_err(|_| CliError::Config("address".into()))?),
        localcloud_listen: Some("127.0.0.1:0".parse().map_err(|_| CliError::Config("address".into()))?),
        data_dir: Some(dir.path().to_path_buf()),
        role_name: Some(ROLE.into()),
        alias_prefix: Some("alias/cryptor-".into()),
        monitor_interval_seconds: Some(1),
        ..ServeArgs::default()
    };
    let mut params = ServeParams::from_args(args)?;
    params.clock = clock.clone();
    let running = serve::start(params).await?;
    let broker = running.broker.clone();
    let endpoint = running.aws_endpoint.clone().ok_or_else(|| CliError::Demo("no localcloud".into()))?;
    n.result(format!("API {}, localcloud {endpoint}, provider {}", running.api_url(), running.provider_role_arn));

    let admin = crate::provider::LocalcloudAdmin { endpoint: endpoint.clone(), token: running.localcloud_admin_token.clone() };
    let (status, body) = admin.request("POST", "/_localcloud/accounts", Some(&json!({ "name": "acme-corp" }))).await?;
    if status != 201 {
        return Err(CliError::Demo(format!("could not create the customer's account: {body}")));
    }
    let customer = Customer {
        endpoint: endpoint.clone(),
        account: body["account_id"].as_str().unwrap_or_default().into(),
        access_key_id: body["access_key_id"].as_str().unwrap_or_default().into(),
        secret: zeroize::Zeroizing::new(body["secret_access_key"].as_str().unwrap_or_default().into()),
    };
    let tenant: TenantId = "acme".parse()?;

    n.step(&format!("Onboarding: tenant acme, location eu ({}), customer account {}", REGIONS.join(" + "), customer.account));
    let key_mode = match mode {
        DemoMode::Byok => byok_domain::KeyMode::Byok,
        DemoMode::Cmk => byok_domain::KeyMode::Cmk { context_tag: Some(CONTEXT_TAG.parse()?) },
    };
    let added = broker.add_tenant_in_mode(&tenant, "eu", &customer.account.parse()?, key_mode).await?;
    // The role and its trust policy: BYOK only.
    let allow = added.instructions.trust_policy.clone();
    if let Some(allow) = &allow {
        n.aws(&format!("iam create-role --role-name {ROLE} --assume-role-policy-document file://byok-trust-policy-acme.json"));
        customer
            .iam(&[
                ("Action", "CreateRole"),
                ("Version", "2010-05-08"),
                ("RoleName", ROLE),
                ("AssumeRolePolicyDocument", &allow.to_string()),
            ])
            .await?;
    }
    let mut keys = Vec::new();
    for region in REGIONS {
        n.aws(&format!(
            "kms create-key --region {region} --policy file://byok-key-policy-acme.json; aws kms create-alias --region {region} --alias-name {}",
            added.instructions.alias
        ));
        let key = customer
            .kms(
                region,
                "CreateKey",
                json!({ "Description": "cryptor key for tenant acme", "Policy": added.instructions.key_policy.to_string() }),
            )
            .await?;
        let arn = key["KeyMetadata"]["Arn"].as_str().unwrap_or_default().to_string();
        customer.kms(region, "CreateAlias", json!({ "AliasName": added.instructions.alias, "TargetKeyId": arn })).await?;
        keys.push(arn);
    }
    let verification = broker.verify_tenant(&tenant).await?;
    if !verification.ok {
        return Err(CliError::Demo(format!("verification failed: {verification:?}")));
    }
    n.result(match cmk {
        true => format!(
            "verified in every region (described, wrapped and unwrapped as the provider itself, context tag {CONTEXT_TAG}): tenant active"
        ),
        false => "verified in every region: tenant active".to_string(),
    });

    n.step("The product writes records");
    let mut records = Vec::new();
    for i in 1..=3 {
        let id = format!("issue-{i}");
        let record = broker.encrypt(&tenant, id.as_bytes(), format!("confidential issue #{i}").as_bytes()).await?;
        records.push((id, record));
    }
    n.result(format!("{} records written and read back: {}", records.len(), read_all(&broker, &tenant, &records).await?));

    let deny = allow.clone().map(|mut deny| {
        deny["Statement"][0]["Effect"] = json!("Deny");
        deny
    });
    match &deny {
        Some(deny) => {
            n.step("The customer revokes: trust statement to Deny, keys disabled in both regions");
            n.aws(&format!("iam update-assume-role-policy --role-name {ROLE} --policy-document file://deny.json"));
            customer.set_trust(deny).await?;
        }
        None => n.step("The customer revokes: keys disabled in both regions (there is no role)"),
    }
    for (region, arn) in REGIONS.iter().zip(&keys) {
        n.aws(&format!("kms disable-key --region {region} --key-id {arn}"));
        customer.key_action(region, arn, "DisableKey").await?;
    }
    let revoked = wait_until(Duration::from_secs(30), || async {
        matches!(read_all(&broker, &tenant, &records).await, Err(BrokerError::Revoked { .. }))
    })
    .await;
    let state = broker.tenant(&tenant).await?.state;
    if !revoked {
        return Err(CliError::Demo(format!("the revocation was not detected within 30 s (state {})", state.name())));
    }
    if let TenantState::Revoked { deadline, .. } = state {
        n.result(format!("detected by the monitor; reads refused (tenant_keys_revoked); deadline {deadline}"));
    }
    // The monitor writes the revocation, then opens the ticket: reads can be refused a moment
    // before the ticket exists.
    wait_until(Duration::from_secs(10), || async { broker.tickets(Some(&tenant)).await.is_ok_and(|t| !t.is_empty()) }).await;
    let ticket = broker.tickets(Some(&tenant)).await?.into_iter().next().ok_or_else(|| CliError::Demo("no ticket was opened".into()))?;
    println!("     → ticket #{} opened: \"{}\"", ticket.id, ticket.title);

    match &allow {
        Some(allow) => {
            n.step("The customer restores one region only (steps 3-8, then 9-12 in eu-central-1) and says ready on the ticket");
            n.aws(&format!("iam update-assume-role-policy --role-name {ROLE} --policy-document file://allow.json"));
            customer.set_trust(allow).await?;
        }
        None => n.step("The customer restores one region only (steps 9-12 in eu-central-1) and says ready on the ticket"),
    }
    n.aws(&format!("kms enable-key --region eu-central-1 --key-id {}", keys[0]));
    customer.key_action("eu-central-1", &keys[0], "EnableKey").await?;
    let (_, partial) = broker.comment(ticket.id, byok_domain::Author::Customer, "ready").await?;
    let partial = partial.ok_or_else(|| CliError::Demo("the ready comment did not start a restoration".into()))?;
    if partial.restored {
        return Err(CliError::Demo("a restoration with eu-west-1 still disabled was accepted".into()));
    }
    n.result(format!("refused: {}", partial.missing.join("; ")));

    n.step("The customer enables the key in eu-west-1 (steps 9-12 again) and says ready on the ticket (step 13)");
    n.aws(&format!("kms enable-key --region eu-west-1 --key-id {}", keys[1]));
    customer.key_action("eu-west-1", &keys[1], "EnableKey").await?;
    let (_, done) = broker.comment(ticket.id, byok_domain::Author::Customer, "ready").await?;
    let done = done.ok_or_else(|| CliError::Demo("the ready comment did not start a restoration".into()))?;
    let back = read_all(&broker, &tenant, &records).await?;
    if !done.restored {
        return Err(CliError::Demo(format!("restoration refused: {:?}", done.missing)));
    }
    let (resolved, _) = broker.ticket(ticket.id).await?;
    n.result(format!("every region verified; access back; {back} records read; ticket #{} {}", resolved.id, resolved.status));

    n.step("The customer revokes again, and 16 days pass");
    match &deny {
        Some(deny) => customer.set_trust(deny).await?,
        None => customer.key_action(REGIONS[0], &keys[0], "DisableKey").await?,
    }
    let revoked = wait_until(Duration::from_secs(30), || async {
        matches!(broker.tenant(&tenant).await.map(|t| t.state), Ok(TenantState::Revoked { .. }))
    })
    .await;
    if !revoked {
        return Err(CliError::Demo("the second revocation was not detected".into()));
    }
    clock.advance(time::Duration::days(16));
    let destroyed = byok_broker::monitor::run_once(&broker).await.destroyed;
    n.result(format!("deadline passed: destroyed {destroyed:?}; the wrapped tenant keys are erased"));

    n.step("The customer re-enables everything and says ready");
    match &allow {
        Some(allow) => customer.set_trust(allow).await?,
        None => customer.key_action(REGIONS[0], &keys[0], "EnableKey").await?,
    }
    let refused = broker.restore(&tenant).await.err().map(|e| e.to_string()).unwrap_or_else(|| "accepted (this is a bug)".into());
    let read =
        read_all(&broker, &tenant, &records).await.err().map(|e| e.to_string()).unwrap_or_else(|| "data readable (this is a bug)".into());
    n.result(format!("{refused}\n       reads: {read}"));

    running.stop().await.map_err(CliError::io("stopping the broker"))?;
    println!("\nDone. The data directory was temporary and is gone.");
    Ok(())
}
