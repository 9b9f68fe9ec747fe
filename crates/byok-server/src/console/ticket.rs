//! The revocation ticket as the customer sees it: the thread, a comment box, and "Access
//! restored — verify now", which runs the restoration and shows the answer region by region.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use byok_broker::Restoration;
use byok_domain::{Author, TenantState, TicketStatus};
use byok_store::TokenScope;
use maud::{Markup, html};
use serde::Deserialize;

use super::PageError;
use super::layout::{self, when};
use super::session::{CsrfForm, Viewer};
use super::tenant::{revoked_now, tenant_id};
use crate::state::AppState;

pub async fn page(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Result<Markup, PageError> {
    render(&state, &viewer, &id, None).await
}

async fn render(state: &AppState, viewer: &Viewer, raw: &str, restoration: Option<Restoration>) -> Result<Markup, PageError> {
    let id = tenant_id(raw)?;
    viewer.may_see(&id)?;
    let tenant = state.broker.tenant(&id).await?;
    let held_since = state.broker.held_since(&id).await?;
    let tickets = state.broker.tickets(Some(&id)).await?;
    let current = match tickets.first() {
        Some(t) => Some(state.broker.ticket(t.id).await?),
        None => None,
    };
    let now = revoked_now(state, &tenant.state).await?;
    let past_deadline = matches!((&tenant.state, now), (TenantState::Revoked { deadline, .. }, Some(now)) if now >= *deadline);
    let body = html! {
        h1 { "Support ticket" }
        p.state { (layout::state_sentence(&tenant.state, held_since)) }
        @if let (TenantState::Revoked { deadline, .. }, Some(now)) = (&tenant.state, now) { (layout::deadline(*deadline, now)) }
        @if let Some(r) = &restoration { (restoration_card(r)) }
        @match &current {
            None => p.muted { "No ticket: access has never been revoked." },
            Some((ticket, comments)) => {
                div.card {
                    h2 { (ticket.title) }
                    p.muted { "Ticket #" (ticket.id) " · " (ticket.status) " · opened " (when(ticket.created_at)) }
                    @for c in comments {
                        div.comment {
                            div.who { (author(c.author)) " · " (when(c.created_at)) }
                            (c.body)
                        }
                    }
                }
                @if ticket.status == TicketStatus::Open && !past_deadline {
                    form method="post" action={ "/console/tenants/" (id) "/restore" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { "Access restored — verify now" }
                    }
                }
                @if ticket.status == TicketStatus::Closed {
                    p.muted { "This ticket is closed and takes no more comments." }
                } @else {
                    form method="post" action={ "/console/tenants/" (id) "/comment" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="ticket" value=(ticket.id);
                        label for="body" { "Comment" }
                        textarea id="body" name="body" maxlength="16384" required {}
                        button type="submit" { "Add comment" }
                    }
                }
            }
        }
    };
    Ok(layout::page(viewer, "Ticket", Some(&id), body))
}

fn author(a: Author) -> &'static str {
    match a {
        Author::Byok => "byok",
        Author::Customer => "you (the customer)",
        Author::Operator => "the provider's operator",
    }
}

fn restoration_card(r: &Restoration) -> Markup {
    html! {
        div.card role="status" {
            @if r.restored { p.ok { strong { "Access is restored." } " Every region was verified." } }
            @else {
                p.bad { strong { "Not restored yet." } " Still to do:" }
                ul { @for m in &r.missing { li { (m) } } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    csrf: String,
    ticket: i64,
    body: String,
}

pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let id = tenant_id(&id)?;
    viewer.may_see(&id)?;
    let (ticket, _) = state.broker.ticket(form.ticket).await?;
    if ticket.tenant != id {
        return Err(PageError::NotFound);
    }
    let body = form.body.trim();
    if body.is_empty() || body.len() > 16_384 {
        return Err(PageError::Broker(byok_broker::BrokerError::Invalid("a comment is 1 to 16384 characters".into())));
    }
    let by = match viewer.scope {
        TokenScope::Operator => Author::Operator,
        TokenScope::TenantAdmin(_) | TokenScope::Service(_) => Author::Customer,
    };
    let (_, restoration) = state.broker.comment(ticket.id, by, body).await?;
    match restoration {
        Some(r) => Ok(render(&state, &viewer, id.as_str(), Some(r)).await?.into_response()),
        None => Ok(Redirect::to(&format!("/console/tenants/{id}/ticket")).into_response()),
    }
}

/// "Access restored — verify now": every region checked now; the answer names what is missing.
pub async fn restore(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Markup, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let tenant = tenant_id(&id)?;
    viewer.may_see(&tenant)?;
    let restoration = state.broker.restore(&tenant).await?;
    render(&state, &viewer, &id, Some(restoration)).await
}
