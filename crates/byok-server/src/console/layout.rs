//! The page frame and the small pieces every page shares.

use byok_domain::TenantState;
use maud::{DOCTYPE, Markup, html};
use time::format_description::well_known::Rfc3339;

use super::session::Viewer;

/// RFC 3339 in UTC, to the second.
pub fn utc(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · byok" }
            link rel="stylesheet" href="/console/static/console.css";
        }
    }
}

/// A page for someone not signed in (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header { span.brand { "byok" } }
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
            (head(title))
            body {
                header {
                    span.brand { "byok" }
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

/// The tenant's state as a sentence; `held_since`: its revocation is held for a person (the
/// tenant is still `active` in the store, but its key is not served meanwhile).
pub fn state_sentence(state: &TenantState, held_since: Option<time::OffsetDateTime>) -> Markup {
    match state {
        TenantState::Onboarding => html! { span.warn { "Onboarding: the setup has not been verified yet." } },
        TenantState::Active if held_since.is_some() => html! {
            span.warn {
                "Suspended under review since " (held_since.map(utc).unwrap_or_default()) " UTC: access to your keys was refused, "
                "and the provider is confirming it before anything else happens. Your data is not available meanwhile; "
                "no deadline is running. If you did not mean to revoke access, restore it in AWS now."
            }
        },
        TenantState::Active => html! { span.ok { "Active: your data is available to your users and the provider's systems." } },
        TenantState::Revoked { since, .. } => html! {
            span.bad { "Revoked since " (utc(*since)) " UTC: the product is offline for your users and the provider." }
        },
        TenantState::Destroyed { at } => html! {
            span.bad { "Destroyed on " (utc(*at)) " UTC: the keys are erased and the data cannot be recovered." }
        },
    }
}

/// A deadline: UTC from the server, the viewer's own time zone and a countdown by script.
pub fn deadline(deadline: time::OffsetDateTime) -> Markup {
    html! {
        div.card data-deadline=(utc(deadline)) {
            div { "Restore access before " strong { (utc(deadline)) " UTC" } }
            div.local.muted {}
            div.countdown.left.bad { "until " (utc(deadline)) " UTC" }
        }
    }
}
