//! The revocation ticket as the customer sees it: the thread, a comment box, and "Access
//! restored — verify now", which runs the restoration and shows the answer region by region.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use byok_broker::Restoration;
use byok_domain::{Author, Comment, TenantState, TicketStatus};
use byok_store::TokenScope;
use maud::{Markup, html};
use serde::Deserialize;

use super::PageError;
use super::layout::{self, when};
use super::session::{CsrfForm, Flash, Viewer};
use super::signin::SignIn;
use super::tenant::revoked_now;
use super::tenant_id;
use crate::state::AppState;

pub async fn page(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Result<Markup, PageError> {
    let (restoration, draft) = match state.console.take_flash(&viewer.session) {
        Some(Flash::Restoration(r)) => (Some(r), None),
        Some(Flash::Draft { problem, text }) => (None, Some((problem, text))),
        _ => (None, None),
    };
    render(&state, &viewer, &id, restoration, draft).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    raw: &str,
    restoration: Option<Restoration>,
    draft: Option<(Option<String>, String)>,
) -> Result<Markup, PageError> {
    let id = tenant_id(raw)?;
    viewer.may_see(&id)?;
    let (shown, tenant) = super::tenant::shown(state, &id).await?;
    let tickets = state.broker.tickets(Some(&id)).await?;
    let current = match tickets.first() {
        Some(t) => Some(state.broker.ticket(t.id).await?),
        None => None,
    };
    let now = revoked_now(state, &tenant.state).await?;
    let past_deadline = matches!((&tenant.state, now), (TenantState::Revoked { deadline, .. }, Some(now)) if now >= *deadline);
    let body = html! {
        div hidden data-watch={ "/console/tenants/" (id) "/state" } data-state=(shown.name()) {}
        h1 { "Support ticket" }
        p.state { (shown.sentence()) }
        @if let (TenantState::Revoked { deadline, .. }, Some(now)) = (&tenant.state, now) { (layout::deadline(*deadline, now)) }
        @if let Some(r) = &restoration { (restoration_card(r)) }
        @match &current {
            None => p.muted { "No ticket: access has never been revoked." },
            Some((ticket, comments)) => {
                div.card {
                    h2 { (ticket.title) }
                    p.muted { "Ticket #" (ticket.id) " · " (ticket.status) " · opened " (when(ticket.created_at)) }
                    @for (c, repeats) in collapse(comments) {
                        div class={ "comment by-" (author_class(c.author)) } {
                            div.who {
                                (author(c.author)) " · " (when(c.created_at))
                                @if repeats > 1 { " · the same answer " (repeats) " times in a row, the last shown" }
                            }
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
                        @if let Some(problem) = draft.as_ref().and_then(|(p, _)| p.as_ref()) {
                            p.bad id="body-problem" role="alert" { (problem) }
                        }
                        textarea id="body" name="body" maxlength="16384" required
                            aria-describedby=[draft.as_ref().and_then(|(p, _)| p.as_ref()).map(|_| "body-problem")] {
                            @if let Some((_, text)) = &draft { (text) }
                        }
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
        Author::Byok => "Automatic message",
        Author::Customer => "You (the customer)",
        Author::Operator => "The provider's support",
    }
}

fn author_class(a: Author) -> &'static str {
    match a {
        Author::Byok => "system",
        Author::Customer => "customer",
        Author::Operator => "operator",
    }
}

/// The thread with runs of identical automatic messages (repeated "verify now" answers) shown
/// once, as the last of the run with how many there were.
fn collapse(comments: &[Comment]) -> Vec<(&Comment, usize)> {
    let mut out: Vec<(&Comment, usize)> = Vec::with_capacity(comments.len());
    for c in comments {
        match out.last_mut() {
            Some((last, n)) if c.author == Author::Byok && last.author == Author::Byok && last.body == c.body => {
                *last = c;
                *n += 1;
            }
            _ => out.push((c, 1)),
        }
    }
    out
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

/// A comment: taken, then back to the ticket (POST-redirect-GET); refused (blank, too long,
/// a closed ticket), back to the ticket with the reason beside the box and the text in it; sent
/// after the session expired, to the sign-in page, which brings the text back to the ticket.
pub async fn comment(
    State(state): State<AppState>,
    viewer: Result<Viewer, SignIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Result<Response, PageError> {
    let ticket_page = format!("/console/tenants/{}/ticket", tenant_id(&id)?);
    let viewer = match viewer {
        Ok(viewer) => viewer,
        Err(SignIn) => return Ok(super::signin::signin_to_continue(&state, &headers, &ticket_page, &form.body)),
    };
    viewer.check_csrf(&form.csrf)?;
    let id = tenant_id(&id)?;
    viewer.may_see(&id)?;
    let (ticket, _) = state.broker.ticket(form.ticket).await?;
    if ticket.tenant != id {
        return Err(PageError::NotFound);
    }
    let refuse = |problem: &str| {
        let text = form.body.chars().take(MAX_COMMENT).collect();
        state.console.set_flash(&viewer.session, Flash::Draft { problem: Some(problem.to_string()), text });
        Ok(Redirect::to(&ticket_page).into_response())
    };
    let body = form.body.trim();
    if body.is_empty() {
        return refuse("Write a comment first: it is empty.");
    }
    if body.chars().count() > MAX_COMMENT {
        return refuse(&format!("A comment is at most {MAX_COMMENT} characters; this one has {}.", body.chars().count()));
    }
    let by = match viewer.scope {
        TokenScope::Operator => Author::Operator,
        TokenScope::TenantAdmin(_) | TokenScope::Service(_) => Author::Customer,
    };
    match state.broker.comment(ticket.id, by, body).await {
        Ok((_, Some(restoration))) => state.console.set_flash(&viewer.session, Flash::Restoration(restoration)),
        Ok((_, None)) => {}
        Err(byok_broker::BrokerError::Invalid(problem)) => return refuse(&problem),
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to(&ticket_page).into_response())
}

/// The longest comment, in characters (the box's `maxlength` too).
const MAX_COMMENT: usize = 16_384;

/// "Access restored — verify now": every region checked now; the answer, naming what is
/// missing, shown by the ticket page this redirects to.
pub async fn restore(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let tenant = tenant_id(&id)?;
    viewer.may_see(&tenant)?;
    let restoration = state.broker.restore(&tenant).await?;
    state.console.set_flash(&viewer.session, Flash::Restoration(restoration));
    Ok(Redirect::to(&format!("/console/tenants/{tenant}/ticket")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_identical_automatic_answers_is_shown_once() {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let c = |id, author, body: &str| Comment { id, author, body: body.into(), created_at: at + time::Duration::minutes(id) };
        let thread = vec![
            c(1, Author::Byok, "revoked"),
            c(2, Author::Byok, "Not restored yet: eu-west-1"),
            c(3, Author::Byok, "Not restored yet: eu-west-1"),
            c(4, Author::Byok, "Not restored yet: eu-west-1"),
            c(5, Author::Customer, "ready"),
            c(6, Author::Customer, "ready"),
            c(7, Author::Byok, "Not restored yet: eu-west-1"),
        ];
        let shown: Vec<(i64, usize)> = collapse(&thread).into_iter().map(|(c, n)| (c.id, n)).collect();
        // The customer's own repeats stay: only automatic ones collapse, and only in a run.
        assert_eq!(shown, vec![(1, 1), (4, 3), (5, 1), (6, 1), (7, 1)]);
    }
}
