use latchkey_core::store::Store;
use latchkey_store::MigrationState;
use latchkey_store::testing::TestDatabase;

#[tokio::test]
async fn status_shows_pending_then_applied_and_migrate_is_idempotent() {
    for db in TestDatabase::all().await {
        let store = db.open().await;
        let before = store.migration_status().await.expect("status");
        assert!(!before.is_empty());
        assert!(
            before.iter().all(|m| m.state == MigrationState::Pending),
            "{before:?}"
        );
        assert!(!store.is_migrated().await.expect("status"));
        store.migrate().await.expect("migrate");
        store
            .migrate()
            .await
            .expect("migrate again changes nothing");
        let after = store.migration_status().await.expect("status");
        assert!(
            after.iter().all(|m| m.state == MigrationState::Applied),
            "{after:?}"
        );
        store.ping().await.expect("ping");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let err = latchkey_store::SqlStore::connect(
        "postgres://postgres@127.0.0.1:1/nope",
        &latchkey_store::StoreOptions {
            acquire_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(
        matches!(err, latchkey_core::store::StoreError::Unavailable(_)),
        "{err:?}"
    );
}
