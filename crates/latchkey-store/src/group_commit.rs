//! Group commit for SQLite's one writer: access tokens issued by concurrent requests are written
//! by one statement instead of one transaction each.
//!
//! SQLite has one writer at a time. Through sqlx, every statement is a hand-off to the
//! connection's thread and back, and every return of the connection to its pool one more (a
//! ping), so a transaction per token costs far more in thread switches than in SQLite. Under load,
//! a task takes every insert that is waiting (up to [`MAX_BATCH`]) and writes them with one
//! multi-row `INSERT … SELECT … UNION ALL …` (its own implicit transaction), and only then
//! answers each request: a token is committed (as durable as `synchronous = NORMAL` makes a
//! commit) before its response leaves. At low load a batch is one insert, and nothing waits for
//! company.
//!
//! Each row is guarded on its own (see `guarded_row` in `tokens.rs`): one request's failed guard
//! does not affect the others of its batch.

use std::collections::HashSet;

use latchkey_core::client::cache::ClientGuard;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::AccessTokenRecord;
use latchkey_core::store::StoreError;
use sqlx::{AnyConnection, AnyPool, Row as _};
use tokio::sync::{mpsc, oneshot};

use crate::error::map_err;
use crate::tokens::{
    GUARDED_PARAMS, GUARDED_ROW_LEN, INSERT_ACCESS_HEAD, bind_guarded, guarded_row,
};

/// Most inserts committed together.
pub(crate) const MAX_BATCH: usize = 128;

struct Job {
    token: AccessTokenRecord,
    guard: ClientGuard,
    now: UnixTime,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The handle of the writer task; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer task on the current runtime.
    pub(crate) fn start(writer: AnyPool) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, rx));
        Self { jobs }
    }

    /// Writes one guarded access token with whatever else is waiting; `None` when the writer
    /// task is gone (its runtime ended), so the caller writes it alone.
    pub(crate) async fn insert_access(
        &self,
        token: &AccessTokenRecord,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Option<Result<bool, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            token: token.clone(),
            guard: guard.clone(),
            now,
            reply,
        };
        self.jobs.send(job).ok()?;
        Some(answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the SQLite writer task stopped".into(),
            ))
        }))
    }
}

/// Batches written on one connection before it goes back to the pool, so that other
/// transactions get their turn at the writer.
const MAX_ROUNDS: usize = 8;

async fn run(writer: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // Keep the writer while inserts are queued: each return of a connection to the pool
        // costs a round trip (sqlx pings it).
        let mut conn = match writer.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                let e = map_err(e);
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
                continue;
            }
        };
        for round in 1..=MAX_ROUNDS {
            metrics::histogram!("latchkey_sqlite_group_commit_size").record(jobs.len() as f64);
            let results = write(&mut conn, &jobs).await;
            for (job, result) in jobs.drain(..).zip(results) {
                let _ = job.reply.send(result);
            }
            if round == MAX_ROUNDS || rx.is_empty() {
                break;
            }
            rx.recv_many(&mut jobs, MAX_BATCH).await;
        }
    }
}

/// One statement per chunk of the batch (each its own implicit transaction, which takes the
/// write lock at once): each row inserted only if its own guard holds; the rows written come
/// back by `RETURNING`. A failed statement is the answer of every request of its chunk.
async fn write(conn: &mut AnyConnection, jobs: &[Job]) -> Vec<Result<bool, StoreError>> {
    let mut results = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(MAX_ROWS) {
        match write_chunk(conn, chunk).await {
            Ok(written) => results.extend(
                chunk
                    .iter()
                    .map(|job| Ok(written.contains(job.token.token_hash.as_str()))),
            ),
            Err(e) => results.extend(chunk.iter().map(|_| Err(e.clone()))),
        }
    }
    results
}

async fn write_chunk(
    conn: &mut AnyConnection,
    chunk: &[Job],
) -> Result<HashSet<String>, StoreError> {
    let sql = batch_sql(chunk.len());
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for job in chunk {
        q = bind_guarded(q, &job.token, &job.guard, job.now);
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(map_err)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("token_hash"))
        .collect::<Result<_, _>>()
        .map_err(map_err)
}

/// Rows per statement: 15 parameters each stays far below SQLite's limit of 32766.
const MAX_ROWS: usize = 64;

/// `INSERT … SELECT <row 1> WHERE <guard 1> UNION ALL SELECT <row 2> WHERE <guard 2> …
/// RETURNING token_hash`.
fn batch_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * GUARDED_ROW_LEN);
    sql.push_str(INSERT_ACCESS_HEAD);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        guarded_row(&mut sql, i * GUARDED_PARAMS);
    }
    sql.push_str(" RETURNING token_hash");
    sql
}
