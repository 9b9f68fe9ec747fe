//! The tenant overview's webhook section: each endpoint with its last delivery, and a "Send test
//! event" button (its handler is the overview's, [`super::tenant::test_webhook`]; the event goes
//! through the audit log and the dispatcher like any other).

use byok_domain::TenantId;
use maud::{Markup, html};

use super::PageError;
use super::session::Viewer;
use crate::state::AppState;

/// The section, with `notice` (what was just done) on top.
pub(super) async fn section(state: &AppState, viewer: &Viewer, id: &TenantId, notice: Option<&str>) -> Result<Markup, PageError> {
    let webhooks = state.broker.webhooks(Some(id)).await?;
    let mut rows = Vec::with_capacity(webhooks.len());
    for w in webhooks {
        let last = state.broker.webhook_deliveries(Some(id), &w.id, 1).await?.into_iter().next();
        rows.push((w, last));
    }
    Ok(html! {
        h2 { "Webhooks" }
        @if let Some(notice) = notice { p.ok role="status" { (notice) } }
        @if rows.is_empty() {
            p.muted { "No endpoint yet. Add one with " code { "byok webhook add URL --tenant " (id) } " or " code { "POST /v1/tenants/" (id) "/webhooks" } "." }
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
                        form method="post" action={ "/console/tenants/" (id) "/webhooks/" (w.id) "/test" } {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.secondary type="submit" aria-label={ "Send a test event to " (w.url) } { "Send test event" }
                        }
                    }
                }
            }
        }
    })
}
