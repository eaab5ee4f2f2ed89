//! The write machinery: no write waits forever behind an open transaction, SQLite's writer queue
//! is bounded, and a write whose caller is gone before it starts is not written.

use std::time::Duration;

use latchkey_core::client::ClientStatus;
use latchkey_core::store::{FlowKey, Store, StoreError, StoreWrites as _, unit};
use latchkey_store::StoreOptions;
use latchkey_store::testing::TestDatabase;

use crate::flows::{flow, found, with_client};

/// Short timeouts, so that the tests below wait for them briefly.
fn options(write_queue: usize) -> StoreOptions {
    StoreOptions {
        max_connections: 4,
        write_queue,
        transaction_idle_timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    }
}

/// Far longer than any timeout of [`options`]: reaching it means a write hung.
const HUNG: Duration = Duration::from_secs(30);

/// A task holds a transaction open that changed a client, then waits for a write of its own
/// that changes the same client. On SQLite the transaction is rolled back once it sat idle for
/// the timeout, and the write goes through; on PostgreSQL the write gives up after
/// `lock_timeout` as unavailable (503), and the transaction commits. Neither hangs.
#[tokio::test]
async fn a_write_cannot_deadlock_against_an_open_transaction() {
    for db in TestDatabase::all().await {
        let store = db.migrated_with(&options(64)).await;
        with_client(&store).await;
        let mut tx = store.begin().await.expect("begin");
        let mut client = tx
            .clients()
            .get("client-1")
            .await
            .expect("get")
            .expect("client");
        client.status = ClientStatus::Suspended;
        tx.clients()
            .update(&client)
            .await
            .expect("update in the transaction");

        let write = unit(&store, |tx| {
            Box::pin(async move {
                let mut c = tx.clients().get("client-1").await?.expect("client");
                c.client_uri = "https://written.example".into();
                tx.clients().update(&c).await
            })
        });
        let written = tokio::time::timeout(HUNG, write)
            .await
            .expect("the write does not hang");
        let committed = tx.commit().await;
        let stored = store
            .client("client-1")
            .await
            .expect("read")
            .expect("client");
        match db.backend {
            latchkey_store::Backend::Sqlite => {
                assert!(matches!(written, Ok(true)), "{written:?}");
                assert!(committed.is_err(), "the idle transaction was rolled back");
                assert_eq!(stored.status, ClientStatus::Active);
                assert_eq!(stored.client_uri, "https://written.example");
            }
            latchkey_store::Backend::Postgres => {
                assert!(
                    matches!(written, Err(StoreError::Unavailable(_))),
                    "{written:?}"
                );
                committed.expect("the transaction commits");
                assert_eq!(stored.status, ClientStatus::Suspended);
                assert_ne!(stored.client_uri, "https://written.example");
            }
        }
    }
}

/// SQLite: with the writer busy and its queue full, a write is refused at once as unavailable
/// (503) and writes nothing; the writes that were queued are written once the writer is free.
#[tokio::test]
async fn a_full_sqlite_writer_queue_refuses_at_once_and_writes_nothing() {
    let db = TestDatabase::sqlite();
    let store = db.migrated_with(&options(2)).await;
    with_client(&store).await;
    let held = store.begin().await.expect("the writer is busy");
    let queued: Vec<_> = ["q1", "q2"]
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_flow(flow(id)).await })
        })
        .collect();
    // Let both reach the queue (the writer thread is held by the transaction).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = store.insert_flow(flow("over")).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    drop(held);
    for q in queued {
        q.await.expect("task").expect("a queued write is written");
    }
    assert!(
        found(&store, FlowKey::LoginChallenge, "lc-q1")
            .await
            .is_some()
    );
    assert!(
        found(&store, FlowKey::LoginChallenge, "lc-q2")
            .await
            .is_some()
    );
    assert!(
        found(&store, FlowKey::LoginChallenge, "lc-over")
            .await
            .is_none()
    );
}

/// SQLite: a write whose caller gave up while it waited for the writer is not written.
#[tokio::test]
async fn a_write_cancelled_before_it_starts_is_not_written() {
    let db = TestDatabase::sqlite();
    let store = db.migrated_with(&options(64)).await;
    with_client(&store).await;
    let held = store.begin().await.expect("the writer is busy");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        store.insert_flow(flow("cancelled")),
    )
    .await;
    assert!(gave_up.is_err(), "the write was still waiting");
    drop(held);
    store
        .insert_flow(flow("after"))
        .await
        .expect("the writer goes on");
    assert!(
        found(&store, FlowKey::LoginChallenge, "lc-after")
            .await
            .is_some()
    );
    assert!(
        found(&store, FlowKey::LoginChallenge, "lc-cancelled")
            .await
            .is_none()
    );
}
