use latchkey_core::audit::{Actor, AuditEntry, AuditFilter};
use latchkey_core::store::Store;

use crate::stores;

#[tokio::test]
async fn audit_entries_list_newest_first_and_filter() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        for i in 0..4_i64 {
            tx.audit()
                .append(&AuditEntry {
                    id: format!("e{i}"),
                    occurred_at: 100 + i,
                    actor: Actor {
                        kind: "user".into(),
                        id: Some("u1".into()),
                    },
                    account_id: if i % 2 == 0 {
                        Some("acme".into())
                    } else {
                        None
                    },
                    action: "client.create".into(),
                    target_kind: "client".into(),
                    target_id: format!("c{i}"),
                    details: serde_json::json!({"i": i}),
                })
                .await
                .expect("append");
        }
        tx.commit().await.expect("commit");
        let mut r = store.read().await.expect("read");
        let all = r
            .audit()
            .list(&AuditFilter::default(), 10)
            .await
            .expect("list");
        assert_eq!(
            all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e3", "e2", "e1", "e0"]
        );
        assert_eq!(all[0].details, serde_json::json!({"i": 3}));
        assert_eq!(all[0].actor.id.as_deref(), Some("u1"));
        let acme = AuditFilter {
            account_id: Some("acme".into()),
            ..AuditFilter::default()
        };
        assert_eq!(r.audit().list(&acme, 10).await.expect("list").len(), 2);
        let older = AuditFilter {
            before: Some(102),
            ..AuditFilter::default()
        };
        assert_eq!(r.audit().list(&older, 10).await.expect("list").len(), 2);
        assert_eq!(
            r.audit()
                .list(&AuditFilter::default(), 1)
                .await
                .expect("list")
                .len(),
            1
        );
    }
}
