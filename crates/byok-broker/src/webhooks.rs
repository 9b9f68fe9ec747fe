//! Webhook endpoints, as a tenant admin or the operator manages them: add (the secret is shown
//! once), list, remove, rotate the secret (the old one keeps signing for a day, so receivers
//! can switch without losing an event), send a test event, list and redeliver deliveries.
//! Delivery itself is [`crate::webhook_delivery`].

use byok_domain::webhook::EVENT_TYPES;
use byok_domain::{Delivery, TenantId, Webhook, WebhookSecret};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::AuditEvent;
use crate::webhook_events::new_secret;

/// How long a rotated-out secret still signs.
pub const OLD_SECRET_SIGNS_FOR: time::Duration = time::Duration::days(1);

/// An endpoint as added: the secret is known only now.
#[derive(Clone)]
pub struct NewWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook").field("webhook", &self.webhook).field("secret", &"** redacted **").finish()
    }
}

/// An endpoint's address: HTTPS, or plain HTTP to this machine only (a local relay, a test);
/// and, when the operator lists the allowed hosts, one of them.
fn check_url(url: &str, allowed: Option<&[String]>) -> Result<(), BrokerError> {
    let bad = |why: &str| BrokerError::Invalid(format!("webhook url {url}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not an absolute URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') { host.split(']').next().map(|h| h.trim_start_matches('[')) } else { host.split(':').next() }
        .unwrap_or_default();
    if name.is_empty() || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(bad("no host, too long, or spaces"));
    }
    let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if let Some(hosts) = allowed {
        let name = name.to_ascii_lowercase();
        let listed = hosts.iter().any(|h| match h.strip_prefix('.') {
            Some(domain) => name == domain || name.ends_with(&format!(".{domain}")),
            None => name == *h,
        });
        if !listed {
            return Err(bad(&format!("{name} is not among the hosts webhooks may reach ({})", hosts.join(", "))));
        }
    }
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(bad("must be https:// (plain http only to this machine)")),
        _ => Err(bad("must be https://")),
    }
}

fn check_events(events: &[String]) -> Result<(), BrokerError> {
    match events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        Some(unknown) => Err(BrokerError::Invalid(format!("unknown event type {unknown}; known: {}", EVENT_TYPES.join(", ")))),
        None => Ok(()),
    }
}

impl Broker {
    /// Adds an endpoint for a tenant's events (`Some`) or the operator's (`None`: every
    /// tenant's and the operator's own). `events` empty: all of them.
    pub async fn add_webhook(&self, tenant: Option<&TenantId>, url: &str, events: Vec<String>) -> Result<NewWebhook, BrokerError> {
        check_url(url, self.config.webhook_hosts.as_deref())?;
        check_events(&events)?;
        if let Some(id) = tenant {
            self.tenant(id).await?;
        }
        let secret = new_secret().map_err(|_| BrokerError::Invalid("no randomness for a secret".into()))?;
        let mut raw = [0u8; 8];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| BrokerError::Invalid("no randomness for an id".into()))?;
        let webhook = Webhook {
            id: format!("wh_{}", hex::encode(raw)),
            tenant: tenant.cloned(),
            url: url.to_string(),
            events,
            secrets: vec![WebhookSecret { secret: secret.clone(), until: None }],
            created_at: self.clock.now(),
        };
        self.store.put_webhook(&webhook).await?;
        Ok(NewWebhook { webhook, secret })
    }

    /// A tenant's endpoints, or every endpoint (`None`).
    pub async fn webhooks(&self, tenant: Option<&TenantId>) -> Result<Vec<Webhook>, BrokerError> {
        Ok(self.store.webhooks(tenant).await?)
    }

    /// The endpoint, if it is the tenant's (`Some`) or any (`None`: the operator asks).
    pub async fn webhook(&self, tenant: Option<&TenantId>, id: &str) -> Result<Webhook, BrokerError> {
        match self.store.webhook(id).await? {
            Some(w) if tenant.is_none() || w.tenant.as_ref() == tenant => Ok(w),
            _ => Err(BrokerError::UnknownWebhook(id.to_string())),
        }
    }

    pub async fn remove_webhook(&self, tenant: Option<&TenantId>, id: &str) -> Result<(), BrokerError> {
        self.webhook(tenant, id).await?;
        self.store.remove_webhook(id).await?;
        Ok(())
    }

    /// A new secret signs from now on; the previous one also signs for [`OLD_SECRET_SIGNS_FOR`].
    pub async fn rotate_webhook_secret(&self, tenant: Option<&TenantId>, id: &str) -> Result<NewWebhook, BrokerError> {
        let mut webhook = self.webhook(tenant, id).await?;
        let now = self.clock.now();
        let secret = new_secret().map_err(|_| BrokerError::Invalid("no randomness for a secret".into()))?;
        let until = (now + OLD_SECRET_SIGNS_FOR).unix_timestamp();
        let mut secrets = vec![WebhookSecret { secret: secret.clone(), until: None }];
        secrets.extend(
            webhook
                .signing_secrets(now)
                .map(|s| WebhookSecret { secret: s.secret.clone(), until: Some(s.until.unwrap_or(until).min(until)) }),
        );
        self.store.set_webhook_secrets(id, &secrets).await?;
        webhook.secrets = secrets;
        Ok(NewWebhook { webhook, secret })
    }

    /// Sends a `webhook.test` event to this endpoint (through the audit log, like any event).
    pub async fn test_webhook(&self, tenant: Option<&TenantId>, id: &str) -> Result<(), BrokerError> {
        let webhook = self.webhook(tenant, id).await?;
        if webhook.url.starts_with("mailto:") {
            return Err(BrokerError::Invalid(format!("{id} is a contact's address, not a webhook: contacts are emailed real events only")));
        }
        self.audit(webhook.tenant.as_ref(), AuditEvent::WebhookTest, serde_json::json!({ "webhook": webhook.id })).await;
        Ok(())
    }

    /// The endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(&self, tenant: Option<&TenantId>, id: &str, limit: i64) -> Result<Vec<Delivery>, BrokerError> {
        self.webhook(tenant, id).await?;
        Ok(self.store.deliveries(id, limit.clamp(1, 1000)).await?)
    }

    /// Sends a delivery again (a dead one after the endpoint is fixed, or a delivered one).
    pub async fn redeliver(&self, tenant: Option<&TenantId>, id: &str, seq: i64) -> Result<(), BrokerError> {
        self.webhook(tenant, id).await?;
        if self.store.redeliver(id, seq, self.clock.now()).await? {
            Ok(())
        } else {
            Err(BrokerError::UnknownWebhook(format!("{id} has no delivery {seq}")))
        }
    }
}

