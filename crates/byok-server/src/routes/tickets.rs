//! Support tickets: the operator sees all; a tenant admin sees and comments on its own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use byok_api::{CommentResponse, NewComment, Ticket, TicketDetail};
use byok_domain::Author;
use byok_store::TokenScope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::tenants::Body;
use crate::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tickets", get(list)).route("/v1/tickets/{id}", get(show)).route("/v1/tickets/{id}/comments", post(comment))
}

/// Nothing but white space, as ECMAScript's `\s` has it (the OpenAPI document's `pattern: \S`
/// for a comment, so that the document and the server agree character for character).
fn is_blank(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(
            c,
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
        )
    })
}

fn ticket_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::Invalid(format!("'{raw}' is not a ticket number")))
}

/// The ticket, if this caller may see it. Another tenant's ticket and a missing one answer
/// the same 404, so a tenant admin cannot learn which ticket numbers exist.
async fn visible(state: &AppState, caller: &Caller, id: i64) -> Result<(byok_store::Ticket, Vec<byok_store::Comment>), ApiError> {
    let own = match &caller.0 {
        TokenScope::Operator => None,
        TokenScope::TenantAdmin(own) => Some(own),
        TokenScope::Service(_) => return Err(ApiError::Forbidden),
    };
    let not_found = || ApiError::NotFound(format!("no ticket {id}"));
    let (ticket, comments) = match state.broker.ticket(id).await {
        Ok(found) => found,
        Err(byok_broker::BrokerError::UnknownTicket(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    match own {
        Some(own) if *own != ticket.tenant => Err(not_found()),
        Some(_) | None => Ok((ticket, comments)),
    }
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Ticket>>, ApiError> {
    let tickets = match &caller.0 {
        TokenScope::Operator => state.broker.tickets(None).await?,
        TokenScope::TenantAdmin(own) => state.broker.tickets(Some(own)).await?,
        TokenScope::Service(_) => return Err(ApiError::Forbidden),
    };
    Ok(Json(tickets.into_iter().map(views::ticket).collect()))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (ticket, comments) = visible(&state, &caller, ticket_id(&id)?).await?;
    let detail = TicketDetail { ticket: views::ticket(ticket), comments: comments.into_iter().map(views::comment).collect() };
    Ok(Json(detail).into_response())
}

/// A comment; the customer's "ready" starts restoration and the answer carries its outcome.
async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<NewComment>,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    visible(&state, &caller, id).await?;
    if is_blank(&req.body) || req.body.chars().count() > 16_384 {
        return Err(ApiError::Invalid("a comment is 1 to 16384 characters".into()));
    }
    let author = match caller.0 {
        TokenScope::Operator => Author::Operator,
        TokenScope::TenantAdmin(_) | TokenScope::Service(_) => Author::Customer,
    };
    let (comment, restoration) = state.broker.comment(id, author, &req.body).await?;
    Ok((
        StatusCode::CREATED,
        Json(CommentResponse { comment: views::comment(comment), restoration: restoration.as_ref().map(views::restoration) }),
    )
        .into_response())
}
