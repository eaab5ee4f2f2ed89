//! Storage conformance: every repository, the same tests, on SQLite and (when
//! `LATCHKEY_TEST_POSTGRES_URL` is set) PostgreSQL, each on a fresh database.

mod audit;
mod clients;
mod flows;
mod keys;
mod machinery;
mod migrate;
mod platform;
mod repositories;
mod tokens;

use latchkey_store::SqlStore;
use latchkey_store::testing::TestDatabase;

/// A migrated store on each engine. Keep the `TestDatabase` alive for as long as the store.
pub async fn stores() -> Vec<(TestDatabase, SqlStore)> {
    let mut out = Vec::new();
    for db in TestDatabase::all().await {
        let store = db.migrated().await;
        out.push((db, store));
    }
    out
}
