//! The tenant overview's notifications, managed from the page: webhook endpoints (add one with
//! the events it wants, see its last delivery, send a test event, get a new signing secret,
//! remove it) and the email contacts told of a revocation, each reminder, the restoration and
//! the destruction. Every form posts, then redirects back to the overview
//! (POST-redirect-GET); a field not taken comes back with its reason beside it and the text
//! kept; a new signing secret is shown once. The events go through the audit log and the
//! leader's dispatcher like any other.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Redirect;
use byok_broker::BrokerError;
use byok_domain::TenantId;
use maud::{Markup, html};
use zeroize::Zeroizing;

use super::PageError;
use super::session::{CsrfForm, Flash, ShownOnce, Viewer};
use super::tenant_id;
use crate::state::AppState;

/// The events a customer's endpoint may choose from (none chosen: all of them).
const CUSTOMER_EVENTS: [(&str, &str); 8] = [
    ("tenant.revoked", "access revoked: the countdown starts"),
    ("tenant.reminder", "reminders before the deadline"),
    ("tenant.restored", "access restored"),
    ("restoration.refused", "a restoration found steps still missing"),
    ("tenant.destroyed", "data erased at the deadline"),
    ("key.rotated", "key rotated"),
    ("key.rekeyed", "data re-encrypted under a new key"),
    ("webhook.test", "test events"),
];

/// The most contacts a tenant has (the broker's limit too).
const MAX_CONTACTS: usize = 20;

