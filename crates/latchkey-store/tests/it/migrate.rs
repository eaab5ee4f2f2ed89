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

#[tokio::test]
async fn a_migration_that_failed_half_way_stops_everything_with_a_clear_error() {
    for db in TestDatabase::all().await {
        let store = db.migrated().await;
        // What a migration that died half-way leaves behind: its row, marked unsuccessful.
        let checksum = match db.backend {
            latchkey_store::Backend::Sqlite => "X'00'",
            latchkey_store::Backend::Postgres => "decode('00', 'hex')",
        };
        store
            .execute_raw(&format!(
                "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
                 VALUES (9999, 'broken', CURRENT_TIMESTAMP, FALSE, {checksum}, 0)"
            ))
            .await
            .unwrap_or_else(|_| panic!("insert a dirty migration row on {:?}", db.backend));
        let err = store.migrate().await.expect_err("refuses to go on");
        assert!(err.to_string().contains("failed half-way"), "{err}");
        let status = store
            .migration_status()
            .await
            .expect("status still readable");
        assert!(
            status.iter().all(|m| m.state == MigrationState::Applied),
            "{status:?}"
        );
    }
}

/// A PostgreSQL migration that cannot get its lock within `MIGRATION_LOCK_TIMEOUT_MS` gives up,
/// rolls back and is tried again: it succeeds once the lock is free, instead of queueing traffic
/// behind it (or failing) while another transaction holds the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_migration_waiting_on_a_lock_times_out_and_is_retried() {
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!("skipped: PostgreSQL is not configured");
        return;
    };
    let store = db.migrated().await;
    // The last migration pending again.
    store
        .execute_raw(
            "DROP TABLE revocation_log; DROP TABLE instance_identity; DROP TABLE import_source; \
             DELETE FROM _sqlx_migrations WHERE version = 6",
        )
        .await
        .expect("undo 0006");
    assert!(!store.is_migrated().await.expect("status"));
    // Another transaction holds the migrator's table for three lock timeouts.
    let holder = db.open().await;
    let held = tokio::spawn(async move {
        holder
            .execute_raw(
                "BEGIN; LOCK TABLE _sqlx_migrations IN ACCESS EXCLUSIVE MODE; \
                 SELECT pg_sleep(1.5); COMMIT",
            )
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    store
        .migrate()
        .await
        .expect("the migration is retried until the lock is free");
    held.await.expect("holder").expect("the holder committed");
    assert!(store.is_migrated().await.expect("status"));
}
