//! The console's audit view, computed in the database: a tenant's entries newest first with
//! keyset paging and filters, and key uses counted per bucket (a probe summary counting as the
//! probes it stands for).

use byok_store::{AuditEntry, AuditFilter, Store};

pub async fn audit_views<S: Store>(store: &S) {
    let acme: byok_domain::TenantId = "acme".parse().expect("id");
    let day = 1_800_000_000 - 1_800_000_000 % 86_400;
    // 30 entries for acme, one an hour from `day`: key uses by data, probe (every third a
    // summary of 10), a transition at hour 12; and 5 for beta the same hours.
    let mut seals = Vec::new();
    for hour in 0..30_i64 {
        let (kind, reason, detail) = match hour {
            12 => ("transition", "revocation", "{\"from\":\"active\",\"to\":\"revoked\"}".to_string()),
            h if h % 3 == 0 => ("key_use", "probe", "{\"summary\":{\"count\":10,\"region\":\"eu-west-1\"}}".to_string()),
            h if h % 2 == 0 => ("key_use", "probe", "{\"region\":\"eu-west-1\"}".to_string()),
            _ => ("key_use", "data", "{\"region\":\"eu-west-1\"}".to_string()),
        };
        seals.push(("acme", day + hour * 3600 + 60, kind, reason, detail));
        if hour < 5 {
            seals.push(("beta", day + hour * 3600 + 61, "key_use", "data", "{}".to_string()));
        }
    }
    for (tenant, at, kind, reason, detail) in seals {
        let entry = move |seq: i64, prev: &str| AuditEntry {
            seq,
            tenant: Some(tenant.to_string()),
            at,
            kind: kind.into(),
            reason: reason.into(),
            detail: detail.clone(),
            prev_hash: prev.to_string(),
            hash: format!("{prev}>{seq}"),
        };
        store.append_audit(&entry).await.expect("append");
    }

    // Newest first, 7 to a page, each page starting before the last one shown.
    let all = AuditFilter::default();
    let first = store.audit_page(&acme, &all, i64::MAX, 7).await.expect("page");
    assert_eq!(first.len(), 7);
    assert!(first.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    assert!(first.iter().all(|e| e.tenant.as_deref() == Some("acme")), "only the tenant's");
    assert_eq!(first[0].at, day + 29 * 3600 + 60);
    let mut seen = first.clone();
    let mut before = first.last().expect("last").seq;
    loop {
        let page = store.audit_page(&acme, &all, before, 7).await.expect("page");
        let Some(last) = page.last() else { break };
        before = last.seq;
        seen.extend(page);
    }
    assert_eq!(seen.len(), 30, "every entry once");
    // By kind or by reason, and by time: [from, to).
    let transitions = AuditFilter { reason: Some("transition".into()), ..AuditFilter::default() };
    let found = store.audit_page(&acme, &transitions, i64::MAX, 50).await.expect("page");
    assert_eq!(found.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(), ["revocation"]);
    let data = AuditFilter { reason: Some("data".into()), from: Some(day + 3600), to: Some(day + 6 * 3600) };
    let found = store.audit_page(&acme, &data, i64::MAX, 50).await.expect("page");
    assert_eq!(found.iter().map(|e| (e.at - day) / 3600).collect::<Vec<_>>(), [5, 1], "odd hours 1 and 5 (3 is a probe summary)");
    assert!(store.audit_page(&"nobody".parse().expect("id"), &all, i64::MAX, 50).await.expect("page").is_empty());

    // Counted per hour on the first day, per day over two: a summary counts its 10 probes.
    let hours = store.key_use_counts(&acme, day, day + 86_400, 3600).await.expect("counts");
    assert_eq!(hours.iter().find(|(at, r, _)| *at == day && r == "probe").map(|c| c.2), Some(10), "{hours:?}");
    assert_eq!(hours.iter().find(|(at, r, _)| *at == day + 3600 && r == "data").map(|c| c.2), Some(1), "{hours:?}");
    assert_eq!(hours.iter().find(|(at, r, _)| *at == day + 2 * 3600 && r == "probe").map(|c| c.2), Some(1), "{hours:?}");
    assert!(!hours.iter().any(|(at, ..)| *at == day + 12 * 3600), "a transition is not a key use: {hours:?}");
    let days = store.key_use_counts(&acme, day, day + 2 * 86_400, 86_400).await.expect("counts");
    // Day one, hours 0..24: multiples of 3 are summaries (0, 3, …, 21 but 12, the transition:
    // 7 × 10) and the other even hours single probes (2, 4, 8, 10, 14, 16, 20, 22: 8); the other
    // odd hours data (1, 5, 7, 11, 13, 17, 19, 23: 8). Day two, hours 24..30: 24 and 27 summaries,
    // 26 and 28 probes, 25 and 29 data.
    let expected = [(day, "data", 8), (day, "probe", 78), (day + 86_400, "data", 2), (day + 86_400, "probe", 22)];
    assert_eq!(days, expected.map(|(at, r, n)| (at, r.to_string(), n)).to_vec());
    assert!(store.key_use_counts(&acme, day, day, 3600).await.expect("empty range").is_empty());
}
