//! The tenant's audit log as a person reads it: newest first with keyset paging, filtered by
//! reason and a date range (the store filters and counts, over an index on time: nothing reads
//! the whole log into memory), entries as sentences (no raw JSON, no unix times), a chart of key
//! uses per day over 30 days with the hours of a chosen day ([`super::audit_chart`]), and the
//! filtered view exported as JSON lines.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use byok_store::{AuditEntry, AuditFilter};
use maud::{Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;

use super::PageError;
use super::audit_chart::{self, reason_words};
use super::layout::{self, when};
use super::session::Viewer;
use super::tenant_id;
use crate::state::AppState;

const PAGE: i64 = 50;
const DAYS: i64 = 30;

/// The page's query: every field optional, every one kept as typed so a bad one is shown back.
#[derive(Debug, Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    reason: String,
    /// First day shown (YYYY-MM-DD, UTC), inclusive.
    #[serde(default)]
    since: String,
    /// Last day shown (YYYY-MM-DD, UTC), inclusive.
    #[serde(default)]
    until: String,
    /// The chart's day in hours (YYYY-MM-DD, UTC).
    #[serde(default)]
    day: String,
    /// Keyset paging: entries older than this sequence number.
    #[serde(default)]
    before: Option<i64>,
}

/// A filter checked: the store's filter, or what is wrong with which field.
struct Checked {
    filter: AuditFilter,
    problems: Vec<(&'static str, String)>,
}

fn date(raw: &str) -> Result<Option<i64>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| format!("'{raw}' is not a date: use YYYY-MM-DD, e.g. 2026-11-01."))
}

fn check(f: &Filter) -> Checked {
    let mut problems = Vec::new();
    let from = date(&f.since).unwrap_or_else(|e| {
        problems.push(("since", e));
        None
    });
    let to = date(&f.until).unwrap_or_else(|e| {
        problems.push(("until", e));
        None
    });
    if let Err(e) = date(&f.day) {
        problems.push(("day", e));
    }
    if let (Some(a), Some(b)) = (from, to) {
        if b < a {
            problems.push(("until", "The last day is before the first.".into()));
        }
    }
    let reason = Some(f.reason.clone()).filter(|r| !r.is_empty());
    Checked { filter: AuditFilter { reason, from, to: to.map(|t| t + 86_400) }, problems }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, PageError> {
    let id = tenant_id(&id)?;
    viewer.may_see(&id)?;
    state.broker.tenant(&id).await?;
    let Query(f) = query.unwrap_or_default();
    let checked = check(&f);
    let entries = match checked.problems.is_empty() {
        true => state.broker.audit_page(&id, &checked.filter, f.before.unwrap_or(i64::MAX), PAGE + 1).await?,
        false => Vec::new(),
    };
    let more = entries.len() > PAGE as usize;
    let shown = &entries[..entries.len().min(PAGE as usize)];
    let charts = charts(&state, &id, &f).await?;
    let problem = |field: &str| checked.problems.iter().find(|(f, _)| *f == field).map(|(_, p)| p.clone());
    let query = |before: Option<i64>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("reason", &f.reason), ("since", &f.since), ("until", &f.until), ("day", &f.day)] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        q.finish()
    };
    let body = html! {
        h1 { "Audit log" }
        p.muted { "Every use of your key with its reason (the same reason appears as the session name in your own CloudTrail), every state change, every ticket event. Newest first." }
        (charts)
        h2 { "Entries" }
        form.filters method="get" action={ "/console/tenants/" (id) "/audit" } {
            div {
                label for="reason" { "Reason" }
                select id="reason" name="reason" {
                    option value="" selected[f.reason.is_empty()] { "all" }
                    @for r in ["data", "probe", "restore", "onboard", "transition", "ticket"] {
                        option value=(r) selected[f.reason == r] { (reason_words(r)) }
                    }
                }
            }
            (date_field("since", "From (UTC)", &f.since, problem("since")))
            (date_field("until", "To (UTC, inclusive)", &f.until, problem("until")))
            input type="hidden" name="day" value=(f.day);
            div { button type="submit" { "Filter" } }
        }
        @if checked.problems.is_empty() {
            p { a href={ "/console/tenants/" (id) "/audit/export?" (query(None)) } download { "Export these entries (JSON lines)" } }
        }
        div.table-wrap tabindex="0" role="region" aria-label="Entries" {
            table {
                thead { tr { th { "When" } th { "What" } th { "Details" } } }
                tbody {
                    @for e in shown {
                        tr {
                            td { @if let Ok(t) = OffsetDateTime::from_unix_timestamp(e.at) { (when(t)) } }
                            td { (sentence(e)) }
                            td { (details(&e.detail)) }
                        }
                    }
                }
            }
        }
        @if shown.is_empty() && checked.problems.is_empty() { p.muted { "No entries match." } }
        nav.paging aria-label="Pages" {
            @if f.before.is_some() { a href={ "/console/tenants/" (id) "/audit?" (query(None)) } { "Newest" } }
            @if more { @if let Some(last) = shown.last() {
                a href={ "/console/tenants/" (id) "/audit?" (query(Some(last.seq))) } { "Older entries" }
            } }
        }
    };
    Ok(layout::page(&viewer, "Audit", Some(&id), body))
}

