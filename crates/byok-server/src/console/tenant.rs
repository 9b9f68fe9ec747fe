//! A tenant's overview: its state in a sentence, each region's last probe with the step of the
//! customer guide a failing one needs, the countdown while revoked, and while onboarding the
//! setup to copy and a "Verify now" button; its webhooks and email contacts ([`super::webhooks`]).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use byok_broker::Verification;
use byok_domain::RegionAccess;
use byok_domain::{TenantId, TenantState};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, when};
use super::session::{CsrfForm, Flash, Viewer};
use super::shown::Shown;
use super::{PageError, tenant_id};
use crate::state::AppState;

/// The overview's query: which setup form an onboarding tenant's page shows.
#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    setup: String,
}

pub async fn overview(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    query: Result<Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, PageError> {
    let (verification, flash) = match state.console.take_flash(&viewer.session) {
        Some(Flash::Verification(v)) => (Some(v), None),
        other => (None, other),
    };
    let Query(query) = query.unwrap_or_default();
    render(&state, &viewer, &id, verification, flash.as_ref(), &query.setup).await
}

/// "Verify now": the customer's setup checked region by region; the answer is shown by the
/// overview this redirects to (POST-redirect-GET).
pub async fn verify(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let tenant = tenant_id(&id)?;
    viewer.may_see(&tenant)?;
    let verification = state.broker.verify_tenant(&tenant).await?;
    state.console.set_flash(&viewer.session, Flash::Verification(verification));
    Ok(Redirect::to(&format!("/console/tenants/{tenant}")))
}

/// The overview, with a verification's answer or what a form just did, when there is one.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    raw: &str,
    verification: Option<Verification>,
    flash: Option<&Flash>,
    setup_form: &str,
) -> Result<Markup, PageError> {
    let id = tenant_id(raw)?;
    viewer.may_see(&id)?;
    let tenant = state.broker.tenant(&id).await?;
    let held_since = state.broker.held_since(&id).await?;
    let check = state.broker.last_check(&id);
    let shown = Shown::of(&tenant, held_since, check.as_ref());
    let now = revoked_now(state, &tenant.state).await?;
    // The policies to copy, only when a region is denied (the cards of `steps`).
    let denied = check.as_ref().is_some_and(|c| c.regions.iter().any(|r| matches!(r.access, RegionAccess::Denied { .. })));
    let setup = match denied && tenant.state != TenantState::Onboarding {
        true => Some(state.broker.instructions(&id).await?),
        false => None,
    };
    let body = html! {
        div hidden data-watch={ "/console/tenants/" (id) "/state" } data-state=(shown.name()) {}
        h1 { "Tenant " (id) }
        p.state { (shown.sentence()) }
        p.muted {
            "AWS account " (tenant.binding.account) " · location " (tenant.location) " · "
            @match (tenant.binding.role(), tenant.binding.mode.context_tag()) {
                _ if tenant.binding.mode.is_provider() => { "provider-held keys (in the provider's account, until you bring yours)" }
                (Some((role, _)), _) => { "BYOK, role " (role) }
                (None, Some(tag)) => { "customer-managed keys (key policy), context tag " code { (tag) } }
                (None, None) => { "customer-managed keys (key policy)" }
            }
        }
        @if let (TenantState::Revoked { deadline, .. }, Some(now)) = (&tenant.state, now) {
            (layout::deadline(*deadline, now))
            @if now < *deadline { p { "To restore: follow the steps named below in every region, then press " a href={ "/console/tenants/" (id) "/ticket" } { "Access restored — verify now" } " on the ticket." } }
        }
        @if let TenantState::Destroyed { at } = tenant.state {
            div.card role="status" {
                h2 { "This tenant's data is erased" }
                p { "On " (when(at)) " the grace period ended with access to the keys still revoked. The provider erased "
                    "its copies of this tenant's data keys, and disabled and scheduled for deletion the provider-held key that "
                    "sealed them, so the encrypted data is not readable any more, backups included." }
                p { "Nothing can restore it. Re-enabling your AWS keys does not bring it back. To use the product again, your "
                    "provider sets up a new tenant with new keys." }
            }
        }
        @if let Some(v) = &verification { (verification_card(v)) }
        @if tenant.state == TenantState::Onboarding { (onboarding(state, viewer, &id, setup_form).await?) }
        @if !matches!(tenant.state, TenantState::Destroyed { .. } | TenantState::Onboarding) {
        h2 { "Regions" }
        @match &check {
            Some(check) => {
                p.muted { "Last checked " (when(check.at)) ", " (purpose_words(check.purpose)) "." }
                table {
                    thead { tr { th { "Region" } th { "Result" } th { "Answered in" } } }
                    tbody {
                        @for r in &check.regions {
                            tr {
                                td { (r.region) }
                                td { (access_words(&r.access)) }
                                td { @if let Some(ms) = r.latency_ms { (ms.max(1)) " ms" } }
                            }
                        }
                    }
                }
                @if let Some(setup) = &setup { (super::steps::cards(&check.regions, &tenant, setup)) }
            }
            None => {
                p.muted { "Not checked on this node yet." }
                ul { @for k in &tenant.binding.keys { li { (k.region) ": " (k.key_arn) } } }
            }
        }
        }
        (super::webhooks::section(state, viewer, &id, flash).await?)
    };
    Ok(layout::page(viewer, &format!("Tenant {id}"), Some(&id), body))
}

