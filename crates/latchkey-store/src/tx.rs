//! The unit of work: a transaction on the writer, or a plain connection for reads.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::store::{
    AccountRepository, AppRepository, AuditRepository, ClientAssertionRepository, ClientRepository,
    CodeRepository, ConsoleSessionRepository, FlowRepository, GrantRepository,
    LoginSessionRepository, LoginThrottleRepository, SigningKeyRepository, StoreError,
    TokenRepository, Tx,
};
use sqlx::{Any, AnyConnection, AnyPool, Transaction};

use crate::Backend;
use crate::error::map_err;
use crate::group_commit::WriteTurn;
use crate::kept::Single;

enum Conn {
    Tx(Transaction<'static, Any>),
    /// A connection outside any transaction: a pool's, or one kept between single statements on
    /// PostgreSQL (`kept.rs`).
    Single(Single),
}

/// One unit of work. It implements every repository trait; the accessors of [`Tx`] hand it out
/// under each trait.
pub(crate) struct SqlTx {
    conn: Conn,
    /// SQLite: the write turn, held until the transaction ends (after `conn`, in drop order).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl SqlTx {
    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads, then writes, fails when another
    /// connection (a second replica, the CLI) wrote in between.
    ///
    /// `turn` is SQLite's write turn (see `group_commit.rs`), taken first and held until the
    /// transaction ends.
    pub(crate) async fn begin(
        pool: &AnyPool,
        backend: Backend,
        turn: Option<&WriteTurn>,
    ) -> Result<Self, StoreError> {
        let turn = match turn {
            Some(t) => Some(t.clone().lock_owned().await),
            None => None,
        };
        let tx = match backend {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => pool.begin().await,
        };
        Ok(Self {
            conn: Conn::Tx(tx.map_err(map_err)?),
            _turn: turn,
        })
    }

    /// Reads (or single writes) on a connection of `pool`, outside any transaction.
    pub(crate) async fn plain(pool: &AnyPool) -> Result<Self, StoreError> {
        Ok(Self::single(Single::plain(pool).await?))
    }

    /// A unit of work of one statement on `conn`; end it with [`SqlTx::finish`].
    pub(crate) fn single(conn: Single) -> Self {
        Self {
            conn: Conn::Single(conn),
            _turn: None,
        }
    }

    /// Ends a unit of work begun with [`SqlTx::single`] with its result (see [`Single::finish`]).
    pub(crate) fn finish<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match self.conn {
            Conn::Single(conn) => conn.finish(result),
            Conn::Tx(_) => result,
        }
    }

    /// The janitor's batch for one table: deletes up to `limit` rows whose `expires_at` is at or
    /// before `now`, by their key column. `table` and `key` are names from this crate, never input.
    pub(crate) async fn purge_expired_rows(
        &mut self,
        table: &'static str,
        key: &'static str,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE expires_at <= $1 LIMIT $2)"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            Conn::Tx(t) => t,
            Conn::Single(c) => c,
        }
    }
}

#[async_trait]
impl Tx for SqlTx {
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

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        match self.conn {
            Conn::Tx(t) => t.commit().await.map_err(map_err),
            Conn::Single(c) => c.finish(Ok(())),
        }
    }
}