fn date_field(name: &str, label: &str, value: &str, problem: Option<String>) -> Markup {
    let described = format!("{name}-problem");
    html! {
        div {
            label for=(name) { (label) }
            input type="date" id=(name) name=(name) value=(value) aria-invalid=[problem.as_ref().map(|_| "true")]
                aria-describedby=[problem.as_ref().map(|_| described.as_str())];
            @if let Some(p) = problem { p.bad id=(described) role="alert" { (p) } }
        }
    }
}

/// Daily bars over 30 days up to today; the hours of the chosen day (today if none).
async fn charts(state: &AppState, id: &byok_domain::TenantId, f: &Filter) -> Result<Markup, PageError> {
    let now = state.broker.clock().now().unix_timestamp();
    let today = now - now.rem_euclid(86_400);
    let start = today - (DAYS - 1) * 86_400;
    let daily = state.broker.key_use_counts(id, start, today + 86_400, 86_400).await?;
    let day = date(&f.day).ok().flatten().unwrap_or(today);
    let hourly = state.broker.key_use_counts(id, day, day + 86_400, 3600).await?;
    let day_name = OffsetDateTime::from_unix_timestamp(day).map(|t| t.date().to_string()).unwrap_or_default();
    Ok(html! {
        h2 { "Key uses per day, last " (DAYS) " days (UTC)" }
        (audit_chart::bars(&format!("Key uses per day over the last {DAYS} days, by reason"), &daily, start, 86_400, DAYS as usize, 5, audit_chart::month_day))
        h2 { "Key uses per hour on " (day_name) " (UTC)" }
        form.filters method="get" action={ "/console/tenants/" (id) "/audit" } {
            div {
                label for="day" { "Day" }
                input type="date" id="day" name="day" value=(day_name);
            }
            @for (k, v) in [("reason", &f.reason), ("since", &f.since), ("until", &f.until)] {
                input type="hidden" name=(k) value=(v);
            }
            div { button.secondary type="submit" { "Show the hours" } }
        }
        (audit_chart::bars(&format!("Key uses per hour on {day_name}, by reason"), &hourly, day, 3600, 24, 3, audit_chart::hour))
    })
}

/// An entry as a sentence.
fn sentence(e: &AuditEntry) -> String {
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
    match e.kind.as_str() {
        "key_use" => match detail["summary"]["count"].as_u64() {
            Some(n) => format!("Key used {n} times: {} (summary)", reason_words(&e.reason)),
            None => format!("Key used: {}", reason_words(&e.reason)),
        },
        "transition" => match (detail["from"].as_str(), detail["to"].as_str()) {
            (Some(from), Some(to)) => format!("State changed from {from} to {to} ({})", e.reason),
            _ => format!("State changed ({})", e.reason),
        },
        "ticket" => format!("Ticket: {}", e.reason.replace('_', " ")),
        "audit" if e.reason == "checkpoint" => "Your history so far signed as a checkpoint (sent to your webhooks)".to_string(),
        other => format!("{}: {}", other.replace('_', " "), e.reason.replace('_', " ")),
    }
}

/// The entry's detail as `key: value` pairs (nested keys dotted, times in UTC), not JSON.
fn details(raw: &str) -> Markup {
    let mut pairs = Vec::new();
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) => flatten("", &v, &mut pairs),
        Err(_) => pairs.push((String::new(), raw.to_string())),
    }
    html! {
        @for (k, v) in pairs.iter().filter(|(k, _)| !k.starts_with("summary") || k == "summary.count") {
            span.pair { @if !k.is_empty() { span.muted { (k.replace('_', " ")) ": " } } (v) }
            " "
        }
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match v {
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        serde_json::Value::Array(items) => out.push((
            prefix.to_string(),
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect::<Vec<_>>().join(", "),
        )),
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Number(n) if is_time(prefix) => out.push((
            prefix.to_string(),
            n.as_i64()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .map_or_else(|| n.to_string(), |t| format!("{} UTC", layout::utc(t).replacen('T', " ", 1).trim_end_matches('Z'))),
        )),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn is_time(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last == "deadline" || last == "at" || last.ends_with("_at") || last == "since" || last == "until"
}

/// The filtered view as JSON lines, newest first, streamed a page at a time.
pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let id = tenant_id(&id)?;
    viewer.may_see(&id)?;
    state.broker.tenant(&id).await?;
    let Query(f) = query.unwrap_or_default();
    let checked = check(&f);
    if let Some((_, problem)) = checked.problems.first() {
        return Err(PageError::Broker(byok_broker::BrokerError::Invalid(problem.clone())));
    }
    let filter = checked.filter;
    let broker = state.broker.clone();
    let tenant = id.clone();
    let pages = futures_util::stream::try_unfold(Some(i64::MAX), move |before| {
        let (broker, tenant, filter) = (broker.clone(), tenant.clone(), filter.clone());
        async move {
            let Some(before) = before else { return Ok(None) };
            let entries = broker.audit_page(&tenant, &filter, before, 1_000).await?;
            let Some(last) = entries.last().map(|e| e.seq) else { return Ok(None) };
            let mut chunk = String::with_capacity(entries.len() * 256);
            for e in &entries {
                chunk.push_str(&serde_json::to_string(&crate::views::audit_entry(e.clone())).unwrap_or_default());
                chunk.push('\n');
            }
            let next = (entries.len() == 1_000).then_some(last);
            Ok::<_, byok_broker::BrokerError>(Some((bytes::Bytes::from(chunk), next)))
        }
    });
    let name = format!("attachment; filename=\"audit-{id}.jsonl\"");
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson".to_string()), (axum::http::header::CONTENT_DISPOSITION, name)],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}
