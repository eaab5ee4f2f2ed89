//! The storage traits of `latchkey-core`, implemented once for SQLite and PostgreSQL.
//!
//! Each repository method is written once, against [`tx::SqlTx`]: SQL with `$n` placeholders
//! (both engines take them), parameters, and a decoder of rows by column name. The schema is
//! designed so that one text serves both engines: times are integer Unix seconds, ids text, JSON
//! text, flags integers. The few statements that must differ sit side by side in the repository
//! that needs them.
//!
//! Each engine has one driver: rusqlite for SQLite (`sqlite.rs`: reads on the caller's thread,
//! every write on one writer thread with group commit; WAL checkpoints on a thread of their own,
//! `checkpoint.rs`), sqlx for PostgreSQL (one pool).
//!
//! The rules of the writes (single use of a code, rotation, revocation, the guard of a cached
//! client) are defined once, in `latchkey_core::store`; this crate runs them in a transaction
//! ([`Store::run`]) and never copies them.

mod audit;
mod checkpoint;
mod clients;
mod device;
mod error;
mod flows;
mod grants;
mod janitor;
mod keys;
mod migrate;
#[cfg(test)]
mod migrate_lint;
mod platform;
mod revocations;
mod sessions;
mod sql;
mod sqlite;
mod tokens;
pub mod transfer;
mod trust;
mod tx;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::store::{Store, StoreError, Tx, Work};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor as _, PgPool};

pub use migrate::{MigrationState, MigrationStatus};

use crate::checkpoint::Checkpointer;
use crate::error::pg_err;
use crate::sqlite::{Readers, Writer};
use crate::tx::SqlTx;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The engine a database URL names.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (PostgreSQL) or idle readers kept (SQLite, at most two per core).
    pub max_connections: u32,
    /// How long to wait for a connection (PostgreSQL) before giving up.
    pub acquire_timeout: Duration,
    /// SQLite: how many writes may wait for the writer before more are refused (503).
    pub write_queue: usize,
    /// How long an open write transaction may wait between its statements before it is rolled
    /// back (SQLite), or how long a statement waits for a lock (PostgreSQL's `lock_timeout`):
    /// no write waits for another one forever.
    pub transaction_idle_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            write_queue: 4096,
            transaction_idle_timeout: Duration::from_secs(5),
        }
    }
}

/// The engine-specific half of the store.
#[derive(Debug, Clone)]
enum Engine {
    Sqlite {
        writer: Writer,
        readers: Arc<Readers>,
        _checkpointer: Checkpointer,
    },
    Postgres {
        pool: PgPool,
    },
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    engine: Engine,
    /// Set by [`SqlStore::close`]: every unit of work is refused from then on.
    closed: Arc<AtomicBool>,
}

/// The URL of a SQLite database file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// SQLite's idle readers: `max_connections`, but at most two per core. A SQLite read is CPU work
/// on pages in memory, so more connections than cores only add page caches.
fn sqlite_readers(max_connections: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    (max_connections as usize).clamp(1, (cores * 2).max(2))
}

impl SqlStore {
    /// Opens the database at `url`. Does not migrate: see [`SqlStore::migrate`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url).ok_or_else(|| {
            StoreError::Database("the database URL must start with sqlite: or postgres://".into())
        })?;
        let engine = match backend {
            Backend::Postgres => {
                let connect: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
                    StoreError::Database(format!("invalid database URL: {e}"))
                })?;
                let lock_timeout = format!(
                    "SET lock_timeout = {}",
                    options.transaction_idle_timeout.as_millis()
                );
                // No ping before each use: a connection that died is answered `Unavailable`
                // (503) once and replaced, instead of costing a round trip on every request.
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(move |conn, _| {
                        let sql = lock_timeout.clone();
                        Box::pin(
                            async move { conn.execute(sqlx::AssertSqlSafe(sql)).await.map(|_| ()) },
                        )
                    })
                    .connect_with(connect)
                    .await
                    .map_err(pg_err)?;
                Engine::Postgres { pool }
            }
            Backend::Sqlite => {
                let path = sqlite::file_of(url)?;
                // The writer first: it creates the file and puts it in WAL mode.
                let writer =
                    Writer::start(&path, options.write_queue, options.transaction_idle_timeout)?;
                let readers = Arc::new(Readers::new(
                    path.clone(),
                    sqlite_readers(options.max_connections),
                ));
                Engine::Sqlite {
                    writer,
                    readers,
                    _checkpointer: Checkpointer::start(&path)?,
                }
            }
        };
        Ok(Self {
            engine,
            closed: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite { .. } => Backend::Sqlite,
            Engine::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Engine::Postgres { pool } = &self.engine {
            pool.close().await;
        }
    }

    fn open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        Ok(())
    }

    /// A unit of work for reads, outside any transaction.
    async fn sql_read(&self) -> Result<SqlTx<'static>, StoreError> {
        self.open()?;
        match &self.engine {
            Engine::Sqlite { readers, .. } => SqlTx::reader(readers.clone()),
            Engine::Postgres { pool } => Ok(SqlTx::pg(pool.acquire().await.map_err(pg_err)?)),
        }
    }

    /// Runs statements that return nothing, for administration (tests, tooling).
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Postgres { pool } => {
                pool.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())))
                    .await
                    .map_err(pg_err)?;
            }
            Engine::Sqlite { writer, .. } => {
                let sql = sql.to_owned();
                writer
                    .exclusive(move |conn| conn.execute_batch(&sql).map_err(error::sqlite_err))
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        self.open()?;
        Ok(Box::new(match &self.engine {
            Engine::Sqlite { writer, .. } => SqlTx::session(writer.session().await?),
            Engine::Postgres { pool } => SqlTx::pg_tx(pool.begin().await.map_err(pg_err)?),
        }))
    }

    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(self.sql_read().await?))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut tx = self.read().await?;
        tx.clients().get("").await.map(|_| ())
    }

    async fn run(&self, work: Work) -> Result<Box<dyn std::any::Any + Send>, StoreError> {
        self.open()?;
        match &self.engine {
            Engine::Sqlite { writer, .. } => writer.unit(work).await,
            Engine::Postgres { pool } => {
                let mut tx = SqlTx::pg_tx(pool.begin().await.map_err(pg_err)?);
                let out = work(&mut tx).await?;
                tx.finish().await?;
                Ok(out)
            }
        }
    }
}

#[cfg(feature = "test-util")]
pub mod testing;
