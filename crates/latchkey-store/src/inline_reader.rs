//! SQLite reads on the request's own thread.
//!
//! sqlx runs every SQLite connection on a thread of its own: each statement is sent to that
//! thread and its rows sent back, and each connection returned to the pool is pinged the same way.
//! For a read of one indexed row — the token lookup behind every introspection, and the refresh
//! token read before a refresh queues for the writer — those four
//! thread wake-ups cost several times the read itself (profiled: about 40% of the server's CPU
//! under introspection load went to futex waits and wakes). The hottest read therefore runs
//! through rusqlite, synchronously, on the calling thread: a WAL reader never waits for the
//! writer, and the pages it needs are in memory, so the call is as short as a signature check.
//!
//! Connections are kept in a small stack (at most one per reader the store was opened with), opened
//! read-write but `query_only` like sqlx's readers, with the same page cache. Statements are
//! prepared once per connection. The SQL and the decoding of rows are the sqlx path's own
//! (`tokens.rs`, `columns.rs`), so the two cannot disagree.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Mutex;

use latchkey_core::client::Client;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::flow::FlowRecord;
use latchkey_core::oauth::records::{
    AccessTokenRecord, AuthorizationCode, Grant, RefreshTokenRecord, TokenLookup,
};
use latchkey_core::store::{FlowKey, StoreError};
use rusqlite::{Connection, OpenFlags};

use crate::clients::{CLIENT_BY_ID, client_from_row};
use crate::flows::{flow_by, flow_from_row};
use crate::grants::{ACTIVE_GRANT, grant_from_row};
use crate::tokens::{
    ACCESS_BY_HASH, CODE_BY_HASH, REFRESH_BY_HASH, access_from_row, code_from_row, lookup,
    refresh_from_row,
};

/// The pragmas of sqlx's SQLite readers (`SQLITE_READER_PRAGMAS` in `lib.rs`), but a short busy
/// timeout: this thread serves other requests too, so a read that cannot start at once (a WAL
/// reader is only kept waiting by recovery or another process's exclusive lock) returns
/// `Unavailable` and the caller retries it through sqlx, which waits without blocking anyone.
const PRAGMAS: &str =
    "PRAGMA busy_timeout = 20; PRAGMA query_only = ON; PRAGMA cache_size = -1024;";

pub(crate) struct InlineReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl std::fmt::Debug for InlineReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReaders")
            .field("path", &self.path)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// The database file a SQLite URL names; `None` for an in-memory database, which only its own
/// connection can see.
pub(crate) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty() && path != Path::new(":memory:")).then(|| path.to_owned())
}

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Database(other.to_string()),
    }
}

impl InlineReaders {
    /// Readers of the database file `path`, keeping at most `keep` idle connections.
    pub(crate) fn new(path: PathBuf, keep: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::with_capacity(keep)),
            keep,
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.execute_batch(PRAGMAS).map_err(db_err)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one), then keeps the connection for the next
    /// read unless it failed.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let out = read(&conn);
        if out.is_ok() {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < self.keep {
                idle.push(conn);
            }
        }
        out
    }

    /// [`latchkey_core::store::Store::access_token`].
    pub(crate) fn access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<AccessTokenRecord>>, StoreError> {
        self.by_hash(ACCESS_BY_HASH, hash, |row| access_from_row(row))
    }

    /// [`latchkey_core::store::Store::refresh_token`].
    pub(crate) fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<RefreshTokenRecord>>, StoreError> {
        self.by_hash(REFRESH_BY_HASH, hash, |row| refresh_from_row(row))
    }

    /// [`latchkey_core::store::Store::authorization_code`].
    pub(crate) fn authorization_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        self.one(CODE_BY_HASH, &[hash.as_str()], |row| code_from_row(row))
    }

    /// [`latchkey_core::store::Store::client`].
    pub(crate) fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.one(CLIENT_BY_ID, &[id], |row| client_from_row(row))
    }

    /// [`latchkey_core::store::Store::active_grant`].
    pub(crate) fn active_grant(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        self.one(ACTIVE_GRANT, &[subject, client_id], |row| {
            grant_from_row(row)
        })
    }

    /// The first row of `sql` with `params`, decoded.
    fn one<T>(
        &self,
        sql: &str,
        params: &[&str],
        decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql).map_err(db_err)?;
            let mut rows = statement
                .query(rusqlite::params_from_iter(params))
                .map_err(db_err)?;
            rows.next().map_err(db_err)?.map(decode).transpose()
        })
    }

    /// [`latchkey_core::store::Store::flow`].
    pub(crate) fn flow(&self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        self.one(flow_by(key), &[hash], |row| flow_from_row(row))
    }

    /// One token by its hash, with the state of its client and grant.
    fn by_hash<T>(
        &self,
        sql: &str,
        hash: &TokenHash,
        decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<TokenLookup<T>>, StoreError> {
        self.one(sql, &[hash.as_str()], |row| lookup(row, decode(row)?))
    }
}
