//! Email to a tenant's contacts: the revocation (what was detected where, the deadline, what to
//! do), each reminder, the restoration and the destruction, in text and HTML, sent over SMTP
//! with `lettre` (rustls on aws-lc-rs). A contact is a delivery endpoint `mailto:ADDRESS`, so an
//! email is enqueued, ordered, retried and dead-lettered exactly as a webhook is
//! ([`crate::webhook_delivery`]); the event's id is the message's `Message-ID`, so a retried
//! send is recognisably the same message.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::remedy;

/// The event types a contact is emailed about.
pub const EMAILED_EVENTS: &[&str] = &["tenant.revoked", "tenant.reminder", "tenant.restored", "tenant.destroyed"];

/// Where mail goes out, and what it links to.
#[derive(Clone)]
pub struct SmtpConfig {
    /// `smtp://HOST:PORT` (with `?tls=required` for STARTTLS), or `smtps://HOST:PORT`; user and
    /// password in the URL when the relay wants them.
    pub url: String,
    /// The sender, e.g. `byok <byok@provider.example>`.
    pub from: String,
    /// The console's public address, for the links in each message (e.g.
    /// `https://byok.provider.example`); no links without it.
    pub console_url: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry the relay's password.
        f.debug_struct("SmtpConfig").field("from", &self.from).field("console_url", &self.console_url).finish_non_exhaustive()
    }
}

/// Why an email was not sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmailError {
    #[error("no SMTP relay is configured (--smtp-url)")]
    NotConfigured,
    #[error("bad address {0}")]
    Address(String),
    #[error("the message cannot be built: {0}")]
    Build(String),
    #[error("the SMTP relay refused or could not be reached: {0}")]
    Smtp(String),
}

/// A message's subject, text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn utc(unix: Option<i64>) -> String {
    unix.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(|t| t.replace('T', " ").replace('Z', " UTC"))
        .unwrap_or_else(|| "(unknown)".into())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The message for a delivery's body (`{"type", "timestamp", "data"}`).
pub fn compose(body: &str, console_url: Option<&str>) -> Option<Composed> {
    let event: serde_json::Value = serde_json::from_str(body).ok()?;
    let data = &event["data"];
    let tenant = data["tenant"].as_str().unwrap_or("?");
    let deadline = utc(data["deadline"].as_i64());
    let link = console_url.map(|base| format!("{}/console/tenants/{tenant}", base.trim_end_matches('/')));
    // The guide as the console serves it: a link the customer can open, where the console is known.
    let guide = match console_url {
        Some(base) => format!("{}{}", base.trim_end_matches('/'), remedy::GUIDE),
        None => format!("in the console, {}", remedy::GUIDE),
    };
    let (subject, lines): (String, Vec<String>) = match event["type"].as_str()? {
        "tenant.revoked" => {
            let mut lines = vec![
                format!("We detected that access to the encryption keys of tenant {tenant} was revoked in your AWS account."),
                "The product is offline for your users and for our systems until access is restored.".into(),
                String::new(),
                "Detected:".into(),
            ];
            for d in data["detected"].as_array().into_iter().flatten() {
                let region = d["region"].as_str().unwrap_or("?");
                let what = d["access"]["message"].as_str().unwrap_or("denied");
                lines.push(format!("- {region}: {what}"));
            }
            lines.extend([
                String::new(),
                format!("You can restore access until {deadline}. After that the data is erased and cannot be recovered."),
                format!("To restore, follow the customer guide ({guide}), steps 1-13, in every region, then press"),
                "\"Access restored - verify now\" on the ticket.".into(),
            ]);
            (format!("Action needed: access to your BYOK keys was revoked (tenant {tenant})"), lines)
        }
        "tenant.reminder" => (
            format!("Reminder: tenant {tenant}'s data will be erased on {deadline}"),
            vec![
                format!("Access to the encryption keys of tenant {tenant} is still revoked."),
                format!("On {deadline} the data is erased and cannot be recovered."),
                format!("To restore, follow the customer guide ({guide}), then press \"Access restored - verify now\" on the ticket."),
            ],
        ),
        "tenant.restored" => (
            format!("Access restored for tenant {tenant}"),
            vec![format!("Access to the encryption keys of tenant {tenant} is restored in every region. The product is available again.")],
        ),
        "tenant.destroyed" => (
            format!("Tenant {tenant}'s data was erased"),
            vec![format!(
                "The deadline passed with access still revoked: the keys of tenant {tenant} were erased, and its data cannot be recovered."
            )],
        ),
        _ => return None,
    };
    let mut lines = lines;
    if data["checkpoint"].is_object() {
        // The operator's signature over this event's place in the audit log: kept by the
        // customer, it contradicts any later rewrite of their history.
        lines.extend([
            String::new(),
            "Audit checkpoint (keep it; `byok audit verify --checkpoint FILE` checks the log against it):".into(),
            data["checkpoint"].to_string(),
        ]);
    }
    let mut text = lines.join("\n");
    let mut html = String::from("<!doctype html><html><body>");
    for line in &lines {
        if !line.is_empty() {
            html.push_str(&format!("<p>{}</p>", escape(line)));
        }
    }
    if let Some(link) = &link {
        text.push_str(&format!("\n\nThe console: {link}\nThe ticket: {link}/ticket\n"));
        html.push_str(&format!("<p><a href=\"{l}\">The console</a> &middot; <a href=\"{l}/ticket\">The ticket</a></p>", l = escape(link)));
    }
    html.push_str("</body></html>");
    Some(Composed { subject, text, html })
}

