//! The operator's view: health (the provider's canary, the monitor's last pass, alerts), held
//! revocations with Release and Dismiss, count tiles per state that filter the list, and every
//! tenant by state with search, paging, its deadline and its open ticket.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use byok_domain::{TenantId, TenantState, TicketStatus};
use maud::{Markup, html};
use serde::Deserialize;

use super::PageError;
use super::layout::{self, time_left, when};
use super::session::{CsrfForm, Flash, Viewer};
use super::shown::{NAMES, Shown, tile_words};
use super::tenant_id;
use crate::state::AppState;

/// Tenants per page of the list.
pub const PAGE: usize = 100;

#[derive(Debug, Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: usize,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, PageError> {
    if !viewer.is_operator() {
        return Err(PageError::NotFound);
    }
    let notice = match state.console.take_flash(&viewer.session) {
        Some(Flash::Notice(n)) => Some(n),
        _ => None,
    };
    let Query(search) = query.unwrap_or_default();
    let needle = search.q.trim().to_lowercase();
    let tenants = state.broker.tenants().await?;
    let held = state.broker.held_revocations().await?;
    let held_since: HashMap<&TenantId, time::OffsetDateTime> = held.iter().map(|h| (&h.tenant, h.detected_at)).collect();
    // Each tenant as its customer sees it: a held tenant counts as suspended, not active (the
    // tiles and the health card count the same holds); a half-restored one as restoring.
    let states: Vec<(Shown, &byok_domain::Tenant)> =
        tenants.iter().map(|t| (Shown::of(t, held_since.get(&t.id).copied(), state.broker.last_check(&t.id).as_ref()), t)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (s, _) in &states {
        *counts.entry(s.name()).or_default() += 1;
    }
    let mut shown: Vec<_> = states
        .iter()
        .filter(|(s, _)| search.state.is_empty() || s.name() == search.state)
        .filter(|(_, t)| needle.is_empty() || t.id.as_str().contains(&needle) || t.binding.account.as_str().contains(&needle))
        .collect();
    // The most urgent first: revoked and restoring by deadline, then held, onboarding, active,
    // destroyed.
    let rank = |s: &Shown| match s {
        Shown::Restoring { .. } => 0,
        s => NAMES.iter().position(|n| *n == s.name()).unwrap_or(NAMES.len()),
    };
    shown.sort_by(|(sa, a), (sb, b)| {
        let deadline = |t: &byok_domain::Tenant| match t.state {
            TenantState::Revoked { deadline, .. } => Some(deadline),
            _ => None,
        };
        (rank(sa), deadline(a), &a.id).cmp(&(rank(sb), deadline(b), &b.id))
    });
    let total = shown.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = search.page.min(pages - 1);
    let shown = &shown[(page * PAGE).min(total)..((page + 1) * PAGE).min(total)];
    let tickets: HashMap<TenantId, (i64, String)> = state
        .broker
        .tickets(None)
        .await?
        .into_iter()
        .filter(|t| t.status == TicketStatus::Open)
        .map(|t| (t.tenant, (t.id, t.title)))
        .collect();
    let now = state.broker.deadline_clock().await?;
    let provider = state.broker.provider_health();
    let pass = state.broker.last_pass();
    let alerts = state.broker.alerts(true).await?;
    let link = |state_filter: &str, page: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !search.q.is_empty() {
            q.append_pair("q", &search.q);
        }
        if !state_filter.is_empty() {
            q.append_pair("state", state_filter);
        }
        if page > 0 {
            q.append_pair("page", &page.to_string());
        }
        format!("/console/operator?{}", q.finish())
    };
    let body = html! {
        h1 { "All tenants" }
        @if let Some(n) = &notice { div.card role="status" { p.ok { (n) } } }
        div.card {
            h2 { "Health" }
            p { "Provider identity and canary: "
                @if provider.checked_at.is_none() { span.muted { "not checked yet" } }
                @else if provider.healthy { span.ok { "working" } " (checked " @if let Some(t) = provider.checked_at { (when(t)) } ")" }
                @else { span.bad { "FAILING: " (provider.reason.clone().unwrap_or_default()) } }
            }
            @match &pass {
                Some(p) => p { "Last monitor pass " (when(p.at)) ": " (p.duration_ms) " ms, " (p.tenants_probed) " tenants checked, "
                    (p.revoked) " revoked, " (p.held) " newly held, " (p.destroyed) " destroyed"
                    @if let Some(f) = &p.provider_fault { ", " span.bad { "provider fault: " (f) } } "." },
                None => p.muted { "The monitor has not finished a pass on this node yet." },
            }
            @for a in &alerts { p.bad role="alert" { (a.title) } }
        }
        @if !held.is_empty() {
            section.card aria-labelledby="held" {
                h2 #held { (held.len()) " suspended (held) for a person to decide" }
                p.muted { "Too many tenants were denied at once to be sure it is their customers' doing. Release: the customer revoked, "
                    "revoke as of the first detection (the grace period is never shortened). Dismiss: a fault, the tenant stays active." }
                table {
                    thead { tr { th { "Tenant" } th { "First seen" } th { "What AWS said" } th { "Decide" } } }
                    tbody {
                        @for h in &held {
                            tr {
                                td { a href={ "/console/tenants/" (h.tenant) } { (h.tenant) } }
                                td { (when(h.detected_at)) }
                                td { @for r in &h.regions { (r.region) ": " (match &r.access { byok_domain::RegionAccess::Denied { message, .. } | byok_domain::RegionAccess::Unknown { message } => message.as_str(), byok_domain::RegionAccess::Ok => "works" }) " " } }
                                td {
                                    form.inline method="post" action={ "/console/operator/holds/" (h.tenant) "/release" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        button type="submit" aria-label={ "Release the hold of " (h.tenant) ": revoke" } { "Release" }
                                    }
                                    form.inline method="post" action={ "/console/operator/holds/" (h.tenant) "/dismiss" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        button.secondary type="submit" aria-label={ "Dismiss the hold of " (h.tenant) ": keep active" } { "Dismiss" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.tiles aria-label="Tenants by state" {
            a.tile.current[search.state.is_empty()] href=(link("", 0)) { strong { (tenants.len()) } " all" }
            @for s in NAMES {
                a.tile.current[search.state == s] href=(link(s, 0)) { strong { (counts.get(s).copied().unwrap_or(0)) } " " (tile_words(s)) }
            }
        }
        form.filters method="get" action="/console/operator" {
            div { label for="q" { "Search tenants (id or AWS account)" } input type="text" id="q" name="q" value=(search.q); }
            input type="hidden" name="state" value=(search.state);
            div { button type="submit" { "Search" } }
        }
        p.muted { @if total == 0 { "No tenant matches." } @else { "Tenants " ((page * PAGE) + 1) "–" ((page * PAGE) + shown.len()) " of " (total) "." } }
        div.table-wrap tabindex="0" role="region" aria-label="Tenants" {
            table {
                thead { tr { th { "Tenant" } th { "State" } th { "Deadline" } th { "Ticket" } th { "Location" } th { "AWS account" } } }
                tbody {
                    @for (s, t) in shown {
                        tr {
                            td.id { a href={ "/console/tenants/" (t.id) } { (t.id) } }
                            td { (s.label()) }
                            td { @if let TenantState::Revoked { deadline, .. } = t.state {
                                (when(deadline))
                                @if deadline > now { " · " (time_left(deadline - now)) " left" } @else { " · " span.bad { "passed" } }
                            } }
                            td { @if let Some((id, _)) = tickets.get(&t.id) { a href={ "/console/tenants/" (t.id) "/ticket" } { "#" (id) } } }
                            td { (t.location) }
                            td.id { (t.binding.account) }
                        }
                    }
                }
            }
        }
        @if pages > 1 {
            nav.paging aria-label="Pages" {
                @if page > 0 { a href=(link(&search.state, page - 1)) { "Previous" } }
                span.muted { "Page " (page + 1) " of " (pages) }
                @if page + 1 < pages { a href=(link(&search.state, page + 1)) { "Next" } }
            }
        }
    };
    Ok(layout::page(&viewer, "All tenants", None, body))
}

/// "Release": the customer did revoke; the tenant is revoked as of the first detection.
pub async fn release(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    decide(&state, &viewer, &id, &form, true).await
}

/// "Dismiss": a fault, not the customer; the tenant stays active.
pub async fn dismiss(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    decide(&state, &viewer, &id, &form, false).await
}

async fn decide(state: &AppState, viewer: &Viewer, raw: &str, form: &CsrfForm, release: bool) -> Result<Redirect, PageError> {
    viewer.check_csrf(&form.csrf)?;
    if !viewer.is_operator() {
        return Err(PageError::NotFound);
    }
    let id = tenant_id(raw)?;
    let notice = if release {
        let t = state.broker.release_hold(&id).await?;
        match t.state {
            TenantState::Revoked { deadline, .. } => {
                format!("{id} is revoked; its customer has until {} UTC and has the ticket.", layout::utc(deadline))
            }
            _ => format!("{id}'s hold is released."),
        }
    } else {
        state.broker.dismiss_hold(&id).await?;
        format!("{id}'s hold is dismissed: it stays active and its key is served again.")
    };
    state.console.set_flash(&viewer.session, Flash::Notice(notice));
    Ok(Redirect::to("/console/operator"))
}
