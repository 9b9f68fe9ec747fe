//! The page frame and the small pieces every page shares.

use maud::{DOCTYPE, Markup, html};
use time::format_description::well_known::Rfc3339;

use super::session::Viewer;

/// RFC 3339 in UTC, to the second.
pub fn utc(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

/// A moment as a person reads it: UTC from the server, readable without a script
/// (`2027-01-15 08:00:00 UTC`); the console's script adds the viewer's own time with its zone's
/// name beside it (`console.js`, every `time[datetime]`).
pub fn when(t: time::OffsetDateTime) -> Markup {
    let rfc = utc(t);
    let readable = rfc.replacen('T', " ", 1).trim_end_matches('Z').to_string();
    html! { time datetime=(rfc) { (readable) " UTC" } }
}

/// What is left until `deadline` as a person says it: "14d 3h 12m", "5h 7m", "42m".
pub fn time_left(left: time::Duration) -> String {
    let minutes = left.whole_minutes().max(0);
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

fn head(product: &str, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · " (product) }
            link rel="stylesheet" href="/console/static/console.css";
        }
    }
}

/// A page for someone not signed in (sign-in, the guide, errors), under `product`'s name.
pub fn bare(product: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(product, title))
            body {
                header { span.brand { (product) } }
                main { (body) }
            }
        }
    }
}

/// A page for a signed-in viewer, with the navigation their scope reaches.
pub fn page(viewer: &Viewer, title: &str, tenant: Option<&byok_domain::TenantId>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&viewer.product, title))
            body {
                header {
                    span.brand { (viewer.product) }
                    nav aria-label="Console" {
                        @if viewer.is_operator() { a href="/console/operator" { "All tenants" } }
                        @if let Some(id) = tenant {
                            a href={ "/console/tenants/" (id) } { "Overview" }
                            a href={ "/console/tenants/" (id) "/ticket" } { "Ticket" }
                            a href={ "/console/tenants/" (id) "/audit" } { "Audit" }
                        }
                    }
                    form method="post" action="/console/signout" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button.secondary type="submit" { "Sign out" }
                    }
                }
                main { (body) }
                script src="/console/static/console.js" {}
            }
        }
    }
}

/// Hours before the deadline when the countdown turns into a red banner.
pub const URGENT_HOURS: i64 = 24;

/// A revoked tenant's deadline judged at `now` (the clock restorations are judged by): the
/// countdown; in its last [`URGENT_HOURS`] a red banner; once passed, a clear "deadline passed"
/// (a restoration is refused from then on, and the next pass erases the keys). The script
/// ticks the countdown from the time left by the server's clock (`data-left-seconds`), not by
/// the viewer's, which may be wrong, and shows the viewer's own time.
pub fn deadline(deadline: time::OffsetDateTime, now: time::OffsetDateTime) -> Markup {
    let left = deadline - now;
    if left <= time::Duration::ZERO {
        return html! {
            div.card.banner.passed role="alert" {
                strong { "Deadline passed." }
                " The grace period ended on " (when(deadline)) " with access still revoked. Restoring access in AWS no "
                "longer brings the data back: the provider erases this tenant's keys at its next check."
            }
        };
    }
    let urgent = left < time::Duration::hours(URGENT_HOURS);
    html! {
        div.card.banner.urgent[urgent] data-deadline=(utc(deadline)) data-left-seconds=(left.whole_seconds()) role=[urgent.then_some("alert")] {
            @if urgent { div { strong { "Less than " (URGENT_HOURS) " hours left." } " After the deadline the data is erased and cannot be recovered." } }
            div { "Restore access before " strong { (when(deadline)) } }
            div.countdown.left { (time_left(left)) " left" }
        }
    }
}