/// Sends the delivery `body` (an event) to `to`, with `event_id` in its Message-ID.
pub async fn send(config: Option<&SmtpConfig>, to: &str, event_id: &str, body: &str) -> Result<(), EmailError> {
    let config = config.ok_or(EmailError::NotConfigured)?;
    let composed = compose(body, config.console_url.as_deref()).ok_or_else(|| EmailError::Build("not an emailed event".into()))?;
    let from: Mailbox = config.from.parse().map_err(|_| EmailError::Address(config.from.clone()))?;
    let to_box: Mailbox = to.parse().map_err(|_| EmailError::Address(to.to_string()))?;
    let domain = from.email.domain().to_string();
    let message = Message::builder()
        .from(from)
        .to(to_box)
        .subject(composed.subject)
        .message_id(Some(format!("<{event_id}.{}@{domain}>", to.replace(['@', '<', '>'], "."))))
        .multipart(MultiPart::alternative_plain_html(composed.text, composed.html))
        .map_err(|e| EmailError::Build(e.to_string()))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
        .map_err(|e| EmailError::Smtp(e.to_string()))?
        .timeout(Some(Duration::from_secs(10)))
        .build();
    transport.send(message).await.map_err(|e| EmailError::Smtp(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_names_the_regions_the_deadline_and_links_to_the_console() {
        let body = r#"{"type":"tenant.revoked","timestamp":"2027-01-15T08:00:00Z","data":{"tenant":"acme","deadline":1801296000,
            "detected":[{"region":"eu-west-1","access":{"result":"denied","denial":"trust_policy","message":"not <authorized>"}}]}}"#;
        let m = compose(body, Some("https://byok.example/")).expect("composed");
        assert_eq!(m.subject, "Action needed: access to your BYOK keys was revoked (tenant acme)");
        assert!(m.text.contains("- eu-west-1: not <authorized>") && m.text.contains("2027-01-30 08:00:00 UTC"), "{}", m.text);
        assert!(m.text.contains("https://byok.example/console/tenants/acme/ticket"), "{}", m.text);
        assert!(m.text.contains("the customer guide (https://byok.example/console/guide)"), "a guide the customer can open: {}", m.text);
        assert!(
            m.html.contains("not &lt;authorized&gt;") && m.html.contains("href=\"https://byok.example/console/tenants/acme\""),
            "{}",
            m.html
        );
        assert!(compose(r#"{"type":"key.rotated","data":{}}"#, None).is_none(), "not emailed");
        let reminder = compose(r#"{"type":"tenant.reminder","data":{"tenant":"acme","deadline":1801296000}}"#, None).expect("reminder");
        assert_eq!(reminder.subject, "Reminder: tenant acme's data will be erased on 2027-01-30 08:00:00 UTC");
        assert!(
            !reminder.text.contains("http") && reminder.text.contains("/console/guide"),
            "no links without a public URL: {}",
            reminder.text
        );
        let gone = compose(r#"{"type":"tenant.destroyed","data":{"tenant":"acme"}}"#, None).expect("destroyed");
        assert!(gone.subject.contains("erased") && gone.text.contains("cannot be recovered"), "{gone:?}");
    }
}
