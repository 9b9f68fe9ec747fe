//! The operator's view: every tenant by state (with search), the next deadlines, open tickets,
//! the monitor's last pass, the provider's canary, held revocations and open alerts.

use axum::extract::{Query, State};
use byok_domain::{TenantState, TicketStatus};
use maud::{Markup, html};
use serde::Deserialize;

use super::PageError;
use super::layout::{self, when};
use super::session::Viewer;
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, PageError> {
    if !viewer.is_operator() {
        return Err(PageError::NotFound);
    }
    let Query(search) = query.unwrap_or_default();
    let needle = search.q.trim().to_lowercase();
    let tenants = state.broker.tenants().await?;
    let mut shown: Vec<_> = tenants
        .iter()
        .filter(|t| needle.is_empty() || t.id.as_str().contains(&needle) || t.binding.account.as_str().contains(&needle))
        .collect();
    let order = |s: &TenantState| match s {
        TenantState::Revoked { .. } => 0,
        TenantState::Onboarding => 1,
        TenantState::Active => 2,
        TenantState::Destroyed { .. } => 3,
    };
    shown.sort_by_key(|t| (order(&t.state), t.id.clone()));
    let mut deadlines: Vec<_> = tenants
        .iter()
        .filter_map(|t| match t.state {
            TenantState::Revoked { deadline, .. } => Some((deadline, t.id.clone())),
            _ => None,
        })
        .collect();
    deadlines.sort();
    let open_tickets: Vec<_> = state.broker.tickets(None).await?.into_iter().filter(|t| t.status == TicketStatus::Open).collect();
    let provider = state.broker.provider_health();
    let pass = state.broker.last_pass();
    let held = state.broker.held_revocations().await?;
    let is_held = |id: &byok_domain::TenantId| held.iter().any(|h| &h.tenant == id);
    // One count per state as the customer sees it: a held tenant counts as suspended, not active.
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for t in &tenants {
        let shown = if is_held(&t.id) { "suspended (held)" } else { t.state.name() };
        *counts.entry(shown).or_default() += 1;
    }
    let alerts = state.broker.alerts(true).await?;
    let body = html! {
        h1 { "All tenants" }
        div.card {
            h2 { "Health" }
            p { "Provider identity and canary: "
                @if provider.checked_at.is_none() { span.muted { "not checked yet" } }
                @else if provider.healthy { span.ok { "working" } " (checked " @if let Some(t) = provider.checked_at { (when(t)) } ")" }
                @else { span.bad { "FAILING: " (provider.reason.clone().unwrap_or_default()) } }
            }
            @match &pass {
                Some(p) => p { "Last monitor pass " (when(p.at)) ": " (p.duration_ms) " ms, " (p.tenants_probed) " tenants probed, "
                    (p.revoked) " revoked, " (p.held) " newly held, " (p.destroyed) " destroyed"
                    @if let Some(f) = &p.provider_fault { ", " span.bad { "provider fault: " (f) } } ". Region checks: "
                    @for (kind, n) in &p.regions { (kind) " " (n) " " } },
                None => p.muted { "The monitor has not finished a pass on this node yet." },
            }
            @if !held.is_empty() {
                p.bad { (held.len()) " revocations held for a person now: " @for h in &held { (h.tenant) " " } "(byok revocations list)" }
            }
            @for a in &alerts { p.bad role="alert" { (a.title) } }
        }
        div.card {
            h2 { "Tenants by state" }
            p { @for (name, n) in &counts { strong { (n) } " " (name) " · " } (tenants.len()) " in all" }
        }
        form.filters method="get" action="/console/operator" {
            div { label for="q" { "Search tenants (id or AWS account)" } input type="text" id="q" name="q" value=(search.q); }
            div { button type="submit" { "Search" } }
        }
        table {
            thead { tr { th { "Tenant" } th { "State" } th { "Location" } th { "AWS account" } } }
            tbody {
                @for t in &shown {
                    tr {
                        td { a href={ "/console/tenants/" (t.id) } { (t.id) } }
                        td { @if is_held(&t.id) { span.warn { "suspended (held)" } } @else { (t.state.name()) } }
                        td { (t.location) }
                        td { (t.binding.account) }
                    }
                }
            }
        }
        @if shown.is_empty() { p.muted { "No tenant matches." } }
        h2 { "Next deadlines" }
        @if deadlines.is_empty() { p.muted { "No tenant is revoked." } }
        ul { @for (deadline, id) in deadlines.iter().take(20) { li { a href={ "/console/tenants/" (id) } { (id) } ": " (when(*deadline)) } } }
        h2 { "Open tickets" }
        @if open_tickets.is_empty() { p.muted { "None." } }
        ul { @for t in &open_tickets { li { a href={ "/console/tenants/" (t.tenant) "/ticket" } { "#" (t.id) " " (t.title) } " (tenant " (t.tenant) ")" } } }
    };
    Ok(layout::page(&viewer, "All tenants", None, body))
}
