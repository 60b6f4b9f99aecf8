//! Webhooks in the catalog: registration with a sealed secret, the delivery log and its
//! pruning, deletion with the log.

use chrono::Utc;
use quiesce_core::storage::NewWebhook;
use quiesce_core::testing::TestDb;
use quiesce_core::webhooks::{DeliveryStatus, HookEvents, KEPT_DELIVERIES};

pub async fn webhook_logs_are_kept_updated_pruned_and_deleted_with_their_hook(db: &TestDb) {
    let c = db.catalog().await;
    let new = NewWebhook {
        url: "https://hooks.example/q".into(),
        events: vec![HookEvents::Window, HookEvents::Mirror],
        sealed_secret: "enc:v1:abc".into(),
        created_by: "root".into(),
        created_at: Utc::now(),
    };
    let hook = c.create_webhook(&new).await.unwrap();
    let other = c.create_webhook(&new).await.unwrap();
    let mut listed = c.list_webhooks().await.unwrap();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = vec![hook.clone(), other.clone()];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, expected);
    assert_eq!(c.webhook_secrets().await.unwrap()[0].1, "enc:v1:abc");

    let first = c
        .record_delivery(&hook.id, "window_changed", DeliveryStatus::Delivering, None, Utc::now())
        .await
        .unwrap();
    c.update_delivery(first, DeliveryStatus::Failed, 3, Some("HTTP 500"), Some(500), Utc::now())
        .await
        .unwrap();
    let log = c.list_deliveries(&hook.id, 10).await.unwrap();
    assert_eq!(
        (log[0].status, log[0].attempts, log[0].response_status),
        (DeliveryStatus::Failed, 3, Some(500))
    );
    assert_eq!(log[0].last_error.as_deref(), Some("HTTP 500"));

    for _ in 0..KEPT_DELIVERIES + 5 {
        c.record_delivery(&hook.id, "e", DeliveryStatus::Dropped, Some("queue full"), Utc::now())
            .await
            .unwrap();
    }
    c.record_delivery(&other.id, "e", DeliveryStatus::Delivered, None, Utc::now()).await.unwrap();
    let log = c.list_deliveries(&hook.id, 1000).await.unwrap();
    assert_eq!(log.len() as i64, KEPT_DELIVERIES, "older entries are pruned");
    assert!(log.iter().all(|d| d.id != first));
    assert_eq!(c.list_deliveries(&other.id, 10).await.unwrap().len(), 1, "other hooks keep theirs");

    assert!(c.delete_webhook(&hook.id).await.unwrap());
    assert!(!c.delete_webhook(&hook.id).await.unwrap());
    assert!(c.list_deliveries(&hook.id, 10).await.unwrap().is_empty());
    assert_eq!(c.list_webhooks().await.unwrap(), vec![other]);
}
