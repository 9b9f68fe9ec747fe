//! Delivering webhook events, on the leader, at least once and in order per endpoint.
//!
//! Each round (every second, see [`crate::node`]):
//! 1. audit entries after the dispatcher's cursor that are events ([`crate::webhook_events`])
//!    become one delivery per endpoint that wants them, written with the cursor's move in one
//!    transaction (a crash or a new leader neither loses nor doubles one);
//! 2. each endpoint's oldest pending delivery, when due, is POSTed, signed per Standard
//!    Webhooks, with the same id and body on every attempt. A 2xx delivers it and the endpoint's
//!    next one follows; anything else (an error status, a timeout, no connection) schedules
//!    another attempt with exponential backoff and jitter, and after a day of failures the
//!    delivery is dead (listed, redeliverable, alerted on) and the endpoint's next one goes.
//!
//! An endpoint that fails holds back only its own deliveries. The provider's own outage (its
//! network, its store) delays deliveries; it never drops or reorders one.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use byok_domain::{AlertKind, Attempt, Delivery, Webhook};
use byok_store::NewDelivery;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::metrics::OutcomeLabels;
use crate::webhook_events::{GIVE_UP_AFTER, backoff, body, event_type, signature};

/// How long one attempt may take, answer included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Audit entries read at a time.
const BATCH: i64 = 500;
/// Endpoints attempted at once.
const PARALLEL: usize = 16;

type HttpsClient = Client<byok_kms::https::Connector, Full<Bytes>>;

/// Why an attempt did not deliver (recorded on the delivery, shown by `byok webhook deliveries`).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("TLS cannot be set up: {0}")]
    Tls(String),
    #[error(transparent)]
    Secret(#[from] crate::webhook_events::BadSecret),
    #[error("bad request: {0}")]
    Request(String),
    #[error("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())]
    Timeout,
    #[error("cannot reach the endpoint: {0}")]
    Unreachable(String),
    #[error("the endpoint answered {0}")]
    Refused(http::StatusCode),
    #[error("the endpoint was removed")]
    Removed,
    #[error(transparent)]
    Email(#[from] crate::email::EmailError),
}

/// The sending client: rustls on aws-lc-rs with the platform's roots, pooled.
fn client() -> Result<&'static HttpsClient, DeliveryError> {
    static CLIENT: OnceLock<Result<HttpsClient, DeliveryError>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = byok_kms::https::connector(byok_kms::https::Roots::Platform).map_err(|e| DeliveryError::Tls(e.to_string()))?;
            Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(https))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One POST of a delivery: `Ok` on a 2xx, else why not.
async fn post(webhook: &Webhook, delivery: &Delivery, now: time::OffsetDateTime) -> Result<(), DeliveryError> {
    let secrets: Vec<&str> = webhook.signing_secrets(now).map(|s| s.secret.as_str()).collect();
    let id = delivery.message_id();
    let timestamp = now.unix_timestamp();
    let signed = signature(&secrets, &id, timestamp, &delivery.body)?;
    let request = http::Request::post(&webhook.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("byok/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signed)
        .body(Full::new(Bytes::from(delivery.body.clone())))
        .map_err(|e| DeliveryError::Request(e.to_string()))?;
    let client = client()?;
    let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request))
        .await
        .map_err(|_| DeliveryError::Timeout)?
        .map_err(|e| DeliveryError::Unreachable(e.to_string()))?;
    let status = answer.status();
    if status.is_success() { Ok(()) } else { Err(DeliveryError::Refused(status)) }
}

/// One signed POST of `body` to `url` (the audit sink's batches): `Ok` on a 2xx.
pub(crate) async fn post_signed(url: &str, secret: &str, id: &str, timestamp: i64, body: String) -> Result<(), DeliveryError> {
    let signed = signature(&[secret], id, timestamp, &body)?;
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("byok/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signed)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| DeliveryError::Request(e.to_string()))?;
    let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, client()?.request(request))
        .await
        .map_err(|_| DeliveryError::Timeout)?
        .map_err(|e| DeliveryError::Unreachable(e.to_string()))?;
    if answer.status().is_success() { Ok(()) } else { Err(DeliveryError::Refused(answer.status())) }
}

/// A jitter factor in [0.5, 1].
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut b);
    0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
}

impl Broker {
    /// One round of the dispatcher (the leader's): new events enqueued, due deliveries
    /// attempted, each endpoint's next one right after a success. How many were delivered.
    pub async fn deliver_webhooks(&self) -> Result<usize, BrokerError> {
        self.enqueue_webhook_events().await?;
        let mut delivered = 0;
        // Rounds until nothing more is due now (bounded: a busy endpoint does not hold the loop).
        for _ in 0..64 {
            let now = self.clock.now();
            let webhooks: HashMap<String, Webhook> = self.store.webhooks(None).await?.into_iter().map(|w| (w.id.clone(), w)).collect();
            let due: Vec<Delivery> = self.store.next_deliveries().await?.into_iter().filter(|d| d.next_attempt_at <= now).collect();
            if due.is_empty() {
                break;
            }
            let outcomes: Vec<Result<bool, BrokerError>> =
                futures_util::stream::iter(due).map(|d| self.attempt(&webhooks, d)).buffer_unordered(PARALLEL).collect().await;
            let round = outcomes.into_iter().collect::<Result<Vec<bool>, _>>()?;
            let moved = round.iter().filter(|ok| **ok).count();
            delivered += moved;
            if moved == 0 {
                break;
            }
        }
        self.note_dead_letters().await;
        Ok(delivered)
    }

