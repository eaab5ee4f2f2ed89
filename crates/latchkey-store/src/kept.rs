//! PostgreSQL: connections kept between single statements, handed back without a round trip.
//!
//! sqlx tests every connection returned to its pool with a ping (a `Sync` message and its
//! answer, from a task spawned for it): one more round trip to the database per unit of work.
//! The hottest units of work on PostgreSQL are one statement each — a token's read, a guarded
//! insert, a step of the authorization flow — so that ping was half of their round trips, and
//! as much work for the database as the statement's own protocol exchange.
//!
//! A connection whose statement succeeded now goes to a short list of its own, where the next
//! single statement takes it. One whose statement failed, or whose future was dropped while its
//! statement ran, goes back to sqlx's pool the usual way, and the ping decides whether it lives.
//! (A statement cut off half-way leaves its answer unread; sqlx reads it before the connection's
//! next statement, so a kept connection is always in step with the server.) The list holds at
//! most half of the pool, so transactions and other reads always find connections in the pool;
//! a connection idle on it for long, or kept for long without a test, goes back to the pool too,
//! where sqlx's idle and lifetime limits apply as before.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use latchkey_core::store::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};

use crate::error::map_err;

/// A kept connection idle longer than this goes back to the pool instead of being used.
const MAX_IDLE: Duration = Duration::from_secs(10);
/// A connection goes back to the pool (and is tested there) at least this often.
const MAX_KEPT: Duration = Duration::from_secs(60);

/// The kept connections of one pool.
pub(crate) struct KeptConnections {
    pool: AnyPool,
    idle: Mutex<Vec<Waiting>>,
    max_idle: usize,
}

impl std::fmt::Debug for KeptConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptConnections")
            .field("idle", &self.lock().len())
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

struct Waiting {
    conn: PoolConnection<Any>,
    /// When it was last taken from the pool (or last tested).
    kept_since: Instant,
    /// When it was put on the list.
    idle_since: Instant,
}

impl KeptConnections {
    /// Keeps at most half of `pool`'s connections (`max_connections`): none of a pool of one.
    pub(crate) fn new(pool: AnyPool, max_connections: u32) -> Arc<Self> {
        Arc::new(Self {
            pool,
            idle: Mutex::new(Vec::new()),
            max_idle: usize::try_from(max_connections / 2).unwrap_or(0),
        })
    }

    /// A connection for one statement: a kept one when there is one, else one from the pool.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Single, StoreError> {
        let now = Instant::now();
        loop {
            let idle = self.lock().pop();
            match idle {
                Some(i) if now - i.idle_since < MAX_IDLE && now - i.kept_since < MAX_KEPT => {
                    return Ok(Single {
                        conn: Some(i.conn),
                        kept: Some((self.clone(), i.kept_since)),
                    });
                }
                // Back to the pool, which tests it; look for another.
                Some(stale) => drop(stale),
                None => break,
            }
        }
        let conn = self.pool.acquire().await.map_err(map_err)?;
        Ok(Single {
            conn: Some(conn),
            kept: Some((self.clone(), now)),
        })
    }

    /// Lets every kept connection go back to the pool (before the pool closes).
    pub(crate) fn release_all(&self) {
        let idle = std::mem::take(&mut *self.lock());
        drop(idle);
    }

    fn keep(&self, conn: PoolConnection<Any>, kept_since: Instant) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle && !self.pool.is_closed() {
            idle.push(Waiting {
                conn,
                kept_since,
                idle_since: Instant::now(),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection for one unit of work of one statement. [`Single::finish`] with the statement's
/// result keeps it when the statement succeeded; dropped any other way it goes back to the pool.
pub(crate) struct Single {
    conn: Option<PoolConnection<Any>>,
    /// PostgreSQL: where it is kept, and since when; `None` for a plain pool connection.
    kept: Option<(Arc<KeptConnections>, Instant)>,
}

impl Single {
    /// A plain connection of `pool`, returned to it as usual (SQLite).
    pub(crate) async fn plain(pool: &AnyPool) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Some(pool.acquire().await.map_err(map_err)?),
            kept: None,
        })
    }

    /// Ends the unit of work with its result.
    pub(crate) fn finish<T>(mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok()
            && let (Some(conn), Some((home, since))) = (self.conn.take(), self.kept.take())
        {
            home.keep(conn, since);
        }
        result
    }
}

impl Deref for Single {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn.as_ref().expect("a connection until finished")
    }
}

impl DerefMut for Single {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("a connection until finished")
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row as _;
    use sqlx::any::AnyPoolOptions;

    use super::*;

    async fn backend_pid(conn: &mut AnyConnection) -> i32 {
        sqlx::query("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .expect("pid")
            .get(0)
    }

    fn kept_now(kept: &KeptConnections) -> usize {
        kept.lock().len()
    }

    /// PostgreSQL only (`LATCHKEY_TEST_POSTGRES_URL`): a connection is kept after a statement
    /// that succeeded, never after one that failed or was cut off, and never more than half the
    /// pool; letting them go lets the pool close.
    #[tokio::test]
    async fn connections_are_kept_only_after_a_statement_that_succeeded() {
        let Ok(url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
            return;
        };
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .expect("connect");
        let kept = KeptConnections::new(pool.clone(), 4);

        let mut conn = kept.acquire().await.expect("acquire");
        let first = backend_pid(&mut conn).await;
        conn.finish(Ok(())).expect("ok");
        assert_eq!(kept_now(&kept), 1);
        let mut conn = kept.acquire().await.expect("acquire");
        assert_eq!(
            backend_pid(&mut conn).await,
            first,
            "the kept connection is reused"
        );

        let failed = sqlx::query("SELECT 1 / 0")
            .execute(&mut *conn)
            .await
            .map(|_| ())
            .map_err(map_err);
        conn.finish(failed).expect_err("division by zero");
        assert_eq!(
            kept_now(&kept),
            0,
            "a failed statement's connection is not kept"
        );

        let mut conn = kept.acquire().await.expect("acquire");
        let cut = tokio::time::timeout(
            Duration::from_millis(50),
            sqlx::query("SELECT pg_sleep(0.5)").execute(&mut *conn),
        )
        .await;
        assert!(cut.is_err(), "the statement was cut off");
        drop(conn);
        assert_eq!(
            kept_now(&kept),
            0,
            "a cut-off statement's connection is not kept"
        );

        let mut all = Vec::new();
        for _ in 0..4 {
            let mut conn = kept.acquire().await.expect("acquire");
            backend_pid(&mut conn).await;
            all.push(conn);
        }
        for conn in all {
            conn.finish(Ok(())).expect("ok");
        }
        assert_eq!(kept_now(&kept), 2, "at most half of the pool is kept");
        let mut tx = pool.begin().await.expect("the pool still has connections");
        sqlx::query("SELECT 1")
            .execute(&mut *tx)
            .await
            .expect("select");
        tx.commit().await.expect("commit");

        kept.release_all();
        tokio::time::timeout(Duration::from_secs(10), pool.close())
            .await
            .expect("the pool closes once the kept connections are let go");
    }
}
