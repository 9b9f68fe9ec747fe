//! Support tickets: opened on revocation with the exact title `BYOK revocation started for AWS
//! account <account id>`, saying what was detected where, the deadline in UTC and the
//! restoration steps for each region; a customer comment saying it is ready starts restoration
//! and the broker answers on the ticket; reminders before the deadline; the outcome resolves
//! (restored) or closes (destroyed) it.
//!
//! Every text the broker writes on a ticket is built here; every write goes through
//! `Broker::post` (comment, status change and audit entry together).

use byok_domain::{Author, Tenant, TenantId, TicketStatus};
use byok_store::{Comment, Ticket};
use serde_json::json;
use time::OffsetDateTime;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::{AuditEvent, TicketEvent};
use crate::outcomes::Restoration;
use crate::remedy;
use byok_domain::{RegionAccess, RegionResult};

/// The ticket title, exactly as the customer guide names it.
pub fn title(tenant: &Tenant) -> String {
    format!("BYOK revocation started for AWS account {}", tenant.binding.account)
}

/// A time as a person reads it in a ticket: `2027-01-15 08:00:00 UTC` (to the second, rounded
/// down: never later than the real deadline).
pub fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
        .unwrap_or_default()
}

/// The first comment: what was detected, where, the deadline, and what to do.
/// `role_name`: the tenant's role (BYOK), `None` for a key-policy (CMK) tenant.
pub fn opening(tenant: &Tenant, detected: &[RegionResult], deadline: OffsetDateTime, role_name: Option<&str>) -> String {
    let mut body = format!(
        "We detected that access to the BYOK encryption keys of tenant {} (AWS account {}, location {}) was revoked. \
         The product is offline for your end users and for our systems.\n\nDetected:\n",
        tenant.id, tenant.binding.account, tenant.location
    );
    for r in detected {
        let what = match &r.access {
            RegionAccess::Denied { denial, message } => remedy::detected(*denial, message),
            RegionAccess::Unknown { message } => format!("not checked: {message}"),
            RegionAccess::Ok => "access works".to_string(),
        };
        body.push_str(&format!("- {}: {what}\n", r.region));
    }
    body.push_str(&format!(
        "\nYou can restore access until {}. After that the data is erased and cannot be recovered.\n\nTo restore, in every region of the location (the customer guide in the console, {}, {}):\n",
        utc(deadline),
        remedy::GUIDE,
        if role_name.is_some() { "steps 1-13" } else { "its customer-managed keys section" }
    ));
    for key in &tenant.binding.keys {
        body.push_str(&format!("- {}\n", remedy::restore_region(key.region.as_str(), role_name, key.key_arn.as_str())));
    }
    body.push_str("\nThen reply on this ticket with \"ready\" and we verify every region at once (step 13).");
    body
}

/// The same opening, for a ticket opened after a restart lost the original.
pub fn opening_after_restart(tenant: &Tenant, deadline: OffsetDateTime, role_name: Option<&str>) -> String {
    format!(
        "{}\n\n(This ticket was opened after a restart of the broker; the audit log has the detection.)",
        opening(tenant, &[], deadline, role_name)
    )
}

/// Whether a customer's comment says they are ready for restoration: `ready`, `restored` or
/// `please restore` as whole words ("already" is not "ready"), in a sentence that is not a
/// question ("Are you ready?") and not negated in the three words before ("not ready", "not
/// yet restored", "isn't ready", "I don't think we're ready", "we won't be ready until
/// Monday", "cannot restore").
pub fn says_ready(body: &str) -> bool {
    let lower = body.to_lowercase().replace(['\u{2019}', '\''], "");
    // Each sentence with the mark that ends it; a question says nothing either way.
    let mut sentences = Vec::new();
    let mut start = 0;
    for (i, c) in lower.char_indices() {
        if matches!(c, '.' | '!' | '?' | '\n' | ';') {
            sentences.push((&lower[start..i], c == '?'));
            start = i + c.len_utf8();
        }
    }
    sentences.push((&lower[start..], false));
    sentences.into_iter().filter(|(_, question)| !question).any(|(sentence, _)| sentence_says_ready(sentence))
}

