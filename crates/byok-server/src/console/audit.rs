//! The tenant's audit log: filtered by reason and time, paginated, with a chart of key uses per
//! hour by reason over the last seven days — an inline SVG drawn here, no script, no CDN.

use axum::extract::{Path, Query, State};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use time::OffsetDateTime;

use super::PageError;
use super::layout::{self, when};
use super::session::Viewer;
use super::tenant::tenant_id;
use crate::state::AppState;

const PAGE: usize = 50;
const REASONS: [&str; 3] = ["data", "probe", "restore"];
const COLOURS: [&str; 3] = ["#2f5d9b", "#8a8f98", "#1e7b45"];

#[derive(Debug, Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    reason: String,
    /// Only entries at or after this date (YYYY-MM-DD, UTC).
    #[serde(default)]
    since: String,
    #[serde(default)]
    after: i64,
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
    let Query(filter) = query.unwrap_or_default();
    let since = time::Date::parse(&filter.since, time::macros::format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp());
    // Walk forward from `after` until a page of matching entries is found (bounded).
    let mut after = filter.after.max(0);
    let mut shown = Vec::new();
    let mut more = false;
    for _ in 0..20 {
        let batch = state.broker.audit_log(Some(&id), after, 500).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in batch {
            let reason_ok = filter.reason.is_empty() || e.reason == filter.reason || e.kind == filter.reason;
            if reason_ok && since.is_none_or(|s| e.at >= s) {
                if shown.len() == PAGE {
                    more = true;
                    break;
                }
                shown.push(e);
            }
        }
        if more {
            break;
        }
    }
    let chart = chart(&state, &id).await?;
    let next = shown.last().map(|e| e.seq).unwrap_or(filter.after);
    let body = html! {
        h1 { "Audit log" }
        p.muted { "Every use of your key with its reason (the same reason is the STS session name in your own CloudTrail), every state change, every ticket event." }
        h2 { "Key uses per hour, last 7 days" }
        (chart)
        h2 { "Entries" }
        form.filters method="get" action={ "/console/tenants/" (id) "/audit" } {
            div {
                label for="reason" { "Reason" }
                select id="reason" name="reason" {
                    option value="" selected[filter.reason.is_empty()] { "all" }
                    @for r in ["data", "probe", "restore", "onboard", "transition", "ticket"] {
                        option value=(r) selected[filter.reason == r] { (r) }
                    }
                }
            }
            div {
                label for="since" { "Since (YYYY-MM-DD, UTC)" }
                input type="text" id="since" name="since" value=(filter.since) placeholder="2026-11-01";
            }
            div { button type="submit" { "Filter" } }
        }
        table {
            thead { tr { th { "#" } th { "When (UTC)" } th { "Kind" } th { "Reason" } th { "Detail" } } }
            tbody {
                @for e in &shown {
                    tr {
                        td { (e.seq) }
                        td { @if let Ok(t) = OffsetDateTime::from_unix_timestamp(e.at) { (when(t)) } }
                        td { (e.kind) }
                        td { (e.reason) }
                        td { code { (e.detail) } }
                    }
                }
            }
        }
        @if shown.is_empty() { p.muted { "No entries match." } }
        @if more {
            p { a href={ "/console/tenants/" (id) "/audit?reason=" (filter.reason) "&since=" (filter.since) "&after=" (next) } { "Next page" } }
        }
    };
    Ok(layout::page(&viewer, "Audit", Some(&id), body))
}

/// Stacked bars: 168 hours, one colour per reason.
async fn chart(state: &AppState, id: &byok_domain::TenantId) -> Result<Markup, PageError> {
    let now = state.broker.clock().now().unix_timestamp();
    let start = now - 7 * 86_400;
    let mut counts = vec![[0u32; 3]; 168];
    let mut after = 0;
    for _ in 0..40 {
        let batch = state.broker.audit_log(Some(id), after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in batch.iter().filter(|e| e.kind == "key_use" && e.at >= start && e.at <= now) {
            if let Some(r) = REASONS.iter().position(|r| *r == e.reason) {
                let hour = usize::try_from((e.at - start) / 3600).unwrap_or(0).min(167);
                // A summary row stands for `count` routine probes.
                let n = serde_json::from_str::<serde_json::Value>(&e.detail)
                    .ok()
                    .and_then(|d| d["summary"]["count"].as_u64())
                    .map_or(1, |c| u32::try_from(c).unwrap_or(u32::MAX));
                counts[hour][r] = counts[hour][r].saturating_add(n);
            }
        }
    }
    let max = counts.iter().map(|c| c.iter().sum::<u32>()).max().unwrap_or(0).max(1);
    let (w, h, left, bottom) = (672.0_f64, 160.0_f64, 30.0_f64, 20.0_f64);
    let bar = (w - left) / 168.0;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {total}\" width=\"100%\" role=\"img\" aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Key uses per hour over the last 7 days, by reason</title>",
        total = h + bottom
    );
    svg.push_str(&format!("<text x=\"0\" y=\"10\">{max}</text><text x=\"0\" y=\"{h}\">0</text>"));
    for (i, c) in counts.iter().enumerate() {
        let mut y = h;
        for (r, n) in c.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let height = f64::from(*n) / f64::from(max) * (h - 10.0);
            y -= height;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{height:.1}\" fill=\"{fill}\"><title>{n} {reason}</title></rect>",
                x = left + i as f64 * bar,
                bw = (bar - 0.5).max(0.5),
                fill = COLOURS[r],
                reason = REASONS[r],
            ));
        }
    }
    for day in 0..=7 {
        let x = left + f64::from(day) * 24.0 * bar;
        let label = OffsetDateTime::from_unix_timestamp(start + i64::from(day) * 86_400)
            .map(|t| format!("{:02}-{:02}", u8::from(t.month()), t.day()))
            .unwrap_or_default();
        svg.push_str(&format!("<text x=\"{x:.1}\" y=\"{y}\">{label}</text>", y = h + 15.0));
    }
    svg.push_str("</svg>");
    Ok(html! {
        div.card {
            (PreEscaped(svg))
            p.legend {
                @for r in REASONS.iter() {
                    span { span class={ "swatch " (r) } {} (r) }
                }
            }
        }
    })
}
