//! `byok webhook`: endpoints that receive a tenant's events (signed per Standard Webhooks):
//! add, list, remove, rotate-secret, test, deliveries, redeliver. With `--tenant` it works on
//! that tenant's endpoints (its admin's token or the operator's); without, on the operator's
//! (every tenant's events and the operator's own; the operator reaches any endpoint by id).

use byok_api::NewWebhookRequest;
use clap::Subcommand;

use crate::client::Client;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Add an endpoint; prints its id and its signing secret (shown this once).
    Add {
        /// `https://…` (plain http only to this machine).
        url: String,
        /// The tenant whose events it receives; absent: the operator's endpoint.
        #[arg(long)]
        tenant: Option<String>,
        /// An event type to receive (repeat it); absent: all. tenant.revoked, tenant.reminder,
        /// tenant.restored, tenant.destroyed, restoration.refused, key.rotated, key.rekeyed,
        /// hold.opened, hold.released, hold.dismissed, hold.cleared, webhook.test.
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// A tenant's endpoints (`--tenant`), or every endpoint.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    Remove {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// A new signing secret (printed once); the old one keeps signing for a day.
    RotateSecret {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Send a `webhook.test` event to the endpoint.
    Test {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The endpoint's deliveries, newest first.
    Deliveries {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send a delivery again (a dead one, once the endpoint works).
    Redeliver {
        id: String,
        /// The delivery's seq (`evt_SEQ`).
        seq: i64,
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn accepted(answer: &crate::client::Answer, expected: u16) -> Result<(), CliError> {
    if answer.status == expected { Ok(()) } else { Err(answer.error()) }
}

pub(crate) async fn run(client: Client, command: WebhookCommand) -> Result<(), CliError> {
    match command {
        WebhookCommand::Add { url, tenant, events } => {
            let added = client.add_webhook(tenant.as_deref(), &NewWebhookRequest { url, events }).await?;
            println!("webhook {} → {}", added.webhook.id, added.webhook.url);
            println!("secret: {}", added.secret);
            println!("(shown once: verify each delivery's webhook-signature with it, per Standard Webhooks)");
            Ok(())
        }
        WebhookCommand::List { tenant } => {
            for w in client.webhooks(tenant.as_deref()).await? {
                let events = if w.events.is_empty() { "all events".to_string() } else { w.events.join(",") };
                println!(
                    "{} {} {} {} ({} secret(s) in force)",
                    w.id,
                    w.tenant.as_deref().unwrap_or("(operator)"),
                    w.url,
                    events,
                    w.secrets_in_force
                );
            }
            Ok(())
        }
        WebhookCommand::Remove { id, tenant } => {
            accepted(&client.remove_webhook(tenant.as_deref(), &id).await?, 204)?;
            println!("webhook {id} removed");
            Ok(())
        }
        WebhookCommand::RotateSecret { id, tenant } => {
            let rotated = client.rotate_webhook_secret(tenant.as_deref(), &id).await?;
            println!("secret: {}", rotated.secret);
            println!("(the previous secret keeps signing for a day: switch the receiver within it)");
            Ok(())
        }
        WebhookCommand::Test { id, tenant } => {
            accepted(&client.test_webhook(tenant.as_deref(), &id).await?, 202)?;
            println!("test event queued for webhook {id}");
            Ok(())
        }
        WebhookCommand::Deliveries { id, tenant, limit } => {
            for d in client.webhook_deliveries(tenant.as_deref(), &id, limit).await? {
                let error = d.last_error.map(|e| format!(" ({e})")).unwrap_or_default();
                println!("{} {} {} attempts={}{error}", d.event_id, d.event_type, d.status, d.attempts);
            }
            Ok(())
        }
        WebhookCommand::Redeliver { id, seq, tenant } => {
            accepted(&client.redeliver(tenant.as_deref(), &id, seq).await?, 202)?;
            println!("evt_{seq} queued again for webhook {id}");
            Ok(())
        }
    }
}