/// The section, with what the last form did (`flash`) on top or beside its field.
pub(super) async fn section(state: &AppState, viewer: &Viewer, id: &TenantId, flash: Option<&Flash>) -> Result<Markup, PageError> {
    let all = state.broker.webhooks(Some(id)).await?;
    let (contacts, endpoints): (Vec<_>, Vec<_>) = all.into_iter().partition(|w| w.url.starts_with("mailto:"));
    let mut rows = Vec::with_capacity(endpoints.len());
    for w in endpoints {
        let last = state.broker.webhook_deliveries(Some(id), &w.id, 1).await?.into_iter().next();
        rows.push((w, last));
    }
    let field = |form: &str| match flash {
        Some(Flash::Field { form: f, problem, value }) if *f == form => Some((problem.as_str(), value.as_str())),
        _ => None,
    };
    let url_problem = field("webhook");
    let contacts_problem = field("contacts");
    let typed_contacts = match contacts_problem {
        Some((_, value)) => value.to_string(),
        None => contacts.iter().filter_map(|c| c.url.strip_prefix("mailto:")).collect::<Vec<_>>().join("\n"),
    };
    let email = state.broker.config().smtp.is_some();
    let base = format!("/console/tenants/{id}");
    Ok(html! {
        h2 #webhooks { "Webhooks" }
        @if let Some(Flash::Notice(notice)) = flash { p.ok role="status" { (notice) } }
        @if let Some(Flash::Secret { webhook, secret }) = flash {
            div.card role="status" {
                p { strong { "The signing secret of " (webhook) } ", shown this once: keep it where your receiver reads it. "
                    "Deliveries are signed as the Standard Webhooks specification says; its libraries verify them." }
                div.copyable {
                    pre #new-secret tabindex="0" { (secret.0.as_str()) }
                    button.secondary type="button" data-copy="new-secret" { "Copy" }
                }
            }
        }
        @if rows.is_empty() {
            p.muted { "No endpoint yet: add one below, or with " code { "POST /v1/tenants/" (id) "/webhooks" } "." }
        } @else {
            ul.webhooks {
                @for (w, last) in &rows {
                    li {
                        strong { (w.url) } " " span.muted { (w.id) }
                        br;
                        "Events: " @if w.events.is_empty() { "all" } @else { (w.events.join(", ")) }
                        br;
                        "Last delivery: "
                        @match last {
                            Some(d) => {
                                (d.event_type) ": " (d.status.as_str())
                                @if d.attempts > 0 { " after " (d.attempts) " attempt(s)" }
                                @if let Some(e) = &d.last_error { br; span.warn { (e) } }
                            }
                            None => { span.muted { "none yet" } }
                        }
                        div.actions {
                            form.inline method="post" action={ (base) "/webhooks/" (w.id) "/test" } {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.secondary type="submit" aria-label={ "Send a test event to " (w.url) } { "Send test event" }
                            }
                            form.inline method="post" action={ (base) "/webhooks/" (w.id) "/rotate" } {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.secondary type="submit" aria-label={ "New signing secret for " (w.url) } { "New secret" }
                            }
                            form.inline method="post" action={ (base) "/webhooks/" (w.id) "/remove" } {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.secondary type="submit" aria-label={ "Remove the endpoint " (w.url) } { "Remove" }
                            }
                        }
                    }
                }
            }
        }
        details open[url_problem.is_some()] {
            summary { "Add an endpoint" }
            form method="post" action={ (base) "/webhooks" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label for="webhook-url" { "HTTPS address" }
                @if let Some((problem, _)) = url_problem { p.bad #webhook-url-problem role="alert" { (problem) } }
                input type="text" #webhook-url name="url" inputmode="url" autocomplete="url" required placeholder="https://hooks.example.com/byok"
                    value=[url_problem.map(|(_, v)| v)]
                    aria-describedby=[url_problem.map(|_| "webhook-url-problem")];
                fieldset {
                    legend { "Events (none chosen: all of them)" }
                    @for (event, words) in CUSTOMER_EVENTS {
                        div {
                            input type="checkbox" name="events" value=(event) id={ "event-" (event) };
                            label.check for={ "event-" (event) } { code { (event) } " · " (words) }
                        }
                    }
                }
                button type="submit" { "Add endpoint" }
            }
        }
        h2 #contacts { "Email contacts" }
        @if email {
            p.muted { "Each address is emailed the revocation, each reminder, the restoration and the destruction, with the deadline in UTC." }
            form method="post" action={ (base) "/contacts" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label for="contacts-list" { "Addresses, one per line (at most " (MAX_CONTACTS) "; empty: none)" }
                @if let Some((problem, _)) = contacts_problem { p.bad #contacts-problem role="alert" { (problem) } }
                textarea #contacts-list name="contacts" autocomplete="email" aria-describedby=[contacts_problem.map(|_| "contacts-problem")] {
                    (typed_contacts)
                }
                button type="submit" { "Save contacts" }
            }
        } @else {
            p.muted { "Email is not set up on this deployment: the provider has no mail relay configured. Use a webhook, or ask your provider." }
        }
    })
}

/// A form's fields in order, repeated names kept (the event checkboxes), CSRF checked.
fn fields(viewer: &Viewer, body: &Bytes) -> Result<Vec<(String, String)>, PageError> {
    let fields: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    viewer.check_csrf(csrf)?;
    Ok(fields)
}

fn one<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

/// Back to the overview's section, with `flash`.
fn back(state: &AppState, viewer: &Viewer, id: &TenantId, flash: Flash, anchor: &str) -> Redirect {
    state.console.set_flash(&viewer.session, flash);
    Redirect::to(&format!("/console/tenants/{id}#{anchor}"))
}

fn seen(viewer: &Viewer, raw: &str) -> Result<TenantId, PageError> {
    let id = tenant_id(raw)?;
    viewer.may_see(&id)?;
    Ok(id)
}

/// "Add endpoint": the address and the events chosen; the secret is shown once.
pub async fn add(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>, body: Bytes) -> Result<Redirect, PageError> {
    let fields = fields(&viewer, &body)?;
    let id = seen(&viewer, &id)?;
    let url = one(&fields, "url").trim().to_string();
    let events: Vec<String> = fields.iter().filter(|(k, _)| k == "events").map(|(_, v)| v.clone()).collect();
    let refuse = |problem: String| back(&state, &viewer, &id, Flash::Field { form: "webhook", problem, value: url.clone() }, "webhooks");
    if url.is_empty() {
        return Ok(refuse("Write the endpoint's address first: it is empty.".into()));
    }
    match state.broker.add_webhook(Some(&id), &url, events).await {
        Ok(added) => Ok(back(&state, &viewer, &id, shown_once(&added), "webhooks")),
        Err(BrokerError::Invalid(problem)) => Ok(refuse(problem)),
        Err(e) => Err(e.into()),
    }
}

/// An endpoint's buttons, `action` from the path: "Send test event" (`test`), "New secret"
/// (`rotate`: shown once; the old one still signs for a day, so the receiver can move over
/// without missing a delivery) and "Remove" (`remove`: the endpoint gets nothing more).
pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, webhook, action)): Path<(String, String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let id = seen(&viewer, &id)?;
    let flash = match action.as_str() {
        "test" => {
            state.broker.test_webhook(Some(&id), &webhook).await?;
            Flash::Notice(
                "Test event queued: it is delivered within seconds, after any earlier event still pending for this endpoint.".into(),
            )
        }
        "rotate" => shown_once(&state.broker.rotate_webhook_secret(Some(&id), &webhook).await?),
        "remove" => {
            let url = state.broker.webhook(Some(&id), &webhook).await?.url;
            state.broker.remove_webhook(Some(&id), &webhook).await?;
            Flash::Notice(format!("Removed {url}: it gets no more events."))
        }
        _ => return Err(PageError::NotFound),
    };
    Ok(back(&state, &viewer, &id, flash, "webhooks"))
}

/// A new signing secret, for the page to show once.
fn shown_once(new: &byok_broker::webhooks::NewWebhook) -> Flash {
    Flash::Secret { webhook: new.webhook.url.clone(), secret: ShownOnce(Zeroizing::new(new.secret.clone())) }
}

/// "Save contacts": the addresses, one per line, replace the tenant's contacts.
pub async fn contacts(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>, body: Bytes) -> Result<Redirect, PageError> {
    let fields = fields(&viewer, &body)?;
    let id = seen(&viewer, &id)?;
    let typed = one(&fields, "contacts").to_string();
    let emails: Vec<String> = typed.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    match state.broker.set_contacts(&id, &emails).await {
        Ok(saved) => {
            let notice = match saved.len() {
                0 => "No email contacts now.".to_string(),
                n => format!("Saved {n} contact(s): {}.", saved.join(", ")),
            };
            Ok(back(&state, &viewer, &id, Flash::Notice(notice), "webhooks"))
        }
        Err(BrokerError::Invalid(problem)) => Ok(back(
            &state,
            &viewer,
            &id,
            Flash::Field { form: "contacts", problem, value: typed.chars().take(4096).collect() },
            "contacts",
        )),
        Err(e) => Err(e.into()),
    }
}
