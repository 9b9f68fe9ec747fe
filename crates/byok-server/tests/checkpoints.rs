//! Hourly checkpoints: the leader's pass signs each tenant's grown history as an
//! `audit.checkpoint` event for its webhooks — once per interval, only when something new
//! happened, and the signature holds the chain head as of then.

use byok_broker::webhook_events;
use byok_store::AuditStore as _;

use crate::world;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_signs_each_grown_history_every_interval() {
    let w = world().await;
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    let before = w.store.newest_audit(&acme).await.expect("newest").expect("onboarding wrote some");

    assert_eq!(w.broker.checkpoints_due().await, 0, "the first round comes an interval after the start");
    w.clock.advance(time::Duration::hours(1));
    assert_eq!(w.broker.checkpoints_due().await, 2, "acme and beta each have history");
    let entry = w.store.newest_audit(&acme).await.expect("newest").expect("entry");
    assert_eq!((entry.kind.as_str(), entry.reason.as_str()), ("audit", "checkpoint"));
    let detail: serde_json::Value = serde_json::from_str(&entry.detail).expect("json");
    assert_eq!(detail["through_seq"], before.seq);
    // What the endpoint receives: an audit.checkpoint event with the signed chain head.
    let kind = webhook_events::event_type(&entry.kind, &entry.reason).expect("an event");
    assert_eq!(kind, "audit.checkpoint");
    let body: serde_json::Value =
        serde_json::from_str(&webhook_events::body(kind, &entry, w.broker.checkpoint_of(&entry).as_ref())).expect("body");
    let checkpoint: byok_broker::audit_signing::Checkpoint =
        serde_json::from_value(body["data"]["checkpoint"].clone()).expect("checkpoint");
    assert_eq!((checkpoint.tenant.as_str(), checkpoint.seq, checkpoint.hash.as_str()), ("acme", entry.seq, entry.hash.as_str()));
    checkpoint.verify().expect("signed by the operator's key");

    // Within the interval: no round. After it, nothing new: nothing signed again.
    assert_eq!(w.broker.checkpoints_due().await, 0, "once per interval");
    w.clock.advance(time::Duration::hours(1));
    assert_eq!(w.broker.checkpoints_due().await, 0, "no new history, no new checkpoint");
    // New history for acme only: the next round signs acme's alone.
    w.broker.revoke(&acme).await.expect("revoke");
    w.clock.advance(time::Duration::hours(1));
    assert_eq!(w.broker.checkpoints_due().await, 1);
    // The leader's monitor pass runs the rounds.
    w.broker.rotate(&"beta".parse().expect("id")).await.expect("rotate");
    w.clock.advance(time::Duration::hours(1));
    byok_broker::monitor::run_once(&w.broker).await;
    let beta = w.store.newest_audit(&"beta".parse().expect("id")).await.expect("newest").expect("entry");
    assert_eq!((beta.kind.as_str(), beta.reason.as_str()), ("audit", "checkpoint"), "{beta:?}");
}
