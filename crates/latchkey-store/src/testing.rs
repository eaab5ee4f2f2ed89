//! A fresh database for each test: a temporary SQLite file always, and a PostgreSQL schema of
//! its own when `LATCHKEY_TEST_POSTGRES_URL` is set (dropped when the test ends, pass or fail).

use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_core::store::StoreError;

use crate::{Backend, SqlStore, StoreOptions, sqlite_url};

/// The environment variable that turns on the PostgreSQL tests.
pub const POSTGRES_URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

/// A database that exists for one test.
pub struct TestDatabase {
    pub backend: Backend,
    /// The URL a store (or the binary) connects to.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
static CLEANED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drops the schemas of test processes that no longer run (a test that was killed, or whose
/// schema could not be dropped in time).
async fn drop_stale_schemas(admin: &SqlStore) {
    let Ok(mut tx) = admin.sql_read().await else {
        return;
    };
    let Ok(names) = tx
        .all(
            "SELECT CAST(nspname AS TEXT) AS name FROM pg_namespace WHERE nspname LIKE 'lk_test_%'",
            crate::sql::params![],
            name_from_row,
        )
        .await
    else {
        return;
    };
    drop(tx);
    for name in names {
        let pid = name
            .strip_prefix("lk_test_")
            .and_then(|r| r.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let _ = admin
                .execute_raw(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = sqlite_url(&dir.path().join("test.db"));
        Self {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new schema in the PostgreSQL database of `LATCHKEY_TEST_POSTGRES_URL`; `None` when the
    /// variable is not set.
    pub async fn postgres() -> Option<Self> {
        let base = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())?;
        let schema = format!(
            "lk_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::UNIX_EPOCH
                .elapsed()
                .map_or(0, |d| d.subsec_nanos())
        );
        let admin = SqlStore::connect(
            &base,
            &StoreOptions {
                max_connections: 1,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL does not answer: {e}")
        });
        if !CLEANED.swap(true, Ordering::SeqCst) {
            drop_stale_schemas(&admin).await;
        }
        admin
            .execute_raw(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Self {
            backend: Backend::Postgres,
            url,
            _dir: None,
            pg: Some((base, schema)),
        })
    }

    /// SQLite, then PostgreSQL when configured: the engines a conformance test runs on.
    pub async fn all() -> Vec<Self> {
        let mut out = vec![Self::sqlite()];
        out.extend(Self::postgres().await);
        out
    }

    /// Opens a store on this database.
    pub async fn open(&self) -> SqlStore {
        SqlStore::connect(
            &self.url,
            &StoreOptions {
                max_connections: 8,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("test database opens")
    }

    /// Opens a store on this database with every migration applied.
    pub async fn migrated(&self) -> SqlStore {
        self.migrated_with(&StoreOptions {
            max_connections: 8,
            ..StoreOptions::default()
        })
        .await
    }

    /// [`TestDatabase::migrated`] with `options`.
    pub async fn migrated_with(&self, options: &StoreOptions) -> SqlStore {
        let store = SqlStore::connect(&self.url, options)
            .await
            .expect("test database opens");
        store.migrate().await.expect("migrations apply");
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg.take() else {
            return;
        };
        // Drop the schema from a thread of its own: Drop cannot await, and the test's runtime
        // may be gone or busy.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(store) = SqlStore::connect(
                    &base,
                    &StoreOptions {
                        max_connections: 1,
                        ..StoreOptions::default()
                    },
                )
                .await
                {
                    // The test's own connections may still hold locks (a transaction whose
                    // ROLLBACK its stopped runtime never sent): give up quickly, and let the next
                    // run drop the schema.
                    let _ = store
                        .execute_raw(&format!(
                            "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                        ))
                        .await;
                    store.close().await;
                }
            });
        })
        .join();
    }
}

/// Every table of the schema (besides the migrations table), for snapshots.
pub const TABLES: &[&str] = &[
    "accounts",
    "users",
    "memberships",
    "clients",
    "client_secrets",
    "login_sessions",
    "flows",
    "grants",
    "authorization_codes",
    "access_tokens",
    "refresh_tokens",
    "client_assertion_jtis",
    "signing_keys",
    "audit_log",
    "apps",
    "console_sessions",
    "login_throttle",
    "revocation_log",
    "instance_identity",
    "import_source",
    "device_codes",
    "device_challenges",
    "trusted_jwt_issuers",
];

/// The whole content of a database, table by table, as text rows in a stable order: two equal
/// snapshots mean nothing was written in between.
pub type Snapshot = std::collections::BTreeMap<String, Vec<String>>;

fn count_from_row(r: &dyn crate::sql::Columns) -> Result<i64, StoreError> {
    r.int("n")
}

fn name_from_row(r: &dyn crate::sql::Columns) -> Result<String, StoreError> {
    r.text("name")
}

fn text_row(r: &dyn crate::sql::Columns) -> Result<String, StoreError> {
    r.text("r")
}

impl SqlStore {
    /// Rows in `table` (one of [`TABLES`]).
    pub async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        assert!(TABLES.contains(&table), "unknown table {table}");
        let mut tx = self.sql_read().await?;
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        Ok(tx
            .all_text(sql.into(), crate::sql::params![], count_from_row)
            .await?
            .into_iter()
            .next()
            .unwrap_or(0))
    }

    /// Rows in `table` (one of [`TABLES`]) where `condition` holds: a test's own SQL, never
    /// input.
    pub async fn count_rows_where(&self, table: &str, condition: &str) -> Result<i64, StoreError> {
        assert!(TABLES.contains(&table), "unknown table {table}");
        let mut tx = self.sql_read().await?;
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}");
        Ok(tx
            .all_text(sql.into(), crate::sql::params![], count_from_row)
            .await?
            .into_iter()
            .next()
            .unwrap_or(0))
    }

    /// A snapshot of every table.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut out = Snapshot::new();
        let mut tx = self.sql_read().await?;
        for table in TABLES {
            let columns_sql = match self.backend() {
                Backend::Sqlite => {
                    format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
                }
                Backend::Postgres => format!(
                    "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
                ),
            };
            let columns = tx
                .all_text(columns_sql.into(), crate::sql::params![], name_from_row)
                .await?;
            let row_expr = columns
                .iter()
                .map(|c| format!("COALESCE(CAST({c} AS TEXT), '<null>')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let sql = format!("SELECT {row_expr} AS r FROM {table} ORDER BY 1");
            let mut rows = tx
                .all_text(sql.into(), crate::sql::params![], text_row)
                .await?;
            rows.sort();
            out.insert((*table).to_owned(), rows);
        }
        Ok(out)
    }
}
