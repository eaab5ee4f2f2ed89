//! The storage traits of `latchkey-core`, implemented once with sqlx for SQLite and PostgreSQL.
//!
//! The schema is designed so that one set of SQL serves both engines: times are integer Unix
//! seconds, ids text, JSON text, flags integers, and `$n` placeholders work on both. The few
//! statements that must differ sit side by side in the repository that needs them.
//!
//! SQLite runs with one writer connection (WAL, `synchronous=NORMAL`, a busy timeout) and a pool
//! of read-only readers, both through sqlx; PostgreSQL with one pool. Two hot paths of SQLite go
//! through rusqlite instead, to avoid sqlx's hand-off of every statement to a connection thread:
//! the token lookup of introspection and userinfo, on the caller's thread (`inline_reader.rs`),
//! and the token endpoint's and revocation's guarded writes (batched client-credentials inserts,
//! refresh rotations, access-token revocations), on a writer thread that takes turns with sqlx's
//! write transactions (`group_commit.rs`, `direct.rs`). Both use the SQL, parameters and row
//! decoding of the sqlx path. WAL checkpoints run on a rusqlite connection and thread of their own
//! (`checkpoint.rs`).

mod audit;
mod checkpoint;
mod clients;
mod columns;
mod direct;
mod error;
mod flows;
mod grants;
mod group_commit;
mod inline_reader;
mod kept;
mod keys;
mod migrate;
mod platform;
mod sessions;
mod tokens;
mod tx;

use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::audit::AuditEntry;
use latchkey_core::client::Client;
use latchkey_core::client::cache::ClientGuard;
use latchkey_core::clock::UnixTime;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::flow::FlowRecord;
use latchkey_core::oauth::records::{
    AccessTokenRecord, AuthorizationCode, Grant, RefreshTokenRecord, TokenLookup,
};
use latchkey_core::store::{
    ConsentCompleted, ConsentCompletion, Exchange, Exchanged, FlowKey, FlowStep, Rotation, Store,
    StoreError, Tx, consent_in_transaction, flow_step_in_transaction, write_exchange,
    write_family_revocation, write_revocation, write_rotation,
};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{AnyPool, Executor as _};

pub use migrate::{MigrationState, MigrationStatus};

use crate::checkpoint::Checkpointer;
use crate::error::map_err;
use crate::group_commit::{GroupCommit, WriteTurn};
use crate::inline_reader::InlineReaders;
use crate::kept::{KeptConnections, Single};
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
    /// Pool size (PostgreSQL) or number of readers (SQLite, at most two per core).
    pub max_connections: u32,
    /// How long to wait for a connection before giving up.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    backend: Backend,
    writer: AnyPool,
    reader: AnyPool,
    /// SQLite: the task that commits concurrent token inserts together.
    group_commit: Option<GroupCommit>,
    /// SQLite (a file): the turn of the one writer, between sqlx's writer and the writer thread.
    turn: Option<WriteTurn>,
    /// SQLite (a file): the thread that checkpoints the write-ahead log beside the writer.
    _checkpointer: Option<Checkpointer>,
    /// SQLite (a file): the hottest read, on the caller's thread.
    inline: Option<Arc<InlineReaders>>,
    /// PostgreSQL: connections kept between single statements (`kept.rs`).
    kept: Option<Arc<KeptConnections>>,
}

static DRIVERS: Once = Once::new();

