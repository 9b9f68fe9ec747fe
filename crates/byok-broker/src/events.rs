//! What the audit log records, as typed events: each gives the `kind` and `reason` stored (and
//! hashed) with an entry (see [`crate::audit`]).

use byok_kms::Purpose;

/// What an audit entry records: its `kind` and `reason` as stored (and hashed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// A use of the customer's key; the reason is the purpose (`data`, `probe`, `restore`,
    /// `onboard`), which is also the STS session name the customer sees.
    KeyUse(Purpose),
    Transition(TransitionReason),
    /// A change to the tenant's keys, written with the change.
    Keys(KeyEvent),
    Ticket(TicketEvent),
    /// A token issued or refused outside the operator's API.
    Token(TokenEvent),
    /// A test event a person asked to send to a webhook endpoint.
    WebhookTest,
    /// The tenant's history signed at this entry, sent to its webhooks (see
    /// [`crate::audit_checkpoints`]).
    Checkpoint,
}

/// What happened to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEvent {
    /// A product service signed in with its AWS IAM role and got a short-lived token.
    AwsSignIn,
}

/// What changed in a tenant's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEvent {
    /// A new generation seals from now on.
    Rotated,
    /// The minimum decryption generation moved.
    MinDecryption,
    /// Retired generations' wrapped keys were erased.
    Shredded,
    /// One region's customer key was replaced, every generation rewrapped under it.
    Rekeyed,
    /// The tenant moved to another key mode (BYOK to CMK): every region's key and every kept
    /// generation rewrapped, switched in one write.
    Migrated,
    /// A tenant on provider-held keys moved onto the customer's: every kept generation
    /// rewrapped under them and a fresh generation made under them alone, switched in one write.
    Adopted,
    /// An adoption finished: generations older than the fresh one retired and shredded.
    AdoptionFinished,
    /// A provider-held tenant's own keys were disabled and their deletion scheduled.
    ProviderKeysDestroyed,
    /// Deleted wrapped keys were proven gone from the database's files.
    Erased,
    /// A destroyed tenant's provider-held key was disabled and its deletion scheduled.
    ProviderLayerDestroyed,
}

/// Why a tenant changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionReason {
    Verified,
    Revocation,
    Restoration,
    Deadline,
    /// Not a state change: a revocation held for a person (too many at once).
    Held,
    HoldDismissed,
    /// The held tenant's access works again.
    HoldCleared,
    /// A person released the hold: the tenant is revoked (its `revocation` entry follows).
    HoldReleased,
}

/// What happened on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEvent {
    Opened,
    Comment,
    Reminder,
    Resolved,
    Closed,
    /// The customer said access is restored, and a check found it is not yet.
    RestorationRefused,
}

impl AuditEvent {
    pub fn kind(self) -> &'static str {
        match self {
            AuditEvent::KeyUse(_) => "key_use",
            AuditEvent::Transition(_) => "transition",
            AuditEvent::Keys(_) => "keys",
            AuditEvent::Ticket(_) => "ticket",
            AuditEvent::Token(_) => "token",
            AuditEvent::WebhookTest => "webhook",
            AuditEvent::Checkpoint => "audit",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            AuditEvent::KeyUse(purpose) => purpose.reason(),
            AuditEvent::Transition(TransitionReason::Verified) => "verified",
            AuditEvent::Transition(TransitionReason::Revocation) => "revocation",
            AuditEvent::Transition(TransitionReason::Restoration) => "restoration",
            AuditEvent::Transition(TransitionReason::Deadline) => "deadline",
            AuditEvent::Transition(TransitionReason::Held) => "held",
            AuditEvent::Transition(TransitionReason::HoldDismissed) => "hold_dismissed",
            AuditEvent::Transition(TransitionReason::HoldCleared) => "hold_cleared",
            AuditEvent::Transition(TransitionReason::HoldReleased) => "hold_released",
            AuditEvent::Keys(KeyEvent::Rotated) => "rotated",
            AuditEvent::Keys(KeyEvent::MinDecryption) => "min_decryption",
            AuditEvent::Keys(KeyEvent::Shredded) => "shredded",
            AuditEvent::Keys(KeyEvent::Rekeyed) => "rekeyed",
            AuditEvent::Keys(KeyEvent::Migrated) => "migrated",
            AuditEvent::Keys(KeyEvent::Adopted) => "adopted",
            AuditEvent::Keys(KeyEvent::AdoptionFinished) => "adoption_finished",
            AuditEvent::Keys(KeyEvent::ProviderKeysDestroyed) => "provider_keys_destroyed",
            AuditEvent::Keys(KeyEvent::Erased) => "erased",
            AuditEvent::Keys(KeyEvent::ProviderLayerDestroyed) => "provider_layer_destroyed",
            AuditEvent::Ticket(TicketEvent::Opened) => "opened",
            AuditEvent::Ticket(TicketEvent::Comment) => "comment",
            AuditEvent::Ticket(TicketEvent::Reminder) => "reminder",
            AuditEvent::Ticket(TicketEvent::Resolved) => "resolved",
            AuditEvent::Ticket(TicketEvent::Closed) => "closed",
            AuditEvent::Ticket(TicketEvent::RestorationRefused) => "restoration_refused",
            AuditEvent::Token(TokenEvent::AwsSignIn) => "aws_sign_in",
            AuditEvent::WebhookTest => "test",
            AuditEvent::Checkpoint => "checkpoint",
        }
    }
}