    /// Audit entries after the cursor → deliveries, with the cursor's move, until caught up.
    async fn enqueue_webhook_events(&self) -> Result<(), BrokerError> {
        loop {
            let webhooks = self.store.webhooks(None).await?;
            let cursor = self.store.webhook_cursor().await?;
            let entries = self.store.audit(None, cursor, BATCH).await?;
            let Some(last) = entries.last().map(|e| e.seq) else { return Ok(()) };
            let mut deliveries = Vec::new();
            for entry in &entries {
                let Some(kind) = event_type(&entry.kind, &entry.reason) else { continue };
                let tenant = entry.tenant.as_deref().and_then(|t| t.parse().ok());
                // A test event goes to the one endpoint it names.
                let only = (kind == "webhook.test")
                    .then(|| serde_json::from_str::<serde_json::Value>(&entry.detail).ok()?["webhook"].as_str().map(str::to_string))
                    .flatten();
                for w in &webhooks {
                    let wanted = match &only {
                        Some(id) => *id == w.id,
                        None => kind != "webhook.test" && w.wants(kind, tenant.as_ref()),
                    };
                    if wanted {
                        deliveries.push(NewDelivery {
                            webhook: w.id.clone(),
                            seq: entry.seq,
                            tenant: tenant.clone(),
                            event_type: kind.to_string(),
                            body: body(kind, entry, self.checkpoint_of(entry).as_ref()),
                        });
                    }
                }
            }
            if !self.store.enqueue_deliveries(cursor, last, &deliveries, self.clock.now()).await? {
                // Another leader moved the cursor: it enqueued these.
                return Ok(());
            }
            if i64::try_from(entries.len()).unwrap_or(i64::MAX) < BATCH {
                return Ok(());
            }
        }
    }

    /// One attempt; whether it delivered.
    async fn attempt(&self, webhooks: &HashMap<String, Webhook>, delivery: Delivery) -> Result<bool, BrokerError> {
        let now = self.clock.now();
        let sent = match webhooks.get(&delivery.webhook) {
            Some(webhook) => match webhook.url.strip_prefix("mailto:") {
                Some(to) => {
                    crate::email::send(self.config.smtp.as_ref(), to, &delivery.message_id(), &delivery.body).await.map_err(Into::into)
                }
                None => post(webhook, &delivery, now).await,
            },
            None => Err(DeliveryError::Removed),
        };
        let attempt = match sent {
            Ok(()) => Attempt::Delivered,
            Err(e) if now - delivery.created_at >= GIVE_UP_AFTER => Attempt::Dead { error: e.to_string() },
            Err(e) => Attempt::Retry { at: now + backoff(delivery.attempts, jitter()), error: e.to_string() },
        };
        let outcome = match &attempt {
            Attempt::Delivered => "delivered",
            Attempt::Retry { error, .. } => {
                tracing::warn!(webhook = %delivery.webhook, event = %delivery.message_id(), attempts = delivery.attempts + 1, error = %error, "webhook delivery failed; will retry");
                "retry"
            }
            Attempt::Dead { error } => {
                tracing::error!(webhook = %delivery.webhook, event = %delivery.message_id(), error = %error, "webhook delivery given up after a day: dead letter");
                "dead"
            }
        };
        self.metrics.webhook_deliveries.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
        self.store.record_attempt(&delivery.webhook, delivery.seq, &attempt, now).await?;
        Ok(attempt == Attempt::Delivered)
    }

    /// Keeps the dead-letter gauge and the operator's alert in line with the store.
    async fn note_dead_letters(&self) {
        let dead = match self.store.dead_deliveries().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "could not count dead webhook deliveries");
                return;
            }
        };
        self.metrics.webhook_dead_letters.set(dead);
        let now = self.clock.now();
        let result = if dead > 0 {
            let body = format!(
                "{dead} webhook deliveries failed for a day and were given up. List them with `byok webhook deliveries`, fix the \
                 endpoint, then `byok webhook redeliver`."
            );
            self.store.open_alert(AlertKind::WebhookDeadLetters, "Webhook deliveries dead", &body, now).await.map(|_| ())
        } else {
            self.store.resolve_alert(AlertKind::WebhookDeadLetters, now).await.map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not update the webhook dead-letter alert");
        }
    }
}