/// What the page's script watches (`/console/tenants/{id}/state`): the tenant's state as its
/// pages show it; a page whose state changed reloads itself.
pub async fn watch(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, PageError> {
    let id = tenant_id(&id)?;
    viewer.may_see(&id)?;
    Ok(axum::Json(serde_json::json!({ "state": shown(&state, &id).await?.0.name() })))
}

/// The tenant and its state as its pages show it (what [`watch`] answers).
pub(super) async fn shown(state: &AppState, id: &TenantId) -> Result<(Shown, byok_domain::Tenant), PageError> {
    let tenant = state.broker.tenant(id).await?;
    let held_since = state.broker.held_since(id).await?;
    Ok((Shown::of(&tenant, held_since, state.broker.last_check(id).as_ref()), tenant))
}

/// The time a revoked tenant's deadline is judged by (the broker's deadline clock), only for a
/// revoked tenant: no store round trip on other pages.
pub(super) async fn revoked_now(state: &AppState, tenant: &TenantState) -> Result<Option<time::OffsetDateTime>, PageError> {
    Ok(match tenant {
        TenantState::Revoked { .. } => Some(state.broker.deadline_clock().await?),
        _ => None,
    })
}

/// Why the last check ran, in the customer's words (the STS session names are for CloudTrail).
fn purpose_words(purpose: byok_kms::Purpose) -> &'static str {
    use byok_kms::Purpose;
    match purpose {
        Purpose::Probe => "by the periodic check",
        Purpose::Restore => "when a restoration was verified",
        Purpose::Onboard => "when the setup was verified",
        Purpose::Data => "while serving data",
        _ => "by the provider",
    }
}

fn access_words(access: &RegionAccess) -> Markup {
    match access {
        RegionAccess::Ok => html! { span.ok { "works (role assumed, key enabled, a test decryption succeeded)" } },
        RegionAccess::Denied { denial, message } => html! {
            span.bad { "denied: " (byok_broker::remedy::detected(*denial, "")) }
            @if !message.is_empty() { br; small.muted { "AWS said: " (message) } }
        },
        RegionAccess::Unknown { message } => html! { span.warn { "could not be checked (not a revocation): " (message) } },
    }
}

fn verification_card(v: &Verification) -> Markup {
    html! {
        div.card role="status" {
            @if v.ok { p.ok { strong { "Verified: the tenant is active." } } }
            @else { p.bad { strong { "Not verified yet." } " Fix what is listed, then verify again." } }
            p { "Role: " @if v.trust_ok { span.ok { "assumable with the external id, and not without" } } @else { span.bad { (v.trust_problem.clone().unwrap_or_default()) } } }
            @for w in &v.warnings { p.warn { (w) } }
            ul { @for r in &v.regions { li { strong { (r.region) } ": " @if r.ok { span.ok { "ok" } } @else { span.bad { (r.problem.clone().unwrap_or_default()) } } } } }
        }
    }
}

