//! Webhook endpoints, the dispatcher's cursor over the audit log, and deliveries.

use byok_domain::{Attempt, DeliveryStatus, Webhook, WebhookSecret};
use byok_store::{NewDelivery, Store};
use time::{Duration, OffsetDateTime};

use super::{note, tenant};

pub async fn webhooks<S: Store>(store: &S) {
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
    store.insert_tenant(&tenant("acme")).await.expect("insert");
    store.append_audit(&note("before any endpoint")).await.expect("append");
    let hook = |id: &str, tenant: Option<&str>| Webhook {
        id: id.into(),
        tenant: tenant.map(|t| t.parse().expect("id")),
        url: format!("https://hooks.example.com/{id}"),
        events: if tenant.is_some() { vec!["tenant.revoked".into()] } else { Vec::new() },
        secrets: vec![WebhookSecret { secret: "whsec_AAAA".into(), until: None }],
        created_at: at,
    };
    let (mine, ops) = (hook("wh_a", Some("acme")), hook("wh_ops", None));
    store.put_webhook(&mine).await.expect("put");
    store.put_webhook(&ops).await.expect("put");
    assert_eq!(store.webhook("wh_a").await.expect("get"), Some(mine.clone()), "read back as written");
    assert_eq!(store.webhooks(Some(&"acme".parse().expect("id"))).await.expect("list"), [mine.clone()]);
    assert_eq!(store.webhooks(None).await.expect("all").len(), 2);
    let rotated =
        vec![WebhookSecret { secret: "whsec_BBBB".into(), until: None }, WebhookSecret { secret: "whsec_AAAA".into(), until: Some(5) }];
    assert!(store.set_webhook_secrets("wh_a", &rotated).await.expect("rotate"));
    assert_eq!(store.webhook("wh_a").await.expect("get").expect("there").secrets, rotated);

    // The cursor starts at the log's end; it moves only from where it is.
    let cursor = store.webhook_cursor().await.expect("cursor");
    assert_eq!(cursor, 1, "what happened before is not sent");
    let new = |webhook: &str, seq: i64| NewDelivery {
        webhook: webhook.into(),
        seq,
        tenant: Some("acme".parse().expect("id")),
        event_type: "tenant.revoked".into(),
        body: format!("{{\"seq\":{seq}}}"),
    };
    assert!(store.enqueue_deliveries(1, 3, &[new("wh_a", 2), new("wh_ops", 2), new("wh_a", 3)], at).await.expect("enqueue"));
    assert!(!store.enqueue_deliveries(1, 4, &[new("wh_a", 4)], at).await.expect("stale"), "another leader moved it");
    assert_eq!(store.webhook_cursor().await.expect("cursor"), 3);
    assert_eq!(store.deliveries("wh_a", 10).await.expect("list").len(), 2, "the stale enqueue wrote nothing");

    // Each endpoint's oldest pending delivery is next; a later one waits behind it.
    let next = store.next_deliveries().await.expect("next");
    let mut firsts: Vec<(String, i64)> = next.iter().map(|d| (d.webhook.clone(), d.seq)).collect();
    firsts.sort();
    assert_eq!(firsts, [("wh_a".to_string(), 2), ("wh_ops".to_string(), 2)]);
    let retry = Attempt::Retry { at: at + Duration::seconds(5), error: "500".into() };
    store.record_attempt("wh_a", 2, &retry, at).await.expect("retry");
    let d = store.deliveries("wh_a", 10).await.expect("list").into_iter().find(|d| d.seq == 2).expect("there");
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at, d.last_error.as_deref()),
        (DeliveryStatus::Pending, 1, at + Duration::seconds(5), Some("500"))
    );
    store.record_attempt("wh_a", 2, &Attempt::Delivered, at).await.expect("delivered");
    assert!(store.next_deliveries().await.expect("next").iter().any(|d| d.webhook == "wh_a" && d.seq == 3), "then the next one");
    store.record_attempt("wh_a", 3, &Attempt::Dead { error: "a day of failures".into() }, at).await.expect("dead");
    assert_eq!(store.dead_deliveries().await.expect("dead"), 1);
    assert!(store.redeliver("wh_a", 3, at).await.expect("redeliver"));
    assert!(!store.redeliver("wh_a", 99, at).await.expect("no such"));
    assert_eq!(store.dead_deliveries().await.expect("dead"), 0);

    assert!(store.remove_webhook("wh_a").await.expect("remove"));
    assert!(!store.remove_webhook("wh_a").await.expect("again"));
    assert!(store.deliveries("wh_a", 10).await.expect("list").is_empty(), "its deliveries went with it");
}
