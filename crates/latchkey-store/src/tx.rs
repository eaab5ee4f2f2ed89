//! The unit of work: one type for every connection a repository runs on. The repositories are
//! written once against [`SqlTx::execute`], [`SqlTx::optional`] and [`SqlTx::all`], whichever
//! engine and connection runs them.

use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::store::{
    AccountRepository, AppRepository, AuditRepository, ClientAssertionRepository, ClientRepository,
    CodeRepository, ConsoleSessionRepository, FlowRepository, GrantRepository, JanitorRepository,
    LoginSessionRepository, LoginThrottleRepository, LogoutRepository, RevocationLogRepository,
    SigningKeyRepository, StoreError, TokenRepository, Tx,
};
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use tokio::sync::oneshot;

use crate::error::pg_err;
use crate::sql::{Decode, Param};
use crate::sqlite::{self, Readers, Step};

/// The connection a unit of work runs on.
enum Conn<'c> {
    /// SQLite's writer connection, on the writer thread: a unit of work of a group.
    Writer(&'c mut rusqlite::Connection),
    /// A SQLite read connection, on the caller's thread; given back to `readers` when done.
    Reader(Pooled),
    /// A write transaction on SQLite's writer thread, statement by statement.
    Session(std::sync::mpsc::Sender<Step>),
    /// A PostgreSQL transaction.
    PgTx(sqlx::Transaction<'static, Postgres>),
    /// A PostgreSQL connection outside any transaction, for reads.
    Pg(PoolConnection<Postgres>),
}

/// One unit of work. It implements every repository trait; the accessors of [`Tx`] hand it out
/// under each trait.
pub(crate) struct SqlTx<'c> {
    conn: Conn<'c>,
}

fn session_gone() -> StoreError {
    StoreError::Unavailable(
        "the SQLite write transaction ended (it sat idle too long, or the writer stopped)".into(),
    )
}

impl<'c> SqlTx<'c> {
    pub(crate) fn writer(conn: &'c mut rusqlite::Connection) -> Self {
        Self {
            conn: Conn::Writer(conn),
        }
    }

    pub(crate) fn reader(readers: Arc<Readers>) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Conn::Reader(Pooled {
                conn: Some(readers.take()?),
                readers,
            }),
        })
    }

    pub(crate) fn session(steps: std::sync::mpsc::Sender<Step>) -> Self {
        Self {
            conn: Conn::Session(steps),
        }
    }

    pub(crate) fn pg_tx(tx: sqlx::Transaction<'static, Postgres>) -> Self {
        Self {
            conn: Conn::PgTx(tx),
        }
    }

    pub(crate) fn pg(conn: PoolConnection<Postgres>) -> Self {
        Self {
            conn: Conn::Pg(conn),
        }
    }

    /// The engine this unit of work runs on, for the few statements whose text differs.
    pub(crate) fn backend(&self) -> crate::Backend {
        match self.conn {
            Conn::PgTx(_) | Conn::Pg(_) => crate::Backend::Postgres,
            Conn::Writer(_) | Conn::Reader(_) | Conn::Session(_) => crate::Backend::Sqlite,
        }
    }

    fn sqlite_conn(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.conn {
            Conn::Writer(c) => Some(c),
            Conn::Reader(pooled) => pooled.conn.as_mut(),
            _ => None,
        }
    }

    /// Runs `statement` on SQLite's writer thread, inside this session's transaction.
    async fn on_writer<T: Send + 'static>(
        steps: &std::sync::mpsc::Sender<Step>,
        statement: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let step = Step::Run(Box::new(move |conn| {
            let _ = reply.send(statement(conn));
        }));
        steps.send(step).map_err(|_| session_gone())?;
        answer.await.unwrap_or_else(|_| Err(session_gone()))
    }

    /// Runs a statement that returns no rows; how many rows it changed.
    pub(crate) async fn execute(
        &mut self,
        sql: &'static str,
        params: Vec<Param<'_>>,
    ) -> Result<u64, StoreError> {
        self.execute_text(sql.into(), params).await
    }

    /// [`SqlTx::execute`] for a statement built at run time from names of this crate (never
    /// input).
    pub(crate) async fn execute_text(
        &mut self,
        sql: std::borrow::Cow<'static, str>,
        params: Vec<Param<'_>>,
    ) -> Result<u64, StoreError> {
        if let Some(conn) = self.sqlite_conn() {
            return sqlite::execute(conn, &sql, &params);
        }
        match &mut self.conn {
            Conn::Session(steps) => {
                let params: Vec<_> = params.into_iter().map(Param::into_owned).collect();
                Self::on_writer(steps, move |conn| sqlite::execute(conn, &sql, &params)).await
            }
            Conn::PgTx(tx) => pg_execute(tx, &sql, params).await,
            Conn::Pg(conn) => pg_execute(conn, &sql, params).await,
            Conn::Writer(_) | Conn::Reader(_) => unreachable!("SQLite handled above"),
        }
    }

    /// Runs a query; its rows, decoded.
    pub(crate) async fn all<T: Send + 'static>(
        &mut self,
        sql: &'static str,
        params: Vec<Param<'_>>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.all_text(sql.into(), params, decode).await
    }

    /// [`SqlTx::all`] for a query built at run time from names of this crate (never input).
    pub(crate) async fn all_text<T: Send + 'static>(
        &mut self,
        sql: std::borrow::Cow<'static, str>,
        params: Vec<Param<'_>>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        if let Some(conn) = self.sqlite_conn() {
            return sqlite::fetch(conn, &sql, &params, decode);
        }
        match &mut self.conn {
            Conn::Session(steps) => {
                let params: Vec<_> = params.into_iter().map(Param::into_owned).collect();
                Self::on_writer(steps, move |conn| {
                    sqlite::fetch(conn, &sql, &params, decode)
                })
                .await
            }
            Conn::PgTx(tx) => pg_fetch(tx, &sql, params, decode).await,
            Conn::Pg(conn) => pg_fetch(conn, &sql, params, decode).await,
            Conn::Writer(_) | Conn::Reader(_) => unreachable!("SQLite handled above"),
        }
    }

    /// Runs a query; its first row, decoded.
    pub(crate) async fn optional<T: Send + 'static>(
        &mut self,
        sql: &'static str,
        params: Vec<Param<'_>>,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.all(sql, params, decode).await?.into_iter().next())
    }

    /// Commits (a transaction), or ends the unit of work (anything else).
    pub(crate) async fn finish(self) -> Result<(), StoreError> {
        match self.conn {
            Conn::PgTx(tx) => tx.commit().await.map_err(pg_err),
            Conn::Session(steps) => {
                let (reply, answer) = oneshot::channel();
                steps
                    .send(Step::Commit(reply))
                    .map_err(|_| session_gone())?;
                answer.await.unwrap_or_else(|_| Err(session_gone()))
            }
            Conn::Writer(_) | Conn::Reader(_) | Conn::Pg(_) => Ok(()),
        }
    }
}