/// The setup forms a customer can choose from, as the onboarding tabs name them.
const FORMS: [(&str, &str); 3] = [("shell", "Shell (aws CLI)"), ("cloudformation", "CloudFormation"), ("terraform", "Terraform")];

/// Onboarding as numbered steps, "Verify now" first: the setup in the form the customer
/// chooses (tabs that are links, so they work without a script), the policies collapsed.
async fn onboarding(state: &AppState, viewer: &Viewer, id: &TenantId, chosen: &str) -> Result<Markup, PageError> {
    let setup = state.broker.instructions(id).await?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let chosen = FORMS.iter().find(|(k, _)| *k == chosen).map_or("shell", |(k, _)| k);
    let (text, how) = match chosen {
        "cloudformation" => (
            &setup.cloudformation,
            "Deploy the template as a stack in each region of the location (the role is created once, by the stack in the first region).",
        ),
        "terraform" => (&setup.terraform, "Save it as main.tf, then terraform init and terraform apply with administrator credentials."),
        _ => (&setup.commands, "Run the script in a shell with administrator credentials (it writes the policy files it uses beside it)."),
    };
    Ok(html! {
        section.card aria-labelledby="verify-title" {
            h2 #verify-title { "When the setup is done, verify it" }
            @if setup.role_name.is_some() {
                p { "The provider checks every region: the role can be assumed with your external id (and not without it), and each key really encrypts and decrypts." }
            } @else {
                p { "The provider checks every region: each key is found by its alias and really encrypts and decrypts for the provider, under your tenant's encryption context." }
            }
            form method="post" action={ "/console/tenants/" (id) "/verify" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button type="submit" { "Verify now" }
            }
        }
        h2 #setup { "Set up your AWS account" }
        ol.steps {
            li { "Sign in to AWS account " strong { (setup.account_id) } " with administrator rights." }
            li {
                @match &setup.role_name {
                    Some(role) => { "Choose how to create the role " code { (role) } " and a key with the alias " }
                    None => { "Choose how to create a key whose policy grants the provider (" code { (setup.provider_principal) } "), with the alias " }
                }
                code { (setup.alias) } " in "
                (setup.regions.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" and ")) ":"
                nav.tabs aria-label="Setup forms" {
                    @for (key, name) in FORMS {
                        a href={ "/console/tenants/" (id) "?setup=" (key) "#setup" } aria-current=[(key == chosen).then_some("page")] { (name) }
                    }
                }
                p { (how) }
                div.copyable {
                    pre id="setup-text" tabindex="0" { (text) }
                    button.secondary type="button" data-copy="setup-text" { "Copy" }
                }
            }
            li { "Press " strong { "Verify now" } " (above). If something is missing, the answer names the region and what to fix." }
        }
        @if let (Some(role), Some(trust)) = (&setup.role_name, &setup.trust_policy) {
            details {
                summary { "The trust policy of " (role) }
                div.copyable {
                    pre id="trust-policy" tabindex="0" { (pretty(trust)) }
                    button.secondary type="button" data-copy="trust-policy" { "Copy" }
                }
            }
        }
        @if let Some(tag) = setup.mode.context_tag() {
            p { "Your context tag is " code { (tag) } ": every use of your keys by the provider carries "
                code { (byok_kms::CONTEXT_TAG_KEY) " = " (tag) } " in its encryption context, so your CloudTrail shows it. It cannot be changed once the tenant is active." }
        }
        details {
            summary { "The key policy (each region)" }
            div.copyable {
                pre id="key-policy" tabindex="0" { (pretty(&setup.key_policy)) }
                button.secondary type="button" data-copy="key-policy" { "Copy" }
            }
        }
    })
}