fn install_drivers() {
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

/// The URL of a SQLite database file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Readers keep a page cache of 1 MiB each (SQLite's default is 2 MiB): with one per reader
/// connection, the default would be most of the server's memory under load, for pages the
/// operating system caches anyway. (A memory map instead would be counted once per connection.)
const SQLITE_READER_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
     PRAGMA query_only = ON; PRAGMA cache_size = -1024;";

const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;";

/// SQLite's readers: `max_connections`, but at most two per core. A SQLite read is CPU work on
/// pages in memory, so more connections than cores only add threads (sqlx runs one per
/// connection) and page caches: memory, not throughput.
fn sqlite_readers(max_connections: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let cap = u32::try_from(cores * 2).unwrap_or(u32::MAX).max(2);
    max_connections.clamp(1, cap)
}

impl SqlStore {
    /// Opens the database at `url`. Does not migrate: see [`SqlStore::migrate`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        install_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| {
            StoreError::Database("the database URL must start with sqlite: or postgres://".into())
        })?;
        let connect_options: AnyConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Database(format!("invalid database URL: {e}")))?;
        match backend {
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect_options)
                    .await
                    .map_err(map_err)?;
                Ok(Self {
                    backend,
                    kept: Some(KeptConnections::new(pool.clone(), options.max_connections)),
                    writer: pool.clone(),
                    reader: pool,
                    group_commit: None,
                    turn: None,
                    _checkpointer: None,
                    inline: None,
                })
            }
            Backend::Sqlite => {
                // One writer: SQLite serialises writes anyway, and one connection avoids lock
                // upgrades and busy retries between writers.
                let writer = AnyPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_PRAGMAS).await?;
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA wal_autocheckpoint = {}",
                                checkpoint::WRITER_AUTOCHECKPOINT
                            )))
                            .await
                            .map(|_| ())
                        })
                    })
                    .connect_with(connect_options.clone())
                    .await
                    .map_err(map_err)?;
                // Put the database in WAL mode before readers open it.
                writer.acquire().await.map_err(map_err)?;
                let readers = sqlite_readers(options.max_connections);
                let reader = AnyPoolOptions::new()
                    .max_connections(readers)
                    .test_before_acquire(false)
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(|conn, _| {
                        Box::pin(
                            async move { conn.execute(SQLITE_READER_PRAGMAS).await.map(|_| ()) },
                        )
                    })
                    .connect_with(connect_options.clone())
                    .await
                    .map_err(map_err)?;
                // The file, for the rusqlite paths (the writer thread, the checkpointer, the
                // inline readers); an in-memory database has none, and only sqlx's connection
                // sees it.
                let file = inline_reader::sqlite_file(url);
                let turn = file.as_ref().map(|_| WriteTurn::default());
                let group_commit = match (&file, &turn) {
                    (Some(path), Some(turn)) => Some(GroupCommit::start(path, turn.clone())?),
                    _ => None,
                };
                let checkpointer = file.as_deref().map(Checkpointer::start).transpose()?;
                Ok(Self {
                    backend,
                    group_commit,
                    turn,
                    _checkpointer: checkpointer,
                    inline: file.map(|path| Arc::new(InlineReaders::new(path, readers as usize))),
                    kept: None,
                    writer,
                    reader,
                })
            }
        }
    }

    /// SQLite (a file): the writer thread, while it runs.
    fn writer_thread(&self) -> Option<&GroupCommit> {
        self.group_commit.as_ref().filter(|g| g.is_running())
    }

    /// A writer connection, for a statement in a transaction of its own.
    async fn writer_conn(&self) -> Result<PoolConnection<sqlx::Any>, StoreError> {
        self.writer.acquire().await.map_err(map_err)
    }

    /// The connection for a write of one statement: a kept one on PostgreSQL, SQLite's writer
    /// otherwise. End with [`Single::finish`].
    async fn single_write(&self) -> Result<Single, StoreError> {
        match &self.kept {
            Some(kept) => kept.acquire().await,
            None => Single::plain(&self.writer).await,
        }
    }

    /// A read of one statement through the pool (the inline readers aside): on PostgreSQL on a
    /// kept connection. End with [`SqlTx::finish`].
    async fn single_read(&self) -> Result<SqlTx, StoreError> {
        Ok(SqlTx::single(match &self.kept {
            Some(kept) => kept.acquire().await?,
            None => Single::plain(&self.reader).await?,
        }))
    }

    /// A write transaction that goes on only while `guard` holds at `now`: `None`, and nothing
    /// written, when it does not.
    async fn begin_guarded(
        &self,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Result<Option<Box<dyn Tx>>, StoreError> {
        let mut tx = self.begin().await?;
        Ok(tx.clients().guard_holds(guard, now).await?.then_some(tx))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        if let Some(kept) = &self.kept {
            kept.release_all();
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// A read on the caller's thread, when the store has inline readers; `None` when it has none, or
/// the database was busy, and the read goes through the pool.
fn inline<T>(
    readers: Option<&InlineReaders>,
    read: impl FnOnce(&InlineReaders) -> Result<T, StoreError>,
) -> Option<Result<T, StoreError>> {
    match read(readers?) {
        Err(StoreError::Unavailable(e)) => {
            tracing::debug!(error = %e, "inline SQLite read busy; reading through the pool");
            None
        }
        answer => Some(answer),
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(
            SqlTx::begin(&self.writer, self.backend, self.turn.as_ref()).await?,
        ))
    }

    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(SqlTx::plain(&self.reader).await?))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        conn.execute("SELECT 1").await.map_err(map_err)?;
        Ok(())
    }

    async fn access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<AccessTokenRecord>>, StoreError> {
        if let Some(answer) = inline(self.inline.as_deref(), |r| r.access_token(hash)) {
            return answer;
        }
        let mut tx = self.single_read().await?;
        let found = tx.tokens().access(hash).await;
        tx.finish(found)
    }

    async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<RefreshTokenRecord>>, StoreError> {
        if let Some(answer) = inline(self.inline.as_deref(), |r| r.refresh_token(hash)) {
            return answer;
        }
        let mut tx = self.single_read().await?;
        let found = tx.tokens().refresh(hash).await;
        tx.finish(found)
    }

    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        if let Some(answer) = inline(self.inline.as_deref(), |r| r.client(id)) {
            return answer;
        }
        let mut tx = self.single_read().await?;
        let found = tx.clients().get(id).await;
        tx.finish(found)
    }

    async fn active_grant(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        if let Some(answer) = inline(self.inline.as_deref(), |r| {
            r.active_grant(subject, client_id)
        }) {
            return answer;
        }
        let mut tx = self.single_read().await?;
        let found = tx.grants().active(subject, client_id).await;
        tx.finish(found)
    }

    async fn complete_consent(
        &self,
        completion: ConsentCompletion,
    ) -> Result<ConsentCompleted, StoreError> {
        if let Some(group) = self.writer_thread() {
            return group
                .run(move |conn: &rusqlite::Connection| direct::write_consent(conn, &completion))
                .await;
        }
        if self.backend == Backend::Postgres {
            let mut conn = self.single_write().await?;
            let done = flows::complete_consent(&mut conn, &completion).await;
            return conn.finish(done);
        }
        consent_in_transaction(self, &completion).await
    }

    async fn flow(&self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        if let Some(answer) = inline(self.inline.as_deref(), |r| r.flow(key, hash)) {
            return answer;
        }
        let mut tx = self.single_read().await?;
        let found = tx.flows().find(key, hash).await;
        tx.finish(found)
    }

    async fn insert_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        if let Some(group) = self.writer_thread() {
            return group
                .run(move |conn: &rusqlite::Connection| direct::insert_flow(conn, &flow))
                .await;
        }
        // One statement, its own transaction: on PostgreSQL one round trip. (On SQLite without
        // the writer thread, the one writer connection serialises it with the transactions.)
        let mut conn = self.single_write().await?;
        let done = flows::insert_flow(&mut conn, &flow).await;
        conn.finish(done)
    }

    async fn advance_flow(&self, step: FlowStep) -> Result<bool, StoreError> {
        if let Some(group) = self.writer_thread() {
            return group
                .run(move |conn: &rusqlite::Connection| direct::write_flow_step(conn, &step))
                .await;
        }
        if self.backend == Backend::Postgres {
            let mut conn = self.single_write().await?;
            let done = flows::advance_flow(&mut conn, &step).await;
            return conn.finish(done);
        }
        flow_step_in_transaction(self, &step).await
    }

    async fn authorization_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        if let Some(answer) = inline(self.inline.as_deref(), |r| r.authorization_code(hash)) {
            return answer;
        }
        let mut tx = self.single_read().await?;
        let found = tx.codes().get(hash).await;
        tx.finish(found)
    }

    async fn exchange_code_guarded(
        &self,
        exchange: Exchange,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Result<Option<Exchanged>, StoreError> {
        if let Some(group) = self.writer_thread() {
            let write = move |conn: &_| direct::write_exchange(conn, &exchange, now);
            return group.run_guarded(guard, now, write).await;
        }
        if self.backend == Backend::Postgres {
            let mut conn = self.single_write().await?;
            let done = tokens::exchange_code_guarded(&mut conn, &exchange, guard, now).await;
            return conn.finish(done);
        }
        let Some(mut tx) = self.begin_guarded(guard, now).await? else {
            return Ok(None);
        };
        let exchanged = write_exchange(tx.as_mut(), &exchange, now).await?;
        tx.commit().await?;
        Ok(Some(exchanged))
    }

    async fn insert_access_guarded(
        &self,
        token: &AccessTokenRecord,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        if let Some(group) = &self.group_commit
            && let Some(result) = group.insert_access(token, guard, now).await
        {
            return result;
        }
        // PostgreSQL: one statement in its own transaction; concurrent commits share their WAL
        // flushes in the server.
        let mut conn = self.single_write().await?;
        let done = tokens::insert_access_guarded(&mut conn, token, guard, now).await;
        conn.finish(done)
    }

    async fn revoke_access_guarded(
        &self,
        hash: TokenHash,
        guard: &ClientGuard,
        now: UnixTime,
        audit: AuditEntry,
    ) -> Result<Option<bool>, StoreError> {
        if let Some(group) = self.writer_thread() {
            let write = move |conn: &_| direct::write_revocation(conn, &hash, now, &audit);
            return group.run_guarded(guard, now, write).await;
        }
        if self.backend == Backend::Postgres {
            let mut conn = self.single_write().await?;
            let done = tokens::revoke_access_guarded(&mut conn, &hash, guard, now, &audit).await;
            return conn.finish(done);
        }
        let Some(mut tx) = self.begin_guarded(guard, now).await? else {
            return Ok(None);
        };
        let revoked = write_revocation(tx.as_mut(), &hash, now, &audit).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    async fn revoke_family_guarded(
        &self,
        family_id: String,
        guard: &ClientGuard,
        now: UnixTime,
        audit: AuditEntry,
    ) -> Result<Option<bool>, StoreError> {
        if let Some(group) = self.writer_thread() {
            let write =
                move |conn: &_| direct::write_family_revocation(conn, &family_id, now, &audit);
            return group.run_guarded(guard, now, write).await;
        }
        if self.backend == Backend::Postgres {
            let mut conn = self.single_write().await?;
            let done =
                tokens::revoke_family_guarded(&mut conn, &family_id, guard, now, &audit).await;
            return conn.finish(done);
        }
        let Some(mut tx) = self.begin_guarded(guard, now).await? else {
            return Ok(None);
        };
        let revoked = write_family_revocation(tx.as_mut(), &family_id, now, &audit).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    async fn rotate_refresh_guarded(
        &self,
        rotation: Rotation,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Result<Option<bool>, StoreError> {
        if let Some(group) = self.writer_thread() {
            let write = move |conn: &_| direct::write_rotation(conn, &rotation, now);
            return group.run_guarded(guard, now, write).await;
        }
        if self.backend == Backend::Postgres {
            let mut conn = self.single_write().await?;
            let done = tokens::rotate_refresh_guarded(&mut conn, &rotation, guard, now).await;
            return conn.finish(done);
        }
        let Some(mut tx) = self.begin_guarded(guard, now).await? else {
            return Ok(None);
        };
        let rotated = write_rotation(tx.as_mut(), &rotation, now).await?;
        if rotated {
            tx.commit().await?;
        }
        Ok(Some(rotated))
    }
}

#[cfg(feature = "test-util")]
pub mod testing;

impl SqlStore {
    /// Runs one statement that returns nothing, for administration (tests, tooling).
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        let mut conn = self.writer_conn().await?;
        conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