/// A SQLite read connection, given back to its pool when dropped.
struct Pooled {
    conn: Option<rusqlite::Connection>,
    readers: Arc<Readers>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.give_back(conn);
        }
    }
}

fn bind_pg<'q>(
    mut q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    params: Vec<Param<'q>>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    use std::borrow::Cow;
    for p in params {
        q = match p {
            Param::Text(Cow::Borrowed(v)) => q.bind(v),
            Param::Text(Cow::Owned(v)) => q.bind(v),
            Param::OptText(v) => q.bind(v.map(Cow::into_owned)),
            Param::Int(v) => q.bind(v),
            Param::OptInt(v) => q.bind(v),
        };
    }
    q
}

async fn pg_execute(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    params: Vec<Param<'_>>,
) -> Result<u64, StoreError> {
    let q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let done = bind_pg(q, params).execute(conn).await.map_err(pg_err)?;
    Ok(done.rows_affected())
}

async fn pg_fetch<T>(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    params: Vec<Param<'_>>,
    decode: Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let rows = bind_pg(q, params).fetch_all(conn).await.map_err(pg_err)?;
    rows.iter().map(|r| decode(r)).collect()
}

#[async_trait]
impl Tx for SqlTx<'_> {
    fn clients(&mut self) -> &mut dyn ClientRepository {
        self
    }

    fn signing_keys(&mut self) -> &mut dyn SigningKeyRepository {
        self
    }

    fn audit(&mut self) -> &mut dyn AuditRepository {
        self
    }

    fn login_sessions(&mut self) -> &mut dyn LoginSessionRepository {
        self
    }

    fn flows(&mut self) -> &mut dyn FlowRepository {
        self
    }

    fn grants(&mut self) -> &mut dyn GrantRepository {
        self
    }

    fn codes(&mut self) -> &mut dyn CodeRepository {
        self
    }

    fn tokens(&mut self) -> &mut dyn TokenRepository {
        self
    }

    fn client_assertions(&mut self) -> &mut dyn ClientAssertionRepository {
        self
    }

    fn accounts(&mut self) -> &mut dyn AccountRepository {
        self
    }

    fn apps(&mut self) -> &mut dyn AppRepository {
        self
    }

    fn console_sessions(&mut self) -> &mut dyn ConsoleSessionRepository {
        self
    }

    fn login_throttle(&mut self) -> &mut dyn LoginThrottleRepository {
        self
    }

    fn logouts(&mut self) -> &mut dyn LogoutRepository {
        self
    }

    fn revocation_log(&mut self) -> &mut dyn RevocationLogRepository {
        self
    }

    fn janitor(&mut self) -> &mut dyn JanitorRepository {
        self
    }

    fn device_codes(&mut self) -> &mut dyn latchkey_core::store::DeviceRepository {
        self
    }

    fn trusted_issuers(&mut self) -> &mut dyn latchkey_core::store::TrustedIssuerRepository {
        self
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.finish().await
    }
}