fn sentence_says_ready(sentence: &str) -> bool {
    let words: Vec<&str> = sentence.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let negated = |i: usize| {
        words[i.saturating_sub(3)..i].iter().any(|w| {
            matches!(
                *w,
                "not"
                    | "no"
                    | "never"
                    | "nothing"
                    | "notyet"
                    | "isnt"
                    | "arent"
                    | "wasnt"
                    | "werent"
                    | "dont"
                    | "doesnt"
                    | "didnt"
                    | "wont"
                    | "cant"
                    | "cannot"
                    | "couldnt"
                    | "havent"
                    | "hasnt"
                    | "wouldnt"
                    | "shouldnt"
            )
        })
    };
    words.iter().enumerate().any(|(i, w)| match *w {
        "ready" | "restored" => !negated(i),
        "restore" => i > 0 && words[i - 1] == "please" && !negated(i - 1),
        _ => false,
    })
}

pub fn reminder(deadline: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = deadline - now;
    format!(
        "Reminder: access to your keys is still revoked. The deadline is {}, in {} day(s) and {} hour(s); after it the data cannot be recovered. Reply \"ready\" once every region is restored.",
        utc(deadline),
        left.whole_days(),
        left.whole_hours() % 24
    )
}

/// Which reminder is due (0 none, 1 five days before, 2 one day before).
pub fn reminder_due(deadline: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let left = deadline - now;
    if left <= time::Duration::days(1) {
        2
    } else if left <= time::Duration::days(5) {
        1
    } else {
        0
    }
}

pub const RESTORED: &str = "Every region verified: access is restored for your end users and our systems. Resolving this ticket.";
pub const RESTORED_AFTER_RESTART: &str = "Access is restored (confirmed after a restart of the broker). Resolving this ticket.";
pub const DESTROYED: &str = "The restoration deadline passed: the tenant's keys are erased and its data cannot be recovered, even if access is restored now. Closing this ticket.";
pub const DESTROYED_AFTER_RESTART: &str = "The restoration deadline passed: the tenant's keys are erased. Closing this ticket.";

/// The answer to a "ready" that did not restore access: what is still to do.
pub fn not_restored(restoration: &Restoration) -> String {
    let mut body = String::from("We checked every region; access is not restored yet. Still to do:\n");
    for missing in &restoration.missing {
        body.push_str(&format!("- {missing}\n"));
    }
    body.push_str("Reply \"ready\" again once done.");
    body
}

#[cfg(test)]
mod tests {
    use super::says_ready;

    #[test]
    fn ready_is_a_whole_word_and_not_negated() {
        for yes in [
            "ready",
            "Ready.",
            "We are ready for restoration",
            "Keys re-enabled in every region, ready for restoration",
            "All restored!",
            "please restore",
            "READY",
            "Are you there? We are ready.",
            "Done. Ready for restoration!",
        ] {
            assert!(says_ready(yes), "{yes}");
        }
        for no in [
            "already done?",
            "not ready",
            "We are not yet ready",
            "isn't ready",
            "it's not restored yet",
            "restore what?",
            "readying",
            "unready",
            "no, not restored",
            "I don't think we're ready yet",
            "I don\u{2019}t think we\u{2019}re ready yet",
            "We won't be ready until Monday",
            "We can't be ready before Friday",
            "We cannot restore the key yet",
            "Are you ready?",
            "Is it restored? Please advise",
            "We haven't restored it",
        ] {
            assert!(!says_ready(no), "{no}");
        }
    }
}

/// A status change that goes with a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub status: TicketStatus,
    pub reminders_sent: Option<i64>,
    pub event: TicketEvent,
}

impl Broker {
    /// The tenant's revocation ticket that is not closed (open, or resolved to reopen), if any.
    pub(crate) async fn revocation_ticket(&self, tenant: &Tenant) -> Result<Option<Ticket>, BrokerError> {
        let title = title(tenant);
        Ok(self.store.tickets(Some(&tenant.id)).await?.into_iter().find(|t| t.title == title && t.status != TicketStatus::Closed))
    }