impl Broker {
    /// The addresses a tenant's contacts are emailed at.
    pub async fn contacts(&self, tenant: &TenantId) -> Result<Vec<String>, BrokerError> {
        self.tenant(tenant).await?;
        let hooks = self.store.webhooks(Some(tenant)).await?;
        Ok(hooks.iter().filter_map(|w| w.url.strip_prefix("mailto:").map(str::to_string)).collect())
    }

    /// Replaces a tenant's contacts: each address is emailed the revocation, each reminder, the
    /// restoration and the destruction. Needs an SMTP relay (`--smtp-url`).
    pub async fn set_contacts(&self, tenant: &TenantId, emails: &[String]) -> Result<Vec<String>, BrokerError> {
        if self.config.smtp.is_none() {
            return Err(BrokerError::Invalid("no SMTP relay is configured (byok serve --smtp-url): contacts cannot be emailed".into()));
        }
        if emails.len() > 20 {
            return Err(BrokerError::Invalid("at most 20 contacts".into()));
        }
        for e in emails {
            if e.parse::<lettre::message::Mailbox>().is_err() {
                return Err(BrokerError::Invalid(format!("{e} is not an email address")));
            }
        }
        self.tenant(tenant).await?;
        for old in self.store.webhooks(Some(tenant)).await?.into_iter().filter(|w| w.url.starts_with("mailto:")) {
            self.store.remove_webhook(&old.id).await?;
        }
        for (i, email) in emails.iter().enumerate() {
            let mut raw = [0u8; 8];
            aws_lc_rs::rand::fill(&mut raw).map_err(|_| BrokerError::Invalid("no randomness for an id".into()))?;
            let contact = Webhook {
                // The position first: contacts written together (one `created_at`) list in the
                // order they were given, since the store orders by time, then id.
                id: format!("ct_{i:02}{}", hex::encode(raw)),
                tenant: Some(tenant.clone()),
                url: format!("mailto:{email}"),
                events: crate::email::EMAILED_EVENTS.iter().map(|e| e.to_string()).collect(),
                secrets: Vec::new(),
                created_at: self.clock.now(),
            };
            self.store.put_webhook(&contact).await?;
        }
        self.contacts(tenant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        let ok = |u: &str| check_url(u, None).is_ok();
        assert!(ok("https://hooks.example.com/byok"));
        assert!(ok("http://127.0.0.1:8080/x") && ok("http://localhost/x") && ok("http://[::1]:9/x"));
        assert!(!ok("http://hooks.example.com/x"));
        assert!(!ok("http://127.0.0.1.evil.com/x"));
        assert!(!ok("http://user@10.0.0.1/x"));
        assert!(!ok("ftp://x") && !ok("hooks.example.com") && !ok("https:///x"));
        // The operator's allowed hosts.
        let allowed = vec![".acme.com".to_string(), "hooks.globex.com".to_string()];
        let allows = |u: &str| check_url(u, Some(&allowed)).is_ok();
        assert!(allows("https://acme.com/x") && allows("https://siem.eu.acme.com/x") && allows("https://HOOKS.globex.com/x"));
        assert!(!allows("https://evilacme.com/x") && !allows("https://globex.com/x") && !allows("https://10.0.0.1/x"));
    }

    #[test]
    fn only_known_event_types() {
        assert!(check_events(&["tenant.revoked".into()]).is_ok());
        assert!(check_events(&["tenant.exploded".into()]).is_err());
    }
}