    /// Opens the tenant's revocation ticket with its first comment, and audits it. `None` when
    /// another node opened it first (the store keeps one live ticket per tenant).
    pub(crate) async fn open_revocation_ticket(
        &self,
        tenant: &Tenant,
        body: &str,
        reconciled: bool,
    ) -> Result<Option<Ticket>, BrokerError> {
        let opened = match self.store.open_ticket(&tenant.id, &title(tenant), body, self.clock.now()).await {
            Ok(t) => t,
            Err(byok_store::StoreError::TicketExists(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.audit(
            Some(&tenant.id),
            AuditEvent::Ticket(TicketEvent::Opened),
            json!({ "ticket": opened.id, "title": opened.title, "reconciled": reconciled }),
        )
        .await;
        Ok(Some(opened))
    }

    /// The broker writes on a ticket: a comment and, with `change`, the new status (and
    /// reminder count), audited as the change's event.
    pub(crate) async fn post(&self, tenant: &TenantId, ticket: i64, body: &str, change: Option<Change>) -> Result<(), BrokerError> {
        let now = self.clock.now();
        self.store.add_comment(ticket, Author::Byok, body, now).await?;
        if let Some(change) = change {
            self.store.update_ticket(ticket, change.status, change.reminders_sent, now).await?;
            self.audit(Some(tenant), AuditEvent::Ticket(change.event), json!({ "ticket": ticket, "reminder": change.reminders_sent }))
                .await;
        }
        Ok(())
    }

    /// Tickets of one tenant, or all.
    pub async fn tickets(&self, tenant: Option<&TenantId>) -> Result<Vec<Ticket>, BrokerError> {
        Ok(self.store.tickets(tenant).await?)
    }

    pub async fn ticket(&self, id: i64) -> Result<(Ticket, Vec<Comment>), BrokerError> {
        self.store.ticket(id).await?.ok_or(BrokerError::UnknownTicket(id))
    }

    /// A comment on a ticket. From the customer, one that says "ready" starts restoration at
    /// once; the broker answers on the ticket with the outcome.
    pub async fn comment(&self, ticket: i64, author: Author, body: &str) -> Result<(Comment, Option<Restoration>), BrokerError> {
        let (t, _) = self.ticket(ticket).await?;
        if t.status == TicketStatus::Closed {
            return Err(BrokerError::Invalid(format!(
                "ticket {ticket} is closed ({}); it takes no more comments: contact the provider another way",
                t.title
            )));
        }
        let comment = self.store.add_comment(ticket, author, body, self.clock.now()).await?;
        self.audit(
            Some(&t.tenant),
            AuditEvent::Ticket(TicketEvent::Comment),
            json!({ "ticket": ticket, "author": author, "comment": comment.id }),
        )
        .await;
        if author == Author::Customer && t.status == TicketStatus::Open && says_ready(body) {
            let restoration = match self.restore(&t.tenant).await {
                Ok(r) => r,
                Err(e) => {
                    self.post(&t.tenant, ticket, &format!("We could not restore access: {e}"), None).await?;
                    return Err(e);
                }
            };
            return Ok((comment, Some(restoration)));
        }
        Ok((comment, None))
    }

    /// Answers the open ticket with a restoration's outcome.
    pub(crate) async fn answer_restoration(&self, tenant: &Tenant, restoration: &Restoration) -> Result<(), BrokerError> {
        let Some(open) = self.revocation_ticket(tenant).await? else { return Ok(()) };
        if restoration.restored {
            let change = Change { status: TicketStatus::Resolved, reminders_sent: None, event: TicketEvent::Resolved };
            self.post(&tenant.id, open.id, RESTORED, Some(change)).await
        } else {
            self.post(&tenant.id, open.id, &not_restored(restoration), None).await?;
            // An event of its own (`restoration.refused`): the customer's systems hear what is
            // still missing, not only the ticket.
            let missing: Vec<&str> = restoration.missing.iter().map(String::as_str).collect();
            self.audit(
                Some(&tenant.id),
                AuditEvent::Ticket(TicketEvent::RestorationRefused),
                json!({ "ticket": open.id, "missing": missing }),
            )
            .await;
            Ok(())
        }
    }
}
